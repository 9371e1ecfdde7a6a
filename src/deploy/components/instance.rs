//! The EC2 instance: launched (or replaced) with the group, the profile and
//! the user data that mounts the data volume; started, resized and
//! repaired in place; duplicates of a crashed run terminated.

use crate::deploy::down::{DownItem, DownOptions, DownOutcome};
use crate::deploy::plan::{Observed, Plan};
use crate::deploy::status::{entry, ResourceStatus, StatusView, MISSING};
use crate::deploy::{earlier, Component, Made, Part, Removal, Step, Work};
use crate::resources::{instance, Ctx, PlanItem};

pub const PHASE: &str = "instance";

pub const STEP: Step = Step {
    phases: &[PHASE],
    checkpoint: "instance",
    part: Part::Box,
    component: &Instance,
};

pub struct Instance;

impl Component for Instance {
    fn items(&self, ctx: &Ctx<'_>, plan: &Plan, _observed: &Observed) -> Vec<PlanItem> {
        plan.instance.items(ctx)
    }

    fn is_noop(&self, plan: &Plan) -> bool {
        plan.instance.is_noop()
    }

    fn apply<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        plan: &'a Plan,
        made: &'a mut Made,
    ) -> Option<Work<'a, ()>> {
        Some(Box::pin(async move {
            let inputs = instance::Inputs {
                security_group: earlier(&made.security_group_id, "security group")?,
                data_volume_id: earlier(&made.data_volume_id, "data volume")?,
            };
            let launched = instance::apply(ctx, &plan.instance, &inputs).await?;
            made.instance = Some(launched);
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
            .live_instances()
            .iter()
            .map(|i| DownItem::new("instance", &i.id, "terminate"))
            .collect()
    }

    fn removals<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        observed: &'a Observed,
        _options: DownOptions,
    ) -> Vec<Removal<'a>> {
        let live = observed.live_instances();
        if live.is_empty() {
            return Vec::new();
        }
        vec![Removal {
            phase: Some(PHASE),
            work: Box::pin(async move {
                let mut removed = Vec::new();
                for instance in live {
                    instance::terminate(ctx, &instance.id).await?;
                    removed.push(instance.id);
                }
                Ok(DownOutcome::removed(removed))
            }),
        }]
    }

    fn status(
        &self,
        _ctx: &Ctx<'_>,
        _observed: &Observed,
        view: &StatusView,
    ) -> Vec<ResourceStatus> {
        let primary = view.primary.as_ref();
        let mut entries = vec![entry(
            "instance",
            primary.map(|i| i.id.clone()),
            primary.map_or(MISSING.to_string(), |i| {
                format!("{} ({})", i.state, i.instance_type)
            }),
        )];
        entries.extend(view.duplicates.iter().map(|extra| {
            entry(
                "instance",
                Some(extra.id.clone()),
                format!("{} (duplicate)", extra.state),
            )
        }));
        entries
    }
}
