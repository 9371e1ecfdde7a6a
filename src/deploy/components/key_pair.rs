//! The SSH key pair (SSH mode), imported from the configured public key; one
//! left from SSH mode is deleted inside the phase before, unannounced.

use crate::config::Settings;
use crate::deploy::down::{DownItem, DownOptions, DownOutcome};
use crate::deploy::plan::{Observed, Plan};
use crate::deploy::status::{entry, ResourceStatus, StatusView, MISSING};
use crate::deploy::{Component, Made, Part, Removal, Step, Work};
use crate::resources::{key_pair, Ctx, PlanItem};

pub const PHASE: &str = "SSH key pair";

pub const STEP: Step = Step {
    phases: &[PHASE],
    checkpoint: "key-pair",
    part: Part::Box,
    component: &KeyPair,
};

pub struct KeyPair;

impl Component for KeyPair {
    fn shown(&self, settings: &Settings, _with_bootstrap: bool) -> bool {
        settings.ssh_access().is_some()
    }

    fn items(&self, ctx: &Ctx<'_>, plan: &Plan, _observed: &Observed) -> Vec<PlanItem> {
        plan.key_pair.item(ctx).into_iter().collect()
    }

    fn is_noop(&self, plan: &Plan) -> bool {
        matches!(
            plan.key_pair,
            key_pair::Change::NoChange { .. } | key_pair::Change::Absent
        )
    }

    fn apply<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        plan: &'a Plan,
        _made: &'a mut Made,
    ) -> Option<Work<'a, ()>> {
        Some(Box::pin(key_pair::apply(ctx, &plan.key_pair)))
    }

    fn down_items(
        &self,
        _ctx: &Ctx<'_>,
        observed: &Observed,
        _options: DownOptions,
    ) -> Vec<DownItem> {
        observed
            .key_pair
            .iter()
            .map(|k| DownItem::new("key_pair", &k.name, "delete"))
            .collect()
    }

    fn removals<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        observed: &'a Observed,
        _options: DownOptions,
    ) -> Vec<Removal<'a>> {
        observed
            .key_pair
            .iter()
            .map(|key| Removal {
                phase: Some(PHASE),
                work: Box::pin(async move {
                    key_pair::delete(ctx).await?;
                    Ok(DownOutcome::removed(vec![key.id.clone()]))
                }),
            })
            .collect()
    }

    fn status(
        &self,
        ctx: &Ctx<'_>,
        observed: &Observed,
        _view: &StatusView,
    ) -> Vec<ResourceStatus> {
        if ctx.settings.ssh_access().is_none() && observed.key_pair.is_none() {
            return Vec::new();
        }
        let key = observed.key_pair.as_ref();
        vec![entry(
            "key_pair",
            key.map(|k| k.name.clone()),
            if key.is_some() { "present" } else { MISSING },
        )]
    }
}
