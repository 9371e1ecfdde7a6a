//! The Elastic IP: allocated, recorded as glbox's and associated with the
//! instance (with `network.elastic_ip`), or released when turned off.

use crate::config::Settings;
use crate::deploy::down::{DownItem, DownOptions, DownOutcome};
use crate::deploy::plan::{Observed, Plan};
use crate::deploy::status::{entry, ResourceStatus, StatusView, MISSING};
use crate::deploy::{earlier, Component, Made, Part, Removal, Step, Work};
use crate::resources::{elastic_ip, Ctx, PlanItem};

pub const PHASE: &str = "Elastic IP";

pub const STEP: Step = Step {
    phases: &[PHASE],
    checkpoint: "elastic-ip",
    part: Part::Box,
    component: &ElasticIp,
};

pub struct ElasticIp;

impl Component for ElasticIp {
    fn shown(&self, settings: &Settings, _with_bootstrap: bool) -> bool {
        settings.elastic_ip
    }

    fn items(&self, ctx: &Ctx<'_>, plan: &Plan, _observed: &Observed) -> Vec<PlanItem> {
        plan.elastic_ip.items(ctx)
    }

    fn is_noop(&self, plan: &Plan) -> bool {
        plan.elastic_ip.is_noop()
    }

    fn apply<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        plan: &'a Plan,
        made: &'a mut Made,
    ) -> Option<Work<'a, ()>> {
        Some(Box::pin(async move {
            let instance = earlier(&made.instance, "instance")?;
            made.elastic_ip = elastic_ip::apply(ctx, &plan.elastic_ip, &instance.id).await?;
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
            .addresses
            .iter()
            .map(|a| DownItem::new("elastic_ip", &a.public_ip, "release"))
            .collect()
    }

    fn removals<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        observed: &'a Observed,
        _options: DownOptions,
    ) -> Vec<Removal<'a>> {
        if observed.addresses.is_empty() {
            return Vec::new();
        }
        vec![Removal {
            phase: Some(PHASE),
            work: Box::pin(async move {
                let mut removed = Vec::new();
                for address in &observed.addresses {
                    elastic_ip::release(ctx, address).await?;
                    removed.push(address.allocation_id.clone());
                }
                Ok(DownOutcome::removed(removed))
            }),
        }]
    }

    fn status(
        &self,
        ctx: &Ctx<'_>,
        observed: &Observed,
        _view: &StatusView,
    ) -> Vec<ResourceStatus> {
        if ctx.settings.elastic_ip && observed.addresses.is_empty() {
            return vec![entry("elastic_ip", None, MISSING)];
        }
        observed
            .addresses
            .iter()
            .map(|a| {
                let association = match &a.instance_id {
                    Some(i) => format!("associated with {i}"),
                    None => "not associated".to_string(),
                };
                entry(
                    "elastic_ip",
                    Some(a.allocation_id.clone()),
                    format!("{}, {association}", a.public_ip),
                )
            })
            .collect()
    }
}
