//! The data volume's existence: made before the instance, whose user data
//! names it. Its plan line and its status come with its attachment (see
//! `volume_attachment`); `down` keeps it unless asked.

use crate::deploy::down::{DownItem, DownOptions, DownOutcome};
use crate::deploy::plan::{Observed, Plan};
use crate::deploy::{Component, Made, Part, Removal, Step, Work};
use crate::resources::{data_volume, Ctx};

pub const PHASE: &str = "data volume";

pub const STEP: Step = Step {
    phases: &[PHASE],
    checkpoint: "data-volume",
    part: Part::Box,
    component: &DataVolume,
};

pub struct DataVolume;

impl Component for DataVolume {
    fn apply<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        plan: &'a Plan,
        made: &'a mut Made,
    ) -> Option<Work<'a, ()>> {
        Some(Box::pin(async move {
            let zone = &plan.placement.availability_zone;
            let id = data_volume::ensure_exists(ctx, &plan.data_volume, zone).await?;
            made.data_volume_id = Some(id);
            Ok(())
        }))
    }

    fn down_items(
        &self,
        _ctx: &Ctx<'_>,
        observed: &Observed,
        options: DownOptions,
    ) -> Vec<DownItem> {
        let action = match (options.delete_data, options.snapshot) {
            (false, _) => "keep",
            (true, true) => "snapshot, then delete",
            (true, false) => "delete without snapshot",
        };
        observed
            .data_volumes
            .iter()
            .map(|v| DownItem::new("data_volume", &v.id, action))
            .collect()
    }

    fn removals<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        observed: &'a Observed,
        options: DownOptions,
    ) -> Vec<Removal<'a>> {
        if observed.data_volumes.is_empty() {
            return Vec::new();
        }
        if !options.delete_data {
            let kept = DownOutcome {
                kept_volumes: observed.data_volumes.iter().map(|v| v.id.clone()).collect(),
                ..DownOutcome::default()
            };
            return vec![Removal {
                phase: None,
                work: Box::pin(async move { Ok(kept) }),
            }];
        }
        vec![Removal {
            phase: Some(PHASE),
            work: Box::pin(async move {
                let mut outcome = DownOutcome::default();
                for volume in &observed.data_volumes {
                    outcome
                        .snapshots
                        .extend(data_volume::delete(ctx, volume, options.snapshot).await?);
                    outcome.removed.push(volume.id.clone());
                }
                Ok(outcome)
            }),
        }]
    }
}
