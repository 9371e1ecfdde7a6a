//! Names and tags. AWS tags are glbox's only state: every resource carries
//! the deployment's tags from the call that creates it, and glbox finds its
//! resources by those tags on every run.

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

pub const TAG_DEPLOYMENT: &str = "glbox:deployment";
pub const TAG_MANAGED_BY: &str = "glbox:managed-by";
pub const TAG_ROLE: &str = "glbox:role";
/// The `os` an instance was launched with: a changed `os` means replacement.
pub const TAG_OS: &str = "glbox:os";
/// Instance tag holding the digest of the last bootstrap that succeeded:
/// the same digest means GitLab already has this configuration, so a
/// repeated `up` sends nothing to the box.
pub const TAG_BOOTSTRAP: &str = "glbox:bootstrap";
pub const MANAGED_BY: &str = "glbox";
/// Owns a training lab's resources instead of `glbox:deployment`, so the
/// single-box commands never see (or remove) a lab's seats.
pub const TAG_LAB: &str = "glbox:lab";
/// The seat number (1-based) of a lab resource that belongs to one seat.
pub const TAG_SEAT: &str = "glbox:seat";
/// When a lab may be reaped (RFC 3339, UTC).
pub const TAG_EXPIRES_AT: &str = "glbox:expires-at";
/// On a lab seat's parameters: the ARN of the seat's instance, the only
/// one the lab role lets read them (see `resources::iam::parameters_policy`).
pub const TAG_INSTANCE: &str = "glbox:instance";
/// Why glbox took a snapshot: "manual" (`glbox backup`), "pre-upgrade"
/// (before `gitlab.version` was raised), "pre-restore" (the data before
/// `glbox restore --backup` replaced it), or on a data volume that a
/// restore swapped out, "replaced".
/// GitLab uploads each backup to its bucket's root as
/// `<backup id>_gitlab_backup.tar`: its upload (fog) takes a bucket, not a
/// prefix (gitlab-org/gitlab#14302), so the instance role's write access
/// is scoped by this suffix.
pub const BACKUP_ARCHIVE_SUFFIX: &str = "_gitlab_backup.tar";
/// Where the box puts gitlab.rb and gitlab-secrets.json beside each backup
/// (`config/<backup id>/`): GitLab's backup does not hold them.
pub const BACKUP_CONFIG_PREFIX: &str = "config/";
pub const TAG_SNAPSHOT_REASON: &str = "glbox:snapshot-reason";
/// Instance tag holding the GitLab version the last successful bootstrap
/// reported (written with `glbox:bootstrap`): where a raised
/// `gitlab.version` starts its upgrade path.
pub const TAG_GITLAB_VERSION: &str = "glbox:gitlab-version";
/// On a pre-upgrade snapshot: the GitLab versions of the upgrade it was
/// taken before, so a resumed `up` finds it instead of taking another.
pub const TAG_UPGRADE_FROM: &str = "glbox:upgrade-from";
pub const TAG_UPGRADE_TO: &str = "glbox:upgrade-to";
/// On a data volume a restore swapped out (its role then
/// [`Role::ReplacedDataVolume`]): when (RFC 3339, UTC) ...
pub const TAG_REPLACED_AT: &str = "glbox:replaced-at";
/// ... and by which restore: `restore of <snapshot> onto <new volume>`.
pub const TAG_REPLACED_BY: &str = "glbox:replaced-by";

/// What a resource is for within one deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Instance,
    SecurityGroup,
    DataVolume,
    /// A data volume `glbox restore --snapshot` swapped out: kept, never
    /// deleted by glbox, no longer the deployment's data volume.
    ReplacedDataVolume,
    RootVolume,
    ElasticIp,
    KeyPair,
    InstanceRole,
    FinalSnapshot,
    /// A snapshot glbox took on request (`glbox backup`) or before an
    /// upgrade; its reason is in [`TAG_SNAPSHOT_REASON`].
    Snapshot,
    /// The Data Lifecycle Manager policy that snapshots the data volume.
    SnapshotSchedule,
    /// The S3 bucket GitLab's backups go to.
    BackupBucket,
    SmtpUser,
}

impl Role {
    pub fn tag_value(self) -> &'static str {
        match self {
            Role::Instance => "instance",
            Role::SecurityGroup => "security-group",
            Role::DataVolume => "data",
            Role::ReplacedDataVolume => "replaced-data",
            Role::RootVolume => "root",
            Role::ElasticIp => "elastic-ip",
            Role::KeyPair => "key-pair",
            Role::InstanceRole => "instance-role",
            Role::FinalSnapshot => "final-snapshot",
            Role::Snapshot => "snapshot",
            Role::SnapshotSchedule => "snapshot-schedule",
            Role::BackupBucket => "backups",
            Role::SmtpUser => "smtp-user",
        }
    }

    /// The suffix of the `Name` tag (`glbox-<name>[-suffix]`).
    fn name_suffix(self) -> Option<&'static str> {
        match self {
            Role::Instance | Role::KeyPair | Role::InstanceRole => None,
            Role::SecurityGroup => Some("sg"),
            Role::DataVolume => Some("data"),
            Role::ReplacedDataVolume => Some("data-replaced"),
            Role::RootVolume => Some("root"),
            Role::ElasticIp => Some("eip"),
            Role::FinalSnapshot => Some("final"),
            Role::Snapshot => Some("snapshot"),
            Role::SnapshotSchedule => Some("snapshots"),
            Role::BackupBucket => Some("backups"),
            Role::SmtpUser => Some("smtp"),
        }
    }
}

/// The names of one deployment's resources, or of a lab's shared ones.
#[derive(Debug, Clone)]
pub struct Names {
    pub deployment: String,
    pub region: String,
    /// The tag that says who owns a resource: `glbox:deployment` for a
    /// single box, `glbox:lab` for a lab.
    owner_tag: &'static str,
    /// `glbox-<name>` for a single box, `glbox-lab-<lab>` for a lab.
    base: String,
    /// `/glbox/<name>/` or `/glbox-lab/<lab>/`: apart, so no deployment
    /// name can reach into a lab's parameters.
    parameter_prefix: String,
    /// Tags every resource carries besides the owner's (a lab's expiry).
    extra_tags: Vec<(String, String)>,
}

impl Names {
    pub fn new(deployment: &str, region: &str) -> Self {
        Names {
            deployment: deployment.to_string(),
            region: region.to_string(),
            owner_tag: TAG_DEPLOYMENT,
            base: format!("glbox-{deployment}"),
            parameter_prefix: format!("/glbox/{deployment}/"),
            extra_tags: Vec::new(),
        }
    }

    /// The names of a lab's shared resources (security group, role).
    pub fn lab(lab: &str, region: &str, expires_at: &str) -> Self {
        Names {
            deployment: lab.to_string(),
            region: region.to_string(),
            owner_tag: TAG_LAB,
            base: format!("glbox-lab-{lab}"),
            parameter_prefix: format!("/glbox-lab/{lab}/"),
            extra_tags: vec![(TAG_EXPIRES_AT.into(), expires_at.into())],
        }
    }

    /// The names of one seat of a lab: owned by the lab (its tag), marked
    /// with the seat's number, named `glbox-lab-<lab>-s07`.
    pub fn seat(lab: &str, seat: u16, region: &str, expires_at: &str) -> Self {
        let label = seat_label(seat);
        Names {
            deployment: lab.to_string(),
            region: region.to_string(),
            owner_tag: TAG_LAB,
            base: format!("glbox-lab-{lab}-{label}"),
            parameter_prefix: format!("/glbox-lab/{lab}/{label}/"),
            extra_tags: vec![
                (TAG_SEAT.into(), seat.to_string()),
                (TAG_EXPIRES_AT.into(), expires_at.into()),
            ],
        }
    }

    /// A lab's or a seat's names (their owner tag is `glbox:lab`).
    pub fn is_lab(&self) -> bool {
        self.owner_tag == TAG_LAB
    }

    /// The lab's expiry this name set tags with (empty for a single box).
    pub fn expires_at(&self) -> String {
        self.extra_tags
            .iter()
            .find(|(key, _)| key == TAG_EXPIRES_AT)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    }

    /// The seat number tag of a seat's names (`None` for a box or a lab).
    pub fn seat_tag(&self) -> Option<&str> {
        self.extra_tags
            .iter()
            .find(|(key, _)| key == TAG_SEAT)
            .map(|(_, value)| value.as_str())
    }

    /// The owner tag's key and value.
    pub fn owner(&self) -> (&'static str, &str) {
        (self.owner_tag, &self.deployment)
    }

    /// `glbox-<name>-<region>`: the IAM role and instance profile. IAM is
    /// global to the account, so the same deployment name in two regions
    /// must not share (or delete) one role.
    pub fn iam_name(&self) -> String {
        format!("{}-{}", self.base, self.region)
    }

    /// The deployment's backup bucket in `account`:
    /// `glbox-<name>-<10 hex digits of the account and region>`. Bucket
    /// names are global and at most 63 characters, so the account and
    /// region (needed to keep two accounts or regions apart) are hashed.
    pub fn backup_bucket(&self, account: &str) -> String {
        use sha2::{Digest, Sha256};
        let hash = Sha256::digest(format!("{account}/{}", self.region).as_bytes());
        let short: String = hash.iter().take(5).map(|b| format!("{b:02x}")).collect();
        format!("{}-{short}", self.base)
    }

    /// The value of the TXT record that marks a Route 53 record as this
    /// deployment's (DNS records carry no tags).
    pub fn dns_owner(&self) -> String {
        format!(
            "\"{}={} region={}\"",
            self.owner_tag, self.deployment, self.region
        )
    }

    /// `glbox-<name>`: the instance and the key pair.
    pub fn base(&self) -> String {
        self.base.clone()
    }

    pub fn name_of(&self, role: Role) -> String {
        match role.name_suffix() {
            Some(suffix) => format!("{}-{suffix}", self.base),
            None => self.base(),
        }
    }

    /// IAM path for the role and instance profile.
    pub fn iam_path(&self) -> &'static str {
        "/glbox/"
    }

    /// Where the deployment's SSM parameters live; the instance may read only these.
    pub fn parameter_prefix(&self) -> String {
        self.parameter_prefix.clone()
    }

    /// The tags every resource of the deployment carries, as key/value pairs.
    pub fn tag_pairs(&self, role: Role) -> Vec<(String, String)> {
        let mut pairs = vec![
            (self.owner_tag.into(), self.deployment.clone()),
            (TAG_MANAGED_BY.into(), MANAGED_BY.into()),
            (TAG_ROLE.into(), role.tag_value().into()),
            ("Name".into(), self.name_of(role)),
        ];
        pairs.extend(self.extra_tags.iter().cloned());
        pairs
    }

    pub fn ec2_tags(&self, role: Role) -> Vec<Tag> {
        self.tag_pairs(role)
            .into_iter()
            .map(|(key, value)| Tag::builder().key(key).value(value).build())
            .collect()
    }

    pub fn tag_spec(&self, resource: ResourceType, role: Role) -> TagSpecification {
        TagSpecification::builder()
            .resource_type(resource)
            .set_tags(Some(self.ec2_tags(role)))
            .build()
    }

    /// Filters matching exactly this deployment's resources of one role.
    pub fn owned_filters(&self, role: Role) -> Vec<Filter> {
        self.owned_filters_any(&[role])
    }

    /// The filters of [`Self::owned_filters`] for any of `roles`.
    pub fn owned_filters_any(&self, roles: &[Role]) -> Vec<Filter> {
        let filter = |key: String, value: &str| Filter::builder().name(key).values(value).build();
        vec![
            filter(format!("tag:{}", self.owner_tag), &self.deployment),
            filter(format!("tag:{TAG_MANAGED_BY}"), MANAGED_BY),
            Filter::builder()
                .name(format!("tag:{TAG_ROLE}"))
                .set_values(Some(roles.iter().map(|r| r.tag_value().into()).collect()))
                .build(),
        ]
    }

    /// Does this IAM tag set mark the resource as this deployment's?
    pub fn owns_iam(&self, tags: &[aws_sdk_iam::types::Tag]) -> bool {
        let has =
            |key: &str, value: &str| tags.iter().any(|t| t.key() == key && t.value() == value);
        has(self.owner_tag, &self.deployment) && has(TAG_MANAGED_BY, MANAGED_BY)
    }

    pub fn iam_tags(&self, role: Role) -> Vec<aws_sdk_iam::types::Tag> {
        self.tag_pairs(role)
            .into_iter()
            .map(|(key, value)| {
                aws_sdk_iam::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .expect("key and value are set")
            })
            .collect()
    }
}

/// `s07`, `s123`: a seat as it appears in names.
pub fn seat_label(seat: u16) -> String {
    format!("s{seat:02}")
}

/// The value of one tag in an EC2 tag list.
pub fn ec2_tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}
