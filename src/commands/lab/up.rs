//! `glbox lab up`: create or converge every seat, then write the roster.

use serde::Serialize;

use crate::app::App;
use crate::aws::Aws;
use crate::cli::LabUpArgs;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::lab::observe::Observed;
use crate::lab::roster::{self, Row};
use crate::lab::{down, is_expired, lab_ctx, plan, up, LabSettings};
use crate::names::seat_label;
use crate::output::{OutputFormat, Report};
use crate::resources::Ctx;
use crate::ui::Ui;

/// What the whole lab costs for its planned life, before it is made.
#[derive(Debug, Serialize)]
struct PlannedCost {
    seats: u16,
    /// All seats running, at on-demand prices.
    hourly_usd: f64,
    /// Until the lab expires, if it runs all that time.
    until_expiry_usd: f64,
    complete: bool,
}

fn planned_cost(settings: &Settings, lab: &LabSettings) -> PlannedCost {
    let estimate = crate::cost::estimate(settings);
    let hourly = estimate.hourly_usd() * f64::from(lab.seats);
    let hours = lab.expires_in.as_secs_f64() / 3600.0;
    let round = |usd: f64| (usd * 100.0).round() / 100.0;
    PlannedCost {
        seats: lab.seats,
        hourly_usd: round(hourly),
        until_expiry_usd: round(hourly * hours),
        complete: estimate.complete,
    }
}

#[derive(Serialize)]
pub struct LabUpReport {
    plan: plan::PlanReport,
    cost: PlannedCost,
    seats: Vec<Row>,
    failed: Vec<FailedSeat>,
    roster_file: Option<String>,
    /// "Lab ... is complete" when there was nothing to do.
    #[serde(skip)]
    complete: Option<String>,
    #[serde(skip)]
    expires_at: String,
    #[serde(skip)]
    wanted: u16,
}

#[derive(Serialize)]
struct FailedSeat {
    seat: u16,
    reason: String,
}

impl Report for LabUpReport {
    fn text(&self) -> String {
        let mut out = self.complete.clone().unwrap_or_default();
        out.push_str(&super::seat_table(&self.seats));
        out.push_str(&format!(
            "Roster with the passwords: {} (mode 0600). The lab expires {}: glbox lab down removes it, glbox lab reap removes every expired lab.\n",
            self.roster_file.as_deref().unwrap_or_default(),
            self.expires_at
        ));
        out
    }

    fn outcome(self) -> Result<()> {
        if self.failed.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = self
            .failed
            .iter()
            .map(|f| format!("  {}: {}", seat_label(f.seat), f.reason))
            .collect();
        Err(Error::Refused(format!(
            "{} of {} seat(s) failed (the others are up):\n{}\n  fix: correct the causes above, then re-run glbox lab up (it retries only what is missing)",
            self.failed.len(),
            self.wanted,
            lines.join("\n")
        )))
    }
}

/// One `lab up`: what every step of it needs.
struct Run<'a> {
    app: &'a App,
    aws: &'a Aws,
    settings: &'a Settings,
    lab: &'a LabSettings,
    args: &'a LabUpArgs,
}

/// A lab as observed and planned.
struct Planned {
    observed: Observed,
    expires_at: String,
    plan: plan::LabPlan,
}

pub async fn run(app: &App, args: &LabUpArgs) -> Result<LabUpReport> {
    crate::checkpoint::install_interrupt_handler(app.ui.clone(), "glbox lab up");
    let (settings, lab) = app.lab_settings()?;
    let aws = app.connect(&settings.region, true).await;
    let run = Run {
        app,
        aws: &aws,
        settings: &settings,
        lab: &lab,
        args,
    };
    run.up().await
}

impl Run<'_> {
    fn with_bootstrap(&self) -> bool {
        !self.args.no_bootstrap
    }

    /// The lab as it is, planned; its expiry is the one it was made with,
    /// else a new one.
    async fn plan(&self) -> Result<Planned> {
        let (observed, expires_at) = super::observe_lab(
            self.aws,
            self.settings,
            &self.app.ui,
            Some(self.lab.expires_in),
        )
        .await?;
        let ctx = lab_ctx(self.aws, self.settings, &self.app.ui, &expires_at);
        let plan = plan::make(
            &ctx,
            self.lab,
            &observed,
            &expires_at,
            self.with_bootstrap(),
        )
        .await?;
        Ok(Planned {
            observed,
            expires_at,
            plan,
        })
    }

    /// A plan without the lease first: a complete lab changes nothing at
    /// all. With changes, the lease, then everything again under it.
    async fn up(&self) -> Result<LabUpReport> {
        let planned = self.plan().await?;
        // A lease left by a crashed run is taken (and so broken) even when
        // there is nothing else to do.
        if planned.plan.is_noop() && !planned.observed.lease_held {
            return self.up_planned(planned, None).await;
        }
        let ctx = lab_ctx(self.aws, self.settings, &self.app.ui, &planned.expires_at);
        let first = planned.plan.report(&ctx, self.lab);
        if !planned.plan.is_noop() {
            let needs = up::quota_needs(self.lab, &planned.plan, &planned.observed);
            crate::quotas::check(&ctx, &needs).await?;
            self.show_and_confirm(&planned.plan, &first)?;
        }
        let lease = crate::lease::acquire(&ctx, "lab up").await?;
        let result = async {
            let planned = self.plan().await?;
            self.up_planned(planned, Some(&first)).await
        }
        .await;
        crate::lease::released(&ctx, lease, result).await
    }

    /// Shows the lab's plan and cost, and asks.
    fn show_and_confirm(&self, plan: &plan::LabPlan, report: &plan::PlanReport) -> Result<()> {
        let settings = self.settings;
        if self.app.output == OutputFormat::Text {
            print!("{}", report.text());
            let cost = planned_cost(settings, self.lab);
            println!(
                "Cost: {}${:.2} per hour for {} seat(s) at on-demand prices, ${:.2} if it runs until it expires (see glbox plan for one seat's lines). Each seat's {} is included: {}.",
                if cost.complete { "about " } else { "at least " },
                cost.hourly_usd,
                cost.seats,
                cost.until_expiry_usd,
                crate::cost::public_ipv4_item(settings.elastic_ip),
                crate::cost::SAME_PRICE_EITHER_WAY
            );
        }
        let question = if plan.remove.is_empty() {
            "Apply these changes?"
        } else {
            "Apply these changes, deleting the removed seats and their data?"
        };
        self.app.confirm(question, "changing the lab")
    }

    async fn up_planned(
        &self,
        planned: Planned,
        confirmed: Option<&plan::PlanReport>,
    ) -> Result<LabUpReport> {
        let Planned {
            observed,
            expires_at,
            plan,
        } = planned;
        let (ui, settings, lab) = (&self.app.ui, self.settings, self.lab);
        let ctx = lab_ctx(self.aws, settings, ui, &expires_at);
        warn_expired_labs(&ctx, &lab.name).await?;
        warn_unchanged_seats(ui, settings, &observed);
        for note in &observed.foreign {
            ui.warn(note);
        }
        let report = plan.report(&ctx, lab);
        let mut failures = up::Failures::new();
        let mut health = up::Health::new();
        let mut complete = None;
        if plan.is_noop() {
            complete = Some(format!(
                "Lab {:?} in {} is complete: {} seat(s), nothing to do.\n",
                lab.name, settings.region, lab.seats
            ));
        } else {
            // Asked before the lease; again only if the plan changed meanwhile.
            let same = confirmed.is_some_and(|c| {
                serde_json::to_value(c).ok() == serde_json::to_value(&report).ok()
            });
            if !same {
                self.show_and_confirm(&plan, &report)?;
            }
            failures = up::apply(&ctx, lab, &plan, &observed).await?;
            if self.with_bootstrap() {
                health = up::bootstrap_seats(&ctx, lab, &plan, &mut failures).await?;
            }
        }
        // What the lab is now, for the roster.
        let (now, _) = super::observe_lab(self.aws, settings, ui, None).await?;
        let mut rows = roster::rows(&ctx, lab.seats, &now, &failures, &health);
        roster::fill_passwords(&ctx, &mut rows, |seat| now.seat(seat).password).await?;
        let roster_path = &self.args.roster;
        roster::write(roster_path, &roster::csv(&rows))?;
        let failed = failures
            .iter()
            .map(|(seat, reason)| FailedSeat {
                seat: *seat,
                reason: reason.clone(),
            })
            .collect();
        Ok(LabUpReport {
            plan: report,
            cost: planned_cost(settings, lab),
            seats: rows,
            failed,
            roster_file: Some(roster_path.display().to_string()),
            complete,
            expires_at,
            wanted: lab.seats,
        })
    }
}

/// Labs build seats; they do not resize them. Seats made with another
/// instance type or data volume size keep it, and glbox says so.
fn warn_unchanged_seats(ui: &Ui, settings: &Settings, observed: &Observed) {
    let mut other_type = Vec::new();
    let mut other_size = Vec::new();
    for (number, seat) in &observed.seats {
        if seat
            .primary()
            .is_some_and(|i| i.instance.instance_type != settings.instance_type)
        {
            other_type.push(seat_label(*number));
        }
        if seat
            .volume()
            .is_some_and(|v| v.size_gib != settings.data_volume.size_gib)
        {
            other_size.push(seat_label(*number));
        }
    }
    if !other_type.is_empty() {
        ui.warn(&format!(
            "seat(s) {} run another instance type than {}: lab up does not change existing seats (lab down, then lab up, rebuilds them)",
            other_type.join(", "),
            settings.instance_type
        ));
    }
    if !other_size.is_empty() {
        ui.warn(&format!(
            "seat(s) {} have a data volume of another size than {} GiB: lab up does not resize existing seats",
            other_size.join(", "),
            settings.data_volume.size_gib
        ));
    }
}

/// Expired labs cost money for nothing: said on every `lab up`.
async fn warn_expired_labs(ctx: &Ctx<'_>, this_lab: &str) -> Result<()> {
    let now = time::OffsetDateTime::now_utc();
    for found in down::find_labs(ctx).await? {
        if let Some(at) = found.expires_at.as_deref().filter(|at| is_expired(at, now)) {
            let which = if found.name == this_lab {
                "this lab".to_string()
            } else {
                format!("lab {:?}", found.name)
            };
            ctx.ui.warn(&format!(
                "{which} in {} expired at {at} and still has resources: glbox lab reap removes expired labs",
                ctx.settings.region
            ));
        }
    }
    Ok(())
}
