//! `glbox down`: remove everything the deployment owns, after showing it
//! and asking.

use std::fmt::Write;

use serde::Serialize;

use crate::app::{App, Needs};
use crate::cli::DownArgs;
use crate::deploy::down::{self, DownItem, DownOptions, DownOutcome};
use crate::error::Result;
use crate::output::Report;

#[derive(Serialize)]
pub struct DownReport {
    deployment: String,
    region: String,
    resources: Vec<DownItem>,
    /// `None`: there was nothing to remove.
    outcome: Option<DownOutcome>,
}

pub async fn run(app: &App, args: &DownArgs) -> Result<DownReport> {
    // Changes stop at a safe point, never in the middle of one.
    crate::checkpoint::install_interrupt_handler(app.ui.clone(), "glbox down");
    let deployment = app
        .deployment(Needs {
            email_for: args
                .delete_email_identity
                .then_some("--delete-email-identity"),
            ..Needs::default()
        })
        .await?;
    let ctx = deployment.ctx(app);
    let options = DownOptions {
        delete_data: args.delete_data,
        snapshot: !args.no_snapshot,
        delete_email_identity: args.delete_email_identity,
        delete_backups: args.delete_backups,
    };
    let mut observed = crate::deploy::plan::observe(&ctx).await?;
    down::decide_email_identity(&ctx, &mut observed, options).await?;
    super::warn_email_problem(&ctx, &observed);
    let mut report = DownReport {
        deployment: ctx.settings.name.clone(),
        region: ctx.settings.region.clone(),
        resources: down::items(&ctx, &observed, options),
        outcome: None,
    };
    let anything_to_remove = report
        .resources
        .iter()
        .any(|i| !i.action.starts_with("keep") && !i.action.starts_with("skip"));
    if !anything_to_remove {
        return Ok(report);
    }
    if app.preview_wanted() {
        println!(
            "Removing deployment {:?} in {}:",
            ctx.settings.name, ctx.settings.region
        );
        for item in &report.resources {
            println!("  {:<17} {:<24} {}", item.resource, item.id, item.action);
        }
    }
    app.confirm("Remove these resources?", "removing these resources")?;
    let lease = crate::lease::acquire(&ctx, "down").await?;
    let result = async {
        // Under the lease, what is there now (another run may have changed it).
        let mut observed = crate::deploy::plan::observe(&ctx).await?;
        down::decide_email_identity(&ctx, &mut observed, options).await?;
        ctx.ui.start_phases(down::phases(&ctx, &observed, options));
        down::down(&ctx, &observed, options).await
    }
    .await;
    report.outcome = Some(crate::lease::released(&ctx, lease, result).await?);
    ctx.ui.end_phases();
    Ok(report)
}

/// What `down` kept of the backups, and an estimate of what keeping them
/// costs a month.
fn kept_backups(region: &str, outcome: &DownOutcome) -> String {
    let mut out = String::new();
    if let Some(bucket) = &outcome.kept_bucket {
        let _ = writeln!(out, "Kept backup bucket {} ({}; `glbox down --delete-backups` removes it with every backup in it).", bucket.name, crate::cost::bytes_label(bucket.bytes));
    }
    if !outcome.kept_snapshots.is_empty() {
        let ids: Vec<&str> = outcome
            .kept_snapshots
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        let _ = writeln!(out, "Kept {} snapshot(s) of the data volume: {} (`glbox down --delete-backups` removes them).", ids.len(), ids.join(", "));
    }
    let snapshot_gib: i64 = outcome
        .kept_snapshots
        .iter()
        .map(|s| i64::from(s.size_gib))
        .sum();
    let bucket_bytes = outcome.kept_bucket.as_ref().map_or(0, |b| b.bytes);
    if outcome.kept_bucket.is_some() || snapshot_gib > 0 {
        let _ = writeln!(
            out,
            "{}",
            crate::cost::kept_backups_line(region, snapshot_gib, bucket_bytes)
        );
    }
    out
}

impl Report for DownReport {
    fn text(&self) -> String {
        let Some(outcome) = &self.outcome else {
            let mut out = format!(
                "Deployment {:?} in {} has nothing to remove.\n",
                self.deployment, self.region
            );
            for item in self
                .resources
                .iter()
                .filter(|i| i.action.starts_with("keep"))
            {
                let reason = item.action.strip_prefix("keep: ");
                let _ = match reason {
                    Some(reason) => {
                        writeln!(out, "  kept {} {} ({reason})", item.resource, item.id)
                    }
                    None => writeln!(out, "  kept {} {}", item.resource, item.id),
                };
            }
            return out;
        };
        let mut out = format!("Removed {} resource(s).\n", outcome.removed.len());
        for id in &outcome.kept_volumes {
            let _ = writeln!(out, "Kept data volume {id} (tagged with the deployment; `glbox up` re-attaches it, `glbox down --delete-data` removes it).");
        }
        for name in &outcome.kept_secrets {
            let _ = writeln!(out, "Kept secret {name} of gitlab.extra_config, with the data (`glbox down --delete-data` deletes it).");
        }
        for id in &outcome.replaced_volumes {
            let _ = writeln!(out, "Kept volume {id}, which a restore replaced (glbox never deletes it; `aws ec2 delete-volume --volume-id {id}` once you no longer need it).");
        }
        for id in &outcome.snapshots {
            let _ = writeln!(out, "Kept final snapshot {id} (tagged with the deployment; delete it when no longer needed).");
        }
        out.push_str(&kept_backups(&self.region, outcome));
        if let Some(domain) = &outcome.kept_identity {
            let _ = writeln!(out, "Kept the SES identity {domain} (other senders may use it; `glbox down --delete-email-identity` removes it).");
        }
        out
    }
}
