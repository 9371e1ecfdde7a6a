//! The bootstrap script sent to the instance: `cloud-init/bootstrap.sh`
//! (embedded) with the deployment's values in front of it, and running it
//! through the configured transport. It holds no secret: the root password
//! is read on the box from SSM.

use std::time::Duration;

use base64::Engine;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::names::TAG_BOOTSTRAP;
use crate::remote::{Outcome, Transport};
use crate::resources::instance::Instance;
use crate::resources::{Action, Ctx, PlanItem};

const SCRIPT: &str = include_str!("../cloud-init/bootstrap.sh");

/// What the script needs that only AWS knows.
pub struct Target<'a> {
    pub data_volume_id: &'a str,
    pub external_url: &'a str,
    /// The SES SMTP user (access key id) when email is on. It is part of the
    /// script, so a new key changes the digest and the box is updated.
    pub smtp_username: Option<&'a str>,
    /// The SSM SecureString the box reads GitLab's first root password from.
    pub root_password_parameter: &'a str,
}

/// Quotes a value for a POSIX shell: single quotes, with `'` escaped.
pub(crate) fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

pub fn render(settings: &Settings, target: &Target<'_>) -> String {
    let gitlab_rb = crate::gitlab_rb::render(settings, target.external_url, target.smtp_username);
    // Read on the box with the instance role; empty when email is off.
    let smtp_parameter = settings
        .email
        .as_ref()
        .map(|_| crate::email::credentials::password_parameter_for(&settings.name))
        .unwrap_or_default();
    // A bigger volume changes the script, so the box grows its file system.
    let data_size = settings.data_volume.size_gib.to_string();
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
        (
            "GLBOX_GITLAB_RB_B64",
            &base64::engine::general_purpose::STANDARD.encode(gitlab_rb),
        ),
    ];
    let (shebang, body) = SCRIPT.split_once('\n').unwrap_or(("#!/bin/bash", SCRIPT));
    let mut out = format!(
        "{shebang}\n# Values for deployment \"{}\", set by glbox:\n",
        settings.name
    );
    for (name, value) in values {
        out.push_str(&format!("{name}={}\n", shell_quote(value)));
    }
    out.push_str(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_first_and_are_quoted() {
        let settings = crate::test_support::settings("trial");
        let script = render(
            &settings,
            &Target {
                data_volume_id: "vol-1",
                external_url: "http://203.0.113.7",
                smtp_username: None,
                root_password_parameter: "/glbox/trial/root-password",
            },
        );
        assert!(script.starts_with("#!/bin/bash\n# Values for deployment \"trial\""));
        assert!(script.contains("GLBOX_DATA_VOLUME='vol-1'\n"));
        assert!(script.contains("GLBOX_VERSION='latest'\n"));
        assert!(script.contains("GLBOX_SMTP_PASSWORD_PARAMETER=''\n"));
        assert!(script.contains("GLBOX_ROOT_PASSWORD_PARAMETER='/glbox/trial/root-password'\n"));
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert!(script.contains("GLBOX_DATA_SIZE_GIB='100'\n"), "{script}");
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
        },
        (Some(done), Some(script)) if *done == digest(script) => Change::NoChange,
        (Some(_), Some(_)) => Change::Update {
            reason: "the GitLab configuration changed".into(),
        },
    }
}

impl Change {
    pub fn item(&self, ctx: &Ctx<'_>, instance_id: Option<&str>) -> PlanItem {
        let name = format!("gitlab-{}", ctx.settings.gitlab.edition.as_str());
        let id = instance_id.map(str::to_string);
        let version = format!("version {}", ctx.settings.gitlab.version.as_str());
        match self {
            Change::Install { reason } => PlanItem::new("gitlab", name, id, Action::Create)
                .with_changes(vec![reason.clone(), version]),
            Change::Update { reason } => PlanItem::new("gitlab", name, id, Action::Update)
                .with_changes(vec![reason.clone(), version]),
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
    let wanted = digest(&script);
    if instance.bootstrap_digest.as_deref() == Some(wanted.as_str()) {
        return Ok(());
    }
    let transport = Transport::for_instance(ctx, &instance.id, public_address).await?;
    transport.wait_ready(ctx).await?;
    let run = transport
        .run(
            ctx,
            "GitLab bootstrap",
            &script,
            ctx.settings.gitlab.install_timeout,
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
    confirm_result(ctx, &transport, &instance.id, &outcome).await?;
    crate::aws::ec2::instances::create_tags(
        &ctx.aws.ec2,
        ctx.ui,
        &[&instance.id],
        &[(TAG_BOOTSTRAP, &wanted)],
    )
    .await?;
    ctx.ui.info(&format!(
        "GitLab is installed and configured on {}",
        instance.id
    ));
    Ok(())
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
async fn confirm_result(
    ctx: &Ctx<'_>,
    transport: &Transport,
    instance_id: &str,
    outcome: &Outcome,
) -> Result<()> {
    if result_line(&outcome.output).is_some() {
        return Ok(());
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
