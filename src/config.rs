//! Configuration: layered (defaults < file < `GLBOX_*` environment < flags),
//! then validated into [`Settings`] before any AWS call is made.
//!
//! The raw layer keeps every value as the user wrote it (strings and plain
//! integers) so that validation can name the field, the value and the fix in
//! one consistent message instead of surfacing a deserializer's wording.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

pub const DEFAULT_CONFIG_FILE: &str = "glbox.toml";
const DEFAULT_REGION: &str = "us-east-1";

/// Environment variables with the `GLBOX_` prefix that are not configuration
/// keys but are still glbox's own (read elsewhere).
const NON_KEY_ENV_VARS: &[&str] = &[
    "GLBOX_CONFIG",
    crate::caller_ip::URL_ENV_VAR,
    crate::public_dns::RESOLVER_ENV_VAR,
];

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

fn bad(field: &str, value: impl ToString, problem: &str, fix: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.to_string(),
        value: value.to_string(),
        problem: problem.to_string(),
        fix: fix.into(),
    }
}

// ---------------------------------------------------------------- raw layer

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    name: Option<String>,
    region: Option<String>,
    instance: RawInstance,
    access: RawAccess,
    network: RawNetwork,
    data_volume: RawDataVolume,
    gitlab: RawGitlab,
    verify: RawVerify,
    email: RawEmail,
    dns: RawDns,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDns {
    route53_zone_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawEmail {
    enabled: Option<bool>,
    domain: Option<String>,
    from: Option<String>,
    reply_to: Option<String>,
    ses_region: Option<String>,
    port: Option<i64>,
    route53_zone_id: Option<String>,
    test_recipient: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawVerify {
    timeout_minutes: Option<i64>,
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawInstance {
    #[serde(rename = "type")]
    instance_type: Option<String>,
    os: Option<String>,
    ami: Option<String>,
    root_volume_gib: Option<i64>,
    swap_gib: Option<i64>,
    subnet_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAccess {
    method: Option<String>,
    ssh_public_key: Option<String>,
    ssh_cidrs: Option<Vec<String>>,
    host: Option<String>,
    port: Option<i64>,
    ssh_user: Option<String>,
    ssh_host_key: Option<String>,
    ready_timeout_minutes: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawNetwork {
    http_cidrs: Option<Vec<String>>,
    elastic_ip: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawGitlab {
    edition: Option<String>,
    version: Option<String>,
    external_url: Option<String>,
    letsencrypt: Option<bool>,
    root_email: Option<String>,
    install_timeout_minutes: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDataVolume {
    size_gib: Option<i64>,
    iops: Option<i64>,
    throughput_mibps: Option<i64>,
}

/// How an environment variable's text becomes a TOML value.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Integer,
    Boolean,
    List,
}

/// Every configuration key, by its dotted path. `GLBOX_<PATH>` (dots and
/// lowercase turned into underscores and uppercase) overrides it.
const KEYS: &[(&str, Kind)] = &[
    ("name", Kind::Text),
    ("region", Kind::Text),
    ("instance.type", Kind::Text),
    ("instance.os", Kind::Text),
    ("instance.ami", Kind::Text),
    ("instance.root_volume_gib", Kind::Integer),
    ("instance.swap_gib", Kind::Integer),
    ("instance.subnet_id", Kind::Text),
    ("access.method", Kind::Text),
    ("access.ssh_public_key", Kind::Text),
    ("access.ssh_cidrs", Kind::List),
    ("access.host", Kind::Text),
    ("access.port", Kind::Integer),
    ("access.ssh_user", Kind::Text),
    ("access.ssh_host_key", Kind::Text),
    ("access.ready_timeout_minutes", Kind::Integer),
    ("network.http_cidrs", Kind::List),
    ("network.elastic_ip", Kind::Boolean),
    ("data_volume.size_gib", Kind::Integer),
    ("data_volume.iops", Kind::Integer),
    ("data_volume.throughput_mibps", Kind::Integer),
    ("gitlab.edition", Kind::Text),
    ("gitlab.version", Kind::Text),
    ("gitlab.external_url", Kind::Text),
    ("gitlab.letsencrypt", Kind::Boolean),
    ("gitlab.root_email", Kind::Text),
    ("gitlab.install_timeout_minutes", Kind::Integer),
    ("verify.timeout_minutes", Kind::Integer),
    ("verify.url", Kind::Text),
    ("email.enabled", Kind::Boolean),
    ("email.domain", Kind::Text),
    ("email.from", Kind::Text),
    ("email.reply_to", Kind::Text),
    ("email.ses_region", Kind::Text),
    ("email.port", Kind::Integer),
    ("email.route53_zone_id", Kind::Text),
    ("email.test_recipient", Kind::Text),
    ("dns.route53_zone_id", Kind::Text),
    ("lab.name", Kind::Text),
    ("lab.seats", Kind::Integer),
    ("lab.expires_in", Kind::Text),
    ("lab.spot", Kind::Boolean),
    ("lab.concurrency", Kind::Integer),
];

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
    text.parse::<toml::Table>().map_err(|e| {
        bad(
            &path.display().to_string(),
            "",
            &format!("is not valid TOML: {}", e.to_string().trim_end()),
            "correct the syntax at the line shown (see examples/glbox.toml)",
        )
    })
}

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

fn overlay_env(table: &mut toml::Table, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for (var, text) in env.iter().filter(|(var, _)| var.starts_with("GLBOX_")) {
        // GLBOX_FAILPOINT exists only in test builds (src/checkpoint.rs).
        let failpoint = cfg!(feature = "failpoints") && var == "GLBOX_FAILPOINT";
        if NON_KEY_ENV_VARS.contains(&var.as_str()) || failpoint {
            continue;
        }
        let Some((path, kind)) = KEYS.iter().find(|(path, _)| env_var_name(path) == *var) else {
            let known: Vec<String> = KEYS.iter().map(|(path, _)| env_var_name(path)).collect();
            // The value is not echoed: an unknown variable may hold a secret.
            return Err(bad(
                var,
                "",
                "is not a glbox setting",
                format!("unset it, or use one of: {}", known.join(", ")),
            ));
        };
        set_path(table, path, env_value(var, text, *kind)?);
    }
    Ok(())
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

fn settings_from_table(
    table: toml::Table,
    origin: &str,
    sources: &Sources,
) -> Result<Settings, ConfigError> {
    let raw = RawConfig::deserialize(table).map_err(|e| {
        bad(
            origin,
            "",
            e.message(),
            "remove or rename the key; the accepted keys are listed in examples/glbox.toml",
        )
    })?;
    validate(raw, &sources.env)
}

/// Loads and validates the configuration from all layers.
pub fn load(sources: &Sources) -> Result<Settings, ConfigError> {
    let (table, origin) = layered_table(sources)?;
    if table.contains_key("lab") {
        return Err(bad(
            &format!("{origin}: [lab]"),
            "",
            "configures a training lab (from the file or GLBOX_LAB_* variables), which the single-box commands do not manage",
            "use glbox lab up / status / down with this file, or remove [lab] (and unset GLBOX_LAB_*) for a single box",
        ));
    }
    settings_from_table(table, &origin, sources)
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
    Ok((settings_from_table(table, &origin, sources)?, lab))
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
    validate(raw, &BTreeMap::new())
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

// ---------------------------------------------------------- validated layer

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Os {
    #[serde(rename = "ubuntu-24.04")]
    Ubuntu2404,
    #[serde(rename = "al2023")]
    Al2023,
}

impl Os {
    pub fn as_str(self) -> &'static str {
        match self {
            Os::Ubuntu2404 => "ubuntu-24.04",
            Os::Al2023 => "al2023",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessMethod {
    Ssm,
    Ssh,
}

/// Where the SSH public key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshKeySource {
    /// A public key file the user gave; its OpenSSH text is already read.
    File { path: PathBuf, openssh: String },
    /// glbox generates (once) and keeps an ed25519 pair in its state directory.
    Generated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshAccess {
    pub key: SshKeySource,
    /// Empty means: detect the caller's public IPv4 address and use its /32.
    pub cidrs: Vec<IpNet>,
    /// `None`: the OS's default user (ubuntu, ec2-user).
    pub user: Option<String>,
    /// The host key to expect (OpenSSH public key line); `None`: the keys
    /// cloud-init prints to the instance's console.
    pub host_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub name: String,
    pub region: String,
    pub instance_type: String,
    pub os: Os,
    pub ami: Option<String>,
    pub root_volume_gib: i32,
    /// Swap file size; GitLab asks for at least 2 GiB.
    pub swap_gib: i32,
    pub subnet_id: Option<String>,
    pub access: AccessMethod,
    /// Present exactly when `access == Ssh`.
    pub ssh: Option<SshAccess>,
    pub http_cidrs: Vec<IpNet>,
    pub elastic_ip: bool,
    pub data_volume: DataVolumeSettings,
    pub gitlab: GitlabSettings,
    /// Where glbox connects for SSH (`access.host`), when not the instance's
    /// public address: a VPN, a bastion's forward, a test host.
    pub remote_host: Option<String>,
    pub remote_port: u16,
    /// How long to wait for the SSM agent or sshd to answer.
    pub ready_timeout: std::time::Duration,
    /// How long the health checks may wait for GitLab to become ready.
    pub verify_timeout: std::time::Duration,
    /// Where the outside check asks for the sign-in page, when not the
    /// external URL (a VPN address, a test server).
    pub verify_url: Option<String>,
    /// Outbound email through SES; `None` when `email.enabled` is false.
    pub email: Option<EmailSettings>,
    /// The Route 53 hosted zone glbox writes the external URL's address
    /// record to (`dns.route53_zone_id`); `None`: the user publishes it.
    pub dns_zone_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSettings {
    /// The SES domain identity mail is sent as (lowercase).
    pub domain: String,
    pub from: String,
    pub reply_to: Option<String>,
    /// Where the SES identity and SMTP endpoint are.
    pub ses_region: String,
    /// 587/2587 (STARTTLS) or 465/2465 (TLS).
    pub port: u16,
    /// The hosted zone glbox writes the verification records to.
    pub route53_zone_id: Option<String>,
    /// Who gets the test mail GitLab sends after an install or change.
    pub test_recipient: Option<String>,
}

impl EmailSettings {
    /// Ports 465 and 2465 speak TLS from the first byte; the others STARTTLS.
    pub fn implicit_tls(&self) -> bool {
        matches!(self.port, 465 | 2465)
    }

    pub fn smtp_host(&self) -> String {
        format!("email-smtp.{}.amazonaws.com", self.ses_region)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edition {
    Ce,
    Ee,
}

impl Edition {
    pub fn as_str(self) -> &'static str {
        match self {
            Edition::Ce => "ce",
            Edition::Ee => "ee",
        }
    }
}

/// Which GitLab package to install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitlabVersion {
    /// The newest at first install; later runs do not upgrade on their own.
    Latest,
    /// Exactly this `major.minor.patch`.
    Pinned(String),
}

impl GitlabVersion {
    pub fn as_str(&self) -> &str {
        match self {
            GitlabVersion::Latest => "latest",
            GitlabVersion::Pinned(version) => version,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitlabSettings {
    pub edition: Edition,
    pub version: GitlabVersion,
    /// `None`: `http://` and the instance's Elastic IP or public name.
    pub external_url: Option<String>,
    /// Let's Encrypt for the external URL (only ever true with https).
    pub letsencrypt: bool,
    pub root_email: Option<String>,
    /// How long the install may run on the box.
    pub install_timeout: std::time::Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DataVolumeSettings {
    pub size_gib: i32,
    pub iops: i32,
    pub throughput_mibps: i32,
}

// AWS's documented gp3 limits, as raised in September 2025 (EC2 user
// guide, "Amazon EBS volume types",
// https://docs.aws.amazon.com/ebs/latest/userguide/general-purpose.html; the
// ModifyVolume API reference gives throughput up to 2,000 MiB/s).
pub(crate) const GP3_MAX_GIB: i64 = 65_536;
const GP3_MIN_IOPS: i64 = 3_000;
const GP3_MAX_IOPS: i64 = 80_000;
const GP3_MIN_THROUGHPUT: i64 = 125;
const GP3_MAX_THROUGHPUT: i64 = 2_000;
/// gp3 allows at most 0.25 MiB/s of throughput per provisioned IOPS.
const GP3_IOPS_PER_MIBPS: i64 = 4;
/// gp3 allows at most 500 provisioned IOPS per GiB of volume size.
const GP3_IOPS_PER_GIB: i64 = 500;
/// The OS, the GitLab package (about 2.5 GB) and its logs need room even
/// with the data on its own volume.
const MIN_ROOT_GIB: i64 = 20;
/// GitLab asks for at least 40 GB before any repository data.
pub(crate) const MIN_DATA_GIB: i64 = 40;

fn validate(raw: RawConfig, env: &BTreeMap<String, String>) -> Result<Settings, ConfigError> {
    let name = validate_name(raw.name)?;
    let region = validate_region(raw.region, env)?;
    let instance_type = validate_instance_type(raw.instance.instance_type)?;
    let os = validate_os(raw.instance.os)?;
    let ami = optional_id(
        "instance.ami",
        raw.instance.ami,
        "ami-",
        "an AMI id like ami-0123456789abcdef0",
    )?;
    let root_volume_gib = validate_range(
        "instance.root_volume_gib",
        raw.instance.root_volume_gib.unwrap_or(50),
        MIN_ROOT_GIB,
        GP3_MAX_GIB,
        "GiB",
    )?;
    let swap_gib = validate_range(
        "instance.swap_gib",
        raw.instance.swap_gib.unwrap_or(2),
        2,
        64,
        "GiB",
    )?;
    let subnet_id = optional_id(
        "instance.subnet_id",
        raw.instance.subnet_id,
        "subnet-",
        "a subnet id like subnet-0123456789abcdef0, or leave it empty for the default VPC",
    )?;
    let remote = validate_remote(&raw.access)?;
    let (access, ssh) = validate_access(raw.access)?;
    let http_cidrs = validate_cidrs(
        "network.http_cidrs",
        raw.network
            .http_cidrs
            .unwrap_or_else(|| vec!["0.0.0.0/0".into(), "::/0".into()]),
    )?;
    let data_volume = validate_data_volume(raw.data_volume)?;
    let gitlab = validate_gitlab(raw.gitlab)?;
    let verify_url = raw
        .verify
        .url
        .clone()
        .filter(|u| !u.is_empty())
        .map(|u| validate_url("verify.url", &u))
        .transpose()?;
    let email = validate_email(raw.email, &region)?;
    let elastic_ip = raw.network.elastic_ip.unwrap_or(true);
    check_letsencrypt_reachable(&gitlab, &http_cidrs)?;
    let dns_zone_id = validate_dns(raw.dns, &gitlab, elastic_ip)?;
    let verify_minutes = validate_range(
        "verify.timeout_minutes",
        raw.verify.timeout_minutes.unwrap_or(10),
        1,
        120,
        "minutes",
    )?;
    Ok(Settings {
        name,
        region,
        instance_type,
        os,
        ami,
        root_volume_gib,
        swap_gib,
        subnet_id,
        access,
        ssh,
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
    })
}

/// Let's Encrypt's HTTP-01 challenge comes from addresses it does not
/// publish, on port 80: anything less than the whole internet there makes
/// issuance and every renewal fail.
/// <https://letsencrypt.org/docs/faq/#what-ip-addresses-does-let-s-encrypt-use-to-validate-my-web-server>
fn check_letsencrypt_reachable(
    gitlab: &GitlabSettings,
    http_cidrs: &[IpNet],
) -> Result<(), ConfigError> {
    let internet: IpNet = "0.0.0.0/0".parse().expect("a valid CIDR");
    if !gitlab.letsencrypt || http_cidrs.contains(&internet) {
        return Ok(());
    }
    let listed: Vec<String> = http_cidrs.iter().map(ToString::to_string).collect();
    Err(bad(
        "network.http_cidrs",
        listed.join(","),
        "does not include 0.0.0.0/0, but gitlab.letsencrypt needs port 80 open to the whole internet: Let's Encrypt checks the name from addresses it does not publish, at issuance and at every renewal",
        "add \"0.0.0.0/0\" (and \"::/0\") to network.http_cidrs, or set gitlab.letsencrypt = false and bring your own certificate",
    ))
}

/// `[dns]`: a hosted zone needs a DNS name in the external URL and a
/// stable address (the Elastic IP) to point it at.
fn validate_dns(
    raw: RawDns,
    gitlab: &GitlabSettings,
    elastic_ip: bool,
) -> Result<Option<String>, ConfigError> {
    let Some(id) = optional_text(raw.route53_zone_id) else {
        return Ok(None);
    };
    let field = "dns.route53_zone_id";
    let zone_id = validate_zone_id(field, &id)?;
    let host = gitlab.external_url.as_deref().map(url_host);
    if host.is_none_or(|h| h.parse::<std::net::IpAddr>().is_ok()) {
        return Err(bad(
            field,
            &id,
            "needs gitlab.external_url with a DNS name to make the record for",
            "set gitlab.external_url = \"https://gitlab.example.com\" (a name in this zone), or remove dns.route53_zone_id",
        ));
    }
    if !elastic_ip {
        return Err(bad(
            field,
            &id,
            "needs network.elastic_ip = true: without it the instance's address changes at every stop and start, and the record would point at someone else's",
            "set network.elastic_ip = true, or remove dns.route53_zone_id",
        ));
    }
    Ok(Some(zone_id))
}

pub(crate) fn validate_name(name: Option<String>) -> Result<String, ConfigError> {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Err(bad(
            "name",
            "",
            "is required: it names the deployment and owns every resource",
            "set name = \"trial\" in glbox.toml, or GLBOX_NAME=trial (glbox init asks for everything and writes the file)",
        ));
    };
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !starts_with_letter || !rest_ok || name.len() > 31 {
        return Err(bad(
            "name",
            &name,
            "must be 1-31 characters of a-z, 0-9 and '-', starting with a letter",
            "pick a name like \"trial\" or \"team-gitlab\"",
        ));
    }
    Ok(name)
}

/// The AWS regions glbox accepts: the AWS General Reference's region table
/// ("AWS Region billing codes",
/// https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-region-billing-codes.html),
/// as of November 2026, for the partitions glbox builds ARNs for (aws,
/// aws-cn, aws-us-gov). A name outside it would only fail at the first AWS
/// call, with an endpoint error that does not say the name is wrong.
pub const AWS_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "ca-west-1",
    "mx-central-1",
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "sa-east-1",
    "us-gov-east-1",
    "us-gov-west-1",
    "cn-north-1",
    "cn-northwest-1",
];

/// Is `region` one of [`AWS_REGIONS`]? A typo (`us-east-9`, `eu-middle-1`)
/// is caught before any AWS call.
pub(crate) fn is_region_name(region: &str) -> bool {
    AWS_REGIONS.contains(&region)
}

fn validate_region(
    region: Option<String>,
    env: &BTreeMap<String, String>,
) -> Result<String, ConfigError> {
    // The AWS variables are the lowest layer above the built-in default, so a
    // user with AWS_REGION exported does not silently deploy to us-east-1.
    let region = region
        .or_else(|| env.get("AWS_REGION").cloned())
        .or_else(|| env.get("AWS_DEFAULT_REGION").cloned())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| DEFAULT_REGION.to_string());
    if !is_region_name(&region) {
        return Err(bad(
            "region",
            &region,
            "is not an AWS region",
            format!(
                "use one of AWS's region codes (as of November 2026): {}",
                AWS_REGIONS.join(", ")
            ),
        ));
    }
    Ok(region)
}

pub(crate) fn validate_instance_type(instance_type: Option<String>) -> Result<String, ConfigError> {
    let instance_type = instance_type.unwrap_or_else(|| "c5.2xlarge".into());
    let well_formed = instance_type.split_once('.').is_some_and(|(family, size)| {
        family.starts_with(|c: char| c.is_ascii_lowercase())
            && family
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !size.is_empty()
            && size
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    if !well_formed {
        return Err(bad(
            "instance.type",
            &instance_type,
            "is not an EC2 instance type",
            "use a type such as \"c5.2xlarge\" (GitLab's 1,000-user reference) or \"m7g.2xlarge\" (Graviton)",
        ));
    }
    Ok(instance_type)
}

fn validate_os(os: Option<String>) -> Result<Os, ConfigError> {
    match os.as_deref().unwrap_or("ubuntu-24.04") {
        "ubuntu-24.04" => Ok(Os::Ubuntu2404),
        "al2023" => Ok(Os::Al2023),
        other => Err(bad(
            "instance.os",
            other,
            "is not a supported operating system",
            "use \"ubuntu-24.04\" or \"al2023\"",
        )),
    }
}

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

struct Remote {
    host: Option<String>,
    port: u16,
    ready_timeout: std::time::Duration,
}

fn validate_remote(raw: &RawAccess) -> Result<Remote, ConfigError> {
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
    let port = validate_range("access.port", raw.port.unwrap_or(22), 1, 65535, "")?;
    let minutes = validate_range(
        "access.ready_timeout_minutes",
        raw.ready_timeout_minutes.unwrap_or(15),
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

fn validate_access(raw: RawAccess) -> Result<(AccessMethod, Option<SshAccess>), ConfigError> {
    let method = match raw.method.as_deref().unwrap_or("ssm") {
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
    let key_path = raw.ssh_public_key.filter(|p| !p.is_empty());
    let cidrs = raw.ssh_cidrs.unwrap_or_default();
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
        return Ok((method, None));
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
    Ok((
        method,
        Some(SshAccess {
            key,
            cidrs,
            user,
            host_key,
        }),
    ))
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

fn validate_cidrs(field: &str, cidrs: Vec<String>) -> Result<Vec<IpNet>, ConfigError> {
    let mut parsed: Vec<IpNet> = Vec::with_capacity(cidrs.len());
    for text in cidrs {
        let net: IpNet = text.trim().parse().map_err(|_| {
            bad(
                field,
                &text,
                "is not a CIDR block",
                "write addresses as CIDR blocks, e.g. \"203.0.113.7/32\" or \"2001:db8::/32\"",
            )
        })?;
        if net.trunc() != net {
            return Err(bad(
                field,
                &text,
                "has host bits set",
                format!("use the network address \"{}\"", net.trunc()),
            ));
        }
        if !parsed.contains(&net) {
            parsed.push(net);
        }
    }
    Ok(parsed)
}

fn validate_gitlab(raw: RawGitlab) -> Result<GitlabSettings, ConfigError> {
    let edition = match raw.edition.as_deref().unwrap_or("ce") {
        "ce" => Edition::Ce,
        "ee" => Edition::Ee,
        other => {
            return Err(bad(
                "gitlab.edition",
                other,
                "is not a GitLab edition",
                "use \"ce\" (Community Edition) or \"ee\" (Enterprise Edition)",
            ))
        }
    };
    let version = match raw.version.as_deref().unwrap_or("latest") {
        "latest" => GitlabVersion::Latest,
        pinned if is_version(pinned) => GitlabVersion::Pinned(pinned.to_string()),
        other => {
            return Err(bad(
                "gitlab.version",
                other,
                "is not a GitLab version",
                "use \"latest\" or a release such as \"18.5.1\"",
            ))
        }
    };
    let external_url = raw
        .external_url
        .filter(|u| !u.is_empty())
        .map(|u| validate_url("gitlab.external_url", &u))
        .transpose()?;
    let https = external_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let letsencrypt = raw.letsencrypt.unwrap_or(https);
    if letsencrypt && !https {
        return Err(bad(
            "gitlab.letsencrypt",
            "true",
            "needs an https external_url with a DNS name",
            "set gitlab.external_url = \"https://gitlab.example.com\", or letsencrypt = false",
        ));
    }
    if letsencrypt
        && external_url
            .as_deref()
            .is_some_and(|u| url_host(u).parse::<std::net::IpAddr>().is_ok())
    {
        return Err(bad(
            "gitlab.external_url",
            external_url.unwrap_or_default(),
            "is an IP address, and Let's Encrypt only certifies DNS names",
            "point a DNS name at the Elastic IP and use it, or set gitlab.letsencrypt = false",
        ));
    }
    let install_minutes = validate_range(
        "gitlab.install_timeout_minutes",
        raw.install_timeout_minutes.unwrap_or(60),
        1,
        2880,
        "minutes",
    )?;
    let root_email = raw.root_email.filter(|e| !e.is_empty());
    if let Some(email) = &root_email {
        if !is_plain_address(email) {
            return Err(bad(
                "gitlab.root_email",
                email,
                "is not an email address",
                "use an address like admin@example.com",
            ));
        }
    }
    Ok(GitlabSettings {
        edition,
        version,
        external_url,
        letsencrypt,
        root_email,
        install_timeout: std::time::Duration::from_secs(
            60 * u64::from(install_minutes.unsigned_abs()),
        ),
    })
}

/// A plain address (letters, digits, `.`, `_`, `+`, `-`): it lands inside
/// quotes in gitlab.rb, in Ruby and in the shell, so nothing else is let in.
fn is_plain_address(address: &str) -> bool {
    address
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".@_+-".contains(c))
        && address
            .split_once('@')
            .is_some_and(|(user, domain)| !user.is_empty() && is_domain(domain))
}

/// A DNS name with at least two labels, each 1-63 letters, digits or
/// hyphens, not starting or ending with a hyphen.
pub fn is_domain(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The address's domain is `domain` itself or one of its subdomains.
fn sends_as(address: &str, domain: &str) -> bool {
    address.rsplit_once('@').is_some_and(|(_, host)| {
        host.eq_ignore_ascii_case(domain)
            || host.to_ascii_lowercase().ends_with(&format!(".{domain}"))
    })
}

fn optional_text(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn validate_address(field: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    match optional_text(value) {
        Some(address) if !is_plain_address(&address) => Err(bad(
            field,
            &address,
            "is not a plain email address",
            "use an address like gitlab@example.com (letters, digits, . _ + - only)",
        )),
        other => Ok(other),
    }
}

fn validate_email(raw: RawEmail, region: &str) -> Result<Option<EmailSettings>, ConfigError> {
    // Checked even when email is off, so a typo shows before it is switched on.
    let from = validate_address("email.from", raw.from)?;
    let reply_to = validate_address("email.reply_to", raw.reply_to)?;
    let test_recipient = validate_address("email.test_recipient", raw.test_recipient)?;
    if !raw.enabled.unwrap_or(false) {
        return Ok(None);
    }
    let Some(domain) = optional_text(raw.domain).map(|d| d.to_ascii_lowercase()) else {
        return Err(bad(
            "email.domain",
            "",
            "is required when email.enabled = true: SES sends only as a verified domain",
            "set email.domain = \"example.com\" (a domain whose DNS you can change)",
        ));
    };
    if !is_domain(&domain) {
        return Err(bad(
            "email.domain",
            &domain,
            "is not a domain name",
            "use a DNS domain such as \"example.com\" or \"mail.example.com\", without @ or a URL",
        ));
    }
    let from = from.unwrap_or_else(|| format!("gitlab@{domain}"));
    if !sends_as(&from, &domain) {
        return Err(bad(
            "email.from",
            &from,
            &format!("is not an address at {domain}: SES refuses to send as a domain that is not verified"),
            format!("use an address at {domain} (for example gitlab@{domain}), or change email.domain"),
        ));
    }
    let ses_region = optional_text(raw.ses_region).unwrap_or_else(|| region.to_string());
    if !crate::email::smtp_password::is_smtp_region(&ses_region) {
        return Err(bad(
            "email.ses_region",
            &ses_region,
            "has no Amazon SES SMTP endpoint",
            format!(
                "set email.ses_region to one of: {}",
                crate::email::smtp_password::SMTP_REGIONS.join(", ")
            ),
        ));
    }
    let port = match raw.port.unwrap_or(587) {
        port @ (587 | 2587 | 465 | 2465) => port as u16,
        25 => {
            return Err(bad(
                "email.port",
                25,
                "is throttled by EC2 for outbound mail by default, so mail would stall",
                "use 587 (STARTTLS, the default) or 465 (TLS)",
            ))
        }
        other => {
            return Err(bad(
                "email.port",
                other,
                "is not an SES SMTP port",
                "use 587 or 2587 (STARTTLS), or 465 or 2465 (TLS)",
            ))
        }
    };
    let route53_zone_id = optional_text(raw.route53_zone_id)
        .map(|id| validate_zone_id("email.route53_zone_id", &id))
        .transpose()?;
    Ok(Some(EmailSettings {
        domain,
        from,
        reply_to,
        ses_region,
        port,
        route53_zone_id,
        test_recipient,
    }))
}

/// `Z0123456789ABC` or `/hostedzone/Z0123456789ABC`; the id alone is kept.
fn validate_zone_id(field: &str, id: &str) -> Result<String, ConfigError> {
    let bare = id.strip_prefix("/hostedzone/").unwrap_or(id);
    let ok = bare.len() >= 2
        && bare.len() <= 32
        && bare.starts_with('Z')
        && bare
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if ok {
        Ok(bare.to_string())
    } else {
        Err(bad(
            field,
            id,
            "is not a Route 53 hosted zone id",
            "use the id shown by `aws route53 list-hosted-zones` (like Z0123456789ABCDEFGHIJ), or leave it empty to publish the records yourself",
        ))
    }
}

pub(crate) fn is_version(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit()))
}

/// The host of a validated external URL.
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    }
}

pub(crate) fn validate_url(field: &str, url: &str) -> Result<String, ConfigError> {
    let fix = "use a URL like \"https://gitlab.example.com\" or \"http://203.0.113.7\"";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad(field, url, "has no scheme", fix));
    };
    if scheme != "http" && scheme != "https" {
        return Err(bad(field, url, "must start with http:// or https://", fix));
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') || rest.contains('?') || rest.contains('#') {
        return Err(bad(
            field,
            url,
            "has a path: glbox serves GitLab at the root of its host",
            "remove the path",
        ));
    }
    let host = url_host(rest);
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && !host.starts_with(['.', '-'])
        && !host.ends_with(['.', '-']);
    if !host_ok {
        return Err(bad(field, url, "does not have a valid host name", fix));
    }
    // GitLab's gitlab.rb quotes the URL in single quotes: keep it plain.
    Ok(format!("{scheme}://{rest}"))
}

fn validate_data_volume(raw: RawDataVolume) -> Result<DataVolumeSettings, ConfigError> {
    let size_gib = validate_range(
        "data_volume.size_gib",
        raw.size_gib.unwrap_or(100),
        MIN_DATA_GIB,
        GP3_MAX_GIB,
        "GiB",
    )?;
    let iops = validate_range(
        "data_volume.iops",
        raw.iops.unwrap_or(3000),
        GP3_MIN_IOPS,
        GP3_MAX_IOPS,
        "IOPS",
    )?;
    let throughput_mibps = validate_range(
        "data_volume.throughput_mibps",
        raw.throughput_mibps.unwrap_or(125),
        GP3_MIN_THROUGHPUT,
        GP3_MAX_THROUGHPUT,
        "MiB/s",
    )?;
    let max_iops = i64::from(size_gib) * GP3_IOPS_PER_GIB;
    if i64::from(iops) > max_iops {
        return Err(bad(
            "data_volume.iops",
            iops,
            &format!("exceeds gp3's 500 IOPS per GiB ({max_iops} IOPS at {size_gib} GiB)"),
            format!(
                "lower iops to {max_iops} or raise size_gib to {}",
                (i64::from(iops) + GP3_IOPS_PER_GIB - 1) / GP3_IOPS_PER_GIB
            ),
        ));
    }
    let max_throughput = i64::from(iops) / GP3_IOPS_PER_MIBPS;
    if i64::from(throughput_mibps) > max_throughput {
        return Err(bad(
            "data_volume.throughput_mibps",
            throughput_mibps,
            &format!("exceeds gp3's 0.25 MiB/s per IOPS ({max_throughput} MiB/s at {iops} IOPS)"),
            format!(
                "lower throughput_mibps to {max_throughput} or raise iops to {}",
                i64::from(throughput_mibps) * GP3_IOPS_PER_MIBPS
            ),
        ));
    }
    Ok(DataVolumeSettings {
        size_gib,
        iops,
        throughput_mibps,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn gp3_limits_are_aws_current_ones() {
        let volume = |size: i64, iops: i64, throughput: i64| {
            validate_data_volume(RawDataVolume {
                size_gib: Some(size),
                iops: Some(iops),
                throughput_mibps: Some(throughput),
            })
        };
        assert!(volume(65_536, 80_000, 2_000).is_ok());
        assert_eq!(
            volume(65_537, 3_000, 125).unwrap_err().field,
            "data_volume.size_gib"
        );
        assert_eq!(
            volume(1_000, 80_001, 125).unwrap_err().field,
            "data_volume.iops"
        );
        assert_eq!(
            volume(100, 60_000, 125).unwrap_err().field,
            "data_volume.iops"
        );
        assert_eq!(
            volume(1_000, 80_000, 2_001).unwrap_err().field,
            "data_volume.throughput_mibps"
        );
    }

    #[test]
    fn only_aws_regions_are_accepted_and_every_ses_region_is_one() {
        assert!(is_region_name("eu-west-1") && is_region_name("ap-southeast-7"));
        for typo in [
            "us-east-9",
            "eu-middle-1",
            "mars-1",
            "US-EAST-1",
            "us-east-1 ",
        ] {
            assert!(!is_region_name(typo), "{typo}");
        }
        for region in crate::email::smtp_password::SMTP_REGIONS {
            assert!(is_region_name(region), "{region}");
        }
    }

    use super::*;

    fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("glbox.toml");
        std::fs::write(&path, text).unwrap();
        let sources = Sources {
            explicit_file: Some(path),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            region_flag: None,
        };
        load(&sources)
    }

    #[test]
    fn defaults_fill_everything_but_the_name() {
        let s = load_text("name = \"trial\"\n", &[]).unwrap();
        assert_eq!(s.region, "us-east-1");
        assert_eq!(s.instance_type, "c5.2xlarge");
        assert_eq!(s.os, Os::Ubuntu2404);
        assert_eq!(s.access, AccessMethod::Ssm);
        assert!(s.ssh.is_none());
        assert_eq!(s.root_volume_gib, 50);
        assert_eq!(s.http_cidrs.len(), 2);
        assert!(s.elastic_ip);
        assert_eq!(
            s.data_volume,
            DataVolumeSettings {
                size_gib: 100,
                iops: 3000,
                throughput_mibps: 125
            }
        );
    }

    #[test]
    fn the_shipped_example_is_valid_and_states_the_defaults() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/glbox.toml");
        let from_example = load(&Sources {
            explicit_file: Some(example.into()),
            env: BTreeMap::new(),
            region_flag: None,
        })
        .unwrap();
        assert_eq!(from_example, load_text("name = \"trial\"\n", &[]).unwrap());
    }

    #[test]
    fn layers_apply_in_order_file_env_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("glbox.toml");
        std::fs::write(
            &path,
            "name = \"a\"\nregion = \"eu-west-1\"\n[data_volume]\nsize_gib = 200\n",
        )
        .unwrap();
        let mut sources = Sources {
            explicit_file: Some(path),
            env: [
                ("GLBOX_NAME".to_string(), "b".to_string()),
                ("GLBOX_REGION".to_string(), "eu-west-2".to_string()),
                ("AWS_REGION".to_string(), "ap-south-1".to_string()),
            ]
            .into(),
            region_flag: None,
        };
        let s = load(&sources).unwrap();
        assert_eq!((s.name.as_str(), s.region.as_str()), ("b", "eu-west-2"));
        assert_eq!(s.data_volume.size_gib, 200);
        sources.region_flag = Some("eu-north-1".into());
        assert_eq!(load(&sources).unwrap().region, "eu-north-1");
    }

    #[test]
    fn a_dns_zone_with_a_name_and_an_elastic_ip_is_accepted() {
        let s = load_text(
            "name = \"a\"\n[dns]\nroute53_zone_id = \"/hostedzone/Z123\"\n[gitlab]\nexternal_url = \"https://git.example.com\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(s.dns_zone_id.as_deref(), Some("Z123"));
        let s = load_text(
            "name = \"a\"\n[network]\nhttp_cidrs = [\"0.0.0.0/0\"]\n[gitlab]\nexternal_url = \"https://git.example.com\"\n",
            &[],
        )
        .unwrap();
        assert!(
            s.gitlab.letsencrypt,
            "port 80 open to all of IPv4 is enough"
        );
    }

    #[test]
    fn gitlab_defaults_and_https_turns_on_letsencrypt() {
        let s = load_text("name = \"a\"\n", &[]).unwrap();
        assert_eq!(s.gitlab.edition, Edition::Ce);
        assert_eq!(s.gitlab.version, GitlabVersion::Latest);
        assert_eq!(s.gitlab.external_url, None);
        assert!(!s.gitlab.letsencrypt);
        let s = load_text(
            "name = \"a\"\n[gitlab]\nedition = \"ee\"\nversion = \"18.5.1\"\nexternal_url = \"https://git.example.com/\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(s.gitlab.version, GitlabVersion::Pinned("18.5.1".into()));
        assert_eq!(
            s.gitlab.external_url.as_deref(),
            Some("https://git.example.com")
        );
        assert!(s.gitlab.letsencrypt);
        let s = load_text(
            "name = \"a\"\n[gitlab]\nexternal_url = \"https://git.example.com:8443\"\nletsencrypt = false\n",
            &[],
        )
        .unwrap();
        assert!(!s.gitlab.letsencrypt);
        assert_eq!(url_host("https://git.example.com:8443"), "git.example.com");
    }

    #[test]
    fn aws_region_variable_is_the_default_region() {
        let s = load_text("name = \"a\"\n", &[("AWS_REGION", "eu-central-1")]).unwrap();
        assert_eq!(s.region, "eu-central-1");
    }

    #[test]
    fn env_lists_and_booleans_parse() {
        let s = load_text(
            "name = \"a\"\n",
            &[
                ("GLBOX_NETWORK_HTTP_CIDRS", "10.0.0.0/8, 192.168.0.0/16"),
                ("GLBOX_NETWORK_ELASTIC_IP", "false"),
            ],
        )
        .unwrap();
        assert_eq!(s.http_cidrs.len(), 2);
        assert!(!s.elastic_ip);
    }

    fn error_of(text: &str, env: &[(&str, &str)]) -> ConfigError {
        load_text(text, env).expect_err("configuration should be rejected")
    }

    #[test]
    fn bad_values_name_field_value_and_fix() {
        // (config file, environment, field named, value quoted)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case] = &[
            ("name = \"Trial\"", &[], "name", "Trial"),
            ("name = \"a_b\"", &[], "name", "a_b"),
            ("name = \"abcdefghijabcdefghijabcdefghijab\"", &[], "name", "abcdefghij"),
            ("", &[], "name", ""),
            ("name = \"a\"\nregion = \"us-east\"", &[], "region", "us-east"),
            ("name = \"a\"\n[instance]\ntype = \"c5\"", &[], "instance.type", "c5"),
            ("name = \"a\"\n[instance]\nos = \"debian\"", &[], "instance.os", "debian"),
            ("name = \"a\"\n[instance]\nami = \"ami-xyz\"", &[], "instance.ami", "ami-xyz"),
            ("name = \"a\"\n[instance]\nroot_volume_gib = 5", &[], "instance.root_volume_gib", "5"),
            ("name = \"a\"\n[instance]\nsubnet_id = \"sub-1\"", &[], "instance.subnet_id", "sub-1"),
            ("name = \"a\"\n[access]\nmethod = \"telnet\"", &[], "access.method", "telnet"),
            ("name = \"a\"\n[access]\nssh_cidrs = [\"1.2.3.4/32\"]", &[], "access.ssh_cidrs", "1.2.3.4"),
            ("name = \"a\"\n[access]\nmethod = \"ssh\"\nssh_cidrs = [\"1.2.3.4/33\"]", &[], "access.ssh_cidrs", "1.2.3.4/33"),
            ("name = \"a\"\n[access]\nmethod = \"ssh\"\nssh_public_key = \"/nonexistent/key.pub\"", &[], "access.ssh_public_key", "/nonexistent"),
            ("name = \"a\"\n[network]\nhttp_cidrs = [\"10.0.0.1/8\"]", &[], "network.http_cidrs", "10.0.0.1/8"),
            ("name = \"a\"\n[network]\nhttp_cidrs = [\"everywhere\"]", &[], "network.http_cidrs", "everywhere"),
            ("name = \"a\"\n[data_volume]\nsize_gib = 70000", &[], "data_volume.size_gib", "70000"),
            ("name = \"a\"\n[data_volume]\niops = 100", &[], "data_volume.iops", "100"),
            ("name = \"a\"\n[data_volume]\nthroughput_mibps = 1000", &[], "data_volume.throughput_mibps", "1000"),
            ("name = \"a\"", &[("GLBOX_DATA_VOLUME_SIZE_GIB", "big")], "GLBOX_DATA_VOLUME_SIZE_GIB", "big"),
            ("name = \"a\"", &[("GLBOX_INSTANCE_TYP", "x")], "GLBOX_INSTANCE_TYP", ""),
            ("name = \"a\"\n[gitlab]\nedition = \"premium\"", &[], "gitlab.edition", "premium"),
            ("name = \"a\"\n[gitlab]\nversion = \"18.5\"", &[], "gitlab.version", "18.5"),
            ("name = \"a\"\n[gitlab]\nexternal_url = \"gitlab.example.com\"", &[], "gitlab.external_url", "gitlab.example.com"),
            ("name = \"a\"\n[gitlab]\nexternal_url = \"ftp://x.example\"", &[], "gitlab.external_url", "ftp://"),
            ("name = \"a\"\n[gitlab]\nexternal_url = \"https://x.example/gitlab\"", &[], "gitlab.external_url", "/gitlab"),
            ("name = \"a\"\n[gitlab]\nexternal_url = \"https://bad_host\"", &[], "gitlab.external_url", "bad_host"),
            ("name = \"a\"\n[gitlab]\nexternal_url = \"https://203.0.113.7\"", &[], "gitlab.external_url", "203.0.113.7"),
            ("name = \"a\"\n[gitlab]\nletsencrypt = true", &[], "gitlab.letsencrypt", "true"),
            ("name = \"a\"\n[gitlab]\nroot_email = \"root\"", &[], "gitlab.root_email", "root"),
            ("name = \"a\"\n[network]\nhttp_cidrs = [\"10.0.0.0/8\", \"::/0\"]\n[gitlab]\nexternal_url = \"https://git.example.com\"", &[], "network.http_cidrs", "10.0.0.0/8,::/0"),
            ("name = \"a\"\n[dns]\nroute53_zone_id = \"example.com\"\n[gitlab]\nexternal_url = \"https://git.example.com\"", &[], "dns.route53_zone_id", "example.com"),
            ("name = \"a\"\n[dns]\nroute53_zone_id = \"Z123\"", &[], "dns.route53_zone_id", "Z123"),
            ("name = \"a\"\n[dns]\nroute53_zone_id = \"Z123\"\n[gitlab]\nexternal_url = \"http://203.0.113.7\"", &[], "dns.route53_zone_id", "Z123"),
            ("name = \"a\"\n[dns]\nroute53_zone_id = \"Z123\"\n[network]\nelastic_ip = false\n[gitlab]\nexternal_url = \"https://git.example.com\"", &[], "dns.route53_zone_id", "Z123"),
            ("name = \"a\"\n[verify]\nurl = \"127.0.0.1:8080\"", &[], "verify.url", "127.0.0.1:8080"),
            ("name = \"a\"\n[gitlab]\nroot_email = \"o'brien@example.com\"", &[], "gitlab.root_email", "o'brien"),
        ];
        for (text, env, field, value) in cases {
            let err = error_of(text, env);
            assert_eq!(&err.field, field, "for {text:?}: {err}");
            assert!(err.value.contains(value), "for {text:?}: {err}");
            assert!(!err.fix.is_empty(), "for {text:?}: {err}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_toml_are_rejected_with_the_key() {
        let err = error_of("name = \"a\"\n[instance]\nsize = \"big\"", &[]);
        assert!(err.problem.contains("unknown field `size`"), "{err}");
        let err = error_of("name = \"a\"\ncolour = 1", &[]);
        assert!(err.problem.contains("colour"), "{err}");
        let err = error_of("name = ", &[]);
        assert!(err.problem.contains("not valid TOML"), "{err}");
        let err = error_of("name = \"a\"\n[data_volume]\nsize_gib = \"big\"", &[]);
        assert!(err.problem.contains("invalid type"), "{err}");
    }

    #[test]
    fn a_missing_explicit_config_file_is_an_error() {
        let sources = Sources {
            explicit_file: Some("/nonexistent/glbox.toml".into()),
            env: [("GLBOX_NAME".to_string(), "a".to_string())].into(),
            region_flag: None,
        };
        assert_eq!(load(&sources).unwrap_err().field, "--config");
    }

    #[test]
    fn ssh_with_a_real_public_key_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id.pub");
        std::fs::write(
            &key,
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGj9ACCVXa4HVhTKD1CCXfPfBm4PNqB+p0Dw8ycZiPx4 me@host\n",
        )
        .unwrap();
        let text = format!(
            "name = \"a\"\n[access]\nmethod = \"ssh\"\nssh_public_key = \"{}\"\nssh_cidrs = [\"203.0.113.7/32\"]",
            key.display()
        );
        let s = load_text(&text, &[]).unwrap();
        let ssh = s.ssh.unwrap();
        assert!(matches!(ssh.key, SshKeySource::File { .. }));
        assert_eq!(ssh.cidrs, vec!["203.0.113.7/32".parse::<IpNet>().unwrap()]);

        std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n").unwrap();
        let err = load_text(&text, &[]).unwrap_err();
        assert!(err.fix.contains("private key"), "{err}");
    }
}
