//! The Elastic IP: a stable public address that survives instance
//! replacement. Extra addresses of the deployment cost money and hold no
//! data, so they are released.

use aws_sdk_ec2::types::ResourceType;

use crate::aws::ec2::addresses as gateway;
use crate::error::Result;
use crate::names::Role;
use crate::ownership::{self, AddressIntent, Kind};
use crate::resources::{Action, Ctx, PlanItem};

#[derive(Debug, Clone)]
pub struct Address {
    pub allocation_id: String,
    pub public_ip: String,
    pub association_id: Option<String>,
    pub instance_id: Option<String>,
    /// A lab seat's number tag (a lab's addresses share their owner tags).
    pub seat: Option<String>,
}

pub fn from_sdk(a: &aws_sdk_ec2::types::Address) -> Address {
    Address {
        allocation_id: a.allocation_id().unwrap_or_default().to_string(),
        public_ip: a.public_ip().unwrap_or_default().to_string(),
        association_id: a.association_id().map(str::to_string),
        instance_id: a
            .instance_id()
            .filter(|i| !i.is_empty())
            .map(str::to_string),
        seat: crate::names::ec2_tag(a.tags(), crate::names::TAG_SEAT).map(str::to_string),
    }
}

/// Every address carrying the owner's tags, glbox's or not (the plan
/// sorts them with `ownership`).
pub async fn describe_tagged(ctx: &Ctx<'_>) -> Result<Vec<Address>> {
    let found = gateway::describe(&ctx.aws.ec2, ctx.names.owned_filters(Role::ElasticIp)).await?;
    let mut addresses: Vec<Address> = found.iter().map(from_sdk).collect();
    addresses.sort_by(|a, b| a.allocation_id.cmp(&b.allocation_id));
    Ok(addresses)
}

#[derive(Debug, Clone)]
pub enum Change {
    Create,
    Associate { allocation_id: String },
    NoChange { allocation_id: String },
    Absent,
}

#[derive(Debug, Clone)]
pub struct EipPlan {
    pub change: Change,
    /// Addresses to release: extras, or all when `elastic_ip = false`.
    pub release: Vec<Address>,
    /// Every address with the deployment's tags, glbox's or not (what an
    /// allocation's intent lists as already there).
    pub tagged: Vec<String>,
    /// glbox's addresses an interrupted allocation made but did not
    /// record: recorded now.
    pub record: Vec<String>,
    /// An allocation's intent is open: closed once `record` is done.
    pub close_intent: bool,
}

/// `instance_id` is the instance the address must point at (`None` when a
/// new instance is about to be launched).
pub fn diff(wanted: bool, addresses: &[Address], instance_id: Option<&str>) -> EipPlan {
    if !wanted {
        return EipPlan {
            change: Change::Absent,
            release: addresses.to_vec(),
            tagged: Vec::new(),
            record: Vec::new(),
            close_intent: false,
        };
    }
    let keep = addresses
        .iter()
        .position(|a| instance_id.is_some() && a.instance_id.as_deref() == instance_id)
        .unwrap_or(0);
    let mut rest = addresses.to_vec();
    if rest.is_empty() {
        return EipPlan {
            change: Change::Create,
            release: rest,
            tagged: Vec::new(),
            record: Vec::new(),
            close_intent: false,
        };
    }
    let kept = rest.remove(keep);
    let change = if instance_id.is_some() && kept.instance_id.as_deref() == instance_id {
        Change::NoChange {
            allocation_id: kept.allocation_id,
        }
    } else {
        Change::Associate {
            allocation_id: kept.allocation_id,
        }
    };
    EipPlan {
        change,
        release: rest,
        tagged: Vec::new(),
        record: Vec::new(),
        close_intent: false,
    }
}

impl EipPlan {
    pub fn items(&self, ctx: &Ctx<'_>) -> Vec<PlanItem> {
        let name = ctx.names.name_of(Role::ElasticIp);
        let mut items: Vec<PlanItem> = match &self.change {
            Change::Absent => Vec::new(),
            Change::Create => vec![
                PlanItem::new("elastic_ip", name.clone(), None, Action::Create)
                    .with_changes(vec!["allocate and associate with the instance".into()]),
            ],
            Change::Associate { allocation_id } => vec![PlanItem::new(
                "elastic_ip",
                name.clone(),
                Some(allocation_id.clone()),
                Action::Update,
            )
            .with_changes(vec!["associate with the instance".into()])],
            Change::NoChange { allocation_id } => vec![PlanItem::new(
                "elastic_ip",
                name.clone(),
                Some(allocation_id.clone()),
                Action::NoChange,
            )],
        };
        items.extend(self.release.iter().map(|a| {
            PlanItem::new(
                "elastic_ip",
                name.clone(),
                Some(a.allocation_id.clone()),
                Action::Delete,
            )
            .with_changes(vec![format!(
                "release {} ({})",
                a.public_ip,
                if ctx.settings.elastic_ip {
                    "a duplicate"
                } else {
                    "network.elastic_ip is false"
                }
            )])
        }));
        items
    }

    pub fn is_noop(&self) -> bool {
        matches!(self.change, Change::NoChange { .. } | Change::Absent)
            && self.release.is_empty()
            && self.record.is_empty()
            && !self.close_intent
    }
}

/// Converges the address onto `instance_id`; returns its public IP.
pub async fn apply(ctx: &Ctx<'_>, plan: &EipPlan, instance_id: &str) -> Result<Option<String>> {
    for id in &plan.record {
        ownership::record(ctx, Kind::Address, id).await?;
    }
    if plan.close_intent {
        ownership::close_intent(ctx, Kind::Address).await?;
    }
    for address in &plan.release {
        release(ctx, address).await?;
    }
    let allocation_id = match &plan.change {
        Change::Absent => return Ok(None),
        Change::NoChange { allocation_id } => {
            return public_ip_of(ctx, allocation_id).await.map(Some)
        }
        Change::Associate { allocation_id } => allocation_id.clone(),
        Change::Create => allocate(ctx, &plan.tagged).await?,
    };
    associate(ctx, &allocation_id, instance_id).await?;
    let ip = public_ip_of(ctx, &allocation_id).await?;
    ctx.ui
        .info(&format!("associated Elastic IP {ip} with {instance_id}"));
    Ok(Some(ip))
}

/// Moves the deployment's address onto `instance_id`. Both ids may be
/// fresh, so EC2 may not know them yet. Single boxes and lab seats both
/// associate through here.
pub async fn associate(ctx: &Ctx<'_>, allocation_id: &str, instance_id: &str) -> Result<()> {
    // The address is the deployment's own: moving it off a replaced (or
    // terminating) instance is the point.
    gateway::associate(&ctx.aws.ec2, ctx.ui, allocation_id, instance_id).await?;
    Ok(())
}

/// Allocates an address for `ctx` (a box or a lab seat) and records it in
/// the ledger. `tagged`: every address with the owner's tags now, glbox's
/// or not. AllocateAddress takes no idempotency token: when the SDK
/// retried it after losing an answer, AWS allocated (and tagged) an
/// address glbox never heard of. The intent opened before the call lists
/// `tagged`; an unassociated tagged address that is in neither it nor the
/// ledger appeared during the call, so it is such a leftover: it is
/// released now, before it costs money. One that was there before (a
/// look-alike) is left alone.
pub async fn allocate(ctx: &Ctx<'_>, tagged: &[String]) -> Result<String> {
    let intent = AddressIntent {
        existing: tagged.iter().cloned().collect(),
    };
    ownership::open_intent(ctx, Kind::Address, &intent).await?;
    let (allocation_id, public_ip) = gateway::allocate(
        &ctx.aws.ec2,
        ctx.names.tag_spec(ResourceType::ElasticIp, Role::ElasticIp),
    )
    .await?;
    ownership::record(ctx, Kind::Address, &allocation_id).await?;
    ctx.ui.detail(&format!(
        "allocated Elastic IP {} for {}",
        public_ip,
        ctx.names.base()
    ));
    // A lab's seats share the owner tags: only this seat's addresses.
    let this_seat = ctx.names.seat_tag();
    for address in describe_tagged(ctx).await? {
        if address.seat.as_deref() != this_seat {
            continue;
        }
        let appeared = !intent.existing.contains(&address.allocation_id);
        if address.allocation_id != allocation_id && appeared && address.association_id.is_none() {
            release_leftover(ctx, &address).await?;
        }
    }
    ownership::close_intent(ctx, Kind::Address).await?;
    Ok(allocation_id)
}

/// Releases an unassociated address the describe above has just listed:
/// it exists, so a NotFound means EC2 does not know the fresh id yet
/// (eventual consistency) and is retried, where `release` would take it
/// for "already released" and leave a billed address behind.
async fn release_leftover(ctx: &Ctx<'_>, address: &Address) -> Result<()> {
    let id = &address.allocation_id;
    gateway::release_fresh(&ctx.aws.ec2, ctx.ui, id).await?;
    ctx.ui.info(&format!(
        "released Elastic IP {} (a repeated allocation's leftover)",
        address.public_ip
    ));
    Ok(())
}

async fn public_ip_of(ctx: &Ctx<'_>, allocation_id: &str) -> Result<String> {
    let address = gateway::describe_one(&ctx.aws.ec2, ctx.ui, allocation_id).await?;
    Ok(address
        .as_ref()
        .and_then(|a| a.public_ip())
        .unwrap_or_default()
        .to_string())
}

/// Disassociates (if needed) and releases an address.
pub async fn release(ctx: &Ctx<'_>, address: &Address) -> Result<()> {
    // Not-found answers mean done: a retried call whose first answer was lost.
    if let Some(association) = &address.association_id {
        gateway::disassociate(&ctx.aws.ec2, association).await?;
    }
    gateway::release(&ctx.aws.ec2, &address.allocation_id).await?;
    ownership::forget(
        ctx,
        vec![ownership::record_name(&ctx.names, &address.allocation_id)],
    )
    .await?;
    ctx.ui
        .info(&format!("released Elastic IP {}", address.public_ip));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(id: &str, instance: Option<&str>) -> Address {
        Address {
            allocation_id: id.into(),
            public_ip: "198.51.100.1".into(),
            association_id: instance.map(|_| "eipassoc-1".into()),
            instance_id: instance.map(str::to_string),
            seat: None,
        }
    }

    #[test]
    fn converges_to_one_associated_address() {
        let plan = diff(
            true,
            &[address("a", None), address("b", Some("i-1"))],
            Some("i-1"),
        );
        assert!(
            matches!(plan.change, Change::NoChange { ref allocation_id } if allocation_id == "b")
        );
        assert_eq!(plan.release.len(), 1);
        let plan = diff(true, &[address("a", None)], Some("i-1"));
        assert!(matches!(plan.change, Change::Associate { .. }));
        let plan = diff(true, &[], None);
        assert!(matches!(plan.change, Change::Create));
    }

    #[test]
    fn disabled_releases_everything() {
        let plan = diff(false, &[address("a", Some("i-1"))], Some("i-1"));
        assert!(matches!(plan.change, Change::Absent));
        assert_eq!(plan.release.len(), 1);
    }
}
