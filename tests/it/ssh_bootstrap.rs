//! `glbox up` over SSH end to end: the real glbox binary, the emulator for
//! AWS, a real OpenSSH sshd on 127.0.0.1, and the bootstrap running in a
//! sandbox of recording stubs (sshd's ForceCommand puts it there).

use crate::common::sandbox::Sandbox;
use crate::common::sshd::Sshd;
use crate::common::{bootstrap_tag, glbox, mutating, Emulator, Workspace};

fn config(sshd: &Sshd, host_key: &str) -> String {
    config_with(sshd, host_key, "")
}

/// `verify`: extra keys for the `[verify]` section.
fn config_with(sshd: &Sshd, host_key: &str, verify: &str) -> String {
    format!(
        "name = \"trial\"\n{}{}",
        sshd.access_config(host_key),
        crate::common::verify_section(verify)
    )
}

#[tokio::test]
async fn up_installs_gitlab_over_ssh_and_a_second_up_sends_nothing() {
    let emulator = Emulator::start();
    let sandbox = Sandbox::new();
    let sshd = Sshd::start(Some(&sandbox.env()));
    let workspace = Workspace::new(&config(&sshd, "host_key.pub"));

    let run = glbox(&emulator, &workspace, &["up", "--yes"]);
    run.assert_ok();
    assert!(
        run.stderr.contains("phase: package (after "),
        "phases are shown:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("  | installing gitlab-ce"),
        "output is streamed:\n{}",
        run.stderr
    );
    let installs: Vec<String> = sandbox
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("apt-get"))
        .collect();
    assert_eq!(installs.len(), 1, "{:?}", sandbox.calls());
    assert!(installs[0].contains("password=set"));
    let rendered = glbox(&emulator, &workspace, &["render", "gitlab-rb"]);
    rendered.assert_ok();
    assert_eq!(
        std::fs::read_to_string(sandbox.path("etc-gitlab/gitlab.rb")).unwrap(),
        rendered.stdout,
        "the box got exactly what render shows"
    );
    let script = glbox(&emulator, &workspace, &["render", "bootstrap"]);
    script.assert_ok();
    assert_eq!(
        bootstrap_tag(&emulator, "trial").await,
        Some(glbox::bootstrap::digest(&script.stdout))
    );

    sandbox.clear_calls();
    emulator.start_recording();
    let again = glbox(&emulator, &workspace, &["up", "--yes"]);
    again.assert_ok();
    assert_eq!(mutating(&emulator.recorded_actions()), Vec::<String>::new());
    assert!(
        sandbox.calls().is_empty(),
        "nothing was run on the box: {:?}",
        sandbox.calls()
    );
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
}

#[tokio::test]
async fn a_wrong_host_key_is_refused_before_anything_runs() {
    let emulator = Emulator::start();
    let sandbox = Sandbox::new();
    let sshd = Sshd::start(Some(&sandbox.env()));
    let workspace = Workspace::new(&config(&sshd, "other_host_key.pub"));

    let run = glbox(&emulator, &workspace, &["up", "--yes"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("offered host key") && run.stderr.contains("nothing was run"),
        "{}",
        run.stderr
    );
    assert!(sandbox.calls().is_empty(), "{:?}", sandbox.calls());
    assert_eq!(bootstrap_tag(&emulator, "trial").await, None);
}

#[tokio::test]
async fn a_failing_script_reports_its_exit_status_and_the_log_tail() {
    let emulator = Emulator::start();
    let sandbox = Sandbox::new();
    std::fs::write(
        sandbox.path("bin/glbox-prepare-data"),
        "#!/bin/bash\necho 'glbox-prepare-data: volume did not appear within 300s' >&2\nexit 7\n",
    )
    .unwrap();
    let sshd = Sshd::start(Some(&sandbox.env()));
    let workspace = Workspace::new(&config(&sshd, "host_key.pub"));

    let run = glbox(&emulator, &workspace, &["up", "--yes"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("failed (exit 7)"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("    glbox-prepare-data: volume did not appear"),
        "the log tail:\n{}",
        run.stderr
    );
    assert_eq!(
        bootstrap_tag(&emulator, "trial").await,
        None,
        "a failed bootstrap is not recorded as done"
    );

    // Fixed on the box: the next up finishes the job.
    std::fs::write(
        sandbox.path("bin/glbox-prepare-data"),
        "#!/bin/bash\nexit 0\n",
    )
    .unwrap();
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    assert!(bootstrap_tag(&emulator, "trial").await.is_some());
}

/// A deployment that `up` installed over SSH into a fresh sandbox;
/// `verify`: extra `[verify]` keys.
fn installed_box(verify: &str) -> (Emulator, Sandbox, Sshd, Workspace) {
    let emulator = Emulator::start();
    let sandbox = Sandbox::new();
    let sshd = Sshd::start(Some(&sandbox.env()));
    let workspace = Workspace::new(&config_with(&sshd, "host_key.pub", verify));
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    (emulator, sandbox, sshd, workspace)
}

fn write(sandbox: &Sandbox, name: &str, text: &str) {
    std::fs::create_dir_all(sandbox.path("http")).unwrap();
    std::fs::write(sandbox.path(name), text).unwrap();
}

#[tokio::test]
async fn verify_waits_while_gitlab_boots() {
    let (emulator, sandbox, _sshd, workspace) = installed_box("");

    // nginx answers 502 twice while Puma boots, then GitLab is up.
    write(&sandbox, "http/health.fail-times", "2");
    let run = glbox(&emulator, &workspace, &["verify"]);
    run.assert_ok();
    assert!(
        run.stderr.contains("not ready yet (health: 502"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("pass  health"), "{}", run.stdout);
}

#[tokio::test]
async fn verify_stops_at_once_on_what_is_wrong_and_says_why() {
    let (emulator, sandbox, _sshd, workspace) = installed_box("");

    // The allowlist answer: 404 with an empty body.
    write(&sandbox, "http/readiness.code", "404");
    let started = std::time::Instant::now();
    let run = glbox(&emulator, &workspace, &["verify"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.contains("FAIL  readiness") && run.stdout.contains("monitoring_whitelist"),
        "{}",
        run.stdout
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "no waiting for what cannot heal"
    );
    std::fs::remove_file(sandbox.path("http/readiness.code")).unwrap();

    // --deep adds gitlab:check and names its failures.
    write(
        &sandbox,
        "gitlab-check",
        "Uploads directory exists? ... no\n",
    );
    let deep = glbox(
        &emulator,
        &workspace,
        &["verify", "--deep", "--output", "json"],
    );
    assert_eq!(deep.code, 1);
    let report = deep.json();
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "gitlab_check")
        .unwrap()
        .clone();
    assert_eq!(check["status"], "fail");
    assert_eq!(check["evidence"], "Uploads directory exists? ... no");

    // No running instance: cannot check at all.
    let instance = crate::common::running_instance(&emulator, "trial").await;
    emulator
        .ec2()
        .stop_instances()
        .instance_ids(instance.instance_id().unwrap())
        .send()
        .await
        .unwrap();
    let stopped = glbox(&emulator, &workspace, &["verify"]);
    assert_eq!(stopped.code, 2, "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("no running instance"),
        "{}",
        stopped.stderr
    );
}

#[tokio::test]
async fn verify_gives_up_at_its_deadline_naming_what_is_still_failing() {
    let (emulator, sandbox, _sshd, workspace) = installed_box("timeout_minutes = 1\n");

    write(&sandbox, "http/readiness.code", "503");
    write(
        &sandbox,
        "http/readiness.body",
        r#"{"status":"failed","db_check":[{"status":"failed","message":"PG::ConnectionBad"}]}"#,
    );
    let run = glbox(&emulator, &workspace, &["verify"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("not ready yet (readiness"),
        "it waited first:\n{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("FAIL  readiness")
            && run.stdout.contains("failing: db (PG::ConnectionBad)"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn email_over_ssh_the_box_reads_the_real_password_and_gitlab_sends_a_test_mail() {
    let emulator = Emulator::start();
    let sandbox = Sandbox::new();
    // The box's `aws` reads the parameter from the emulator for real.
    let env = sandbox.env_backed_by(&emulator.endpoint());
    let sshd = Sshd::start(Some(&env));
    let email =
        "[email]\nenabled = true\ndomain = \"example.com\"\ntest_recipient = \"me@example.org\"\n";
    let workspace = Workspace::new(&format!("{}{email}", config(&sshd, "host_key.pub")));

    // The emulator's SES is a sandbox: an unverified recipient gets no mail.
    let run = glbox(&emulator, &workspace, &["up", "--yes"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("skip  email_test")
            && run
                .stdout
                .contains("me@example.org is not a verified address"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("sandbox"), "{}", run.stdout);
    assert_eq!(sandbox.count("gitlab-rails"), 0);

    let keys = emulator
        .iam()
        .list_access_keys()
        .user_name("glbox-trial-us-east-1-smtp")
        .send()
        .await
        .unwrap();
    let key_id = keys.access_key_metadata()[0].access_key_id().unwrap();
    let expected =
        glbox::email::smtp_password::derive(&emulator.access_key_secret(key_id), "us-east-1")
            .unwrap();
    assert_eq!(
        std::fs::read_to_string(sandbox.path("etc-gitlab/glbox-smtp-password.rb")).unwrap(),
        format!("gitlab_rails['smtp_password'] = '{expected}'\n"),
        "the box holds the password derived from the key IAM made"
    );
    assert!(!run.stdout.contains(&expected) && !run.stderr.contains(&expected));

    // A verified recipient: GitLab itself sends the test mail.
    let ses = aws_sdk_ses::Client::from_conf(
        aws_sdk_ses::Config::builder()
            .behavior_version(aws_sdk_ses::config::BehaviorVersion::latest())
            .region(aws_sdk_ses::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ses::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .endpoint_url(emulator.endpoint())
            .build(),
    );
    ses.verify_email_identity()
        .email_address("me@example.org")
        .send()
        .await
        .unwrap();
    let deep = glbox(&emulator, &workspace, &["verify", "--deep"]);
    deep.assert_ok();
    assert!(
        deep.stdout.contains("pass  email_test")
            && deep.stdout.contains("pass  email_identity")
            && deep.stdout.contains("pass  email_dkim"),
        "{}",
        deep.stdout
    );
    let mails: Vec<String> = sandbox
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("gitlab-rails runner Notify.test_email('me@example.org'"))
        .collect();
    assert_eq!(mails.len(), 1, "{:?}", sandbox.calls());

    // SES refusing the credentials is named, with the way out.
    write(
        &sandbox,
        "mail-fails",
        "Net::SMTPAuthenticationError: 535 Authentication Credentials Invalid\n",
    );
    let refused = glbox(&emulator, &workspace, &["verify", "--deep"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stdout.contains("FAIL  email_test")
            && refused.stdout.contains("535")
            && refused.stdout.contains("glbox email rotate"),
        "{}",
        refused.stdout
    );
}

/// `down` keeps the data volume and the next `up` launches onto it; a
/// replacement (an explicit AMI) moves the volume to a new instance. On
/// each new instance the package skips its own reconfigure (it finds the
/// data's `bootstrapped`), so the bootstrap configures GitLab itself:
/// exactly one reconfigure, services running.
#[tokio::test]
async fn new_instances_on_the_kept_data_volume_are_configured_once() {
    let emulator = Emulator::start();
    let sandbox = Sandbox::new();
    let sshd = Sshd::start(Some(&sandbox.env()));
    let workspace = Workspace::new(&config(&sshd, "host_key.pub"));
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    assert_eq!(sandbox.reconfigures(), 1, "{:?}", sandbox.calls());
    let first = crate::common::running_instance(&emulator, "trial").await;

    glbox(&emulator, &workspace, &["down", "--yes"]).assert_ok();
    sandbox.new_instance();
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    let second = crate::common::running_instance(&emulator, "trial").await;
    assert_ne!(first.instance_id(), second.instance_id());
    assert_eq!(sandbox.reconfigures(), 1, "{:?}", sandbox.calls());
    assert_eq!(sandbox.count("gitlab-ctl reconfigure"), 1);
    assert!(sandbox.services_running(), "{:?}", sandbox.calls());
    assert!(bootstrap_tag(&emulator, "trial").await.is_some());

    // Another x86_64 image than the one running: a replacement.
    let ami = crate::common::other_x86_image(&emulator, second.image_id()).await;
    workspace.write_config(&format!(
        "{}[instance]\nami = \"{ami}\"\n",
        config(&sshd, "host_key.pub")
    ));
    sandbox.new_instance();
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    let third = crate::common::running_instance(&emulator, "trial").await;
    assert_ne!(second.instance_id(), third.instance_id(), "replaced");
    assert_eq!(sandbox.reconfigures(), 1, "{:?}", sandbox.calls());
    assert!(sandbox.services_running());
}

/// An SSH deployment that trusts the host keys cloud-init prints on the
/// console (no `ssh_host_key`), with the emulator's console printing the
/// sshd's key on the instance's first boot.
async fn console_trusting_box() -> (Emulator, Sandbox, Sshd, Workspace) {
    let emulator = Emulator::start();
    let sandbox = Sandbox::new();
    let sshd = Sshd::start(Some(&sandbox.env()));
    let access: String = sshd
        .access_config("host_key.pub")
        .lines()
        .filter(|l| !l.starts_with("ssh_host_key"))
        .map(|l| format!("{l}\n"))
        .collect();
    let workspace = Workspace::new(&format!(
        "name = \"trial\"\n{access}ready_timeout_minutes = 1\n{}",
        crate::common::verify_section("")
    ));
    let host_key = std::fs::read_to_string(sshd.file("host_key.pub")).unwrap();
    emulator
        .behave(serde_json::json!({"console": format!(
            "Cloud-init v. 24.1 running 'modules:final'\n-----BEGIN SSH HOST KEY KEYS-----\n{}\n-----END SSH HOST KEY KEYS-----\nCloud-init finished\n",
            host_key.trim()
        )}))
        .await;
    (emulator, sandbox, sshd, workspace)
}

fn fingerprint(path: &std::path::Path) -> String {
    let line = std::fs::read_to_string(path).unwrap();
    russh::keys::PublicKey::from_openssh(line.trim())
        .unwrap()
        .fingerprint(Default::default())
        .to_string()
}

async fn pinned(emulator: &Emulator) -> Option<String> {
    let instance = crate::common::running_instance(emulator, "trial").await;
    instance
        .tags()
        .iter()
        .find(|t| t.key() == Some(glbox::remote::ssh::TAG_HOST_KEY))
        .and_then(|t| t.value())
        .map(str::to_string)
}

#[tokio::test]
async fn after_a_stop_and_start_the_pinned_host_key_is_used() {
    let (emulator, _sandbox, sshd, workspace) = console_trusting_box().await;
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    assert_eq!(
        pinned(&emulator).await,
        Some(fingerprint(&sshd.file("host_key.pub"))),
        "the key verified through the console is pinned on the instance"
    );

    // An instance type change: stop, start. The console no longer shows keys.
    let ec2 = emulator.ec2();
    let id = crate::common::running_instance(&emulator, "trial")
        .await
        .instance_id()
        .unwrap()
        .to_string();
    ec2.stop_instances().instance_ids(&id).send().await.unwrap();
    ec2.start_instances()
        .instance_ids(&id)
        .send()
        .await
        .unwrap();
    let console = ec2
        .get_console_output()
        .instance_id(&id)
        .send()
        .await
        .unwrap();
    let text = String::from_utf8(
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            console.output().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(!text.contains("BEGIN SSH HOST KEY"), "{text}");

    let run = glbox(&emulator, &workspace, &["verify"]);
    run.assert_ok();
    assert!(run.stdout.contains("pass  health"), "{}", run.stdout);
}

#[tokio::test]
async fn a_changed_host_key_is_refused_loudly_and_nothing_runs() {
    let (emulator, sandbox, sshd, workspace) = console_trusting_box().await;
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();

    // The box now answers with another key than the one pinned.
    let id = crate::common::running_instance(&emulator, "trial")
        .await
        .instance_id()
        .unwrap()
        .to_string();
    let other = fingerprint(&sshd.file("other_host_key.pub"));
    emulator
        .ec2()
        .create_tags()
        .resources(&id)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key(glbox::remote::ssh::TAG_HOST_KEY)
                .value(&other)
                .build(),
        )
        .send()
        .await
        .unwrap();
    sandbox.clear_calls();
    let run = glbox(&emulator, &workspace, &["verify"]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "offered host key {}",
            fingerprint(&sshd.file("host_key.pub"))
        )) && run.stderr.contains(&format!("pinned for {id}"))
            && run.stderr.contains(&other)
            && run.stderr.contains("nothing was run"),
        "{}",
        run.stderr
    );
    assert!(sandbox.calls().is_empty(), "{:?}", sandbox.calls());
}

#[tokio::test]
async fn control_characters_from_the_box_reach_the_terminal_escaped() {
    let emulator = Emulator::start();
    let sandbox = Sandbox::new();
    // A terminal title change and a screen clear, then a failure, so the
    // output shows up both streamed and in the error's log tail.
    std::fs::write(
        sandbox.path("bin/glbox-prepare-data"),
        "#!/bin/bash\nprintf 'glbox-prepare-data: \\033]0;owned\\007\\033[2Jgone\\n' >&2\nexit 7\n",
    )
    .unwrap();
    let sshd = Sshd::start(Some(&sandbox.env()));
    let workspace = Workspace::new(&config(&sshd, "host_key.pub"));

    let run = glbox(&emulator, &workspace, &["up", "--yes"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        !run.stderr.contains('\u{1b}') && !run.stderr.contains('\u{7}'),
        "{:?}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("  | glbox-prepare-data: \\u{1b}]0;owned\\u{7}\\u{1b}[2Jgone"),
        "streamed, escaped:\n{}",
        run.stderr
    );
}
