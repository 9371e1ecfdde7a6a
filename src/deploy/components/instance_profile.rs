//! The instance profile that hands the role to the instance.

use super::iam_role::ownership;
use crate::deploy::down::{DownItem, DownOptions, DownOutcome};
use crate::deploy::plan::{Observed, Plan};
use crate::deploy::status::{entry, ResourceStatus, StatusView, MISSING};
use crate::deploy::{Component, Made, Part, Removal, Step, Work};
use crate::resources::iam::{self, ProfileChange};
use crate::resources::{Ctx, PlanItem};

pub const PHASE: &str = "instance profile";

pub const STEP: Step = Step {
    phases: &[PHASE],
    checkpoint: "instance-profile",
    part: Part::Identity,
    component: &InstanceProfile,
};

pub struct InstanceProfile;

impl Component for InstanceProfile {
    fn items(&self, ctx: &Ctx<'_>, plan: &Plan, _observed: &Observed) -> Vec<PlanItem> {
        vec![plan.profile.item(ctx)]
    }

    fn is_noop(&self, plan: &Plan) -> bool {
        plan.profile == ProfileChange::NoChange
    }

    fn apply<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        plan: &'a Plan,
        _made: &'a mut Made,
    ) -> Option<Work<'a, ()>> {
        Some(Box::pin(async move {
            iam::apply_profile(ctx, &plan.profile).await?;
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
            .profile
            .iter()
            .map(|p| DownItem::new("instance_profile", &p.name, ownership(p.owned)))
            .collect()
    }

    fn removals<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        observed: &'a Observed,
        _options: DownOptions,
    ) -> Vec<Removal<'a>> {
        observed
            .profile
            .iter()
            .filter(|profile| profile.owned)
            .map(|profile| Removal {
                phase: Some(PHASE),
                work: Box::pin(async move {
                    iam::delete_profile(ctx, profile).await?;
                    Ok(DownOutcome::removed(vec![profile.name.clone()]))
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
            "instance_profile",
            observed.profile.as_ref().map(|p| p.name.clone()),
            match &observed.profile {
                None => MISSING,
                Some(p) if !p.owned => "not glbox's",
                Some(_) => "present",
            },
        )]
    }
}
