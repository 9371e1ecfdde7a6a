//! `glbox lab up | status | down | reap`: the lab's settings are loaded
//! (before any AWS call), the lab observed, then acted on.

pub mod down;
pub mod reap;
pub mod status;
pub mod up;

use crate::app::App;
use crate::aws::Aws;
use crate::config::Settings;
use crate::error::Result;
use crate::lab::observe::{self, Observed};
use crate::lab::roster::Row;
use crate::lab::{down as lab_down, expiry_after, lab_ctx};
use crate::names::seat_label;
use crate::resources::iam;
use crate::ui::Ui;

/// Observes the lab; its expiry is the one it was made with, else a new one.
pub(crate) async fn observe_lab<'a>(
    aws: &'a Aws,
    settings: &'a Settings,
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

pub(crate) fn seat_table(rows: &[Row]) -> String {
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

/// Removes the lab `settings` names after confirmation (shown first when
/// `show`); `None` when it has nothing to remove.
pub(crate) async fn remove(
    app: &App,
    aws: &Aws,
    settings: &Settings,
    show: bool,
) -> Result<Option<lab_down::Removed>> {
    let ui = &app.ui;
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
    app.confirm(
        &format!("Remove lab {:?} and its data?", settings.name),
        "removing the lab",
    )?;
    let ctx = lab_ctx(aws, settings, ui, &expires_at);
    let lease = crate::lease::acquire(&ctx, "lab down").await?;
    let result = async {
        // Under the lease, what is there now (another run may have changed it).
        let (observed, _) = observe_lab(aws, settings, ui, None).await?;
        lab_down::down(&ctx, &observed).await
    }
    .await;
    Ok(Some(crate::lease::released(&ctx, lease, result).await?))
}
