//! `gitlab.extra_config`: your own gitlab.rb settings after glbox's, the
//! secrets they read written on the box, settings that would fight
//! glbox's refused before any AWS call, and a gitlab.rb changed by hand on
//! the box never overwritten without being asked.
//!
//! The bootstrap runs for real in the sandbox (tests/it/common/sandbox.rs);
//! the end-to-end test runs glbox against the emulator and a real sshd
//! whose "box" is the sandbox, its `aws` reading the emulator's parameters.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use crate::common::sandbox::{bootstrap_script, output_text, succeeded, Sandbox};
use crate::common::sshd::Sshd;
use crate::common::{clean_command, glbox, Emulator, Run, Workspace};
use glbox::config::{Settings, StoredSecret};

const EXTRA: &str = "# LDAP, read from the secret glbox writes on the box\n\
gitlab_rails['ldap_enabled'] = true\n\
gitlab_rails['ldap_servers'] = { 'main' => { 'label' => 'LDAP', 'host' => 'ldap.example.com',\n\
  'password' => File.read('/etc/gitlab/glbox-secrets/ldap_password') } }\n";

/// Settings from a glbox.toml holding `config`, next to an extra.rb
/// holding `extra` (the folder is kept while the settings are used).
fn settings_with_extra(config: &str, extra: &str) -> (tempfile::TempDir, Settings) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("extra.rb"), extra).unwrap();
    let path = dir.path().join("glbox.toml");
    std::fs::write(
        &path,
        format!("{config}[gitlab]\nextra_config = \"extra.rb\"\n"),
    )
    .unwrap();
    let settings = glbox::config::load(&glbox::config::Sources {
        explicit_file: Some(path),
        ..glbox::config::Sources::default()
    })
    .unwrap();
    (dir, settings)
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A secret as SSM holds it for the sandbox's `aws`, and as glbox knows it.
fn store(sandbox: &Sandbox, name: &str, value: &str, version: i64) -> StoredSecret {
    std::fs::create_dir_all(sandbox.path("secrets")).unwrap();
    std::fs::write(sandbox.path(&format!("secrets/{name}")), value).unwrap();
    StoredSecret {
        name: name.into(),
        version,
    }
}

#[test]
fn the_extra_settings_follow_glboxs_and_their_secrets_are_written_0600() {
    let sandbox = Sandbox::new();
    let (_dir, mut s) = settings_with_extra("name = \"trial\"\n", EXTRA);
    s.gitlab.secrets = vec![store(&sandbox, "ldap_password", "Ldap-Secret-Value-1", 1)];
    let url = "http://198.51.100.1";
    let first = succeeded(&sandbox.run(&bootstrap_script(&s, url)));

    let rb = std::fs::read_to_string(sandbox.path("etc-gitlab/gitlab.rb")).unwrap();
    assert_eq!(rb, glbox::gitlab_rb::render(&s, url, None, None));
    let own = rb.find("external_url 'http://198.51.100.1'").unwrap();
    let mountpoint = rb.find("high_availability['mountpoint']").unwrap();
    let extra = rb.find("gitlab_rails['ldap_enabled'] = true").unwrap();
    assert!(own < extra && mountpoint < extra, "glbox's first:\n{rb}");
    assert!(rb.ends_with(EXTRA), "the extra settings as written:\n{rb}");

    let dir = sandbox.path("etc-gitlab/glbox-secrets");
    let file = dir.join("ldap_password");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "Ldap-Secret-Value-1",
        "the value, without the CLI's line end"
    );
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(
        sandbox.count("aws ssm get-parameter --region us-east-1 --name /glbox/trial/secrets/ldap_password --with-decryption"),
        1
    );
    let log = std::fs::read_to_string(sandbox.path("log/bootstrap.log")).unwrap();
    for (what, out) in [("output", &first), ("log", &log)] {
        assert!(
            !out.contains("Ldap-Secret-Value-1"),
            "the value in the {what}"
        );
    }

    // The same again: nothing read twice into a change, nothing reconfigured.
    succeeded(&sandbox.run(&bootstrap_script(&s, url)));
    assert_eq!(sandbox.reconfigures(), 0);

    // A new value (a new version): written, one reconfigure.
    s.gitlab.secrets = vec![store(&sandbox, "ldap_password", "Ldap-Secret-Value-2", 2)];
    succeeded(&sandbox.run(&bootstrap_script(&s, url)));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "Ldap-Secret-Value-2"
    );
    assert_eq!(sandbox.reconfigures(), 1);

    // No longer stored: removed from the box.
    s.gitlab.secrets = Vec::new();
    succeeded(&sandbox.run(&bootstrap_script(&s, url)));
    assert!(!file.exists());
    assert_eq!(sandbox.reconfigures(), 1);
}

#[test]
fn a_secret_that_cannot_be_read_stops_before_gitlab_rb_is_written() {
    let sandbox = Sandbox::new();
    let (_dir, mut s) = settings_with_extra("name = \"trial\"\n", EXTRA);
    s.gitlab.secrets = vec![StoredSecret {
        name: "ldap_password".into(),
        version: 1,
    }];
    let out = sandbox.run(&bootstrap_script(&s, "http://198.51.100.1"));
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains("cannot read /glbox/trial/secrets/ldap_password from SSM"),
        "{}",
        output_text(&out)
    );
    assert!(!sandbox.path("etc-gitlab/gitlab.rb").exists());
    assert_eq!(sandbox.count("apt-get"), 0);
}

/// What the health checks' script says about gitlab.rb on the sandbox.
fn gitlab_rb_section(sandbox: &Sandbox, settings: &Settings) -> String {
    let verify = glbox::verify::render(
        settings,
        "http://198.51.100.1",
        glbox::verify::Extras::default(),
    );
    let out = sandbox.run(&verify);
    let output = String::from_utf8_lossy(&out.stdout).into_owned();
    output
        .split("=== gitlab-rb\n")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no gitlab-rb section:\n{output}"))
        .to_string()
}

#[test]
fn a_gitlab_rb_changed_by_hand_is_refused_then_replaced_only_when_asked() {
    let sandbox = Sandbox::new();
    let (_dir, mut s) =
        settings_with_extra("name = \"trial\"\n", "gitlab_rails['time_zone'] = 'UTC'\n");
    succeeded(&sandbox.run(&bootstrap_script(&s, "http://198.51.100.1")));
    assert_eq!(gitlab_rb_section(&sandbox, &s), "as-written");

    let path = sandbox.path("etc-gitlab/gitlab.rb");
    let edited = format!(
        "{}gitlab_rails['omniauth_enabled'] = true # by hand\n",
        std::fs::read_to_string(&path).unwrap()
    );
    std::fs::write(&path, &edited).unwrap();
    assert_eq!(gitlab_rb_section(&sandbox, &s), "changed");

    // The configuration changes (a new URL): the bootstrap stops, touching nothing.
    let refused = sandbox.run(&bootstrap_script(&s, "http://gitlab.example.com"));
    assert!(!refused.status.success());
    let said = output_text(&refused);
    assert!(
        said.contains("was changed on the box; put it in extra_config or it will be replaced")
            && said.contains("glbox up --replace-gitlab-rb"),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
    assert_eq!(sandbox.reconfigures(), 0);
    assert_eq!(sandbox.count("apt-get"), 0);

    // Asked to: replaced, the edited one kept beside it.
    s.gitlab.replace_gitlab_rb = true;
    let replaced = succeeded(&sandbox.run(&bootstrap_script(&s, "http://gitlab.example.com")));
    assert!(
        replaced.contains("glbox-warning: the gitlab.rb on the box (changed) was replaced"),
        "{replaced}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        glbox::gitlab_rb::render(&s, "http://gitlab.example.com", None, None)
    );
    let copies: Vec<_> = std::fs::read_dir(sandbox.path("etc-gitlab"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("gitlab.rb.glbox-replaced-")
        })
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(std::fs::read_to_string(&copies[0]).unwrap(), edited);
    assert_eq!(mode(&copies[0]), 0o600);
    assert_eq!(sandbox.reconfigures(), 1);
    assert_eq!(gitlab_rb_section(&sandbox, &s), "as-written");
}

#[test]
fn a_gitlab_rb_glbox_wrote_before_it_kept_digests_is_replaced_with_a_copy() {
    let sandbox = Sandbox::new();
    let (_dir, s) =
        settings_with_extra("name = \"trial\"\n", "gitlab_rails['time_zone'] = 'UTC'\n");
    succeeded(&sandbox.run(&bootstrap_script(&s, "http://198.51.100.1")));
    std::fs::remove_file(sandbox.path("etc-gitlab/.glbox-gitlab-rb.sha256")).unwrap();
    assert_eq!(gitlab_rb_section(&sandbox, &s), "unrecorded");
    let out = succeeded(&sandbox.run(&bootstrap_script(&s, "http://gitlab.example.com")));
    assert!(out.contains("(unrecorded) was replaced"), "{out}");
    assert_eq!(gitlab_rb_section(&sandbox, &s), "as-written");
}

/// (extra.rb's text, other keys of glbox.toml, what the error names)
const REFUSED: &[(&str, &str, &str)] = &[
    (
        "external_url 'https://elsewhere.example.com'\n",
        "",
        "extra.rb:1: external_url",
    ),
    (
        "# mine\nhigh_availability['mountpoint'] = '/srv'\n",
        "",
        "extra.rb:2: high_availability",
    ),
    (
        "gitlab_rails['smtp_address'] = 'smtp.example.com'\n",
        "[email]\nenabled = true\ndomain = \"example.com\"\n",
        "while email is on",
    ),
    (
        "gitlab_rails['backup_upload_connection'] = { 'provider' => 'AWS' }\n",
        "[backup]\ns3 = true\n",
        "while backup.s3 is on",
    ),
];

#[test]
fn settings_that_fight_glboxs_are_refused_before_any_aws_request() {
    let emulator = Emulator::start();
    let mut cases: Vec<(String, String, String)> = REFUSED
        .iter()
        .map(|(extra, other, said)| (extra.to_string(), other.to_string(), said.to_string()))
        .collect();
    cases.push((
        "#".repeat(16 * 1024 + 1),
        String::new(),
        "at most 16384".into(),
    ));
    for (extra, other, said) in &cases {
        let workspace = Workspace::new(&format!(
            "name = \"t\"\n[gitlab]\nextra_config = \"extra.rb\"\n{other}"
        ));
        std::fs::write(workspace.path().join("extra.rb"), extra).unwrap();
        for command in [&["plan"][..], &["up", "--yes"][..]] {
            emulator.start_recording();
            let run = glbox(&emulator, &workspace, command);
            assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
            assert!(run.stderr.contains("gitlab.extra_config"), "{}", run.stderr);
            assert!(run.stderr.contains(said.as_str()), "{said}: {}", run.stderr);
            assert!(run.stderr.contains("fix:"), "{}", run.stderr);
            assert_eq!(
                emulator.recorded_actions(),
                Vec::<String>::new(),
                "{extra:?}"
            );
        }
    }
    let workspace = Workspace::new("name = \"t\"\n[gitlab]\nextra_config = \"missing.rb\"\n");
    emulator.start_recording();
    let run = glbox(&emulator, &workspace, &["plan"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("missing.rb") && run.stderr.contains("cannot be read"),
        "{}",
        run.stderr
    );
    assert_eq!(emulator.recorded_actions(), Vec::<String>::new());
}

/// `glbox secret set NAME` with `value` on its standard input.
pub fn secret_set(emulator: &Emulator, workspace: &Workspace, name: &str, value: &str) -> Run {
    let mut command = clean_command(env!("CARGO_BIN_EXE_glbox"), workspace, &emulator.endpoint());
    command
        .args(["secret", "set", name, "-v"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LOG_SENSITIVE_BODIES", "true");
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap().into()
}

async fn parameter(emulator: &Emulator, name: &str) -> aws_sdk_ssm::types::Parameter {
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
        .clone()
}

fn logs(workspace: &Workspace) -> String {
    let dir = workspace.state_dir().join("glbox/logs");
    std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn secret_set_stores_a_tagged_securestring_from_stdin_and_says_nothing_of_it() {
    let emulator = Emulator::start();
    let workspace = Workspace::new("name = \"trial\"\n");
    let value = "Oauth-Client-Secret-7d1f";
    let run = secret_set(&emulator, &workspace, "oauth_secret", &format!("{value}\n"));
    run.assert_ok();
    let stored = parameter(&emulator, "/glbox/trial/secrets/oauth_secret").await;
    assert_eq!(
        stored.r#type(),
        Some(&aws_sdk_ssm::types::ParameterType::SecureString)
    );
    assert_eq!(stored.value(), Some(value), "without the final line end");
    assert_eq!(stored.version(), 1);
    let tags = emulator
        .ssm()
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id("/glbox/trial/secrets/oauth_secret")
        .send()
        .await
        .unwrap();
    assert!(
        tags.tag_list()
            .iter()
            .any(|t| t.key() == "glbox:deployment" && t.value() == "trial"),
        "{tags:?}"
    );
    assert!(
        run.stdout.contains("/glbox/trial/secrets/oauth_secret"),
        "{}",
        run.stdout
    );

    // A new value: the same parameter, a new version (its tags stay).
    let newer = "Oauth-Client-Secret-9a2c";
    secret_set(&emulator, &workspace, "oauth_secret", newer).assert_ok();
    let stored = parameter(&emulator, "/glbox/trial/secrets/oauth_secret").await;
    assert_eq!((stored.value(), stored.version()), (Some(newer), 2));

    for (what, text) in [
        ("stdout", run.stdout.as_str()),
        ("stderr", run.stderr.as_str()),
        ("logs", logs(&workspace).as_str()),
    ] {
        for secret in [value, newer] {
            assert!(!text.contains(secret), "the value is in {what}:\n{text}");
        }
    }

    // Empty, or a bad name: refused before any AWS request.
    for (name, input, said) in [
        ("oauth_secret", "\n", "is empty"),
        ("Bad-Name", "x", "is not a secret name"),
        ("../root-password", "x", "is not a secret name"),
    ] {
        emulator.start_recording();
        let run = secret_set(&emulator, &workspace, name, input);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains(said) && run.stderr.contains("fix:"),
            "{}",
            run.stderr
        );
        let writes = crate::common::mutating(&emulator.recorded_actions());
        assert_eq!(writes, Vec::<String>::new(), "{name}");
    }
}

/// The secrets belong with the data: `down` keeps them (and says so) while
/// it keeps the data volume, and `down --delete-data` deletes them.
#[tokio::test]
async fn down_keeps_the_secrets_with_the_data_and_delete_data_deletes_them() {
    let emulator = Emulator::start();
    let workspace = Workspace::new("name = \"trial\"\n");
    secret_set(&emulator, &workspace, "ldap_password", "Ldap-Secret-1").assert_ok();
    let name = "/glbox/trial/secrets/ldap_password";
    let exists = |emulator: &Emulator| {
        let ssm = emulator.ssm();
        async move { ssm.get_parameter().name(name).send().await.is_ok() }
    };

    let down = glbox(&emulator, &workspace, &["down", "--yes"]);
    down.assert_ok();
    assert!(exists(&emulator).await, "down deleted the secret");
    assert!(
        down.stdout.contains(name) && down.stdout.contains("kept"),
        "down says it keeps the secret:\n{}",
        down.stdout
    );

    glbox(&emulator, &workspace, &["down", "--yes", "--delete-data"]).assert_ok();
    assert!(
        !exists(&emulator).await,
        "down --delete-data kept the secret"
    );
}

#[tokio::test]
async fn up_applies_extra_settings_and_secrets_and_a_hand_edit_is_seen_by_plan_and_verify() {
    let emulator = Emulator::start();
    let sandbox = Sandbox::new();
    let env = sandbox.env_backed_by(&emulator.endpoint());
    let sshd = Sshd::start(Some(&env));
    let config = format!(
        "name = \"trial\"\n{}{}[gitlab]\nextra_config = \"extra.rb\"\n",
        sshd.access_config("host_key.pub"),
        crate::common::verify_section("")
    );
    let workspace = Workspace::new(&config);
    std::fs::write(workspace.path().join("extra.rb"), EXTRA).unwrap();

    // Before the secret is stored, plan says the extra settings read a missing one.
    let plan = glbox(&emulator, &workspace, &["plan"]);
    plan.assert_ok();
    assert!(
        plan.stderr
            .contains("no secret ldap_password is stored: run glbox secret set ldap_password"),
        "{}",
        plan.stderr
    );
    secret_set(
        &emulator,
        &workspace,
        "ldap_password",
        "Ldap-Bind-Password-42",
    )
    .assert_ok();
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();

    let rb = std::fs::read_to_string(sandbox.path("etc-gitlab/gitlab.rb")).unwrap();
    assert!(rb.ends_with(EXTRA), "{rb}");
    let secret = sandbox.path("etc-gitlab/glbox-secrets/ldap_password");
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "Ldap-Bind-Password-42"
    );
    assert_eq!(mode(&secret), 0o600);

    // Unchanged: a plan with nothing to do and an up with no write at all.
    let same = glbox(&emulator, &workspace, &["plan", "--output", "json"]);
    assert_eq!(same.json()["changes"], false, "{}", same.stdout);
    emulator.start_recording();
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    let writes = crate::common::mutating(&emulator.recorded_actions());
    assert_eq!(writes, Vec::<String>::new());

    // A new value of the secret is an update of GitLab.
    secret_set(
        &emulator,
        &workspace,
        "ldap_password",
        "Ldap-Bind-Password-43",
    )
    .assert_ok();
    let updated = glbox(&emulator, &workspace, &["plan", "--output", "json"]);
    assert_eq!(updated.json()["changes"], true, "{}", updated.stdout);
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "Ldap-Bind-Password-43"
    );

    // gitlab.rb changed by hand: verify warns (GitLab still healthy).
    let path = sandbox.path("etc-gitlab/gitlab.rb");
    let edited = format!(
        "{}gitlab_rails['time_zone'] = 'Europe/Berlin'\n",
        std::fs::read_to_string(&path).unwrap()
    );
    std::fs::write(&path, &edited).unwrap();
    let verify = glbox(&emulator, &workspace, &["verify", "--output", "json"]);
    verify.assert_ok();
    let checks = verify.json()["checks"].as_array().unwrap().clone();
    let rb_check = checks.iter().find(|c| c["name"] == "gitlab_rb").unwrap();
    assert_eq!(rb_check["status"], "warn", "{rb_check}");
    assert!(rb_check["evidence"]
        .as_str()
        .unwrap()
        .contains("put it in extra_config or it will be replaced"));

    // A changed extra file: plan shows the update and, asking the box, the hand edit.
    std::fs::write(
        workspace.path().join("extra.rb"),
        format!("{EXTRA}gitlab_rails['ldap_sync_time'] = 3600\n"),
    )
    .unwrap();
    let plan = glbox(&emulator, &workspace, &["plan", "--output", "json"]);
    let json = plan.json();
    let gitlab = json["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "gitlab")
        .unwrap()
        .clone();
    assert_eq!(gitlab["action"], "update", "{gitlab}");
    assert!(
        gitlab["changes"]
            .to_string()
            .contains("changed on the box; put it in extra_config or it will be replaced"),
        "{gitlab}"
    );
    // up stops, and the hand edit is still there.
    let up = glbox(&emulator, &workspace, &["up", "--yes"]);
    assert_ne!(up.code, 0);
    assert!(
        up.stderr
            .contains("put it in extra_config or it will be replaced"),
        "{}",
        up.stderr
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
    // Asked to replace it: done, and the next up is free.
    glbox(
        &emulator,
        &workspace,
        &["up", "--yes", "--replace-gitlab-rb"],
    )
    .assert_ok();
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .contains("ldap_sync_time"));
    emulator.start_recording();
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    assert_eq!(
        crate::common::mutating(&emulator.recorded_actions()),
        Vec::<String>::new()
    );
}

#[test]
fn a_run_cut_off_while_replacing_gitlab_rb_is_not_taken_for_a_hand_edit() {
    let sandbox = Sandbox::new();
    let (_dir, s) =
        settings_with_extra("name = \"trial\"\n", "gitlab_rails['time_zone'] = 'UTC'\n");
    succeeded(&sandbox.run(&bootstrap_script(&s, "http://198.51.100.1")));
    // Cut off right after accepting the new gitlab.rb, before writing it…
    let new = sandbox.path("new-gitlab.rb");
    std::fs::write(
        &new,
        glbox::gitlab_rb::render(&s, "http://203.0.113.5", None, None),
    )
    .unwrap();
    let functions = glbox::bootstrap::EXTRA_CONFIG_FUNCTIONS;
    let cut = format!(
        "{functions}\naccept_gitlab_rb '{}'\nexit 1\n",
        new.display()
    );
    assert!(!sandbox.run(&cut).status.success());
    assert_eq!(
        gitlab_rb_section(&sandbox, &s),
        "as-written",
        "the old one is still glbox's"
    );
    // …or right after writing it, before recording it.
    std::fs::copy(&new, sandbox.path("etc-gitlab/gitlab.rb")).unwrap();
    assert_eq!(
        gitlab_rb_section(&sandbox, &s),
        "as-written",
        "so is the new one"
    );
    // The next run goes on, and only what it wrote counts from then on.
    succeeded(&sandbox.run(&bootstrap_script(&s, "http://gitlab.example.com")));
    let record =
        std::fs::read_to_string(sandbox.path("etc-gitlab/.glbox-gitlab-rb.sha256")).unwrap();
    assert_eq!(record.lines().count(), 1, "{record}");
    std::fs::copy(&new, sandbox.path("etc-gitlab/gitlab.rb")).unwrap();
    assert_eq!(gitlab_rb_section(&sandbox, &s), "changed");
}

/// Through SSM (the emulator runs each command in the sandbox): `plan`
/// sends the box its look at gitlab.rb only when GitLab would change.
#[tokio::test]
async fn through_ssm_plan_asks_the_box_only_when_gitlab_would_change() {
    let emulator = Emulator::start();
    let sandbox = Sandbox::new();
    emulator
        .behave(serde_json::json!({"sandbox": sandbox.path("").display().to_string()}))
        .await;
    let workspace = Workspace::new(&format!(
        "name = \"trial\"\n{}[gitlab]\nextra_config = \"extra.rb\"\n",
        crate::common::verify_section("")
    ));
    let extra = workspace.path().join("extra.rb");
    std::fs::write(&extra, "gitlab_rails['time_zone'] = 'UTC'\n").unwrap();
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    let id = crate::common::running_instance(&emulator, "trial")
        .await
        .instance_id()
        .unwrap()
        .to_string();
    let rb = sandbox.path(&format!("instances/{id}/etc-gitlab/gitlab.rb"));
    let written = std::fs::read_to_string(&rb).unwrap();
    assert!(
        written.ends_with("gitlab_rails['time_zone'] = 'UTC'\n"),
        "{written}"
    );
    std::fs::write(
        &rb,
        format!("{written}gitlab_rails['gravatar_enabled'] = false\n"),
    )
    .unwrap();

    let gitlab_line = |plan: &Run| {
        plan.json()["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "gitlab")
            .unwrap()
            .clone()
    };
    emulator.start_recording();
    let same = glbox(&emulator, &workspace, &["plan", "--output", "json"]);
    let asked = emulator.recorded_actions();
    assert_eq!(gitlab_line(&same)["action"], "no_change", "{}", same.stdout);
    assert!(!asked.iter().any(|a| a == "SendCommand"), "{asked:?}");

    std::fs::write(&extra, "gitlab_rails['time_zone'] = 'Europe/Paris'\n").unwrap();
    emulator.start_recording();
    let changed = glbox(&emulator, &workspace, &["plan", "--output", "json"]);
    let asked = emulator.recorded_actions();
    let line = gitlab_line(&changed);
    assert_eq!(line["action"], "update", "{line}");
    assert!(
        line["changes"]
            .to_string()
            .contains("changed on the box; put it in extra_config"),
        "{line}"
    );
    assert_eq!(
        asked.iter().filter(|a| *a == "SendCommand").count(),
        1,
        "{asked:?}"
    );
}

#[test]
fn the_script_with_extra_settings_secrets_and_a_replace_passes_shellcheck() {
    let (dir, mut s) = settings_with_extra("name = \"trial\"\n", EXTRA);
    s.gitlab.secrets = vec![StoredSecret {
        name: "ldap_password".into(),
        version: 3,
    }];
    s.gitlab.replace_gitlab_rb = true;
    let path = dir.path().join("bootstrap.sh");
    std::fs::write(&path, bootstrap_script(&s, "http://198.51.100.1")).unwrap();
    let verify = dir.path().join("verify.sh");
    std::fs::write(
        &verify,
        glbox::verify::render(&s, "http://198.51.100.1", glbox::verify::Extras::default()),
    )
    .unwrap();
    for file in [&path, &verify] {
        let out = std::process::Command::new("shellcheck")
            .arg(file)
            .output()
            .expect("shellcheck (scripts/test installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
