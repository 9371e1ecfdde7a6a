//! The validated configuration: what every command works from. Each value
//! is checked and every default filled, so nothing below asks again.

use std::path::PathBuf;

use ipnet::IpNet;

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

impl AccessMethod {
    /// As `access.method` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMethod::Ssm => "ssm",
            AccessMethod::Ssh => "ssh",
        }
    }
}

/// How glbox reaches the box. The SSH details exist only in SSH mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Session Manager: no inbound port, no key.
    Ssm,
    Ssh(SshAccess),
}

impl Access {
    /// Which method, without its details.
    pub fn method(&self) -> AccessMethod {
        match self {
            Access::Ssm => AccessMethod::Ssm,
            Access::Ssh(_) => AccessMethod::Ssh,
        }
    }
}

/// `settings.access == AccessMethod::Ssh` where only the method matters.
impl PartialEq<AccessMethod> for Access {
    fn eq(&self, method: &AccessMethod) -> bool {
        self.method() == *method
    }
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
    pub access: Access,
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
    /// `[backup]`: scheduled snapshots and GitLab backups in S3.
    pub backup: BackupSettings,
}

impl Settings {
    /// The SSH details, in SSH mode.
    pub fn ssh_access(&self) -> Option<&SshAccess> {
        match &self.access {
            Access::Ssh(ssh) => Some(ssh),
            Access::Ssm => None,
        }
    }

    /// The SSH details to complete (the caller's address), in SSH mode.
    pub fn ssh_access_mut(&mut self) -> Option<&mut SshAccess> {
        match &mut self.access {
            Access::Ssh(ssh) => Some(ssh),
            Access::Ssm => None,
        }
    }
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
    /// `gitlab.extra_config`: the user's own gitlab.rb settings.
    pub extra_config: Option<ExtraConfig>,
    /// The secrets stored for the extra settings (`glbox secret set`), as
    /// SSM reports them when the deployment is loaded; empty until then
    /// and without `extra_config`. Not from the file: AWS holds them.
    pub secrets: Vec<StoredSecret>,
    /// `up --replace-gitlab-rb`: a gitlab.rb changed by hand on the box is
    /// replaced (a copy is kept there) instead of refused. Not from the file.
    pub replace_gitlab_rb: bool,
}

/// `gitlab.extra_config`, read when the configuration is loaded: its text
/// goes into the bootstrap script, so a change to it re-runs the bootstrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraConfig {
    /// Where it was read from (for messages).
    pub path: std::path::PathBuf,
    pub text: String,
}

impl ExtraConfig {
    /// The secret names the text reads (`.../glbox-secrets/<name>`), sorted,
    /// each once: glbox warns about those not stored.
    pub fn secret_references(&self) -> Vec<String> {
        const MARK: &str = "glbox-secrets/";
        let mut names: Vec<String> = self
            .text
            .match_indices(MARK)
            .map(|(at, _)| {
                self.text[at + MARK.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect::<String>()
            })
            .filter(|name| !name.is_empty())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// One secret under the deployment's `secrets/` path: its name and the
/// parameter's version (a new value is a new version, so it changes the
/// bootstrap's digest; the value itself is only ever read on the box).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub name: String,
    pub version: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DataVolumeSettings {
    pub size_gib: i32,
    pub iops: i32,
    pub throughput_mibps: i32,
}

/// `[backup]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSettings {
    /// How often AWS snapshots the data volume; `None`: never.
    pub snapshots: Option<SnapshotSchedule>,
    /// How many scheduled snapshots AWS keeps.
    pub snapshot_keep: u32,
    /// Nightly GitLab backups to the deployment's bucket; `None`: off.
    pub s3: Option<S3Backups>,
    /// When the nightly backup runs and the daily snapshot is taken (UTC).
    pub time: TimeOfDay,
    /// Another region each scheduled snapshot is copied to.
    pub copy_to_region: Option<String>,
}

impl BackupSettings {
    /// No snapshots, no S3 backups: what a file without `[backup]` means.
    pub fn off() -> Self {
        BackupSettings {
            snapshots: None,
            snapshot_keep: 7,
            s3: None,
            time: TimeOfDay { hour: 3, minute: 0 },
            copy_to_region: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotSchedule {
    Daily,
    Hourly,
}

impl SnapshotSchedule {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotSchedule::Daily => "daily",
            SnapshotSchedule::Hourly => "hourly",
        }
    }

    /// The interval between two scheduled snapshots, in hours.
    pub fn interval_hours(self) -> u32 {
        match self {
            SnapshotSchedule::Daily => 24,
            SnapshotSchedule::Hourly => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S3Backups {
    /// Days S3 keeps each backup before its lifecycle rule expires it.
    pub keep_days: u32,
}

/// A time of day in UTC, as `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay {
    pub hour: u8,
    pub minute: u8,
}

impl std::fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}
