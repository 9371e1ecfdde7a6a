//! The deployment's snapshots: those the schedule takes, those `glbox
//! backup` and upgrades take, the final one of `down --delete-data`, and
//! a swapped-out volume's. Found by the deployment's tags; glbox's own only
//! when they are of a data volume its ownership ledger records (a
//! snapshot's tags can be put on any snapshot, its source volume cannot
//! be changed).

use aws_sdk_ec2::types::{Filter, Snapshot as Ec2Snapshot};
use serde::Serialize;

use crate::aws::ec2::snapshots;
use crate::error::Result;
use crate::names::{ec2_tag, Role, MANAGED_BY, TAG_MANAGED_BY, TAG_ROLE, TAG_SNAPSHOT_REASON};
use crate::ownership::Ledger;
use crate::resources::Ctx;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub id: String,
    pub volume_id: String,
    /// The source volume's size: the most the snapshot can take up (EBS
    /// stores only the blocks that changed since the one before).
    pub size_gib: i32,
    /// "pending", "completed", "error".
    pub state: String,
    /// When it was started, RFC 3339 (UTC).
    pub started: String,
    /// "scheduled", "manual", "pre-upgrade", "replaced" or "final".
    pub reason: String,
}

/// Every snapshot that carries the deployment's tags: (glbox's own, the
/// others), newest first.
pub async fn observe(ctx: &Ctx<'_>, ledger: &Ledger) -> Result<(Vec<Snapshot>, Vec<Snapshot>)> {
    let (owner_key, owner) = ctx.names.owner();
    let filter = |key: String, value: &str| Filter::builder().name(key).values(value).build();
    let filters = vec![
        filter(format!("tag:{owner_key}"), owner),
        filter(format!("tag:{TAG_MANAGED_BY}"), MANAGED_BY),
    ];
    let found = snapshots::describe(&ctx.aws.ec2, filters).await?;
    let mut all: Vec<Snapshot> = found.iter().map(snapshot_of).collect();
    all.sort_by(|a, b| b.started.cmp(&a.started));
    Ok(all.into_iter().partition(|s| ledger.holds(&s.volume_id)))
}

fn snapshot_of(snapshot: &Ec2Snapshot) -> Snapshot {
    let tags = snapshot.tags();
    let reason = match ec2_tag(tags, TAG_SNAPSHOT_REASON) {
        Some(reason) => reason.to_string(),
        None if ec2_tag(tags, TAG_ROLE) == Some(Role::FinalSnapshot.tag_value()) => "final".into(),
        None => "unknown".into(),
    };
    Snapshot {
        id: snapshot.snapshot_id().unwrap_or_default().to_string(),
        volume_id: snapshot.volume_id().unwrap_or_default().to_string(),
        size_gib: snapshot.volume_size().unwrap_or_default(),
        state: snapshots::state_of(snapshot).to_string(),
        started: snapshot
            .start_time()
            .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
            .unwrap_or_default(),
        reason,
    }
}

/// Deletes the snapshots; returns their ids.
pub async fn delete(ctx: &Ctx<'_>, found: &[Snapshot]) -> Result<Vec<String>> {
    let mut deleted = Vec::new();
    for snapshot in found {
        snapshots::delete(&ctx.aws.ec2, &snapshot.id).await?;
        deleted.push(snapshot.id.clone());
    }
    if !deleted.is_empty() {
        ctx.ui
            .info(&format!("deleted {} snapshot(s)", deleted.len()));
    }
    Ok(deleted)
}
