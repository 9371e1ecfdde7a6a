//! The snapshot schedule (a Data Lifecycle Manager policy and its role)
//! and the snapshots of the deployment. `up` converges the schedule, and
//! removes it with snapshots off; `down` removes it (a schedule left
//! behind would go on snapshotting the kept data volume) and keeps the
//! snapshots unless `--delete-backups`.

use crate::deploy::down::{DownItem, DownOptions, DownOutcome};
use crate::deploy::plan::{Observed, Plan};
use crate::deploy::status::{entry, ResourceStatus, StatusView, MISSING};
use crate::deploy::{Component, Made, Part, Removal, Step, Work};
use crate::resources::backup::{schedule, snapshots};
use crate::resources::{Ctx, PlanItem};

pub const PHASE: &str = "snapshot schedule";
pub const SNAPSHOTS_PHASE: &str = "snapshots";

pub const STEP: Step = Step {
    phases: &[PHASE],
    checkpoint: "snapshot-schedule",
    part: Part::Stored,
    component: &SnapshotSchedule,
};

pub struct SnapshotSchedule;

impl Component for SnapshotSchedule {
    fn shown(&self, settings: &crate::config::Settings, _with_bootstrap: bool) -> bool {
        settings.backup.snapshots.is_some()
    }

    fn items(&self, ctx: &Ctx<'_>, plan: &Plan, observed: &Observed) -> Vec<PlanItem> {
        plan.snapshot_schedule
            .items(&ctx.names, &observed.snapshot_schedule)
    }

    fn is_noop(&self, plan: &Plan) -> bool {
        plan.snapshot_schedule.is_noop()
    }

    fn apply<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        plan: &'a Plan,
        _made: &'a mut Made,
    ) -> Option<Work<'a, ()>> {
        Some(Box::pin(schedule::apply(
            ctx,
            &plan.snapshot_schedule,
            &plan.account,
        )))
    }

    fn down_items(
        &self,
        _ctx: &Ctx<'_>,
        observed: &Observed,
        options: DownOptions,
    ) -> Vec<DownItem> {
        let found = &observed.snapshot_schedule;
        let mut items: Vec<DownItem> = found
            .policies
            .iter()
            .map(|p| DownItem::new("snapshot_schedule", &p.id, "delete"))
            .collect();
        if let Some(role) = &found.role {
            let action = super::iam_role::ownership(role.owned);
            items.push(DownItem::new("dlm_role", &role.name, action));
        }
        let snapshot_action = match options.delete_backups {
            true => "delete",
            false => "keep",
        };
        items.extend(
            observed
                .snapshots
                .iter()
                .map(|s| DownItem::new("snapshot", &s.id, snapshot_action)),
        );
        items.extend(
            observed.unproven_snapshots.iter().map(|s| {
                DownItem::new("snapshot", &s.id, "skip: its volume is not glbox's record")
            }),
        );
        items
    }

    fn removals<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        observed: &'a Observed,
        options: DownOptions,
    ) -> Vec<Removal<'a>> {
        let found = &observed.snapshot_schedule;
        let mut removals = Vec::new();
        if !found.policies.is_empty() || found.role.as_ref().is_some_and(|r| r.owned) {
            removals.push(Removal {
                phase: Some(PHASE),
                work: Box::pin(async move {
                    Ok(DownOutcome::removed(schedule::delete(ctx, found).await?))
                }),
            });
        }
        if observed.snapshots.is_empty() {
            return removals;
        }
        removals.push(match options.delete_backups {
            true => Removal {
                phase: Some(SNAPSHOTS_PHASE),
                work: Box::pin(async move {
                    Ok(DownOutcome::removed(
                        snapshots::delete(ctx, &observed.snapshots).await?,
                    ))
                }),
            },
            false => Removal {
                phase: None,
                work: Box::pin(async move {
                    Ok(DownOutcome {
                        kept_snapshots: observed.snapshots.clone(),
                        ..DownOutcome::default()
                    })
                }),
            },
        });
        removals
    }

    fn status(
        &self,
        ctx: &Ctx<'_>,
        observed: &Observed,
        _view: &StatusView,
    ) -> Vec<ResourceStatus> {
        let wanted = schedule::wanted(&ctx.names, &ctx.settings.backup);
        let found = &observed.snapshot_schedule;
        let policy = found.policies.first();
        let state = match (&wanted, policy) {
            (None, None) => return Vec::new(),
            (Some(_), None) => MISSING.to_string(),
            (None, Some(_)) => "present (backup.snapshots is off: the next up removes it)".into(),
            (Some(spec), Some(p)) if p.enabled && p.spec.as_ref() == Some(spec) => {
                schedule::describe(spec)
            }
            (Some(_), Some(_)) => "drifted".into(),
        };
        vec![entry(
            "snapshot_schedule",
            policy.map(|p| p.id.clone()),
            state,
        )]
    }
}
