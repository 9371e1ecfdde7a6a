//! Whole plans built from an observed deployment and hand-made lookups,
//! without AWS: the diff is pure, so a plan is a function of what is there.

use super::diff::{self, Basis, Lookups};
use super::down::DownOptions;
use super::plan::{Observed, Plan};
use super::*;
use crate::aws::{Aws, ConnectOptions};
use crate::config::Settings;
use crate::ownership::Ledger;
use crate::resources::data_volume::Volume;
use crate::resources::elastic_ip::Address;
use crate::resources::iam::{ProfileState, RoleState};
use crate::resources::image::LaunchSpec;
use crate::resources::instance::Instance;
use crate::resources::placement::Placement;
use crate::resources::security_group::{desired_rules, SecurityGroup};
use crate::resources::Action;
use crate::ui::{Ui, Verbosity};

/// Clients that never get called: a pure diff makes no request, and the
/// endpoint refuses any that would be made.
async fn offline_aws() -> Aws {
    crate::aws::connect(&ConnectOptions {
        region: "us-east-1".into(),
        profile: None,
        endpoint_url: Some("http://127.0.0.1:9".into()),
        adaptive_retry: false,
    })
    .await
}

fn placement() -> Placement {
    Placement {
        subnet_id: "subnet-1".into(),
        vpc_id: "vpc-1".into(),
        availability_zone: "us-east-1a".into(),
        public_ip_at_launch: false,
    }
}

/// A box `up` converged with `settings` (no bootstrap, email off).
fn converged(ctx: &Ctx<'_>) -> Observed {
    let settings = ctx.settings;
    let iam_name = ctx.names.iam_name();
    let instance = Instance {
        id: "i-1".into(),
        state: "running".into(),
        instance_type: settings.instance_type.clone(),
        subnet_id: "subnet-1".into(),
        vpc_id: "vpc-1".into(),
        availability_zone: "us-east-1a".into(),
        image_id: "ami-old".into(),
        os: Some(settings.os.as_str().into()),
        security_groups: vec!["sg-1".into()],
        profile_arn: Some(format!(
            "arn:aws:iam::123456789012:instance-profile{}{iam_name}",
            ctx.names.iam_path()
        )),
        imdsv2_required: true,
        public_ip: Some("198.51.100.7".into()),
        ..Instance::default()
    };
    let parameters = vec![crate::resources::parameters::root_password_name(ctx)];
    Observed {
        security_group: Some(SecurityGroup {
            id: "sg-1".into(),
            vpc_id: "vpc-1".into(),
            rules: desired_rules(settings),
            expires_at: None,
        }),
        role: Some(RoleState {
            name: iam_name.clone(),
            owned: true,
            trust_ok: true,
            boundary_ok: true,
            ..RoleState::default()
        }),
        profile: Some(ProfileState {
            name: iam_name.clone(),
            owned: true,
            roles: vec![iam_name],
        }),
        key_pair: None,
        instances: vec![instance],
        replaced_volumes: Vec::new(),
        data_volumes: vec![Volume {
            id: "vol-1".into(),
            availability_zone: "us-east-1a".into(),
            size_gib: settings.data_volume.size_gib,
            iops: settings.data_volume.iops,
            throughput_mibps: settings.data_volume.throughput_mibps,
            state: "in-use".into(),
            attached_to: Some("i-1".into()),
        }],
        addresses: vec![Address {
            allocation_id: "eipalloc-1".into(),
            public_ip: "198.51.100.7".into(),
            association_id: Some("eipassoc-1".into()),
            instance_id: Some("i-1".into()),
            seat: None,
        }],
        ledger: Ledger::from_parameters(&ctx.names, &parameters),
        parameters,
        email: crate::email::Observed {
            ses: None,
            zone: None,
            credentials: crate::email::credentials::Observed {
                user: None,
                current: None,
            },
            problem: None,
        },
        dns_record: None,
        account: "123456789012".into(),
        backup_bucket: None,
        snapshot_schedule: Default::default(),
        snapshots: Vec::new(),
        unproven_snapshots: Vec::new(),
        foreign: Vec::new(),
        tagged_addresses: vec!["eipalloc-1".into()],
        unrecorded_addresses: Vec::new(),
        email_identity_keep: None,
    }
}

/// Nothing of the deployment exists yet.
fn nothing(ctx: &Ctx<'_>) -> Observed {
    Observed {
        security_group: None,
        role: None,
        profile: None,
        instances: Vec::new(),
        data_volumes: Vec::new(),
        addresses: Vec::new(),
        parameters: Vec::new(),
        ledger: Ledger::default(),
        tagged_addresses: Vec::new(),
        ..converged(ctx)
    }
}

fn launch() -> LaunchSpec {
    LaunchSpec {
        image_id: "ami-new".into(),
        architecture: "x86_64".into(),
        root_device: "/dev/sda1".into(),
        placement: placement(),
        seen: Vec::new(),
    }
}

/// The plan `make` builds, with the lookups given instead of read.
fn plan(ctx: &Ctx<'_>, observed: &Observed, launch: Option<LaunchSpec>) -> Plan {
    let basis = Basis::of(ctx, observed).expect("nothing to refuse");
    let lookups = Lookups {
        placement: placement(),
        launch,
        backup_bucket: None,
    };
    diff::diff(ctx, observed, basis, lookups, false).expect("a plan")
}

/// Each plan line as (resource, action), in the plan's order.
fn lines(ctx: &Ctx<'_>, plan: &Plan, observed: &Observed) -> Vec<(&'static str, Action)> {
    plan.items(ctx, observed)
        .into_iter()
        .map(|item| (item.resource, item.action))
        .collect()
}

async fn with_ctx(settings: Settings, test: impl FnOnce(&Ctx<'_>)) {
    let aws = offline_aws().await;
    let ui = Ui::new(Verbosity::Quiet);
    test(&Ctx::new(&aws, &settings, &ui));
}

#[tokio::test]
async fn a_converged_box_plans_nothing() {
    with_ctx(crate::test_support::settings("trial"), |ctx| {
        let observed = converged(ctx);
        let plan = plan(ctx, &observed, None);
        assert!(plan.is_noop());
        assert_eq!(
            lines(ctx, &plan, &observed),
            [
                ("security_group", Action::NoChange),
                ("iam_role", Action::NoChange),
                ("instance_profile", Action::NoChange),
                ("instance", Action::NoChange),
                ("data_volume", Action::NoChange),
                ("elastic_ip", Action::NoChange),
                ("root_password", Action::NoChange),
            ]
        );
        assert!(!plan.report(ctx, &observed).changes);
    })
    .await;
}

#[tokio::test]
async fn drift_in_a_rule_and_the_type_is_updated_in_place() {
    with_ctx(crate::test_support::settings("trial"), |ctx| {
        let mut observed = converged(ctx);
        let group = observed.security_group.as_mut().unwrap();
        group.rules.pop_first();
        observed.instances[0].instance_type = "c5.xlarge".into();
        let plan = plan(ctx, &observed, None);
        assert!(!plan.is_noop());
        assert_eq!(
            lines(ctx, &plan, &observed),
            [
                ("security_group", Action::Update),
                ("iam_role", Action::NoChange),
                ("instance_profile", Action::NoChange),
                ("instance", Action::Update),
                ("data_volume", Action::NoChange),
                ("elastic_ip", Action::NoChange),
                ("root_password", Action::NoChange),
            ]
        );
        let instance = plan
            .items(ctx, &observed)
            .into_iter()
            .find(|i| i.resource == "instance")
            .unwrap();
        assert!(
            instance.changes.iter().any(|c| c.contains("c5.xlarge")),
            "{:?}",
            instance.changes
        );
    })
    .await;
}

#[tokio::test]
async fn an_explicit_image_change_replaces_the_instance_and_moves_volume_and_address() {
    let mut settings = crate::test_support::settings("trial");
    settings.ami = Some("ami-new".into());
    with_ctx(settings, |ctx| {
        let observed = converged(ctx);
        let plan = plan(ctx, &observed, Some(launch()));
        let lines = lines(ctx, &plan, &observed);
        assert_eq!(lines[3], ("instance", Action::Replace), "{lines:?}");
        assert!(
            matches!(
                plan.data_volume,
                crate::resources::data_volume::Change::Update { attach: true, .. }
            ),
            "the kept volume goes to the new instance: {:?}",
            plan.data_volume
        );
        assert!(!plan.elastic_ip.is_noop(), "the address follows it");
        assert!(!plan.is_noop());
    })
    .await;
}

#[tokio::test]
async fn a_fresh_deployment_creates_everything_in_every_phase() {
    with_ctx(crate::test_support::settings("trial"), |ctx| {
        let observed = nothing(ctx);
        let plan = plan(ctx, &observed, Some(launch()));
        assert_eq!(
            lines(ctx, &plan, &observed),
            [
                ("security_group", Action::Create),
                ("iam_role", Action::Create),
                ("instance_profile", Action::Create),
                ("instance", Action::Create),
                ("data_volume", Action::Create),
                ("elastic_ip", Action::Create),
                ("root_password", Action::Create),
            ]
        );
        assert_eq!(
            apply::phases(ctx.settings, false),
            [
                "security group",
                "IAM role",
                "instance profile",
                "root password",
                "data volume",
                "instance",
                "data volume attachment",
                "Elastic IP",
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn down_removes_the_box_before_what_it_stored_and_who_it_was() {
    with_ctx(crate::test_support::settings("trial"), |ctx| {
        let mut observed = converged(ctx);
        observed.foreign = vec!["i-9 carries the tags".into()];
        let options = DownOptions {
            delete_backups: false,
            delete_data: true,
            snapshot: false,
            delete_email_identity: false,
        };
        let items: Vec<(&str, &str)> = down::items(ctx, &observed, options)
            .into_iter()
            .map(|i| (i.resource, i.action))
            .collect();
        assert_eq!(
            items,
            [
                ("elastic_ip", "release"),
                ("instance", "terminate"),
                ("data_volume", "delete without snapshot"),
                ("security_group", "delete"),
                ("parameter", "delete"),
                ("not glbox's", "skip: left alone"),
                ("instance_profile", "delete"),
                ("iam_role", "delete"),
            ]
        );
        assert_eq!(
            down::phases(ctx, &observed, options),
            [
                "Elastic IP",
                "instance",
                "data volume",
                "security group",
                "SSM parameters",
                "instance profile",
                "IAM role",
            ]
        );
        let kept = DownOptions::default();
        assert!(!down::phases(ctx, &observed, kept).contains(&"data volume"));
    })
    .await;
}

#[tokio::test]
async fn status_lists_the_box_then_gitlab() {
    with_ctx(crate::test_support::settings("trial"), |ctx| {
        let status = status::status(ctx, &converged(ctx));
        let resources: Vec<&str> = status.resources.iter().map(|r| r.resource).collect();
        assert_eq!(
            resources,
            [
                "security_group",
                "iam_role",
                "instance_profile",
                "instance",
                "data_volume",
                "elastic_ip",
                "gitlab",
            ]
        );
        assert!(!status.complete, "GitLab is not installed");

        let mut installed = converged(ctx);
        installed.instances[0].bootstrap_digest = Some("done".into());
        installed.instances[0].gitlab_version = Some("18.5.1".into());
        let status = status::status(ctx, &installed);
        let gitlab = status.resources.iter().find(|r| r.resource == "gitlab");
        assert_eq!(
            gitlab.map(|r| r.state.as_str()),
            Some("installed by glbox (GitLab 18.5.1)")
        );
        assert!(status.complete);
    })
    .await;
}

#[test]
fn every_step_has_its_own_checkpoint_in_order() {
    let names: Vec<&str> = STEPS.iter().map(|s| s.checkpoint).collect();
    assert_eq!(super::CHECKPOINTS, names.as_slice());
}

/// A raised `gitlab.version` on a staying box whose version is recorded:
/// the GitLab line carries the path; a lower one refuses the whole plan.
#[tokio::test]
async fn a_raised_version_plans_its_path_and_a_lower_one_is_refused() {
    let pinned = |version: &str| {
        let mut settings = crate::test_support::settings("trial");
        settings.gitlab.version = crate::config::GitlabVersion::Pinned(version.into());
        settings
    };
    let installed = |ctx: &Ctx<'_>| {
        let mut observed = converged(ctx);
        observed.instances[0].bootstrap_digest = Some("an-older-script".into());
        observed.instances[0].gitlab_version = Some("17.0.1".into());
        observed
    };
    let with_bootstrap = |ctx: &Ctx<'_>, observed: &Observed| {
        let basis = Basis::of(ctx, observed).expect("nothing to refuse");
        let lookups = Lookups {
            placement: placement(),
            launch: None,
            backup_bucket: None,
        };
        diff::diff(ctx, observed, basis, lookups, true)
    };
    with_ctx(pinned("18.5.1"), |ctx| {
        let observed = installed(ctx);
        let plan = with_bootstrap(ctx, &observed).expect("a plan");
        let gitlab = plan
            .items(ctx, &observed)
            .into_iter()
            .find(|i| i.resource == "gitlab")
            .expect("a GitLab line");
        assert_eq!(gitlab.action, Action::Update);
        assert_eq!(
            gitlab.changes[1],
            "upgrade 17.0.1 -> 18.5.1 through 17.1.8, 17.3.7, 17.5.5, 17.8.7, 17.11.7, 18.2.8"
        );
    })
    .await;
    with_ctx(pinned("16.11.10"), |ctx| {
        let observed = installed(ctx);
        let refused = with_bootstrap(ctx, &observed).expect_err("refused");
        assert!(
            refused.to_string().contains("does not support downgrades"),
            "{refused}"
        );
    })
    .await;
    // A replacement gets the same data: the lower version is refused too.
    let mut replaced = pinned("16.11.10");
    replaced.ami = Some("ami-new".into());
    with_ctx(replaced, |ctx| {
        let observed = installed(ctx);
        let basis = Basis::of(ctx, &observed).expect("nothing to refuse");
        let lookups = Lookups {
            placement: placement(),
            launch: Some(launch()),
            backup_bucket: None,
        };
        let refused = diff::diff(ctx, &observed, basis, lookups, true).expect_err("refused");
        assert!(
            refused.to_string().contains("does not support downgrades"),
            "{refused}"
        );
    })
    .await;
}

/// `[backup]` on: the bucket, the schedule and its role are made with a
/// fresh box, and plan nothing once converged.
#[tokio::test]
async fn backups_are_planned_with_a_fresh_box_and_nothing_once_converged() {
    use crate::config::{S3Backups, SnapshotSchedule};
    use crate::resources::backup::{bucket, schedule};
    let mut settings = crate::test_support::settings("trial");
    settings.backup.snapshots = Some(SnapshotSchedule::Daily);
    settings.backup.s3 = Some(S3Backups { keep_days: 30 });
    with_ctx(settings, |ctx| {
        let fresh = nothing(ctx);
        let planned = plan(ctx, &fresh, Some(launch()));
        let backup_lines: Vec<_> = lines(ctx, &planned, &fresh)
            .into_iter()
            .filter(|(r, _)| ["backup_bucket", "snapshot_schedule", "dlm_role"].contains(r))
            .collect();
        assert_eq!(
            backup_lines,
            [
                ("backup_bucket", Action::Create),
                ("snapshot_schedule", Action::Create),
                ("dlm_role", Action::Create),
            ]
        );
        assert!(planned
            .policy
            .contains_key(crate::resources::iam::BACKUP_POLICY_NAME));

        let mut observed = converged(ctx);
        let name = ctx.names.backup_bucket(&observed.account);
        observed.backup_bucket = Some(bucket::Bucket {
            name,
            owned: true,
            drifted: Vec::new(),
        });
        observed.snapshot_schedule = schedule::Observed {
            role: Some(schedule::DlmRole {
                name: schedule::role_name(&ctx.names),
                arn: schedule::role_arn(&ctx.names, &observed.account),
                owned: true,
                converged: true,
            }),
            policies: vec![schedule::Policy {
                id: "policy-1".into(),
                spec: schedule::wanted(&ctx.names, &ctx.settings.backup),
                enabled: true,
                role_arn: schedule::role_arn(&ctx.names, &observed.account),
            }],
        };
        let mut role = observed.role.clone().unwrap();
        role.inline_to_put = Vec::new();
        observed.role = Some(role);
        let converged = plan(ctx, &observed, None);
        assert!(converged.snapshot_schedule.is_noop() && converged.backup_bucket.is_noop());
        assert!(
            lines(ctx, &converged, &observed).contains(&("snapshot_schedule", Action::NoChange))
        );
    })
    .await;
}
