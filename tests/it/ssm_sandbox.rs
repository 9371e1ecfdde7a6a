//! `glbox up` through SSM with the commands really run: the emulator
//! executes each SendCommand in a sandbox of recording stubs, one state
//! directory per instance and one per data volume (see
//! `add_sandbox_execution` in tests/emulator/moto_launcher.py), so a new
//! instance on a kept data volume is what it is on AWS: an empty root disk
//! and GitLab's data from before.

use crate::common::sandbox::Sandbox;
use crate::common::{bootstrap_tag, glbox, running_instance, Emulator, Workspace};

fn config(extra: &str) -> String {
    format!(
        "name = \"trial\"\n{extra}{}",
        crate::common::verify_section("")
    )
}

async fn run_in(emulator: &Emulator, sandbox: &Sandbox) {
    emulator
        .behave(serde_json::json!({"sandbox": sandbox.path("").display().to_string()}))
        .await;
}

async fn instance_id(emulator: &Emulator) -> String {
    running_instance(emulator, "trial")
        .await
        .instance_id()
        .unwrap()
        .to_string()
}

/// One reconfigure on this instance, its services running, and the
/// bootstrap recorded as done.
async fn assert_configured_once(emulator: &Emulator, sandbox: &Sandbox, what: &str) -> String {
    let id = instance_id(emulator).await;
    let box_ = sandbox.instance(&id);
    assert_eq!(box_.reconfigures(), 1, "{what}: {:?}", box_.calls());
    assert!(box_.services_running(), "{what}: {:?}", box_.calls());
    assert!(bootstrap_tag(emulator, "trial").await.is_some(), "{what}");
    id
}

#[tokio::test]
async fn every_new_instance_on_the_kept_data_volume_is_configured_once() {
    let emulator = Emulator::start();
    let sandbox = Sandbox::new();
    run_in(&emulator, &sandbox).await;
    let workspace = Workspace::new(&config(""));

    let up = glbox(&emulator, &workspace, &["up", "--yes"]);
    up.assert_ok();
    assert!(up.stdout.contains("GitLab is healthy."), "{}", up.stdout);
    let first = assert_configured_once(&emulator, &sandbox, "first instance").await;

    glbox(&emulator, &workspace, &["down", "--yes"]).assert_ok();
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    let second = assert_configured_once(&emulator, &sandbox, "after down and up").await;
    assert_ne!(first, second);
    assert!(
        sandbox
            .instance(&second)
            .calls()
            .iter()
            .any(|c| c.starts_with("package script: gitlab-ctl upgrade")),
        "the package ran its own script, which skipped the reconfigure"
    );

    // A replacement: an explicit (other) image.
    let current = running_instance(&emulator, "trial").await;
    let ami = crate::common::other_x86_image(&emulator, current.image_id()).await;
    workspace.write_config(&config(&format!("[instance]\nami = \"{ami}\"\n")));
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    let third = assert_configured_once(&emulator, &sandbox, "replacement").await;
    assert_ne!(second, third);
}

/// A `glbox verify` sent while a slow install runs gets its own command
/// file: the bootstrap is not cut short and ends complete, with its state
/// on the data volume.
#[tokio::test]
async fn a_verify_during_a_slow_install_does_not_cut_the_bootstrap_short() {
    let emulator = Emulator::start();
    let sandbox = Sandbox::new();
    run_in(&emulator, &sandbox).await;
    let workspace = Workspace::new(&config(""));
    glbox(&emulator, &workspace, &["up", "--no-bootstrap", "--yes"]).assert_ok();
    std::fs::write(sandbox.path("slow-install"), "6").unwrap();

    let up = std::thread::scope(|scope| {
        let up = scope.spawn(|| glbox(&emulator, &workspace, &["up", "--yes"]));
        std::thread::sleep(std::time::Duration::from_secs(3));
        // Its verdict does not matter (GitLab is still installing).
        let _ = glbox(&emulator, &workspace, &["verify"]);
        up.join().unwrap()
    });
    up.assert_ok();
    let id = assert_configured_once(&emulator, &sandbox, "slow install").await;
    let volumes = std::fs::read_dir(sandbox.path("volumes")).unwrap();
    let volume = volumes.map(|v| v.unwrap().path()).next().unwrap();
    assert!(volume.join("glbox/installed-version").exists());
    assert!(volume.join("glbox/gitlab-secrets.json").exists());
    assert_eq!(
        std::fs::read_dir(sandbox.instance(&id).dir.join("run"))
            .unwrap()
            .count(),
        0,
        "every command removed its file"
    );
}

/// A lab seat terminated out of band is relaunched onto its kept data
/// volume by the next `lab up`, and configured once.
#[tokio::test]
async fn a_relaunched_lab_seat_is_configured_once() {
    let emulator = Emulator::start();
    let sandbox = Sandbox::new();
    run_in(&emulator, &sandbox).await;
    let workspace = Workspace::new(&format!(
        "[lab]\nname = \"class\"\nseats = 2\nexpires_in = \"8h\"\n{}",
        crate::common::verify_section("")
    ));
    glbox(&emulator, &workspace, &["lab", "up", "--yes"]).assert_ok();
    let seats = seat_instances(&emulator).await;
    assert_eq!(seats.len(), 2, "{seats:?}");
    for id in &seats {
        assert_eq!(sandbox.instance(id).reconfigures(), 1, "{id}");
    }
    emulator
        .ec2()
        .terminate_instances()
        .instance_ids(&seats[0])
        .send()
        .await
        .unwrap();

    glbox(&emulator, &workspace, &["lab", "up", "--yes"]).assert_ok();
    let after = seat_instances(&emulator).await;
    let relaunched: Vec<&String> = after.iter().filter(|id| !seats.contains(id)).collect();
    assert_eq!(relaunched.len(), 1, "{seats:?} -> {after:?}");
    let seat = sandbox.instance(relaunched[0]);
    assert_eq!(seat.reconfigures(), 1, "{:?}", seat.calls());
    assert!(seat.services_running(), "{:?}", seat.calls());
    assert_eq!(sandbox.instance(&seats[1]).reconfigures(), 1, "untouched");
}

/// The lab's live seat instances.
async fn seat_instances(emulator: &Emulator) -> Vec<String> {
    let out = emulator
        .ec2()
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:glbox:lab")
                .values("class")
                .build(),
        )
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-state-name")
                .values("running")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut ids: Vec<String> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    ids.sort();
    ids
}
