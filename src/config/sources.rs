//! Where the configuration comes from and how the layers stack: built-in
//! defaults < the file < `GLBOX_*` environment variables < flags. The
//! layers merge as one TOML table, which the schema then reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::raw::{Kind, RawConfig, SECTIONS};
use crate::config::settings::Settings;
use crate::config::validate::{validate, validate_region};
use crate::config::{bad, ConfigError};

pub const DEFAULT_CONFIG_FILE: &str = "glbox.toml";

/// Environment variables with the `GLBOX_` prefix that are not configuration
/// keys but are still glbox's own (read elsewhere).
const NON_KEY_ENV_VARS: &[&str] = &[
    "GLBOX_CONFIG",
    crate::caller_ip::URL_ENV_VAR,
    crate::public_dns::RESOLVER_ENV_VAR,
];

/// `GLBOX_<PATH>` for a key's dotted path (dots and lowercase turned into
/// underscores and uppercase).
fn env_var_name(path: &str) -> String {
    format!("GLBOX_{}", path.replace('.', "_").to_uppercase())
}

/// Where the configuration comes from, apart from built-in defaults.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// The file given with `--config`, or `None` for the default `glbox.toml`
    /// (which may be missing).
    pub explicit_file: Option<PathBuf>,
    /// The process environment (all variables; only `GLBOX_*` and the AWS
    /// region variables are read).
    pub env: BTreeMap<String, String>,
    /// `--region` from the command line.
    pub region_flag: Option<String>,
}

impl Sources {
    pub fn from_process(explicit_file: Option<PathBuf>, region_flag: Option<String>) -> Self {
        Sources {
            explicit_file,
            env: std::env::vars().collect(),
            region_flag,
        }
    }

    /// The configuration file glbox reads (and the wizard writes).
    pub fn config_path(&self) -> PathBuf {
        self.explicit_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE))
    }
}

/// The file layer: the `--config` file, or `glbox.toml` when it exists.
fn read_file_layer(sources: &Sources) -> Result<toml::Table, ConfigError> {
    let path = sources.config_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && sources.explicit_file.is_none() => {
            return Ok(toml::Table::new());
        }
        Err(e) => {
            return Err(bad(
                "--config",
                path.display(),
                &format!("cannot read the file: {e}"),
                "give the path of a readable glbox.toml (see examples/glbox.toml)",
            ))
        }
    };
    parse_file(&text, &path)
}

/// The text of a configuration file at `path` as a TOML table.
fn parse_file(text: &str, path: &Path) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| {
        bad(
            &path.display().to_string(),
            "",
            &format!("is not valid TOML: {}", e.to_string().trim_end()),
            "correct the syntax at the line shown (see examples/glbox.toml)",
        )
    })
}

/// An environment variable's text as the TOML value its key takes.
fn env_value(var: &str, text: &str, kind: Kind) -> Result<toml::Value, ConfigError> {
    let value = match kind {
        Kind::Text => toml::Value::String(text.to_string()),
        Kind::Integer => toml::Value::Integer(text.trim().parse().map_err(|_| {
            bad(
                var,
                text,
                "is not a whole number",
                "set it to a number, e.g. 100",
            )
        })?),
        Kind::Boolean => toml::Value::Boolean(match text.trim() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => {
                return Err(bad(
                    var,
                    text,
                    "is not a boolean",
                    "set it to true or false",
                ))
            }
        }),
        Kind::List => toml::Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| toml::Value::String(item.to_string()))
                .collect(),
        ),
    };
    Ok(value)
}

/// Sets `section.key` (or a top-level key) in the layered table.
fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    match path.split_once('.') {
        None => {
            table.insert(path.to_string(), value);
        }
        Some((section, key)) => {
            let entry = table
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                inner.insert(key.to_string(), value);
            }
        }
    }
}

/// The `GLBOX_*` layer; a variable that is no key is refused, not ignored.
fn overlay_env(table: &mut toml::Table, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for (var, text) in env.iter().filter(|(var, _)| var.starts_with("GLBOX_")) {
        // GLBOX_FAILPOINT and GLBOX_CLOCK_SCALE exist only in test builds
        // (src/checkpoint.rs, src/clock.rs).
        let failpoint = cfg!(feature = "failpoints") && var == "GLBOX_FAILPOINT";
        let clock = cfg!(feature = "simclock") && var == "GLBOX_CLOCK_SCALE";
        if NON_KEY_ENV_VARS.contains(&var.as_str()) || failpoint || clock {
            continue;
        }
        let Some((path, kind)) = key_paths().find(|(path, _)| env_var_name(path) == *var) else {
            let known: Vec<String> = key_paths().map(|(path, _)| env_var_name(&path)).collect();
            // The value is not echoed: an unknown variable may hold a secret.
            return Err(bad(
                var,
                "",
                "is not a glbox setting",
                format!("unset it, or use one of: {}", known.join(", ")),
            ));
        };
        set_path(table, &path, env_value(var, text, kind)?);
    }
    Ok(())
}

/// Every key of the schema by its dotted path, with its kind.
fn key_paths() -> impl Iterator<Item = (String, Kind)> {
    SECTIONS.iter().flat_map(|section| {
        section
            .keys
            .iter()
            .map(move |key| (section.path(key), key.kind))
    })
}

/// The layered configuration as one TOML table, and where it came from.
fn layered_table(sources: &Sources) -> Result<(toml::Table, String), ConfigError> {
    let mut table = read_file_layer(sources)?;
    overlay_env(&mut table, &sources.env)?;
    if let Some(region) = &sources.region_flag {
        table.insert("region".into(), toml::Value::String(region.clone()));
    }
    let origin = if sources.explicit_file.is_some() || sources.config_path().exists() {
        sources.config_path().display().to_string()
    } else {
        "configuration".to_string()
    };
    Ok((table, origin))
}

/// The layered table read by the schema, then validated.
fn settings_from_table(
    table: toml::Table,
    origin: &str,
    env: &BTreeMap<String, String>,
    base: &Path,
) -> Result<Settings, ConfigError> {
    let raw = RawConfig::deserialize(table).map_err(|e| {
        bad(
            origin,
            "",
            e.message(),
            "remove or rename the key; the accepted keys are listed in examples/glbox.toml",
        )
    })?;
    validate(raw, env, base)
}

/// The folder of the configuration file at `path`: what the files it
/// names are relative to.
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Loads and validates the configuration from all layers.
pub fn load(sources: &Sources) -> Result<Settings, ConfigError> {
    let (table, origin) = layered_table(sources)?;
    single_box(
        table,
        &origin,
        &sources.env,
        folder_of(&sources.config_path()),
    )
}

/// What [`load`] makes of a file at `path` holding `text`, with no
/// environment variable or flag on top: what the file alone says.
pub fn from_str(text: &str, path: &Path) -> Result<Settings, ConfigError> {
    let table = parse_file(text, path)?;
    single_box(
        table,
        &path.display().to_string(),
        &BTreeMap::new(),
        folder_of(path),
    )
}

/// A single box's settings from the layered table (which must not
/// configure a lab).
fn single_box(
    table: toml::Table,
    origin: &str,
    env: &BTreeMap<String, String>,
    base: &Path,
) -> Result<Settings, ConfigError> {
    if table.contains_key("lab") {
        return Err(bad(
            &format!("{origin}: [lab]"),
            "",
            "configures a training lab (from the file or GLBOX_LAB_* variables), which the single-box commands do not manage",
            "use glbox lab up / status / down with this file, or remove [lab] (and unset GLBOX_LAB_*) for a single box",
        ));
    }
    settings_from_table(table, origin, env, base)
}

/// Loads a lab's configuration: everything a single box takes (the lab's
/// name is the deployment name) plus the `[lab]` table, returned raw for
/// `lab::settings` to validate.
pub fn load_lab(sources: &Sources) -> Result<(Settings, toml::Table), ConfigError> {
    let (mut table, origin) = layered_table(sources)?;
    let lab = match table.remove("lab") {
        Some(toml::Value::Table(lab)) => lab,
        Some(_) => {
            return Err(bad(
                "lab",
                "",
                "must be a table",
                "write it as a [lab] section with seats, name and expires_in",
            ))
        }
        None => {
            return Err(bad(
                "lab",
                "",
                "is missing: a lab needs at least seats and expires_in",
                "add a [lab] section, e.g. [lab] name = \"class\" seats = 25 expires_in = \"8h\" (see examples/lab.toml)",
            ))
        }
    };
    match (lab.get("name"), table.get("name")) {
        (Some(lab_name), Some(name)) if lab_name != name => {
            return Err(bad(
                "lab.name",
                lab_name.as_str().unwrap_or_default(),
                &format!("differs from name = {name}; one of them names the lab"),
                "keep lab.name and remove the top-level name (or make them equal)",
            ))
        }
        (Some(lab_name), None) => {
            table.insert("name".into(), lab_name.clone());
        }
        _ => {}
    }
    lab_default_no_elastic_ip(&mut table);
    let base = folder_of(&sources.config_path()).to_path_buf();
    Ok((
        settings_from_table(table, &origin, &sources.env, &base)?,
        lab,
    ))
}

/// Seats get a public IPv4 at launch unless `network.elastic_ip = true` is
/// asked for: a new account holds only 5 Elastic IPs per region (Amazon
/// VPC quotas), and a public IPv4 costs the same either way.
fn lab_default_no_elastic_ip(table: &mut toml::Table) {
    let network = table
        .entry("network")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(network) = network {
        network
            .entry("elastic_ip")
            .or_insert(toml::Value::Boolean(false));
    }
}

/// Settings for commands that act on resources found in AWS rather than
/// on a configuration (`glbox lab reap`): the defaults, a name and a region.
pub fn minimal(name: &str, region: &str) -> Result<Settings, ConfigError> {
    let raw = RawConfig {
        name: Some(name.to_string()),
        region: Some(region.to_string()),
        ..RawConfig::default()
    };
    validate(raw, &BTreeMap::new(), Path::new("."))
}

/// The region for commands without a configuration: `--region`, the
/// configuration file's `region`, then AWS_REGION / AWS_DEFAULT_REGION.
pub fn region_only(sources: &Sources) -> Result<String, ConfigError> {
    let (table, _) = layered_table(sources)?;
    let region = table
        .get("region")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    validate_region(region, &sources.env)
}
