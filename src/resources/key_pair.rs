//! The EC2 key pair (SSH mode only), imported from the user's public key or
//! from an ed25519 pair glbox generates once and keeps in its state folder.
//! The private key never leaves this machine and is written 0600 from the
//! moment the file exists.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use aws_sdk_ec2::types::ResourceType;
use russh::keys::{Algorithm, PrivateKey};

use crate::aws::ec2::key_pairs as gateway;
use crate::config::{Settings, SshKeySource};
use crate::error::{Error, Result};
use crate::names::Role;
use crate::paths;
use crate::resources::{Action, Ctx, PlanItem};

#[derive(Debug, Clone)]
pub struct KeyPair {
    pub name: String,
    pub id: String,
    /// `type base64` of the imported key, when AWS reports it.
    pub public_key: Option<String>,
}

/// The first two fields of an OpenSSH public key line (type and key data):
/// what identifies the key, without the comment.
fn key_identity(openssh: &str) -> String {
    openssh
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The public key the settings want, if it exists yet.
#[derive(Debug, Clone)]
pub enum DesiredKey {
    Known(String),
    /// glbox will generate one at this path on `up`.
    ToGenerate(PathBuf),
}

pub fn desired_key(settings: &Settings) -> Option<DesiredKey> {
    let ssh = settings.ssh_access()?;
    Some(match &ssh.key {
        SshKeySource::File { openssh, .. } => DesiredKey::Known(openssh.clone()),
        // The private key decides: without it the imported key is useless.
        SshKeySource::Generated => {
            let private = paths::generated_key(&settings.name);
            match public_of(&private) {
                Some(public) => DesiredKey::Known(public),
                None => DesiredKey::ToGenerate(private),
            }
        }
    })
}

/// The public key of a stored private key, if the file holds one.
fn public_of(private_path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(private_path).ok()?;
    let key = PrivateKey::from_openssh(text).ok()?;
    key.public_key().to_openssh().ok()
}

pub async fn observe(ctx: &Ctx<'_>) -> Result<Option<KeyPair>> {
    let found = gateway::describe(&ctx.aws.ec2, ctx.names.owned_filters(Role::KeyPair)).await?;
    Ok(found.first().map(|k| KeyPair {
        name: k.key_name().unwrap_or_default().to_string(),
        id: k.key_pair_id().unwrap_or_default().to_string(),
        public_key: k.public_key().map(key_identity),
    }))
}

#[derive(Debug, Clone)]
pub enum Change {
    Create(DesiredKey),
    Replace {
        id: String,
        key: DesiredKey,
        reason: String,
    },
    Delete {
        id: String,
    },
    NoChange {
        id: String,
    },
    Absent,
}

pub fn diff(desired: Option<DesiredKey>, observed: Option<&KeyPair>) -> Change {
    match (desired, observed) {
        (None, None) => Change::Absent,
        (None, Some(k)) => Change::Delete { id: k.id.clone() },
        (Some(key), None) => Change::Create(key),
        (Some(DesiredKey::ToGenerate(path)), Some(k)) => Change::Replace {
            id: k.id.clone(),
            reason: format!(
                "the generated private key {} is missing locally",
                path.display()
            ),
            key: DesiredKey::ToGenerate(path),
        },
        (Some(DesiredKey::Known(text)), Some(k)) => match &k.public_key {
            Some(observed) if *observed != key_identity(&text) => Change::Replace {
                id: k.id.clone(),
                reason: "the configured public key differs from the imported one".into(),
                key: DesiredKey::Known(text),
            },
            _ => Change::NoChange { id: k.id.clone() },
        },
    }
}

impl Change {
    pub fn item(&self, ctx: &Ctx<'_>) -> Option<PlanItem> {
        let name = ctx.names.base();
        let source = |key: &DesiredKey| match key {
            DesiredKey::Known(_) => "import the configured public key".to_string(),
            DesiredKey::ToGenerate(path) => {
                format!("generate an ed25519 key pair at {}", path.display())
            }
        };
        Some(match self {
            Change::Absent => return None,
            Change::Create(key) => PlanItem::new("key_pair", name, None, Action::Create)
                .with_changes(vec![source(key)]),
            Change::Replace { id, key, reason } => {
                PlanItem::new("key_pair", name, Some(id.clone()), Action::Replace).with_changes(
                    vec![
                        reason.clone(),
                        source(key),
                        "a running instance keeps the key it was launched with".into(),
                    ],
                )
            }
            Change::Delete { id } => {
                PlanItem::new("key_pair", name, Some(id.clone()), Action::Delete)
                    .with_changes(vec!["access.method is ssm".into()])
            }
            Change::NoChange { id } => {
                PlanItem::new("key_pair", name, Some(id.clone()), Action::NoChange)
            }
        })
    }
}

pub async fn apply(ctx: &Ctx<'_>, change: &Change) -> Result<()> {
    match change {
        Change::Absent | Change::NoChange { .. } => Ok(()),
        Change::Create(key) => import(ctx, key).await,
        Change::Replace { .. } | Change::Delete { .. } => {
            delete_by_name(ctx).await?;
            match change {
                Change::Replace { key, .. } => import(ctx, key).await,
                _ => Ok(()),
            }
        }
    }
}

async fn import(ctx: &Ctx<'_>, key: &DesiredKey) -> Result<()> {
    let public = match key {
        DesiredKey::Known(text) => text.clone(),
        DesiredKey::ToGenerate(path) => {
            let public = generate(path)?;
            ctx.ui.info(&format!(
                "generated SSH key {} (private, 0600)",
                path.display()
            ));
            public
        }
    };
    let name = ctx.names.base();
    gateway::import(
        &ctx.aws.ec2,
        &name,
        public,
        ctx.names.tag_spec(ResourceType::KeyPair, Role::KeyPair),
    )
    .await?;
    ctx.ui.info(&format!("imported key pair {name}"));
    Ok(())
}

/// Writes a new ed25519 pair: the private key created 0600 (never readable
/// by others, not even briefly) and never over an existing file, the public
/// key beside it. Returns the
/// public key line.
pub fn generate(private_path: &Path) -> Result<String> {
    let dir = private_path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .map_err(|e| Error::Refused(format!("generating an SSH key failed: {e}")))?;
    let private = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .map_err(|e| Error::Refused(format!("encoding the SSH key failed: {e}")))?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| Error::Refused(format!("encoding the SSH key failed: {e}")))?;
    crate::log::redact::secret(&private);
    write_file(private_path, private.as_bytes(), 0o600, true)?;
    let public_path = private_path.with_extension("pub");
    write_file(&public_path, format!("{public}\n").as_bytes(), 0o644, false)?;
    Ok(public)
}

/// `only_new`: fail rather than overwrite (a private key is never replaced).
fn write_file(path: &Path, contents: &[u8], mode: u32, only_new: bool) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(mode);
    if only_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    let mut file = options
        .open(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    file.write_all(contents)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Key pair names are unique per region, and the observed pair carries the
/// deployment's tags, so deleting by glbox's name deletes exactly that pair.
async fn delete_by_name(ctx: &Ctx<'_>) -> Result<()> {
    let name = ctx.names.base();
    gateway::delete(&ctx.aws.ec2, &name).await?;
    ctx.ui.info(&format!("deleted key pair {name}"));
    Ok(())
}

pub async fn delete(ctx: &Ctx<'_>) -> Result<()> {
    delete_by_name(ctx).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_keys_are_private_and_parse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep/id_ed25519");
        let public = generate(&path).unwrap();
        assert!(public.starts_with("ssh-ed25519 "));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let private = std::fs::read_to_string(&path).unwrap();
        assert!(PrivateKey::from_openssh(&private).is_ok());
        assert!(russh::keys::PublicKey::from_openssh(&public).is_ok());
        assert_eq!(public_of(&path), Some(public));
        assert!(
            generate(&path).is_err(),
            "an existing private key is never overwritten"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), private);
    }

    #[test]
    fn a_different_key_means_replacement() {
        let observed = KeyPair {
            name: "glbox-a".into(),
            id: "key-1".into(),
            public_key: Some("ssh-ed25519 AAAA".into()),
        };
        let same = diff(
            Some(DesiredKey::Known("ssh-ed25519 AAAA me@host".into())),
            Some(&observed),
        );
        assert!(matches!(same, Change::NoChange { .. }));
        let other = diff(
            Some(DesiredKey::Known("ssh-ed25519 BBBB".into())),
            Some(&observed),
        );
        assert!(matches!(other, Change::Replace { .. }));
        assert!(matches!(diff(None, Some(&observed)), Change::Delete { .. }));
        assert!(matches!(diff(None, None), Change::Absent));
    }
}
