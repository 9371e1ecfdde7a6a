//! `glbox lab up | status | down | reap`: load the lab's settings (before
//! any AWS call), observe the lab, then act.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::aws::{self, Aws, ConnectOptions};
use crate::cli::{confirm, print_json, OutputFormat};
use crate::config::{self, Sources};
use crate::error::{Error, Result};
use crate::lab::observe::{self, Observed};
use crate::lab::roster::{self, Row};
use crate::lab::{down, expiry_after, is_expired, lab_ctx, plan, up, LabSettings};
use crate::names::seat_label;
use crate::resources::{iam, Ctx};
use crate::ui::Ui;

/// What the lab commands get from the command line.
pub struct Invocation {
    pub config: Option<PathBuf>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub output: OutputFormat,
    pub yes: bool,
}

async fn connect(invocation: &Invocation, region: &str) -> Aws {
    aws::connect(&ConnectOptions {
        region: region.to_string(),
        profile: invocation.profile.clone(),
        endpoint_url: invocation.endpoint_url.clone(),
        adaptive_retry: true,
    })
    .await
}

fn load(invocation: &Invocation) -> Result<(crate::config::Settings, LabSettings)> {
    let sources = Sources::from_process(invocation.config.clone(), invocation.region.clone());
    let (settings, raw_lab) = config::load_lab(&sources)?;
    let lab = crate::lab::settings::validate(&settings, raw_lab)?;
    Ok((settings, lab))
}

/// Observes the lab; its expiry is the one it was made with, else a new one.
async fn observe_lab<'a>(
    aws: &'a Aws,
    settings: &'a crate::config::Settings,
    ui: &'a Ui,
    expires_in: Option<std::time::Duration>,
) -> Result<(Observed, String)> {
    let probe = lab_ctx(aws, settings, ui, "");
    let observed = observe::observe(&probe, &iam::role_policies(&probe)).await?;
    let expires_at = observed
        .expires_at
        .clone()
        .or_else(|| expires_in.map(expiry_after))
        .unwrap_or_default();
    Ok((observed, expires_at))
}

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

fn planned_cost(settings: &crate::config::Settings, lab: &LabSettings) -> PlannedCost {
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
struct UpReport {
    plan: plan::PlanReport,
    cost: PlannedCost,
    seats: Vec<Row>,
    failed: Vec<FailedSeat>,
    roster_file: Option<String>,
}

#[derive(Serialize)]
struct FailedSeat {
    seat: u16,
    reason: String,
}

/// `glbox lab up`.
pub async fn up(
    invocation: &Invocation,
    ui: &Ui,
    with_bootstrap: bool,
    roster_path: &Path,
) -> Result<()> {
    let (settings, lab) = load(invocation)?;
    let aws = connect(invocation, &settings.region).await;
    // A plan without the lease first: a complete lab changes nothing at
    // all. With changes, the lease, then everything again under it.
    let (observed, expires_at) = observe_lab(&aws, &settings, ui, Some(lab.expires_in)).await?;
    let ctx = lab_ctx(&aws, &settings, ui, &expires_at);
    let plan = plan::make(&ctx, &lab, &observed, &expires_at, with_bootstrap).await?;
    // A lease left by a crashed run is taken (and so broken) even when
    // there is nothing else to do.
    if plan.is_noop() && !observed.lease_held {
        let run = Planned {
            observed,
            expires_at: expires_at.clone(),
            plan,
        };
        return up_planned(
            invocation,
            ui,
            &aws,
            &settings,
            &lab,
            with_bootstrap,
            roster_path,
            run,
            None,
        )
        .await;
    }
    let first = plan.report(&ctx, &lab);
    if !plan.is_noop() {
        crate::quotas::check(&ctx, &up::quota_needs(&lab, &plan, &observed)).await?;
        show_and_confirm(invocation, ui, &settings, &lab, &plan, &first)?;
    }
    let lease = crate::lease::acquire(&ctx, "lab up").await?;
    let result = async {
        let (observed, expires_at) = observe_lab(&aws, &settings, ui, Some(lab.expires_in)).await?;
        let again = lab_ctx(&aws, &settings, ui, &expires_at);
        let plan = plan::make(&again, &lab, &observed, &expires_at, with_bootstrap).await?;
        let run = Planned {
            observed,
            expires_at: expires_at.clone(),
            plan,
        };
        up_planned(
            invocation,
            ui,
            &aws,
            &settings,
            &lab,
            with_bootstrap,
            roster_path,
            run,
            Some(&first),
        )
        .await
    }
    .await;
    crate::lease::released(&ctx, lease, result).await
}

/// Shows the lab's plan and cost, and asks.
fn show_and_confirm(
    invocation: &Invocation,
    ui: &Ui,
    settings: &crate::config::Settings,
    lab: &LabSettings,
    plan: &plan::LabPlan,
    report: &plan::PlanReport,
) -> Result<()> {
    if invocation.output == OutputFormat::Text {
        print!("{}", report.text());
        let cost = planned_cost(settings, lab);
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
    confirm(ui, question, "changing the lab", invocation.yes)
}

/// A lab as observed and planned.
struct Planned {
    observed: Observed,
    expires_at: String,
    plan: plan::LabPlan,
}

#[allow(clippy::too_many_arguments)]
async fn up_planned(
    invocation: &Invocation,
    ui: &Ui,
    aws: &Aws,
    settings: &crate::config::Settings,
    lab: &LabSettings,
    with_bootstrap: bool,
    roster_path: &Path,
    run: Planned,
    confirmed: Option<&plan::PlanReport>,
) -> Result<()> {
    let Planned {
        observed,
        expires_at,
        plan,
    } = run;
    let ctx = lab_ctx(aws, settings, ui, &expires_at);
    warn_expired_labs(&ctx, &lab.name).await?;
    warn_unchanged_seats(ui, settings, &observed);
    for note in &observed.foreign {
        ui.warn(note);
    }
    let report = plan.report(&ctx, lab);
    let mut failures = up::Failures::new();
    let mut health = up::Health::new();
    if plan.is_noop() {
        if invocation.output == OutputFormat::Text {
            println!(
                "Lab {:?} in {} is complete: {} seat(s), nothing to do.",
                lab.name, settings.region, lab.seats
            );
        }
    } else {
        // Asked before the lease; again only if the plan changed meanwhile.
        let same = confirmed
            .is_some_and(|c| serde_json::to_value(c).ok() == serde_json::to_value(&report).ok());
        if !same {
            show_and_confirm(invocation, ui, settings, lab, &plan, &report)?;
        }
        failures = up::apply(&ctx, lab, &plan, &observed).await?;
        if with_bootstrap {
            health = up::bootstrap_seats(&ctx, lab, &plan, &mut failures).await?;
        }
    }
    // What the lab is now, for the roster.
    let (now, _) = observe_lab(aws, settings, ui, None).await?;
    let mut rows = roster::rows(&ctx, lab.seats, &now, &failures, &health);
    roster::fill_passwords(&ctx, &mut rows, |seat| now.seat(seat).password).await?;
    roster::write(roster_path, &roster::csv(&rows))?;
    let failed: Vec<FailedSeat> = failures
        .iter()
        .map(|(seat, reason)| FailedSeat {
            seat: *seat,
            reason: reason.clone(),
        })
        .collect();
    match invocation.output {
        OutputFormat::Json => print_json(&UpReport {
            plan: report,
            cost: planned_cost(settings, lab),
            seats: rows.clone(),
            failed,
            roster_file: Some(roster_path.display().to_string()),
        }),
        OutputFormat::Text => {
            print!("{}", seat_table(&rows));
            println!(
                "Roster with the passwords: {} (mode 0600). The lab expires {expires_at}: glbox lab down removes it, glbox lab reap removes every expired lab.",
                roster_path.display()
            );
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = failures
        .iter()
        .map(|(seat, reason)| format!("  {}: {reason}", seat_label(*seat)))
        .collect();
    Err(Error::Refused(format!(
        "{} of {} seat(s) failed (the others are up):\n{}\n  fix: correct the causes above, then re-run glbox lab up (it retries only what is missing)",
        failures.len(),
        lab.seats,
        lines.join("\n")
    )))
}

/// Labs build seats; they do not resize them. Seats made with another
/// instance type or data volume size keep it, and glbox says so.
fn warn_unchanged_seats(ui: &Ui, settings: &crate::config::Settings, observed: &Observed) {
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

fn seat_table(rows: &[Row]) -> String {
    let mut out = format!(
        "  {:<6} {:<21} {:<10} {:<30} state\n",
        "seat", "instance", "market", "url"
    );
    for r in rows {
        out.push_str(&format!(
            "  {:<6} {:<21} {:<10} {:<30} {}\n",
            seat_label(r.seat),
            r.instance_id.as_deref().unwrap_or("-"),
            r.market.unwrap_or("-"),
            r.url.as_deref().unwrap_or("-"),
            r.state
        ));
    }
    out
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

#[derive(Serialize)]
struct StatusReport {
    lab: String,
    region: String,
    expires_at: Option<String>,
    expired: bool,
    seats: Vec<Row>,
    cost: RunningCost,
}

/// What the lab costs per hour as it stands: instances while they run,
/// volumes and public addresses whether or not they do.
#[derive(Debug, Serialize)]
pub struct RunningCost {
    pub running_instances: usize,
    pub seats_with_storage: usize,
    /// At on-demand prices; spot seats cost less.
    pub hourly_usd: f64,
    /// False when the price table lacks the type or region.
    pub complete: bool,
    pub note: String,
}

/// The lab's cost per hour from one seat's estimate, scaled by what exists.
pub fn running_cost(
    settings: &crate::config::Settings,
    rows: &[Row],
    observed: &Observed,
) -> RunningCost {
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

/// `glbox lab status`.
pub async fn status(invocation: &Invocation, ui: &Ui) -> Result<()> {
    let (settings, lab) = load(invocation)?;
    let aws = connect(invocation, &settings.region).await;
    let (observed, expires_at) = observe_lab(&aws, &settings, ui, None).await?;
    let ctx = lab_ctx(&aws, &settings, ui, &expires_at);
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
    match invocation.output {
        OutputFormat::Json => print_json(&StatusReport {
            lab: lab.name.clone(),
            region: settings.region.clone(),
            expires_at: observed.expires_at.clone(),
            expired,
            seats: rows,
            cost,
        }),
        OutputFormat::Text => {
            if !observed.exists() {
                println!(
                    "Lab {:?} in {} does not exist (glbox lab up makes it).",
                    lab.name, settings.region
                );
                return Ok(());
            }
            let ready = rows.iter().filter(|r| r.state == "ready").count();
            println!(
                "Lab {:?} in {}: {ready} of {} seat(s) ready, expires {}{}",
                lab.name,
                settings.region,
                lab.seats,
                if expires_at.is_empty() {
                    "(unknown)"
                } else {
                    &expires_at
                },
                if expired {
                    " (EXPIRED: glbox lab down or glbox lab reap)"
                } else {
                    ""
                }
            );
            print!("{}", seat_table(&rows));
            println!(
                "Cost now: {}${:.2} per hour ({} instance(s) running, {} seat(s) with volumes and addresses); {}",
                if cost.complete { "about " } else { "at least " },
                cost.hourly_usd,
                cost.running_instances,
                cost.seats_with_storage,
                cost.note
            );
        }
    }
    Ok(())
}

/// `glbox lab down`.
pub async fn down_lab(invocation: &Invocation, ui: &Ui) -> Result<()> {
    let (settings, lab) = load(invocation)?;
    let aws = connect(invocation, &settings.region).await;
    remove_lab(invocation, ui, &aws, &settings, &lab.name).await
}

async fn remove_lab(
    invocation: &Invocation,
    ui: &Ui,
    aws: &Aws,
    settings: &crate::config::Settings,
    name: &str,
) -> Result<()> {
    let text = invocation.output == OutputFormat::Text;
    let removed = remove(ui, aws, settings, invocation.yes, text).await?;
    match (invocation.output, removed) {
        (OutputFormat::Json, removed) => print_json(&removed.unwrap_or_default()),
        (OutputFormat::Text, None) => {
            println!("Lab {name:?} in {} has nothing to remove.", settings.region)
        }
        (OutputFormat::Text, Some(removed)) => println!(
            "Removed lab {name:?}: {} instance(s), {} volume(s), {} address(es), {} password(s), {} shared resource(s).",
            removed.instances.len(),
            removed.volumes.len(),
            removed.addresses.len(),
            removed.parameters.len(),
            removed.shared.len()
        ),
    }
    Ok(())
}

/// Removes the lab `settings` names after confirmation (shown first when
/// `show`); `None` when it has nothing to remove.
async fn remove(
    ui: &Ui,
    aws: &Aws,
    settings: &crate::config::Settings,
    yes: bool,
    show: bool,
) -> Result<Option<down::Removed>> {
    let (observed, expires_at) = observe_lab(aws, settings, ui, None).await?;
    for note in &observed.foreign {
        ui.warn(note);
    }
    if !observed.exists() {
        return Ok(None);
    }
    if show {
        let seats: Vec<String> = observed.seats.keys().map(|s| seat_label(*s)).collect();
        println!(
            "Removing lab {:?} in {}: seats {} (instances, data volumes and their data, addresses, passwords), the security group and the instance role.",
            settings.name,
            settings.region,
            if seats.is_empty() { "none".to_string() } else { seats.join(", ") }
        );
    }
    confirm(
        ui,
        &format!("Remove lab {:?} and its data?", settings.name),
        "removing the lab",
        yes,
    )?;
    let ctx = lab_ctx(aws, settings, ui, &expires_at);
    let lease = crate::lease::acquire(&ctx, "lab down").await?;
    let result = async {
        // Under the lease, what is there now (another run may have changed it).
        let (observed, _) = observe_lab(aws, settings, ui, None).await?;
        down::down(&ctx, &observed).await
    }
    .await;
    Ok(Some(crate::lease::released(&ctx, lease, result).await?))
}

#[derive(Serialize)]
struct ReapReport {
    region: String,
    reaped: Vec<String>,
    kept: Vec<down::FoundLab>,
    skipped: Vec<SkippedLab>,
}

/// An expired lab `reap` could not remove, and why.
#[derive(Clone, Serialize)]
struct SkippedLab {
    name: String,
    reason: String,
}

/// `glbox lab reap`: removes every lab of the region whose expiry is past.
/// Needs no lab configuration, only a region (for cron).
pub async fn reap(invocation: &Invocation, ui: &Ui) -> Result<()> {
    let sources = Sources::from_process(invocation.config.clone(), invocation.region.clone());
    let region = config::region_only(&sources)?;
    let aws = connect(invocation, &region).await;
    let scan = config::minimal("reap", &region)?;
    let ctx = lab_ctx(&aws, &scan, ui, "");
    let now = time::OffsetDateTime::now_utc();
    let (expired, kept): (Vec<_>, Vec<_>) =
        down::find_labs(&ctx).await?.into_iter().partition(|lab| {
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
            Ok(settings) => remove(ui, &aws, &settings, invocation.yes, false).await,
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
    match invocation.output {
        OutputFormat::Json => print_json(&ReapReport {
            region: region.clone(),
            reaped,
            kept,
            skipped: skipped.clone(),
        }),
        OutputFormat::Text => {
            if reaped.is_empty() {
                println!("No expired lab in {region}.");
            } else {
                println!(
                    "Removed {} expired lab(s) in {region}: {}.",
                    reaped.len(),
                    reaped.join(", ")
                );
            }
            for lab in &kept {
                println!(
                    "  kept lab {:?} (expires {})",
                    lab.name,
                    lab.expires_at.as_deref().unwrap_or("never: no expiry tag")
                );
            }
            for lab in &skipped {
                println!("  skipped lab {:?}: {}", lab.name, lab.reason);
            }
        }
    }
    if !skipped.is_empty() {
        let names: Vec<&str> = skipped.iter().map(|l| l.name.as_str()).collect();
        return Err(Error::Refused(format!(
            "{} expired lab(s) could not be removed: {} (the others were)\n  fix: see the reasons above; glbox lab down --config <the lab's file> removes one lab",
            skipped.len(),
            names.join(", ")
        )));
    }
    Ok(())
}
