//! `glbox lab status`: one line per seat, and what the lab costs an hour.

use serde::Serialize;

use crate::app::App;
use crate::config::Settings;
use crate::error::Result;
use crate::lab::observe::Observed;
use crate::lab::roster::{self, Row};
use crate::lab::{is_expired, lab_ctx, up};
use crate::output::Report;

#[derive(Serialize)]
pub struct LabStatusReport {
    lab: String,
    region: String,
    expires_at: Option<String>,
    expired: bool,
    seats: Vec<Row>,
    cost: RunningCost,
    /// The lab has no resource at all.
    #[serde(skip)]
    missing: bool,
    /// The seats the configuration asks for.
    #[serde(skip)]
    wanted: u16,
    /// The expiry it was made with, else empty.
    #[serde(skip)]
    expiry: String,
}

/// What the lab costs per hour as it stands: instances while they run,
/// volumes and public addresses whether or not they do.
#[derive(Debug, Serialize)]
struct RunningCost {
    pub running_instances: usize,
    pub seats_with_storage: usize,
    /// At on-demand prices; spot seats cost less.
    pub hourly_usd: f64,
    /// False when the price table lacks the type or region.
    pub complete: bool,
    pub note: String,
}

/// The lab's cost per hour from one seat's estimate, scaled by what exists.
fn running_cost(settings: &Settings, rows: &[Row], observed: &Observed) -> RunningCost {
    let estimate = crate::cost::estimate(settings);
    let hours = estimate.hours_per_month;
    let hourly = |wanted: &dyn Fn(&str) -> bool| -> f64 {
        estimate
            .lines
            .iter()
            .filter(|l| wanted(l.item))
            .filter_map(|l| l.monthly_usd)
            .sum::<f64>()
            / hours
    };
    let instance = hourly(&|item| item == "instance");
    let storage = hourly(&|item| item != "instance");
    let running_instances = rows
        .iter()
        .filter(|r| {
            observed
                .seat(r.seat)
                .primary()
                .is_some_and(|i| i.instance.state == "running")
        })
        .count();
    let seats_with_storage = observed
        .seats
        .values()
        .filter(|s| !s.volumes.is_empty())
        .count();
    let total = running_instances as f64 * instance + seats_with_storage as f64 * storage;
    RunningCost {
        running_instances,
        seats_with_storage,
        hourly_usd: (total * 10_000.0).round() / 10_000.0,
        complete: estimate.complete,
        note: format!(
            "on-demand prices as of {} (spot seats cost less); {}",
            estimate.prices_as_of, estimate.note
        ),
    }
}

pub async fn run(app: &App) -> Result<LabStatusReport> {
    let (settings, lab) = app.lab_settings()?;
    let aws = app.connect(&settings.region, true).await;
    let (observed, expires_at) = super::observe_lab(&aws, &settings, &app.ui, None).await?;
    let ctx = lab_ctx(&aws, &settings, &app.ui, &expires_at);
    let highest = observed.seats.keys().max().copied().unwrap_or(0);
    let rows = roster::rows(
        &ctx,
        lab.seats.max(highest),
        &observed,
        &up::Failures::new(),
        &up::Health::new(),
    );
    let expired = is_expired(&expires_at, time::OffsetDateTime::now_utc());
    let cost = running_cost(&settings, &rows, &observed);
    Ok(LabStatusReport {
        lab: lab.name.clone(),
        region: settings.region.clone(),
        expires_at: observed.expires_at.clone(),
        expired,
        seats: rows,
        cost,
        missing: !observed.exists(),
        wanted: lab.seats,
        expiry: expires_at,
    })
}

impl Report for LabStatusReport {
    fn text(&self) -> String {
        if self.missing {
            return format!(
                "Lab {:?} in {} does not exist (glbox lab up makes it).\n",
                self.lab, self.region
            );
        }
        let ready = self.seats.iter().filter(|r| r.state == "ready").count();
        let cost = &self.cost;
        format!(
            "Lab {:?} in {}: {ready} of {} seat(s) ready, expires {}{}\n{}Cost now: {}${:.2} per hour ({} instance(s) running, {} seat(s) with volumes and addresses); {}\n",
            self.lab,
            self.region,
            self.wanted,
            if self.expiry.is_empty() {
                "(unknown)"
            } else {
                &self.expiry
            },
            if self.expired {
                " (EXPIRED: glbox lab down or glbox lab reap)"
            } else {
                ""
            },
            super::seat_table(&self.seats),
            if cost.complete { "about " } else { "at least " },
            cost.hourly_usd,
            cost.running_instances,
            cost.seats_with_storage,
            cost.note
        )
    }
}
