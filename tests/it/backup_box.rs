//! GitLab backups and restores on the box, run for real in the sandbox:
//! the bootstrap installs the nightly timer and its script, the script runs
//! GitLab's backup and puts the configuration beside it in the bucket (a
//! directory standing for it), and the restore follows GitLab's documented
//! order, refuses another version before touching anything, and converges
//! after a crash at any step.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::sandbox::Sandbox;
use crate::common::settings;
use glbox::config::Settings;

const BUCKET: &str = "glbox-trial-0a1b2c3d4e";
const VOLUME: &str = "vol-0123456789abcdef0";

fn backup_settings() -> Settings {
    settings("name = \"trial\"\n[gitlab]\nversion = \"18.5.1\"\n[backup]\ns3 = true\ns3_time = \"02:30\"\n")
}

fn bootstrap(settings: &Settings, bucket: Option<&str>) -> String {
    glbox::bootstrap::render(
        settings,
        &glbox::bootstrap::Target {
            data_volume_id: VOLUME,
            external_url: "http://198.51.100.1",
            smtp_username: None,
            root_password_parameter: "/glbox/trial/root-password",
            backup_bucket: bucket,
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

fn ok(out: Output) -> String {
    let text = text(&out);
    assert!(out.status.success(), "failed:\n{text}");
    text
}

/// Runs `script` (a file) with bash in the sandbox's environment, as root
/// or systemd would; the calls recorded so far are kept.
fn run_file(sandbox: &Sandbox, script: &Path, args: &[&str]) -> Output {
    Command::new("bash")
        .arg(script)
        .args(args)
        .env_clear()
        .envs(sandbox.env())
        .output()
        .unwrap()
}

fn run_text(sandbox: &Sandbox, name: &str, script: &str) -> Output {
    let path = sandbox.path(name);
    std::fs::write(&path, script).unwrap();
    run_file(sandbox, &path, &[])
}

fn shellcheck(script: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script.sh");
    std::fs::write(&path, script).unwrap();
    let out = Command::new("shellcheck")
        .arg(&path)
        .output()
        .expect("shellcheck (scripts/test installs it)");
    assert!(out.status.success(), "{}", text(&out));
}

/// The unit's `Key=` value.
fn unit_value(unit: &str, key: &str) -> Option<String> {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
}

fn bucket_object(sandbox: &Sandbox, key: &str) -> PathBuf {
    sandbox.path(&format!("s3/{BUCKET}/{key}"))
}

fn encryption_of(sandbox: &Sandbox, key: &str) -> String {
    std::fs::read_to_string(sandbox.path(&format!("s3-sse/{BUCKET}/{key}")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A box with GitLab and its backup timer installed, and some data.
fn box_with_backups() -> (Sandbox, Settings) {
    let sandbox = Sandbox::new();
    let s = backup_settings();
    ok(sandbox.run(&bootstrap(&s, Some(BUCKET))));
    write_data(&sandbox, "v1");
    (sandbox, s)
}

/// GitLab's data (the database and repositories) in the sandbox.
fn write_data(sandbox: &Sandbox, content: &str) {
    let dir = sandbox.path("data/gitlab-data");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("projects"), content).unwrap();
}

fn data(sandbox: &Sandbox) -> String {
    std::fs::read_to_string(sandbox.path("data/gitlab-data/projects")).unwrap_or_default()
}

/// Runs the timer's service as systemd would: its ExecStart.
fn run_timer_service(sandbox: &Sandbox) -> String {
    let service = std::fs::read_to_string(sandbox.path("systemd/glbox-backup.service")).unwrap();
    let exec = unit_value(&service, "ExecStart").expect("ExecStart");
    assert_eq!(
        exec,
        sandbox.path("sbin/glbox-backup").display().to_string()
    );
    ok(run_file(sandbox, Path::new(&exec), &[]))
}

fn backup_id(output: &str) -> String {
    glbox::backup::reported_backup(output)
        .unwrap_or_else(|| panic!("no backup reported:\n{output}"))
        .0
}

#[test]
fn the_scripts_pass_shellcheck() {
    let s = backup_settings();
    shellcheck(&bootstrap(&s, Some(BUCKET)));
    shellcheck(&glbox::backup::backup_script(&s, BUCKET));
    shellcheck(&glbox::backup::restore_script(
        &s,
        BUCKET,
        "1764644400_2025_12_02_18.5.1",
    ));
    shellcheck(&format!("#!/bin/bash\n{}", glbox::backup::run_now_script()));
}

#[test]
fn the_bootstrap_installs_the_timer_at_the_configured_time_and_removes_it_when_off() {
    let sandbox = Sandbox::new();
    let s = backup_settings();
    ok(sandbox.run(&bootstrap(&s, Some(BUCKET))));
    let timer = std::fs::read_to_string(sandbox.path("systemd/glbox-backup.timer")).unwrap();
    assert_eq!(
        unit_value(&timer, "OnCalendar").as_deref(),
        Some("*-*-* 02:30:00 UTC")
    );
    assert_eq!(unit_value(&timer, "Persistent").as_deref(), Some("true"));
    assert!(sandbox.path("systemd-enabled/glbox-backup.timer").exists());
    let calls = sandbox.calls();
    let systemctl: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("systemctl"))
        .collect();
    assert_eq!(
        systemctl,
        [
            "systemctl daemon-reload",
            "systemctl enable glbox-backup.timer",
            "systemctl restart glbox-backup.timer"
        ]
    );
    let rb = std::fs::read_to_string(sandbox.path("etc-gitlab/gitlab.rb")).unwrap();
    assert!(
        rb.contains(&format!(
            "gitlab_rails['backup_upload_remote_directory'] = '{BUCKET}'"
        )),
        "{rb}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(sandbox.path("sbin/glbox-backup"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);

    // The same settings again: nothing to do.
    ok(sandbox.run(&bootstrap(&s, Some(BUCKET))));
    assert_eq!(sandbox.count("systemctl"), 0, "{:?}", sandbox.calls());

    // Another time: the timer is updated.
    let later = settings("name = \"trial\"\n[gitlab]\nversion = \"18.5.1\"\n[backup]\ns3 = true\ns3_time = \"04:15\"\n");
    ok(sandbox.run(&bootstrap(&later, Some(BUCKET))));
    let timer = std::fs::read_to_string(sandbox.path("systemd/glbox-backup.timer")).unwrap();
    assert_eq!(
        unit_value(&timer, "OnCalendar").as_deref(),
        Some("*-*-* 04:15:00 UTC")
    );
    assert_eq!(sandbox.count("systemctl restart glbox-backup.timer"), 1);

    // backup.s3 off: timer, service and script are gone, and so is the upload.
    let off = settings("name = \"trial\"\n[gitlab]\nversion = \"18.5.1\"\n");
    ok(sandbox.run(&bootstrap(&off, None)));
    assert_eq!(
        sandbox.count("systemctl disable --now glbox-backup.timer"),
        1
    );
    assert!(!sandbox.path("systemd/glbox-backup.timer").exists());
    assert!(!sandbox.path("systemd/glbox-backup.service").exists());
    assert!(!sandbox.path("sbin/glbox-backup").exists());
    assert!(!sandbox.path("systemd-enabled/glbox-backup.timer").exists());
    let rb = std::fs::read_to_string(sandbox.path("etc-gitlab/gitlab.rb")).unwrap();
    assert!(!rb.contains("backup_upload"), "{rb}");
}

#[test]
fn the_timer_backs_up_to_the_bucket_with_the_configuration_beside_it() {
    let (sandbox, _) = box_with_backups();
    sandbox.clear_calls();
    let out = run_timer_service(&sandbox);
    let id = backup_id(&out);
    assert!(id.ends_with("_18.5.1"), "{id}");

    // GitLab's documented backup, then the configuration, then the check.
    let calls = sandbox.calls();
    let order: Vec<&str> = calls
        .iter()
        .map(String::as_str)
        .filter(|c| {
            c.starts_with("gitlab-backup") || c.starts_with("aws") || c.starts_with("upload")
        })
        .collect();
    assert_eq!(order.len(), 5, "{calls:?}");
    assert_eq!(
        order[0],
        "gitlab-backup create STRATEGY=copy SKIP=artifacts,registry"
    );
    assert_eq!(
        order[1],
        format!("upload s3://{BUCKET}/{id}_gitlab_backup.tar")
    );
    assert!(
        order[2].starts_with(&format!(
            "aws s3 cp {}",
            sandbox.path("etc-gitlab/gitlab-secrets.json").display()
        )),
        "{}",
        order[2]
    );
    assert!(order[2].contains(&format!("s3://{BUCKET}/config/{id}/gitlab-secrets.json")));
    assert!(order[3].contains(&format!("s3://{BUCKET}/config/{id}/gitlab.rb")));
    assert!(order[4].starts_with(&format!(
        "aws s3api head-object --region us-east-1 --bucket {BUCKET} --key {id}_gitlab_backup.tar"
    )));

    // The bucket holds the archive at its root and the configuration
    // under config/<id>/, all encrypted.
    let archive = format!("{id}_gitlab_backup.tar");
    assert!(bucket_object(&sandbox, &archive).is_file());
    for key in [
        archive.clone(),
        format!("config/{id}/gitlab-secrets.json"),
        format!("config/{id}/gitlab.rb"),
    ] {
        assert!(bucket_object(&sandbox, &key).is_file(), "{key}");
        assert_eq!(encryption_of(&sandbox, &key), "AES256", "{key}");
    }
    assert_eq!(
        std::fs::read(bucket_object(
            &sandbox,
            &format!("config/{id}/gitlab-secrets.json")
        ))
        .unwrap(),
        std::fs::read(sandbox.path("etc-gitlab/gitlab-secrets.json")).unwrap()
    );
    let size = std::fs::metadata(bucket_object(&sandbox, &archive))
        .unwrap()
        .len();
    assert_eq!(
        glbox::backup::reported_backup(&out),
        Some((id.clone(), size))
    );
    let log = std::fs::read_to_string(sandbox.path("log/backup.log")).unwrap();
    assert!(log.contains(&format!("Backup {id} is done.")), "{log}");
}

#[test]
fn a_failed_upload_fails_the_backup_and_records_nothing() {
    let (sandbox, _) = box_with_backups();
    std::fs::write(sandbox.path("upload-fails"), "").unwrap();
    let out = run_file(&sandbox, &sandbox.path("sbin/glbox-backup"), &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(!sandbox.path("data/glbox/last-backup").exists());
    assert_eq!(sandbox.count("aws s3 cp"), 0, "{:?}", sandbox.calls());
}

#[test]
fn a_backup_asked_for_again_soon_after_is_the_same_one() {
    let (sandbox, _) = box_with_backups();
    let script = sandbox.path("sbin/glbox-backup");
    let first = backup_id(&ok(run_file(&sandbox, &script, &["--fresh-within", "900"])));
    sandbox.clear_calls();
    let again = backup_id(&ok(run_file(&sandbox, &script, &["--fresh-within", "900"])));
    assert_eq!(first, again);
    assert_eq!(sandbox.count("gitlab-backup"), 0, "{:?}", sandbox.calls());
    // The timer's own run always makes a new one.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let nightly = backup_id(&run_timer_service(&sandbox));
    assert_ne!(first, nightly);
}

/// Makes a backup of the data as it is, then changes the data.
fn backed_up_then_changed(sandbox: &Sandbox) -> String {
    let id = backup_id(&run_timer_service(sandbox));
    write_data(sandbox, "v2 (after the backup)");
    std::fs::write(
        sandbox.path("etc-gitlab/gitlab-secrets.json"),
        "other secrets\n",
    )
    .unwrap();
    sandbox.clear_calls();
    id
}

fn restore(sandbox: &Sandbox, settings: &Settings, id: &str) -> Output {
    run_text(
        sandbox,
        "restore.sh",
        &glbox::backup::restore_script(settings, BUCKET, id),
    )
}

/// The restore's mutating calls, in order, without the options.
fn restore_steps(sandbox: &Sandbox) -> Vec<String> {
    sandbox
        .calls()
        .into_iter()
        .filter_map(|c| {
            let words: Vec<&str> = c.split_whitespace().collect();
            match words.as_slice() {
                ["aws", "s3", "cp", from, ..] => {
                    Some(format!("download {}", from.rsplit('/').next().unwrap()))
                }
                ["gitlab-ctl", action, rest @ ..] => Some(
                    format!(
                        "gitlab-ctl {action} {}",
                        rest.iter()
                            .filter(|w| !w.contains('='))
                            .copied()
                            .collect::<Vec<_>>()
                            .join(" ")
                    )
                    .trim()
                    .to_string(),
                ),
                ["gitlab-backup", "restore", ..] => Some("gitlab-backup restore".into()),
                ["reconfigure-run", ..] => Some("reconfigure-run".into()),
                ["gitlab-rake", task, ..] => Some(format!("gitlab-rake {task}")),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn restore_follows_gitlabs_documented_order() {
    let (sandbox, s) = box_with_backups();
    let backed_up_secrets = std::fs::read(sandbox.path("etc-gitlab/gitlab-secrets.json")).unwrap();
    let id = backed_up_then_changed(&sandbox);

    let out = ok(restore(&sandbox, &s, &id));
    assert!(out.contains(&format!("glbox-restored: {id}")), "{out}");
    assert_eq!(
        restore_steps(&sandbox),
        [
            format!("download {id}_gitlab_backup.tar"),
            "download gitlab-secrets.json".into(),
            "download gitlab.rb".into(),
            "gitlab-ctl stop puma".into(),
            "gitlab-ctl stop sidekiq".into(),
            "gitlab-backup restore".into(),
            "gitlab-ctl reconfigure".into(),
            "reconfigure-run".into(),
            "gitlab-ctl restart".into(),
            "gitlab-rake gitlab:check".into(),
        ]
    );
    assert_eq!(
        sandbox.count(&format!("gitlab-backup restore BACKUP={id} force=yes")),
        1
    );
    assert_eq!(
        sandbox.count(&format!(
            "chown git:git {}/data/backups/{id}_gitlab_backup.tar",
            sandbox.path("").display().to_string().trim_end_matches('/')
        )),
        1,
        "{:?}",
        sandbox.calls()
    );
    assert_eq!(sandbox.count("gitlab-rake gitlab:check SANITIZE=true"), 1);
    // The data and the secrets are the backup's; the secrets were in place
    // before the reconfigure (the reconfigure keeps an existing file, so
    // its copy on the data volume is the backup's too).
    assert_eq!(data(&sandbox), "v1");
    assert_eq!(
        std::fs::read(sandbox.path("etc-gitlab/gitlab-secrets.json")).unwrap(),
        backed_up_secrets
    );
    assert_eq!(
        std::fs::read(sandbox.path("data/glbox/gitlab-secrets.json")).unwrap(),
        backed_up_secrets
    );
    // gitlab.rb stays glbox's; the backup's is beside it.
    assert!(sandbox
        .path(&format!("etc-gitlab/gitlab.rb.from-backup-{id}"))
        .is_file());
    let rb = std::fs::read_to_string(sandbox.path("etc-gitlab/gitlab.rb")).unwrap();
    assert!(rb.starts_with("# Written by glbox"), "{rb}");
    assert!(sandbox.services_running());
    assert!(
        !sandbox.path(&format!("data/glbox/restore/{id}")).exists(),
        "the state goes once done"
    );
}

#[test]
fn secrets_are_in_place_before_the_reconfigure() {
    let (sandbox, s) = box_with_backups();
    let backed_up_secrets =
        std::fs::read_to_string(sandbox.path("etc-gitlab/gitlab-secrets.json")).unwrap();
    let id = backed_up_then_changed(&sandbox);
    // The reconfigure crashes the restore: what it found is what it used.
    std::fs::write(sandbox.path("crash-after"), "gitlab-ctl reconfigure").unwrap();
    let out = restore(&sandbox, &s, &id);
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(sandbox.path("etc-gitlab/gitlab-secrets.json")).unwrap(),
        backed_up_secrets
    );
}

#[test]
fn a_backup_of_another_version_is_refused_before_anything_is_stopped() {
    let (sandbox, s) = box_with_backups();
    let id = backed_up_then_changed(&sandbox);
    let other = id.replace("_18.5.1", "_18.4.2");
    std::fs::rename(
        bucket_object(&sandbox, &format!("{id}_gitlab_backup.tar")),
        bucket_object(&sandbox, &format!("{other}_gitlab_backup.tar")),
    )
    .unwrap();
    let out = restore(&sandbox, &s, &other);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("made by GitLab 18.4.2") && said.contains("gitlab.version = \"18.4.2\""),
        "{said}"
    );
    assert_eq!(
        restore_steps(&sandbox),
        Vec::<String>::new(),
        "nothing downloaded or stopped"
    );
    assert!(sandbox.services_running());
    assert_eq!(data(&sandbox), "v2 (after the backup)");
}

#[test]
fn a_backup_not_in_the_bucket_is_refused_before_anything_is_stopped() {
    let (sandbox, s) = box_with_backups();
    let out = restore(&sandbox, &s, "1700000000_2023_11_14_18.5.1");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("is not in s3://"), "{}", text(&out));
    assert_eq!(sandbox.count("gitlab-ctl"), 0);
    assert!(sandbox.services_running());
}

#[test]
fn a_crash_at_each_step_of_a_restore_then_the_same_restore_converges() {
    let steps = [
        "aws s3 cp",
        "gitlab-ctl stop puma",
        "gitlab-ctl stop sidekiq",
        "gitlab-backup restore",
        "gitlab-ctl reconfigure",
        "gitlab-ctl restart",
        "gitlab-rake gitlab:check",
    ];
    for step in steps {
        let (sandbox, s) = box_with_backups();
        let backed_up_secrets =
            std::fs::read(sandbox.path("etc-gitlab/gitlab-secrets.json")).unwrap();
        let id = backed_up_then_changed(&sandbox);
        std::fs::write(sandbox.path("crash-after"), step).unwrap();
        let crashed = restore(&sandbox, &s, &id);
        assert!(!crashed.status.success(), "{step}: {}", text(&crashed));
        assert_eq!(
            sandbox.count("crash after: "),
            1,
            "{step}: {:?}",
            sandbox.calls()
        );

        let out = ok(restore(&sandbox, &s, &id));
        assert!(
            out.contains(&format!("glbox-restored: {id}")),
            "{step}: {out}"
        );
        assert_eq!(data(&sandbox), "v1", "{step}");
        assert_eq!(
            std::fs::read(sandbox.path("etc-gitlab/gitlab-secrets.json")).unwrap(),
            backed_up_secrets,
            "{step}"
        );
        assert!(sandbox.services_running(), "{step}: {:?}", sandbox.calls());
        // Steps the crashed run finished are not done again.
        let calls = sandbox.calls();
        let restores = calls
            .iter()
            .filter(|c| c.starts_with("gitlab-backup restore"))
            .count();
        // Only a crash right after the restore itself (before it was
        // recorded) restores twice.
        let expected = if step == "gitlab-backup restore" {
            2
        } else {
            1
        };
        assert_eq!(restores, expected, "{step}: {calls:?}");
        assert!(
            !sandbox.path(&format!("data/glbox/restore/{id}")).exists(),
            "{step}"
        );
    }
}

// ---- `glbox backup` and `glbox restore --backup` through the CLI: AWS in
// the emulator, the commands run in the sandbox through SSM ----

mod through_the_cli {
    use aws_sdk_ec2::types::Filter;

    use crate::common::sandbox::Sandbox;
    use crate::common::{glbox, verify_section, Emulator, Workspace};

    fn config() -> String {
        format!(
            "name = \"trial\"\n[backup]\ns3 = true\n{}",
            verify_section("")
        )
    }

    async fn manual_snapshots(emulator: &Emulator) -> Vec<aws_sdk_ec2::types::Snapshot> {
        snapshots_with_reason(emulator, "manual").await
    }

    async fn snapshots_with_reason(
        emulator: &Emulator,
        reason: &str,
    ) -> Vec<aws_sdk_ec2::types::Snapshot> {
        emulator
            .ec2()
            .describe_snapshots()
            .owner_ids("self")
            .filters(
                Filter::builder()
                    .name("tag:glbox:snapshot-reason")
                    .values(reason)
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .snapshots()
            .to_vec()
    }

    fn tag<'a>(snapshot: &'a aws_sdk_ec2::types::Snapshot, key: &str) -> Option<&'a str> {
        glbox::names::ec2_tag(snapshot.tags(), key)
    }

    /// The one data volume's directory (the sandbox mounts it per instance).
    fn volume_dir(sandbox: &Sandbox) -> std::path::PathBuf {
        let mut volumes: Vec<_> = std::fs::read_dir(sandbox.path("volumes"))
            .unwrap()
            .map(|v| v.unwrap().path())
            .collect();
        assert_eq!(volumes.len(), 1, "{volumes:?}");
        volumes.remove(0)
    }

    fn write_data(sandbox: &Sandbox, content: &str) {
        let dir = volume_dir(sandbox).join("gitlab-data");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("projects"), content).unwrap();
    }

    #[tokio::test]
    async fn backup_takes_a_completed_snapshot_and_a_gitlab_backup_and_restore_brings_it_back() {
        let emulator = Emulator::start();
        let sandbox = Sandbox::new();
        emulator
            .behave(serde_json::json!({"sandbox": sandbox.path("").display().to_string()}))
            .await;
        let workspace = Workspace::new(&config());
        glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
        // The bucket is part of the bootstrap: a second up sees the same
        // script, and sends nothing.
        emulator.start_recording();
        glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
        let changes = crate::common::mutating(&emulator.recorded_actions());
        assert_eq!(changes, Vec::<String>::new());
        write_data(&sandbox, "v1");

        let run = glbox(&emulator, &workspace, &["backup", "--output", "json"]);
        run.assert_ok();
        let report = run.json();
        let snapshot_id = report["snapshot"]["id"].as_str().unwrap().to_string();
        let snapshots = manual_snapshots(&emulator).await;
        assert_eq!(snapshots.len(), 1, "{snapshots:?}");
        let snapshot = &snapshots[0];
        assert_eq!(snapshot.snapshot_id(), Some(snapshot_id.as_str()));
        assert_eq!(glbox::aws::ec2::snapshots::state_of(snapshot), "completed");
        assert_eq!(tag(snapshot, "glbox:deployment"), Some("trial"));
        assert_eq!(tag(snapshot, "glbox:role"), Some("snapshot"));
        assert_eq!(tag(snapshot, "glbox:managed-by"), Some("glbox"));
        let volume = volume_dir(&sandbox);
        let volume_id = volume.file_name().unwrap().to_str().unwrap();
        assert_eq!(snapshot.volume_id(), Some(volume_id));

        // The backup is in the deployment's bucket, beside its configuration.
        let bucket = glbox::names::Names::new("trial", "us-east-1").backup_bucket("123456789012");
        assert_eq!(report["gitlab_backup"]["bucket"], bucket.as_str());
        let name = report["gitlab_backup"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        let archive = sandbox.path(&format!("s3/{bucket}/{name}_gitlab_backup.tar"));
        assert!(archive.is_file(), "{report}");
        assert_eq!(
            report["gitlab_backup"]["size_bytes"].as_u64(),
            Some(std::fs::metadata(&archive).unwrap().len())
        );
        for file in ["gitlab-secrets.json", "gitlab.rb"] {
            assert!(
                sandbox
                    .path(&format!("s3/{bucket}/config/{name}/{file}"))
                    .is_file(),
                "{file}"
            );
        }

        // Asked again at once (as after an interrupted run): the same two.
        let again = glbox(&emulator, &workspace, &["backup", "--output", "json"]);
        again.assert_ok();
        assert_eq!(again.json()["snapshot"]["id"], snapshot_id.as_str());
        assert_eq!(again.json()["snapshot"]["resumed"], true);
        assert_eq!(again.json()["gitlab_backup"]["name"], name.as_str());
        assert_eq!(manual_snapshots(&emulator).await.len(), 1);

        // The data changes; the restore brings the backup's back, verified.
        write_data(&sandbox, "v2");
        let restore = glbox(
            &emulator,
            &workspace,
            &["restore", "--backup", &name, "--yes"],
        );
        restore.assert_ok();
        assert!(
            restore
                .stdout
                .contains(&format!("restored from backup {name}")),
            "{}",
            restore.stdout
        );
        assert_eq!(
            std::fs::read_to_string(volume.join("gitlab-data/projects")).unwrap(),
            "v1"
        );
        // The data from before the restore is in a snapshot of the volume.
        let before = snapshots_with_reason(&emulator, "pre-restore").await;
        assert_eq!(before.len(), 1, "{before:?}");
        assert_eq!(before[0].volume_id(), Some(volume_id));
        assert_eq!(tag(&before[0], "glbox:deployment"), Some("trial"));
        let snapshot_before = before[0].snapshot_id().unwrap();
        assert!(
            restore.stdout.contains(snapshot_before),
            "{}",
            restore.stdout
        );

        // The same restore again (as after a crash): it takes up that
        // snapshot rather than one of the restored data.
        let again = glbox(
            &emulator,
            &workspace,
            &["restore", "--backup", &name, "--yes"],
        );
        again.assert_ok();
        assert!(again.stdout.contains(snapshot_before), "{}", again.stdout);
        assert_eq!(
            snapshots_with_reason(&emulator, "pre-restore").await.len(),
            1
        );
    }

    #[tokio::test]
    async fn a_failed_gitlab_backup_fails_glbox_backup_and_says_the_snapshot_goes_on() {
        let emulator = Emulator::start();
        let sandbox = Sandbox::new();
        emulator
            .behave(serde_json::json!({"sandbox": sandbox.path("").display().to_string()}))
            .await;
        let workspace = Workspace::new(&config());
        glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
        std::fs::write(sandbox.path("upload-fails"), "").unwrap();

        let run = glbox(&emulator, &workspace, &["backup"]);
        assert_ne!(run.code, 0, "{}", run.stdout);
        assert!(
            run.stderr
                .contains("gitlab-backup create failed: Excon::Error::Forbidden"),
            "{}",
            run.stderr
        );
        let snapshots = manual_snapshots(&emulator).await;
        assert_eq!(snapshots.len(), 1);
        assert!(
            run.stderr.contains(snapshots[0].snapshot_id().unwrap()),
            "{}",
            run.stderr
        );
        let bucket = glbox::names::Names::new("trial", "us-east-1").backup_bucket("123456789012");
        assert!(
            std::fs::read_dir(sandbox.path(&format!("s3/{bucket}")))
                .map(|d| d.count() == 0)
                .unwrap_or(true),
            "nothing in the bucket"
        );

        // Put right, the next glbox backup waits for the same snapshot.
        std::fs::remove_file(sandbox.path("upload-fails")).unwrap();
        let again = glbox(&emulator, &workspace, &["backup", "--output", "json"]);
        again.assert_ok();
        assert_eq!(
            again.json()["snapshot"]["id"],
            snapshots[0].snapshot_id().unwrap()
        );
        assert!(again.json()["gitlab_backup"]["name"].is_string());
    }

    #[tokio::test]
    async fn with_s3_backups_off_glbox_backup_takes_only_the_snapshot() {
        let emulator = Emulator::start();
        let sandbox = Sandbox::new();
        emulator
            .behave(serde_json::json!({"sandbox": sandbox.path("").display().to_string()}))
            .await;
        let workspace = Workspace::new(&format!("name = \"trial\"\n{}", verify_section("")));
        glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
        let run = glbox(&emulator, &workspace, &["backup", "--output", "json"]);
        run.assert_ok();
        assert!(run.json()["gitlab_backup"].is_null(), "{}", run.stdout);
        assert!(run.stderr.contains("backup.s3 is off"), "{}", run.stderr);
        assert_eq!(manual_snapshots(&emulator).await.len(), 1);
        assert!(!sandbox.path("s3").exists());
        let box_calls: usize = std::fs::read_dir(sandbox.path("instances"))
            .unwrap()
            .map(|i| {
                std::fs::read_to_string(i.unwrap().path().join("calls.log"))
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.starts_with("gitlab-backup"))
                    .count()
            })
            .sum();
        assert_eq!(box_calls, 0);
    }

    #[tokio::test]
    async fn restore_refuses_a_bad_name_and_s3_off_before_any_aws_call() {
        let emulator = Emulator::start();
        let workspace = Workspace::new(&config());
        emulator.start_recording();
        let bad = glbox(
            &emulator,
            &workspace,
            &["restore", "--backup", "latest", "--yes"],
        );
        assert_eq!(bad.code, 2, "{}{}", bad.stdout, bad.stderr);
        assert!(bad.stderr.contains("--backup"), "{}", bad.stderr);

        workspace.write_config(&format!("name = \"trial\"\n{}", verify_section("")));
        let off = glbox(
            &emulator,
            &workspace,
            &[
                "restore",
                "--backup",
                "1764644400_2025_12_02_18.5.1",
                "--yes",
            ],
        );
        assert_eq!(off.code, 2, "{}{}", off.stdout, off.stderr);
        assert!(off.stderr.contains("backup.s3"), "{}", off.stderr);
        assert_eq!(emulator.recorded_actions(), Vec::<String>::new());
    }
}
