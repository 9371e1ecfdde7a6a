//! Secrets never leak: a full deployment over SSH (real sshd, the box a
//! sandbox whose `aws` reads the real parameters from the emulator) with
//! email on and extra settings reading a secret of `glbox secret set`,
//! then every command a user runs, and every output is searched for the
//! root password, the SMTP password, the SMTP user's secret access key,
//! the extra settings' secret and the SSH private key, and so is the debug
//! log of every run. The extra settings' secret is on the box in its 0600
//! file, and nowhere else. Only
//! `status --show-password`, asked for explicitly, may print the root
//! password (on stdout, never into its log).

use crate::common::sandbox::Sandbox;
use crate::common::sshd::Sshd;
use crate::common::{Emulator, Workspace};
use base64::Engine;

async fn parameter(emulator: &Emulator, name: &str) -> String {
    emulator
        .ssm()
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .unwrap()
        .parameter()
        .unwrap()
        .value()
        .unwrap()
        .to_string()
}

/// Runs glbox and keeps what it printed, under the command's name.
fn record(
    outputs: &mut Vec<(String, String)>,
    emulator: &Emulator,
    workspace: &Workspace,
    args: &[&str],
) -> crate::common::Run {
    // Asks the SDK to log even the bodies it marks sensitive: glbox's log
    // must keep them out all the same.
    let run = crate::common::glbox_with_env(
        emulator,
        workspace,
        args,
        &[("LOG_SENSITIVE_BODIES", "true")],
    );
    assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
    outputs.push((args.join(" "), format!("{}\n{}", run.stdout, run.stderr)));
    run
}

#[tokio::test]
async fn no_output_of_a_full_run_holds_a_secret() {
    let emulator = Emulator::start();
    let sandbox = Sandbox::new();
    let env = sandbox.env_backed_by(&emulator.endpoint());
    let sshd = Sshd::start(Some(&env));
    let config = format!(
        "name = \"trial\"\n{}{}[email]\nenabled = true\ndomain = \"example.com\"\ntest_recipient = \"me@example.org\"\n[gitlab]\nextra_config = \"extra.rb\"\n",
        sshd.access_config("host_key.pub"),
        crate::common::verify_section("")
    );
    let workspace = Workspace::new(&config);
    std::fs::write(
        workspace.path().join("extra.rb"),
        "gitlab_rails['ldap_enabled'] = true\ngitlab_rails['ldap_servers'] = { 'main' => { 'password' => File.read('/etc/gitlab/glbox-secrets/ldap_password') } }\n",
    )
    .unwrap();

    let mut outputs = Vec::new();
    let extra_secret = "Extra-Ldap-Bind-Secret-5b8e";
    let set = crate::extra_config::secret_set(&emulator, &workspace, "ldap_password", extra_secret);
    set.assert_ok();
    outputs.push((
        "secret set ldap_password".into(),
        format!("{}\n{}", set.stdout, set.stderr),
    ));
    let mut run = |args: &[&str]| record(&mut outputs, &emulator, &workspace, args);
    run(&["plan"]);
    run(&["plan", "--output", "json"]);
    run(&["up", "--yes", "-v"]).assert_ok();
    let first_smtp_password = parameter(&emulator, "/glbox/trial/smtp-password").await;
    run(&["up", "--yes", "--output", "json"]).assert_ok();
    run(&["status"]).assert_ok();
    run(&["status", "--output", "json"]).assert_ok();
    run(&["verify", "--deep", "--output", "json"]);
    run(&["render", "user-data"]).assert_ok();
    run(&["render", "bootstrap"]).assert_ok();
    run(&["render", "gitlab-rb"]).assert_ok();
    run(&["email", "dns", "--output", "json"]).assert_ok();
    run(&["email", "rotate", "--yes", "-v"]).assert_ok();
    let shown = crate::common::glbox_with_env(
        &emulator,
        &workspace,
        &["status", "--show-password"],
        &[("LOG_SENSITIVE_BODIES", "true")],
    );
    shown.assert_ok();

    let root_password = parameter(&emulator, "/glbox/trial/root-password").await;
    let smtp_password = parameter(&emulator, "/glbox/trial/smtp-password").await;
    assert!(
        shown.stdout.contains(&root_password),
        "asked for, the password is shown (so the search below can find it)"
    );
    let keys = emulator
        .iam()
        .list_access_keys()
        .user_name("glbox-trial-us-east-1-smtp")
        .send()
        .await
        .unwrap();
    let key_id = keys.access_key_metadata()[0].access_key_id().unwrap();
    let aws_secret = emulator.access_key_secret(key_id);
    let private_key = std::fs::read_to_string(sshd.dir.path().join("client_key")).unwrap();
    // The key's body lines, any of which would be a leak.
    let key_lines: Vec<&str> = private_key
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .collect();
    assert!(!key_lines.is_empty());

    // What AWS holds about the instance: its user data.
    let instance = crate::common::running_instance(&emulator, "trial").await;
    let user_data = emulator
        .ec2()
        .describe_instance_attribute()
        .instance_id(instance.instance_id().unwrap())
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    let user_data = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(user_data.user_data().unwrap().value().unwrap())
            .unwrap(),
    )
    .unwrap();
    outputs.push(("instance user data".into(), user_data));
    // The extra settings' secret is on the box, in its own 0600 file.
    let on_box = sandbox.path("etc-gitlab/glbox-secrets/ldap_password");
    assert_eq!(std::fs::read_to_string(&on_box).unwrap(), extra_secret);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&on_box).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    outputs.push((
        "gitlab.rb on the box".into(),
        std::fs::read_to_string(sandbox.path("etc-gitlab/gitlab.rb")).unwrap(),
    ));
    // The box's own log of the bootstrap.
    outputs.push((
        "bootstrap.log on the box".into(),
        std::fs::read_to_string(sandbox.path("log/bootstrap.log")).unwrap(),
    ));
    record(&mut outputs, &emulator, &workspace, &["down", "--yes"]).assert_ok();
    // The debug log of every run above, at its most detailed.
    // Less what is not a run: the user data, gitlab.rb and the box's log.
    let runs = outputs.len() - 3;
    let log_dir = workspace.state_dir().join("glbox/logs");
    let logs: Vec<_> = std::fs::read_dir(&log_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        logs.len(),
        runs + 1,
        "one log per run (status --show-password too)"
    );
    for log in logs {
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("glbox::aws"),
            "{}: no AWS calls logged",
            log.display()
        );
        outputs.push((format!("debug log {}", log.display()), text));
    }

    assert_ne!(first_smtp_password, smtp_password, "rotated");
    let mut secrets = vec![
        ("root password", root_password.as_str()),
        ("SMTP password", smtp_password.as_str()),
        (
            "SMTP password before rotation",
            first_smtp_password.as_str(),
        ),
        ("SMTP user's secret access key", aws_secret.as_str()),
        ("extra settings' secret", extra_secret),
    ];
    secrets.extend(key_lines.iter().map(|l| ("SSH private key", *l)));
    for (what, text) in &outputs {
        for (secret_name, secret) in &secrets {
            assert!(
                !text.contains(secret),
                "the {secret_name} appears in `{what}`:\n{text}"
            );
        }
    }
}
