//! `glbox lab reap`: removes every lab of the region whose expiry is past.
//! Needs no lab configuration, only a region (for cron).

use std::fmt::Write;

use serde::Serialize;

use crate::app::App;
use crate::config;
use crate::error::{Error, Result};
use crate::lab::down::{find_labs, FoundLab};
use crate::lab::{is_expired, lab_ctx};
use crate::output::Report;

#[derive(Serialize)]
pub struct ReapReport {
    region: String,
    reaped: Vec<String>,
    kept: Vec<FoundLab>,
    skipped: Vec<SkippedLab>,
}

/// An expired lab `reap` could not remove, and why.
#[derive(Clone, Serialize)]
struct SkippedLab {
    name: String,
    reason: String,
}

pub async fn run(app: &App) -> Result<ReapReport> {
    crate::checkpoint::install_interrupt_handler(app.ui.clone(), "glbox lab reap");
    let ui = &app.ui;
    let region = config::region_only(&app.sources)?;
    let aws = app.connect(&region, true).await;
    let scan = config::minimal("reap", &region)?;
    let ctx = lab_ctx(&aws, &scan, ui, "");
    let now = time::OffsetDateTime::now_utc();
    let (expired, kept): (Vec<_>, Vec<_>) = find_labs(&ctx).await?.into_iter().partition(|lab| {
        lab.expires_at
            .as_deref()
            .is_some_and(|at| is_expired(at, now))
    });
    for lab in kept.iter().filter(|l| l.expires_at.is_none()) {
        ui.warn(&format!(
            "lab {:?} has no expiry tag: not reaped (glbox lab down removes it)",
            lab.name
        ));
    }
    let mut reaped = Vec::new();
    let mut skipped = Vec::new();
    for lab in &expired {
        ui.info(&format!(
            "lab {:?} expired at {}",
            lab.name,
            lab.expires_at.as_deref().unwrap_or_default()
        ));
        // One lab that cannot be removed (a tag no lab name can have, a
        // refusal) is named and skipped: the region's other labs go on.
        let removed = match config::minimal(&lab.name, &region) {
            Ok(settings) => super::remove(app, &aws, &settings, false).await,
            Err(e) => Err(e.into()),
        };
        match removed {
            Ok(Some(_)) => reaped.push(lab.name.clone()),
            // Only look-alikes (named above): nothing of glbox's to remove.
            Ok(None) => ui.info(&format!(
                "lab {:?}: nothing glbox made is left to remove",
                lab.name
            )),
            Err(e) => {
                ui.warn(&format!("lab {:?} skipped: {e}", lab.name));
                skipped.push(SkippedLab {
                    name: lab.name.clone(),
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(ReapReport {
        region,
        reaped,
        kept,
        skipped,
    })
}

impl Report for ReapReport {
    fn text(&self) -> String {
        let region = &self.region;
        let mut out = if self.reaped.is_empty() {
            format!("No expired lab in {region}.\n")
        } else {
            format!(
                "Removed {} expired lab(s) in {region}: {}.\n",
                self.reaped.len(),
                self.reaped.join(", ")
            )
        };
        for lab in &self.kept {
            let _ = writeln!(
                out,
                "  kept lab {:?} (expires {})",
                lab.name,
                lab.expires_at.as_deref().unwrap_or("never: no expiry tag")
            );
        }
        for lab in &self.skipped {
            let _ = writeln!(out, "  skipped lab {:?}: {}", lab.name, lab.reason);
        }
        out
    }

    fn outcome(self) -> Result<()> {
        if self.skipped.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = self.skipped.iter().map(|l| l.name.as_str()).collect();
        Err(Error::Refused(format!(
            "{} expired lab(s) could not be removed: {} (the others were)\n  fix: see the reasons above; glbox lab down --config <the lab's file> removes one lab",
            self.skipped.len(),
            names.join(", ")
        )))
    }
}
