//! The external URL's record: written in Route 53 (with
//! `dns.route53_zone_id`) or printed for you to publish. Before GitLab's
//! install: Let's Encrypt needs the name to resolve to the box.

use crate::config::Settings;
use crate::deploy::down::{DownItem, DownOptions, DownOutcome};
use crate::deploy::plan::{Observed, Plan};
use crate::deploy::status::{entry, ResourceStatus, StatusView};
use crate::deploy::{Component, Made, Part, Removal, Step, Work};
use crate::resources::{dns_record, Ctx, PlanItem};

pub const PHASE: &str = "DNS record";

pub const STEP: Step = Step {
    phases: &[PHASE],
    checkpoint: "dns-record",
    part: Part::Box,
    component: &DnsRecord,
};

pub struct DnsRecord;

impl Component for DnsRecord {
    fn shown(&self, settings: &Settings, _with_bootstrap: bool) -> bool {
        settings.dns_zone_id.is_some()
    }

    fn items(&self, _ctx: &Ctx<'_>, plan: &Plan, _observed: &Observed) -> Vec<PlanItem> {
        plan.dns_record
            .item(plan.kept_address.as_deref())
            .into_iter()
            .collect()
    }

    fn is_noop(&self, plan: &Plan) -> bool {
        plan.dns_record.is_noop()
    }

    fn apply<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        plan: &'a Plan,
        made: &'a mut Made,
    ) -> Option<Work<'a, ()>> {
        Some(Box::pin(async move {
            let address = made.elastic_ip.as_deref();
            made.dns_record = dns_record::apply(ctx, &plan.dns_record, address).await?;
            Ok(())
        }))
    }

    fn down_items(
        &self,
        ctx: &Ctx<'_>,
        observed: &Observed,
        _options: DownOptions,
    ) -> Vec<DownItem> {
        let Some(record) = &observed.dns_record else {
            return Vec::new();
        };
        if record.address.is_none() && record.owner.is_none() {
            return Vec::new();
        }
        let action = if record.owned(ctx) {
            "delete"
        } else {
            "skip: not glbox's"
        };
        vec![DownItem::new("dns_record", &record.host, action)]
    }

    /// The name goes first: it must not point at an address AWS may hand
    /// to someone else once released.
    fn removals<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        observed: &'a Observed,
        _options: DownOptions,
    ) -> Vec<Removal<'a>> {
        observed
            .dns_record
            .iter()
            .map(|record| Removal {
                phase: record.owned(ctx).then_some(PHASE),
                work: Box::pin(async move {
                    let removed = match dns_record::delete(ctx, record).await? {
                        true => vec![record.host.clone()],
                        false => Vec::new(),
                    };
                    Ok(DownOutcome::removed(removed))
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
        let address = observed.addresses.first().map(|a| a.public_ip.as_str());
        dns_record::status(ctx, observed.dns_record.as_ref(), address)
            .map(|(host, state)| entry("dns_record", Some(host), state))
            .into_iter()
            .collect()
    }
}
