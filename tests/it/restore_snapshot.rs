//! `glbox restore --snapshot`: through the emulator, with the box's
//! commands run in the sandbox (see `add_sandbox_execution` and
//! `add_sandbox_snapshot_data` in tests/emulator/moto_launcher.py: a
//! snapshot copies the volume's data, a volume made from it starts with
//! that copy). Outcomes are read through the AWS API and the sandbox's
//! files: the new volume attached and made from the snapshot, the old one
//! kept, detached and tagged replaced, GitLab configured on the restored
//! data and verified; a crash at every step converges; refusals change
//! nothing.

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification, Volume};

use crate::common::sandbox::Sandbox;
use crate::common::{glbox, mutating, running_instance, Emulator, Workspace};

const DEPLOYMENT: &str = "trial";

fn config() -> String {
    format!(
        "name = \"{DEPLOYMENT}\"\n{}",
        crate::common::verify_section("")
    )
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn tags(pairs: &[(&str, &str)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(ResourceType::Snapshot)
        .set_tags(Some(
            pairs
                .iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .build()
}

/// A box that is up, its commands run in a sandbox.
struct World {
    emulator: Emulator,
    sandbox: Sandbox,
    workspace: Workspace,
}

impl World {
    async fn up() -> World {
        let emulator = Emulator::start();
        let sandbox = Sandbox::new();
        emulator
            .behave(serde_json::json!({"sandbox": sandbox.path("").display().to_string()}))
            .await;
        let workspace = Workspace::new(&config());
        glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
        World {
            emulator,
            sandbox,
            workspace,
        }
    }

    async fn data_volumes(&self) -> Vec<Volume> {
        self.emulator
            .ec2()
            .describe_volumes()
            .filters(filter("tag:glbox:deployment", DEPLOYMENT))
            .filters(filter("tag:glbox:role", "data"))
            .send()
            .await
            .unwrap()
            .volumes()
            .to_vec()
    }

    async fn volume(&self, id: &str) -> Volume {
        self.emulator
            .ec2()
            .describe_volumes()
            .volume_ids(id)
            .send()
            .await
            .unwrap()
            .volumes()[0]
            .clone()
    }

    async fn instance_id(&self) -> String {
        running_instance(&self.emulator, DEPLOYMENT)
            .await
            .instance_id()
            .unwrap()
            .to_string()
    }

    /// The data on a volume, as the sandbox keeps it.
    fn data_file(&self, volume_id: &str) -> std::path::PathBuf {
        self.sandbox.path(&format!("volumes/{volume_id}/marker"))
    }

    /// A snapshot of `volume_id` with `pairs` as its tags, as `glbox
    /// backup` or the schedule leaves one.
    async fn snapshot(&self, volume_id: &str, pairs: &[(&str, &str)]) -> String {
        self.emulator
            .ec2()
            .create_snapshot()
            .volume_id(volume_id)
            .set_tag_specifications((!pairs.is_empty()).then(|| vec![tags(pairs)]))
            .send()
            .await
            .unwrap()
            .snapshot_id()
            .unwrap()
            .to_string()
    }

    /// The data volume (written "before"), a snapshot of it, then data
    /// written since ("after"): the restore must bring back "before".
    async fn snapshot_of_the_data(&self) -> (String, String) {
        let old = self.data_volumes().await[0]
            .volume_id()
            .unwrap()
            .to_string();
        std::fs::write(self.data_file(&old), "before").unwrap();
        let snapshot = self.snapshot(&old, OWN_TAGS).await;
        std::fs::write(self.data_file(&old), "after").unwrap();
        (old, snapshot)
    }

    fn restore(&self, snapshot: &str) -> crate::common::Run {
        glbox(
            &self.emulator,
            &self.workspace,
            &["restore", "--snapshot", snapshot, "--yes"],
        )
    }

    /// The end state of a restore, read through the AWS API and the
    /// sandbox: exactly one volume made from the snapshot, the deployment's
    /// only data volume, attached at /dev/sdf and holding the snapshot's
    /// data where GitLab reads it; the old one kept, detached, tagged
    /// replaced; GitLab reconfigured and running; no restore left open.
    async fn assert_restored(&self, old: &str, snapshot: &str, context: &str) -> String {
        let instance = self.instance_id().await;
        let made = self
            .emulator
            .ec2()
            .describe_volumes()
            .filters(filter("snapshot-id", snapshot))
            .send()
            .await
            .unwrap();
        assert_eq!(
            made.volumes().len(),
            1,
            "{context}: volumes from the snapshot"
        );
        let data = self.data_volumes().await;
        assert_eq!(data.len(), 1, "{context}: data volumes {data:?}");
        let new = &data[0];
        let new_id = new.volume_id().unwrap().to_string();
        assert_eq!(
            made.volumes()[0].volume_id(),
            Some(new_id.as_str()),
            "{context}"
        );
        assert_eq!(new.snapshot_id(), Some(snapshot), "{context}");
        assert_eq!(new.encrypted(), Some(true), "{context}");
        assert_eq!(new.size(), Some(100), "{context}: the configured size");
        let attachment = &new.attachments()[0];
        assert_eq!(
            attachment.instance_id(),
            Some(instance.as_str()),
            "{context}"
        );
        assert_eq!(attachment.device(), Some("/dev/sdf"), "{context}");
        assert_eq!(
            tag(new.tags(), "glbox:managed-by"),
            Some("glbox"),
            "{context}"
        );

        let kept = self.volume(old).await;
        assert_eq!(
            kept.state().map(|s| s.as_str()),
            Some("available"),
            "{context}"
        );
        assert!(kept.attachments().is_empty(), "{context}: {kept:?}");
        assert_eq!(
            tag(kept.tags(), "glbox:role"),
            Some("replaced-data"),
            "{context}"
        );
        assert_eq!(
            tag(kept.tags(), "glbox:deployment"),
            Some(DEPLOYMENT),
            "{context}"
        );
        let by = tag(kept.tags(), "glbox:replaced-by").unwrap_or_default();
        assert!(
            by.contains(snapshot) && by.contains(&new_id),
            "{context}: {by}"
        );
        assert!(tag(kept.tags(), "glbox:replaced-at").is_some(), "{context}");

        let mounted = self.sandbox.instance(&instance).dir.join("mnt");
        assert_eq!(
            std::fs::canonicalize(&mounted).unwrap(),
            std::fs::canonicalize(self.sandbox.path(&format!("volumes/{new_id}"))).unwrap(),
            "{context}: the new volume is mounted"
        );
        assert_eq!(
            std::fs::read_to_string(mounted.join("marker")).unwrap(),
            "before",
            "{context}: GitLab's data is the snapshot's"
        );
        assert_eq!(
            std::fs::read_to_string(self.data_file(old)).unwrap(),
            "after"
        );
        let box_ = self.sandbox.instance(&instance);
        assert!(box_.services_running(), "{context}: {:?}", box_.calls());
        assert!(
            box_.reconfigures() >= 2,
            "{context}: reconfigured on the restored data: {:?}",
            box_.calls()
        );
        // GitLab stopped, the old volume unmounted, then the new one mounted
        // and GitLab started on it, before the bootstrap (a resumed run may
        // repeat a step: the first of each counts).
        let calls = box_.calls();
        let first = |prefix: &str| calls.iter().position(|c| c.starts_with(prefix));
        let stopped = first("gitlab-ctl stop").unwrap_or_else(|| panic!("{context}: {calls:?}"));
        let unmounted = first("umount ").unwrap_or_else(|| panic!("{context}: {calls:?}"));
        let mounted = first(&format!("glbox-prepare-data {new_id} "))
            .unwrap_or_else(|| panic!("{context}: {calls:?}"));
        let started = first("gitlab-ctl start").unwrap_or_else(|| panic!("{context}: {calls:?}"));
        assert!(
            stopped < unmounted && unmounted < mounted && mounted < started,
            "{context}: {calls:?}"
        );

        let parameters = self
            .emulator
            .ssm()
            .get_parameters_by_path()
            .path(format!("/glbox/{DEPLOYMENT}/owned/"))
            .send()
            .await
            .unwrap();
        let names: Vec<&str> = parameters
            .parameters()
            .iter()
            .filter_map(|p| p.name())
            .collect();
        assert!(
            !names.iter().any(|n| n.contains("intent")),
            "{context}: no intent left open: {names:?}"
        );
        assert!(
            names.iter().any(|n| n.ends_with(&new_id)),
            "{context}: the new volume is recorded"
        );
        new_id
    }

    /// The same restore again, then `up`: neither changes anything.
    async fn assert_nothing_left_to_do(&self, snapshot: &str, context: &str) {
        self.emulator.start_recording();
        let again = self.restore(snapshot);
        again.assert_ok();
        assert!(
            again.stdout.contains("nothing to do"),
            "{context}: {}",
            again.stdout
        );
        assert_eq!(
            mutating(&self.emulator.recorded_actions()),
            Vec::<String>::new(),
            "{context}: the same restore again"
        );
        self.emulator.start_recording();
        glbox(&self.emulator, &self.workspace, &["up", "--yes"]).assert_ok();
        assert_eq!(
            mutating(&self.emulator.recorded_actions()),
            Vec::<String>::new(),
            "{context}: up after the restore"
        );
    }
}

const OWN_TAGS: &[(&str, &str)] = &[
    ("glbox:deployment", DEPLOYMENT),
    ("glbox:managed-by", "glbox"),
    ("glbox:role", "snapshot"),
    ("glbox:snapshot-reason", "manual"),
];

#[tokio::test]
async fn a_restore_swaps_in_a_volume_made_from_the_snapshot_and_keeps_the_old_one() {
    let world = World::up().await;
    let bootstrap_before = crate::common::bootstrap_tag(&world.emulator, DEPLOYMENT).await;
    let (old, snapshot) = world.snapshot_of_the_data().await;

    let restored = world.restore(&snapshot);
    restored.assert_ok();
    assert!(
        restored.stdout.contains("GitLab is healthy."),
        "{}",
        restored.stdout
    );
    assert!(
        restored
            .stdout
            .contains(&format!("kept:  the replaced data volume {old}")),
        "{}",
        restored.stdout
    );
    let new = world.assert_restored(&old, &snapshot, "restore").await;
    let bootstrap_after = crate::common::bootstrap_tag(&world.emulator, DEPLOYMENT).await;
    assert_ne!(
        bootstrap_before, bootstrap_after,
        "the bootstrap ran for the new volume"
    );

    let verify = glbox(&world.emulator, &world.workspace, &["verify"]);
    verify.assert_ok();
    world
        .assert_nothing_left_to_do(&snapshot, "after the restore")
        .await;

    // `down` keeps data volumes; the replaced one is not its data volume
    // and stays too.
    let down = glbox(
        &world.emulator,
        &world.workspace,
        &["down", "--yes", "--delete-data", "--no-snapshot"],
    );
    down.assert_ok();
    assert!(
        down.stdout
            .contains(&format!("Kept volume {old}, which a restore replaced")),
        "down says it keeps the replaced volume:\n{}",
        down.stdout
    );
    let kept = world.volume(&old).await;
    assert_eq!(tag(kept.tags(), "glbox:role"), Some("replaced-data"));
    let gone = world
        .emulator
        .ec2()
        .describe_volumes()
        .filters(filter("volume-id", &new))
        .send()
        .await
        .unwrap();
    assert!(
        gone.volumes().is_empty(),
        "down --delete-data deleted the data volume"
    );
}

// Crashes and interrupts need the failpoints (scripts/test turns them on).
#[cfg(feature = "failpoints")]
#[tokio::test]
async fn a_crash_at_any_step_of_a_restore_is_finished_by_the_same_command() {
    for step in glbox::resources::restore::CHECKPOINTS {
        let world = World::up().await;
        let (old, snapshot) = world.snapshot_of_the_data().await;
        let crashed = crate::common::glbox_with_env(
            &world.emulator,
            &world.workspace,
            &["restore", "--snapshot", &snapshot, "--yes"],
            &[("GLBOX_FAILPOINT", step)],
        );
        assert_eq!(crashed.code, 137, "{step}: {}", crashed.stderr);
        assert!(
            crashed
                .stderr
                .contains(&format!("failpoint: crashing after {step}")),
            "{step}: {}",
            crashed.stderr
        );
        world.restore(&snapshot).assert_ok();
        let context = format!("crash after {step}");
        world.assert_restored(&old, &snapshot, &context).await;
        world.assert_nothing_left_to_do(&snapshot, &context).await;
    }
}

#[cfg(feature = "failpoints")]
#[tokio::test]
async fn ctrl_c_stops_a_restore_at_a_safe_point_and_says_how_to_resume() {
    let world = World::up().await;
    let (old, snapshot) = world.snapshot_of_the_data().await;
    let stopped = crate::common::glbox_with_env(
        &world.emulator,
        &world.workspace,
        &["restore", "--snapshot", &snapshot, "--yes"],
        &[("GLBOX_FAILPOINT", "sigint:restore-detached")],
    );
    assert_eq!(stopped.code, 130, "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("stopped after restore-detached")
            && stopped
                .stderr
                .contains(&format!("run glbox restore --snapshot {snapshot} again")),
        "{}",
        stopped.stderr
    );
    // Meanwhile `up` would pick a data volume on its own: refused, with
    // the command that finishes the restore.
    let up = glbox(&world.emulator, &world.workspace, &["up", "--yes"]);
    assert_ne!(up.code, 0, "{}", up.stdout);
    assert!(
        up.stderr.contains("is not finished")
            && up
                .stderr
                .contains(&format!("run glbox restore --snapshot {snapshot}")),
        "{}",
        up.stderr
    );
    world.restore(&snapshot).assert_ok();
    world.assert_restored(&old, &snapshot, "Ctrl-C").await;
}

/// The old volume cannot be unmounted: nothing is detached, the
/// deployment keeps its data volume, and once the cause is gone the same
/// command finishes.
#[tokio::test]
async fn a_volume_that_cannot_be_unmounted_is_not_detached() {
    let world = World::up().await;
    let (old, snapshot) = world.snapshot_of_the_data().await;
    std::fs::write(world.sandbox.path("umount-busy"), "").unwrap();
    let failed = world.restore(&snapshot);
    assert_ne!(failed.code, 0);
    assert!(
        failed.stderr.contains("target is busy"),
        "{}",
        failed.stderr
    );
    let still = world.volume(&old).await;
    assert_eq!(
        still.attachments()[0].instance_id(),
        Some(world.instance_id().await.as_str())
    );
    assert_eq!(tag(still.tags(), "glbox:role"), Some("data"));

    std::fs::remove_file(world.sandbox.path("umount-busy")).unwrap();
    world.restore(&snapshot).assert_ok();
    world
        .assert_restored(&old, &snapshot, "after the unmount worked")
        .await;
}

#[tokio::test]
async fn unknown_foreign_and_too_big_snapshots_are_refused_before_any_change() {
    let world = World::up().await;
    let old = world.data_volumes().await[0]
        .volume_id()
        .unwrap()
        .to_string();
    let ec2 = world.emulator.ec2();

    world.emulator.start_recording();
    let malformed = world.restore("vol-0123456789abcdef0");
    assert_ne!(malformed.code, 0);
    assert!(
        malformed.stderr.contains("--snapshot"),
        "{}",
        malformed.stderr
    );
    assert_eq!(
        world.emulator.recorded_actions(),
        Vec::<String>::new(),
        "no AWS call at all"
    );

    let theirs = world
        .snapshot(
            &old,
            &[("glbox:deployment", "prod"), ("glbox:managed-by", "glbox")],
        )
        .await;
    // Volumes glbox did not make: a 200 GiB one (its snapshot is the
    // deployment's by its tags only) and a stray one (its snapshot carries
    // no tags: nothing makes it the deployment's).
    let zone = world
        .volume(&old)
        .await
        .availability_zone()
        .unwrap()
        .to_string();
    let made = |size: i32| {
        ec2.create_volume()
            .availability_zone(zone.clone())
            .size(size)
            .send()
    };
    let big = made(200).await.unwrap();
    let stray = made(10).await.unwrap();
    crate::common::past_fresh_id_window().await;
    let big = world.snapshot(big.volume_id().unwrap(), OWN_TAGS).await;
    let untagged = world.snapshot(stray.volume_id().unwrap(), &[]).await;

    world.emulator.start_recording();
    let cases = [
        (
            "snap-0123456789abcdef0",
            "not one of this account's snapshots",
        ),
        (theirs.as_str(), "belongs to deployment \"prod\""),
        (untagged.as_str(), "is not of deployment \"trial\""),
        (big.as_str(), "data_volume.size_gib"),
    ];
    for (snapshot, why) in cases {
        let refused = world.restore(snapshot);
        assert_ne!(refused.code, 0, "{snapshot}");
        assert!(
            refused.stderr.contains(why),
            "{snapshot}: {}",
            refused.stderr
        );
        assert!(
            refused.stderr.contains("fix:"),
            "{snapshot}: {}",
            refused.stderr
        );
    }
    assert_eq!(
        mutating(&world.emulator.recorded_actions()),
        Vec::<String>::new(),
        "refusals change nothing"
    );
    let data = world.data_volumes().await;
    assert_eq!(data.len(), 1);
    assert_eq!(data[0].volume_id(), Some(old.as_str()));
}

#[test]
fn the_swap_script_passes_shellcheck() {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cloud-init/restore-swap.sh");
    let out = std::process::Command::new("shellcheck")
        .arg(&script)
        .output()
        .expect("shellcheck (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
