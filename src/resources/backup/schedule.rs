//! The snapshot schedule: an Amazon Data Lifecycle Manager policy that
//! snapshots the data volume `daily` or `hourly` from `backup.time` (UTC),
//! keeps `snapshot_keep` of them, tags each with the deployment, and
//! optionally copies each to `copy_to_region` (encrypted, kept as long),
//! plus the IAM role DLM acts as.
//!
//! DLM rather than AWS Backup: a DLM policy is one resource (AWS Backup
//! needs a vault, a plan and a selection), costs nothing beyond the
//! snapshots, and targets volumes by tag, which is how glbox finds its
//! volume anyway.
//!
//! DLM matches a volume carrying any one of a policy's target tags, so the
//! policy targets one tag that only this deployment's data volume carries:
//! its `Name` (`glbox-<name>-data`; a deployment's other volumes are named
//! `-root`). A policy is glbox's when it carries the deployment's tags
//! and acts as the deployment's own DLM role (passing a role to DLM takes
//! `iam:PassRole` on it, which tagging a policy cannot give).
//!
//! The role trusts only dlm.amazonaws.com, carries glbox's permissions
//! boundary, and holds one inline policy: the EBS part of the AWS managed
//! `AWSDataLifecycleManagerServiceRole`
//! (<https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSDataLifecycleManagerServiceRole.html>).
//! `down` deletes both (they cost nothing, but a schedule left behind
//! would go on snapshotting the kept data volume, and paying for it); the
//! snapshots it made stay with the backups.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dlm::types::{
    CreateRule, CrossRegionCopyRetainRule, CrossRegionCopyRule, IntervalUnitValues,
    LifecyclePolicy, PolicyDetails, PolicyTypeValues, ResourceTypeValues, RetainRule,
    RetentionIntervalUnitValues, Schedule, Tag,
};
use serde_json::{json, Value};

use crate::aws::dlm::{self, NewPolicy};
use crate::aws::iam::{roles, Attempt};
use crate::aws::partition;
use crate::config::BackupSettings;
use crate::error::{Error, Result};
use crate::names::{Names, Role, TAG_SNAPSHOT_REASON};
use crate::resources::{Action, Ctx, PlanItem};

/// The reason scheduled snapshots carry in `glbox:snapshot-reason`.
pub const SCHEDULED: &str = "scheduled";
pub const ROLE_POLICY_NAME: &str = "glbox-dlm-snapshots";
/// DLM's own name for the one schedule of glbox's policy.
const SCHEDULE_NAME: &str = "glbox data volume";

/// What EBS snapshotting needs of the AWSDataLifecycleManagerServiceRole
/// managed policy (its EventBridge and fast-restore parts serve features
/// glbox does not use).
pub const DLM_SNAPSHOT_ACTIONS: &[&str] = &[
    "ec2:CopySnapshot",
    "ec2:CreateSnapshot",
    "ec2:CreateSnapshots",
    "ec2:DeleteSnapshot",
    "ec2:DescribeInstances",
    "ec2:DescribeSnapshotAttribute",
    "ec2:DescribeSnapshots",
    "ec2:DescribeVolumes",
    "ec2:ModifySnapshotAttribute",
];

/// `glbox-<name>-<region>-dlm`.
pub fn role_name(names: &Names) -> String {
    format!("{}-dlm", names.iam_name())
}

pub fn role_arn(names: &Names, account: &str) -> String {
    format!(
        "arn:{}:iam::{account}:role{}{}",
        partition(&names.region),
        names.iam_path(),
        role_name(names)
    )
}

/// The one tag the schedule targets: the data volume's `Name`.
pub fn target_tag(names: &Names) -> (String, String) {
    ("Name".into(), names.name_of(Role::DataVolume))
}

pub fn trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "dlm.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
}

pub fn role_policy(region: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Snapshots",
                "Effect": "Allow",
                "Action": DLM_SNAPSHOT_ACTIONS,
                "Resource": "*"
            },
            {
                "Sid": "TagSnapshots",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": format!("arn:{}:ec2:*::snapshot/*", partition(region))
            }
        ]
    })
}

fn role_policies(region: &str) -> BTreeMap<String, Value> {
    BTreeMap::from([(ROLE_POLICY_NAME.to_string(), role_policy(region))])
}

/// The schedule's meaning, as glbox compares it: read back from DLM, or
/// wanted by the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub target: (String, String),
    pub interval_hours: i32,
    /// "HH:MM", UTC.
    pub time: String,
    pub keep: i32,
    /// The copy's region and how many days it is kept.
    pub copy: Option<(String, i32)>,
    /// Sorted.
    pub tags_to_add: Vec<(String, String)>,
}

/// What the settings want; `None` with snapshots off.
pub fn wanted(names: &Names, backup: &BackupSettings) -> Option<Spec> {
    let schedule = backup.snapshots?;
    let interval_hours = i32::try_from(schedule.interval_hours()).unwrap_or(24);
    let keep = i32::try_from(backup.snapshot_keep).unwrap_or(1000);
    let mut tags_to_add: Vec<(String, String)> = names.tag_pairs(Role::Snapshot);
    tags_to_add.push((TAG_SNAPSHOT_REASON.into(), SCHEDULED.into()));
    tags_to_add.sort();
    Some(Spec {
        target: target_tag(names),
        interval_hours,
        time: backup.time.to_string(),
        keep,
        copy: backup
            .copy_to_region
            .clone()
            .map(|region| (region, copy_days(interval_hours, keep))),
        tags_to_add,
    })
}

/// A copy's retention is a period, not a count: as long as the source
/// keeps its snapshots, rounded up to whole days.
fn copy_days(interval_hours: i32, keep: i32) -> i32 {
    (interval_hours * keep + 23) / 24
}

fn dlm_tag((key, value): &(String, String)) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// The policy details DLM takes for a spec.
pub fn details(spec: &Spec) -> PolicyDetails {
    let copy_rules = spec.copy.as_ref().map(|(region, days)| {
        vec![CrossRegionCopyRule::builder()
            .target_region(region)
            .encrypted(true)
            .copy_tags(true)
            .retain_rule(
                CrossRegionCopyRetainRule::builder()
                    .interval(*days)
                    .interval_unit(RetentionIntervalUnitValues::Days)
                    .build(),
            )
            .build()]
    });
    let schedule = Schedule::builder()
        .name(SCHEDULE_NAME)
        .copy_tags(false)
        .set_tags_to_add(Some(spec.tags_to_add.iter().map(dlm_tag).collect()))
        .create_rule(
            CreateRule::builder()
                .interval(spec.interval_hours)
                .interval_unit(IntervalUnitValues::Hours)
                .times(&spec.time)
                .build(),
        )
        .retain_rule(RetainRule::builder().count(spec.keep).build())
        .set_cross_region_copy_rules(copy_rules)
        .build();
    PolicyDetails::builder()
        .policy_type(PolicyTypeValues::EbsSnapshotManagement)
        .resource_types(ResourceTypeValues::Volume)
        .target_tags(dlm_tag(&spec.target))
        .schedules(schedule)
        .build()
}

/// The spec of details DLM reports; `None` when they are not of the one
/// shape glbox writes (another target, several schedules, a cron rule).
pub fn spec_of(details: &PolicyDetails) -> Option<Spec> {
    let [target] = details.target_tags() else {
        return None;
    };
    let [schedule] = details.schedules() else {
        return None;
    };
    if details.resource_types() != [ResourceTypeValues::Volume] {
        return None;
    }
    let create = schedule.create_rule()?;
    if create.interval_unit() != Some(&IntervalUnitValues::Hours) {
        return None;
    }
    let [time] = create.times() else {
        return None;
    };
    let copy = match schedule.cross_region_copy_rules() {
        [] => None,
        [rule] if rule.encrypted() == Some(true) => {
            let retain = rule.retain_rule()?;
            if retain.interval_unit() != Some(&RetentionIntervalUnitValues::Days) {
                return None;
            }
            Some((rule.target_region()?.to_string(), retain.interval()?))
        }
        _ => return None,
    };
    let mut tags_to_add: Vec<(String, String)> = schedule
        .tags_to_add()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().into(),
                t.value().unwrap_or_default().into(),
            )
        })
        .collect();
    tags_to_add.sort();
    Some(Spec {
        target: (
            target.key().unwrap_or_default().into(),
            target.value().unwrap_or_default().into(),
        ),
        interval_hours: create.interval()?,
        time: time.clone(),
        keep: schedule.retain_rule()?.count()?,
        copy,
        tags_to_add,
    })
}

/// One of the deployment's DLM policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub id: String,
    /// `None` when its details are not of glbox's shape.
    pub spec: Option<Spec>,
    pub enabled: bool,
    pub role_arn: String,
}

/// The DLM role as IAM reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlmRole {
    pub name: String,
    pub arn: String,
    /// Tagged as the deployment's; an untagged role of this name is
    /// someone else's and never touched.
    pub owned: bool,
    /// Trust, boundary and inline policy are glbox's.
    pub converged: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub role: Option<DlmRole>,
    /// glbox's policies targeting the data volume (one, unless a create
    /// whose answer was lost was sent twice).
    pub policies: Vec<Policy>,
}

/// Reads the role and the policies targeting the data volume's tag.
pub async fn observe(ctx: &Ctx<'_>) -> Result<Observed> {
    let (role, summaries) = tokio::try_join!(observe_role(ctx), async {
        let (key, value) = target_tag(&ctx.names);
        dlm::policies_targeting(&ctx.aws.dlm, &key, &value).await
    })?;
    let (owner_key, owner) = ctx.names.owner();
    let tagged = |tags: Option<&HashMap<String, String>>| {
        tags.is_some_and(|t| {
            t.get(owner_key).map(String::as_str) == Some(owner)
                && t.get(crate::names::TAG_MANAGED_BY).map(String::as_str)
                    == Some(crate::names::MANAGED_BY)
        })
    };
    let mut policies = Vec::new();
    for summary in summaries.iter().filter(|s| tagged(s.tags())) {
        let Some(id) = summary.policy_id() else {
            continue;
        };
        if let Some(policy) = dlm::policy(&ctx.aws.dlm, id).await? {
            policies.push(policy_of(id, &policy));
        }
    }
    // Only a policy acting as the deployment's own role is glbox's.
    let own_arn = role.as_ref().filter(|r| r.owned).map(|r| r.arn.clone());
    policies.retain(|p| Some(&p.role_arn) == own_arn.as_ref());
    Ok(Observed { role, policies })
}

fn policy_of(id: &str, policy: &LifecyclePolicy) -> Policy {
    Policy {
        id: id.to_string(),
        spec: policy.policy_details().and_then(spec_of),
        enabled: policy.state().map(|s| s.as_str()) == Some("ENABLED"),
        role_arn: policy.execution_role_arn().unwrap_or_default().to_string(),
    }
}

async fn observe_role(ctx: &Ctx<'_>) -> Result<Option<DlmRole>> {
    let name = role_name(&ctx.names);
    let Some(role) = roles::get_role(&ctx.aws.iam, &name).await? else {
        return Ok(None);
    };
    let arn = role.arn().to_string();
    if !ctx.names.owns_iam(role.tags()) {
        return Ok(Some(DlmRole {
            name,
            arn,
            owned: false,
            converged: false,
        }));
    }
    let trust_ok = role
        .assume_role_policy_document()
        .and_then(crate::aws::iam::parse_policy)
        == Some(trust_policy());
    let boundary = role
        .permissions_boundary()
        .and_then(|b| b.permissions_boundary_arn());
    let boundary_ok =
        boundary.is_some() && boundary == crate::resources::iam::boundary_arn_for(&arn).as_deref();
    let drift =
        roles::policy_drift(&ctx.aws.iam, &name, &role_policies(&ctx.settings.region)).await?;
    Ok(Some(DlmRole {
        name,
        arn,
        owned: true,
        converged: trust_ok && boundary_ok && drift.is_empty(),
    }))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleChange {
    Create,
    /// Trust, boundary and inline policy set again.
    Repair,
    NoChange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyChange {
    Create(Spec),
    Update { id: String, spec: Spec },
    NoChange,
}

/// What `up` does to the schedule: its role and its policy, and the
/// deployment's extra policies (deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub role: RoleChange,
    pub policy: PolicyChange,
    /// Policies to delete: duplicates, or all with snapshots off.
    pub delete: Vec<String>,
    /// The role goes too (snapshots off).
    pub delete_role: bool,
}

impl Change {
    pub fn is_noop(&self) -> bool {
        self.role == RoleChange::NoChange
            && self.policy == PolicyChange::NoChange
            && self.delete.is_empty()
            && !self.delete_role
    }
}

/// Pure: the change from what is there to what the settings want.
pub fn diff(wanted: Option<&Spec>, observed: &Observed) -> Result<Change> {
    let Some(spec) = wanted else {
        return Ok(Change {
            role: RoleChange::NoChange,
            policy: PolicyChange::NoChange,
            delete: observed.policies.iter().map(|p| p.id.clone()).collect(),
            delete_role: observed.role.as_ref().is_some_and(|r| r.owned),
        });
    };
    let role = match &observed.role {
        None => RoleChange::Create,
        Some(r) if !r.owned => return Err(crate::resources::iam::foreign("role", &r.name)),
        Some(r) if r.converged => RoleChange::NoChange,
        Some(_) => RoleChange::Repair,
    };
    let (policy, delete) = match observed.policies.split_first() {
        None => (PolicyChange::Create(spec.clone()), Vec::new()),
        Some((first, rest)) => {
            let converged = first.enabled && first.spec.as_ref() == Some(spec);
            let change = match converged {
                true => PolicyChange::NoChange,
                false => PolicyChange::Update {
                    id: first.id.clone(),
                    spec: spec.clone(),
                },
            };
            (change, rest.iter().map(|p| p.id.clone()).collect())
        }
    };
    Ok(Change {
        role,
        policy,
        delete,
        delete_role: false,
    })
}

/// "daily at 03:00 UTC, keep 7, copy to eu-west-1 (7 days)".
pub fn describe(spec: &Spec) -> String {
    let every = match spec.interval_hours {
        24 => format!("daily at {} UTC", spec.time),
        1 => format!("hourly from {} UTC", spec.time),
        n => format!("every {n} hours from {} UTC", spec.time),
    };
    let mut text = format!("{every}, keep {}", spec.keep);
    if let Some((region, days)) = &spec.copy {
        text.push_str(&format!(", copy to {region} (kept {days} days)"));
    }
    text
}

impl Change {
    pub fn items(&self, names: &Names, observed: &Observed) -> Vec<PlanItem> {
        let name = names.name_of(Role::SnapshotSchedule);
        let current = observed.policies.first().map(|p| p.id.clone());
        let mut items = Vec::new();
        let (target_key, target) = target_tag(names);
        let targets = format!("snapshots volumes tagged {target_key}={target}");
        match &self.policy {
            PolicyChange::Create(spec) => items.push(
                PlanItem::new("snapshot_schedule", name.clone(), None, Action::Create)
                    .with_changes(vec![describe(spec), targets]),
            ),
            PolicyChange::Update { id, spec } => items.push(
                PlanItem::new(
                    "snapshot_schedule",
                    name.clone(),
                    Some(id.clone()),
                    Action::Update,
                )
                .with_changes(vec![describe(spec)]),
            ),
            PolicyChange::NoChange if self.delete_role || !self.delete.is_empty() => {}
            PolicyChange::NoChange => {
                if current.is_some() {
                    items.push(PlanItem::new(
                        "snapshot_schedule",
                        name.clone(),
                        current,
                        Action::NoChange,
                    ));
                }
            }
        }
        for id in &self.delete {
            items.push(
                PlanItem::new(
                    "snapshot_schedule",
                    name.clone(),
                    Some(id.clone()),
                    Action::Delete,
                )
                .with_changes(vec![
                    "backup.snapshots is off (its snapshots are kept)".into(),
                ]),
            );
        }
        let role = role_name(names);
        match (&self.role, self.delete_role) {
            (_, true) => items.push(PlanItem::new(
                "dlm_role",
                role.clone(),
                Some(role),
                Action::Delete,
            )),
            (RoleChange::Create, _) => items.push(
                PlanItem::new("dlm_role", role, None, Action::Create).with_changes(vec![
                    "trust dlm.amazonaws.com".into(),
                    "snapshot and tag EBS volumes".into(),
                ]),
            ),
            (RoleChange::Repair, _) => items.push(
                PlanItem::new("dlm_role", role.clone(), Some(role), Action::Update)
                    .with_changes(vec!["restore trust, boundary and policy".into()]),
            ),
            (RoleChange::NoChange, _) if observed.role.is_some() => items.push(PlanItem::new(
                "dlm_role",
                role.clone(),
                Some(role),
                Action::NoChange,
            )),
            (RoleChange::NoChange, _) => {}
        }
        items
    }
}

/// Converges the role, then the policy (DLM checks it may pass the role).
pub async fn apply(ctx: &Ctx<'_>, change: &Change, account: &str) -> Result<()> {
    let created_role = apply_role(ctx, &change.role).await?;
    let arn = role_arn(&ctx.names, account);
    let policy = |spec: &Spec| NewPolicy {
        description: format!(
            "glbox {}: snapshots of the data volume",
            ctx.names.deployment
        ),
        role_arn: arn.clone(),
        details: details(spec),
        tags: ctx
            .names
            .tag_pairs(Role::SnapshotSchedule)
            .into_iter()
            .collect(),
    };
    match &change.policy {
        PolicyChange::NoChange => {}
        PolicyChange::Create(spec) => {
            let id = create_policy(ctx, policy(spec), created_role).await?;
            ctx.ui.info(&format!(
                "created snapshot schedule {id}: {}",
                describe(spec)
            ));
        }
        PolicyChange::Update { id, spec } => {
            dlm::update(&ctx.aws.dlm, id, policy(spec)).await?;
            ctx.ui.info(&format!(
                "updated snapshot schedule {id}: {}",
                describe(spec)
            ));
        }
    }
    for id in &change.delete {
        dlm::delete(&ctx.aws.dlm, id).await?;
        ctx.ui.info(&format!(
            "deleted snapshot schedule {id} (its snapshots are kept)"
        ));
    }
    if change.delete_role {
        delete_role(ctx).await?;
    }
    Ok(())
}

/// How long IAM may take before DLM accepts a role just made.
const NEW_ROLE_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// DLM refuses a role IAM has not yet spread to it; a role made in this
/// run is retried until it does.
async fn create_policy(ctx: &Ctx<'_>, policy: NewPolicy, new_role: bool) -> Result<String> {
    if !new_role {
        return dlm::create(&ctx.aws.dlm, policy).await;
    }
    let what = "the new DLM role to reach Data Lifecycle Manager";
    crate::wait::until(ctx.ui, what, NEW_ROLE_WAIT, || async {
        let attempt = NewPolicy {
            description: policy.description.clone(),
            role_arn: policy.role_arn.clone(),
            details: policy.details.clone(),
            tags: policy.tags.clone(),
        };
        match dlm::create(&ctx.aws.dlm, attempt).await {
            Ok(id) => Ok(crate::wait::Poll::Ready(id)),
            Err(Error::Aws(e))
                if e.code.as_deref() == Some("InvalidRequestException")
                    && e.message.to_lowercase().contains("role") =>
            {
                Ok(crate::wait::Poll::Pending(e.message))
            }
            Err(e) => Err(e),
        }
    })
    .await
}

/// Makes the role match; returns whether it was created.
async fn apply_role(ctx: &Ctx<'_>, change: &RoleChange) -> Result<bool> {
    if *change == RoleChange::NoChange {
        return Ok(false);
    }
    let name = role_name(&ctx.names);
    let iam = &ctx.aws.iam;
    let boundary = crate::resources::iam::ensure_boundary(ctx).await?;
    let policies = role_policies(&ctx.settings.region);
    if *change == RoleChange::Create {
        let role = roles::NewRole {
            name: &name,
            path: ctx.names.iam_path(),
            description: format!(
                "glbox deployment {}: Data Lifecycle Manager snapshots",
                ctx.names.deployment
            ),
            trust_policy: trust_policy().to_string(),
            boundary: &boundary,
            tags: ctx.names.iam_tags(Role::SnapshotSchedule),
        };
        // A retried create whose answer was lost: ours if tagged so.
        if let Attempt::Conflict(e) = roles::create_role(iam, role).await? {
            if !observe_role(ctx).await?.is_some_and(|r| r.owned) {
                return Err(e.into());
            }
        }
        ctx.ui.info(&format!("created IAM role {name}"));
    } else {
        roles::put_permissions_boundary(iam, &name, &boundary).await?;
        roles::update_trust_policy(iam, &name, trust_policy().to_string()).await?;
    }
    let drift = roles::policy_drift(iam, &name, &policies).await?;
    roles::converge_policies(iam, &name, &drift, &policies).await?;
    Ok(*change == RoleChange::Create)
}

pub async fn delete_role(ctx: &Ctx<'_>) -> Result<()> {
    let name = role_name(&ctx.names);
    roles::delete_role(&ctx.aws.iam, &name).await?;
    ctx.ui.info(&format!("deleted IAM role {name}"));
    Ok(())
}

/// `down`: the deployment's policies, then its role.
pub async fn delete(ctx: &Ctx<'_>, observed: &Observed) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for policy in &observed.policies {
        dlm::delete(&ctx.aws.dlm, &policy.id).await?;
        removed.push(policy.id.clone());
    }
    if let Some(role) = observed.role.as_ref().filter(|r| r.owned) {
        delete_role(ctx).await?;
        removed.push(role.name.clone());
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SnapshotSchedule, TimeOfDay};

    fn backup() -> BackupSettings {
        BackupSettings {
            snapshots: Some(SnapshotSchedule::Daily),
            snapshot_keep: 7,
            s3: None,
            time: TimeOfDay { hour: 3, minute: 5 },
            copy_to_region: Some("eu-west-1".into()),
        }
    }

    #[test]
    fn the_details_it_writes_read_back_as_the_spec_it_wants() {
        let names = Names::new("a", "us-east-1");
        let spec = wanted(&names, &backup()).unwrap();
        assert_eq!(spec.time, "03:05");
        assert_eq!(spec.target, ("Name".into(), "glbox-a-data".into()));
        assert_eq!(spec.copy, Some(("eu-west-1".into(), 7)));
        assert_eq!(spec_of(&details(&spec)), Some(spec));
    }

    #[test]
    fn an_hourly_copy_is_kept_whole_days() {
        assert_eq!(copy_days(1, 24), 1);
        assert_eq!(copy_days(1, 25), 2);
        assert_eq!(copy_days(24, 7), 7);
    }

    #[test]
    fn the_schedule_converges_and_goes_with_snapshots_off() {
        let names = Names::new("a", "us-east-1");
        let spec = wanted(&names, &backup()).unwrap();
        let role = DlmRole {
            name: role_name(&names),
            arn: "arn".into(),
            owned: true,
            converged: true,
        };
        let policy = |id: &str, spec: Option<Spec>| Policy {
            id: id.into(),
            spec,
            enabled: true,
            role_arn: "arn".into(),
        };
        let converged = Observed {
            role: Some(role.clone()),
            policies: vec![policy("p1", Some(spec.clone()))],
        };
        assert!(diff(Some(&spec), &converged).unwrap().is_noop());
        let twice = Observed {
            role: Some(role.clone()),
            policies: vec![policy("p1", Some(spec.clone())), policy("p2", None)],
        };
        assert_eq!(
            diff(Some(&spec), &twice).unwrap().delete,
            vec!["p2".to_string()]
        );
        let mut longer = spec.clone();
        longer.keep = 30;
        assert!(matches!(
            diff(Some(&longer), &converged).unwrap().policy,
            PolicyChange::Update { .. }
        ));
        let off = diff(None, &converged).unwrap();
        assert_eq!(off.delete, vec!["p1".to_string()]);
        assert!(off.delete_role);
        let foreign = Observed {
            role: Some(DlmRole {
                owned: false,
                ..role
            }),
            policies: Vec::new(),
        };
        assert!(diff(Some(&spec), &foreign).is_err());
    }
}
