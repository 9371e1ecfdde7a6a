//! EBS snapshots of the data volume: the one `down --delete-data` leaves,
//! the one taken before an upgrade, those `glbox backup` takes and those
//! the snapshot schedule makes. Create (tagged in the call), describe
//! (glbox's own, by filters), wait until usable, delete.

use aws_sdk_ec2::types::{Filter, Snapshot, TagSpecification};
use aws_sdk_ec2::Client;

use super::Wait;
use crate::aws::{ok_if, settled, AwsError, AwsResultExt, Lag};
use crate::error::{Error, Result};
use crate::ui::Ui;
use crate::wait::{self, Poll};

/// Starts a snapshot of the volume, tagged in the same call; returns its
/// id. CreateSnapshot has no client token: a caller that may have lost an
/// answer first looks for the snapshot by its tags.
pub async fn create(
    ec2: &Client,
    volume_id: &str,
    description: String,
    tags: TagSpecification,
) -> Result<String, AwsError> {
    let out = ec2
        .create_snapshot()
        .volume_id(volume_id)
        .description(description)
        .tag_specifications(tags)
        .send()
        .await
        .ctx("ec2:CreateSnapshot")?;
    Ok(out.snapshot_id().unwrap_or_default().to_string())
}

/// The account's own snapshots matching `filters`, all pages.
pub async fn describe(ec2: &Client, filters: Vec<Filter>) -> Result<Vec<Snapshot>, AwsError> {
    let mut pages = ec2
        .describe_snapshots()
        .owner_ids("self")
        .set_filters((!filters.is_empty()).then_some(filters))
        .into_paginator()
        .send();
    let mut snapshots = Vec::new();
    while let Some(page) = pages.next().await {
        snapshots.extend(
            page.ctx("ec2:DescribeSnapshots")?
                .snapshots()
                .iter()
                .cloned(),
        );
    }
    Ok(snapshots)
}

/// The snapshot's state ("pending", "completed", "error", ...).
pub fn state_of(snapshot: &Snapshot) -> &str {
    snapshot.state().map(|s| s.as_str()).unwrap_or_default()
}

/// Waits until every snapshot in `ids` is `completed` (usable for a new
/// volume), one DescribeSnapshots per poll for all; a snapshot in `error`
/// ends the wait at once. Fresh ids may be unknown to EC2 for a moment.
pub async fn wait_completed(
    ec2: &Client,
    ui: &Ui,
    ids: &[String],
    wait: &Wait<'_>,
) -> Result<Vec<Snapshot>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    wait::until(ui, wait.what, wait.within, || async {
        let found = settled(ui, &[Lag::FreshId], &ids[0], || {
            ec2.describe_snapshots()
                .set_snapshot_ids(Some(ids.to_vec()))
                .send()
        })
        .await
        .ctx("ec2:DescribeSnapshots")?
        .snapshots()
        .to_vec();
        if let Some(failed) = found.iter().find(|s| state_of(s) == "error") {
            return Err(Error::Refused(format!(
                "snapshot {} failed ({}); take another with glbox backup",
                failed.snapshot_id().unwrap_or_default(),
                failed.state_message().unwrap_or("EBS gave no reason"),
            )));
        }
        let done = found.iter().filter(|s| state_of(s) == "completed").count();
        if done == ids.len() {
            return Ok(Poll::Ready(found));
        }
        let progress = found
            .first()
            .and_then(|s| s.progress())
            .unwrap_or("0%")
            .to_string();
        Ok(Poll::Pending(if wait.counted {
            format!("{done} of {} completed", ids.len())
        } else {
            progress
        }))
    })
    .await
}

/// Deletes the snapshot; one EC2 no longer knows is gone already.
pub async fn delete(ec2: &Client, id: &str) -> Result<(), AwsError> {
    let deleted = ec2.delete_snapshot().snapshot_id(id).send().await;
    ok_if("ec2:DeleteSnapshot", deleted, &["InvalidSnapshot.NotFound"])
}
