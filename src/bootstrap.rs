//! The bootstrap script sent to the instance: `cloud-init/bootstrap.sh`
//! (embedded) with the deployment's values in front of it, and running it
//! through the configured transport. It holds no secret: the root password
//! is read on the box from SSM.

use std::time::Duration;

use base64::Engine;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::names::{TAG_BOOTSTRAP, TAG_GITLAB_VERSION};
use crate::remote::{Outcome, Transport};
use crate::resources::instance::Instance;
use crate::resources::upgrade::Upgrade;
use crate::resources::{Action, Ctx, PlanItem};

const SCRIPT: &str = include_str!("../cloud-init/bootstrap.sh");
/// Where GitLab's package comes from, shared with the first-boot prefetch
/// (`userdata::prefetch_script`): put right after the values.
pub const PACKAGE_SOURCE: &str = include_str!("../cloud-init/package-source.sh");
/// Functions for the user's own settings, put between the values and the
/// script (which calls them): its secrets and the hand-edit guard.
pub const EXTRA_CONFIG_FUNCTIONS: &str = include_str!("../cloud-init/extra-config.sh");

/// What the script needs that only AWS knows.
pub struct Target<'a> {
    pub data_volume_id: &'a str,
    pub external_url: &'a str,
    /// The SES SMTP user (access key id) when email is on. It is part of the
    /// script, so a new key changes the digest and the box is updated.
    pub smtp_username: Option<&'a str>,
    /// The SSM SecureString the box reads GitLab's first root password from.
    pub root_password_parameter: &'a str,
    /// The deployment's backup bucket when `backup.s3` is on: GitLab
    /// uploads there, and the box gets the nightly backup timer.
    pub backup_bucket: Option<&'a str>,
}

/// A script fragment's text after its `#!` line, to put inside another script.
pub(crate) fn without_shebang(fragment: &str) -> &str {
    fragment.split_once('\n').map_or(fragment, |(_, rest)| rest)
}

/// Quotes a value for a POSIX shell: single quotes, with `'` escaped.
pub(crate) fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// The script as the box gets it. `up --replace-gitlab-rb` adds one line,
/// so the box runs it once more even when nothing else changed; the digest
/// recorded afterwards is [`recorded_digest`]'s, without that line.
pub fn render(settings: &Settings, target: &Target<'_>) -> String {
    let script = render_settings(settings, target);
    if !settings.gitlab.replace_gitlab_rb {
        return script;
    }
    let (shebang, body) = script.split_once('\n').unwrap_or(("#!/bin/bash", &script));
    format!("{shebang}\nGLBOX_REPLACE_GITLAB_RB='1'\n{body}")
}

/// The digest a box that ran this configuration is tagged with.
pub fn recorded_digest(settings: &Settings, target: &Target<'_>) -> String {
    digest(&render_settings(settings, target))
}

/// The secrets' names and versions for the script (`name:version ...`):
/// a new value is a new version, so the box is updated.
fn secrets_value(settings: &Settings) -> String {
    settings
        .gitlab
        .secrets
        .iter()
        .map(|s| format!("{}:{}", s.name, s.version))
        .collect::<Vec<_>>()
        .join(" ")
}

fn render_settings(settings: &Settings, target: &Target<'_>) -> String {
    let gitlab_rb = crate::gitlab_rb::render(
        settings,
        target.external_url,
        target.smtp_username,
        target.backup_bucket,
    );
    let (backup_script, backup_on_calendar) =
        crate::backup::schedule_values(settings, target.backup_bucket);
    // Read on the box with the instance role; empty when email is off.
    let smtp_parameter = settings
        .email
        .as_ref()
        .map(|_| crate::email::credentials::password_parameter_for(&settings.name))
        .unwrap_or_default();
    // A bigger volume changes the script, so the box grows its file system.
    let data_size = settings.data_volume.size_gib.to_string();
    // GitLab's required stops, walked on the box; the background
    // migrations of one stop may take as long as an install.
    let stops = crate::upgrade_path::stops_value();
    let migrations_wait = settings.gitlab.install_timeout.as_secs().to_string();
    let values = [
        ("GLBOX_DEPLOYMENT", settings.name.as_str()),
        ("GLBOX_REGION", &settings.region),
        ("GLBOX_OS", settings.os.as_str()),
        ("GLBOX_EDITION", settings.gitlab.edition.as_str()),
        ("GLBOX_VERSION", settings.gitlab.version.as_str()),
        ("GLBOX_EXTERNAL_URL", target.external_url),
        (
            "GLBOX_ROOT_EMAIL",
            settings.gitlab.root_email.as_deref().unwrap_or(""),
        ),
        ("GLBOX_DATA_VOLUME", target.data_volume_id),
        ("GLBOX_DATA_SIZE_GIB", &data_size),
        (
            "GLBOX_ROOT_PASSWORD_PARAMETER",
            target.root_password_parameter,
        ),
        ("GLBOX_SMTP_PASSWORD_PARAMETER", &smtp_parameter),
        ("GLBOX_UPGRADE_STOPS", &stops),
        ("GLBOX_MIGRATIONS_WAIT", &migrations_wait),
        (
            "GLBOX_GITLAB_RB_B64",
            &base64::engine::general_purpose::STANDARD.encode(gitlab_rb),
        ),
        ("GLBOX_BACKUP_SCRIPT_B64", &backup_script),
        ("GLBOX_BACKUP_ON_CALENDAR", &backup_on_calendar),
    ];
    let secrets_path = crate::secrets::path_for(settings);
    let secrets = secrets_value(settings);
    // Only with extra settings; without them GLBOX_SECRETS is unset and the
    // box removes any secret files an earlier configuration left.
    let extra_values = [
        ("GLBOX_SECRETS_PATH", secrets_path.as_str()),
        ("GLBOX_SECRETS", secrets.as_str()),
    ];
    let extra_values = match settings.gitlab.extra_config {
        Some(_) => &extra_values[..],
        None => &[],
    };
    let (shebang, body) = SCRIPT.split_once('\n').unwrap_or(("#!/bin/bash", SCRIPT));
    let mut out = format!(
        "{shebang}\n# Values for deployment \"{}\", set by glbox:\n",
        settings.name
    );
    for (name, value) in values.iter().chain(extra_values) {
        out.push_str(&format!("{name}={}\n", shell_quote(value)));
    }
    out.push_str(without_shebang(PACKAGE_SOURCE));
    out.push_str(without_shebang(EXTRA_CONFIG_FUNCTIONS));
    out.push_str(crate::backup::SCHEDULE_FUNCTIONS);
    out.push_str(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_first_and_are_quoted() {
        let settings = crate::test_support::settings("trial");
        let script = render(&settings, &target());
        assert!(script.starts_with("#!/bin/bash\n# Values for deployment \"trial\""));
        assert!(script.contains("GLBOX_DATA_VOLUME='vol-1'\n"));
        assert!(script.contains("GLBOX_VERSION='latest'\n"));
        assert!(script.contains("GLBOX_SMTP_PASSWORD_PARAMETER=''\n"));
        assert!(script.contains("GLBOX_ROOT_PASSWORD_PARAMETER='/glbox/trial/root-password'\n"));
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert!(script.contains("GLBOX_DATA_SIZE_GIB='100'\n"), "{script}");
    }

    fn target() -> Target<'static> {
        Target {
            data_volume_id: "vol-1",
            external_url: "http://203.0.113.7",
            smtp_username: None,
            root_password_parameter: "/glbox/trial/root-password",
            backup_bucket: None,
        }
    }

    #[test]
    fn secrets_are_named_with_their_versions_only_with_extra_settings() {
        let mut settings = crate::test_support::settings("trial");
        let plain = render(&settings, &target());
        assert!(
            !plain.contains("GLBOX_SECRETS="),
            "no extra settings, no secrets"
        );
        settings.gitlab.extra_config = Some(crate::config::ExtraConfig {
            path: "extra.rb".into(),
            text: "x = 1\n".into(),
        });
        settings.gitlab.secrets = vec![
            crate::config::StoredSecret {
                name: "ldap_pw".into(),
                version: 2,
            },
            crate::config::StoredSecret {
                name: "oauth".into(),
                version: 1,
            },
        ];
        let script = render(&settings, &target());
        assert!(script.contains("GLBOX_SECRETS_PATH='/glbox/trial/secrets/'\n"));
        assert!(
            script.contains("GLBOX_SECRETS='ldap_pw:2 oauth:1'\n"),
            "{script}"
        );
        let before = digest(&script);
        settings.gitlab.secrets[0].version = 3;
        assert_ne!(
            digest(&render(&settings, &target())),
            before,
            "a new value re-runs it"
        );
    }

    #[test]
    fn replacing_gitlab_rb_runs_once_and_records_the_usual_digest() {
        let mut settings = crate::test_support::settings("trial");
        let usual = render(&settings, &target());
        settings.gitlab.replace_gitlab_rb = true;
        let replacing = render(&settings, &target());
        assert!(replacing.contains("\nGLBOX_REPLACE_GITLAB_RB='1'\n"));
        assert_ne!(digest(&replacing), digest(&usual), "the box runs it");
        assert_eq!(recorded_digest(&settings, &target()), digest(&usual));
    }

    #[test]
    fn a_hostile_value_stays_one_literal_word() {
        let settings = crate::test_support::settings("trial");
        let script = render(
            &settings,
            &Target {
                data_volume_id: "vol-1'; touch /tmp/x; '",
                external_url: "http://$(reboot)",
                smtp_username: None,
                root_password_parameter: "/glbox/trial/root-password",
                backup_bucket: None,
            },
        );
        assert!(script.contains(r#"GLBOX_DATA_VOLUME='vol-1'\''; touch /tmp/x; '\'''"#));
        assert!(script.contains("GLBOX_EXTERNAL_URL='http://$(reboot)'\n"));
    }

    #[test]
    fn done_means_the_result_line() {
        assert_eq!(
            result_line("x\nglbox-result: gitlab-ce 18.6.0\n"),
            Some("gitlab-ce 18.6.0")
        );
        assert_eq!(result_line("glbox-phase: package\n"), None);
        assert_eq!(reported_version("gitlab-ce 18.6.0"), Some("18.6.0"));
        assert_eq!(reported_version("gitlab-ce"), None);
        assert_eq!(reported_version("gitlab 0.0.0x"), None);
    }

    #[test]
    fn every_stop_adds_an_install_and_a_migration_wait_to_the_time_limit() {
        let settings = crate::test_support::settings("trial");
        let minutes = |m: u64| Duration::from_secs(60 * m);
        assert_eq!(time_limit(&settings, None), minutes(60));
        let v = |t: &str| crate::upgrade_path::Version::parse(t).unwrap();
        let upgrade = Upgrade {
            from: v("17.0.1"),
            to: v("17.4.0"),
            through: vec![v("17.1.8"), v("17.3.7")],
        };
        assert_eq!(time_limit(&settings, Some(&upgrade)), minutes(300));
    }

    #[test]
    fn the_stop_list_goes_to_the_box() {
        let settings = crate::test_support::settings("trial");
        let script = render(&settings, &target());
        assert!(
            script.contains(&format!(
                "GLBOX_UPGRADE_STOPS='{}'\n",
                crate::upgrade_path::stops_value()
            )),
            "{script}"
        );
        assert!(script.contains("GLBOX_MIGRATIONS_WAIT='3600'\n"));
    }
}

/// Short digest of a rendered script.
pub fn digest(script: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(script.as_bytes())
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// GitLab will be installed on a new instance.
    Install {
        reason: String,
    },
    /// The box will be brought to the new configuration.
    Update {
        reason: String,
        /// A raised `gitlab.version`, and its path through the stops.
        upgrade: Option<Upgrade>,
    },
    NoChange,
}

/// `current`: the instance that stays (none when one will be launched) and
/// the script it would get now, if everything it names exists already.
pub fn diff(current: Option<(&Instance, Option<String>)>) -> Change {
    let Some((instance, script)) = current else {
        return Change::Install {
            reason: "a new instance".into(),
        };
    };
    match (&instance.bootstrap_digest, script.as_deref()) {
        (None, _) => Change::Install {
            reason: "GitLab has not been installed by glbox yet".into(),
        },
        (Some(_), None) => Change::Update {
            reason: "the data volume, address or SMTP key will change".into(),
            upgrade: None,
        },
        (Some(done), Some(script)) if *done == digest(script) => Change::NoChange,
        (Some(_), Some(_)) => Change::Update {
            reason: "the GitLab configuration changed".into(),
            upgrade: None,
        },
    }
}

impl Change {
    /// An update that also raises GitLab's version (`upgrade`, from
    /// `resources::upgrade::of`) says so, with its path.
    pub fn with_upgrade(self, upgrade: Option<Upgrade>) -> Change {
        match self {
            Change::Update { reason, .. } => Change::Update { reason, upgrade },
            other => other,
        }
    }

    pub fn item(&self, ctx: &Ctx<'_>, instance_id: Option<&str>) -> PlanItem {
        let name = format!("gitlab-{}", ctx.settings.gitlab.edition.as_str());
        let id = instance_id.map(str::to_string);
        let version = format!("version {}", ctx.settings.gitlab.version.as_str());
        match self {
            Change::Install { reason } => PlanItem::new("gitlab", name, id, Action::Create)
                .with_changes(vec![reason.clone(), version]),
            Change::Update { reason, upgrade } => {
                let version = upgrade.as_ref().map_or(version, Upgrade::line);
                PlanItem::new("gitlab", name, id, Action::Update)
                    .with_changes(vec![reason.clone(), version])
            }
            Change::NoChange => PlanItem::new("gitlab", name, id, Action::NoChange),
        }
    }
}

/// Brings GitLab on `instance` to the settings through the configured
/// transport, unless the instance's tag says it already is; then records
/// the new digest on the instance.
pub async fn apply(
    ctx: &Ctx<'_>,
    instance: &Instance,
    public_address: Option<&str>,
    target: &Target<'_>,
) -> Result<()> {
    let script = render(ctx.settings, target);
    if instance.bootstrap_digest.as_deref() == Some(digest(&script).as_str()) {
        return Ok(());
    }
    let wanted = recorded_digest(ctx.settings, target);
    // GitLab's upgrade documentation: a snapshot first, usable before the
    // package is touched.
    let upgrade = crate::resources::upgrade::of(ctx.settings, instance)?;
    if let Some(upgrade) = &upgrade {
        crate::resources::upgrade::snapshot_before(ctx, upgrade, target.data_volume_id).await?;
    }
    let transport = Transport::for_instance(ctx, &instance.id, public_address).await?;
    transport.wait_ready(ctx).await?;
    let run = transport
        .run(
            ctx,
            "GitLab bootstrap",
            &script,
            time_limit(ctx.settings, upgrade.as_ref()),
        )
        .await;
    let outcome = match run {
        // A hung install: still worth showing what the log says.
        Err(Error::Timeout { elapsed, .. }) => Outcome {
            exit_code: None,
            status: format!(
                "timed out after {}s; raise gitlab.install_timeout_minutes if the box is slow",
                elapsed.as_secs()
            ),
            output: String::new(),
        },
        other => other?,
    };
    for warning in outcome
        .output
        .lines()
        .filter_map(|l| l.strip_prefix("glbox-warning: "))
    {
        ctx.ui.warn(warning);
    }
    if !outcome.succeeded() {
        return Err(failure(ctx, &transport, &instance.id, &outcome).await);
    }
    let installed = confirm_result(ctx, &transport, &instance.id, &outcome).await?;
    let mut tags = vec![(TAG_BOOTSTRAP, wanted.as_str())];
    // Where the next raised version starts its path.
    if let Some(version) = reported_version(installed) {
        tags.push((TAG_GITLAB_VERSION, version));
    }
    crate::aws::ec2::instances::create_tags(&ctx.aws.ec2, ctx.ui, &[&instance.id], &tags).await?;
    ctx.ui.info(&format!(
        "GitLab is installed and configured on {}",
        instance.id
    ));
    Ok(())
}

/// The bootstrap's time limit: the install's for each package it
/// installs, and as long again for each stop's background migrations.
fn time_limit(settings: &Settings, upgrade: Option<&Upgrade>) -> Duration {
    let stops = upgrade.map_or(0, |u| u.installs() - 1);
    settings.gitlab.install_timeout * (1 + 2 * stops)
}

/// The version in a result line ("gitlab-ce 18.6.0"), when it is one.
fn reported_version(result: &str) -> Option<&str> {
    result
        .split_whitespace()
        .nth(1)
        .filter(|v| crate::upgrade_path::Version::parse(v).is_some())
}

/// What the bootstrap's last line says it installed, if it got that far.
fn result_line(output: &str) -> Option<&str> {
    output
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("glbox-result: "))
}

/// A bootstrap is done only when it printed its result line, which it
/// does after checking that GitLab runs and its state is on the data
/// volume. An exit status of 0 alone is not enough: a script cut off (its
/// file overwritten, the shell killed) can end with 0. The transport's
/// output is whole here (what SSM cut was read back from the box).
async fn confirm_result<'o>(
    ctx: &Ctx<'_>,
    transport: &Transport,
    instance_id: &str,
    outcome: &'o Outcome,
) -> Result<&'o str> {
    if let Some(line) = result_line(&outcome.output) {
        return Ok(line);
    }
    let cut = Outcome {
        exit_code: None,
        status: "ended without its result line".into(),
        output: outcome.output.clone(),
    };
    Err(failure(ctx, transport, instance_id, &cut).await)
}

/// `GLBOX_LOG_DIR` is the bootstrap's own override (tests only).
const LOG_TAIL_SCRIPT: &str = r#"tail -n 60 "${GLBOX_LOG_DIR:-/var/log/glbox}/bootstrap.log""#;
const LOG_TAIL_TIMEOUT: Duration = Duration::from_secs(120);

/// The error for a failed bootstrap, with the end of the log on the box
/// (the transport's own output can be cut short: SSM keeps 24,000
/// characters at most).
async fn failure(
    ctx: &Ctx<'_>,
    transport: &Transport,
    instance_id: &str,
    outcome: &Outcome,
) -> Error {
    let log = match transport
        .run(
            ctx,
            "reading the bootstrap log",
            LOG_TAIL_SCRIPT,
            LOG_TAIL_TIMEOUT,
        )
        .await
    {
        Ok(tail) if tail.succeeded() => tail.output,
        _ => outcome.tail(40),
    };
    Error::Refused(format!(
        "the GitLab bootstrap on {instance_id} failed ({}); the end of /var/log/glbox/bootstrap.log:\n{}\n  fix: correct the cause shown above, then re-run glbox up (it picks up where it stopped)",
        outcome.status,
        log.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
    ))
}
