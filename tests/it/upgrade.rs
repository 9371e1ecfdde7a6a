//! Upgrades across GitLab's required stops: the bootstrap walking the stop
//! list in the sandbox (where the package's upgrade check, db:migrate and
//! the background migrations' status are modelled: see the upgrade block
//! of `common/sandbox.rs`), and `up` through the emulator taking the
//! pre-upgrade snapshot first.

use crate::common::sandbox::{bootstrap_script, output_text, succeeded, Sandbox};
use crate::common::{glbox, mutating, running_instance, settings, Emulator, Workspace};

const URL: &str = "http://198.51.100.1";

fn script(version: &str) -> String {
    bootstrap_script(
        &settings(&format!(
            "name = \"trial\"\n[gitlab]\nversion = \"{version}\"\n"
        )),
        URL,
    )
}

/// The versions the package manager was asked to install, in order.
fn installs(sandbox: &Sandbox) -> Vec<String> {
    sandbox
        .calls()
        .iter()
        .filter_map(|c| c.strip_prefix("package install "))
        .map(str::to_string)
        .collect()
}

fn read(sandbox: &Sandbox, path: &str) -> String {
    std::fs::read_to_string(sandbox.path(path)).unwrap_or_default()
}

/// The versions in the data volume's history, oldest first.
fn history(sandbox: &Sandbox) -> Vec<String> {
    read(sandbox, "data/glbox/version-history")
        .lines()
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

const STOPS: [&str; 6] = ["17.1.8", "17.3.7", "17.5.5", "17.8.7", "17.11.7", "18.2.8"];

#[test]
fn an_upgrade_walks_every_stop_in_order_and_waits_for_its_migrations() {
    let sandbox = Sandbox::new();
    succeeded(&sandbox.run(&script("17.0.1")));
    assert_eq!(installs(&sandbox), ["17.0.1"]);

    let out = succeeded(&sandbox.run(&script("18.5.1")));
    let mut expected: Vec<&str> = STOPS.to_vec();
    expected.push("18.5.1");
    assert_eq!(installs(&sandbox), expected, "{out}");
    for (i, stop) in STOPS.iter().enumerate() {
        assert!(
            out.contains(&format!(
                "glbox-phase: upgrade stop {stop} ({} of 7)",
                i + 1
            )),
            "{out}"
        );
    }
    assert!(
        out.contains("glbox-phase: upgrade to 18.5.1 (7 of 7)"),
        "{out}"
    );

    // Between two installs: that stop's database migrated, then its
    // background migrations asked about until none is left.
    let calls = sandbox.calls();
    for (stop, next) in STOPS.iter().zip(expected.iter().skip(1)) {
        let at = |prefix: &str| {
            calls
                .iter()
                .position(|c| c.starts_with(prefix))
                .unwrap_or_else(|| panic!("{prefix}: {calls:#?}"))
        };
        let installed = at(&format!("package install {stop}"));
        let next_install = at(&format!("package install {next}"));
        let polls: Vec<usize> = calls
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.starts_with(&format!(
                    "gitlab-rake gitlab:background_migrations:status schema={stop}"
                ))
            })
            .map(|(i, _)| i)
            .collect();
        assert!(
            polls.len() >= 3 && polls.iter().all(|&p| installed < p && p < next_install),
            "{stop}: still running for two polls, then finished, all before {next}: {calls:#?}"
        );
    }
    assert_eq!(read(&sandbox, "installed").trim(), "18.5.1");
    assert_eq!(
        read(&sandbox, "data/glbox/installed-version").trim(),
        "18.5.1"
    );
    assert_eq!(
        history(&sandbox),
        ["17.0.1"]
            .iter()
            .chain(&expected)
            .copied()
            .collect::<Vec<_>>()
    );
    assert!(sandbox.services_running());

    // Done: the same script again installs nothing and asks nothing.
    succeeded(&sandbox.run(&script("18.5.1")));
    assert!(installs(&sandbox).is_empty());
    assert_eq!(sandbox.count("gitlab-rake"), 0);
}

#[test]
fn skipping_the_stops_is_what_the_package_refuses() {
    // The sandbox's package enforces what omnibus-gitlab's preinst does,
    // so the walk above is needed: without the stop list the same upgrade
    // fails at the package.
    let sandbox = Sandbox::new();
    succeeded(&sandbox.run(&script("17.0.1")));
    let bare = script("18.5.1").replace(
        &format!(
            "GLBOX_UPGRADE_STOPS='{}'",
            glbox::upgrade_path::stops_value()
        ),
        "GLBOX_UPGRADE_STOPS=''",
    );
    let out = sandbox.run(&bare);
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains("required to upgrade to the latest 17.11.x"),
        "{}",
        output_text(&out)
    );
    assert_eq!(read(&sandbox, "installed").trim(), "17.0.1");
}

#[test]
fn a_failed_install_at_a_middle_stop_resumes_there() {
    let sandbox = Sandbox::new();
    succeeded(&sandbox.run(&script("17.0.1")));
    std::fs::write(sandbox.path("install-fails-at"), "17.5.5").unwrap();
    let failed = sandbox.run(&script("18.5.1"));
    assert!(!failed.status.success(), "{}", output_text(&failed));
    assert_eq!(installs(&sandbox), ["17.1.8", "17.3.7"]);
    assert_eq!(
        read(&sandbox, "data/glbox/installed-version").trim(),
        "17.3.7"
    );
    assert!(!output_text(&failed).contains("glbox-result:"));

    std::fs::remove_file(sandbox.path("install-fails-at")).unwrap();
    let out = succeeded(&sandbox.run(&script("18.5.1")));
    assert_eq!(
        installs(&sandbox),
        ["17.5.5", "17.8.7", "17.11.7", "18.2.8", "18.5.1"],
        "resumed at the stop it reached, earlier ones not reinstalled"
    );
    assert!(
        out.contains("glbox-phase: upgrade stop 17.5.5 (1 of 5)"),
        "{out}"
    );
    assert_eq!(
        history(&sandbox),
        ["17.0.1", "17.1.8", "17.3.7", "17.5.5", "17.8.7", "17.11.7", "18.2.8", "18.5.1"]
    );
}

#[test]
fn a_bootstrap_killed_after_a_stop_installed_waits_for_its_migrations_first() {
    let sandbox = Sandbox::new();
    succeeded(&sandbox.run(&script("17.0.1")));
    // Killed at 17.3.7 after the package (and its reconfigure) and before
    // the migrations were waited for and the stop recorded: the package
    // is 17.3.7, the data volume still says 17.1.8.
    succeeded(&sandbox.run(&script("17.1.8")));
    std::fs::write(sandbox.path("installed"), "17.3.7\n").unwrap();
    std::fs::write(sandbox.path("data/.sandbox-schema"), "17.3.7\n").unwrap();
    std::fs::write(sandbox.path("data/.sandbox-bbm-pending"), "2\n").unwrap();

    let out = succeeded(&sandbox.run(&script("17.8.7")));
    assert_eq!(installs(&sandbox), ["17.5.5", "17.8.7"], "{out}");
    let calls = sandbox.calls();
    let first_install = calls
        .iter()
        .position(|c| c.starts_with("package install "))
        .unwrap();
    assert!(
        calls[..first_install]
            .iter()
            .filter(|c| c.contains("background_migrations:status schema=17.3.7"))
            .count()
            >= 3,
        "17.3.7's migrations finished before 17.5.5 went on: {calls:#?}"
    );
}

#[test]
fn a_failed_background_migration_stops_the_walk_naming_the_stop() {
    let sandbox = Sandbox::new();
    succeeded(&sandbox.run(&script("17.0.1")));
    std::fs::write(sandbox.path("bbm-failed"), "17.1.8").unwrap();
    let out = sandbox.run(&script("17.5.5"));
    assert!(!out.status.success());
    let text = output_text(&out);
    assert!(
        text.contains("glbox-error: a batched background migration of GitLab 17.1.8 failed"),
        "{text}"
    );
    assert_eq!(
        installs(&sandbox),
        ["17.1.8"],
        "nothing after the failed stop"
    );
    assert_eq!(
        read(&sandbox, "data/glbox/installed-version").trim(),
        "17.0.1"
    );
}

#[test]
fn a_new_instance_on_old_data_walks_from_the_data_version() {
    let sandbox = Sandbox::new();
    succeeded(&sandbox.run(&script("17.2.1")));
    sandbox.new_instance();
    let out = succeeded(&sandbox.run(&script("17.6.1")));
    assert_eq!(installs(&sandbox), ["17.3.7", "17.5.5", "17.6.1"], "{out}");
    assert_eq!(
        sandbox.count("aws ssm get-parameter"),
        1,
        "the first install on this instance reads the root password, once"
    );
    assert_eq!(
        read(&sandbox, "data/glbox/installed-version").trim(),
        "17.6.1"
    );
}

#[test]
fn latest_never_upgrades_an_installed_gitlab_but_walks_old_data_on_a_new_instance() {
    let sandbox = Sandbox::new();
    succeeded(&sandbox.run(&script("17.2.1")));
    let kept = succeeded(&sandbox.run(&script("latest")));
    assert!(!kept.contains("glbox-phase: upgrade"), "{kept}");
    assert!(
        installs(&sandbox).is_empty(),
        "latest is no upgrade by itself"
    );

    // A new instance on the 17.2.1 data: the newest package only after
    // every stop since (the package itself would refuse 18.x over 17.2).
    sandbox.new_instance();
    let out = succeeded(&sandbox.run(&script("latest")));
    assert_eq!(
        installs(&sandbox),
        ["17.3.7", "17.5.5", "17.8.7", "17.11.7", "18.2.8", "18.5.1", "18.6.0"],
        "{out}"
    );
    assert!(
        out.contains("glbox-phase: upgrade to latest (7 of 7)"),
        "{out}"
    );
    assert_eq!(
        read(&sandbox, "data/glbox/installed-version").trim(),
        "18.6.0"
    );

    // Data already on the newest series: a plain install, no upgrade.
    sandbox.new_instance();
    let plain = succeeded(&sandbox.run(&script("latest")));
    assert_eq!(installs(&sandbox), ["18.6.0"]);
    assert!(!plain.contains("glbox-phase: upgrade"), "{plain}");
}

// ---- `up` through the emulator, the bootstrap run in the sandbox ----

fn config(version: &str) -> String {
    format!(
        "name = \"trial\"\n[gitlab]\nversion = \"{version}\"\n{}",
        crate::common::verify_section("")
    )
}

async fn instance_tag(emulator: &Emulator, key: &str) -> Option<String> {
    running_instance(emulator, "trial")
        .await
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value().map(str::to_string))
}

/// The deployment's pre-upgrade snapshots, as EC2 reports them.
async fn pre_upgrade_snapshots(emulator: &Emulator) -> Vec<aws_sdk_ec2::types::Snapshot> {
    let filter = |name: &str, value: &str| {
        aws_sdk_ec2::types::Filter::builder()
            .name(name)
            .values(value)
            .build()
    };
    emulator
        .ec2()
        .describe_snapshots()
        .owner_ids("self")
        .filters(filter("tag:glbox:deployment", "trial"))
        .filters(filter("tag:glbox:snapshot-reason", "pre-upgrade"))
        .send()
        .await
        .unwrap()
        .snapshots()
        .to_vec()
}

fn tag_of<'s>(snapshot: &'s aws_sdk_ec2::types::Snapshot, key: &str) -> Option<&'s str> {
    snapshot
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn gitlab_item(plan: &serde_json::Value) -> serde_json::Value {
    plan["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "gitlab")
        .cloned()
        .unwrap_or_else(|| panic!("{plan}"))
}

#[tokio::test]
async fn up_snapshots_the_data_then_walks_the_stops_and_resumes_after_a_failure() {
    let emulator = Emulator::start();
    let sandbox = Sandbox::new();
    emulator
        .behave(serde_json::json!({"sandbox": sandbox.path("").display().to_string()}))
        .await;
    let workspace = Workspace::new(&config("17.0.1"));
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    assert_eq!(
        instance_tag(&emulator, "glbox:gitlab-version")
            .await
            .as_deref(),
        Some("17.0.1"),
        "the version the bootstrap reported is recorded on the instance"
    );
    let id = running_instance(&emulator, "trial")
        .await
        .instance_id()
        .unwrap()
        .to_string();
    let data_volume = running_instance(&emulator, "trial")
        .await
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.volume_id()))
        .map(str::to_string)
        .collect::<Vec<_>>();

    // The plan lists the path, in text and JSON.
    workspace.write_config(&config("18.5.1"));
    let path = "upgrade 17.0.1 -> 18.5.1 through 17.1.8, 17.3.7, 17.5.5, 17.8.7, 17.11.7, 18.2.8";
    let plan = glbox(&emulator, &workspace, &["plan", "--output", "json"]).json();
    let item = gitlab_item(&plan);
    assert_eq!(item["action"], "update", "{plan}");
    assert!(
        item["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == path),
        "{plan}"
    );
    let text = glbox(&emulator, &workspace, &["plan"]);
    assert!(text.stdout.contains(path), "{}", text.stdout);
    assert!(
        pre_upgrade_snapshots(&emulator).await.is_empty(),
        "plan changes nothing"
    );

    // The first attempt fails at a middle stop, after the snapshot.
    std::fs::write(sandbox.path("install-fails-at"), "17.8.7").unwrap();
    emulator.start_recording();
    let failed = glbox(&emulator, &workspace, &["up", "--yes"]);
    assert_ne!(failed.code, 0, "{}", failed.stdout);
    let actions = emulator.recorded_actions();
    let snapshot_at = actions.iter().position(|a| a == "CreateSnapshot");
    let send_at = actions.iter().position(|a| a == "SendCommand");
    assert!(
        matches!((snapshot_at, send_at), (Some(s), Some(c)) if s < c),
        "the snapshot comes before the bootstrap: {actions:?}"
    );
    let snapshots = pre_upgrade_snapshots(&emulator).await;
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    let snapshot = &snapshots[0];
    assert_eq!(snapshot.state().unwrap().as_str(), "completed");
    assert!(
        data_volume
            .iter()
            .any(|v| Some(v.as_str()) == snapshot.volume_id()),
        "of the data volume: {snapshot:?} {data_volume:?}"
    );
    assert_eq!(tag_of(snapshot, "glbox:upgrade-from"), Some("17.0.1"));
    assert_eq!(tag_of(snapshot, "glbox:upgrade-to"), Some("18.5.1"));
    assert_eq!(tag_of(snapshot, "glbox:role"), Some("snapshot"));
    assert_eq!(tag_of(snapshot, "glbox:managed-by"), Some("glbox"));
    assert_eq!(
        instance_tag(&emulator, "glbox:gitlab-version")
            .await
            .as_deref(),
        Some("17.0.1"),
        "a failed bootstrap records nothing"
    );

    // The same `up` again: the snapshot is reused, the walk resumes.
    std::fs::remove_file(sandbox.path("install-fails-at")).unwrap();
    std::fs::remove_file(sandbox.instance(&id).dir.join("calls.log")).unwrap();
    emulator.start_recording();
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    assert!(
        !emulator
            .recorded_actions()
            .contains(&"CreateSnapshot".to_string()),
        "no second snapshot for the same upgrade"
    );
    assert_eq!(pre_upgrade_snapshots(&emulator).await.len(), 1);
    let resumed: Vec<String> = sandbox
        .instance(&id)
        .calls()
        .iter()
        .filter_map(|c| c.strip_prefix("package install "))
        .map(str::to_string)
        .collect();
    assert_eq!(resumed, ["17.8.7", "17.11.7", "18.2.8", "18.5.1"]);
    assert_eq!(
        instance_tag(&emulator, "glbox:gitlab-version")
            .await
            .as_deref(),
        Some("18.5.1")
    );

    // Converged: nothing to do, nothing changed.
    emulator.start_recording();
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    assert_eq!(mutating(&emulator.recorded_actions()), Vec::<String>::new());

    // A downgrade is refused before anything is sent or changed.
    workspace.write_config(&config("18.2.8"));
    emulator.start_recording();
    for command in [&["plan"][..], &["up", "--yes"][..]] {
        let refused = glbox(&emulator, &workspace, command);
        assert_eq!(refused.code, 2, "{command:?}: {}", refused.stdout);
        assert!(
            refused.stderr.contains("gitlab.version = \"18.2.8\"")
                && refused.stderr.contains("does not support downgrades"),
            "{}",
            refused.stderr
        );
    }
    assert_eq!(mutating(&emulator.recorded_actions()), Vec::<String>::new());
}
