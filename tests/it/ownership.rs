//! Tags are glbox's state, but anyone allowed to tag can forge them. These
//! tests forge them (resources made with the SDK, with a deployment's or a
//! lab's tags but none of glbox's evidence) and check, through the AWS
//! API, that glbox neither adopts nor destroys them, and names them. They
//! also run two `up`s at once: the lease lets one work at a time.

use crate::common::{glbox, mutating, Emulator, Run, Workspace};
use aws_sdk_ec2::types::{DomainType, Filter, ResourceType, Tag, TagSpecification, VolumeType};

const ZONE: &str = "us-east-1a";

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

fn spec(resource: ResourceType, pairs: &[(&str, &str)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(tags(pairs)))
        .build()
}

fn box_tags<'a>(name: &'a str, role: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("glbox:deployment", name),
        ("glbox:managed-by", "glbox"),
        ("glbox:role", role),
    ]
}

/// An instance launched with the SDK (no glbox profile, no glbox token),
/// like a production server someone then tags.
async fn foreign_instance(emulator: &Emulator, pairs: &[(&str, &str)]) -> String {
    let ec2 = emulator.ec2();
    let images = ec2.describe_images().owners("amazon").send().await.unwrap();
    let image = images.images()[0].image_id().unwrap().to_string();
    let out = ec2
        .run_instances()
        .image_id(image)
        .min_count(1)
        .max_count(1)
        .tag_specifications(spec(ResourceType::Instance, pairs))
        .send()
        .await
        .unwrap();
    // Named by the test right away: past the window EC2 may not know it in.
    crate::common::past_fresh_id_window().await;
    out.instances()[0].instance_id().unwrap().to_string()
}

async fn foreign_volume(emulator: &Emulator, pairs: &[(&str, &str)]) -> String {
    let out = emulator
        .ec2()
        .create_volume()
        .availability_zone(ZONE)
        .size(100)
        .volume_type(VolumeType::Gp3)
        .tag_specifications(spec(ResourceType::Volume, pairs))
        .send()
        .await
        .unwrap();
    // Named by the test right away: past the window EC2 may not know it in.
    crate::common::past_fresh_id_window().await;
    out.volume_id().unwrap().to_string()
}

async fn foreign_address(emulator: &Emulator, pairs: &[(&str, &str)]) -> String {
    let out = emulator
        .ec2()
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(spec(ResourceType::ElasticIp, pairs))
        .send()
        .await
        .unwrap();
    // Named by the test right away: past the window EC2 may not know it in.
    crate::common::past_fresh_id_window().await;
    out.allocation_id().unwrap().to_string()
}

async fn instance_state(emulator: &Emulator, id: &str) -> String {
    let out = emulator
        .ec2()
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    out.reservations()[0].instances()[0]
        .state()
        .unwrap()
        .name()
        .unwrap()
        .as_str()
        .to_string()
}

/// The volume's state and the instances it is attached to; `None` when
/// it no longer exists.
async fn volume(emulator: &Emulator, id: &str) -> Option<(String, Vec<String>)> {
    let out = emulator
        .ec2()
        .describe_volumes()
        .filters(Filter::builder().name("volume-id").values(id).build())
        .send()
        .await
        .unwrap();
    out.volumes().first().map(|v| {
        (
            v.state().unwrap().as_str().to_string(),
            v.attachments()
                .iter()
                .filter_map(|a| a.instance_id())
                .map(str::to_string)
                .collect(),
        )
    })
}

async fn address_exists(emulator: &Emulator, allocation: &str) -> bool {
    let out = emulator.ec2().describe_addresses().send().await.unwrap();
    out.addresses()
        .iter()
        .any(|a| a.allocation_id() == Some(allocation))
}

/// Live instances and data volumes with `name`'s deployment tag.
async fn tagged(emulator: &Emulator, name: &str, role: &str) -> (Vec<String>, Vec<String>) {
    let ec2 = emulator.ec2();
    let filter = |k: &str, v: &str| Filter::builder().name(format!("tag:{k}")).values(v).build();
    let instances = ec2
        .describe_instances()
        .filters(filter("glbox:deployment", name))
        .filters(filter("glbox:role", "instance"))
        .send()
        .await
        .unwrap();
    let live = instances
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().unwrap().name().unwrap().as_str() != "terminated")
        .map(|i| i.instance_id().unwrap().to_string())
        .collect();
    let volumes = ec2
        .describe_volumes()
        .filters(filter("glbox:deployment", name))
        .filters(filter("glbox:role", role))
        .send()
        .await
        .unwrap();
    let ids = volumes
        .volumes()
        .iter()
        .map(|v| v.volume_id().unwrap().to_string())
        .collect();
    (live, ids)
}

fn output(run: &Run) -> String {
    format!("{}\n{}", run.stdout, run.stderr)
}

/// A volume someone else made with a deployment's tags before its first
/// `up` is not adopted (GitLab would run on a volume its planter
/// controls): glbox makes its own and says it left the other alone. Later,
/// a forged "duplicate" instance and a forged unassociated address are not
/// terminated or released by `up`, and `down --delete-data` leaves all
/// three.
#[tokio::test]
async fn forged_box_resources_are_neither_adopted_nor_destroyed() {
    let emulator = Emulator::start();
    let workspace = Workspace::new("name = \"trial\"\n");
    let planted = foreign_volume(&emulator, &box_tags("trial", "data")).await;

    let up = glbox(&emulator, &workspace, &["up", "--yes", "--no-bootstrap"]);
    up.assert_ok();
    assert!(output(&up).contains(&planted), "{}", output(&up));
    let (instances, volumes) = tagged(&emulator, "trial", "data").await;
    assert_eq!(instances.len(), 1, "{instances:?}");
    assert_eq!(volumes.len(), 2, "glbox made its own volume: {volumes:?}");
    let (state, attached) = volume(&emulator, &planted).await.unwrap();
    assert_eq!((state.as_str(), attached.len()), ("available", 0));
    let own = volumes.iter().find(|v| **v != planted).unwrap().clone();
    assert_eq!(volume(&emulator, &own).await.unwrap().1, instances);

    let duplicate = foreign_instance(&emulator, &box_tags("trial", "instance")).await;
    let address = foreign_address(&emulator, &box_tags("trial", "elastic-ip")).await;
    emulator.start_recording();
    let again = glbox(&emulator, &workspace, &["up", "--yes", "--no-bootstrap"]);
    again.assert_ok();
    let changes = mutating(&emulator.recorded_actions());
    assert!(
        changes.is_empty(),
        "look-alikes changed nothing: {changes:?}"
    );
    assert_eq!(instance_state(&emulator, &duplicate).await, "running");
    assert!(address_exists(&emulator, &address).await);

    let down = glbox(
        &emulator,
        &workspace,
        &["down", "--yes", "--delete-data", "--no-snapshot"],
    );
    down.assert_ok();
    for id in [&planted, &duplicate, &address] {
        assert!(
            output(&down).contains(id.as_str()),
            "{id} named: {}",
            output(&down)
        );
    }
    assert_eq!(instance_state(&emulator, &duplicate).await, "running");
    assert!(address_exists(&emulator, &address).await);
    assert!(
        volume(&emulator, &planted).await.is_some(),
        "forged volume kept"
    );
    assert!(
        volume(&emulator, &own).await.is_none(),
        "glbox's own volume deleted"
    );
    assert_eq!(instance_state(&emulator, &instances[0]).await, "terminated");
}

/// `lab reap --yes` from cron: an instance and a volume someone tagged as
/// an expired lab's seat survive it and are named; a lab glbox made that
/// expired is removed; a resource whose lab tag no lab name can have is
/// skipped and named, and does not stop the rest.
#[tokio::test]
async fn reap_removes_only_what_glbox_made() {
    let emulator = Emulator::start();
    let old =
        Workspace::new("name = \"old\"\n[lab]\nname = \"old\"\nseats = 1\nexpires_in = \"2h\"\n");
    glbox(&emulator, &old, &["lab", "up", "--yes", "--no-bootstrap"]).assert_ok();
    let ec2 = emulator.ec2();
    let past = "2026-01-01T00:00:00Z";
    let all = ec2.describe_volumes().send().await.unwrap();
    let lab_volumes: Vec<String> = all
        .volumes()
        .iter()
        .filter(|v| v.tags().iter().any(|t| t.key() == Some("glbox:lab")))
        .map(|v| v.volume_id().unwrap().to_string())
        .collect();
    let instances = ec2.describe_instances().send().await.unwrap();
    let mut expire: Vec<String> = instances
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| i.instance_id().unwrap().to_string())
        .collect();
    expire.extend(lab_volumes);
    let groups = ec2.describe_security_groups().send().await.unwrap();
    expire.extend(
        groups
            .security_groups()
            .iter()
            .filter(|g| g.tags().iter().any(|t| t.key() == Some("glbox:lab")))
            .map(|g| g.group_id().unwrap().to_string()),
    );
    ec2.create_tags()
        .set_resources(Some(expire))
        .tags(Tag::builder().key("glbox:expires-at").value(past).build())
        .send()
        .await
        .unwrap();
    let seat = |lab: &'static str| {
        vec![
            ("glbox:lab", lab),
            ("glbox:managed-by", "glbox"),
            ("glbox:role", "instance"),
            ("glbox:seat", "1"),
            ("glbox:expires-at", past),
        ]
    };
    let production = foreign_instance(&emulator, &seat("prod-copy")).await;
    let mut volume_tags = seat("prod-copy");
    volume_tags[2] = ("glbox:role", "data");
    let production_volume = foreign_volume(&emulator, &volume_tags).await;
    let odd = foreign_volume(&emulator, &seat("Not A Lab Name!")).await;

    let reap = glbox(&emulator, &old, &["lab", "reap", "--yes"]);
    let text = output(&reap);
    assert_ne!(reap.code, 0, "a skipped lab is an error at the end: {text}");
    assert!(text.contains(&production), "{text}");
    assert!(text.contains(&production_volume), "{text}");
    assert!(text.contains("Not A Lab Name!"), "{text}");
    assert!(
        text.contains("Removed 1 expired lab(s)"),
        "the rest went on: {text}"
    );
    assert_eq!(instance_state(&emulator, &production).await, "running");
    assert!(volume(&emulator, &production_volume).await.is_some());
    assert!(volume(&emulator, &odd).await.is_some());
    let (_, old_volumes) = (0, {
        let out = ec2
            .describe_volumes()
            .filters(
                Filter::builder()
                    .name("tag:glbox:lab")
                    .values("old")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.volumes().len()
    });
    assert_eq!(old_volumes, 0, "the expired lab glbox made is gone");
}

/// Two `up` runs at once: the second waits for the first's lease (saying
/// who holds it), then finds nothing to do. The end is exactly one
/// instance, one data volume, one address and one SMTP key, and a third
/// `up` makes no changing call at all.
#[tokio::test]
async fn concurrent_ups_make_one_deployment() {
    let emulator = Emulator::start();
    let config = "name = \"twice\"\n[email]\nenabled = true\ndomain = \"example.com\"\n";
    let first = Workspace::new(config);
    let second = Workspace::new(config);
    let args = ["up", "--yes", "--no-bootstrap"];
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| glbox(&emulator, &first, &args));
        let b = scope.spawn(|| glbox(&emulator, &second, &args));
        (a.join().unwrap(), b.join().unwrap())
    });
    a.assert_ok();
    b.assert_ok();
    let waited = [&a, &b].iter().any(|run| run.stderr.contains("held by"));
    assert!(
        waited,
        "one run waited for the other's lease:\n{}\n{}",
        a.stderr, b.stderr
    );

    let (instances, volumes) = tagged(&emulator, "twice", "data").await;
    assert_eq!(instances.len(), 1, "{instances:?}");
    assert_eq!(volumes.len(), 1, "{volumes:?}");
    let addresses = emulator.ec2().describe_addresses().send().await.unwrap();
    assert_eq!(addresses.addresses().len(), 1);
    let keys = emulator
        .iam()
        .list_access_keys()
        .user_name("glbox-twice-us-east-1-smtp")
        .send()
        .await
        .unwrap();
    assert_eq!(keys.access_key_metadata().len(), 1);
    let key_id = keys.access_key_metadata()[0].access_key_id().unwrap();
    let recorded = emulator
        .ssm()
        .get_parameter()
        .name("/glbox/twice/smtp-key")
        .send()
        .await
        .unwrap();
    let recorded: serde_json::Value =
        serde_json::from_str(recorded.parameter().unwrap().value().unwrap()).unwrap();
    assert_eq!(
        recorded["access_key_id"], key_id,
        "the password is the key's"
    );
    let lease = emulator
        .ssm()
        .get_parameter()
        .name("/glbox/twice/lease")
        .send()
        .await;
    assert!(lease.is_err(), "the lease was given back");

    emulator.start_recording();
    glbox(&emulator, &first, &args).assert_ok();
    let changes = mutating(&emulator.recorded_actions());
    assert!(
        changes.is_empty(),
        "a third up changes nothing: {changes:?}"
    );
}

/// A held lease: a changing run says who holds it; read-only commands
/// need none.
#[tokio::test]
async fn a_held_lease_names_its_holder_and_plan_needs_none() {
    let emulator = Emulator::start();
    let workspace = Workspace::new("name = \"held\"\n");
    emulator
        .ssm()
        .put_parameter()
        .name("/glbox/held/lease")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .value(r#"{"holder":"ci@builder pid 7","run":"x","command":"up","since":"2026-12-01T00:00:00Z","stale_after":"2099-01-01T00:00:00Z"}"#)
        .send()
        .await
        .unwrap();
    glbox(&emulator, &workspace, &["plan"]).assert_ok();
    // The waiting run is stopped early: the lease is not given up.
    let waiting = std::process::Command::new("timeout")
        .arg("8")
        .arg(env!("CARGO_BIN_EXE_glbox"))
        .args(["up", "--yes", "--no-bootstrap"])
        .envs([
            ("AWS_ENDPOINT_URL", emulator.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("HOME", workspace.path().display().to_string()),
            ("GLBOX_CALLER_IP_URL", "http://127.0.0.1:9/".into()),
        ])
        .current_dir(workspace.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&waiting.stderr);
    assert!(stderr.contains("held by ci@builder pid 7 (up)"), "{stderr}");
    let (instances, _) = tagged(&emulator, "held", "data").await;
    assert!(instances.is_empty(), "nothing launched without the lease");
}

/// `down --delete-email-identity` deletes only an SES identity glbox made
/// (it recorded that) and that no other glbox deployment sends as.
#[tokio::test]
async fn only_an_identity_glbox_made_and_nobody_else_uses_is_deleted() {
    let emulator = Emulator::start();
    let ses = emulator.ses("us-east-1");
    let identities = |ses: aws_sdk_ses::Client| async move {
        let out = ses.list_identities().send().await.unwrap();
        out.identities().to_vec()
    };
    let config = |name: &str, domain: &str| {
        format!("name = \"{name}\"\n[email]\nenabled = true\ndomain = \"{domain}\"\n")
    };
    // Someone else's identity, used by glbox.
    ses.verify_domain_identity()
        .domain("theirs.example")
        .send()
        .await
        .unwrap();
    let user = Workspace::new(&config("user", "theirs.example"));
    glbox(&emulator, &user, &["up", "--yes", "--no-bootstrap"]).assert_ok();
    let down = glbox(
        &emulator,
        &user,
        &["down", "--yes", "--delete-email-identity"],
    );
    down.assert_ok();
    assert!(
        output(&down).contains("glbox did not create it"),
        "{}",
        output(&down)
    );
    assert!(identities(ses.clone())
        .await
        .contains(&"theirs.example".to_string()));

    // glbox's own identity, shared by a second deployment.
    let maker = Workspace::new(&config("maker", "shared.example"));
    let sharer = Workspace::new(&config("sharer", "shared.example"));
    glbox(&emulator, &maker, &["up", "--yes", "--no-bootstrap"]).assert_ok();
    glbox(&emulator, &sharer, &["up", "--yes", "--no-bootstrap"]).assert_ok();
    let down = glbox(
        &emulator,
        &maker,
        &["down", "--yes", "--delete-email-identity"],
    );
    down.assert_ok();
    assert!(
        output(&down).contains("/glbox/sharer/"),
        "{}",
        output(&down)
    );
    assert!(identities(ses.clone())
        .await
        .contains(&"shared.example".to_string()));

    // glbox's own, used by nobody else: deleted.
    let alone = Workspace::new(&config("alone", "alone.example"));
    glbox(&emulator, &alone, &["up", "--yes", "--no-bootstrap"]).assert_ok();
    glbox(
        &emulator,
        &alone,
        &["down", "--yes", "--delete-email-identity"],
    )
    .assert_ok();
    assert!(!identities(ses).await.contains(&"alone.example".to_string()));
}

#[cfg(feature = "failpoints")]
async fn parameter_exists(emulator: &Emulator, name: &str) -> bool {
    emulator
        .ssm()
        .get_parameter()
        .name(name)
        .send()
        .await
        .is_ok()
}

/// Volumes with these tags, through the AWS API.
#[cfg(feature = "failpoints")]
async fn volumes_tagged(
    emulator: &Emulator,
    pairs: &[(&str, &str)],
) -> Vec<aws_sdk_ec2::types::Volume> {
    let filters = pairs.iter().map(|(k, v)| {
        Filter::builder()
            .name(format!("tag:{k}"))
            .values(*v)
            .build()
    });
    let out = emulator
        .ec2()
        .describe_volumes()
        .set_filters(Some(filters.collect()))
        .send()
        .await
        .unwrap();
    out.volumes().to_vec()
}

/// A run killed between CreateVolume and the volume's ownership record
/// leaves the open intent (written before the call, with its ClientToken)
/// and a tagged, unrecorded volume. The next `up` (and `lab up`) sees the
/// intent in the ledger's listing, replays it, and finishes that volume:
/// recorded, attached, the intent closed, no second volume. (A ledger
/// without an intent is not read at all:
/// `lab::each_seats_password_names_its_own_instance` counts that.)
#[cfg(feature = "failpoints")]
#[tokio::test]
async fn a_volume_an_interrupted_run_made_is_finished_not_made_again() {
    let emulator = Emulator::start();
    let crash = [("GLBOX_FAILPOINT", "volume-created")];
    let workspace = Workspace::new("name = \"trial\"\n");
    let args = ["up", "--yes", "--no-bootstrap"];
    let crashed = crate::common::glbox_with_env(&emulator, &workspace, &args, &crash);
    assert_eq!(crashed.code, 137, "{}", crashed.stderr);
    let made = volumes_tagged(&emulator, &box_tags("trial", "data")).await;
    assert_eq!(made.len(), 1);
    let planted = made[0].volume_id().unwrap().to_string();
    assert!(!parameter_exists(&emulator, &format!("/glbox/trial/owned/{planted}")).await);

    let up = glbox(&emulator, &workspace, &args);
    up.assert_ok();
    assert!(
        output(&up).contains("finished the data volume an interrupted run began"),
        "{}",
        output(&up)
    );
    let (instances, volumes) = tagged(&emulator, "trial", "data").await;
    assert_eq!(volumes, vec![planted.clone()], "no second volume");
    assert_eq!(volume(&emulator, &planted).await.unwrap().1, instances);
    assert!(parameter_exists(&emulator, &format!("/glbox/trial/owned/{planted}")).await);
    assert!(!parameter_exists(&emulator, "/glbox/trial/owned/intent-volume").await);

    let lab = Workspace::new("[lab]\nname = \"class\"\nseats = 2\nexpires_in = \"2h\"\n");
    let args = ["lab", "up", "--yes", "--no-bootstrap"];
    let crashed = crate::common::glbox_with_env(&emulator, &lab, &args, &crash);
    assert_eq!(crashed.code, 137, "{}", crashed.stderr);
    let seat_volumes = [("glbox:lab", "class"), ("glbox:role", "data")];
    let made: Vec<String> = volumes_tagged(&emulator, &seat_volumes)
        .await
        .iter()
        .map(|v| v.volume_id().unwrap().to_string())
        .collect();
    assert!(!made.is_empty());
    glbox(&emulator, &lab, &args).assert_ok();
    let after = volumes_tagged(&emulator, &seat_volumes).await;
    assert_eq!(after.len(), 2, "one volume a seat");
    for id in &made {
        let kept = after.iter().find(|v| v.volume_id() == Some(id.as_str()));
        assert!(
            kept.is_some_and(|v| v.attachments().len() == 1),
            "{id} finished and attached: {after:?}"
        );
    }
    for seat in ["s01", "s02"] {
        assert!(
            !parameter_exists(
                &emulator,
                &format!("/glbox-lab/class/{seat}/owned/intent-volume")
            )
            .await
        );
    }
}
