//! `scripts/demo`, the offline rehearsal, run as a trainer would: it must
//! pass end to end, talk only to 127.0.0.1, keep the caller's environment
//! away from glbox, and leave nothing behind (its folder, the emulator),
//! also when interrupted with Ctrl-C.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

fn demo(tmpdir: &Path) -> Command {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo");
    let mut command = Command::new(script);
    command
        .env("GLBOX_BIN", env!("CARGO_BIN_EXE_glbox"))
        .env(
            "TEST_MOTO_PYTHON",
            std::env::var_os("TEST_MOTO_PYTHON").expect("TEST_MOTO_PYTHON (scripts/test sets it)"),
        )
        .env("TMPDIR", tmpdir)
        .env_remove("NO_COLOR")
        // Canaries: were the demo to pass the caller's environment on,
        // glbox would deploy "leaked" and send AWS calls to a closed port.
        .env("GLBOX_NAME", "leaked")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_PROFILE", "not-for-the-demo")
        .stdin(Stdio::null());
    command
}

/// Nothing is left in the demo's TMPDIR.
fn assert_empty(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The processes whose command line or environment names `dir`: every
/// helper the demo starts runs with its TMPDIR inside it.
fn processes_in(dir: &Path) -> Vec<String> {
    let needle = dir.to_str().unwrap().as_bytes();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let is_pid = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()));
        if !is_pid {
            continue;
        }
        let names_dir = ["cmdline", "environ"].iter().any(|file| {
            std::fs::read(entry.path().join(file))
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        });
        if names_dir {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push(String::from_utf8_lossy(&cmdline).replace('\0', " "));
        }
    }
    found
}

#[test]
fn the_demo_runs_the_whole_flow_offline_and_cleans_up() {
    let tmpdir = tempfile::tempdir().unwrap();
    let out = demo(tmpdir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("the AWS emulator at http://127.0.0.1:"),
        "{stdout}"
    );
    for expected in [
        "Plan for deployment \"demo\" in us-east-1:",
        "Deployment \"demo\" is up in us-east-1.",
        "GitLab is healthy.",
        "Deployment \"demo\" in us-east-1: complete",
        "Deployment \"demo\" in us-east-1 is up to date: nothing to do.",
        "Kept data volume vol-",
        "delete without snapshot",
        "-up-",
        "emulator stopped",
    ] {
        assert!(
            stdout.contains(expected),
            "the demo lacks {expected:?}:\n{stdout}"
        );
    }
    assert!(!stdout.contains("leaked") && !stderr.contains("leaked"));
    assert_empty(tmpdir.path());
    assert_eq!(
        processes_in(tmpdir.path()),
        Vec::<String>::new(),
        "the emulator and the sign-in stand-in are stopped"
    );
}

#[test]
fn the_demo_refuses_an_endpoint_that_is_not_local() {
    for endpoint in [
        "https://ec2.us-east-1.amazonaws.com",
        "http://10.1.2.3:5000",
        "http://127.0.0.1.example.com:80",
    ] {
        let tmpdir = tempfile::tempdir().unwrap();
        let out = demo(tmpdir.path())
            .args(["--endpoint", endpoint])
            .env("GLBOX_BIN", "/nonexistent/glbox")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{endpoint}: {stderr}");
        assert!(
            stderr.contains(&format!("refusing endpoint '{endpoint}'")),
            "{stderr}"
        );
        assert_empty(tmpdir.path());
    }
}

#[test]
fn ctrl_c_stops_the_demo_and_still_cleans_up() {
    let tmpdir = tempfile::tempdir().unwrap();
    let mut child = demo(tmpdir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group, as a terminal's foreground job.
        .process_group(0)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    // Interrupt once `up` has begun.
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("$ glbox up --yes") {
            break;
        }
    }
    let group = format!("-{}", child.id());
    let ctrl_c = || {
        let sent = Command::new("kill")
            .args(["-INT", "--", &group])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    ctrl_c();
    // glbox stops at its next safe point; on a loaded machine the signal
    // may come after `up`'s last one, and `up` then finishes (bash leaves
    // a SIGINT its child handled alone). Once the demo goes on to its next
    // step, the user presses Ctrl-C again.
    for line in lines {
        let line = line.unwrap();
        if line.starts_with("$ glbox status") {
            ctrl_c();
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "interrupted:\n{seen}");
    assert!(!seen.contains("\nDone."), "the demo stopped early:\n{seen}");
    assert!(seen.contains("emulator stopped"), "{seen}");
    assert_empty(tmpdir.path());
    assert_eq!(processes_in(tmpdir.path()), Vec::<String>::new());
}
