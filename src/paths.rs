//! Where glbox keeps local files: `$XDG_STATE_HOME/glbox/` or
//! `~/.local/state/glbox/`, one folder per deployment.

use std::path::PathBuf;

pub fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("glbox");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/state/glbox")
}

pub fn deployment_dir(deployment: &str) -> PathBuf {
    state_dir().join(deployment)
}

/// The generated SSH private key of a deployment (its `.pub` sits beside it).
pub fn generated_key(deployment: &str) -> PathBuf {
    deployment_dir(deployment).join("id_ed25519")
}
