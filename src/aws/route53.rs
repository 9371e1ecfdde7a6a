//! The Route 53 gateway: every Route 53 call glbox makes, shared by the email records
//! (`email::dns`) and the external URL's address record
//! (`resources::dns_record`): read a zone's name and one record set, write
//! a change batch, wait until Route 53 has it on all its servers.

use std::time::Duration;

use aws_sdk_route53::types::{
    Change, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};

use crate::aws::{Aws, AwsResultExt};
use crate::error::Result;
use crate::ui::Ui;
use crate::wait::{self, Poll};

/// Route 53 says a change reaches all its authoritative servers "generally
/// within 60 seconds"; this leaves room for a slow day.
/// <https://docs.aws.amazon.com/Route53/latest/APIReference/API_GetChange.html>
const INSYNC_WAIT: Duration = Duration::from_secs(600);

/// A name as glbox compares it: lowercase, without the final dot.
pub fn trim_dot(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A record set the zone holds now. Route 53 deletes a set only when given
/// exactly its values and TTL, so both are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSet {
    pub values: Vec<String>,
    pub ttl: Option<i64>,
}

/// The zone's name (lowercase, no final dot).
pub async fn zone_name(aws: &Aws, zone_id: &str) -> Result<String> {
    let zone = aws
        .route53
        .get_hosted_zone()
        .id(zone_id)
        .send()
        .await
        .ctx("route53:GetHostedZone")?;
    Ok(zone
        .hosted_zone()
        .map(|z| trim_dot(z.name()))
        .unwrap_or_default())
}

/// The record set of `kind` at `name`, if the zone has one.
pub async fn find_set(
    aws: &Aws,
    zone_id: &str,
    name: &str,
    kind: RrType,
) -> Result<Option<StoredSet>> {
    let page = aws
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .start_record_name(name)
        .start_record_type(kind.clone())
        .max_items(1)
        .send()
        .await
        .ctx("route53:ListResourceRecordSets")?;
    Ok(page
        .resource_record_sets()
        .iter()
        .find(|set| trim_dot(set.name()) == trim_dot(name) && set.r#type() == &kind)
        .map(|set| StoredSet {
            values: set
                .resource_records()
                .iter()
                .map(|r| r.value().trim_end_matches('.').to_string())
                .collect(),
            ttl: set.ttl(),
        }))
}

/// A record set with these values, for a change.
pub fn record_set(name: &str, kind: RrType, ttl: i64, values: &[String]) -> ResourceRecordSet {
    ResourceRecordSet::builder()
        .name(format!("{}.", name.trim_end_matches('.')))
        .r#type(kind)
        .ttl(ttl)
        .set_resource_records(Some(
            values
                .iter()
                .map(|v| {
                    ResourceRecord::builder()
                        .value(v)
                        .build()
                        .expect("value is set")
                })
                .collect(),
        ))
        .build()
        .expect("name and type are set")
}

/// Writes the changes as one batch (Route 53 applies all or none) and
/// returns the change's id, for [`wait_insync`].
pub async fn change(
    aws: &Aws,
    zone_id: &str,
    comment: Option<&str>,
    changes: Vec<Change>,
) -> Result<String> {
    let out = aws
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(
            ChangeBatch::builder()
                .set_comment(comment.map(str::to_string))
                .set_changes(Some(changes))
                .build()
                .expect("changes are set"),
        )
        .send()
        .await
        .ctx("route53:ChangeResourceRecordSets")?;
    Ok(out
        .change_info()
        .map(|info| info.id().to_string())
        .unwrap_or_default())
}

/// Waits until Route 53 reports the change INSYNC: then every one of the
/// zone's name servers answers with it (PENDING before).
/// <https://docs.aws.amazon.com/Route53/latest/APIReference/API_GetChange.html>
pub async fn wait_insync(aws: &Aws, ui: &Ui, change_id: &str) -> Result<()> {
    let what = format!("Route 53 to report change {change_id} INSYNC");
    wait::until(ui, &what, INSYNC_WAIT, || async {
        let out = aws
            .route53
            .get_change()
            .id(change_id)
            .send()
            .await
            .ctx("route53:GetChange")?;
        let status = out.change_info().map(|info| info.status().clone());
        Ok(match status {
            Some(ChangeStatus::Insync) => Poll::Ready(()),
            other => Poll::Pending(other.map_or("no status".into(), |s| s.as_str().to_string())),
        })
    })
    .await
}
