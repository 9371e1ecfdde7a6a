//! Secrets for `gitlab.extra_config`: SSM SecureStrings under
//! `/glbox/<name>/secrets/<NAME>`, stored by `glbox secret set` and read
//! only on the box, with the instance role, into
//! `/etc/gitlab/glbox-secrets/<NAME>` (0600). Apart from storing one, glbox
//! knows only their names and versions: a new value is a new version, which
//! changes the bootstrap script and so brings the box up to date.

use aws_sdk_ssm::types::ParameterType;

use crate::aws::{ssm, Aws};
use crate::config::{ConfigError, Settings, StoredSecret};
use crate::error::{Error, Result};
use crate::names::{Names, MANAGED_BY, TAG_MANAGED_BY};
use crate::resources::Ctx;
use crate::ui::Ui;

/// Where a deployment's secrets live, under its parameter prefix.
const SUBPATH: &str = "secrets/";
const MAX_NAME_LEN: usize = 64;

/// `/glbox/<name>/secrets/`.
pub fn path(names: &Names) -> String {
    format!("{}{SUBPATH}", names.parameter_prefix())
}

/// The same path for a deployment's settings.
pub fn path_for(settings: &Settings) -> String {
    path(&Names::new(&settings.name, &settings.region))
}

/// A secret's name: a-z, 0-9 and `_`, starting with a letter, so it is a
/// plain file name on the box and a plain word in the script.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = (1..=MAX_NAME_LEN).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        return Ok(());
    }
    Err(Error::Config(ConfigError {
        field: "NAME".into(),
        value: name.into(),
        problem: format!(
            "is not a secret name (a-z, 0-9 and '_', starting with a letter, at most {MAX_NAME_LEN})"
        ),
        fix: "use a name like ldap_password; the box gets it as /etc/gitlab/glbox-secrets/ldap_password".into(),
    }))
}

/// The secrets stored for the deployment, by name.
pub async fn stored(aws: &Aws, names: &Names) -> Result<Vec<StoredSecret>> {
    let prefix = path(names);
    let mut secrets: Vec<StoredSecret> = ssm::versions_by_path(&aws.ssm, &prefix)
        .await?
        .into_iter()
        .filter_map(|(name, version)| {
            let name = name.strip_prefix(&prefix)?;
            validate_name(name).ok()?;
            Some(StoredSecret {
                name: name.to_string(),
                version,
            })
        })
        .collect();
    secrets.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(secrets)
}

/// Fills in the stored secrets' names and versions when the deployment has
/// extra settings (one read; nothing without them).
pub async fn resolve(aws: &Aws, settings: &mut Settings) -> Result<()> {
    if settings.gitlab.extra_config.is_none() {
        return Ok(());
    }
    settings.gitlab.secrets = stored(aws, &Names::new(&settings.name, &settings.region)).await?;
    Ok(())
}

/// Says which secret the extra settings read that is not stored (GitLab's
/// reconfigure would fail on the missing file).
pub fn warn_unstored(settings: &Settings, ui: &Ui) {
    let Some(extra) = &settings.gitlab.extra_config else {
        return;
    };
    for name in extra.secret_references() {
        if !settings.gitlab.secrets.iter().any(|s| s.name == name) {
            ui.warn(&format!(
                "{} reads {}/{name}, but no secret {name} is stored: run glbox secret set {name}",
                extra.path.display(),
                crate::gitlab_rb::SECRETS_DIR
            ));
        }
    }
}

/// Stores `value` as the secret `name`: a new SecureString is made tagged
/// (SSM takes tags only at creation), an existing one gets a new version.
/// Returns the parameter's name.
pub async fn store(ctx: &Ctx<'_>, name: &str, value: &str) -> Result<String> {
    validate_name(name)?;
    crate::log::redact::secret(value);
    let parameter = format!("{}{name}", path(&ctx.names));
    let (owner_key, owner_value) = ctx.names.owner();
    let description = format!(
        "glbox {}: secret {name} for gitlab.extra_config",
        ctx.names.deployment
    );
    let create = ssm::Parameter {
        name: &parameter,
        description: description.clone(),
        kind: ParameterType::SecureString,
        value,
        overwrite: false,
        tags: vec![
            (owner_key.to_string(), owner_value.to_string()),
            (TAG_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
        ],
    };
    if ssm::put(&ctx.aws.ssm, &create).await? == ssm::Put::AlreadyExists {
        let replace = ssm::Parameter {
            overwrite: true,
            tags: Vec::new(),
            ..create
        };
        ssm::put(&ctx.aws.ssm, &replace).await?;
    }
    Ok(parameter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_words() {
        for good in ["ldap_password", "a", "oauth2_secret"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "LDAP",
            "1st",
            "a-b",
            "a/b",
            "a b",
            "../x",
            &"a".repeat(65),
        ] {
            let err = validate_name(bad).unwrap_err().to_string();
            assert!(err.contains("NAME") && err.contains("fix:"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_path_is_under_the_deployments_prefix() {
        let settings = crate::test_support::settings("trial");
        assert_eq!(path_for(&settings), "/glbox/trial/secrets/");
    }
}
