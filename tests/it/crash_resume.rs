//! Crash and resume: `up` is killed at every checkpoint in turn (a
//! failpoint exits with 137, as SIGKILL would leave things: no clean-up),
//! then run again; each time the end state is exactly one complete set of
//! resources, and a third `up` changes nothing. Ctrl-C (a real SIGINT
//! through glbox's handler) stops at the next safe point, says how to
//! resume, and the re-run converges the same way.
//!
//! Needs the `failpoints` feature (scripts/test turns it on).

use crate::common::{glbox, glbox_with_env, mutating, Emulator, Workspace};
use aws_sdk_ec2::types::Filter;

const CONFIG: &str = "name = \"trial\"\n[email]\nenabled = true\ndomain = \"example.com\"\n";

/// The emulator reports a healthy box to the health checks (SSM runs
/// nothing there).
async fn healthy_box(emulator: &Emulator) {
    emulator
        .behave(serde_json::json!({"invocations": [
            {"contains": "# glbox verify:", "status": "Success",
             "stdout": crate::common::healthy_verify_output("18.6.0")}
        ]}))
        .await;
}

fn tagged(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

/// Asserts exactly one complete set of the deployment's resources, as the
/// AWS API shows them; `context` names the failpoint.
async fn assert_one_complete_set(emulator: &Emulator, context: &str) {
    let ec2 = emulator.ec2();
    let deployment = tagged("glbox:deployment", "trial");
    let reservations = ec2
        .describe_instances()
        .filters(deployment.clone())
        .send()
        .await
        .unwrap();
    let live: Vec<_> = reservations
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()) != Some("terminated"))
        .collect();
    assert_eq!(live.len(), 1, "{context}: live instances {live:?}");
    let instance = live[0];
    let instance_id = instance.instance_id().unwrap();
    assert_eq!(
        instance.state().and_then(|s| s.name()).map(|n| n.as_str()),
        Some("running"),
        "{context}"
    );
    assert!(
        instance
            .tags()
            .iter()
            .any(|t| t.key() == Some("glbox:bootstrap")),
        "{context}: the bootstrap finished"
    );

    let volumes = ec2
        .describe_volumes()
        .filters(deployment.clone())
        .filters(tagged("glbox:role", "data"))
        .send()
        .await
        .unwrap();
    assert_eq!(volumes.volumes().len(), 1, "{context}: data volumes");
    let attached: Vec<_> = volumes.volumes()[0]
        .attachments()
        .iter()
        .filter_map(|a| a.instance_id())
        .collect();
    assert_eq!(attached, vec![instance_id], "{context}");

    let addresses = ec2
        .describe_addresses()
        .filters(deployment.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(addresses.addresses().len(), 1, "{context}: addresses");
    assert_eq!(
        addresses.addresses()[0].instance_id(),
        Some(instance_id),
        "{context}"
    );

    let groups = ec2
        .describe_security_groups()
        .filters(deployment)
        .send()
        .await
        .unwrap();
    assert_eq!(groups.security_groups().len(), 1, "{context}: groups");

    let iam = emulator.iam();
    iam.get_role()
        .role_name("glbox-trial-us-east-1")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{context}: role: {e}"));
    let profile = iam
        .get_instance_profile()
        .instance_profile_name("glbox-trial-us-east-1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        profile.instance_profile().unwrap().roles().len(),
        1,
        "{context}"
    );
    let keys = iam
        .list_access_keys()
        .user_name("glbox-trial-us-east-1-smtp")
        .send()
        .await
        .unwrap();
    assert_eq!(
        keys.access_key_metadata().len(),
        1,
        "{context}: one SMTP key, no leftover"
    );
    let key_id = keys.access_key_metadata()[0].access_key_id().unwrap();

    let ssm = emulator.ssm();
    let parameters = ssm
        .get_parameters_by_path()
        .path("/glbox/trial/")
        .send()
        .await
        .unwrap();
    let mut names: Vec<&str> = parameters
        .parameters()
        .iter()
        .filter_map(|p| p.name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "/glbox/trial/root-password",
            "/glbox/trial/smtp-key",
            "/glbox/trial/smtp-password"
        ],
        "{context}"
    );
    let record = ssm
        .get_parameter()
        .name("/glbox/trial/smtp-key")
        .send()
        .await
        .unwrap();
    assert!(
        record
            .parameter()
            .unwrap()
            .value()
            .unwrap()
            .contains(key_id),
        "{context}: the SMTP record names the live key"
    );
}

async fn assert_converged(emulator: &Emulator, workspace: &Workspace, context: &str) {
    assert_one_complete_set(emulator, context).await;
    emulator.start_recording();
    glbox(emulator, workspace, &["up", "--yes"]).assert_ok();
    assert_eq!(
        mutating(&emulator.recorded_actions()),
        Vec::<String>::new(),
        "{context}: a third up changes nothing"
    );
}

#[tokio::test]
async fn a_crash_at_any_checkpoint_is_finished_by_the_next_up() {
    for step in glbox::deploy::CHECKPOINTS {
        let emulator = Emulator::start();
        healthy_box(&emulator).await;
        let workspace = Workspace::new(&format!("{CONFIG}{}", crate::common::verify_section("")));
        let crashed = glbox_with_env(
            &emulator,
            &workspace,
            &["up", "--yes"],
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
        glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
        assert_converged(&emulator, &workspace, &format!("crash after {step}")).await;
    }
}

#[tokio::test]
async fn ctrl_c_stops_at_the_next_safe_point_and_says_how_to_resume() {
    for step in ["iam-role", "data-volume", "instance", "bootstrap"] {
        let emulator = Emulator::start();
        healthy_box(&emulator).await;
        let workspace = Workspace::new(&format!("{CONFIG}{}", crate::common::verify_section("")));
        let stopped = glbox_with_env(
            &emulator,
            &workspace,
            &["up", "--yes"],
            &[("GLBOX_FAILPOINT", &format!("sigint:{step}"))],
        );
        assert_eq!(stopped.code, 130, "{step}: {}", stopped.stderr);
        assert!(
            stopped.stderr.contains(&format!("stopped after {step}"))
                && stopped.stderr.contains("run glbox up again"),
            "{step}: {}",
            stopped.stderr
        );
        glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
        assert_converged(&emulator, &workspace, &format!("Ctrl-C after {step}")).await;
    }
}
