//! `[access]`: SSM, or SSH with its key, addresses, user and host key.

use std::path::{Path, PathBuf};

use super::{network::validate_cidrs, validate_range};
use crate::config::raw::RawAccess;
use crate::config::settings::{Access, AccessMethod, SshAccess, SshKeySource};
use crate::config::{bad, ConfigError};

/// Where and how long glbox connects to the box (either method).
pub(super) struct Remote {
    pub(super) host: Option<String>,
    pub(super) port: u16,
    pub(super) ready_timeout: std::time::Duration,
}

/// `access.host`, `access.port` and the readiness deadline.
pub(super) fn validate_remote(raw: &RawAccess) -> Result<Remote, ConfigError> {
    let host = raw.host.clone().filter(|h| !h.is_empty());
    if let Some(host) = &host {
        let ok = host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        if !ok {
            return Err(bad(
                "access.host",
                host,
                "is not a host name or IP address",
                "use a name like \"gitlab.internal\" or an address like \"10.0.0.5\"",
            ));
        }
    }
    let port = validate_range("access.port", raw.port(), 1, 65535, "")?;
    let minutes = validate_range(
        "access.ready_timeout_minutes",
        raw.ready_timeout_minutes(),
        1,
        120,
        "minutes",
    )?;
    Ok(Remote {
        host,
        port: u16::try_from(port).expect("range checked"),
        ready_timeout: std::time::Duration::from_secs(60 * u64::from(minutes.unsigned_abs())),
    })
}

/// The access method, with the SSH details only in SSH mode: in SSM mode
/// an SSH-only key is refused rather than ignored.
pub(super) fn validate_access(raw: RawAccess) -> Result<Access, ConfigError> {
    let method = match raw.method().as_str() {
        "ssm" => AccessMethod::Ssm,
        "ssh" => AccessMethod::Ssh,
        other => {
            return Err(bad(
                "access.method",
                other,
                "is not an access method",
                "use \"ssm\" (recommended, no inbound SSH) or \"ssh\"",
            ))
        }
    };
    let cidrs = raw.ssh_cidrs();
    let key_path = raw.ssh_public_key.filter(|p| !p.is_empty());
    if method == AccessMethod::Ssm {
        if let Some(path) = key_path {
            return Err(bad(
                "access.ssh_public_key",
                path,
                "is only used with method = \"ssh\"",
                "remove it, or set access.method = \"ssh\"",
            ));
        }
        if !cidrs.is_empty() {
            return Err(bad(
                "access.ssh_cidrs",
                cidrs.join(","),
                "opens port 22, which SSM access does not need",
                "remove it, or set access.method = \"ssh\"",
            ));
        }
        let ssh_only = [
            ("access.host", raw.host),
            ("access.ssh_user", raw.ssh_user),
            ("access.ssh_host_key", raw.ssh_host_key),
        ];
        for (field, value) in ssh_only {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                return Err(bad(
                    field,
                    value,
                    "is only used with method = \"ssh\"",
                    "remove it, or set access.method = \"ssh\"",
                ));
            }
        }
        return Ok(Access::Ssm);
    }
    let key = match key_path {
        None => SshKeySource::Generated,
        Some(path) => read_public_key(&expand_home(&path))?,
    };
    let cidrs = validate_cidrs("access.ssh_cidrs", cidrs)?;
    let user = raw.ssh_user.filter(|u| !u.is_empty());
    if let Some(user) = &user {
        let ok = user.len() <= 32
            && user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            return Err(bad(
                "access.ssh_user",
                user,
                "is not a user name",
                "use a name like \"ubuntu\"",
            ));
        }
    }
    let host_key = match raw.ssh_host_key.filter(|p| !p.is_empty()) {
        None => None,
        Some(path) => Some(read_host_key(&expand_home(&path))?),
    };
    Ok(Access::Ssh(SshAccess {
        key,
        cidrs,
        user,
        host_key,
    }))
}

/// `~/x` means `$HOME/x`, as in a shell.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// The expected SSH host key: a file holding one OpenSSH public key (for
/// example the instance's `/etc/ssh/ssh_host_ed25519_key.pub`).
fn read_host_key(path: &Path) -> Result<String, ConfigError> {
    let field = "access.ssh_host_key";
    let fix = "give the path of the server's OpenSSH public host key, or leave it empty to read it from the console";
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(field, path.display(), &format!("cannot be read: {e}"), fix))?;
    let line = text.trim().to_string();
    if russh::keys::PublicKey::from_openssh(&line).is_err() {
        return Err(bad(
            field,
            path.display(),
            "is not an OpenSSH public key",
            fix,
        ));
    }
    Ok(line)
}

/// The SSH public key file the user gave, read and parsed.
fn read_public_key(path: &Path) -> Result<SshKeySource, ConfigError> {
    let field = "access.ssh_public_key";
    let text = std::fs::read_to_string(path).map_err(|e| {
        bad(
            field,
            path.display(),
            &format!("cannot be read: {e}"),
            "give the path of an OpenSSH public key (e.g. ~/.ssh/id_ed25519.pub), or leave it empty to generate one",
        )
    })?;
    let openssh = text.trim().to_string();
    if russh::keys::PublicKey::from_openssh(&openssh).is_err() {
        let hint = if openssh.contains("PRIVATE KEY") {
            "this is a private key: give the .pub file next to it"
        } else {
            "give an OpenSSH public key file (one line starting with ssh-ed25519, ssh-rsa or ecdsa-sha2-…)"
        };
        return Err(bad(
            field,
            path.display(),
            "is not an OpenSSH public key",
            hint,
        ));
    }
    Ok(SshKeySource::File {
        path: path.to_path_buf(),
        openssh,
    })
}
