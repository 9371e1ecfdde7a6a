//! The first-run wizard, driven in a real pseudo-terminal against the
//! emulator (DescribeRegions and DescribeInstanceTypeOfferings answer from
//! moto's own data, no launcher extension needed), the runs that must never
//! prompt, and the cost estimate `plan` shows.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{glbox, Emulator, Workspace};
use aws_sdk_ec2::types::Filter;
use rexpect::process::WaitStatus;
use rexpect::session::PtySession;

/// How long the pty session waits for an expected text before the test
/// fails (a safety net against a hang, not a timing assertion).
const EXPECT_LIMIT_MS: u64 = 60_000;

fn empty_workspace() -> Workspace {
    Workspace {
        dir: tempfile::tempdir().unwrap(),
    }
}

/// The glbox binary in `workspace`, with the harness's clean environment.
fn glbox_command(emulator: &Emulator, workspace: &Workspace, args: &[&str]) -> Command {
    let mut command =
        crate::common::clean_command(env!("CARGO_BIN_EXE_glbox"), workspace, &emulator.endpoint());
    command.args(args).env("TERM", "xterm");
    command
}

/// glbox on a pseudo-terminal (stdin, stdout and stderr all on it).
fn on_terminal(emulator: &Emulator, workspace: &Workspace, args: &[&str]) -> PtySession {
    let command = glbox_command(emulator, workspace, args);
    rexpect::session::spawn_with_options(
        command,
        rexpect::reader::Options::new()
            .timeout_ms(Some(EXPECT_LIMIT_MS))
            .strip_ansi_escape_codes(true),
    )
    .expect("start glbox on a pseudo-terminal")
}

/// Answers a text question.
fn answer(session: &mut PtySession, question: &str, text: &str) {
    session
        .exp_string(question)
        .unwrap_or_else(|e| panic!("waiting for {question:?}: {e}"));
    session.send_line(text).unwrap();
}

/// Expects the wizard's reason for refusing an answer.
fn refused(session: &mut PtySession, reason: &str) {
    session
        .exp_string(reason)
        .unwrap_or_else(|e| panic!("waiting for the refusal {reason:?}: {e}"));
}

/// Chooses the item `steps` below the default of a list question.
fn choose(session: &mut PtySession, question: &str, steps: usize) {
    session
        .exp_string(question)
        .unwrap_or_else(|e| panic!("waiting for {question:?}: {e}"));
    for _ in 0..steps {
        session.send("j").unwrap();
    }
    session.send("\r").unwrap();
    session.flush().unwrap();
}

/// Answers a yes/no question.
fn confirm(session: &mut PtySession, question: &str, yes: bool) {
    session
        .exp_string(question)
        .unwrap_or_else(|e| panic!("waiting for {question:?}: {e}"));
    session.send(if yes { "y" } else { "n" }).unwrap();
    session.flush().unwrap();
}

/// Waits for the end and returns the exit status.
fn exit_code(session: &mut PtySession) -> i32 {
    session.exp_eof().expect("glbox ends");
    match session.process().wait().expect("glbox's status") {
        WaitStatus::Exited(_, code) => code,
        other => panic!("glbox did not exit normally: {other:?}"),
    }
}

fn load(path: &Path) -> glbox::config::Settings {
    glbox::config::load(&glbox::config::Sources {
        explicit_file: Some(path.to_path_buf()),
        ..glbox::config::Sources::default()
    })
    .unwrap_or_else(|e| panic!("the written file does not load: {e}"))
}

/// The written file holds no secret and is not writable by others.
fn assert_clean_file(path: &Path) {
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "mode of {}", path.display());
    let text = std::fs::read_to_string(path).unwrap();
    // The emulator's credentials ("testing") are the only secret in reach.
    assert!(!text.contains("testing"), "{text}");
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let key = line.split('=').next().unwrap_or_default().to_lowercase();
        assert!(
            !["password", "secret", "private", "token"]
                .iter()
                .any(|word| key.contains(word)),
            "a secret-looking key in the file: {line}"
        );
    }
}

#[test]
fn init_asks_rechecks_bad_answers_and_writes_a_file_that_loads_to_the_answers() {
    let emulator = Emulator::start();
    let workspace = empty_workspace();
    let mut session = on_terminal(&emulator, &workspace, &["init"]);

    answer(&mut session, "Deployment name", "Bad_Name");
    refused(&mut session, "must be 1-31 characters");
    answer(&mut session, "Deployment name", "wiz-test");
    // The region list comes from DescribeRegions.
    session.exp_string("eu-west-1").unwrap();
    answer(&mut session, "AWS region", "mars-1");
    refused(&mut session, "is not an AWS region name");
    answer(&mut session, "AWS region", "eu-west-1");
    answer(&mut session, "How many users", "250");
    choose(&mut session, "Processor", 1);
    // Well-formed, but DescribeInstanceTypeOfferings does not list it.
    answer(&mut session, "Instance type", "c9z.large");
    refused(&mut session, "c9z.large is not offered in eu-west-1");
    answer(&mut session, "Instance type", "t4g.xlarge");
    refused(&mut session, "below GitLab's recommendation");
    choose(&mut session, "Operating system", 0);
    choose(&mut session, "How glbox reaches the box", 0);
    // A bare name means https; a path is refused.
    answer(&mut session, "External URL", "gitlab.example.com/git");
    refused(&mut session, "has a path");
    answer(&mut session, "External URL", "gitlab.example.com");
    confirm(&mut session, "Let's Encrypt", true);
    choose(&mut session, "GitLab edition", 1);
    answer(&mut session, "GitLab version", "18.5");
    refused(&mut session, "is not \"latest\" or a release");
    answer(&mut session, "GitLab version", "18.5.1");
    confirm(&mut session, "Amazon SES", true);
    // The URL's parent domain is proposed: Enter takes it.
    answer(&mut session, "Email domain", "");
    answer(&mut session, "Data volume size", "10");
    refused(&mut session, "out of range");
    answer(&mut session, "Data volume size", "200");
    // The review: what is built and what it costs, before anything is written.
    session.exp_string("t4g.xlarge, ubuntu-24.04").unwrap();
    session.exp_string("Estimated cost").unwrap();
    confirm(&mut session, "Write glbox.toml?", true);
    session
        .exp_string("glbox up --config glbox.toml --yes")
        .unwrap();
    assert_eq!(exit_code(&mut session), 0);

    let path = workspace.path().join("glbox.toml");
    assert_clean_file(&path);
    let settings = load(&path);
    assert_eq!(settings.name, "wiz-test");
    assert_eq!(settings.region, "eu-west-1");
    assert_eq!(settings.instance_type, "t4g.xlarge");
    assert_eq!(settings.os, glbox::config::Os::Ubuntu2404);
    assert_eq!(settings.access, glbox::config::AccessMethod::Ssm);
    assert_eq!(
        settings.gitlab.external_url.as_deref(),
        Some("https://gitlab.example.com")
    );
    assert!(settings.gitlab.letsencrypt);
    assert_eq!(settings.gitlab.edition, glbox::config::Edition::Ee);
    assert_eq!(settings.gitlab.version.as_str(), "18.5.1");
    assert_eq!(
        settings.email.as_ref().map(|e| e.domain.as_str()),
        Some("example.com")
    );
    assert_eq!(settings.data_volume.size_gib, 200);

    // glbox reads it too, and prices it:
    // t4g.xlarge in eu-west-1 0.1472 $/h x 730 h = 107.456
    // root 50 GiB x 0.088                      =   4.40
    // data 200 GiB x 0.088                     =  17.60
    // IOPS and throughput at the free baseline =   0.00
    // Elastic IP 0.005 $/h x 730 h             =   3.65
    // total 133.106                            -> 133.11
    let run = glbox(&emulator, &workspace, &["plan", "--output", "json"]);
    run.assert_ok();
    assert_eq!(run.json()["cost"]["monthly_usd"], 133.11);
    assert_eq!(run.json()["cost"]["complete"], true);
}

#[test]
fn up_without_a_configuration_asks_then_builds_with_the_written_file() {
    let emulator = Emulator::start();
    let workspace = empty_workspace();
    let mut session = on_terminal(&emulator, &workspace, &["up", "--no-bootstrap"]);
    // Every default taken with Enter.
    for question in ["Deployment name", "AWS region", "How many users"] {
        answer(&mut session, question, "");
    }
    choose(&mut session, "Processor", 0);
    answer(&mut session, "Instance type", "");
    choose(&mut session, "Operating system", 0);
    choose(&mut session, "How glbox reaches the box", 0);
    answer(&mut session, "External URL", "");
    choose(&mut session, "GitLab edition", 0);
    answer(&mut session, "GitLab version", "");
    confirm(&mut session, "Amazon SES", false);
    answer(&mut session, "Data volume size", "");
    session.exp_string("263.85  per month").unwrap_or_else(|e| {
        panic!("the review shows the default configuration's monthly cost: {e}")
    });
    confirm(&mut session, "Write glbox.toml?", true);
    // Then the normal up: its plan, its own confirmation, its summary.
    confirm(&mut session, "Apply these changes?", true);
    session.exp_string("is up in us-east-1").unwrap();
    session
        .exp_string("cost:        about $263.85/month")
        .unwrap();
    assert_eq!(exit_code(&mut session), 0);

    let path = workspace.path().join("glbox.toml");
    assert_clean_file(&path);
    let settings = load(&path);
    assert_eq!(
        (settings.name.as_str(), settings.region.as_str()),
        ("gitlab", "us-east-1")
    );
    // What AWS has: the instance of the file's deployment, of the
    // recommended type, and its data volume of the default size.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ec2 = emulator.ec2();
    let tagged = || {
        Filter::builder()
            .name("tag:glbox:deployment")
            .values("gitlab")
            .build()
    };
    let instances = runtime
        .block_on(ec2.describe_instances().filters(tagged()).send())
        .unwrap();
    let instance = &instances.reservations()[0].instances()[0];
    assert_eq!(instance.instance_type().unwrap().as_str(), "c5.2xlarge");
    let volumes = runtime
        .block_on(ec2.describe_volumes().filters(tagged()).send())
        .unwrap();
    assert!(
        volumes.volumes().iter().any(|v| v.size() == Some(100)),
        "{volumes:?}"
    );
}

#[test]
fn ctrl_c_in_the_wizard_stops_with_nothing_written() {
    let emulator = Emulator::start();
    let workspace = empty_workspace();
    let mut session = on_terminal(&emulator, &workspace, &["up"]);
    answer(&mut session, "Deployment name", "half-way");
    session.exp_string("AWS region").unwrap();
    session.send_control('c').unwrap();
    session.exp_string("stopped: nothing was written").unwrap();
    assert_eq!(exit_code(&mut session), 130);
    assert!(!workspace.path().join("glbox.toml").exists());
    // Only glbox's state folder, which holds the run's debug log.
    let left: Vec<String> = std::fs::read_dir(workspace.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "state")
        .collect();
    assert_eq!(
        left,
        Vec::<String>::new(),
        "no configuration file of any kind is left behind"
    );
}

/// Runs glbox with stdin an open pipe nobody writes to: a prompt would
/// wait forever, so past `limit` the run is killed and the test fails.
fn without_terminal(
    emulator: &Emulator,
    workspace: &Workspace,
    args: &[&str],
    env: &[(&str, &str)],
) -> crate::common::Run {
    let limit = Duration::from_secs(60);
    let mut command = glbox_command(emulator, workspace, args);
    command.envs(env.iter().copied());
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _open_stdin = child.stdin.take();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let run = crate::common::Run {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    assert!(
        status.is_some(),
        "glbox {args:?} waited for input without a terminal\n{}",
        run.stderr
    );
    run
}

#[test]
fn without_a_terminal_nothing_is_asked_and_every_missing_value_is_listed() {
    let emulator = Emulator::start();
    let workspace = empty_workspace();
    for args in [&["up", "--no-bootstrap"][..], &["init"][..]] {
        emulator.start_recording();
        let run = without_terminal(&emulator, &workspace, args, &[]);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("2 required value(s) missing"),
            "{}",
            run.stderr
        );
        for text in ["  name:", "GLBOX_NAME", "  region:", "AWS_REGION", "fix:"] {
            assert!(run.stderr.contains(text), "{text:?} in {}", run.stderr);
        }
        assert_eq!(
            emulator.recorded_actions(),
            Vec::<String>::new(),
            "{args:?}"
        );
        assert!(!workspace.path().join("glbox.toml").exists());
    }
    // One value given: only the other is listed.
    let run = without_terminal(
        &emulator,
        &workspace,
        &["up", "--no-bootstrap"],
        &[("AWS_REGION", "eu-west-1")],
    );
    assert!(
        run.stderr.contains("1 required value(s) missing"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("  region:"), "{}", run.stderr);
}

#[test]
fn non_interactive_on_a_terminal_does_not_ask_either() {
    let emulator = Emulator::start();
    let workspace = empty_workspace();
    let mut session = on_terminal(
        &emulator,
        &workspace,
        &["up", "--no-bootstrap", "--non-interactive"],
    );
    session.exp_string("required value(s) missing").unwrap();
    assert_eq!(exit_code(&mut session), 2);
    assert!(!workspace.path().join("glbox.toml").exists());
}

#[test]
fn scripted_runs_keep_working_and_init_writes_from_the_environment() {
    let emulator = Emulator::start();
    let workspace = empty_workspace();
    let env = [("GLBOX_NAME", "scripted"), ("AWS_REGION", "us-east-2")];
    // No file: the environment is enough for a plan, as before.
    let run = without_terminal(&emulator, &workspace, &["plan", "--output", "json"], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = without_terminal(&emulator, &workspace, &["init"], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let path = workspace.path().join("glbox.toml");
    assert_clean_file(&path);
    let settings = load(&path);
    assert_eq!(
        (settings.name.as_str(), settings.region.as_str()),
        ("scripted", "us-east-2")
    );
    // An existing file is replaced only with --force.
    let run = without_terminal(&emulator, &workspace, &["init"], &[("GLBOX_NAME", "other")]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(load(&path).name, "scripted");
    let run = without_terminal(
        &emulator,
        &workspace,
        &["init", "--force"],
        &[("GLBOX_NAME", "other"), ("AWS_REGION", "us-east-2")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(load(&path).name, "other");
}

#[test]
fn plan_prices_a_configuration_line_by_line() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(
        "name = \"priced\"\nregion = \"us-west-2\"\n\
         [instance]\ntype = \"m7g.2xlarge\"\nroot_volume_gib = 80\n\
         [network]\nelastic_ip = false\n\
         [data_volume]\nsize_gib = 500\niops = 6000\nthroughput_mibps = 250\n",
    );
    let run = glbox(&emulator, &workspace, &["plan", "--output", "json"]);
    run.assert_ok();
    let cost = &run.json()["cost"];
    // m7g.2xlarge in us-west-2: 0.3264 $/h x 730 h          = 238.272 -> 238.27
    // root 80 GiB x 0.08 $/GiB-month                         =   6.40
    // data 500 GiB x 0.08                                    =  40.00
    // (6000 - 3000) IOPS x 0.005 + (250 - 125) MiB/s x 0.04  =  15.00 + 5.00 = 20.00
    // public IPv4 (no Elastic IP) 0.005 $/h x 730 h          =   3.65
    // total 308.322 -> 308.32 a month; 308.322 / 730 = 0.42236 -> 0.4224 an hour
    let lines: Vec<f64> = cost["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["monthly_usd"].as_f64().unwrap())
        .collect();
    assert_eq!(lines, vec![238.27, 6.4, 40.0, 20.0, 3.65]);
    assert_eq!(cost["monthly_usd"], 308.32);
    assert_eq!(cost["hourly_usd"], 0.4224);
    assert_eq!(cost["complete"], true);
    assert_eq!(cost["lines"][4]["item"], "public_ipv4");

    // A type the table does not price: said, and the total is marked.
    workspace.write_config("name = \"priced\"\n[instance]\ntype = \"r7g.large\"\n");
    let run = glbox(&emulator, &workspace, &["plan"]);
    run.assert_ok();
    assert!(
        run.stdout
            .contains("no price in the table for r7g.large in us-east-1"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("INCOMPLETE"), "{}", run.stdout);
    assert!(run.stdout.contains("prices change"), "{}", run.stdout);
}

#[test]
fn init_respects_the_umask() {
    let emulator = Emulator::start();
    let workspace = empty_workspace();
    // The file holds no secret, but a user who keeps their files private
    // (umask 077) must not find it opened up to 0644.
    let out = crate::common::clean_command("sh", &workspace, &emulator.endpoint())
        .args([
            "-c",
            "umask 077 && exec \"$0\" init",
            env!("CARGO_BIN_EXE_glbox"),
        ])
        .env("GLBOX_NAME", "private")
        .env("AWS_REGION", "us-east-2")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = workspace.path().join("glbox.toml");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(load(&path).name, "private");
}
