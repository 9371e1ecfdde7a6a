//! `glbox down`: removes everything the deployment owns, in dependency
//! order, waiting where AWS needs it. Only resources carrying the
//! deployment's tags are touched. The data volume is kept unless asked.
//! The preview, the phases and the removals all come from the steps'
//! removals, in `DOWN_ORDER`.

use std::time::Duration;

use serde::Serialize;

use super::plan::Observed;
use super::{in_order, steps_of, Part, DOWN_ORDER};
use crate::error::Result;
use crate::resources::{security_group, Ctx};
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
    /// Also delete the backup bucket (every version in it) and the
    /// deployment's snapshots.
    pub delete_backups: bool,
}

/// One thing `down` removes or keeps.
#[derive(Debug, Clone, Serialize)]
pub struct DownItem {
    pub resource: &'static str,
    pub id: String,
    pub action: &'static str,
}

impl DownItem {
    pub fn new(resource: &'static str, id: &str, action: &'static str) -> Self {
        DownItem {
            resource,
            id: id.to_string(),
            action,
        }
    }
}

/// The preview of `down`: what each step removes or keeps.
pub fn items(ctx: &Ctx<'_>, observed: &Observed, options: DownOptions) -> Vec<DownItem> {
    let mut items = Vec::new();
    for group in DOWN_ORDER {
        for step in steps_of(group, true) {
            items.extend(step.component.down_items(ctx, observed, options));
        }
        // What carries the tags without being glbox's is listed after the
        // deployment's own stored state.
        if *group == [Part::Stored] {
            items.extend(foreign_items(observed));
        }
    }
    items
}

fn foreign_items(observed: &Observed) -> impl Iterator<Item = DownItem> + '_ {
    observed
        .foreign
        .iter()
        .map(|note| DownItem::new("not glbox's", note, "skip: left alone"))
}

/// What `down` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DownOutcome {
    pub removed: Vec<String>,
    pub kept_volumes: Vec<String>,
    /// Data volumes a restore swapped out: always kept.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replaced_volumes: Vec<String>,
    /// The secrets of `gitlab.extra_config`, kept with the data volume.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept_secrets: Vec<String>,
    pub snapshots: Vec<String>,
    /// The SES identity, kept because it may be shared.
    pub kept_identity: Option<String>,
    /// The backup bucket, kept (without `--delete-backups`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_bucket: Option<KeptBucket>,
    /// The deployment's snapshots, kept (without `--delete-backups`).
    pub kept_snapshots: Vec<crate::resources::backup::snapshots::Snapshot>,
}

/// The backup bucket `down` kept, and how much it holds.
#[derive(Debug, Clone, Serialize)]
pub struct KeptBucket {
    pub name: String,
    pub bytes: u64,
}

impl DownOutcome {
    pub fn removed(ids: Vec<String>) -> Self {
        DownOutcome {
            removed: ids,
            ..DownOutcome::default()
        }
    }

    fn add(&mut self, other: DownOutcome) {
        self.removed.extend(other.removed);
        self.kept_volumes.extend(other.kept_volumes);
        self.replaced_volumes.extend(other.replaced_volumes);
        self.kept_secrets.extend(other.kept_secrets);
        self.snapshots.extend(other.snapshots);
        self.kept_identity = self.kept_identity.take().or(other.kept_identity);
        self.kept_bucket = self.kept_bucket.take().or(other.kept_bucket);
        self.kept_snapshots.extend(other.kept_snapshots);
    }
}

/// The phases `down` goes through for what exists, in its order.
pub fn phases(ctx: &Ctx<'_>, observed: &Observed, options: DownOptions) -> Vec<&'static str> {
    in_order(DOWN_ORDER, true)
        .flat_map(|step| step.component.removals(ctx, observed, options))
        .filter_map(|removal| removal.phase)
        .collect()
}

pub async fn down(ctx: &Ctx<'_>, observed: &Observed, options: DownOptions) -> Result<DownOutcome> {
    let mut outcome = DownOutcome::default();
    for step in in_order(DOWN_ORDER, true) {
        for removal in step.component.removals(ctx, observed, options) {
            if let Some(phase) = removal.phase {
                ctx.ui.phase(phase);
            }
            outcome.add(removal.work.await?);
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
/// intent stays too: the next create finishes it. The secrets of
/// `gitlab.extra_config` belong with the data: kept with it, deleted with
/// `--delete-data`.
pub(super) fn removable_parameters(
    ctx: &Ctx<'_>,
    observed: &Observed,
    options: DownOptions,
) -> Vec<String> {
    let lease = crate::lease::parameter_name(&ctx.names);
    let address_intent = crate::ownership::intent_name(&ctx.names, crate::ownership::Kind::Address);
    observed
        .parameters
        .iter()
        .filter(|p| **p != lease)
        .filter(|p| !crate::ownership::is_ledger_parameter(&ctx.names, p) || **p == address_intent)
        .filter(|p| options.delete_data || !is_secret(ctx, p))
        .cloned()
        .collect()
}

/// The secrets `down` keeps with the data volume.
pub(super) fn kept_secrets(
    ctx: &Ctx<'_>,
    observed: &Observed,
    options: DownOptions,
) -> Vec<String> {
    match options.delete_data {
        true => Vec::new(),
        false => observed
            .parameters
            .iter()
            .filter(|p| is_secret(ctx, p))
            .cloned()
            .collect(),
    }
}

fn is_secret(ctx: &Ctx<'_>, parameter: &str) -> bool {
    parameter.starts_with(&crate::secrets::path(&ctx.names))
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
