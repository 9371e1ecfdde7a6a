//! The one schema of `glbox.toml`: every key, its TOML type, its default
//! and its description, written once in `schema!`. From it come the serde
//! structs the file and the `GLBOX_*` variables are read into, the key
//! table the variables are matched against, and the commented file the
//! wizard writes.
//!
//! Values stay as the user wrote them (strings and plain integers) so that
//! validation can name the field, the value and the fix in one consistent
//! message instead of surfacing a deserializer's wording.

use serde::{Deserialize, Serialize};

/// How a key's value is written, and so how an environment variable's text
/// becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    Boolean,
    List,
}

/// One key of the schema.
#[derive(Debug)]
pub struct Key {
    /// The key's name inside its section (`type` in `[instance]`).
    pub name: &'static str,
    pub kind: Kind,
    /// The description, one doc-comment line each.
    pub doc: &'static [&'static str],
}

/// A section of the schema: `""` for the top-level keys.
pub struct Section {
    pub name: &'static str,
    pub keys: &'static [Key],
}

impl Section {
    /// `instance.type`, or `name` for a top-level key.
    pub fn path(&self, key: &Key) -> String {
        if self.name.is_empty() {
            key.name.to_string()
        } else {
            format!("{}.{}", self.name, key.name)
        }
    }
}

/// The Rust type that holds a value of each [`Kind`], and how a default is
/// written for it.
pub trait Value: Clone {
    const KIND: Kind;
    type Default;
    fn from_default(default: Self::Default) -> Self;
}

impl Value for String {
    const KIND: Kind = Kind::Text;
    type Default = &'static str;
    fn from_default(default: &'static str) -> Self {
        default.to_string()
    }
}

impl Value for i64 {
    const KIND: Kind = Kind::Integer;
    type Default = i64;
    fn from_default(default: i64) -> Self {
        default
    }
}

impl Value for bool {
    const KIND: Kind = Kind::Boolean;
    type Default = bool;
    fn from_default(default: bool) -> Self {
        default
    }
}

impl Value for Vec<String> {
    const KIND: Kind = Kind::List;
    type Default = &'static [&'static str];
    fn from_default(default: &'static [&'static str]) -> Self {
        default.iter().map(|item| item.to_string()).collect()
    }
}

/// A key's name: the field's, or the one given with `as "name"` where the
/// TOML name is a Rust keyword.
macro_rules! key_name {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident $key:literal) => {
        $key
    };
}

/// One serde struct for a table of keys. Every field is optional (`None`:
/// not given); a field with a default also gets a method of its name that
/// returns the value or the default.
macro_rules! table {
    (
        $(#[doc = $doc:literal])*
        $Struct:ident {
            $(
                $(#[doc = $fdoc:literal])*
                $field:ident $(as $key:literal)? : $ty:ty $(= $default:expr)?;
            )*
        }
        $(tables { $($table:ident: $Table:ty),* })?
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $Struct {
            $(
                $(#[doc = $fdoc])*
                $(#[serde(rename = $key)])?
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
            $($(pub $table: $Table,)*)?
        }

        impl $Struct {
            pub const KEYS: &'static [Key] = &[$(Key {
                name: key_name!($field $($key)?),
                kind: <$ty as Value>::KIND,
                doc: &[$($fdoc),*],
            }),*];

            $($(
                pub fn $field(&self) -> $ty {
                    self.$field
                        .clone()
                        .unwrap_or_else(|| <$ty as Value>::from_default($default))
                }
            )?)*
        }
    };
}

/// The whole schema: the top-level keys, the sections of a single box's
/// file (fields of the top-level struct), and the sections read apart
/// (`[lab]`, which only `glbox lab` takes).
macro_rules! schema {
    (
        $(#[doc = $doc:literal])*
        $Top:ident { $($top:tt)* }
        sections {
            $($(#[doc = $sdoc:literal])* $section:ident: $Struct:ident { $($keys:tt)* })*
        }
        apart {
            $($(#[doc = $adoc:literal])* $apart:ident: $Apart:ident { $($akeys:tt)* })*
        }
    ) => {
        table! {
            $(#[doc = $doc])*
            $Top { $($top)* }
            tables { $($section: $Struct),* }
        }
        $(table! { $(#[doc = $sdoc])* $Struct { $($keys)* } })*
        $(table! { $(#[doc = $adoc])* $Apart { $($akeys)* } })*

        /// Every section, in the order the keys are listed and written.
        pub const SECTIONS: &[Section] = &[
            Section { name: "", keys: $Top::KEYS },
            $(Section { name: stringify!($section), keys: $Struct::KEYS },)*
            $(Section { name: stringify!($apart), keys: $Apart::KEYS },)*
        ];
    };
}

schema! {
    /// A `glbox.toml` for one box, as written.
    RawConfig {
        /// The deployment's name: every AWS resource is tagged glbox:deployment=<name>.
        name: String;
        /// The AWS region. Default: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1.
        region: String;
    }
    sections {
        /// `[instance]`: the EC2 instance.
        instance: RawInstance {
            /// GitLab's reference for up to 1,000 users is 8 vCPU and 16 GiB
            /// (c5.2xlarge, or c7g.2xlarge on Graviton); smaller types suit trials only.
            instance_type as "type": String = "c5.2xlarge";
            /// "ubuntu-24.04" or "al2023".
            os: String = "ubuntu-24.04";
            /// An explicit AMI id overrides `os`. Changing it replaces the instance.
            ami: String;
            /// Encrypted gp3 root volume, 20-65536 GiB.
            root_volume_gib: i64 = 50;
            /// Swap file made at first boot (GitLab asks for at least 2 GiB), 2-64 GiB.
            swap_gib: i64 = 2;
            /// Empty: the default VPC's subnet in a zone that offers the instance type.
            subnet_id: String;
        }
        /// `[access]`: how glbox reaches the box.
        access: RawAccess {
            /// "ssm" (recommended: no inbound SSH port at all) or "ssh".
            method: String = "ssm";
            /// ssh only: an OpenSSH public key file. Empty: glbox generates an ed25519 key pair.
            ssh_public_key: String;
            /// ssh only: who may connect on port 22. Empty: your public IP /32.
            ssh_cidrs: Vec<String> = &[];
            /// ssh only: where glbox connects, when not the instance's public address.
            host: String;
            /// The port glbox connects to over SSH.
            port: i64 = 22;
            /// ssh only: the login user. Empty: ubuntu (Ubuntu) or ec2-user (AL2023).
            ssh_user: String;
            /// ssh only: the server's public host key file. Empty: read from the console.
            ssh_host_key: String;
            /// How long to wait for the SSM agent (or sshd) to answer.
            ready_timeout_minutes: i64 = 15;
        }
        /// `[network]`: who reaches GitLab, and at which address.
        network: RawNetwork {
            /// Who may reach GitLab on ports 80 and 443.
            http_cidrs: Vec<String> = &["0.0.0.0/0", "::/0"];
            /// A stable public address that survives instance replacement.
            elastic_ip: bool = true;
        }
        /// `[data_volume]`: the volume GitLab's data lives on.
        data_volume: RawDataVolume {
            /// The encrypted gp3 volume for /var/opt/gitlab, 40-65536 GiB. It can grow,
            /// never shrink, and glbox down keeps it unless --delete-data.
            size_gib: i64 = 100;
            /// 3000-80000, at most 500 per GiB.
            iops: i64 = 3000;
            /// 125-2000 MiB/s, at most iops / 4.
            throughput_mibps: i64 = 125;
        }
        /// `[gitlab]`: the GitLab package and where it is served.
        gitlab: RawGitlab {
            /// "ce" (Community Edition) or "ee" (Enterprise Edition, free until licensed).
            edition: String = "ce";
            /// "latest" (the newest at first install) or a release such as "18.5.1".
            version: String = "latest";
            /// The address users open GitLab at (a DNS name pointing at the Elastic IP).
            /// Empty: http:// and the Elastic IP's address.
            external_url: String;
            /// Let's Encrypt needs an https:// external_url with a DNS name that points here.
            letsencrypt: bool;
            /// The root user's email address (empty: GitLab's default).
            root_email: String;
            /// How long the install may run on the box before it is stopped.
            install_timeout_minutes: i64 = 60;
            /// A Ruby file of your own gitlab.rb settings (LDAP, OmniAuth, ...), relative to
            /// this file's folder; glbox adds it after its own. Secrets: `glbox secret set`.
            extra_config: String;
        }
        /// `[verify]`: the health checks after an install.
        verify: RawVerify {
            /// How long the health checks wait for GitLab to become ready (1-120).
            timeout_minutes: i64 = 10;
            /// Where the outside check asks for the sign-in page. Empty: external_url.
            url: String;
        }
        /// `[email]`: outbound email through Amazon SES.
        email: RawEmail {
            /// Outbound email through Amazon SES as email.domain: set enabled = true and
            /// domain = "..."; glbox prints the DNS records to publish (glbox email dns).
            enabled: bool = false;
            /// The sending domain (one whose DNS you can change).
            domain: String;
            /// Empty: gitlab@<domain>. Must be an address at the domain (or a subdomain).
            from: String;
            /// Empty: GitLab's default reply-to address.
            reply_to: String;
            /// Where the SES identity and SMTP endpoint are. Empty: the region above.
            ses_region: String;
            /// 587 (STARTTLS) or 465 (TLS); 2587 and 2465 work too.
            port: i64 = 587;
            /// A Route 53 hosted zone for the domain: glbox writes the records itself.
            route53_zone_id: String;
            /// After an install or a change, GitLab sends a test mail here.
            test_recipient: String;
        }
        /// `[dns]`: the external URL's address record.
        dns: RawDns {
            /// A Route 53 hosted zone holding external_url's name: glbox points the name
            /// at the Elastic IP itself. Empty: you publish the record.
            route53_zone_id: String;
        }
        /// `[backup]`: snapshots of the data volume and GitLab backups in S3. Off in a
        /// file without this section; the wizard turns both on.
        backup: RawBackup {
            /// Snapshots of the data volume, taken by AWS (Data Lifecycle Manager):
            /// "daily", "hourly" or "off".
            snapshots: String = "off";
            /// How many scheduled snapshots AWS keeps (1-1000); older ones are deleted.
            snapshot_keep: i64 = 7;
            /// Nightly `gitlab-backup` to a bucket of the deployment's own (encrypted,
            /// versioned, private), with gitlab.rb and gitlab-secrets.json beside it.
            s3: bool = false;
            /// How many days S3 keeps each backup (1-3650).
            s3_keep_days: i64 = 30;
            /// When the nightly backup runs on the box and the daily snapshot is taken,
            /// "HH:MM" in UTC.
            s3_time: String = "03:00";
            /// Another region each scheduled snapshot is copied to (empty: none).
            copy_to_region: String;
        }
    }
    apart {
        /// `[lab]`: a training lab of seats (`glbox lab`), validated by `lab::settings`.
        lab: RawLab {
            /// The lab's name (the deployment name of every seat).
            name: String;
            /// How many seats (one GitLab box per student), 1-200.
            seats: i64;
            /// When the lab may be removed: "90m", "8h", "2d".
            expires_in: String;
            /// Seats on spot capacity.
            spot: bool = false;
            /// At most this many bootstraps (and checks) in flight at once;
            /// the default, 200 (the most seats a lab has), is every seat.
            concurrency: i64 = 200;
        }
    }
}

/// The built-in region where no source names one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// `raw` as a commented TOML file: each key given, under its section, after
/// its description (and the `note` for it, if any).
pub fn commented_toml(raw: &RawConfig, note: impl Fn(&str) -> Option<String>) -> String {
    let table = toml::Table::try_from(raw).expect("the raw schema serializes to TOML");
    let mut text = String::new();
    for section in SECTIONS {
        let values = if section.name.is_empty() {
            Some(&table)
        } else {
            table.get(section.name).and_then(toml::Value::as_table)
        };
        let given: Vec<(&Key, &toml::Value)> = section
            .keys
            .iter()
            .filter_map(|key| Some((key, values?.get(key.name)?)))
            .collect();
        if given.is_empty() {
            continue;
        }
        text.push('\n');
        if !section.name.is_empty() {
            text.push_str(&format!("[{}]\n", section.name));
        }
        for (key, value) in given {
            if let Some(note) = note(&section.path(key)) {
                text.push_str(&format!("# {note}\n"));
            }
            for line in key.doc {
                text.push_str(&format!("#{line}\n"));
            }
            text.push_str(&format!("{} = {value}\n", key.name));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each key of the schema, as `section.key` (`key` at the top).
    fn paths() -> Vec<String> {
        SECTIONS
            .iter()
            .flat_map(|section| section.keys.iter().map(|key| section.path(key)))
            .collect()
    }

    #[test]
    fn every_key_is_described_and_shown_in_an_example() {
        let examples = [
            include_str!("../../examples/glbox.toml"),
            include_str!("../../examples/lab.toml"),
        ];
        for section in SECTIONS {
            for key in section.keys {
                let path = section.path(key);
                assert!(!key.doc.is_empty(), "{path} has no description");
                let shown = examples.iter().any(|example| {
                    example.lines().any(|line| {
                        let line = line.trim_start_matches("# ");
                        line.starts_with(&format!("{} =", key.name))
                    })
                });
                assert!(shown, "{path} is in no example file");
            }
        }
        assert_eq!(paths().len(), 50);
    }

    #[test]
    fn the_commented_file_reads_back_to_the_same_values() {
        let mut raw = RawConfig {
            name: Some("a\"b it's back\\slash\nline".into()),
            region: Some(String::new()),
            ..RawConfig::default()
        };
        raw.access.ssh_cidrs = Some(vec!["203.0.113.7/32".into()]);
        raw.data_volume.size_gib = Some(250);
        raw.network.elastic_ip = Some(false);
        let text = commented_toml(&raw, |path| (path == "name").then(|| "why".into()));
        assert!(text.contains("# why\n#"), "{text}");
        let table: toml::Table = text.parse().unwrap();
        assert_eq!(RawConfig::deserialize(table).unwrap(), raw);
        assert!(
            !text.contains("[gitlab]"),
            "an empty section is left out:\n{text}"
        );
    }

    #[test]
    fn defaults_come_from_the_schema_and_given_values_win() {
        let mut volume = RawDataVolume::default();
        assert_eq!(volume.size_gib(), 100);
        volume.size_gib = Some(200);
        assert_eq!(volume.size_gib(), 200);
        assert_eq!(RawNetwork::default().http_cidrs(), ["0.0.0.0/0", "::/0"]);
    }
}
