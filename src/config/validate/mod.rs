//! Validation, by area: each function takes the raw values of its keys and
//! returns the validated type or the one [`ConfigError`] that names the
//! field, the value and the fix.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::raw::RawConfig;
use crate::config::settings::Settings;
use crate::config::{bad, ConfigError};

mod access;
mod backup;
mod email;
mod extra_config;
mod gitlab;
mod identity;
mod instance;
mod network;

pub use email::is_domain;
pub use gitlab::{is_version, url_host, validate_url};
pub use identity::{is_region_name, validate_name, validate_region, AWS_REGIONS};
pub use instance::{validate_instance_type, GP3_MAX_GIB, MIN_DATA_GIB};

use access::{validate_access, validate_remote};
use backup::validate_backup;
use email::validate_email;
use gitlab::validate_gitlab;
use instance::{validate_data_volume, validate_instance};
use network::{check_letsencrypt_reachable, validate_cidrs, validate_dns};

/// The settings `raw` describes, with `env` for the AWS region variables;
/// files it names (`gitlab.extra_config`) are relative to `base`, the
/// configuration file's folder.
pub fn validate(
    raw: RawConfig,
    env: &BTreeMap<String, String>,
    base: &Path,
) -> Result<Settings, ConfigError> {
    let name = validate_name(raw.name)?;
    let region = validate_region(raw.region, env)?;
    let instance = validate_instance(raw.instance)?;
    let remote = validate_remote(&raw.access)?;
    let access = validate_access(raw.access)?;
    let http_cidrs = validate_cidrs("network.http_cidrs", raw.network.http_cidrs())?;
    let data_volume = validate_data_volume(raw.data_volume)?;
    let extra_config_path = raw.gitlab.extra_config.clone();
    let mut gitlab = validate_gitlab(raw.gitlab)?;
    let verify_url = raw
        .verify
        .url
        .clone()
        .filter(|u| !u.is_empty())
        .map(|u| validate_url("verify.url", &u))
        .transpose()?;
    let email = validate_email(raw.email, &region)?;
    let elastic_ip = raw.network.elastic_ip();
    check_letsencrypt_reachable(&gitlab, &http_cidrs)?;
    let dns_zone_id = validate_dns(raw.dns, &gitlab, elastic_ip)?;
    let backup = validate_backup(raw.backup, &region)?;
    gitlab.extra_config = extra_config::validate_extra_config(
        extra_config_path,
        base,
        extra_config::Owned {
            email: email.is_some(),
            s3_backups: backup.s3.is_some(),
        },
    )?;
    let verify_minutes = validate_range(
        "verify.timeout_minutes",
        raw.verify.timeout_minutes(),
        1,
        120,
        "minutes",
    )?;
    Ok(Settings {
        name,
        region,
        instance_type: instance.instance_type,
        os: instance.os,
        ami: instance.ami,
        root_volume_gib: instance.root_volume_gib,
        swap_gib: instance.swap_gib,
        subnet_id: instance.subnet_id,
        access,
        http_cidrs,
        elastic_ip,
        data_volume,
        gitlab,
        remote_host: remote.host,
        remote_port: remote.port,
        ready_timeout: remote.ready_timeout,
        verify_timeout: std::time::Duration::from_secs(
            60 * u64::from(verify_minutes.unsigned_abs()),
        ),
        verify_url,
        email,
        dns_zone_id,
        backup,
    })
}

/// An AWS id (`ami-…`, `subnet-…`); empty means none.
fn optional_id(
    field: &str,
    value: Option<String>,
    prefix: &str,
    fix: &str,
) -> Result<Option<String>, ConfigError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let hex = value.strip_prefix(prefix).unwrap_or("");
    let ok = (8..=17).contains(&hex.len())
        && hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
    if !ok {
        return Err(bad(
            field,
            &value,
            "is not a valid id",
            format!("use {fix}"),
        ));
    }
    Ok(Some(value))
}

/// A whole number within `min..=max`, as the `i32` AWS takes.
fn validate_range(
    field: &str,
    value: i64,
    min: i64,
    max: i64,
    unit: &str,
) -> Result<i32, ConfigError> {
    if !(min..=max).contains(&value) {
        return Err(bad(
            field,
            value,
            &format!("is out of range ({min} to {max} {unit})"),
            format!("set a value from {min} to {max}"),
        ));
    }
    Ok(i32::try_from(value).expect("range checked above fits i32"))
}

/// Trimmed text; empty means not set.
fn optional_text(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}
