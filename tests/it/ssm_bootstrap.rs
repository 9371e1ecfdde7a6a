//! `glbox up` through SSM Run Command, against the emulator. The launcher
//! fills the emulator's gaps (DescribeInstanceInformation, invocation
//! outcomes) and tests steer it through the `/glbox-test/behaviour`
//! parameter. The emulator runs nothing, so these tests check what glbox
//! sends and how it handles each outcome.

use crate::common::{bootstrap_tag, glbox, mutating, Emulator, Workspace};
use base64::Engine;

/// Sets the emulator's behaviour; the health-check script always gets a
/// healthy box running `version` unless a rule says otherwise.
async fn behave(emulator: &Emulator, mut behaviour: serde_json::Value) {
    behave_with_version(emulator, &mut behaviour, "18.6.0").await
}

async fn behave_with_version(
    emulator: &Emulator,
    behaviour: &mut serde_json::Value,
    version: &str,
) {
    let healthy = serde_json::json!({"contains": "# glbox verify:", "status": "Success",
        "stdout": crate::common::healthy_verify_output(version)});
    let object = behaviour.as_object_mut().unwrap();
    let rules = object
        .entry("invocations")
        .or_insert_with(|| serde_json::json!([]));
    rules.as_array_mut().unwrap().push(healthy);
    emulator.behave(behaviour.clone()).await;
}

/// The bootstrap scripts glbox sent with SendCommand, decoded, oldest first.
async fn sent_scripts(emulator: &Emulator) -> Vec<(String, Vec<String>)> {
    all_sent_scripts(emulator)
        .await
        .into_iter()
        .filter(|(script, _)| script.contains("# glbox bootstrap:"))
        .collect()
}

/// Every script glbox sent with SendCommand, decoded, oldest first.
async fn all_sent_scripts(emulator: &Emulator) -> Vec<(String, Vec<String>)> {
    let out = emulator.ssm().list_commands().send().await.unwrap();
    out.commands()
        .iter()
        .map(|c| {
            let parameters = c.parameters().unwrap();
            let command = &parameters["commands"][0];
            let encoded = command.split('\'').nth(1).unwrap();
            let script = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap();
            (
                String::from_utf8(script).unwrap(),
                parameters["executionTimeout"].clone(),
            )
        })
        .collect()
}

/// What the emulator should see for the log-tail command glbox sends on failure.
fn log_tail_marker() -> String {
    "tail -n 60".to_string()
}

#[tokio::test]
async fn up_sends_the_rendered_bootstrap_and_keeps_the_password_on_aws() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&format!(
        "name = \"trial\"\n{}",
        crate::common::verify_section("")
    ));
    behave(&emulator, serde_json::json!({})).await;
    let run = glbox(&emulator, &workspace, &["up", "--yes"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("GitLab is healthy."),
        "up ends with the verdict:\n{}",
        run.stdout
    );

    let ssm = emulator.ssm();
    let parameter = ssm
        .get_parameter()
        .name("/glbox/trial/root-password")
        .with_decryption(true)
        .send()
        .await
        .unwrap()
        .parameter
        .unwrap();
    assert_eq!(parameter.r#type().unwrap().as_str(), "SecureString");
    let password = parameter.value().unwrap().to_string();
    assert!(password.len() >= 20);

    let script = glbox(&emulator, &workspace, &["render", "bootstrap"]);
    script.assert_ok();
    let sent = sent_scripts(&emulator).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        crate::common::inside_wrapper(&sent[0].0),
        script.stdout,
        "SSM carried exactly the rendered script"
    );
    assert!(
        sent[0]
            .0
            .starts_with("# glbox keeps this run's output on the box"),
        "inside the wrapper that keeps its output on the box"
    );
    assert_eq!(
        sent[0].1,
        vec!["3600".to_string()],
        "executionTimeout from install_timeout_minutes"
    );
    assert_eq!(
        bootstrap_tag(&emulator, "trial").await,
        Some(glbox::bootstrap::digest(&script.stdout))
    );

    // The password is in SSM only: not in what glbox sent or printed.
    let user_data = glbox(&emulator, &workspace, &["render", "user-data"]);
    for text in [&run.stdout, &run.stderr, &script.stdout, &user_data.stdout] {
        assert!(!text.contains(&password));
    }
    let shown = glbox(&emulator, &workspace, &["status", "--show-password"]);
    shown.assert_ok();
    assert!(shown.stdout.contains(&format!("root password: {password}")));
    let status = glbox(&emulator, &workspace, &["status", "--output", "json"]);
    assert!(
        !status.stdout.contains(&password),
        "only --show-password prints it"
    );

    emulator.start_recording();
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    assert_eq!(mutating(&emulator.recorded_actions()), Vec::<String>::new());

    // A new version re-runs the bootstrap, once.
    workspace.write_config(&format!(
        "name = \"trial\"\n[gitlab]\nversion = \"18.9.1\"\n{}",
        crate::common::verify_section("")
    ));
    behave_with_version(&emulator, &mut serde_json::json!({}), "18.9.1").await;
    let plan = glbox(&emulator, &workspace, &["plan", "--output", "json"]).json();
    let gitlab = plan["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "gitlab")
        .unwrap()
        .clone();
    assert_eq!(gitlab["action"], "update", "{plan}");
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    let sent = sent_scripts(&emulator).await;
    assert_eq!(sent.len(), 2);
    assert!(sent[1].0.contains("GLBOX_VERSION='18.9.1'"));
}

#[tokio::test]
async fn a_failed_bootstrap_shows_the_on_box_log_and_is_not_recorded_as_done() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&format!(
        "name = \"trial\"\n{}",
        crate::common::verify_section("")
    ));
    behave(
        &emulator,
        serde_json::json!({"invocations": [
            {"contains": log_tail_marker(), "status": "Success",
             "stdout": "glbox-phase: package\nE: Unable to locate package gitlab-ce\n"},
            {"contains": "exec bash", "status": "Failed", "code": 100, "stdout": "cut short"}
        ]}),
    )
    .await;
    let run = glbox(&emulator, &workspace, &["up", "--yes"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("failed (Failed)"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("    E: Unable to locate package gitlab-ce"),
        "{}",
        run.stderr
    );
    assert_eq!(bootstrap_tag(&emulator, "trial").await, None);

    behave(&emulator, serde_json::json!({})).await;
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    assert!(
        bootstrap_tag(&emulator, "trial").await.is_some(),
        "the re-run finished the job"
    );
}

#[tokio::test]
async fn an_agent_that_never_comes_online_is_explained() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&format!(
        "name = \"trial\"\n[access]\nready_timeout_minutes = 1\n{}",
        crate::common::verify_section("")
    ));
    behave(&emulator, serde_json::json!({"offline": true})).await;
    let run = glbox(&emulator, &workspace, &["up", "--yes"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("did not come Online"), "{}", run.stderr);
    assert!(
        run.stderr.contains("ConnectionLost") && run.stderr.contains("instance profile"),
        "{}",
        run.stderr
    );
    assert!(
        sent_scripts(&emulator).await.is_empty(),
        "nothing was sent to an offline agent"
    );
}

#[tokio::test]
async fn a_bootstrap_that_never_ends_times_out_and_shows_the_log() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&format!(
        "name = \"trial\"\n[gitlab]\ninstall_timeout_minutes = 1\n{}",
        crate::common::verify_section("")
    ));
    behave(
        &emulator,
        serde_json::json!({"invocations": [
            {"contains": log_tail_marker(), "status": "Success", "stdout": "glbox-phase: package\n"},
            {"contains": "exec bash", "status": "InProgress"}
        ]}),
    )
    .await;
    let run = glbox(&emulator, &workspace, &["up", "--yes"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("timed out after"), "{}", run.stderr);
    assert!(
        run.stderr.contains("    glbox-phase: package"),
        "the log tail: {}",
        run.stderr
    );
    assert_eq!(sent_scripts(&emulator).await[0].1, vec!["60".to_string()]);
    assert_eq!(bootstrap_tag(&emulator, "trial").await, None);
    // glbox cancelled the hung command, so a re-run cannot overlap it.
    let ssm = emulator.ssm();
    let commands = ssm.list_commands().send().await.unwrap();
    let first = &commands.commands()[0];
    let invocation = ssm
        .get_command_invocation()
        .command_id(first.command_id().unwrap())
        .instance_id(&first.instance_ids()[0])
        .send()
        .await
        .unwrap();
    assert_eq!(invocation.status().unwrap().as_str(), "Cancelled");
}

#[tokio::test]
async fn verify_judges_what_the_box_reports_and_exits_by_the_verdict() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&format!(
        "name = \"trial\"\n{}",
        crate::common::verify_section("")
    ));
    glbox(&emulator, &workspace, &["up", "--no-bootstrap", "--yes"]).assert_ok();

    behave(&emulator, serde_json::json!({})).await;
    let healthy = glbox(&emulator, &workspace, &["verify", "--output", "json"]);
    healthy.assert_ok();
    let report = healthy.json();
    assert_eq!(report["healthy"], true);
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "sign_in_page",
            "liveness",
            "readiness",
            "health",
            "services",
            "version",
            "data_volume",
            "swap",
            "gitlab_rb",
            "gitlab_check"
        ]
    );

    // The data on the root disk is "wrong", not "not yet": no waiting.
    let broken = include_str!("../data/verify-broken.txt");
    behave(
        &emulator,
        serde_json::json!({"invocations": [{"contains": "# glbox verify:", "status": "Success", "stdout": broken}]}),
    )
    .await;
    let unhealthy = glbox(&emulator, &workspace, &["verify"]);
    assert_eq!(unhealthy.code, 1, "{}", unhealthy.stderr);
    assert!(
        unhealthy.stdout.contains("FAIL  data_volume"),
        "{}",
        unhealthy.stdout
    );
    assert!(
        unhealthy.stdout.contains("db (PG::ConnectionBad"),
        "{}",
        unhealthy.stdout
    );
    assert!(unhealthy.stdout.contains("GitLab is NOT healthy."));

    // An answer that is not the check script's: could not check.
    behave(
        &emulator,
        serde_json::json!({"invocations": [{"contains": "# glbox verify:", "status": "Failed", "code": 127, "stdout": "bash: curl: command not found"}]}),
    )
    .await;
    let unknown = glbox(&emulator, &workspace, &["verify"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("could not check"),
        "{}",
        unknown.stderr
    );
}

#[tokio::test]
async fn up_exits_with_the_verdict_of_its_checks() {
    let emulator = Emulator::start();
    let rejecting = crate::common::http_server("422 Unprocessable Entity");
    let workspace = Workspace::new(&format!(
        "name = \"trial\"\n[verify]\nurl = \"http://127.0.0.1:{rejecting}\"\n"
    ));
    behave(&emulator, serde_json::json!({})).await;
    let run = glbox(&emulator, &workspace, &["up", "--yes"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.contains("FAIL  sign_in_page") && run.stdout.contains("external_url"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("GitLab is not healthy"),
        "{}",
        run.stderr
    );
}

/// The emulator's answer to glbox's read-back of the kept output: what
/// `output` holds after the `received` characters SSM passed on.
fn read_back_rule(output: &str, received: usize) -> serde_json::Value {
    let rest = &output.as_bytes()[received..];
    let encoded = base64::engine::general_purpose::STANDARD.encode(rest);
    serde_json::json!({"contains": glbox::remote::READ_BACK_MARK, "status": "Success",
        "stdout": format!("{} {received}\n{encoded}\n", output.len())})
}

/// 30 KB of install noise: more than SSM's 24,000 characters.
fn noise() -> String {
    "Unpacking gitlab-ce (18.6.0-ce.0) ...\n".repeat(800)
}

#[tokio::test]
async fn warnings_at_the_end_of_a_long_bootstrap_are_still_shown() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&format!(
        "name = \"trial\"\n{}",
        crate::common::verify_section("")
    ));
    let output = format!(
        "{}glbox-warning: the upgrade crosses the required stop 17.3\nglbox-result: gitlab-ce 18.6.0\n",
        noise()
    );
    assert!(output.len() > 30_000);
    behave(
        &emulator,
        serde_json::json!({"invocations": [
            read_back_rule(&output, 24_000),
            {"contains": "# glbox bootstrap:", "status": "Success", "stdout": output}
        ]}),
    )
    .await;
    let run = glbox(&emulator, &workspace, &["up", "--yes"]);
    run.assert_ok();
    assert!(
        run.stderr
            .contains("the upgrade crosses the required stop 17.3"),
        "{}",
        run.stderr
    );
    let read_backs = all_sent_scripts(&emulator)
        .await
        .into_iter()
        .filter(|(script, _)| script.starts_with(glbox::remote::READ_BACK_MARK))
        .count();
    assert_eq!(read_backs, 1, "one small command read the rest back");
}

#[tokio::test]
async fn a_health_report_behind_30_kb_of_noise_is_still_read() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&format!(
        "name = \"trial\"\n{}",
        crate::common::verify_section("")
    ));
    glbox(&emulator, &workspace, &["up", "--no-bootstrap", "--yes"]).assert_ok();
    let output = format!(
        "{}{}",
        noise(),
        crate::common::healthy_verify_output("18.6.0")
    );
    emulator
        .behave(serde_json::json!({"invocations": [
            read_back_rule(&output, 24_000),
            {"contains": "# glbox verify:", "status": "Success", "stdout": output}
        ]}))
        .await;
    let run = glbox(&emulator, &workspace, &["verify", "--output", "json"]);
    run.assert_ok();
    assert_eq!(run.json()["healthy"], true, "{}", run.stderr);
}
