//! The security group: GitLab's ports open to `network.http_cidrs`.

use crate::deploy::down::{delete_group_when_free, DownItem, DownOptions, DownOutcome};
use crate::deploy::plan::{Observed, Plan};
use crate::deploy::status::{entry, ResourceStatus, StatusView, MISSING};
use crate::deploy::{Component, Made, Part, Removal, Step, Work};
use crate::resources::{security_group, Ctx, PlanItem};

pub const PHASE: &str = "security group";

pub const STEP: Step = Step {
    phases: &[PHASE],
    checkpoint: "security-group",
    part: Part::Box,
    component: &SecurityGroup,
};

pub struct SecurityGroup;

impl Component for SecurityGroup {
    fn items(&self, ctx: &Ctx<'_>, plan: &Plan, _observed: &Observed) -> Vec<PlanItem> {
        vec![plan.security_group.item(ctx)]
    }

    fn is_noop(&self, plan: &Plan) -> bool {
        matches!(plan.security_group, security_group::Change::NoChange { .. })
    }

    fn apply<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        plan: &'a Plan,
        made: &'a mut Made,
    ) -> Option<Work<'a, ()>> {
        Some(Box::pin(async move {
            let id =
                security_group::apply(ctx, &plan.security_group, &plan.placement.vpc_id).await?;
            made.security_group_id = Some(id);
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
            .security_group
            .iter()
            .map(|g| DownItem::new("security_group", &g.id, "delete"))
            .collect()
    }

    fn removals<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        observed: &'a Observed,
        _options: DownOptions,
    ) -> Vec<Removal<'a>> {
        observed
            .security_group
            .iter()
            .map(|group| Removal {
                phase: Some(PHASE),
                work: Box::pin(async move {
                    delete_group_when_free(ctx, group).await?;
                    Ok(DownOutcome::removed(vec![group.id.clone()]))
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
        let group = observed.security_group.as_ref();
        vec![entry(
            "security_group",
            group.map(|g| g.id.clone()),
            if group.is_some() { "present" } else { MISSING },
        )]
    }
}
