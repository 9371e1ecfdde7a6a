//! What a lab has in AWS, found by its tags with one describe per kind of
//! resource for the whole lab (never one per seat), grouped by seat.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::InstanceLifecycleType;

use crate::error::Result;
use crate::names::{ec2_tag, Names, Role, TAG_EXPIRES_AT, TAG_SEAT};
use crate::ownership::{self, AddressIntent, Kind, Ledger};
use crate::resources::data_volume::{self, Volume};
use crate::resources::elastic_ip::Address;
use crate::resources::iam::{ProfileState, RoleState};
use crate::resources::instance::{self, Instance};
use crate::resources::security_group::{self, SecurityGroup};
use crate::resources::Ctx;

/// A lab instance and what only a lab cares about.
#[derive(Debug, Clone)]
pub struct SeatInstance {
    pub instance: Instance,
    /// `spot` or `on-demand`, as EC2 reports it.
    pub market: &'static str,
}

/// Everything that exists for one seat.
#[derive(Debug, Clone, Default)]
pub struct Seat {
    /// Live instances tagged with the seat (more than one after a crash).
    pub instances: Vec<SeatInstance>,
    pub volumes: Vec<Volume>,
    pub addresses: Vec<Address>,
    pub password: bool,
    /// Every address with the seat's tags, glbox's or not (an
    /// allocation's intent lists them).
    pub tagged_addresses: Vec<String>,
    /// The seat's ownership records and intents (`…/sNN/owned/…`).
    pub ledger_parameters: Vec<String>,
    /// An earlier run's intent to create the seat's data volume is open.
    pub volume_intent_open: bool,
}

impl Seat {
    /// The instance the seat keeps: the one holding its volume, else the oldest.
    pub fn primary(&self) -> Option<&SeatInstance> {
        let holder = self.volumes.iter().find_map(|v| v.attached_to.as_deref());
        self.instances
            .iter()
            .find(|i| Some(i.instance.id.as_str()) == holder)
            .or_else(|| self.instances.first())
    }

    pub fn volume(&self) -> Option<&Volume> {
        let primary = self.primary().map(|i| i.instance.id.as_str());
        self.volumes
            .iter()
            .find(|v| v.attached_to.is_some() && v.attached_to.as_deref() == primary)
            .or_else(|| self.volumes.iter().find(|v| v.attached_to.is_none()))
            .or_else(|| self.volumes.first())
    }

    pub fn address(&self) -> Option<&Address> {
        let primary = self.primary().map(|i| i.instance.id.as_str());
        self.addresses
            .iter()
            .find(|a| a.instance_id.is_some() && a.instance_id.as_deref() == primary)
            .or_else(|| self.addresses.first())
    }

    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
            && self.volumes.is_empty()
            && self.addresses.is_empty()
            && !self.password
    }
}

#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub security_group: Option<SecurityGroup>,
    pub role: Option<RoleState>,
    pub profile: Option<ProfileState>,
    pub seats: BTreeMap<u16, Seat>,
    /// Live lab instances without a seat tag: launched, then interrupted
    /// before glbox could tag them. They are given to seats that need one.
    pub unassigned: Vec<SeatInstance>,
    /// Every lab instance EC2 still lists, terminated ones included (they
    /// feed the launch token, so a relaunch is never mistaken for a retry).
    pub seen_instances: Vec<String>,
    /// The lab's expiry, from the first resource that carries it.
    pub expires_at: Option<String>,
    /// What carries the lab's tags without the evidence that glbox made it
    /// (see `ownership`): left alone, and said why. Seats hold only glbox's.
    pub foreign: Vec<String>,
    /// The lab's lease exists (a run holds it, or a crashed one left it).
    pub lease_held: bool,
}

impl Observed {
    pub fn exists(&self) -> bool {
        self.security_group.is_some()
            || self.role.is_some()
            || self.profile.is_some()
            || !self.unassigned.is_empty()
            || self.seats.values().any(|s| !s.is_empty())
    }

    pub fn seat(&self, seat: u16) -> Seat {
        self.seats.get(&seat).cloned().unwrap_or_default()
    }
}

fn seat_of(tags: &[aws_sdk_ec2::types::Tag]) -> Option<u16> {
    ec2_tag(tags, TAG_SEAT).and_then(|s| s.parse().ok())
}

/// Observes the lab `ctx` names (a lab context, see `lab::lab_ctx`).
pub async fn observe(
    ctx: &Ctx<'_>,
    policy: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<Observed> {
    let (security_group, role, profile, instances, volumes, addresses, parameters) = tokio::try_join!(
        security_group::observe(ctx),
        crate::resources::iam::observe_role(ctx, policy),
        crate::resources::iam::observe_profile(ctx),
        describe_instances(ctx),
        describe_volumes(ctx),
        describe_addresses(ctx),
        parameter_names(ctx),
    )?;
    let passwords: BTreeSet<u16> = parameters
        .iter()
        .filter_map(|name| seat_of_parameter(&ctx.names.parameter_prefix(), name))
        .collect();
    let expires_at = ctx.names.expires_at();
    let seat_names =
        |seat: u16| Names::seat(&ctx.settings.name, seat, &ctx.settings.region, &expires_at);
    let mut ledgers: BTreeMap<u16, (Ledger, Vec<String>)> = BTreeMap::new();
    let mut ledger_of = |seat: u16| {
        ledgers
            .entry(seat)
            .or_insert_with(|| {
                let names = seat_names(seat);
                let mine: Vec<String> = parameters
                    .iter()
                    .filter(|p| ownership::is_ledger_parameter(&names, p))
                    .cloned()
                    .collect();
                (Ledger::from_parameters(&names, &mine), mine)
            })
            .clone()
    };
    let mut foreign = Vec::new();
    let mut observed = Observed {
        expires_at: security_group.as_ref().and_then(|g| g.expires_at.clone()),
        security_group,
        role,
        profile,
        ..Observed::default()
    };
    for (seat, instance, expires_at) in instances {
        observed.seen_instances.push(instance.instance.id.clone());
        if !ownership::owns_instance(&ctx.names, &instance.instance) {
            if instance.instance.is_live() {
                foreign.push(ownership::foreign_instance_note(
                    &ctx.names,
                    &instance.instance.id,
                ));
            }
            continue;
        }
        observed.expires_at = observed.expires_at.take().or(expires_at);
        if !instance.instance.is_live() {
            continue;
        }
        match seat {
            Some(seat) => observed
                .seats
                .entry(seat)
                .or_default()
                .instances
                .push(instance),
            None => observed.unassigned.push(instance),
        }
    }
    for (seat, volume) in volumes {
        if !ledger_of(seat).0.holds(&volume.id) {
            foreign.push(ownership::foreign_note(
                &seat_names(seat),
                "data volume",
                &volume.id,
            ));
            continue;
        }
        observed.seats.entry(seat).or_default().volumes.push(volume);
    }
    let mut intents: BTreeMap<u16, Option<AddressIntent>> = BTreeMap::new();
    for (seat, address) in addresses {
        let (ledger, _) = ledger_of(seat);
        observed
            .seats
            .entry(seat)
            .or_default()
            .tagged_addresses
            .push(address.allocation_id.clone());
        // While an allocation's intent is open, an address that was not
        // there before it is the one the interrupted run made.
        let made_meanwhile = match ledger.is_open(Kind::Address) {
            false => false,
            true => {
                if let std::collections::btree_map::Entry::Vacant(entry) = intents.entry(seat) {
                    let seat_ctx = crate::lab::seat_ctx(ctx, seat, &expires_at);
                    let intent =
                        ownership::read_intent::<AddressIntent>(&seat_ctx, Kind::Address).await?;
                    entry.insert(intent);
                }
                intents[&seat]
                    .as_ref()
                    .is_some_and(|i| !i.existing.contains(&address.allocation_id))
            }
        };
        if !ledger.holds(&address.allocation_id) && !made_meanwhile {
            let label = format!("{} ({})", address.allocation_id, address.public_ip);
            foreign.push(ownership::foreign_note(
                &seat_names(seat),
                "Elastic IP",
                &label,
            ));
            continue;
        }
        observed
            .seats
            .entry(seat)
            .or_default()
            .addresses
            .push(address);
    }
    for seat in passwords {
        observed.seats.entry(seat).or_default().password = true;
    }
    // A seat whose run died after opening its volume's intent may have
    // nothing else yet: its ledger still counts.
    let seats: BTreeSet<u16> = observed
        .seats
        .keys()
        .copied()
        .chain(
            parameters
                .iter()
                .filter_map(|name| seat_with_parameter(&ctx.names.parameter_prefix(), name)),
        )
        .collect();
    for seat in seats {
        let (ledger, mine) = ledger_of(seat);
        let entry = observed.seats.entry(seat).or_default();
        entry.ledger_parameters = mine;
        entry.volume_intent_open = ledger.is_open(Kind::Volume);
    }
    observed.foreign = foreign;
    observed.lease_held = parameters.contains(&crate::lease::parameter_name(&ctx.names));
    Ok(observed)
}

type Tagged<T> = Vec<(u16, T)>;

async fn describe_instances(
    ctx: &Ctx<'_>,
) -> Result<Vec<(Option<u16>, SeatInstance, Option<String>)>> {
    let described =
        crate::aws::ec2::instances::describe(&ctx.aws.ec2, ctx.names.owned_filters(Role::Instance))
            .await?;
    let mut found = Vec::new();
    for sdk in &described {
        let market = match sdk.instance_lifecycle() {
            Some(InstanceLifecycleType::Spot) => "spot",
            _ => "on-demand",
        };
        let seat_instance = SeatInstance {
            instance: instance::from_sdk(sdk),
            market,
        };
        let expires_at = ec2_tag(sdk.tags(), TAG_EXPIRES_AT).map(str::to_string);
        found.push((seat_of(sdk.tags()), seat_instance, expires_at));
    }
    found.sort_by(|a, b| {
        let key = |i: &Instance| (i.launch_time, i.id.clone());
        key(&a.1.instance).cmp(&key(&b.1.instance))
    });
    Ok(found)
}

async fn describe_volumes(ctx: &Ctx<'_>) -> Result<Tagged<Volume>> {
    let described =
        crate::aws::ec2::volumes::describe(&ctx.aws.ec2, ctx.names.owned_filters(Role::DataVolume))
            .await?;
    let mut found = Vec::new();
    for sdk in &described {
        if let Some(seat) = seat_of(sdk.tags()) {
            found.push((seat, data_volume::from_sdk(sdk)));
        }
    }
    found.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
    Ok(found)
}

async fn describe_addresses(ctx: &Ctx<'_>) -> Result<Tagged<Address>> {
    let described = crate::aws::ec2::addresses::describe(
        &ctx.aws.ec2,
        ctx.names.owned_filters(Role::ElasticIp),
    )
    .await?;
    let mut found: Tagged<Address> = described
        .iter()
        .filter_map(|a| {
            let seat = seat_of(a.tags())?;
            Some((seat, crate::resources::elastic_ip::from_sdk(a)))
        })
        .collect();
    found.sort_by(|a, b| (a.0, &a.1.allocation_id).cmp(&(b.0, &b.1.allocation_id)));
    Ok(found)
}

/// The names of the lab's parameters (values are not read): the seats'
/// root passwords and ownership records. DescribeParameters pages 50
/// names at a time (GetParametersByPath: 10).
async fn parameter_names(ctx: &Ctx<'_>) -> Result<Vec<String>> {
    crate::aws::ssm::names_under(&ctx.aws.ssm, &ctx.names.parameter_prefix()).await
}

/// `/glbox-lab/<lab>/s07/root-password` → 7.
fn seat_of_parameter(prefix: &str, name: &str) -> Option<u16> {
    let (_, leaf) = name.strip_prefix(prefix)?.split_once('/')?;
    if leaf != "root-password" {
        return None;
    }
    seat_with_parameter(prefix, name)
}

/// `/glbox-lab/<lab>/s07/…` (any parameter of seat 7) → 7.
fn seat_with_parameter(prefix: &str, name: &str) -> Option<u16> {
    let rest = name.strip_prefix(prefix)?;
    let (label, _) = rest.split_once('/')?;
    label.strip_prefix('s')?.parse().ok()
}
