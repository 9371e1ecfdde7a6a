//! `glbox backup`: a snapshot of the data volume and a GitLab backup to S3
//! now, waiting for both. The snapshot is started first (EBS takes it at
//! that moment and copies it meanwhile), then the box runs the same
//! `glbox-backup` its nightly timer runs, then glbox waits for the snapshot.
//!
//! Cut short and run again, it makes no second of either: a manual snapshot
//! of the data volume started in the last minutes is waited for instead of
//! a new one, and the box reports the backup it finished (or waits for the
//! one still running) instead of making another.

use std::time::Duration;

use serde::Serialize;

use crate::app::{App, Needs};
use crate::aws::ec2::{snapshots, Wait};
use crate::backup::FRESH_WITHIN_SECONDS;
use crate::error::{Error, Result};
use crate::output::Report;
use crate::resources::Ctx;

/// How long glbox waits for EBS to finish the snapshot (a first snapshot
/// of a large volume copies every block).
const SNAPSHOT_WAIT: Duration = Duration::from_secs(4 * 3600);
/// The snapshot reason `glbox backup` tags with.
const MANUAL: &str = "manual";
/// How long the GitLab backup may run on the box.
const BACKUP_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

#[derive(Serialize)]
pub struct BackupReport {
    snapshot: SnapshotTaken,
    /// `None` while `backup.s3` is off.
    gitlab_backup: Option<GitlabBackup>,
}

#[derive(Serialize)]
struct SnapshotTaken {
    id: String,
    volume_id: String,
    volume_size_gib: i32,
    state: String,
    /// A snapshot an earlier, interrupted `glbox backup` started.
    resumed: bool,
}

#[derive(Serialize)]
struct GitlabBackup {
    /// The backup id: what `glbox restore --backup` takes.
    name: String,
    bucket: String,
    archive_key: String,
    size_bytes: u64,
    config_prefix: String,
}

impl Report for BackupReport {
    fn text(&self) -> String {
        let snapshot = &self.snapshot;
        let mut out = format!(
            "Snapshot {} of {} ({} GiB) is {}{}.\n",
            snapshot.id,
            snapshot.volume_id,
            snapshot.volume_size_gib,
            snapshot.state,
            if snapshot.resumed {
                " (started by an earlier glbox backup)"
            } else {
                ""
            }
        );
        match &self.gitlab_backup {
            Some(backup) => out.push_str(&format!(
                "GitLab backup {} is in s3://{}/{} ({}), with gitlab.rb and gitlab-secrets.json under {}.\n",
                backup.name,
                backup.bucket,
                backup.archive_key,
                human_size(backup.size_bytes),
                backup.config_prefix
            )),
            None => out.push_str(
                "No GitLab backup: backup.s3 is off (set backup.s3 = true, then glbox up).\n",
            ),
        }
        out
    }
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

pub async fn run(app: &App) -> Result<BackupReport> {
    crate::checkpoint::install_interrupt_handler(app.ui.clone(), "glbox backup");
    let deployment = app.deployment(Needs::default()).await?;
    let ctx = deployment.ctx(app);
    let observed = crate::deploy::plan::observe(&ctx).await?;
    let endpoint = crate::endpoint::running(
        &ctx,
        &observed.instances,
        &observed.data_volumes,
        &observed.addresses,
    )?;
    let volume_id = endpoint.data_volume_id.clone().ok_or_else(|| {
        Error::Refused(format!(
            "the instance {} has no data volume attached\n  fix: run glbox up, then glbox backup",
            endpoint.instance.id
        ))
    })?;
    let (snapshot_id, resumed) = start_snapshot(&ctx, &volume_id).await?;
    let gitlab_backup = match crate::backup::bucket(&ctx).await? {
        Some(bucket) => Some(
            gitlab_backup(&ctx, &endpoint, bucket)
                .await
                .map_err(|e| snapshot_goes_on(e, &snapshot_id))?,
        ),
        None => {
            ctx.ui.warn("backup.s3 is off: only the snapshot is taken (set backup.s3 = true and run glbox up for GitLab backups in S3)");
            None
        }
    };
    let done = snapshots::wait_completed(
        &ctx.aws.ec2,
        ctx.ui,
        std::slice::from_ref(&snapshot_id),
        &Wait {
            state: "completed",
            what: "the snapshot of the data volume",
            within: SNAPSHOT_WAIT,
            counted: false,
        },
    )
    .await?;
    let snapshot = done.first().ok_or_else(|| {
        Error::Refused(format!(
            "snapshot {snapshot_id} disappeared while glbox waited for it"
        ))
    })?;
    Ok(BackupReport {
        snapshot: SnapshotTaken {
            id: snapshot_id.clone(),
            volume_id,
            volume_size_gib: snapshot.volume_size().unwrap_or_default(),
            state: snapshots::state_of(snapshot).to_string(),
            resumed,
        },
        gitlab_backup,
    })
}

/// A failed GitLab backup does not stop EBS: the error says the snapshot
/// is still being taken, and where to find it.
fn snapshot_goes_on(error: Error, snapshot_id: &str) -> Error {
    match error {
        Error::Refused(why) => Error::Refused(format!(
            "{why}\n  the snapshot {snapshot_id} of the data volume goes on and completes by itself (glbox backups lists it)"
        )),
        other => other,
    }
}

/// The manual snapshot of the volume an interrupted `glbox backup` started
/// in the last minutes, or a new one; and whether it was found.
async fn start_snapshot(ctx: &Ctx<'_>, volume_id: &str) -> Result<(String, bool)> {
    let found = crate::backup::snapshots_of(ctx, volume_id, MANUAL).await?;
    let recent = crate::backup::newest_recent(
        &found,
        crate::backup::now_secs(),
        FRESH_WITHIN_SECONDS,
        |_| true,
    );
    if let Some(id) = recent {
        ctx.ui.info(&format!(
            "snapshot {id} of {volume_id} was started by an earlier glbox backup: waiting for it"
        ));
        return Ok((id.to_string(), true));
    }
    let description = format!(
        "glbox {}: snapshot of the data volume (glbox backup)",
        ctx.names.deployment
    );
    let id = crate::backup::start_snapshot(ctx, volume_id, MANUAL, description).await?;
    Ok((id, false))
}

/// Runs `glbox-backup` on the box and reads what it made.
async fn gitlab_backup(
    ctx: &Ctx<'_>,
    endpoint: &crate::endpoint::Endpoint,
    bucket: String,
) -> Result<GitlabBackup> {
    let transport = endpoint.transport(ctx).await?;
    transport.wait_ready(ctx).await?;
    let outcome = transport
        .run(
            ctx,
            "GitLab backup",
            &crate::backup::run_now_script(),
            BACKUP_TIMEOUT,
        )
        .await?;
    let reported = crate::backup::reported_backup(&outcome.output);
    let (name, size_bytes) = match reported {
        Some(found) if outcome.succeeded() => found,
        _ => {
            let why = crate::backup::reported_error(&outcome.output)
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}:\n{}", outcome.status, outcome.tail(30)));
            return Err(Error::Refused(format!(
                "the GitLab backup on {} failed: {why}\n  fix: correct the cause (the whole log is /var/log/glbox/backup.log on the box), then run glbox backup again",
                endpoint.instance.id
            )));
        }
    };
    ctx.ui
        .info(&format!("GitLab backup {name} is in s3://{bucket}"));
    Ok(GitlabBackup {
        archive_key: format!("{name}{}", crate::names::BACKUP_ARCHIVE_SUFFIX),
        config_prefix: format!("{}{name}/", crate::names::BACKUP_CONFIG_PREFIX),
        name,
        bucket,
        size_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_shown_in_binary_units() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(10 * 1024 * 1024 + 512 * 1024), "10.5 MiB");
    }
}
