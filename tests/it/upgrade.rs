//! Upgrades across GitLab's required stops: the bootstrap walking the stop
//! list in the sandbox (where the package's upgrade check, db:migrate and
//! the background migrations' status are modelled: see the upgrade block
//! of `common/sandbox.rs`), and `up` through the emulator taking the
//! pre-upgrade snapshot first.

use std::process::Output;

use crate::common::sandbox::Sandbox;
use crate::common::settings;

const URL: &str = "http://198.51.100.1";

fn script(version: &str) -> String {
    glbox::bootstrap::render(
        &settings(&format!(
            "name = \"trial\"\n[gitlab]\nversion = \"{version}\"\n"
        )),
        &glbox::bootstrap::Target {
            data_volume_id: "vol-0123456789abcdef0",
            external_url: URL,
            smtp_username: None,
            root_password_parameter: "/glbox/trial/root-password",
        },
    )
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: &Output) -> String {
    let text = text(out);
    assert!(out.status.success(), "bootstrap failed:\n{text}");
    text
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
    ok(&sandbox.run(&script("17.0.1")));
    assert_eq!(installs(&sandbox), ["17.0.1"]);

    let out = ok(&sandbox.run(&script("18.5.1")));
    let mut expected: Vec<&str> = STOPS.to_vec();
    expected.push("18.5.1");
    assert_eq!(installs(&sandbox), expected, "{out}");
    for (i, stop) in STOPS.iter().enumerate() {
        assert!(
            out.contains(&format!("glbox-phase: upgrade stop {stop} ({} of 7)", i + 1)),
            "{out}"
        );
    }
    assert!(out.contains("glbox-phase: upgrade to 18.5.1 (7 of 7)"), "{out}");

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
    assert_eq!(read(&sandbox, "data/glbox/installed-version").trim(), "18.5.1");
    assert_eq!(history(&sandbox), ["17.0.1"].iter().chain(&expected).copied().collect::<Vec<_>>());
    assert!(sandbox.services_running());

    // Done: the same script again installs nothing and asks nothing.
    ok(&sandbox.run(&script("18.5.1")));
    assert!(installs(&sandbox).is_empty());
    assert_eq!(sandbox.count("gitlab-rake"), 0);
}

#[test]
fn skipping_the_stops_is_what_the_package_refuses() {
    // The sandbox's package enforces what omnibus-gitlab's preinst does,
    // so the walk above is needed: without the stop list the same upgrade
    // fails at the package.
    let sandbox = Sandbox::new();
    ok(&sandbox.run(&script("17.0.1")));
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
        text(&out).contains("required to upgrade to the latest 17.11.x"),
        "{}",
        text(&out)
    );
    assert_eq!(read(&sandbox, "installed").trim(), "17.0.1");
}

#[test]
fn a_failed_install_at_a_middle_stop_resumes_there() {
    let sandbox = Sandbox::new();
    ok(&sandbox.run(&script("17.0.1")));
    std::fs::write(sandbox.path("install-fails-at"), "17.5.5").unwrap();
    let failed = sandbox.run(&script("18.5.1"));
    assert!(!failed.status.success(), "{}", text(&failed));
    assert_eq!(installs(&sandbox), ["17.1.8", "17.3.7"]);
    assert_eq!(read(&sandbox, "data/glbox/installed-version").trim(), "17.3.7");
    assert!(!text(&failed).contains("glbox-result:"));

    std::fs::remove_file(sandbox.path("install-fails-at")).unwrap();
    let out = ok(&sandbox.run(&script("18.5.1")));
    assert_eq!(
        installs(&sandbox),
        ["17.5.5", "17.8.7", "17.11.7", "18.2.8", "18.5.1"],
        "resumed at the stop it reached, earlier ones not reinstalled"
    );
    assert!(out.contains("glbox-phase: upgrade stop 17.5.5 (1 of 5)"), "{out}");
    assert_eq!(
        history(&sandbox),
        ["17.0.1", "17.1.8", "17.3.7", "17.5.5", "17.8.7", "17.11.7", "18.2.8", "18.5.1"]
    );
}

#[test]
fn a_bootstrap_killed_after_a_stop_installed_waits_for_its_migrations_first() {
    let sandbox = Sandbox::new();
    ok(&sandbox.run(&script("17.0.1")));
    // Killed at 17.3.7 after the package (and its reconfigure) and before
    // the migrations were waited for and the stop recorded: the package
    // is 17.3.7, the data volume still says 17.1.8.
    ok(&sandbox.run(&script("17.1.8")));
    std::fs::write(sandbox.path("installed"), "17.3.7\n").unwrap();
    std::fs::write(sandbox.path("data/.sandbox-schema"), "17.3.7\n").unwrap();
    std::fs::write(sandbox.path("data/.sandbox-bbm-pending"), "2\n").unwrap();

    let out = ok(&sandbox.run(&script("17.8.7")));
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
    ok(&sandbox.run(&script("17.0.1")));
    std::fs::write(sandbox.path("bbm-failed"), "17.1.8").unwrap();
    let out = sandbox.run(&script("17.5.5"));
    assert!(!out.status.success());
    let text = text(&out);
    assert!(
        text.contains("glbox-error: a batched background migration of GitLab 17.1.8 failed"),
        "{text}"
    );
    assert_eq!(installs(&sandbox), ["17.1.8"], "nothing after the failed stop");
    assert_eq!(read(&sandbox, "data/glbox/installed-version").trim(), "17.0.1");
}

#[test]
fn a_new_instance_on_old_data_walks_from_the_data_version() {
    let sandbox = Sandbox::new();
    ok(&sandbox.run(&script("17.2.1")));
    sandbox.new_instance();
    let out = ok(&sandbox.run(&script("17.6.1")));
    assert_eq!(installs(&sandbox), ["17.3.7", "17.5.5", "17.6.1"], "{out}");
    assert_eq!(
        sandbox.count("aws ssm get-parameter"),
        1,
        "the first install on this instance reads the root password, once"
    );
    assert_eq!(read(&sandbox, "data/glbox/installed-version").trim(), "17.6.1");
}
