//! The answers and the commented `glbox.toml` made from them: the answers
//! fill the schema's raw structs, and the schema writes the file with its
//! own descriptions.

use std::path::{Path, PathBuf};

use crate::config::raw::{
    self, RawAccess, RawBackup, RawConfig, RawDataVolume, RawEmail, RawGitlab, RawInstance,
};
use crate::config::{AccessMethod, Edition, Os, Settings};
use crate::error::{Error, Result};

/// Everything the wizard asks, as written to `glbox.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    pub name: String,
    pub region: String,
    /// The expected number of users, when asked (kept as a comment).
    pub users: Option<u32>,
    pub instance_type: String,
    pub os: Os,
    pub access: AccessMethod,
    pub external_url: Option<String>,
    pub letsencrypt: bool,
    pub edition: Edition,
    /// "latest" or a release like "18.5.1".
    pub version: String,
    /// `Some`: email through SES.
    pub email: Option<EmailAnswers>,
    pub data_volume_gib: i32,
    /// Daily snapshots and nightly backups to S3 (on in a new file).
    pub backups: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAnswers {
    /// The domain mail is sent as.
    pub domain: String,
    /// Where SES is, when the deployment's region has no SES SMTP endpoint.
    pub ses_region: Option<String>,
}

impl Answers {
    /// The answers a configuration would have given.
    pub(super) fn from_settings(s: &Settings) -> Answers {
        Answers {
            name: s.name.clone(),
            region: s.region.clone(),
            users: None,
            instance_type: s.instance_type.clone(),
            os: s.os,
            access: s.access.method(),
            external_url: s.gitlab.external_url.clone(),
            letsencrypt: s.gitlab.letsencrypt,
            edition: s.gitlab.edition,
            version: s.gitlab.version.as_str().to_string(),
            email: s.email.as_ref().map(|e| EmailAnswers {
                domain: e.domain.clone(),
                ses_region: (e.ses_region != s.region).then(|| e.ses_region.clone()),
            }),
            data_volume_gib: s.data_volume.size_gib,
            backups: s.backup.snapshots.is_some() && s.backup.s3.is_some(),
        }
    }

    /// The answers in the schema's raw form: the keys `glbox.toml` holds.
    fn to_raw(&self) -> RawConfig {
        RawConfig {
            name: Some(self.name.clone()),
            region: Some(self.region.clone()),
            instance: RawInstance {
                instance_type: Some(self.instance_type.clone()),
                os: Some(self.os.as_str().to_string()),
                ..RawInstance::default()
            },
            access: RawAccess {
                method: Some(self.access.as_str().to_string()),
                ..RawAccess::default()
            },
            data_volume: RawDataVolume {
                size_gib: Some(i64::from(self.data_volume_gib)),
                ..RawDataVolume::default()
            },
            gitlab: RawGitlab {
                edition: Some(self.edition.as_str().to_string()),
                version: Some(self.version.clone()),
                // Written even when empty, to show where the URL goes.
                external_url: Some(self.external_url.clone().unwrap_or_default()),
                letsencrypt: Some(self.letsencrypt),
                ..RawGitlab::default()
            },
            backup: RawBackup {
                snapshots: Some(if self.backups { "daily" } else { "off" }.into()),
                s3: Some(self.backups),
                ..RawBackup::default()
            },
            email: RawEmail {
                enabled: Some(self.email.is_some()),
                domain: self.email.as_ref().map(|e| e.domain.clone()),
                ses_region: self.email.as_ref().and_then(|e| e.ses_region.clone()),
                ..RawEmail::default()
            },
            ..RawConfig::default()
        }
    }
}

/// What the file says before its keys. It never holds a secret: the root
/// and SMTP passwords live only in SSM Parameter Store.
const HEADER: &str = "\
# glbox configuration, written by the glbox wizard.
# Run again without questions: glbox up --config glbox.toml --yes
# Every key, with its default, is described in examples/glbox.toml.
# GLBOX_* environment variables and command-line flags override this file.
# No secret is kept here: the GitLab root password and the SMTP password
# live only in SSM Parameter Store (glbox status --show-password).
";

/// The commented `glbox.toml` for `answers`: the schema writes each key
/// with its description; the wizard adds why it chose a value.
pub fn render(answers: &Answers) -> String {
    let note = |path: &str| match path {
        "instance.type" => answers
            .users
            .map(|users| format!("Chosen for about {users} users.")),
        "backup.snapshots" if answers.backups => Some(
            "Turned on by the wizard: set snapshots = \"off\" and s3 = false to go without.".into(),
        ),
        "email.ses_region" => {
            Some("The deployment's region has no SES SMTP endpoint: SES is used here.".into())
        }
        _ => None,
    };
    format!("{HEADER}{}", raw::commented_toml(&answers.to_raw(), note))
}

/// Writes the file through a temporary one beside it and a rename, so a
/// crash never leaves half a configuration. It holds no secret: 0644 less
/// the user's umask, like any file they would write.
pub(super) fn write_config(path: &Path, text: &str) -> Result<()> {
    let temporary = temporary_path(path);
    write_new(&temporary, text)?;
    std::fs::rename(&temporary, path)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{:016x}.tmp", rand::random::<u64>()));
    path.with_file_name(name)
}

/// Creates `path` anew (never through a symlink or over a file already
/// there) and writes `text` to it.
fn write_new(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o644);
    let context = || format!("cannot write {}", path.display());
    let mut file = options.open(path).map_err(|e| Error::io(context(), e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(context(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers() -> Answers {
        Answers {
            name: "team-gitlab".into(),
            region: "ap-east-1".into(),
            users: Some(250),
            instance_type: "c7g.2xlarge".into(),
            os: Os::Al2023,
            access: AccessMethod::Ssh,
            external_url: Some("https://gitlab.example.com".into()),
            letsencrypt: true,
            edition: Edition::Ee,
            version: "18.5.1".into(),
            email: Some(EmailAnswers {
                domain: "example.com".into(),
                ses_region: Some("us-east-1".into()),
            }),
            data_volume_gib: 250,
            backups: true,
        }
    }

    #[test]
    fn the_rendered_file_loads_back_to_the_answers() {
        let path = Path::new("glbox.toml");
        for answers in [
            answers(),
            Answers {
                external_url: None,
                letsencrypt: false,
                email: None,
                access: AccessMethod::Ssm,
                os: Os::Ubuntu2404,
                users: None,
                backups: false,
                ..answers()
            },
        ] {
            let settings = crate::config::from_str(&render(&answers), path).unwrap();
            assert_eq!(
                Answers::from_settings(&settings),
                Answers {
                    users: None,
                    ..answers
                }
            );
        }
    }
}
