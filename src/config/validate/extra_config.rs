//! `gitlab.extra_config`: the user's own gitlab.rb settings, read from a
//! file next to the configuration and checked before any AWS call.
//!
//! The file is Ruby and comes after glbox's settings, so in the end it can
//! set anything; the check is for the usual mistakes, line by line: a
//! setting that would fight one glbox keeps (the URL it serves, the data
//! mount it checks, the SMTP block it writes while email is on, the backup
//! upload it writes while backup.s3 is on) is refused with the line.

use std::path::{Path, PathBuf};

use crate::config::settings::ExtraConfig;
use crate::config::{bad, ConfigError};

const FIELD: &str = "gitlab.extra_config";

/// The bootstrap script carries the file (base64, inside the base64 of the
/// script SSM Run Command or SSH is given), so it is kept well under what
/// one command takes.
pub const MAX_BYTES: usize = 16 * 1024;

/// What else is on, which decides which settings stay glbox's.
#[derive(Debug, Clone, Copy)]
pub(super) struct Owned {
    pub email: bool,
    pub s3_backups: bool,
}

/// A setting glbox writes itself: the start of its assignment (quotes and
/// spaces normalized), why it stays glbox's, and what to do instead.
struct Kept {
    prefix: &'static str,
    when: fn(Owned) -> bool,
    why: &'static str,
    fix: &'static str,
}

const KEPT: &[Kept] = &[
    Kept {
        prefix: "external_url",
        when: |_| true,
        why: "sets external_url, which glbox writes from gitlab.external_url (and its health checks, DNS record and certificate follow it)",
        fix: "remove the line and set gitlab.external_url in glbox.toml",
    },
    Kept {
        prefix: "high_availability['mountpoint']",
        when: |_| true,
        why: "sets the data mountpoint, which glbox keeps at /var/opt/gitlab on the data volume so GitLab never writes its data to the root disk",
        fix: "remove the line: GitLab's data stays on the data volume glbox manages ([data_volume])",
    },
    Kept {
        prefix: "gitlab_rails['smtp_",
        when: |owned| owned.email,
        why: "changes the SMTP settings glbox writes for Amazon SES while email is on",
        fix: "remove the SMTP lines, or set enabled = false under [email] to send mail your own way",
    },
    Kept {
        prefix: "gitlab_rails['gitlab_email_from']",
        when: |owned| owned.email,
        why: "sets the sender glbox writes from email.from while email is on",
        fix: "remove the line and set email.from in glbox.toml",
    },
    Kept {
        prefix: "gitlab_rails['gitlab_email_reply_to']",
        when: |owned| owned.email,
        why: "sets the reply-to address glbox writes from email.reply_to while email is on",
        fix: "remove the line and set email.reply_to in glbox.toml",
    },
    Kept {
        prefix: "gitlab_rails['backup_upload_",
        when: |owned| owned.s3_backups,
        why: "changes where GitLab uploads its backups, which glbox points at the deployment's bucket while backup.s3 is on",
        fix: "remove the backup upload lines, or set s3 = false under [backup] to upload backups your own way",
    },
];

/// `raw` (relative to `base`, the configuration file's folder), read and
/// checked; `None` when not set.
pub(super) fn validate_extra_config(
    raw: Option<String>,
    base: &Path,
    owned: Owned,
) -> Result<Option<ExtraConfig>, ConfigError> {
    let Some(given) = raw.filter(|p| !p.trim().is_empty()) else {
        return Ok(None);
    };
    let path = resolve(base, &given);
    let shown = path.display().to_string();
    let bytes = std::fs::read(&path).map_err(|e| {
        bad(
            FIELD,
            &shown,
            &format!("cannot be read: {e}"),
            "give the path of a Ruby file of gitlab.rb settings, relative to the folder of glbox.toml (or absolute)",
        )
    })?;
    if bytes.len() > MAX_BYTES {
        return Err(bad(
            FIELD,
            &shown,
            &format!(
                "is {} bytes; the bootstrap script carries it, and takes at most {MAX_BYTES}",
                bytes.len()
            ),
            "keep only settings in it: long values (certificates, keys) go in secrets (glbox secret set NAME) that it reads from /etc/gitlab/glbox-secrets/NAME",
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        bad(
            FIELD,
            &shown,
            "is not UTF-8 text",
            "save it as UTF-8 (gitlab.rb is Ruby source)",
        )
    })?;
    check_kept_settings(&shown, &text, owned)?;
    Ok(Some(ExtraConfig { path, text }))
}

/// `~/x` is the home folder's, a relative path is the config folder's.
fn resolve(base: &Path, given: &str) -> PathBuf {
    if let (Some(rest), Some(home)) = (given.strip_prefix("~/"), std::env::var_os("HOME")) {
        return PathBuf::from(home).join(rest);
    }
    let path = Path::new(given);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// A line without spaces and with `"` as `'`, so `gitlab_rails[ "smtp_port" ]`
/// reads like `gitlab_rails['smtp_port']`; `None` for a comment or blank line.
fn normalized(line: &str) -> Option<String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    Some(
        line.chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| if c == '"' { '\'' } else { c })
            .collect(),
    )
}

/// `prefix` starts `line` as a whole name (`external_url` but not
/// `external_url_extra`).
fn assigns(line: &str, prefix: &str) -> bool {
    line.strip_prefix(prefix).is_some_and(|rest| {
        prefix.ends_with('_')
            || !rest
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

fn check_kept_settings(shown: &str, text: &str, owned: Owned) -> Result<(), ConfigError> {
    for (number, line) in text.lines().enumerate() {
        let Some(flat) = normalized(line) else {
            continue;
        };
        if let Some(kept) = KEPT
            .iter()
            .find(|k| (k.when)(owned) && assigns(&flat, k.prefix))
        {
            return Err(bad(
                FIELD,
                format!("{shown}:{}: {}", number + 1, line.trim()),
                kept.why,
                kept.fix,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_ON: Owned = Owned {
        email: true,
        s3_backups: true,
    };
    const ALL_OFF: Owned = Owned {
        email: false,
        s3_backups: false,
    };

    fn file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("extra.rb"), text).unwrap();
        (dir, "extra.rb".to_string())
    }

    #[test]
    fn a_relative_path_is_read_from_the_config_folder() {
        let (dir, name) = file("gitlab_rails['time_zone'] = 'UTC'\n");
        let extra = validate_extra_config(Some(name), dir.path(), ALL_ON)
            .unwrap()
            .unwrap();
        assert_eq!(extra.path, dir.path().join("extra.rb"));
        assert_eq!(extra.text, "gitlab_rails['time_zone'] = 'UTC'\n");
        assert_eq!(
            validate_extra_config(Some(String::new()), dir.path(), ALL_ON).unwrap(),
            None
        );
    }

    #[test]
    fn each_kept_setting_is_refused_with_its_line() {
        let cases = [
            (
                "external_url 'https://other.example.com'",
                "external_url",
                ALL_OFF,
            ),
            ("  external_url('http://x')", "external_url", ALL_OFF),
            (
                "high_availability[\"mountpoint\"] = '/mnt'",
                "mountpoint",
                ALL_OFF,
            ),
            (
                "gitlab_rails[ 'smtp_address' ] = 'smtp.example.com'",
                "SMTP",
                ALL_ON,
            ),
            (
                "gitlab_rails['gitlab_email_from'] = 'a@b.c'",
                "email.from",
                ALL_ON,
            ),
            (
                "gitlab_rails['backup_upload_connection'] = {}",
                "backup",
                ALL_ON,
            ),
            (
                "gitlab_rails['backup_upload_remote_directory'] = 'x'",
                "backup",
                ALL_ON,
            ),
        ];
        for (line, said, owned) in cases {
            let (dir, name) = file(&format!("# mine\n\n{line}\n"));
            let err = validate_extra_config(Some(name), dir.path(), owned).unwrap_err();
            assert_eq!(err.field, "gitlab.extra_config");
            assert!(
                err.value.ends_with(&format!("extra.rb:3: {}", line.trim())),
                "{err}"
            );
            assert!(err.to_string().contains(said), "{line}: {err}");
            assert!(!err.fix.is_empty());
        }
    }

    #[test]
    fn settings_glbox_leaves_alone_are_taken() {
        let text = "# external_url 'commented out'\n\
                    gitlab_rails['smtp_enable'] = true\n\
                    gitlab_rails['backup_upload_connection'] = { 'provider' => 'AWS' }\n\
                    external_url_note = 1\n\
                    gitlab_rails['ldap_enabled'] = true\n";
        let (dir, name) = file(text);
        assert!(validate_extra_config(Some(name), dir.path(), ALL_OFF).is_ok());
    }

    #[test]
    fn missing_big_and_binary_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = validate_extra_config(Some("nope.rb".into()), dir.path(), ALL_OFF).unwrap_err();
        assert!(err.problem.contains("cannot be read"), "{err}");
        let (dir, name) = file(&"#".repeat(MAX_BYTES + 1));
        let err = validate_extra_config(Some(name), dir.path(), ALL_OFF).unwrap_err();
        assert!(err.problem.contains("at most 16384"), "{err}");
        std::fs::write(dir.path().join("bin.rb"), [0xff, 0xfe, 0]).unwrap();
        let err = validate_extra_config(Some("bin.rb".into()), dir.path(), ALL_OFF).unwrap_err();
        assert!(err.problem.contains("UTF-8"), "{err}");
    }

    #[test]
    fn secret_references_are_found() {
        let extra = ExtraConfig {
            path: PathBuf::from("x.rb"),
            text: "a = File.read('/etc/gitlab/glbox-secrets/ldap_pw').strip\n\
                   b = File.read(\"/etc/gitlab/glbox-secrets/oauth_secret\")\n\
                   c = File.read('/etc/gitlab/glbox-secrets/ldap_pw')\n"
                .into(),
        };
        assert_eq!(extra.secret_references(), vec!["ldap_pw", "oauth_secret"]);
    }
}
