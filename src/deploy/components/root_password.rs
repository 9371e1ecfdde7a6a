//! GitLab's root password in SSM Parameter Store. `down` removes with it
//! every parameter of the deployment but the lease, the ownership records
//! it still needs and, while the data volume is kept, the secrets of
//! `gitlab.extra_config` (see `down::removable_parameters`).

use crate::deploy::down::{kept_secrets, removable_parameters, DownItem, DownOptions, DownOutcome};
use crate::deploy::plan::{Observed, Plan};
use crate::deploy::{Component, Made, Part, Removal, Step, Work};
use crate::resources::{parameters, Ctx, PlanItem};

pub const PHASE: &str = "root password";
pub const DOWN_PHASE: &str = "SSM parameters";

pub const STEP: Step = Step {
    phases: &[PHASE],
    checkpoint: "root-password",
    part: Part::Stored,
    component: &RootPassword,
};

pub struct RootPassword;

impl Component for RootPassword {
    fn items(&self, ctx: &Ctx<'_>, plan: &Plan, _observed: &Observed) -> Vec<PlanItem> {
        vec![plan.root_password.item(ctx)]
    }

    fn is_noop(&self, plan: &Plan) -> bool {
        plan.root_password == parameters::Change::NoChange
    }

    fn apply<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        plan: &'a Plan,
        _made: &'a mut Made,
    ) -> Option<Work<'a, ()>> {
        Some(Box::pin(parameters::apply(ctx, &plan.root_password)))
    }

    fn down_items(
        &self,
        ctx: &Ctx<'_>,
        observed: &Observed,
        options: DownOptions,
    ) -> Vec<DownItem> {
        let kept = kept_secrets(ctx, observed, options);
        removable_parameters(ctx, observed, options)
            .iter()
            .map(|p| DownItem::new("parameter", p, "delete"))
            .chain(kept.iter().map(|p| {
                DownItem::new(
                    "parameter",
                    p,
                    "keep: a secret of gitlab.extra_config, deleted by --delete-data",
                )
            }))
            .collect()
    }

    fn removals<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        observed: &'a Observed,
        options: DownOptions,
    ) -> Vec<Removal<'a>> {
        let names = removable_parameters(ctx, observed, options);
        let kept = kept_secrets(ctx, observed, options);
        let mut removals = Vec::new();
        if !kept.is_empty() {
            let kept = DownOutcome {
                kept_secrets: kept,
                ..DownOutcome::default()
            };
            removals.push(Removal {
                phase: None,
                work: Box::pin(async move { Ok(kept) }),
            });
        }
        if !names.is_empty() {
            removals.push(Removal {
                phase: Some(DOWN_PHASE),
                work: Box::pin(async move {
                    parameters::delete(ctx, &names).await?;
                    Ok(DownOutcome::removed(names))
                }),
            });
        }
        removals
    }
}
