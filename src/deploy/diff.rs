//! The plan's two halves: the lookups (the AWS reads a plan needs besides
//! the deployment itself: the type's architectures, the placement, the
//! image) and the diff, which needs no AWS and so is unit-tested for whole
//! plans.

use crate::error::{Error, Result};
use crate::ownership::{self, Kind};
use crate::resources::data_volume::{self, Volume};
use crate::resources::elastic_ip::{self, Address, EipPlan};
use crate::resources::iam;
use crate::resources::image::LaunchSpec;
use crate::resources::instance::{self, Instance, InstancePlan};
use crate::resources::key_pair;
use crate::resources::placement::{self, Placement};
use crate::resources::security_group::{self, SecurityGroup};
use crate::resources::Ctx;

use super::plan::{Observed, Plan};

/// What the plan is built around, read from the deployment alone: the
/// instance that is the deployment's, its data volume, and what becomes of
/// the instance.
#[derive(Debug, Clone)]
pub struct Basis {
    pub primary: Option<Instance>,
    pub duplicates: Vec<Instance>,
    pub chosen_volume: Option<Volume>,
    /// Other data volumes of the deployment: reported, never touched.
    pub extra_volumes: Vec<Volume>,
    pub instance_change: instance::Change,
}

impl Basis {
    /// Refuses what glbox must not touch (IAM that is not its own, a data
    /// volume on another instance), then picks the instance and volume.
    pub fn of(ctx: &Ctx<'_>, observed: &Observed) -> Result<Basis> {
        refuse_foreign_iam(observed)?;
        let volume_holder = check_volume_holders(observed)?;
        let (primary, duplicates) =
            instance::pick_primary(observed.live_instances(), volume_holder.as_deref());
        let (chosen_volume, extra_volumes) = data_volume::pick(
            &observed.data_volumes,
            primary.as_ref().map(|i| i.id.as_str()),
        );
        let instance_change = instance::diff(
            ctx.settings,
            &ctx.names.base(),
            observed.security_group.as_ref().map(|g| g.id.as_str()),
            primary.as_ref(),
        );
        Ok(Basis {
            primary,
            duplicates,
            chosen_volume,
            extra_volumes,
            instance_change,
        })
    }

    /// The instance the volume and address must end up on; none yet when
    /// a new instance will be launched.
    fn target(&self) -> Option<&str> {
        match &self.instance_change {
            instance::Change::Update { id, .. } | instance::Change::NoChange { id } => {
                Some(id.as_str())
            }
            instance::Change::Create | instance::Change::Replace { .. } => None,
        }
    }
}

/// The AWS reads the diff needs.
#[derive(Debug, Clone)]
pub struct Lookups {
    pub placement: Placement,
    /// The image and placement of the instance to launch, when one is due.
    pub launch: Option<LaunchSpec>,
    /// The backup bucket GitLab uploads to (`backup.s3` on): part of the
    /// bootstrap script, so of its digest.
    pub backup_bucket: Option<String>,
}

pub async fn lookup(ctx: &Ctx<'_>, observed: &Observed, basis: &Basis) -> Result<Lookups> {
    // A launch is likely: check the type exists before looking for a zone
    // that offers it, so a typo gets the right error.
    let type_archs = match basis.primary {
        None => Some(
            crate::resources::image::type_architectures(ctx, &ctx.settings.instance_type).await?,
        ),
        Some(_) => None,
    };
    let placement = placement::resolve(
        ctx,
        basis.primary.as_ref().map(Instance::placement),
        basis
            .chosen_volume
            .as_ref()
            .map(|v| v.availability_zone.as_str()),
    )
    .await?;
    check_placement(
        &placement,
        basis.chosen_volume.as_ref(),
        observed.security_group.as_ref(),
    )?;
    let launch = match &basis.instance_change {
        instance::Change::Create | instance::Change::Replace { .. } => Some(
            crate::resources::image::resolve_launch(
                ctx,
                &placement,
                observed.instances.iter().map(|i| i.id.clone()).collect(),
                type_archs,
            )
            .await?,
        ),
        instance::Change::Update { update, .. } => {
            if let Some((from, to)) = &update.new_type {
                check_type_change(ctx, from, to).await?;
            }
            None
        }
        instance::Change::NoChange { .. } => None,
    };
    // The observe read the account already.
    let backup_bucket = super::plan::wanted_bucket(ctx, &observed.account);
    Ok(Lookups {
        placement,
        launch,
        backup_bucket,
    })
}

/// The plan, from what is there and the lookups; no AWS call.
pub fn diff(
    ctx: &Ctx<'_>,
    observed: &Observed,
    basis: Basis,
    lookups: Lookups,
    with_bootstrap: bool,
) -> Result<Plan> {
    let target = basis.target();
    let mut eip_plan = elastic_ip::diff(ctx.settings.elastic_ip, &observed.addresses, target);
    eip_plan.tagged = observed.tagged_addresses.clone();
    eip_plan.record = observed.unrecorded_addresses.clone();
    // An open intent with nothing left to record is stale: closed, since
    // while it is open any newly tagged address would count as glbox's.
    eip_plan.close_intent = observed.ledger.is_open(Kind::Address);
    let address = kept_address(&eip_plan, &observed.addresses);
    let dns_record =
        crate::resources::dns_record::diff(ctx, observed.dns_record.as_ref(), address)?;
    let smtp_password_stored = observed
        .parameters
        .contains(&crate::email::credentials::password_parameter(ctx));
    let email = crate::email::diff(ctx, &observed.email, smtp_password_stored, with_bootstrap)?;
    let bootstrap = with_bootstrap
        .then(|| {
            bootstrap_diff(
                ctx,
                observed,
                &basis,
                &eip_plan,
                &email,
                lookups.backup_bucket.clone(),
            )
        })
        .transpose()?;
    let email_use = ctx
        .settings
        .email
        .as_ref()
        .map(|e| ownership::email_use_name(&ctx.names, &e.ses_region, &e.domain))
        .filter(|marker| !observed.parameters.contains(marker));
    let data_volume = data_volume::diff(
        &ctx.settings.data_volume,
        basis.chosen_volume.as_ref(),
        target,
        observed.ledger.is_open(Kind::Volume),
    )?;
    Ok(Plan {
        email_use,
        root_password: crate::resources::parameters::diff(ctx, &observed.parameters),
        email,
        smtp_password_stored,
        bootstrap,
        security_group: security_group::diff(ctx.settings, observed.security_group.as_ref()),
        role: iam::diff_role(observed.role.as_ref()),
        profile: iam::diff_profile(&ctx.names.iam_name(), observed.profile.as_ref()),
        policy: iam::role_policies_with(
            ctx,
            super::plan::wanted_bucket(ctx, &observed.account).as_deref(),
        ),
        backup_bucket: crate::resources::backup::bucket::diff(
            ctx.settings.backup.s3.is_some(),
            &ctx.names.backup_bucket(&observed.account),
            observed.backup_bucket.as_ref(),
        )?,
        snapshot_schedule: crate::resources::backup::schedule::diff(
            crate::resources::backup::schedule::wanted(&ctx.names, &ctx.settings.backup).as_ref(),
            &observed.snapshot_schedule,
        )?,
        account: observed.account.clone(),
        key_pair: key_pair::diff(
            key_pair::desired_key(ctx.settings),
            observed.key_pair.as_ref(),
        ),
        data_volume,
        extra_volumes: basis.extra_volumes,
        elastic_ip: eip_plan,
        dns_record,
        kept_address: address.map(str::to_string),
        instance: InstancePlan {
            change: basis.instance_change,
            launch: lookups.launch,
            duplicates: basis.duplicates,
        },
        placement: lookups.placement,
    })
}

/// GitLab's install: compared with what the staying instance has, by the
/// script it would get (unknown while a new SMTP key is still to be made),
/// with the path of a raised version; a lower version is refused.
fn bootstrap_diff(
    ctx: &Ctx<'_>,
    observed: &Observed,
    basis: &Basis,
    eip_plan: &EipPlan,
    email: &crate::email::Plan,
    backup_bucket: Option<String>,
) -> Result<crate::bootstrap::Change> {
    // The SMTP user the box will get, when it is known before applying.
    let smtp_username = smtp_username_after(email, &observed.email);
    let staying = basis.target().and(basis.primary.as_ref());
    // A downgrade is refused even when the instance will be replaced: the
    // new one gets the same data.
    let upgrade = basis
        .primary
        .as_ref()
        .map(|instance| crate::resources::upgrade::of(ctx.settings, instance))
        .transpose()?
        .flatten()
        .filter(|_| staying.is_some());
    let change = crate::bootstrap::diff(staying.map(|instance| {
        let script = basis.chosen_volume.as_ref().and_then(|volume| {
            let smtp_username = match &smtp_username {
                SmtpUsername::Unknown => return None,
                SmtpUsername::Known(name) => name.as_deref(),
            };
            let address = kept_address(eip_plan, &observed.addresses);
            let url = crate::endpoint::gitlab_url(
                ctx.settings,
                address,
                instance.public_dns.as_deref(),
                instance.public_ip.as_deref(),
            )?;
            Some(
                crate::endpoint::Script::new(ctx, &volume.id, &url, smtp_username)
                    .with_backups_to(backup_bucket.clone())
                    .render(ctx.settings),
            )
        });
        (instance, script)
    }));
    Ok(change.with_upgrade(upgrade))
}

enum SmtpUsername {
    /// `None` with email off.
    Known(Option<String>),
    /// A new access key will be made.
    Unknown,
}

fn smtp_username_after(
    plan: &crate::email::Plan,
    observed: &crate::email::Observed,
) -> SmtpUsername {
    use crate::email::credentials::Change;
    match &plan.credentials {
        Change::Absent | Change::Delete { .. } => SmtpUsername::Known(None),
        Change::NoChange { access_key_id } => SmtpUsername::Known(Some(access_key_id.clone())),
        Change::Converge(steps) if steps.new_key => SmtpUsername::Unknown,
        Change::Converge(_) => SmtpUsername::Known(
            observed
                .credentials
                .current
                .as_ref()
                .map(|c| c.access_key_id.clone()),
        ),
    }
}

/// The public IP of the Elastic IP the plan keeps (what `up` will use for
/// GitLab's URL), if one already exists.
fn kept_address<'a>(plan: &EipPlan, addresses: &'a [Address]) -> Option<&'a str> {
    let kept = match &plan.change {
        elastic_ip::Change::NoChange { allocation_id }
        | elastic_ip::Change::Associate { allocation_id } => allocation_id,
        elastic_ip::Change::Create | elastic_ip::Change::Absent => return None,
    };
    addresses
        .iter()
        .find(|a| &a.allocation_id == kept)
        .map(|a| a.public_ip.as_str())
}

fn refuse_foreign_iam(observed: &Observed) -> Result<()> {
    if let Some(role) = observed.role.as_ref().filter(|r| !r.owned) {
        return Err(iam::foreign("role", &role.name));
    }
    if let Some(profile) = observed.profile.as_ref().filter(|p| !p.owned) {
        return Err(iam::foreign("instance profile", &profile.name));
    }
    Ok(())
}

/// A data volume may only hang off one of the deployment's own instances.
/// Returns the live instance holding one, if any.
fn check_volume_holders(observed: &Observed) -> Result<Option<String>> {
    let ours = |id: &str| observed.instances.iter().any(|i| i.id == id);
    for volume in &observed.data_volumes {
        if let Some(holder) = volume.attached_to.as_deref().filter(|h| !ours(h)) {
            return Err(Error::Refused(format!(
                "data volume {} is attached to {holder}, which is not this deployment's instance\n  fix: detach it from {holder} (after stopping what uses it), then re-run",
                volume.id
            )));
        }
    }
    let live = observed.live_instances();
    Ok(observed
        .data_volumes
        .iter()
        .filter_map(|v| v.attached_to.clone())
        .find(|holder| live.iter().any(|i| i.id == *holder)))
}

fn check_placement(
    placement: &Placement,
    volume: Option<&Volume>,
    group: Option<&SecurityGroup>,
) -> Result<()> {
    if let Some(volume) = volume.filter(|v| v.availability_zone != placement.availability_zone) {
        return Err(Error::Refused(format!(
            "the data volume {} is in {}, but subnet {} is in {}: EBS volumes cannot move between zones\n  fix: choose a subnet in {}, or move the data yourself (snapshot, then a volume from it in the new zone)",
            volume.id, volume.availability_zone, placement.subnet_id, placement.availability_zone, volume.availability_zone
        )));
    }
    if let Some(group) = group.filter(|g| g.vpc_id != placement.vpc_id) {
        return Err(Error::Refused(format!(
            "the deployment's security group {} is in {}, but subnet {} is in {}: glbox does not move a deployment between VPCs\n  fix: choose a subnet in {}, or `glbox down` first (it keeps the data volume)",
            group.id, group.vpc_id, placement.subnet_id, placement.vpc_id, group.vpc_id
        )));
    }
    Ok(())
}

async fn check_type_change(ctx: &Ctx<'_>, from: &str, to: &str) -> Result<()> {
    let (old, new) = tokio::try_join!(
        crate::resources::image::type_architectures(ctx, from),
        crate::resources::image::type_architectures(ctx, to)
    )?;
    if !new.iter().any(|a| old.contains(a)) {
        return Err(Error::Refused(format!(
            "instance.type {to} runs {}, but the instance's current type {from} runs {}, and its image with it: an architecture change needs a new instance\n  fix: keep a {} type, or `glbox down` and `up` with the new type (the data volume is kept)",
            new.join("/"),
            old.join("/"),
            old.join("/")
        )));
    }
    Ok(())
}
