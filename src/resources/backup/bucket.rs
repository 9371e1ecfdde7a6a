//! The deployment's bucket for GitLab's backups: a deterministic name in
//! the account (`Names::backup_bucket`), found with HeadBucket and the
//! account as expected owner. Encrypted by default (SSE-S3), all public
//! access blocked, versioned, its objects expired after `s3_keep_days`
//! (current and noncurrent versions), tagged, and a policy refusing any
//! request not over TLS. `up` repairs each part that drifted; `down` keeps
//! it (backups outlive the box) unless `--delete-backups`.
//!
//! The name alone proves nothing (anyone in the account can create it, and
//! tags can be put on anything), so the bucket is glbox's only when the
//! deployment's ownership ledger records it: the record is written before
//! CreateBucket, so a run that dies between the two is finished by the
//! next one.

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter, NoncurrentVersionExpiration,
};
use serde_json::{json, Value};

use crate::aws::s3::{self, Head};
use crate::error::{Error, Result};
use crate::names::Role;
use crate::resources::{Action, Ctx, PlanItem};

/// The id of glbox's one lifecycle rule.
pub const LIFECYCLE_RULE: &str = "glbox-expire-backups";
/// Uploads GitLab started and never finished are cleaned after this long.
const ABORT_UPLOADS_AFTER_DAYS: i32 = 7;

/// One part of the bucket's configuration `up` converges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Setting {
    Tags,
    PublicAccess,
    Encryption,
    Versioning,
    Lifecycle,
    Policy,
}

impl Setting {
    /// In the order a new bucket gets them: tags and the public access
    /// block first.
    pub const ALL: [Setting; 6] = [
        Setting::Tags,
        Setting::PublicAccess,
        Setting::Encryption,
        Setting::Versioning,
        Setting::Lifecycle,
        Setting::Policy,
    ];

    fn label(self, keep_days: u32) -> String {
        match self {
            Setting::Tags => "tags".into(),
            Setting::PublicAccess => "block all public access".into(),
            Setting::Encryption => "default encryption SSE-S3".into(),
            Setting::Versioning => "versioning".into(),
            Setting::Lifecycle => format!("expire backups after {keep_days} days"),
            Setting::Policy => "refuse requests without TLS".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub name: String,
    /// The ownership ledger records it (see the module's comment).
    pub owned: bool,
    /// The settings that differ from glbox's.
    pub drifted: Vec<Setting>,
}

/// Reads the bucket and each part of its configuration, all at once.
/// `keep_days`: the expiry wanted (`None` with S3 backups off, when only
/// existence and ownership matter).
pub async fn observe(
    ctx: &Ctx<'_>,
    account: &str,
    recorded: bool,
    keep_days: Option<u32>,
) -> Result<Option<Bucket>> {
    let name = ctx.names.backup_bucket(account);
    let client = &ctx.aws.s3;
    match s3::head(client, &name, account).await? {
        Head::Missing => return Ok(None),
        Head::Foreign => {
            return Ok(Some(Bucket {
                name,
                owned: false,
                drifted: Vec::new(),
            }))
        }
        Head::Ours if !recorded => {
            return Ok(Some(Bucket {
                name,
                owned: false,
                drifted: Vec::new(),
            }))
        }
        Head::Ours => {}
    }
    let Some(keep_days) = keep_days else {
        return Ok(Some(Bucket {
            name,
            owned: true,
            drifted: Vec::new(),
        }));
    };
    let (tags, blocked, encryption, versioned, rules, policy) = tokio::try_join!(
        s3::tags(client, &name),
        s3::public_access_blocked(client, &name),
        s3::encryption(client, &name),
        s3::versioning_enabled(client, &name),
        s3::lifecycle(client, &name),
        s3::policy(client, &name),
    )?;
    let wanted_tags = ctx.names.tag_pairs(Role::BackupBucket);
    let mut drifted = Vec::new();
    if !wanted_tags.iter().all(|t| tags.contains(t)) {
        drifted.push(Setting::Tags);
    }
    if !blocked {
        drifted.push(Setting::PublicAccess);
    }
    // SSE-KMS set by hand is as good: kept.
    if !matches!(encryption.as_deref(), Some("AES256" | "aws:kms")) {
        drifted.push(Setting::Encryption);
    }
    if !versioned {
        drifted.push(Setting::Versioning);
    }
    if !lifecycle_holds(&rules, keep_days) {
        drifted.push(Setting::Lifecycle);
    }
    let policy: Option<Value> = policy.and_then(|p| serde_json::from_str(&p).ok());
    if policy.as_ref() != Some(&tls_policy(&name)) {
        drifted.push(Setting::Policy);
    }
    Ok(Some(Bucket {
        name,
        owned: true,
        drifted,
    }))
}

/// glbox's rule is there, enabled, with the expiry wanted.
fn lifecycle_holds(rules: &[LifecycleRule], keep_days: u32) -> bool {
    let days = i32::try_from(keep_days).unwrap_or(i32::MAX);
    rules.iter().any(|rule| {
        rule.id() == Some(LIFECYCLE_RULE)
            && rule.status() == &ExpirationStatus::Enabled
            && rule.expiration().and_then(|e| e.days()) == Some(days)
            && rule
                .noncurrent_version_expiration()
                .and_then(|e| e.noncurrent_days())
                == Some(days)
    })
}

/// Every object expires `keep_days` after it was written; an object
/// replaced or deleted (versioning keeps it) `keep_days` after that, so a
/// backup deleted by mistake can be got back for as long.
pub fn lifecycle_rules(keep_days: u32) -> Result<Vec<LifecycleRule>> {
    let days = i32::try_from(keep_days).unwrap_or(i32::MAX);
    let rule = LifecycleRule::builder()
        .id(LIFECYCLE_RULE)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .expiration(LifecycleExpiration::builder().days(days).build())
        .noncurrent_version_expiration(
            NoncurrentVersionExpiration::builder()
                .noncurrent_days(days)
                .build(),
        )
        .abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(ABORT_UPLOADS_AFTER_DAYS)
                .build(),
        )
        .build()
        .map_err(|e| Error::Refused(format!("internal: the lifecycle rule: {e}")))?;
    Ok(vec![rule])
}

/// Refuses every request to the bucket or its objects that does not come
/// over TLS.
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html#transit>
pub fn tls_policy(bucket: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        }]
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Create {
        name: String,
    },
    Repair {
        name: String,
        drifted: Vec<Setting>,
    },
    /// Also with S3 backups off: a bucket that exists is kept as it is.
    NoChange {
        name: Option<String>,
    },
}

/// What `up` does to the bucket. With S3 backups on, a bucket of glbox's
/// name that is not glbox's is refused (GitLab would write to it).
pub fn diff(wanted: bool, name: &str, observed: Option<&Bucket>) -> Result<Change> {
    match (wanted, observed) {
        (false, observed) => Ok(Change::NoChange {
            name: observed.map(|b| b.name.clone()),
        }),
        (true, None) => Ok(Change::Create { name: name.into() }),
        (true, Some(bucket)) if !bucket.owned => Err(foreign(&bucket.name)),
        (true, Some(bucket)) if bucket.drifted.is_empty() => Ok(Change::NoChange {
            name: Some(bucket.name.clone()),
        }),
        (true, Some(bucket)) => Ok(Change::Repair {
            name: bucket.name.clone(),
            drifted: bucket.drifted.clone(),
        }),
    }
}

pub fn foreign(name: &str) -> Error {
    Error::Refused(format!(
        "an S3 bucket named {name} exists, but glbox did not make it for this deployment (it is another account's, or this deployment's ownership record does not name it), so GitLab's backups will not go there\n  fix: delete or rename that bucket if it is yours and unused, choose another deployment name, or set backup.s3 = false"
    ))
}

impl Change {
    pub fn item(&self, keep_days: u32) -> PlanItem {
        match self {
            Change::Create { name } => {
                PlanItem::new("backup_bucket", name.clone(), None, Action::Create)
                    .with_changes(Setting::ALL.iter().map(|s| s.label(keep_days)).collect())
            }
            Change::Repair { name, drifted } => PlanItem::new(
                "backup_bucket",
                name.clone(),
                Some(name.clone()),
                Action::Update,
            )
            .with_changes(drifted.iter().map(|s| s.label(keep_days)).collect()),
            Change::NoChange { name } => PlanItem::new(
                "backup_bucket",
                name.clone().unwrap_or_default(),
                name.clone(),
                Action::NoChange,
            ),
        }
    }

    pub fn is_noop(&self) -> bool {
        matches!(self, Change::NoChange { .. })
    }
}

/// Creates or repairs the bucket. A new one is recorded in the ledger
/// first, then created, then given each setting in order.
pub async fn apply(ctx: &Ctx<'_>, change: &Change, keep_days: u32) -> Result<()> {
    let (name, settings) = match change {
        Change::NoChange { .. } => return Ok(()),
        Change::Create { name } => {
            crate::ownership::record_bucket(ctx, name).await?;
            s3::create(&ctx.aws.s3, name, &ctx.settings.region).await?;
            ctx.ui.info(&format!("created S3 bucket {name}"));
            (name, Setting::ALL.to_vec())
        }
        Change::Repair { name, drifted } => (name, drifted.clone()),
    };
    for setting in settings {
        put(ctx, name, setting, keep_days).await?;
    }
    if matches!(change, Change::Repair { .. }) {
        ctx.ui.info(&format!("repaired S3 bucket {name}"));
    }
    Ok(())
}

async fn put(ctx: &Ctx<'_>, name: &str, setting: Setting, keep_days: u32) -> Result<()> {
    let client = &ctx.aws.s3;
    match setting {
        Setting::Tags => s3::put_tags(client, name, &ctx.names.tag_pairs(Role::BackupBucket)).await,
        Setting::PublicAccess => s3::block_public_access(client, name).await,
        Setting::Encryption => s3::put_encryption(client, name).await,
        Setting::Versioning => s3::enable_versioning(client, name).await,
        Setting::Lifecycle => s3::put_lifecycle(client, name, lifecycle_rules(keep_days)?).await,
        Setting::Policy => s3::put_policy(client, name, tls_policy(name).to_string()).await,
    }
}

/// Empties the bucket (every version) and deletes it, then its record.
pub async fn delete(ctx: &Ctx<'_>, name: &str) -> Result<usize> {
    let objects = s3::empty(&ctx.aws.s3, name).await?;
    s3::delete(&ctx.aws.s3, name).await?;
    crate::ownership::forget(ctx, vec![crate::ownership::record_name(&ctx.names, name)]).await?;
    ctx.ui.info(&format!(
        "deleted S3 bucket {name} and the {objects} object version(s) in it"
    ));
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(owned: bool, drifted: Vec<Setting>) -> Bucket {
        Bucket {
            name: "glbox-a-0123456789".into(),
            owned,
            drifted,
        }
    }

    #[test]
    fn a_bucket_is_made_converged_or_refused() {
        let name = "glbox-a-0123456789";
        assert_eq!(
            diff(true, name, None).unwrap(),
            Change::Create { name: name.into() }
        );
        assert!(diff(true, name, Some(&bucket(false, vec![]))).is_err());
        assert_eq!(
            diff(true, name, Some(&bucket(true, vec![Setting::Policy]))).unwrap(),
            Change::Repair {
                name: name.into(),
                drifted: vec![Setting::Policy]
            }
        );
        assert!(diff(true, name, Some(&bucket(true, vec![])))
            .unwrap()
            .is_noop());
        // Backups off: whatever is there is kept, even someone else's.
        assert!(diff(false, name, Some(&bucket(false, vec![])))
            .unwrap()
            .is_noop());
    }

    #[test]
    fn the_rule_it_writes_is_the_rule_it_wants() {
        let rules = lifecycle_rules(30).unwrap();
        assert!(lifecycle_holds(&rules, 30));
        assert!(!lifecycle_holds(&rules, 31));
        assert!(!lifecycle_holds(&[], 30));
    }
}
