//! `glbox restore --backup NAME`: GitLab's documented restore of one
//! backup from the deployment's bucket, on the box (`cloud-init/restore.sh`:
//! the version checked before anything stops; puma and sidekiq stopped,
//! `gitlab-backup restore`, the backup's gitlab-secrets.json, reconfigure,
//! restart, `gitlab-rake gitlab:check`), then glbox's health checks.
//!
//! Interrupted (Ctrl-C, a crash, a lost connection), the same command goes
//! on: the box keeps the steps done for this backup on the data volume.

use std::time::Duration;

use serde::Serialize;

use crate::app::{App, Needs};
use crate::config::ConfigError;
use crate::error::{Error, Result};
use crate::output::Report;
use crate::remote::Outcome;
use crate::resources::Ctx;

/// How long the restore may run on the box.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
/// The snapshot reason of the data volume as it was before a restore.
const PRE_RESTORE: &str = "pre-restore";
/// How long a snapshot taken before restoring a backup counts as the one
/// for a re-run of that restore (a crashed restore's volume is half
/// restored: it must not replace the snapshot of the data before).
const PRE_RESTORE_WITHIN_SECONDS: u64 = 24 * 3600;

#[derive(Serialize)]
pub struct RestoreReport {
    backup: String,
    bucket: String,
    instance_id: String,
    /// The snapshot of the data volume as it was before the restore.
    snapshot_before: String,
    /// What `gitlab-rake gitlab:check` found wrong after the restore.
    warnings: Vec<String>,
    verify: crate::verify::Report,
}

impl Report for RestoreReport {
    fn text(&self) -> String {
        let mut out = crate::verify::table(&self.verify);
        out.push_str(&format!(
            "GitLab on {} is restored from backup {} (s3://{}); its gitlab.rb is beside glbox's as /etc/gitlab/gitlab.rb.from-backup-{}.\n\
             The data from before is in snapshot {} (glbox restore --snapshot {} brings it back).\n",
            self.instance_id, self.backup, self.bucket, self.backup, self.snapshot_before, self.snapshot_before
        ));
        out
    }

    fn outcome(self) -> Result<()> {
        if self.verify.healthy {
            Ok(())
        } else {
            Err(Error::Unhealthy)
        }
    }
}

pub async fn run(app: &App, backup: &str) -> Result<RestoreReport> {
    crate::backup::check_backup_id(backup)?;
    let deployment = app.deployment(Needs::default()).await?;
    if deployment.settings.backup.s3.is_none() {
        return Err(Error::Config(ConfigError {
            field: "backup.s3".into(),
            value: "false".into(),
            problem: "restore --backup reads GitLab's backups from the deployment's S3 bucket, and S3 backups are off".into(),
            fix: "set backup.s3 = true and run glbox up (or restore a snapshot: glbox restore --snapshot)".into(),
        }));
    }
    // Once per process: the resume line names this very backup.
    let resume: &'static str =
        Box::leak(format!("glbox restore --backup {backup}").into_boxed_str());
    crate::checkpoint::install_interrupt_handler(app.ui.clone(), resume);
    let ctx = deployment.ctx(app);
    let observed = crate::deploy::plan::observe(&ctx).await?;
    let endpoint = crate::endpoint::running(
        &ctx,
        &observed.instances,
        &observed.data_volumes,
        &observed.addresses,
    )?;
    let bucket = crate::backup::bucket(&ctx)
        .await?
        .expect("backup.s3 is on: checked above");
    if app.preview_wanted() {
        println!(
            "Restoring GitLab on {} from backup {backup} in s3://{bucket}: GitLab's data (database, repositories, uploads) is replaced by the backup's and gitlab-secrets.json by the one kept with it; puma and sidekiq stop meanwhile. gitlab.rb stays glbox's. A snapshot of the data volume is taken first.",
            endpoint.instance.id
        );
    }
    app.confirm("Restore this backup?", "restoring a GitLab backup")?;
    let lease = crate::lease::acquire(&ctx, "restore --backup").await?;
    let result = async {
        let volume_id = endpoint.data_volume_id.as_deref().ok_or_else(|| {
            Error::Refused(format!(
                "the instance {} has no data volume attached\n  fix: run glbox up, then this restore",
                endpoint.instance.id
            ))
        })?;
        let before = snapshot_before(&ctx, volume_id, backup).await?;
        restore(&ctx, &endpoint, &bucket, backup, before).await
    }
    .await;
    crate::lease::released(&ctx, lease, result).await
}

/// The data as it is, before the restore replaces it: a snapshot, started
/// now (EBS takes it at once; the volume may change while it is copied).
/// A re-run of the same restore (after a crash, when the volume may be
/// half restored) takes up the one the first run started.
async fn snapshot_before(ctx: &Ctx<'_>, volume_id: &str, backup: &str) -> Result<String> {
    let description = format!(
        "glbox {}: the data volume before restoring backup {backup}",
        ctx.names.deployment
    );
    let found = crate::backup::snapshots_of(ctx, volume_id, PRE_RESTORE).await?;
    let earlier = crate::backup::newest_recent(
        &found,
        crate::backup::now_secs(),
        PRE_RESTORE_WITHIN_SECONDS,
        |s| s.description() == Some(description.as_str()),
    );
    if let Some(id) = earlier {
        ctx.ui.info(&format!(
            "the data from before this restore is in snapshot {id} (taken by the first run)"
        ));
        return Ok(id.to_string());
    }
    crate::backup::start_snapshot(ctx, volume_id, PRE_RESTORE, description).await
}

/// Under the lease: the restore on the box, then the health checks.
async fn restore(
    ctx: &Ctx<'_>,
    endpoint: &crate::endpoint::Endpoint,
    bucket: &str,
    backup: &str,
    snapshot_before: String,
) -> Result<RestoreReport> {
    let transport = endpoint.transport(ctx).await?;
    transport.wait_ready(ctx).await?;
    let script = crate::backup::restore_script(ctx.settings, bucket, backup);
    let outcome = transport
        .run(ctx, "GitLab restore", &script, RESTORE_TIMEOUT)
        .await?;
    let warnings = warnings(&outcome);
    for warning in &warnings {
        ctx.ui.warn(warning);
    }
    let restored = outcome
        .output
        .lines()
        .any(|l| l.strip_prefix("glbox-restored: ") == Some(backup));
    if !outcome.succeeded() || !restored {
        return Err(failure(&endpoint.instance.id, backup, &outcome));
    }
    ctx.ui
        .info(&format!("GitLab is restored from {backup}; checking it"));
    let verify = endpoint.verify(ctx, &transport, None).await?;
    Ok(RestoreReport {
        backup: backup.to_string(),
        bucket: bucket.to_string(),
        instance_id: endpoint.instance.id.clone(),
        snapshot_before,
        warnings,
        verify,
    })
}

fn warnings(outcome: &Outcome) -> Vec<String> {
    outcome
        .output
        .lines()
        .filter_map(|l| l.strip_prefix("glbox-warning: "))
        .map(str::to_string)
        .collect()
}

/// The script says why with its `glbox-error:` line; exit 3 is a refusal
/// before anything changed (another version, a backup not in the bucket).
fn failure(instance_id: &str, backup: &str, outcome: &Outcome) -> Error {
    let why = crate::backup::reported_error(&outcome.output)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}:\n{}", outcome.status, outcome.tail(30)));
    if outcome.exit_code == Some(3) {
        return Error::Refused(format!(
            "the restore of {backup} on {instance_id} was refused, and nothing was changed: {why}"
        ));
    }
    Error::Refused(format!(
        "the restore of {backup} on {instance_id} stopped: {why}\n  fix: correct the cause (the whole log is /var/log/glbox/restore.log on the box), then run the same glbox restore again: it goes on from the step it reached"
    ))
}
