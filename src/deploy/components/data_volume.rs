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
        let replaced = observed
            .replaced_volumes
            .iter()
            .map(|v| DownItem::new("data_volume", &v.id, "keep: replaced by a restore"));
        observed
            .data_volumes
            .iter()
            .map(|v| DownItem::new("data_volume", &v.id, action))
            .chain(replaced)
            .collect()
    }

    fn removals<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        observed: &'a Observed,
        options: DownOptions,
    ) -> Vec<Removal<'a>> {
        // What a restore swapped out is kept, with or without --delete-data:
        // glbox never deletes it.
        let mut removals: Vec<Removal<'a>> = Vec::new();
        if !observed.replaced_volumes.is_empty() {
            let kept = DownOutcome {
                replaced_volumes: observed
                    .replaced_volumes
                    .iter()
                    .map(|v| v.id.clone())
                    .collect(),
                ..DownOutcome::default()
            };
            removals.push(Removal {
                phase: None,
                work: Box::pin(async move { Ok(kept) }),
            });
        }
        if observed.data_volumes.is_empty() {
            return removals;
        }
        if !options.delete_data {
            let kept = DownOutcome {
                kept_volumes: observed.data_volumes.iter().map(|v| v.id.clone()).collect(),
                ..DownOutcome::default()
            };
            removals.push(Removal {
                phase: None,
                work: Box::pin(async move { Ok(kept) }),
            });
            return removals;
        }
        removals.push(Removal {
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
        });
        removals
    }
}
