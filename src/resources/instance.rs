//! The GitLab instance: IMDSv2 only, an encrypted gp3 root volume, the
//! deployment's instance profile and security group, tagged at launch.
//!
//! A changed instance type converges in place (stop, modify, start). A
//! change that only a new instance can carry (explicit AMI, OS, subnet, a
//! missing SSH key) is a replacement: shown in the plan, confirmed, and done
//! by terminating the old instance. The data volume survives it.

use std::time::Duration;

use aws_sdk_ec2::types::{HttpTokensState, InstanceStateName, ResourceType};

use crate::aws::ec2::instances::{self as gateway, Launch, RunFailed};
use crate::config::{AccessMethod, Settings};
use crate::error::{Error, Result};
use crate::names::{ec2_tag, Role, TAG_BOOTSTRAP, TAG_GITLAB_VERSION, TAG_OS};
use crate::resources::image::LaunchSpec;
use crate::resources::placement::Placement;
use crate::resources::{Action, Ctx, PlanItem};

const STATE_WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Default)]
pub struct Instance {
    pub id: String,
    pub state: String,
    pub instance_type: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub image_id: String,
    pub os: Option<String>,
    pub security_groups: Vec<String>,
    pub profile_arn: Option<String>,
    pub key_name: Option<String>,
    pub imdsv2_required: bool,
    pub public_ip: Option<String>,
    pub public_dns: Option<String>,
    pub private_ip: Option<String>,
    pub launch_time: Option<i64>,
    /// Digest of the last successful bootstrap (see `names::TAG_BOOTSTRAP`).
    pub bootstrap_digest: Option<String>,
    /// The GitLab version that bootstrap reported (see
    /// `names::TAG_GITLAB_VERSION`).
    pub gitlab_version: Option<String>,
    /// The launch's ClientToken (empty when there was none): part of the
    /// evidence that glbox launched it (see `ownership`).
    pub client_token: String,
}

impl Instance {
    pub fn is_live(&self) -> bool {
        !matches!(self.state.as_str(), "terminated" | "shutting-down")
    }

    /// Where the instance runs (an existing instance needs no public IPv4
    /// asked for).
    pub fn placement(&self) -> Placement {
        Placement {
            subnet_id: self.subnet_id.clone(),
            vpc_id: self.vpc_id.clone(),
            availability_zone: self.availability_zone.clone(),
            public_ip_at_launch: false,
        }
    }
}

pub fn from_sdk(i: &aws_sdk_ec2::types::Instance) -> Instance {
    Instance {
        id: i.instance_id().unwrap_or_default().to_string(),
        state: i
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default(),
        instance_type: i
            .instance_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        subnet_id: i.subnet_id().unwrap_or_default().to_string(),
        vpc_id: i.vpc_id().unwrap_or_default().to_string(),
        availability_zone: i
            .placement()
            .and_then(|p| p.availability_zone())
            .unwrap_or_default()
            .to_string(),
        image_id: i.image_id().unwrap_or_default().to_string(),
        os: ec2_tag(i.tags(), TAG_OS).map(str::to_string),
        security_groups: i
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id())
            .map(str::to_string)
            .collect(),
        profile_arn: i
            .iam_instance_profile()
            .and_then(|p| p.arn())
            .map(str::to_string),
        key_name: i.key_name().map(str::to_string),
        imdsv2_required: i.metadata_options().and_then(|m| m.http_tokens())
            == Some(&HttpTokensState::Required),
        public_ip: i.public_ip_address().map(str::to_string),
        public_dns: i
            .public_dns_name()
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        private_ip: i.private_ip_address().map(str::to_string),
        launch_time: i.launch_time().map(|t| t.secs()),
        bootstrap_digest: ec2_tag(i.tags(), TAG_BOOTSTRAP).map(str::to_string),
        gitlab_version: ec2_tag(i.tags(), TAG_GITLAB_VERSION).map(str::to_string),
        client_token: i.client_token().unwrap_or_default().to_string(),
    }
}

/// Every instance of the deployment AWS still reports, terminated included
/// (terminated ones feed the launch token, see [`client_token`]).
pub async fn observe(ctx: &Ctx<'_>) -> Result<Vec<Instance>> {
    let found = gateway::describe(&ctx.aws.ec2, ctx.names.owned_filters(Role::Instance)).await?;
    let mut instances: Vec<Instance> = found.iter().map(from_sdk).collect();
    instances.sort_by(|a, b| (a.launch_time, &a.id).cmp(&(b.launch_time, &b.id)));
    Ok(instances)
}

async fn describe_one(ctx: &Ctx<'_>, id: &str) -> Result<Option<Instance>> {
    let found = gateway::describe_one(&ctx.aws.ec2, ctx.ui, id).await?;
    Ok(found.as_ref().map(from_sdk))
}

/// A deterministic RunInstances token, so that a retried or resumed launch
/// of the same instance cannot start a second one. It covers the launch's
/// parameters and every instance of the deployment AWS still reports, so a
/// replacement (or a relaunch after a termination) gets a new token
/// instead of replaying the old launch. `attempt` > 0 derives a fresh token
/// when AWS still remembers an old one.
fn client_token(settings: &Settings, spec: &LaunchSpec, user_data: &str, attempt: u32) -> String {
    let root = settings.root_volume_gib.to_string();
    let access = format!("{:?}", settings.access.method());
    let attempt = attempt.to_string();
    let parts = [
        settings.name.as_str(),
        &settings.region,
        &spec.image_id,
        &settings.instance_type,
        &spec.placement.subnet_id,
        settings.os.as_str(),
        &root,
        &access,
        user_data,
        &attempt,
    ];
    let parts = parts
        .iter()
        .copied()
        .chain(spec.seen.iter().map(String::as_str));
    // At most 6 + 31 + 1 + 24 characters: within AWS's 64.
    gateway::client_token(&format!("glbox-{}", settings.name), parts)
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    pub start: bool,
    pub new_type: Option<(String, String)>,
    pub add_security_group: bool,
    pub associate_profile: bool,
    pub require_imdsv2: bool,
}

#[derive(Debug, Clone)]
pub enum Change {
    Create,
    Replace { old: Box<Instance>, reason: String },
    Update { id: String, update: Update },
    NoChange { id: String },
}

/// The plan for the instance: the change, and any duplicate instances of the
/// deployment (a crashed run's leftovers) to terminate.
#[derive(Debug, Clone)]
pub struct InstancePlan {
    pub change: Change,
    pub launch: Option<LaunchSpec>,
    pub duplicates: Vec<Instance>,
}

/// Which live instance is the deployment's: the one holding the data
/// volume, else the oldest. The others are duplicates.
pub fn pick_primary(
    live: Vec<Instance>,
    data_volume_holder: Option<&str>,
) -> (Option<Instance>, Vec<Instance>) {
    let mut live = live;
    let index = live
        .iter()
        .position(|i| Some(i.id.as_str()) == data_volume_holder)
        .unwrap_or(0);
    if live.is_empty() {
        return (None, live);
    }
    let primary = live.remove(index);
    (Some(primary), live)
}

fn replacement_reason(settings: &Settings, key_name: &str, current: &Instance) -> Option<String> {
    if let Some(ami) = &settings.ami {
        if *ami != current.image_id {
            return Some(format!(
                "instance.ami changes {} -> {ami}",
                current.image_id
            ));
        }
    }
    if let Some(os) = &current.os {
        if os != settings.os.as_str() {
            return Some(format!(
                "instance.os changes {os} -> {}",
                settings.os.as_str()
            ));
        }
    }
    if let Some(subnet) = &settings.subnet_id {
        if *subnet != current.subnet_id {
            return Some(format!(
                "instance.subnet_id changes {} -> {subnet}",
                current.subnet_id
            ));
        }
    }
    if settings.access == AccessMethod::Ssh && current.key_name.as_deref() != Some(key_name) {
        return Some(format!(
            "access.method is ssh, but the instance was launched without key pair {key_name}"
        ));
    }
    None
}

pub fn diff(
    settings: &Settings,
    key_name: &str,
    security_group: Option<&str>,
    current: Option<&Instance>,
) -> Change {
    let Some(current) = current else {
        return Change::Create;
    };
    if let Some(reason) = replacement_reason(settings, key_name, current) {
        return Change::Replace {
            old: Box::new(current.clone()),
            reason,
        };
    }
    let profile_suffix = format!(
        "/{}",
        crate::names::Names::new(&settings.name, &settings.region).iam_name()
    );
    let update = Update {
        start: matches!(current.state.as_str(), "stopped" | "stopping"),
        new_type: (current.instance_type != settings.instance_type).then(|| {
            (
                current.instance_type.clone(),
                settings.instance_type.clone(),
            )
        }),
        // `None`: the group is about to be (re)created, so it is not on the
        // instance yet either.
        add_security_group: security_group
            .is_none_or(|sg| !current.security_groups.iter().any(|g| g == sg)),
        associate_profile: !current
            .profile_arn
            .as_deref()
            .is_some_and(|arn| arn.ends_with(&profile_suffix)),
        require_imdsv2: !current.imdsv2_required,
    };
    if update == Update::default() {
        Change::NoChange {
            id: current.id.clone(),
        }
    } else {
        Change::Update {
            id: current.id.clone(),
            update,
        }
    }
}

impl InstancePlan {
    pub fn items(&self, ctx: &Ctx<'_>) -> Vec<PlanItem> {
        let name = ctx.names.base();
        let launch_details = |spec: &Option<LaunchSpec>| -> Vec<String> {
            let mut details = vec![format!("type {}", ctx.settings.instance_type)];
            if let Some(spec) = spec {
                details.push(format!("image {} ({})", spec.image_id, spec.architecture));
                details.push(format!(
                    "subnet {} in {}",
                    spec.placement.subnet_id, spec.placement.availability_zone
                ));
            }
            details.push(format!(
                "encrypted gp3 root volume, {} GiB",
                ctx.settings.root_volume_gib
            ));
            details.push("IMDSv2 required".into());
            details
        };
        let mut items = vec![match &self.change {
            Change::Create => PlanItem::new("instance", name.clone(), None, Action::Create)
                .with_changes(launch_details(&self.launch)),
            Change::Replace { old, reason } => {
                let mut changes = vec![
                    reason.clone(),
                    format!(
                        "terminates {} (its root disk is lost; the data volume is kept)",
                        old.id
                    ),
                ];
                changes.extend(launch_details(&self.launch));
                PlanItem::new(
                    "instance",
                    name.clone(),
                    Some(old.id.clone()),
                    Action::Replace,
                )
                .with_changes(changes)
            }
            Change::Update { id, update } => {
                let mut changes = Vec::new();
                if let Some((from, to)) = &update.new_type {
                    changes.push(format!(
                        "type {from} -> {to} (stop, modify, start: GitLab is down meanwhile)"
                    ));
                } else if update.start {
                    changes.push("start the stopped instance".into());
                }
                if update.add_security_group {
                    changes.push("re-attach the security group".into());
                }
                if update.associate_profile {
                    changes.push("re-associate the instance profile".into());
                }
                if update.require_imdsv2 {
                    changes.push("require IMDSv2".into());
                }
                PlanItem::new("instance", name.clone(), Some(id.clone()), Action::Update)
                    .with_changes(changes)
            }
            Change::NoChange { id } => {
                PlanItem::new("instance", name.clone(), Some(id.clone()), Action::NoChange)
            }
        }];
        items.extend(self.duplicates.iter().map(|d| {
            PlanItem::new("instance", name.clone(), Some(d.id.clone()), Action::Delete)
                .with_changes(vec!["a duplicate of the deployment's instance".into()])
        }));
        items
    }

    pub fn is_noop(&self) -> bool {
        matches!(self.change, Change::NoChange { .. }) && self.duplicates.is_empty()
    }
}

/// What apply needs to launch or fix the instance.
pub struct Inputs<'a> {
    pub security_group: &'a str,
    /// The data volume the user data mounts (it exists before the launch).
    pub data_volume_id: &'a str,
}

/// Converges the instance; returns it as it now is (running).
pub async fn apply(ctx: &Ctx<'_>, plan: &InstancePlan, inputs: &Inputs<'_>) -> Result<Instance> {
    for duplicate in &plan.duplicates {
        terminate(ctx, &duplicate.id).await?;
    }
    match &plan.change {
        Change::NoChange { id } => wait_for_state(ctx, id, InstanceStateName::Running).await,
        Change::Create => launch(ctx, plan, inputs).await,
        Change::Replace { old, .. } => {
            terminate(ctx, &old.id).await?;
            launch(ctx, plan, inputs).await
        }
        Change::Update { id, update } => apply_update(ctx, id, update, inputs).await,
    }
}

async fn launch(ctx: &Ctx<'_>, plan: &InstancePlan, inputs: &Inputs<'_>) -> Result<Instance> {
    let spec = plan.launch.as_ref().ok_or_else(|| {
        Error::Refused("internal: a launch was planned without a launch spec".into())
    })?;
    let user_data = crate::userdata::render(ctx.settings, Some(inputs.data_volume_id));
    if user_data.len() > crate::userdata::MAX_BYTES {
        return Err(Error::Refused(format!(
            "the rendered user data is {} bytes, over EC2's limit of {}",
            user_data.len(),
            crate::userdata::MAX_BYTES
        )));
    }
    let key_name = match ctx.settings.access.method() {
        AccessMethod::Ssh => Some(ctx.names.base()),
        AccessMethod::Ssm => None,
    };
    let profile = ctx.names.iam_name();
    let launch = Launch {
        image_id: &spec.image_id,
        instance_type: &ctx.settings.instance_type,
        subnet_id: &spec.placement.subnet_id,
        security_group: inputs.security_group,
        public_ip_at_launch: spec.placement.public_ip_at_launch,
        profile: &profile,
        root_device: &spec.root_device,
        root_gib: ctx.settings.root_volume_gib,
        user_data: &crate::userdata::encode(&user_data),
        tags: vec![
            instance_tags(ctx),
            ctx.names.tag_spec(ResourceType::Volume, Role::RootVolume),
        ],
        key_name,
        count: 1,
        spot: false,
    };
    let token = |attempt| client_token(ctx.settings, spec, &user_data, attempt);
    let launched = match gateway::run(&ctx.aws.ec2, ctx.ui, &launch, token).await {
        Ok(launched) => launched,
        Err(RunFailed::Aws(e)) => return Err(e.into()),
        Err(RunFailed::Replayed) => {
            return Err(Error::Refused(
                "AWS kept answering RunInstances with an earlier launch: re-run glbox up".into(),
            ))
        }
    };
    let Some(instance) = launched.first().map(from_sdk) else {
        return Err(Error::Refused(
            "RunInstances answered without an instance".into(),
        ));
    };
    ctx.ui.info(&format!("launched instance {}", instance.id));
    wait_for_state(ctx, &instance.id, InstanceStateName::Running).await
}

/// The instance's tags at launch: the deployment's, and the OS it runs.
pub fn instance_tags(ctx: &Ctx<'_>) -> aws_sdk_ec2::types::TagSpecification {
    let mut tags = ctx.names.tag_spec(ResourceType::Instance, Role::Instance);
    tags.tags.get_or_insert_with(Vec::new).push(
        aws_sdk_ec2::types::Tag::builder()
            .key(TAG_OS)
            .value(ctx.settings.os.as_str())
            .build(),
    );
    tags
}

async fn apply_update(
    ctx: &Ctx<'_>,
    id: &str,
    update: &Update,
    inputs: &Inputs<'_>,
) -> Result<Instance> {
    let ec2 = &ctx.aws.ec2;
    if let Some((from, to)) = &update.new_type {
        ctx.ui.info(&format!(
            "changing instance {id} from {from} to {to}: stopping it"
        ));
        gateway::stop(ec2, id).await?;
        wait_for_state(ctx, id, InstanceStateName::Stopped).await?;
        gateway::set_type(ec2, id, to).await?;
    }
    if update.start || update.new_type.is_some() {
        // A stopping instance must finish stopping before it can start.
        wait_for_state(ctx, id, InstanceStateName::Stopped).await?;
        gateway::start(ec2, &[id.to_string()]).await?;
        ctx.ui.info(&format!("started instance {id}"));
    }
    if update.add_security_group {
        let mut groups = describe_one(ctx, id)
            .await?
            .map(|i| i.security_groups)
            .unwrap_or_default();
        groups.push(inputs.security_group.to_string());
        gateway::set_groups(ec2, id, groups).await?;
        ctx.ui.info(&format!(
            "re-attached security group {} to {id}",
            inputs.security_group
        ));
    }
    if update.associate_profile {
        gateway::associate_profile(ec2, ctx.ui, id, &ctx.names.iam_name()).await?;
        ctx.ui.info(&format!(
            "associated instance profile {} with {id}",
            ctx.names.iam_name()
        ));
    }
    if update.require_imdsv2 {
        gateway::require_imdsv2(ec2, id).await?;
        ctx.ui.info(&format!("required IMDSv2 on {id}"));
    }
    wait_for_state(ctx, id, InstanceStateName::Running).await
}

/// Waits until the instance is in `target`; fails early if it can never get
/// there (terminated while waiting for running).
pub async fn wait_for_state(
    ctx: &Ctx<'_>,
    id: &str,
    target: InstanceStateName,
) -> Result<Instance> {
    let what = format!("instance {id} to be {}", target.as_str());
    let wait = crate::aws::ec2::Wait {
        state: target.as_str(),
        what: &what,
        within: STATE_WAIT,
        counted: false,
    };
    let lost = |_: &[&str]| {
        Error::Refused(format!(
            "instance {id} terminated while glbox waited for it to be {}\n  fix: look at its state reason in the EC2 console, then re-run glbox up",
            target.as_str()
        ))
    };
    let seen = gateway::wait_for(&ctx.aws.ec2, ctx.ui, &[id.to_string()], &wait, lost).await?;
    seen.first()
        .map(from_sdk)
        .ok_or_else(|| Error::Refused(format!("instance {id} is not visible")))
}

/// Terminates an instance and waits until it is gone, so its volumes and
/// addresses are free again.
pub async fn terminate(ctx: &Ctx<'_>, id: &str) -> Result<()> {
    gateway::terminate(&ctx.aws.ec2, &[id.to_string()]).await?;
    ctx.ui.info(&format!("terminating instance {id}"));
    wait_for_state(ctx, id, InstanceStateName::Terminated).await?;
    Ok(())
}

/// Instances of the deployment that are not terminated, oldest first.
pub fn live(instances: &[Instance]) -> Vec<Instance> {
    instances.iter().filter(|i| i.is_live()).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Os;

    fn running(id: &str) -> Instance {
        Instance {
            id: id.into(),
            state: "running".into(),
            instance_type: "c5.2xlarge".into(),
            subnet_id: "subnet-1".into(),
            vpc_id: "vpc-1".into(),
            availability_zone: "us-east-1a".into(),
            image_id: "ami-1".into(),
            os: Some("ubuntu-24.04".into()),
            security_groups: vec!["sg-1".into()],
            profile_arn: Some("arn:aws:iam::1:instance-profile/glbox/glbox-t-us-east-1".into()),
            imdsv2_required: true,
            ..Instance::default()
        }
    }

    #[test]
    fn an_unchanged_instance_is_no_change() {
        let s = crate::test_support::settings("t");
        assert!(matches!(
            diff(&s, "glbox-t", Some("sg-1"), Some(&running("i-1"))),
            Change::NoChange { .. }
        ));
    }

    #[test]
    fn type_changes_update_in_place_and_os_changes_replace() {
        let mut s = crate::test_support::settings("t");
        s.instance_type = "c5.4xlarge".into();
        let Change::Update { update, .. } =
            diff(&s, "glbox-t", Some("sg-1"), Some(&running("i-1")))
        else {
            panic!("expected an update");
        };
        assert_eq!(
            update.new_type,
            Some(("c5.2xlarge".into(), "c5.4xlarge".into()))
        );
        s.os = Os::Al2023;
        assert!(matches!(
            diff(&s, "glbox-t", Some("sg-1"), Some(&running("i-1"))),
            Change::Replace { .. }
        ));
    }

    #[test]
    fn drift_on_a_live_instance_is_repaired() {
        let s = crate::test_support::settings("t");
        let mut drifted = running("i-1");
        drifted.state = "stopped".into();
        drifted.security_groups.clear();
        drifted.profile_arn = None;
        drifted.imdsv2_required = false;
        let Change::Update { update, .. } = diff(&s, "glbox-t", Some("sg-1"), Some(&drifted))
        else {
            panic!("expected an update");
        };
        assert!(
            update.start
                && update.add_security_group
                && update.associate_profile
                && update.require_imdsv2
        );
    }

    #[test]
    fn the_volume_holder_is_primary_and_the_rest_are_duplicates() {
        let (primary, rest) = pick_primary(vec![running("i-1"), running("i-2")], Some("i-2"));
        assert_eq!(primary.unwrap().id, "i-2");
        assert_eq!(rest.len(), 1);
        let (primary, rest) = pick_primary(Vec::new(), None);
        assert!(primary.is_none() && rest.is_empty());
    }

    #[test]
    fn client_tokens_are_stable_and_change_with_history() {
        let s = crate::test_support::settings("t");
        let spec = |seen: Vec<String>| LaunchSpec {
            image_id: "ami-1".into(),
            architecture: "x86_64".into(),
            root_device: "/dev/sda1".into(),
            placement: Placement {
                subnet_id: "subnet-1".into(),
                vpc_id: "vpc-1".into(),
                availability_zone: "us-east-1a".into(),
                public_ip_at_launch: false,
            },
            seen,
        };
        let fresh = spec(Vec::new());
        let a = client_token(&s, &fresh, "ud", 0);
        assert_eq!(a, client_token(&s, &fresh, "ud", 0));
        assert_ne!(a, client_token(&s, &spec(vec!["i-old".into()]), "ud", 0));
        assert_ne!(a, client_token(&s, &fresh, "ud", 1));
        assert_ne!(a, client_token(&s, &fresh, "other user data", 0));
        let mut bigger = s.clone();
        bigger.root_volume_gib = 60;
        assert_ne!(client_token(&bigger, &fresh, "ud", 0), a);
        let longest = crate::test_support::settings(&"n".repeat(31));
        assert!(client_token(&longest, &fresh, "ud", 3).len() <= 64);
    }
}
