//! The bucket for GitLab's backups (S3 backups on). `down` keeps it, and
//! says how much it holds, unless `--delete-backups`.

use crate::deploy::down::{DownItem, DownOptions, DownOutcome, KeptBucket};
use crate::deploy::plan::{Observed, Plan};
use crate::deploy::status::{entry, ResourceStatus, StatusView, MISSING};
use crate::deploy::{Component, Made, Part, Removal, Step, Work};
use crate::resources::backup::bucket;
use crate::resources::{Ctx, PlanItem};

pub const PHASE: &str = "backup bucket";

pub const STEP: Step = Step {
    phases: &[PHASE],
    checkpoint: "backup-bucket",
    part: Part::Stored,
    component: &BackupBucket,
};

pub struct BackupBucket;

fn keep_days(ctx: &Ctx<'_>) -> Option<u32> {
    ctx.settings.backup.s3.map(|s3| s3.keep_days)
}

impl Component for BackupBucket {
    fn shown(&self, settings: &crate::config::Settings, _with_bootstrap: bool) -> bool {
        settings.backup.s3.is_some()
    }

    fn items(&self, ctx: &Ctx<'_>, plan: &Plan, _observed: &Observed) -> Vec<PlanItem> {
        keep_days(ctx)
            .map(|days| plan.backup_bucket.item(days))
            .into_iter()
            .collect()
    }

    fn is_noop(&self, plan: &Plan) -> bool {
        plan.backup_bucket.is_noop()
    }

    fn apply<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        plan: &'a Plan,
        _made: &'a mut Made,
    ) -> Option<Work<'a, ()>> {
        // With S3 backups off the change is none: the step still passes its
        // checkpoint, as every step does.
        let days = keep_days(ctx).unwrap_or_default();
        Some(Box::pin(bucket::apply(ctx, &plan.backup_bucket, days)))
    }

    fn down_items(
        &self,
        _ctx: &Ctx<'_>,
        observed: &Observed,
        options: DownOptions,
    ) -> Vec<DownItem> {
        observed
            .backup_bucket
            .iter()
            .map(|b| {
                let action = match (b.owned, options.delete_backups) {
                    (false, _) => "skip: not glbox's",
                    (true, false) => "keep",
                    (true, true) => "empty, then delete",
                };
                DownItem::new("backup_bucket", &b.name, action)
            })
            .collect()
    }

    fn removals<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        observed: &'a Observed,
        options: DownOptions,
    ) -> Vec<Removal<'a>> {
        let Some(found) = observed.backup_bucket.as_ref().filter(|b| b.owned) else {
            return Vec::new();
        };
        if !options.delete_backups {
            return vec![Removal {
                phase: None,
                work: Box::pin(async move {
                    let objects = crate::aws::s3::objects(&ctx.aws.s3, &found.name).await?;
                    Ok(DownOutcome {
                        kept_bucket: Some(KeptBucket {
                            name: found.name.clone(),
                            bytes: objects.iter().map(|o| o.size).sum(),
                        }),
                        ..DownOutcome::default()
                    })
                }),
            }];
        }
        vec![Removal {
            phase: Some(PHASE),
            work: Box::pin(async move {
                bucket::delete(ctx, &found.name).await?;
                Ok(DownOutcome::removed(vec![found.name.clone()]))
            }),
        }]
    }

    fn status(
        &self,
        ctx: &Ctx<'_>,
        observed: &Observed,
        _view: &StatusView,
    ) -> Vec<ResourceStatus> {
        let wanted = ctx.settings.backup.s3.is_some();
        let found = observed.backup_bucket.as_ref();
        let state = match (found, wanted) {
            (None, false) => return Vec::new(),
            (None, true) => MISSING,
            (Some(b), _) if !b.owned => "not glbox's",
            (Some(_), false) => "kept (backup.s3 is off)",
            (Some(b), true) if b.drifted.is_empty() => "present",
            (Some(_), true) => "drifted",
        };
        vec![entry("backup_bucket", found.map(|b| b.name.clone()), state)]
    }
}
