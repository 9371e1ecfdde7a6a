//! S3: the deployment's backup bucket and the objects in it. Find by name
//! (HeadBucket with the expected owner), create, read and set each part of
//! its configuration, list its objects, and empty and delete it.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CreateBucketConfiguration, Delete, LifecycleRule, ObjectIdentifier,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
    VersioningConfiguration,
};
use aws_sdk_s3::Client;

use crate::aws::{ok_if, AwsError, AwsResultExt};
use crate::error::{Error, Result};

/// DeleteObjects takes at most 1,000 keys a request.
const DELETE_BATCH: usize = 1000;

/// What HeadBucket says of a bucket name, asked with the account as the
/// expected owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// The bucket exists and is the account's.
    Ours,
    Missing,
    /// It exists and is another account's (or the caller may not see it).
    Foreign,
}

pub async fn head(s3: &Client, bucket: &str, account: &str) -> Result<Head> {
    let answer = s3
        .head_bucket()
        .bucket(bucket)
        .expected_bucket_owner(account)
        .send()
        .await;
    match answer {
        Ok(_) => Ok(Head::Ours),
        Err(SdkError::ServiceError(e)) => match e.raw().status().as_u16() {
            404 => Ok(Head::Missing),
            403 => Ok(Head::Foreign),
            _ => Err(crate::aws::error("s3:HeadBucket", SdkError::ServiceError(e)).into()),
        },
        Err(e) => Err(crate::aws::error("s3:HeadBucket", e).into()),
    }
}

/// Creates the bucket in `region` (us-east-1 takes no location
/// constraint, every other region needs one). A retried create whose
/// first answer was lost finds the bucket already the caller's: done.
pub async fn create(s3: &Client, bucket: &str, region: &str) -> Result<()> {
    let configuration = (region != "us-east-1").then(|| {
        CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(region))
            .build()
    });
    let created = s3
        .create_bucket()
        .bucket(bucket)
        .set_create_bucket_configuration(configuration)
        .send()
        .await;
    ok_if("s3:CreateBucket", created, &["BucketAlreadyOwnedByYou"])?;
    Ok(())
}

/// `Ok(None)` when the call failed with one of `absent` (the bucket has no
/// such configuration).
fn absent_ok_if<T, E, R>(
    action: &'static str,
    result: std::result::Result<T, SdkError<E, R>>,
    absent: &[&str],
) -> std::result::Result<Option<T>, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.code().is_some_and(|c| absent.contains(&c)) => Ok(None),
        Err(e) => Err(crate::aws::error(action, e)),
    }
}

pub async fn tags(s3: &Client, bucket: &str) -> Result<Vec<(String, String)>> {
    let out = s3.get_bucket_tagging().bucket(bucket).send().await;
    let out = absent_ok_if("s3:GetBucketTagging", out, &["NoSuchTagSet"])?;
    Ok(out
        .map(|o| {
            o.tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        })
        .unwrap_or_default())
}

pub async fn put_tags(s3: &Client, bucket: &str, tags: &[(String, String)]) -> Result<()> {
    let tag_set = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Refused(format!("internal: a bucket tag: {e}")))?;
    let tagging = Tagging::builder()
        .set_tag_set(Some(tag_set))
        .build()
        .map_err(|e| Error::Refused(format!("internal: bucket tags: {e}")))?;
    s3.put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging)
        .send()
        .await
        .ctx("s3:PutBucketTagging")?;
    Ok(())
}

/// The default encryption's algorithm ("AES256", "aws:kms"); `None`
/// without one.
pub async fn encryption(s3: &Client, bucket: &str) -> Result<Option<String>> {
    let out = s3.get_bucket_encryption().bucket(bucket).send().await;
    let out = absent_ok_if(
        "s3:GetBucketEncryption",
        out,
        &["ServerSideEncryptionConfigurationNotFoundError"],
    )?;
    Ok(out.and_then(|o| {
        o.server_side_encryption_configuration()?
            .rules()
            .iter()
            .find_map(|r| r.apply_server_side_encryption_by_default())
            .map(|d| d.sse_algorithm().as_str().to_string())
    }))
}

/// SSE-S3 (AES256) by default, with S3 Bucket Keys.
pub async fn put_encryption(s3: &Client, bucket: &str) -> Result<()> {
    let by_default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::Aes256)
        .build()
        .map_err(|e| Error::Refused(format!("internal: encryption: {e}")))?;
    let configuration = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(by_default)
                .bucket_key_enabled(true)
                .build(),
        )
        .build()
        .map_err(|e| Error::Refused(format!("internal: encryption: {e}")))?;
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(configuration)
        .send()
        .await
        .ctx("s3:PutBucketEncryption")?;
    Ok(())
}

/// Whether all four public access blocks are on.
pub async fn public_access_blocked(s3: &Client, bucket: &str) -> Result<bool> {
    let out = s3.get_public_access_block().bucket(bucket).send().await;
    let out = absent_ok_if(
        "s3:GetPublicAccessBlock",
        out,
        &["NoSuchPublicAccessBlockConfiguration"],
    )?;
    Ok(out
        .and_then(|o| o.public_access_block_configuration().cloned())
        .is_some_and(|c| {
            c.block_public_acls() == Some(true)
                && c.ignore_public_acls() == Some(true)
                && c.block_public_policy() == Some(true)
                && c.restrict_public_buckets() == Some(true)
        }))
}

pub async fn block_public_access(s3: &Client, bucket: &str) -> Result<()> {
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .ctx("s3:PutPublicAccessBlock")?;
    Ok(())
}

pub async fn versioning_enabled(s3: &Client, bucket: &str) -> Result<bool> {
    let out = s3
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .ctx("s3:GetBucketVersioning")?;
    Ok(out.status() == Some(&BucketVersioningStatus::Enabled))
}

pub async fn enable_versioning(s3: &Client, bucket: &str) -> Result<()> {
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .ctx("s3:PutBucketVersioning")?;
    Ok(())
}

/// The bucket's lifecycle rules (none without a configuration).
pub async fn lifecycle(s3: &Client, bucket: &str) -> Result<Vec<LifecycleRule>> {
    let out = s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await;
    let out = absent_ok_if(
        "s3:GetBucketLifecycleConfiguration",
        out,
        &["NoSuchLifecycleConfiguration"],
    )?;
    Ok(out.map(|o| o.rules().to_vec()).unwrap_or_default())
}

pub async fn put_lifecycle(s3: &Client, bucket: &str, rules: Vec<LifecycleRule>) -> Result<()> {
    let configuration = BucketLifecycleConfiguration::builder()
        .set_rules(Some(rules))
        .build()
        .map_err(|e| Error::Refused(format!("internal: lifecycle: {e}")))?;
    s3.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(configuration)
        .send()
        .await
        .ctx("s3:PutBucketLifecycleConfiguration")?;
    Ok(())
}

/// The bucket policy's document; `None` without one.
pub async fn policy(s3: &Client, bucket: &str) -> Result<Option<String>> {
    let out = s3.get_bucket_policy().bucket(bucket).send().await;
    let out = absent_ok_if("s3:GetBucketPolicy", out, &["NoSuchBucketPolicy"])?;
    Ok(out.and_then(|o| o.policy().map(str::to_string)))
}

pub async fn put_policy(s3: &Client, bucket: &str, document: String) -> Result<()> {
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(document)
        .send()
        .await
        .ctx("s3:PutBucketPolicy")?;
    Ok(())
}

/// One object of the bucket (its current version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub size: u64,
    /// RFC 3339, UTC.
    pub last_modified: String,
}

/// Every current object of the bucket, all pages.
pub async fn objects(s3: &Client, bucket: &str) -> Result<Vec<Object>> {
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    let mut objects = Vec::new();
    while let Some(page) = pages.next().await {
        for object in page.ctx("s3:ListObjectsV2")?.contents() {
            objects.push(Object {
                key: object.key().unwrap_or_default().to_string(),
                size: object.size().unwrap_or_default().max(0).unsigned_abs(),
                last_modified: object
                    .last_modified()
                    .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
                    .unwrap_or_default(),
            });
        }
    }
    Ok(objects)
}

/// Every version and delete marker in the bucket, all pages (ListObjectVersions
/// pages by key and version markers).
async fn versions(s3: &Client, bucket: &str) -> Result<Vec<ObjectIdentifier>> {
    let mut ids = Vec::new();
    let mut markers: (Option<String>, Option<String>) = (None, None);
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .set_key_marker(markers.0.take())
            .set_version_id_marker(markers.1.take())
            .send()
            .await
            .ctx("s3:ListObjectVersions")?;
        let versions = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                page.delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            );
        for (key, version) in versions {
            let id = ObjectIdentifier::builder()
                .key(key.unwrap_or_default())
                .set_version_id(version.map(str::to_string))
                .build()
                .map_err(|e| Error::Refused(format!("internal: an object id: {e}")))?;
            ids.push(id);
        }
        if page.is_truncated() != Some(true) {
            return Ok(ids);
        }
        markers = (
            page.next_key_marker().map(str::to_string),
            page.next_version_id_marker().map(str::to_string),
        );
    }
}

/// Deletes every version of every object (a versioned bucket must be
/// empty of all of them before it can go), 1,000 a request; returns how
/// many.
pub async fn empty(s3: &Client, bucket: &str) -> Result<usize> {
    let ids = versions(s3, bucket).await?;
    for batch in ids.chunks(DELETE_BATCH) {
        let delete = Delete::builder()
            .set_objects(Some(batch.to_vec()))
            .quiet(true)
            .build()
            .map_err(|e| Error::Refused(format!("internal: a delete: {e}")))?;
        let out = s3
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .ctx("s3:DeleteObjects")?;
        if let Some(failed) = out.errors().first() {
            return Err(Error::Refused(format!(
                "S3 did not delete {} from bucket {bucket}: {}",
                failed.key().unwrap_or_default(),
                failed.message().unwrap_or("no reason given")
            )));
        }
    }
    Ok(ids.len())
}

/// Deletes the (empty) bucket; one that is gone already is done.
pub async fn delete(s3: &Client, bucket: &str) -> Result<()> {
    let deleted = s3.delete_bucket().bucket(bucket).send().await;
    ok_if("s3:DeleteBucket", deleted, &["NoSuchBucket"])?;
    Ok(())
}
