//! `glbox plan`: what `up` would change, and what the box costs.

use serde::Serialize;

use crate::app::{App, Needs};
use crate::cli::UpArgs;
use crate::deploy::plan::{self, PlanReport};
use crate::error::Result;
use crate::output::Report;
use crate::resources::Action;

/// `plan --output json`: the plan's keys, plus the cost estimate.
#[derive(Serialize)]
pub struct PlanOutput {
    #[serde(flatten)]
    plan: PlanReport,
    cost: crate::cost::Estimate,
}

impl Report for PlanOutput {
    fn text(&self) -> String {
        plan_text(&self.plan) + &self.cost.table()
    }
}

pub async fn run(app: &App, args: &UpArgs) -> Result<PlanOutput> {
    let deployment = app
        .deployment(Needs {
            ssh_cidrs: true,
            ..Needs::default()
        })
        .await?;
    let ctx = deployment.ctx(app);
    let observed = plan::observe(&ctx).await?;
    let plan = plan::make(&ctx, &observed, !args.no_bootstrap).await?;
    Ok(PlanOutput {
        plan: plan.report(&ctx, &observed),
        cost: crate::cost::estimate(ctx.settings),
    })
}

/// The plan as `plan` and `up` show it: a line per resource, then the counts.
pub fn plan_text(report: &PlanReport) -> String {
    let mut out = format!(
        "Plan for deployment {:?} in {}:\n",
        report.deployment, report.region
    );
    for item in &report.resources {
        let marker = match item.action {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::NoChange => "=",
        };
        let id = item.id.as_deref().unwrap_or("(new)");
        out.push_str(&format!(
            "  {marker:>3} {:<17} {:<24} {:<22} {}\n",
            item.resource,
            item.name,
            id,
            item.action.label()
        ));
        for change in &item.changes {
            out.push_str(&format!("        {change}\n"));
        }
    }
    let count = |action| {
        report
            .resources
            .iter()
            .filter(|i| i.action == action)
            .count()
    };
    out.push_str(&format!(
        "{} to create, {} to update, {} to replace, {} to delete.\n",
        count(Action::Create),
        count(Action::Update),
        count(Action::Replace),
        count(Action::Delete)
    ));
    out
}
