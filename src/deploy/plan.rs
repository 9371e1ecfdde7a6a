//! Observe what the deployment has in AWS (by tags, every run: AWS is the
//! state) and compare it with the settings. Only read-only calls happen
//! here; a plan with nothing to do is what makes a repeated `up` free.

use serde::Serialize;
use serde_json::Value;

use super::diff;
use crate::error::Result;
use crate::ownership::{self, AddressIntent, Kind, Ledger};
use crate::resources::backup::{bucket, schedule, snapshots};
use crate::resources::data_volume::{self, Volume};
use crate::resources::elastic_ip::{self, Address, EipPlan};
use crate::resources::iam::{self, ProfileChange, ProfileState, RoleChange, RoleState};
use crate::resources::instance::{self, Instance, InstancePlan};
use crate::resources::key_pair::{self, KeyPair};
use crate::resources::placement::Placement;
use crate::resources::security_group::{self, SecurityGroup};
use crate::resources::{Action, Ctx, PlanItem};

/// Everything of the deployment that AWS reports.
#[derive(Debug, Clone)]
pub struct Observed {
    pub security_group: Option<SecurityGroup>,
    pub role: Option<RoleState>,
    pub profile: Option<ProfileState>,
    pub key_pair: Option<KeyPair>,
    /// Terminated instances included (AWS lists them for about an hour).
    pub instances: Vec<Instance>,
    pub data_volumes: Vec<Volume>,
    /// Data volumes a restore swapped out: kept, never used or deleted.
    pub replaced_volumes: Vec<Volume>,
    pub addresses: Vec<Address>,
    /// Names of the SSM parameters under `/glbox/<name>/`.
    pub parameters: Vec<String>,
    pub email: crate::email::Observed,
    /// The external URL's record in `dns.route53_zone_id`, with a zone.
    pub dns_record: Option<crate::resources::dns_record::Observed>,
    /// The account glbox works in (the backup bucket's name depends on it).
    pub account: String,
    /// The bucket of glbox's backup name, whether S3 backups are on or not.
    pub backup_bucket: Option<bucket::Bucket>,
    /// The snapshot schedule and its role, whether snapshots are on or not.
    pub snapshot_schedule: schedule::Observed,
    /// glbox's snapshots of the deployment's data volumes, newest first.
    pub snapshots: Vec<snapshots::Snapshot>,
    /// Snapshots with the deployment's tags whose volume glbox's ledger
    /// does not record: never deleted.
    pub unproven_snapshots: Vec<snapshots::Snapshot>,
    /// Live instances, volumes and addresses that carry the deployment's
    /// tags without the evidence that glbox made them (see `ownership`):
    /// left alone, and said why. `instances`, `data_volumes` and
    /// `addresses` hold only glbox's own.
    pub foreign: Vec<String>,
    /// Every address with the deployment's tags, glbox's or not.
    pub tagged_addresses: Vec<String>,
    /// glbox's addresses an interrupted allocation did not record.
    pub unrecorded_addresses: Vec<String>,
    pub ledger: Ledger,
    /// Why `down --delete-email-identity` must keep the SES identity
    /// (glbox did not make it, or another deployment uses it); filled in
    /// by `down` only, `None` otherwise.
    pub email_identity_keep: Option<String>,
}

impl Observed {
    pub fn live_instances(&self) -> Vec<Instance> {
        instance::live(&self.instances)
    }
}

/// Reads the deployment's resources, all lookups at once.
pub async fn observe(ctx: &Ctx<'_>) -> Result<Observed> {
    let account = iam::caller_account(ctx).await?;
    let policy = iam::role_policies_with(ctx, wanted_bucket(ctx, &account).as_deref());
    let (
        security_group,
        role,
        profile,
        key_pair,
        instances,
        data_volumes,
        addresses,
        parameters,
        email,
        dns_record,
        snapshot_schedule,
    ) = tokio::try_join!(
        security_group::observe(ctx),
        iam::observe_role(ctx, &policy),
        iam::observe_profile(ctx),
        key_pair::observe(ctx),
        instance::observe(ctx),
        data_volume::observe(ctx),
        elastic_ip::describe_tagged(ctx),
        crate::resources::parameters::observe(ctx),
        crate::email::observe(ctx),
        crate::resources::dns_record::observe(ctx),
        schedule::observe(ctx),
    )?;
    let ledger = Ledger::from_parameters(&ctx.names, &parameters);
    let bucket_name = ctx.names.backup_bucket(&account);
    let keep_days = ctx.settings.backup.s3.map(|s3| s3.keep_days);
    let (backup_bucket, (snapshots, unproven_snapshots)) = tokio::try_join!(
        bucket::observe(ctx, &account, ledger.holds(&bucket_name), keep_days),
        snapshots::observe(ctx, &ledger),
    )?;
    let (instances, foreign_instances) =
        ownership::split(&instances, |i| ownership::owns_instance(&ctx.names, i));
    let (data_volumes, replaced_volumes) = data_volumes;
    let (data_volumes, foreign_volumes) = ownership::split(&data_volumes, |v| ledger.holds(&v.id));
    // A volume a restore swapped out is kept whoever looks: only glbox's
    // own (in the ledger) are reported.
    let replaced_volumes = ownership::split(&replaced_volumes, |v| ledger.holds(&v.id)).0;
    let address_intent = match ledger.is_open(Kind::Address) {
        true => ownership::read_intent::<AddressIntent>(ctx, Kind::Address).await?,
        false => None,
    };
    let tagged_addresses: Vec<String> = addresses.iter().map(|a| a.allocation_id.clone()).collect();
    // While an allocation's intent is open, an address that was not there
    // before it is the one the interrupted run made.
    let made_meanwhile = |id: &str| {
        address_intent
            .as_ref()
            .is_some_and(|intent| !intent.existing.contains(id))
    };
    let (addresses, foreign_addresses) = ownership::split(&addresses, |a| {
        ledger.holds(&a.allocation_id) || made_meanwhile(&a.allocation_id)
    });
    let unrecorded_addresses = addresses
        .iter()
        .filter(|a| !ledger.holds(&a.allocation_id))
        .map(|a| a.allocation_id.clone())
        .collect();
    let mut foreign: Vec<String> = instance::live(&foreign_instances)
        .iter()
        .map(|i| ownership::foreign_instance_note(&ctx.names, &i.id))
        .collect();
    foreign.extend(
        foreign_volumes
            .iter()
            .map(|v| ownership::foreign_note(&ctx.names, "data volume", &v.id)),
    );
    foreign.extend(foreign_addresses.iter().map(|a| {
        ownership::foreign_note(
            &ctx.names,
            "Elastic IP",
            &format!("{} ({})", a.allocation_id, a.public_ip),
        )
    }));
    Ok(Observed {
        security_group,
        role,
        profile,
        key_pair,
        instances,
        data_volumes,
        replaced_volumes,
        addresses,
        parameters,
        email,
        dns_record,
        account,
        backup_bucket,
        snapshot_schedule,
        snapshots,
        unproven_snapshots,
        foreign,
        tagged_addresses,
        unrecorded_addresses,
        ledger,
        email_identity_keep: None,
    })
}

/// The backup bucket's name when S3 backups are on (the instance role may
/// then write its backup objects).
pub fn wanted_bucket(ctx: &Ctx<'_>, account: &str) -> Option<String> {
    ctx.settings
        .backup
        .s3
        .map(|_| ctx.names.backup_bucket(account))
}

/// Names what carries the deployment's tags but is not glbox's.
pub fn warn_foreign(ctx: &Ctx<'_>, observed: &Observed) {
    for note in &observed.foreign {
        ctx.ui.warn(note);
    }
}

/// What `up` will do, resource by resource.
#[derive(Debug, Clone)]
pub struct Plan {
    pub placement: Placement,
    pub security_group: security_group::Change,
    pub role: RoleChange,
    pub profile: ProfileChange,
    /// The instance role's inline policies, by name.
    pub policy: std::collections::BTreeMap<String, Value>,
    pub key_pair: key_pair::Change,
    pub instance: InstancePlan,
    pub data_volume: data_volume::Change,
    /// Other data volumes of the deployment: reported, never touched.
    pub extra_volumes: Vec<Volume>,
    pub elastic_ip: EipPlan,
    pub dns_record: crate::resources::dns_record::Change,
    pub backup_bucket: bucket::Change,
    pub snapshot_schedule: schedule::Change,
    /// The account (the DLM role's ARN names it).
    pub account: String,
    /// The Elastic IP the plan keeps, when it exists already.
    pub kept_address: Option<String>,
    pub root_password: crate::resources::parameters::Change,
    pub email: crate::email::Plan,
    /// Whether the SMTP password parameter exists (it is then overwritten,
    /// not created).
    pub smtp_password_stored: bool,
    /// `None` with `--no-bootstrap`.
    pub bootstrap: Option<crate::bootstrap::Change>,
    /// The marker that this deployment uses its SES identity (see
    /// `ownership::email_use_name`), when it is still to be written.
    pub email_use: Option<String>,
}

/// The plan as data (`--output json`) and the source of the text table.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    pub deployment: String,
    pub region: String,
    pub changes: bool,
    pub resources: Vec<PlanItem>,
}

impl Plan {
    /// The plan's lines, step by step.
    pub fn items(&self, ctx: &Ctx<'_>, observed: &Observed) -> Vec<PlanItem> {
        super::in_order(super::PLAN_ORDER, false)
            .flat_map(|step| step.component.items(ctx, self, observed))
            .collect()
    }

    pub fn report(&self, ctx: &Ctx<'_>, observed: &Observed) -> PlanReport {
        let resources = self.items(ctx, observed);
        PlanReport {
            deployment: ctx.settings.name.clone(),
            region: ctx.settings.region.clone(),
            changes: resources.iter().any(|i| i.action != Action::NoChange),
            resources,
        }
    }

    pub fn is_noop(&self) -> bool {
        super::STEPS.iter().all(|step| step.component.is_noop(self))
    }
}

/// Compares what is there with the settings: first the lookups a launch
/// or a change needs (the type's architectures, the zone, the image), then
/// the diff, which needs no AWS, then the data volume's modification
/// cooldown, when the diff modifies the volume.
pub async fn make(ctx: &Ctx<'_>, observed: &Observed, with_bootstrap: bool) -> Result<Plan> {
    let basis = diff::Basis::of(ctx, observed)?;
    let lookups = diff::lookup(ctx, observed, &basis).await?;
    let mut plan = diff::diff(ctx, observed, basis, lookups, with_bootstrap)?;
    plan.data_volume = data_volume::with_cooldown(ctx, plan.data_volume).await?;
    Ok(plan)
}
