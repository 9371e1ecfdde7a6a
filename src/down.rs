//! `glbox down`: removes everything the deployment owns, in dependency
//! order, waiting where AWS needs it. Only resources carrying the
//! deployment's tags are touched. The data volume is kept unless asked.

use std::time::Duration;

use serde::Serialize;

use crate::error::Result;
use crate::plan::Observed;
use crate::resources::{
    data_volume, dns_record, elastic_ip, iam, instance, key_pair, security_group, Ctx,
};
use crate::wait::{self, Poll};

/// How long a security group may stay "in use" after its instance ended
/// (AWS releases the network interface a little after termination).
const GROUP_RELEASE_WAIT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, Default)]
pub struct DownOptions {
    pub delete_data: bool,
    pub snapshot: bool,
    /// Also delete the SES identity (and glbox's records in Route 53).
    pub delete_email_identity: bool,
}

/// One thing `down` removes or keeps.
#[derive(Debug, Clone, Serialize)]
pub struct DownItem {
    pub resource: &'static str,
    pub id: String,
    pub action: &'static str,
}

pub fn items(ctx: &Ctx<'_>, observed: &Observed, options: DownOptions) -> Vec<DownItem> {
    let item = |resource, id: &str, action| DownItem {
        resource,
        id: id.to_string(),
        action,
    };
    let mut items = Vec::new();
    if let Some(record) = &observed.dns_record {
        if record.address.is_some() || record.owner.is_some() {
            let action = if record.owned(ctx) {
                "delete"
            } else {
                "skip: not glbox's"
            };
            items.push(item("dns_record", &record.host, action));
        }
    }
    items.extend(
        observed
            .addresses
            .iter()
            .map(|a| item("elastic_ip", &a.public_ip, "release")),
    );
    items.extend(
        observed
            .live_instances()
            .iter()
            .map(|i| item("instance", &i.id, "terminate")),
    );
    for v in &observed.data_volumes {
        let action = match (options.delete_data, options.snapshot) {
            (false, _) => "keep",
            (true, true) => "snapshot, then delete",
            (true, false) => "delete without snapshot",
        };
        items.push(item("data_volume", &v.id, action));
    }
    items.extend(
        observed
            .key_pair
            .iter()
            .map(|k| item("key_pair", &k.name, "delete")),
    );
    items.extend(
        observed
            .security_group
            .iter()
            .map(|g| item("security_group", &g.id, "delete")),
    );
    items.extend(
        removable_parameters(ctx, observed)
            .iter()
            .map(|p| item("parameter", p, "delete")),
    );
    items.extend(
        observed
            .foreign
            .iter()
            .map(|note| item("not glbox's", note, "skip: left alone")),
    );
    let ownership = |owned: bool| if owned { "delete" } else { "skip: not glbox's" };
    if let Some(profile) = &observed.profile {
        items.push(item(
            "instance_profile",
            &profile.name,
            ownership(profile.owned),
        ));
    }
    if let Some(role) = &observed.role {
        items.push(item("iam_role", &role.name, ownership(role.owned)));
    }
    if let Some(user) = &observed.email.credentials.user {
        items.push(item("smtp_user", &user.name, ownership(user.owned)));
    }
    if let (Some(email), Some(_)) = (&ctx.settings.email, observed.email.identity()) {
        let action = match (options.delete_email_identity, &observed.email_identity_keep) {
            (true, None) => "delete",
            (true, Some(_)) => "skip: kept (see below)",
            (false, _) => "keep",
        };
        items.push(item("ses_identity", &email.domain, action));
        if options.delete_email_identity && observed.email.zone.is_some() {
            items.push(item("dns_records", &email.domain, "delete glbox's"));
        }
    }
    items
}

/// What `down` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DownOutcome {
    pub removed: Vec<String>,
    pub kept_volumes: Vec<String>,
    pub snapshots: Vec<String>,
    /// The SES identity, kept because it may be shared.
    pub kept_identity: Option<String>,
}

/// The phases of `down`, as the progress display names them.
pub mod phase {
    pub const DNS_RECORD: &str = "DNS record";
    pub const ELASTIC_IP: &str = "Elastic IP";
    pub const INSTANCE: &str = "instance";
    pub const DATA_VOLUME: &str = "data volume";
    pub const KEY_PAIR: &str = "SSH key pair";
    pub const SECURITY_GROUP: &str = "security group";
    pub const PARAMETERS: &str = "SSM parameters";
    pub const INSTANCE_PROFILE: &str = "instance profile";
    pub const IAM_ROLE: &str = "IAM role";
    pub const SMTP_USER: &str = "SMTP user";
    pub const EMAIL_IDENTITY: &str = "SES identity";
}

/// The phases `down` goes through for what exists, in its order (the
/// same conditions as in [`down`]).
pub fn phases(ctx: &Ctx<'_>, observed: &Observed, options: DownOptions) -> Vec<&'static str> {
    let steps = [
        (
            phase::DNS_RECORD,
            observed.dns_record.as_ref().is_some_and(|r| r.owned(ctx)),
        ),
        (phase::ELASTIC_IP, !observed.addresses.is_empty()),
        (phase::INSTANCE, !observed.live_instances().is_empty()),
        (
            phase::DATA_VOLUME,
            options.delete_data && !observed.data_volumes.is_empty(),
        ),
        (phase::KEY_PAIR, observed.key_pair.is_some()),
        (phase::SECURITY_GROUP, observed.security_group.is_some()),
        (
            phase::PARAMETERS,
            !removable_parameters(ctx, observed).is_empty(),
        ),
        (
            phase::INSTANCE_PROFILE,
            observed.profile.as_ref().is_some_and(|p| p.owned),
        ),
        (
            phase::IAM_ROLE,
            observed.role.as_ref().is_some_and(|r| r.owned),
        ),
        (
            phase::SMTP_USER,
            observed
                .email
                .credentials
                .user
                .as_ref()
                .is_some_and(|u| u.owned),
        ),
        (
            phase::EMAIL_IDENTITY,
            options.delete_email_identity
                && ctx.settings.email.is_some()
                && observed.email.identity().is_some()
                && observed.email_identity_keep.is_none(),
        ),
    ];
    steps
        .into_iter()
        .filter(|(_, happens)| *happens)
        .map(|(name, _)| name)
        .collect()
}

pub async fn down(ctx: &Ctx<'_>, observed: &Observed, options: DownOptions) -> Result<DownOutcome> {
    let mut outcome = DownOutcome::default();
    // The name first: it must not point at an address AWS may hand to
    // someone else once released.
    if let Some(record) = &observed.dns_record {
        ctx.ui.phase(phase::DNS_RECORD);
        if dns_record::delete(ctx, record).await? {
            outcome.removed.push(record.host.clone());
        }
    }
    ctx.ui.phase(phase::ELASTIC_IP);
    for address in &observed.addresses {
        elastic_ip::release(ctx, address).await?;
        outcome.removed.push(address.allocation_id.clone());
    }
    ctx.ui.phase(phase::INSTANCE);
    for live in observed.live_instances() {
        instance::terminate(ctx, &live.id).await?;
        outcome.removed.push(live.id.clone());
    }
    for volume in &observed.data_volumes {
        if options.delete_data {
            ctx.ui.phase(phase::DATA_VOLUME);
            outcome
                .snapshots
                .extend(data_volume::delete(ctx, volume, options.snapshot).await?);
            outcome.removed.push(volume.id.clone());
        } else {
            outcome.kept_volumes.push(volume.id.clone());
        }
    }
    if let Some(key) = &observed.key_pair {
        ctx.ui.phase(phase::KEY_PAIR);
        key_pair::delete(ctx).await?;
        outcome.removed.push(key.id.clone());
    }
    if let Some(group) = &observed.security_group {
        ctx.ui.phase(phase::SECURITY_GROUP);
        delete_group_when_free(ctx, group).await?;
        outcome.removed.push(group.id.clone());
    }
    let parameters = removable_parameters(ctx, observed);
    if !parameters.is_empty() {
        ctx.ui.phase(phase::PARAMETERS);
        crate::resources::parameters::delete(ctx, &parameters).await?;
        outcome.removed.extend(parameters);
    }
    if let Some(profile) = observed.profile.as_ref().filter(|p| p.owned) {
        ctx.ui.phase(phase::INSTANCE_PROFILE);
        iam::delete_profile(ctx, profile).await?;
        outcome.removed.push(profile.name.clone());
    }
    if let Some(role) = observed.role.as_ref().filter(|r| r.owned) {
        ctx.ui.phase(phase::IAM_ROLE);
        iam::delete_role(ctx, role).await?;
        outcome.removed.push(role.name.clone());
    }
    if let Some(user) = observed.email.credentials.user.as_ref().filter(|u| u.owned) {
        ctx.ui.phase(phase::SMTP_USER);
        crate::email::credentials::delete_user(ctx, &user.name).await?;
        outcome.removed.push(user.name.clone());
    }
    if let (Some(email), Some(_)) = (&ctx.settings.email, observed.email.identity()) {
        if let (true, Some(reason)) = (options.delete_email_identity, &observed.email_identity_keep)
        {
            ctx.ui.warn(reason);
            outcome.kept_identity = Some(email.domain.clone());
        } else if options.delete_email_identity {
            ctx.ui.phase(phase::EMAIL_IDENTITY);
            if let Some(zone) = &observed.email.zone {
                crate::email::dns::delete(ctx, &observed.email.records(), zone).await?;
            }
            crate::email::identity::delete(ctx, email).await?;
            let record = crate::ownership::email_identity_id(&email.ses_region, &email.domain);
            crate::ownership::forget(
                ctx,
                vec![crate::ownership::record_name(&ctx.names, &record)],
            )
            .await?;
            outcome.removed.push(email.domain.clone());
        } else {
            outcome.kept_identity = Some(email.domain.clone());
        }
    }
    Ok(outcome)
}

/// With `--delete-email-identity`: why the SES identity must stay, if it
/// must. glbox deletes only an identity it made (its record says so) and
/// that no other glbox deployment uses (their markers say so).
pub async fn decide_email_identity(
    ctx: &Ctx<'_>,
    observed: &mut Observed,
    options: DownOptions,
) -> Result<()> {
    let Some(email) = ctx.settings.email.as_ref() else {
        return Ok(());
    };
    if !options.delete_email_identity || observed.email.identity().is_none() {
        return Ok(());
    }
    let record = crate::ownership::email_identity_id(&email.ses_region, &email.domain);
    observed.email_identity_keep = if !observed.ledger.holds(&record) {
        Some(format!(
            "kept the SES identity {} in {}: glbox did not create it for {} (no record {}), so it may be someone else's; delete it yourself if it is not",
            email.domain,
            email.ses_region,
            ctx.settings.name,
            crate::ownership::record_name(&ctx.names, &record)
        ))
    } else {
        let others =
            crate::ownership::other_email_users(ctx, &email.ses_region, &email.domain).await?;
        (!others.is_empty()).then(|| {
            format!(
                "kept the SES identity {} in {}: other glbox deployments still send as it ({})",
                email.domain,
                email.ses_region,
                others.join(", ")
            )
        })
    };
    Ok(())
}

/// The parameters `down` deletes: all under the deployment's prefix but
/// the lease (released when `down` ends) and the ownership ledger. Deleting
/// a volume or an address removes its own record; the records of kept
/// volumes stay, so the next `up` knows them as glbox's. An open volume
/// intent stays too: the next create finishes it.
fn removable_parameters(ctx: &Ctx<'_>, observed: &Observed) -> Vec<String> {
    let lease = crate::lease::parameter_name(&ctx.names);
    let address_intent = crate::ownership::intent_name(&ctx.names, crate::ownership::Kind::Address);
    observed
        .parameters
        .iter()
        .filter(|p| **p != lease)
        .filter(|p| !crate::ownership::is_ledger_parameter(&ctx.names, p) || **p == address_intent)
        .cloned()
        .collect()
}

pub async fn delete_group_when_free(
    ctx: &Ctx<'_>,
    group: &security_group::SecurityGroup,
) -> Result<()> {
    let what = format!("security group {} to be released by its instance", group.id);
    wait::until(ctx.ui, &what, GROUP_RELEASE_WAIT, || async {
        match security_group::delete(ctx, group).await {
            Ok(()) => Ok(Poll::Ready(())),
            Err(crate::error::Error::Aws(e))
                if e.code.as_deref() == Some("DependencyViolation") =>
            {
                Ok(Poll::Pending("still in use".into()))
            }
            Err(e) => Err(e),
        }
    })
    .await
}
