//! Configuration: layered (defaults < file < `GLBOX_*` environment < flags),
//! then validated into [`Settings`] before any AWS call is made.
//!
//! [`raw`] is the one schema of `glbox.toml` (keys, types, defaults,
//! descriptions); `sources` stacks the layers; `validate` checks them by
//! area; `settings` holds the validated types.

use std::fmt;

pub mod raw;
mod settings;
mod sources;
#[cfg(test)]
mod tests;
mod validate;

pub use settings::{
    Access, AccessMethod, BackupSettings, DataVolumeSettings, Edition, EmailSettings, ExtraConfig,
    GitlabSettings, GitlabVersion, Os, S3Backups, Settings, SnapshotSchedule, SshAccess,
    SshKeySource, StoredSecret, TimeOfDay,
};
pub use sources::{from_str, load, load_lab, minimal, region_only, Sources, DEFAULT_CONFIG_FILE};
pub use validate::{
    is_domain, is_region_name, is_version, url_host, validate_instance_type, validate_name,
    validate_url, AWS_REGIONS, GP3_MAX_GIB, MIN_DATA_GIB,
};

/// A configuration value that cannot be used, with the way to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub value: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}: {}", self.field, self.problem)?;
        } else {
            write!(f, "{} = {:?}: {}", self.field, self.value, self.problem)?;
        }
        write!(f, "\n  fix: {}", self.fix)
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn bad(
    field: &str,
    value: impl ToString,
    problem: &str,
    fix: impl Into<String>,
) -> ConfigError {
    ConfigError {
        field: field.to_string(),
        value: value.to_string(),
        problem: problem.to_string(),
        fix: fix.into(),
    }
}
