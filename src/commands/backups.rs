//! `glbox backups`: the deployment's snapshots and the GitLab backups in
//! its bucket, with times, sizes and which are usable; and the backups'
//! lines of `status` and warnings of `verify`.

use std::fmt::Write;

use serde::Serialize;
use time::OffsetDateTime;

use crate::app::{App, Needs};
use crate::deploy::plan::Observed;
use crate::error::Result;
use crate::output::Report;
use crate::resources::backup::inventory::{self, S3Backup};
use crate::resources::backup::snapshots::Snapshot;
use crate::resources::Ctx;

#[derive(Debug, Serialize)]
pub struct BackupsReport {
    deployment: String,
    region: String,
    /// `None` when the deployment has no backup bucket.
    bucket: Option<String>,
    snapshots: Vec<Snapshot>,
    s3_backups: Vec<S3Backup>,
}

/// The bucket glbox may read: the deployment's own.
fn own_bucket(observed: &Observed) -> Option<&str> {
    observed
        .backup_bucket
        .as_ref()
        .filter(|b| b.owned)
        .map(|b| b.name.as_str())
}

pub async fn run(app: &App) -> Result<BackupsReport> {
    let deployment = app.deployment(Needs::default()).await?;
    let ctx = deployment.ctx(app);
    let observed = crate::deploy::plan::observe(&ctx).await?;
    let bucket = own_bucket(&observed);
    Ok(BackupsReport {
        deployment: ctx.settings.name.clone(),
        region: ctx.settings.region.clone(),
        bucket: bucket.map(str::to_string),
        s3_backups: inventory::read_s3(&ctx, bucket).await?,
        snapshots: observed.snapshots.clone(),
    })
}

impl Report for BackupsReport {
    fn text(&self) -> String {
        let now = OffsetDateTime::now_utc();
        let mut out = format!(
            "Backups of deployment {:?} in {}:\n",
            self.deployment, self.region
        );
        if self.snapshots.is_empty() {
            out.push_str("  no snapshots\n");
        } else {
            let _ = writeln!(out, "  snapshots:");
            for s in &self.snapshots {
                let when = inventory::age(&s.started, now).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "    {:<22} {:<20} {:>12} {:>6} GiB  {:<9} {}",
                    s.id, s.started, when, s.size_gib, s.state, s.reason
                );
            }
        }
        match &self.bucket {
            None => out.push_str("  no backup bucket\n"),
            Some(bucket) if self.s3_backups.is_empty() => {
                let _ = writeln!(out, "  no GitLab backups in s3://{bucket}");
            }
            Some(bucket) => {
                let _ = writeln!(out, "  GitLab backups in s3://{bucket}:");
                for b in &self.s3_backups {
                    let when = inventory::age(&b.time, now).unwrap_or_default();
                    let state = match b.complete {
                        true => "complete",
                        false => "INCOMPLETE: no gitlab-secrets.json beside it",
                    };
                    let _ = writeln!(
                        out,
                        "    {:<36} {:<20} {:>12} {:>10}  {state}",
                        b.name,
                        b.time,
                        when,
                        crate::cost::bytes_label(b.size_bytes)
                    );
                }
            }
        }
        out
    }
}

/// The newest snapshot and S3 backup, for `status`.
#[derive(Debug, Clone, Serialize)]
pub struct Newest {
    pub snapshot: Option<Snapshot>,
    pub s3_backup: Option<S3Backup>,
}

pub async fn newest(ctx: &Ctx<'_>, observed: &Observed) -> Result<Option<Newest>> {
    let backup = &ctx.settings.backup;
    let bucket = own_bucket(observed);
    if backup.snapshots.is_none()
        && backup.s3.is_none()
        && bucket.is_none()
        && observed.snapshots.is_empty()
    {
        return Ok(None);
    }
    let s3_backups = inventory::read_s3(ctx, bucket).await?;
    Ok(Some(Newest {
        snapshot: observed.snapshots.first().cloned(),
        s3_backup: s3_backups.into_iter().next(),
    }))
}

/// `status`'s lines for them.
pub fn newest_text(newest: &Newest) -> String {
    let now = OffsetDateTime::now_utc();
    let snapshot = newest.snapshot.as_ref().map_or("none".to_string(), |s| {
        format!(
            "{} ({}, {}, {})",
            s.id,
            s.reason,
            s.state,
            inventory::age(&s.started, now).unwrap_or_default()
        )
    });
    let backup = newest.s3_backup.as_ref().map_or("none".to_string(), |b| {
        format!(
            "{} ({}{})",
            b.name,
            inventory::age(&b.time, now).unwrap_or_default(),
            if b.complete { "" } else { ", incomplete" }
        )
    });
    format!("  last snapshot:  {snapshot}\n  last S3 backup: {backup}\n")
}

/// `verify`'s warnings: the newest snapshot or backup older than twice
/// its schedule.
pub async fn warn_stale(ctx: &Ctx<'_>, observed: &Observed) -> Result<()> {
    let backup = &ctx.settings.backup;
    if backup.snapshots.is_none() && backup.s3.is_none() {
        return Ok(());
    }
    let s3_backups = inventory::read_s3(ctx, own_bucket(observed)).await?;
    let launched = observed
        .live_instances()
        .iter()
        .filter_map(|i| i.launch_time)
        .max()
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
    let now = OffsetDateTime::now_utc();
    for warning in inventory::stale(backup, &observed.snapshots, &s3_backups, launched, now) {
        ctx.ui.warn(&warning);
    }
    Ok(())
}
