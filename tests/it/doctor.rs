//! `glbox doctor` against the emulator, which the launcher extends with
//! IAM's policy simulator and EC2's vCPU quota (steered through the
//! `/glbox-test/behaviour` parameter). Doctor must change nothing: every
//! creating call it makes carries `DryRun`.

use crate::common::{glbox, is_mutating, Emulator, Workspace};

fn finding(report: &serde_json::Value, check: &str) -> Vec<serde_json::Value> {
    report
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check)
        .cloned()
        .collect()
}

#[tokio::test]
async fn doctor_passes_a_ready_account_and_changes_nothing() {
    let emulator = Emulator::start();
    emulator.behave(serde_json::json!({"vcpu_quota": 64})).await;
    let workspace =
        Workspace::new("name = \"trial\"\n[email]\nenabled = true\ndomain = \"example.com\"\n");
    emulator.start_recording();
    let run = glbox(&emulator, &workspace, &["doctor", "--output", "json"]);
    let requests = emulator.recorded();
    run.assert_ok();
    let report = run.json();
    for check in [
        "credentials",
        "region",
        "ec2 permissions",
        "iam/ssm/ses permissions",
        "vcpu quota",
    ] {
        let found = finding(&report, check);
        assert!(!found.is_empty(), "{check} missing: {report}");
        for f in found {
            assert_eq!(f["verdict"], "ok", "{f}");
        }
    }
    assert!(finding(&report, "vcpu quota")[0]["detail"]
        .as_str()
        .unwrap()
        .contains("c5.2xlarge needs 8 vCPUs"));
    // Every creating call was a dry run; nothing else changed anything.
    for request in requests.iter().filter(|r| is_mutating(&r.action)) {
        let simulated = ["SimulatePrincipalPolicy"].contains(&request.action.as_str());
        assert!(
            simulated || request.body.contains("DryRun=true"),
            "{} without DryRun: {}",
            request.action,
            request.body
        );
    }
    assert!(requests.iter().any(|r| r.action == "RunInstances"));
}

#[tokio::test]
async fn doctor_names_a_missing_permission_and_a_short_quota_with_the_fix() {
    let emulator = Emulator::start();
    emulator.behave(serde_json::json!({"vcpu_quota": 4, "simulate_denied": ["iam:CreateRole", "ssm:SendCommand"]}),
    )
    .await;
    let workspace = Workspace::new("name = \"trial\"\n");
    let run = glbox(&emulator, &workspace, &["doctor"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("FAIL  iam/ssm/ses permissions")
            && run
                .stdout
                .contains("not allowed: iam:CreateRole, ssm:SendCommand")
            && run.stdout.contains("docs/iam-policy.json"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("FAIL  vcpu quota")
            && run.stdout.contains("needs 8 vCPUs")
            && run.stdout.contains("L-1216C47A"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("2 check(s) failed"), "{}", run.stderr);

    // The deployment's own running instance needs no new vCPUs.
    emulator.behave(serde_json::json!({"vcpu_quota": 8})).await;
    glbox(&emulator, &workspace, &["up", "--no-bootstrap", "--yes"]).assert_ok();
    let again = glbox(&emulator, &workspace, &["doctor", "--output", "json"]);
    let quota = &finding(&again.json(), "vcpu quota")[0];
    assert_eq!(quota["verdict"], "ok", "{quota}");
    assert!(quota["detail"]
        .as_str()
        .unwrap()
        .contains("8 of the account's 8"));
}
