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
    let mut deployment = app
        .deployment(Needs {
            ssh_cidrs: true,
            ..Needs::default()
        })
        .await?;
    deployment.settings.gitlab.replace_gitlab_rb = args.replace_gitlab_rb;
    let ctx = deployment.ctx(app);
    crate::secrets::warn_unstored(ctx.settings, ctx.ui);
    let observed = plan::observe(&ctx).await?;
    let plan = plan::make(&ctx, &observed, !args.no_bootstrap).await?;
    let mut report = plan.report(&ctx, &observed);
    if matches!(
        plan.bootstrap,
        Some(crate::bootstrap::Change::Update { .. })
    ) {
        note_hand_edit(&ctx, &observed, &mut report).await;
    }
    Ok(PlanOutput {
        plan: report,
        cost: crate::cost::estimate(ctx.settings),
    })
}

/// How long `plan` gives the box to say how its gitlab.rb stands.
const GITLAB_RB_LOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// When the plan would bring GitLab's configuration up to date, the box is
/// asked whether its gitlab.rb was changed by hand (the bootstrap would stop
/// there): said on the GitLab line. Only then: a plan with nothing for
/// GitLab to do never reaches the box. A box that cannot be asked is said,
/// not an error.
async fn note_hand_edit(
    ctx: &crate::resources::Ctx<'_>,
    observed: &plan::Observed,
    report: &mut PlanReport,
) {
    let look = async {
        let endpoint = crate::endpoint::running(
            ctx,
            &observed.instances,
            &observed.data_volumes,
            &observed.addresses,
        )?;
        let transport = endpoint.transport(ctx).await?;
        let script = crate::verify::gitlab_rb_state_script();
        transport
            .run(ctx, "a look at gitlab.rb", &script, GITLAB_RB_LOOK_TIMEOUT)
            .await
    };
    match look.await {
        Ok(outcome)
            if outcome.succeeded() && outcome.output.lines().any(|l| l.trim() == "changed") =>
        {
            if let Some(item) = report.resources.iter_mut().find(|i| i.resource == "gitlab") {
                item.changes.push(crate::verify::HAND_EDIT_NOTE.to_string());
            }
        }
        Ok(_) => {}
        Err(e) => ctx.ui.info(&format!(
            "could not ask the box whether gitlab.rb was changed by hand: {e}"
        )),
    }
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
