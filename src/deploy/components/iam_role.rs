//! The instance's IAM role: its trust, its permissions boundary and its
//! inline policies.

use crate::deploy::down::{DownItem, DownOptions, DownOutcome};
use crate::deploy::plan::{Observed, Plan};
use crate::deploy::status::{entry, ResourceStatus, StatusView, MISSING};
use crate::deploy::{Component, Made, Part, Removal, Step, Work};
use crate::resources::iam::{self, RoleChange};
use crate::resources::{Ctx, PlanItem};

pub const PHASE: &str = "IAM role";

pub const STEP: Step = Step {
    phases: &[PHASE],
    checkpoint: "iam-role",
    part: Part::Identity,
    component: &IamRole,
};

pub struct IamRole;

/// `down`'s word for an IAM resource glbox may or may not delete.
pub fn ownership(owned: bool) -> &'static str {
    if owned {
        "delete"
    } else {
        "skip: not glbox's"
    }
}

impl Component for IamRole {
    fn items(&self, ctx: &Ctx<'_>, plan: &Plan, _observed: &Observed) -> Vec<PlanItem> {
        vec![plan.role.item(ctx)]
    }

    fn is_noop(&self, plan: &Plan) -> bool {
        plan.role == RoleChange::NoChange
    }

    fn apply<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        plan: &'a Plan,
        _made: &'a mut Made,
    ) -> Option<Work<'a, ()>> {
        Some(Box::pin(async move {
            iam::apply_role(ctx, &plan.role, &plan.policy).await?;
            Ok(())
        }))
    }

    fn down_items(
        &self,
        _ctx: &Ctx<'_>,
        observed: &Observed,
        _options: DownOptions,
    ) -> Vec<DownItem> {
        observed
            .role
            .iter()
            .map(|role| DownItem::new("iam_role", &role.name, ownership(role.owned)))
            .collect()
    }

    fn removals<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        observed: &'a Observed,
        _options: DownOptions,
    ) -> Vec<Removal<'a>> {
        observed
            .role
            .iter()
            .filter(|role| role.owned)
            .map(|role| Removal {
                phase: Some(PHASE),
                work: Box::pin(async move {
                    iam::delete_role(ctx, role).await?;
                    Ok(DownOutcome::removed(vec![role.name.clone()]))
                }),
            })
            .collect()
    }

    fn status(
        &self,
        _ctx: &Ctx<'_>,
        observed: &Observed,
        _view: &StatusView,
    ) -> Vec<ResourceStatus> {
        vec![entry(
            "iam_role",
            observed.role.as_ref().map(|r| r.name.clone()),
            match &observed.role {
                None => MISSING,
                Some(r) if !r.owned => "not glbox's",
                Some(r) if r.converged() => "present",
                Some(_) => "drifted",
            },
        )]
    }
}
