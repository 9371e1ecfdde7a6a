//! The data volume on the instance: attached (a new instance gets it at
//! launch), and modified to the configured size and performance. The
//! plan's `data_volume` line and its status entries are reported here,
//! after the instance's.

use crate::deploy::plan::{Observed, Plan};
use crate::deploy::status::{entry, ResourceStatus, StatusView, MISSING};
use crate::deploy::{earlier, Component, Made, Part, Step, Work};
use crate::resources::{data_volume, Ctx, PlanItem};

pub const PHASE: &str = "data volume attachment";

pub const STEP: Step = Step {
    phases: &[PHASE],
    checkpoint: "volume-attached",
    part: Part::Box,
    component: &VolumeAttachment,
};

pub struct VolumeAttachment;

impl Component for VolumeAttachment {
    fn items(&self, ctx: &Ctx<'_>, plan: &Plan, _observed: &Observed) -> Vec<PlanItem> {
        vec![plan.data_volume.item(ctx, &plan.extra_volumes)]
    }

    fn is_noop(&self, plan: &Plan) -> bool {
        matches!(plan.data_volume, data_volume::Change::NoChange { .. })
    }

    fn apply<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        plan: &'a Plan,
        made: &'a mut Made,
    ) -> Option<Work<'a, ()>> {
        Some(Box::pin(async move {
            let volume = earlier(&made.data_volume_id, "data volume")?;
            let instance = earlier(&made.instance, "instance")?;
            data_volume::converge(ctx, &plan.data_volume, volume, &instance.id).await
        }))
    }

    fn status(
        &self,
        _ctx: &Ctx<'_>,
        observed: &Observed,
        _view: &StatusView,
    ) -> Vec<ResourceStatus> {
        if observed.data_volumes.is_empty() {
            return vec![entry("data_volume", None, MISSING)];
        }
        observed
            .data_volumes
            .iter()
            .map(|v| {
                let attachment = match &v.attached_to {
                    Some(holder) => format!("attached to {holder}"),
                    None => "not attached".to_string(),
                };
                entry(
                    "data_volume",
                    Some(v.id.clone()),
                    format!("{}, {} GiB, {attachment}", v.state, v.size_gib),
                )
            })
            .collect()
    }
}
