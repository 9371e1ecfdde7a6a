//! `glbox status`: the deployment's resources, addresses and URL.

use std::fmt::Write;

use serde::Serialize;

use crate::app::{App, Needs};
use crate::cli::StatusArgs;
use crate::deploy::status::Status;
use crate::error::Result;
use crate::output::Report;

#[derive(Serialize)]
#[serde(transparent)]
pub struct StatusReport(Status);

pub async fn run(app: &App, args: &StatusArgs) -> Result<StatusReport> {
    let deployment = app.deployment(Needs::default()).await?;
    let ctx = deployment.ctx(app);
    let observed = crate::deploy::plan::observe(&ctx).await?;
    super::warn_email_problem(&ctx, &observed);
    let mut report = crate::deploy::status::status(&ctx, &observed);
    report.backups = super::backups::newest(&ctx, &observed).await?;
    if args.show_password {
        report.root_password = Some(crate::resources::parameters::root_password(&ctx).await?);
    }
    Ok(StatusReport(report))
}

impl Report for StatusReport {
    fn text(&self) -> String {
        let report = &self.0;
        let mut out = format!(
            "Deployment {:?} in {}: {}\n",
            report.deployment,
            report.region,
            if report.complete {
                "complete"
            } else {
                "incomplete (run glbox up)"
            }
        );
        for r in &report.resources {
            let id = r.id.as_deref().unwrap_or("-");
            let _ = writeln!(out, "  {:<17} {id:<24} {}", r.resource, r.state);
        }
        let mut line = |label: &str, value: &Option<String>| {
            if let Some(value) = value {
                let _ = writeln!(out, "  {label}{value}");
            }
        };
        line("public IP:  ", &report.public_ip);
        line("public DNS: ", &report.public_dns);
        line("private IP: ", &report.private_ip);
        line("URL:        ", &report.url);
        if let Some(email) = &report.email {
            out.push_str(&email_status(email));
        }
        if let Some(newest) = &report.backups {
            out.push_str(&super::backups::newest_text(newest));
        }
        if let Some(password) = &report.root_password {
            let _ = writeln!(out, "  root password: {password}");
        }
        out
    }
}

fn email_status(email: &crate::email::Report) -> String {
    let identity = email
        .identity
        .as_ref()
        .map_or("no SES identity".to_string(), |i| {
            format!(
                "verification {}, DKIM {}",
                i.verification.to_lowercase(),
                i.dkim_status.to_lowercase()
            )
        });
    let mut out = format!(
        "  email:      {} in SES {}: {identity}\n",
        email.domain, email.ses_region
    );
    if email.sandbox == Some(true) {
        out.push_str("              SES sandbox: only verified recipients, 200 a day (request production access in the SES console)\n");
    }
    if email
        .identity
        .as_ref()
        .is_some_and(|i| !(i.verified() && i.dkim_verified()))
    {
        out.push_str("              DNS records to publish: glbox email dns\n");
    }
    out
}
