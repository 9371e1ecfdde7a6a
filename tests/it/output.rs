//! What glbox prints and records: the phases of `up`, plain timestamped
//! lines without a terminal, no escape sequence at all under `NO_COLOR`
//! (checked in a real pseudo-terminal, against a run without it that does
//! draw), `-q` and `-v`, and the debug log of every run (content, modes,
//! pruning, its path printed on failure).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::{glbox, glbox_with_env, Emulator, Run, Workspace};

const ESC: char = '\u{1b}';

/// The run logs in the workspace's state folder, oldest first.
fn logs(workspace: &Workspace) -> Vec<PathBuf> {
    let dir = workspace.state_dir().join("glbox/logs");
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    logs.sort();
    logs
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Runs glbox inside a pseudo-terminal (util-linux `script`), as on a
/// person's screen: stdin, stdout and stderr are the terminal. Returns
/// everything the terminal received.
fn glbox_in_terminal(
    emulator: &Emulator,
    workspace: &Workspace,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut command_line = env!("CARGO_BIN_EXE_glbox").to_string();
    for arg in args {
        command_line.push(' ');
        command_line.push_str(arg);
    }
    let mut command = crate::common::clean_command("script", workspace, &emulator.endpoint());
    command
        .args([
            "--quiet",
            "--return",
            "--command",
            &command_line,
            "/dev/null",
        ])
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run script(1)").into()
}

#[test]
fn no_color_means_no_escape_sequence_even_on_a_terminal() {
    let emulator = Emulator::start();
    let plain = Workspace::new("name = \"plain\"\n");
    let run = glbox_in_terminal(
        &emulator,
        &plain,
        &["up", "--yes", "--no-bootstrap"],
        &[("NO_COLOR", "1")],
    );
    run.assert_ok();
    assert!(
        run.stdout.contains("Deployment \"plain\" is up"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("[1/8] security group"),
        "the phases are shown as lines: {}",
        run.stdout
    );
    assert!(
        !run.stdout.contains(ESC),
        "NO_COLOR: no escape sequence at all:\n{:?}",
        run.stdout
    );

    // The same on a terminal without NO_COLOR draws live progress, which
    // needs escape sequences: so the check above can fail.
    let live = Workspace::new("name = \"live\"\n");
    let run = glbox_in_terminal(&emulator, &live, &["up", "--yes", "--no-bootstrap"], &[]);
    run.assert_ok();
    assert!(
        run.stdout.contains(ESC),
        "a terminal gets live progress:\n{:?}",
        run.stdout
    );
}

/// The phase lines (`[3/8] instance`) of a run without a terminal, after
/// checking that every progress line is stamped `[HH:MM:SS +S.Ss]`.
fn phase_lines(run: &Run) -> Vec<&str> {
    assert!(!run.stderr.contains(ESC), "{:?}", run.stderr);
    run.stderr
        .lines()
        .map(|line| {
            let (stamp, text) = line
                .split_once("] ")
                .unwrap_or_else(|| panic!("not a stamped line: {line:?}"));
            let stamp = stamp.strip_prefix('[').expect("starts with [");
            let (clock, elapsed) = stamp.split_once(" +").expect("clock and elapsed");
            assert!(
                clock.len() == 8 && clock.chars().filter(|c| *c == ':').count() == 2,
                "{line}"
            );
            assert!(elapsed.ends_with('s'), "{line}");
            text
        })
        .filter(|text| text.starts_with('['))
        .collect()
}

#[test]
fn without_a_terminal_progress_is_plain_timestamped_lines_in_phases() {
    let emulator = Emulator::start();
    let workspace = Workspace::new("name = \"trial\"\n");
    let up = glbox(&emulator, &workspace, &["up", "--yes", "--no-bootstrap"]);
    up.assert_ok();
    assert_eq!(
        phase_lines(&up),
        [
            "[1/8] security group",
            "[2/8] IAM role",
            "[3/8] instance profile",
            "[4/8] root password",
            "[5/8] data volume",
            "[6/8] instance",
            "[7/8] data volume attachment",
            "[8/8] Elastic IP",
        ]
    );
    let down = glbox(
        &emulator,
        &workspace,
        &["down", "--yes", "--delete-data", "--no-snapshot"],
    );
    down.assert_ok();
    assert_eq!(
        phase_lines(&down),
        [
            "[1/7] Elastic IP",
            "[2/7] instance",
            "[3/7] data volume",
            "[4/7] security group",
            "[5/7] SSM parameters",
            "[6/7] instance profile",
            "[7/7] IAM role",
        ]
    );
}

#[tokio::test]
async fn quiet_prints_only_the_result_and_verbose_adds_the_aws_calls() {
    let emulator = Emulator::start();
    let workspace = Workspace::new("name = \"trial\"\n");
    let quiet = glbox(
        &emulator,
        &workspace,
        &["up", "--yes", "--no-bootstrap", "-q"],
    );
    quiet.assert_ok();
    assert_eq!(quiet.stderr, "", "-q: no progress at all");
    assert!(
        quiet
            .stdout
            .starts_with("Deployment \"trial\" is up in us-east-1."),
        "-q --yes: the result only, no plan before it:\n{}",
        quiet.stdout
    );
    let instance = crate::common::running_instance(&emulator, "trial").await;
    let instance_id = instance.instance_id().unwrap();
    assert!(quiet.stdout.contains(instance_id), "{}", quiet.stdout);

    let normal = glbox(&emulator, &workspace, &["status"]);
    normal.assert_ok();
    assert!(!normal.stderr.contains("aws EC2"), "{}", normal.stderr);
    let verbose = glbox(&emulator, &workspace, &["status", "-v"]);
    verbose.assert_ok();
    assert!(
        verbose.stderr.contains("aws EC2 DescribeInstances: ok"),
        "-v shows each AWS operation:\n{}",
        verbose.stderr
    );
    assert_eq!(verbose.stdout, normal.stdout, "-v changes no result");
}

#[test]
fn every_run_leaves_a_private_debug_log_and_old_ones_are_pruned() {
    let emulator = Emulator::start();
    let workspace = Workspace::new("name = \"trial\"\n");
    // 60 logs of earlier runs, and a file that is not glbox's.
    let dir = workspace.state_dir().join("glbox/logs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for i in 0..60 {
        std::fs::write(
            dir.join(format!("glbox-20200101T0000{i:02}.000Z-status-1.log")),
            "old",
        )
        .unwrap();
    }
    std::fs::write(dir.join("keep-me.txt"), "mine").unwrap();

    let run = glbox(&emulator, &workspace, &["up", "--yes", "--no-bootstrap"]);
    run.assert_ok();
    assert_eq!(mode(&dir), 0o700, "the log folder is private");
    let all = logs(&workspace);
    assert!(all.contains(&dir.join("keep-me.txt")), "other files stay");
    let glbox_logs: Vec<&PathBuf> = all
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    assert_eq!(glbox_logs.len(), 50, "the newest 50 are kept");
    assert!(
        !dir.join("glbox-20200101T000000.000Z-status-1.log").exists(),
        "the oldest went first"
    );
    let newest = glbox_logs.last().unwrap();
    assert!(
        newest.to_str().unwrap().contains("-up-"),
        "{}",
        newest.display()
    );
    assert_eq!(mode(newest), 0o600);

    let log = std::fs::read_to_string(newest).unwrap();
    // Every line starts with an RFC 3339 UTC time.
    for line in log.lines() {
        let stamp = line.split_whitespace().next().unwrap_or_default();
        assert!(
            stamp.len() >= 20 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "not timestamped: {line}"
        );
    }
    for expected in [
        "glbox started: ",
        "up --yes --no-bootstrap",
        // The AWS operations with their outcome, including those that
        // change nothing.
        "EC2 RunInstances: ok",
        "EC2 DescribeSecurityGroups: ok",
        "IAM CreateRole: ok",
        "SSM PutParameter: ok",
        // Answers glbox expects ("not found yet") are logged with AWS's
        // error, once.
        "IAM GetRole: error: NoSuchEntityException: Role glbox-trial-us-east-1 not found (",
        // Every step, as shown, and the detail that was not shown.
        "[6/8] instance",
        "launched instance ",
        "glbox finished: success",
    ] {
        assert!(log.contains(expected), "the log lacks {expected:?}:\n{log}");
    }
    // The counts match what the emulator received.
    emulator.start_recording();
    glbox(&emulator, &workspace, &["status"]).assert_ok();
    let received = emulator.recorded_actions().len();
    let status_log = std::fs::read_to_string(
        logs(&workspace)
            .iter()
            .rfind(|p| {
                p.to_str().unwrap().contains("-status-")
                    && !p.to_str().unwrap().contains("20200101")
            })
            .unwrap(),
    )
    .unwrap();
    let logged = status_log
        .lines()
        .filter(|l| l.contains("glbox::aws:"))
        .count();
    assert_eq!(
        logged, received,
        "one log line per AWS request:\n{status_log}"
    );
}

#[test]
fn a_failed_run_prints_where_its_log_is_even_when_quiet() {
    let emulator = Emulator::start();
    let workspace = Workspace::new("name = \"trial\"\n");
    // Nothing deployed: verify cannot check (exit 2).
    let run = glbox(&emulator, &workspace, &["verify", "-q"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let path = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("The full log of this run: "))
        .unwrap_or_else(|| panic!("no log path in:\n{}", run.stderr));
    assert_eq!(Path::new(path), logs(&workspace).last().unwrap().as_path());
    let log = std::fs::read_to_string(path).unwrap();
    assert!(
        log.contains(
            "glbox failed: could not check GitLab's health: the deployment has no running instance"
        ),
        "{log}"
    );
    assert!(log.contains("EC2 DescribeInstances: ok"), "{log}");

    // Bad input fails before AWS, and says where its log is too.
    workspace.write_config("name = \"Bad_Name\"\n");
    let run = glbox_with_env(&emulator, &workspace, &["status"], &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("The full log of this run: "),
        "{}",
        run.stderr
    );
}
