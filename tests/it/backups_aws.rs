//! The backups' AWS side, read back through the AWS APIs: the snapshot
//! schedule (Data Lifecycle Manager, modelled by the launcher) targets
//! exactly the data volume, the backup bucket is encrypted, private,
//! versioned, expiring and TLS-only, the instance role may write only its
//! backup objects, a second `up` changes nothing, turning `[backup]` off
//! removes the schedule and keeps the bucket, and `down` keeps the backups
//! (and says what that costs) unless `--delete-backups`.

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use serde_json::Value;

use crate::common::{glbox, mutating, Emulator, Workspace, REGION};

/// moto's account.
const ACCOUNT: &str = "123456789012";

const BACKUP: &str = "[backup]\nsnapshots = \"daily\"\nsnapshot_keep = 5\ns3 = true\ns3_keep_days = 14\ns3_time = \"02:30\"\ncopy_to_region = \"eu-west-1\"\n";

fn config(name: &str, backup: &str) -> String {
    format!("name = \"{name}\"\n{backup}")
}

fn bucket_of(name: &str) -> String {
    glbox::names::Names::new(name, REGION).backup_bucket(ACCOUNT)
}

fn s3(emulator: &Emulator) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "t"))
            .endpoint_url(emulator.endpoint())
            .force_path_style(true)
            .build(),
    )
}

fn dlm(emulator: &Emulator) -> aws_sdk_dlm::Client {
    aws_sdk_dlm::Client::from_conf(
        aws_sdk_dlm::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "t"))
            .endpoint_url(emulator.endpoint())
            .build(),
    )
}

fn up(emulator: &Emulator, workspace: &Workspace) {
    glbox(emulator, workspace, &["up", "--no-bootstrap", "--yes"]).assert_ok();
}

/// The deployment's volumes of one `glbox:role`.
async fn volumes(emulator: &Emulator, name: &str, role: &str) -> Vec<aws_sdk_ec2::types::Volume> {
    let filter = |key: &str, value: &str| Filter::builder().name(key).values(value).build();
    emulator
        .ec2()
        .describe_volumes()
        .filters(filter("tag:glbox:deployment", name))
        .filters(filter("tag:glbox:role", role))
        .send()
        .await
        .unwrap()
        .volumes()
        .to_vec()
}

/// The DLM policies targeting `Name=<value>`, in full.
async fn policies_targeting(
    emulator: &Emulator,
    value: &str,
) -> Vec<aws_sdk_dlm::types::LifecyclePolicy> {
    let client = dlm(emulator);
    let found = client
        .get_lifecycle_policies()
        .target_tags(format!("Name={value}"))
        .send()
        .await
        .unwrap();
    let mut policies = Vec::new();
    for summary in found.policies() {
        let policy = client
            .get_lifecycle_policy()
            .policy_id(summary.policy_id().unwrap())
            .send()
            .await
            .unwrap();
        policies.push(policy.policy().unwrap().clone());
    }
    policies
}

async fn bucket_exists(emulator: &Emulator, bucket: &str) -> bool {
    s3(emulator)
        .head_bucket()
        .bucket(bucket)
        .send()
        .await
        .is_ok()
}

#[tokio::test]
async fn up_schedules_snapshots_of_exactly_the_data_volume_and_makes_a_private_bucket() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&config("trial", BACKUP));
    up(&emulator, &workspace);

    // The schedule targets one tag, and only the data volume carries it.
    let data = &volumes(&emulator, "trial", "data").await[0];
    let name_tag = data
        .tags()
        .iter()
        .find(|t| t.key() == Some("Name"))
        .and_then(|t| t.value())
        .unwrap()
        .to_string();
    let policies = policies_targeting(&emulator, &name_tag).await;
    assert_eq!(policies.len(), 1, "{policies:?}");
    let policy = &policies[0];
    let details = policy.policy_details().unwrap();
    let targets: Vec<(String, String)> = details
        .target_tags()
        .iter()
        .map(|t| (t.key().unwrap().into(), t.value().unwrap().into()))
        .collect();
    assert_eq!(targets, vec![("Name".to_string(), name_tag.clone())]);
    let tagged_so = emulator
        .ec2()
        .describe_volumes()
        .filters(Filter::builder().name("tag:Name").values(&name_tag).build())
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = tagged_so
        .volumes()
        .iter()
        .filter_map(|v| v.volume_id())
        .collect();
    assert_eq!(
        ids,
        vec![data.volume_id().unwrap()],
        "only the data volume is targeted"
    );
    assert_eq!(
        details.resource_types(),
        [aws_sdk_dlm::types::ResourceTypeValues::Volume]
    );

    let schedule = &details.schedules()[0];
    let create = schedule.create_rule().unwrap();
    assert_eq!(create.interval(), Some(24));
    assert_eq!(create.times(), ["02:30".to_string()]);
    assert_eq!(schedule.retain_rule().unwrap().count(), Some(5));
    let tags_to_add: Vec<(&str, &str)> = schedule
        .tags_to_add()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert!(
        tags_to_add.contains(&("glbox:deployment", "trial")),
        "{tags_to_add:?}"
    );
    assert!(tags_to_add.contains(&("glbox:snapshot-reason", "scheduled")));
    let copy = &schedule.cross_region_copy_rules()[0];
    assert_eq!(copy.target_region(), Some("eu-west-1"));
    assert_eq!(copy.encrypted(), Some(true));
    assert_eq!(copy.retain_rule().unwrap().interval(), Some(5));
    assert_eq!(policy.state().unwrap().as_str(), "ENABLED");
    assert_eq!(
        policy.tags().unwrap().get("glbox:deployment").unwrap(),
        "trial"
    );

    // DLM acts as the deployment's own role, which only DLM may assume.
    let role_arn = policy.execution_role_arn().unwrap();
    assert!(
        role_arn.ends_with("role/glbox/glbox-trial-us-east-1-dlm"),
        "{role_arn}"
    );
    let role = emulator
        .iam()
        .get_role()
        .role_name("glbox-trial-us-east-1-dlm")
        .send()
        .await
        .unwrap();
    let trust = urlencoding_decode(role.role().unwrap().assume_role_policy_document().unwrap());
    assert!(
        trust.contains("dlm.amazonaws.com") && !trust.contains("ec2.amazonaws.com"),
        "{trust}"
    );

    // The bucket, part by part.
    let bucket = bucket_of("trial");
    let client = s3(&emulator);
    let encryption = client
        .get_bucket_encryption()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let rule = &encryption
        .server_side_encryption_configuration()
        .unwrap()
        .rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm()
            .as_str(),
        "AES256"
    );
    let block = client
        .get_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let versioning = client
        .get_bucket_versioning()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(versioning.status().unwrap().as_str(), "Enabled");
    let lifecycle = client
        .get_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let rule = &lifecycle.rules()[0];
    assert_eq!(rule.status().as_str(), "Enabled");
    assert_eq!(rule.expiration().unwrap().days(), Some(14));
    assert_eq!(
        rule.noncurrent_version_expiration()
            .unwrap()
            .noncurrent_days(),
        Some(14)
    );
    let tags = client
        .get_bucket_tagging()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let tags: Vec<(&str, &str)> = tags
        .tag_set()
        .iter()
        .map(|t| (t.key(), t.value()))
        .collect();
    assert!(tags.contains(&("glbox:deployment", "trial")), "{tags:?}");
    assert!(tags.contains(&("glbox:managed-by", "glbox")), "{tags:?}");
    let policy = client
        .get_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let statement = &policy["Statement"][0];
    assert_eq!(statement["Effect"], "Deny");
    assert_eq!(
        statement["Condition"]["Bool"]["aws:SecureTransport"],
        "false"
    );

    // The instance role may write that bucket's backup objects.
    let inline = emulator
        .iam()
        .get_role_policy()
        .role_name("glbox-trial-us-east-1")
        .policy_name("glbox-backup-objects")
        .send()
        .await
        .unwrap();
    let document = urlencoding_decode(inline.policy_document());
    assert!(
        document.contains(&format!("arn:aws:s3:::{bucket}/*_gitlab_backup.tar")),
        "{document}"
    );
    assert!(
        document.contains(&format!("arn:aws:s3:::{bucket}/config/*")),
        "{document}"
    );

    emulator.start_recording();
    up(&emulator, &workspace);
    assert_eq!(mutating(&emulator.recorded_actions()), Vec::<String>::new());
}

/// IAM returns policy documents URL-encoded: decoded and re-serialized.
fn urlencoding_decode(text: &str) -> String {
    glbox::aws::iam::parse_policy(text)
        .expect("a policy document")
        .to_string()
}

#[tokio::test]
async fn a_drifted_schedule_and_bucket_are_repaired_and_backups_off_removes_the_schedule() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&config("trial", BACKUP));
    up(&emulator, &workspace);
    let bucket = bucket_of("trial");
    let client = s3(&emulator);
    client
        .delete_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    client
        .delete_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();

    // A longer retention is an update of the same policy.
    workspace.write_config(&config(
        "trial",
        &BACKUP.replace("snapshot_keep = 5", "snapshot_keep = 9"),
    ));
    emulator.start_recording();
    up(&emulator, &workspace);
    let changes = mutating(&emulator.recorded_actions());
    let policies = policies_targeting(&emulator, "glbox-trial-data").await;
    assert_eq!(policies.len(), 1);
    let schedule = &policies[0].policy_details().unwrap().schedules()[0];
    assert_eq!(schedule.retain_rule().unwrap().count(), Some(9));
    assert!(
        client
            .get_bucket_policy()
            .bucket(&bucket)
            .send()
            .await
            .is_ok(),
        "{changes:?}"
    );
    assert!(client
        .get_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .is_ok());

    // Backups off: the schedule and its role go, the bucket (the backups)
    // stays.
    workspace.write_config(&config("trial", ""));
    up(&emulator, &workspace);
    assert!(policies_targeting(&emulator, "glbox-trial-data")
        .await
        .is_empty());
    assert!(emulator
        .iam()
        .get_role()
        .role_name("glbox-trial-us-east-1-dlm")
        .send()
        .await
        .is_err());
    assert!(bucket_exists(&emulator, &bucket).await);
    let inline = emulator
        .iam()
        .list_role_policies()
        .role_name("glbox-trial-us-east-1")
        .send()
        .await
        .unwrap();
    assert!(
        !inline
            .policy_names()
            .contains(&"glbox-backup-objects".to_string()),
        "the instance role no longer writes to the bucket"
    );
    emulator.start_recording();
    up(&emulator, &workspace);
    assert_eq!(mutating(&emulator.recorded_actions()), Vec::<String>::new());
}

#[tokio::test]
async fn a_bucket_left_half_made_is_finished_and_one_not_glboxs_is_refused() {
    let emulator = Emulator::start();
    let bucket = bucket_of("trial");
    let client = s3(&emulator);
    // Someone else's bucket of glbox's name: refused before GitLab could
    // write to it, and left as it was.
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    let workspace = Workspace::new(&config("trial", BACKUP));
    let refused = glbox(&emulator, &workspace, &["up", "--no-bootstrap", "--yes"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains(&bucket) && refused.stderr.contains("fix:"),
        "{}",
        refused.stderr
    );
    assert!(
        client
            .get_bucket_tagging()
            .bucket(&bucket)
            .send()
            .await
            .is_err(),
        "not tagged"
    );

    // The same bucket as a run that died right after CreateBucket leaves
    // it: recorded first, then made, nothing set yet.
    emulator
        .ssm()
        .put_parameter()
        .name(format!("/glbox/trial/owned/{bucket}"))
        .value("backup-bucket")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    up(&emulator, &workspace);
    assert!(client
        .get_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .is_ok());
    assert!(client
        .get_bucket_encryption()
        .bucket(&bucket)
        .send()
        .await
        .is_ok());
    let versioning = client
        .get_bucket_versioning()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(versioning.status().unwrap().as_str(), "Enabled");
    emulator.start_recording();
    up(&emulator, &workspace);
    assert_eq!(mutating(&emulator.recorded_actions()), Vec::<String>::new());
}

#[tokio::test]
async fn a_bucket_outside_us_east_1_is_made_in_its_region() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&format!(
        "name = \"trial\"\nregion = \"eu-west-1\"\n{}",
        BACKUP.replace(
            "copy_to_region = \"eu-west-1\"",
            "copy_to_region = \"us-east-1\""
        )
    ));
    up(&emulator, &workspace);
    let bucket = glbox::names::Names::new("trial", "eu-west-1").backup_bucket(ACCOUNT);
    let location = s3(&emulator)
        .get_bucket_location()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(
        location.location_constraint().unwrap().as_str(),
        "eu-west-1"
    );
}

/// What the schedule leaves: a snapshot of the data volume, tagged as DLM
/// tags it (the model takes none itself).
async fn scheduled_snapshot(emulator: &Emulator, volume_id: &str) -> String {
    let tag = |key: &str, value: &str| Tag::builder().key(key).value(value).build();
    emulator
        .ec2()
        .create_snapshot()
        .volume_id(volume_id)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Snapshot)
                .tags(tag("glbox:deployment", "trial"))
                .tags(tag("glbox:managed-by", "glbox"))
                .tags(tag("glbox:role", "snapshot"))
                .tags(tag("glbox:snapshot-reason", "scheduled"))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .snapshot_id()
        .unwrap()
        .to_string()
}

async fn snapshot_exists(emulator: &Emulator, id: &str) -> bool {
    emulator
        .ec2()
        .describe_snapshots()
        .snapshot_ids(id)
        .send()
        .await
        .is_ok_and(|out| !out.snapshots().is_empty())
}

#[tokio::test]
async fn down_keeps_the_backups_and_their_cost_unless_asked_to_delete_them() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&config("trial", BACKUP));
    up(&emulator, &workspace);
    let volume = volumes(&emulator, "trial", "data").await[0]
        .volume_id()
        .unwrap()
        .to_string();
    let snapshot = scheduled_snapshot(&emulator, &volume).await;
    let bucket = bucket_of("trial");
    let client = s3(&emulator);
    let archive = "1733100000_2026_12_02_18.6.0_gitlab_backup.tar";
    for key in [
        archive,
        "config/1733100000_2026_12_02_18.6.0/gitlab-secrets.json",
    ] {
        client
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(vec![7u8; 2048].into())
            .send()
            .await
            .unwrap();
    }
    // A second version of the archive: --delete-backups must remove both.
    client
        .put_object()
        .bucket(&bucket)
        .key(archive)
        .body(vec![8u8; 1024].into())
        .send()
        .await
        .unwrap();

    let kept = glbox(&emulator, &workspace, &["down", "--yes"]);
    kept.assert_ok();
    assert!(bucket_exists(&emulator, &bucket).await);
    assert!(snapshot_exists(&emulator, &snapshot).await);
    assert!(
        kept.stdout
            .contains(&format!("Kept backup bucket {bucket}"))
            && kept.stdout.contains(&snapshot)
            && kept.stdout.contains("/month (estimate"),
        "{}",
        kept.stdout
    );
    // The schedule went with the box: it would go on snapshotting the
    // kept volume.
    assert!(policies_targeting(&emulator, "glbox-trial-data")
        .await
        .is_empty());
    assert!(emulator
        .iam()
        .get_role()
        .role_name("glbox-trial-us-east-1-dlm")
        .send()
        .await
        .is_err());

    let deleted = glbox(
        &emulator,
        &workspace,
        &["down", "--delete-backups", "--yes"],
    );
    deleted.assert_ok();
    assert!(
        !bucket_exists(&emulator, &bucket).await,
        "{}",
        deleted.stdout
    );
    assert!(!snapshot_exists(&emulator, &snapshot).await);
    assert!(
        emulator
            .ssm()
            .get_parameter()
            .name(format!("/glbox/trial/owned/{bucket}"))
            .send()
            .await
            .is_err(),
        "the bucket's record goes with it"
    );
}

#[tokio::test]
async fn backups_lists_snapshots_and_s3_backups_with_which_are_complete() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&config("trial", BACKUP));
    up(&emulator, &workspace);
    let volume = volumes(&emulator, "trial", "data").await[0]
        .volume_id()
        .unwrap()
        .to_string();
    let snapshot = scheduled_snapshot(&emulator, &volume).await;
    let bucket = bucket_of("trial");
    let client = s3(&emulator);
    let put = |key: &'static str, size: usize| {
        client
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(vec![1u8; size].into())
            .send()
    };
    put("1733000000_2026_12_01_18.6.0_gitlab_backup.tar", 4096)
        .await
        .unwrap();
    put(
        "config/1733000000_2026_12_01_18.6.0/gitlab-secrets.json",
        100,
    )
    .await
    .unwrap();
    put("config/1733000000_2026_12_01_18.6.0/gitlab.rb", 100)
        .await
        .unwrap();
    // An upload whose secrets never arrived.
    put("1733100000_2026_12_02_18.6.0_gitlab_backup.tar", 2048)
        .await
        .unwrap();

    let listed = glbox(&emulator, &workspace, &["backups", "--output", "json"]);
    let json = listed.assert_ok().json();
    let snapshots = json["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 1, "{json}");
    assert_eq!(snapshots[0]["id"], snapshot.as_str());
    assert_eq!(snapshots[0]["reason"], "scheduled");
    let mut backups: Vec<(String, bool, u64)> = json["s3_backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_string(),
                b["complete"].as_bool().unwrap(),
                b["size_bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    backups.sort();
    assert_eq!(
        backups,
        [
            ("1733000000_2026_12_01_18.6.0".to_string(), true, 4096),
            ("1733100000_2026_12_02_18.6.0".to_string(), false, 2048),
        ]
    );
    let text = glbox(&emulator, &workspace, &["backups"]);
    assert!(
        text.assert_ok().stdout.contains("INCOMPLETE"),
        "{}",
        text.stdout
    );

    let status = glbox(&emulator, &workspace, &["status", "--output", "json"]);
    let json = status.assert_ok().json();
    assert_eq!(
        json["backups"]["snapshot"]["id"],
        snapshot.as_str(),
        "{json}"
    );
    assert!(json["backups"]["s3_backup"]["name"].is_string(), "{json}");
    let text = glbox(&emulator, &workspace, &["status"]);
    assert!(
        text.assert_ok().stdout.contains("last snapshot:") && text.stdout.contains(&snapshot),
        "{}",
        text.stdout
    );
}

/// A crash right after the bucket's or the schedule's step (the
/// failpoints of `crash_resume`, with `[backup]` on): the next `up`
/// finishes, with one schedule and one bucket, and a third changes nothing.
#[cfg(feature = "failpoints")]
#[tokio::test]
async fn a_crash_after_the_backup_steps_is_finished_by_the_next_up() {
    for step in ["backup-bucket", "snapshot-schedule"] {
        let emulator = Emulator::start();
        let workspace = Workspace::new(&config("trial", BACKUP));
        let crashed = crate::common::glbox_with_env(
            &emulator,
            &workspace,
            &["up", "--no-bootstrap", "--yes"],
            &[("GLBOX_FAILPOINT", step)],
        );
        assert_eq!(crashed.code, 137, "{step}: {}", crashed.stderr);
        up(&emulator, &workspace);
        assert_eq!(
            policies_targeting(&emulator, "glbox-trial-data")
                .await
                .len(),
            1,
            "{step}"
        );
        assert!(
            bucket_exists(&emulator, &bucket_of("trial")).await,
            "{step}"
        );
        emulator.start_recording();
        up(&emulator, &workspace);
        assert_eq!(
            mutating(&emulator.recorded_actions()),
            Vec::<String>::new(),
            "{step}"
        );
    }
}
