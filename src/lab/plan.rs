//! What `lab up` must do: the shared resources' changes, and per seat the
//! work that makes it a complete box. A seat that is complete has no work;
//! a re-run of a complete lab has nothing to do and sends nothing.

use serde::Serialize;

use crate::bootstrap;
use crate::error::Result;
use crate::lab::observe::{Observed, Seat, SeatInstance};
use crate::lab::LabSettings;
use crate::names::seat_label;
use crate::resources::placement::{self, Placement};
use crate::resources::{iam, security_group, Ctx};

/// One piece of work on one seat, in the order `lab up` does them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "work")]
pub enum Work {
    /// A second live instance of the seat (a crashed run): terminated.
    TerminateDuplicate {
        instance_id: String,
    },
    Password,
    Volume,
    /// An untagged lab instance (a crashed launch) becomes this seat's.
    Adopt {
        instance_id: String,
    },
    Launch,
    Start {
        instance_id: String,
    },
    Attach,
    Release {
        allocation_id: String,
    },
    Address,
    Associate,
    Bootstrap {
        reason: String,
    },
}

impl Work {
    fn describe(&self) -> String {
        match self {
            Work::TerminateDuplicate { instance_id } => {
                format!("terminate duplicate {instance_id}")
            }
            Work::Password => "root password".into(),
            Work::Volume => "data volume".into(),
            Work::Adopt { instance_id } => format!("adopt {instance_id}"),
            Work::Launch => "launch instance".into(),
            Work::Start { instance_id } => format!("start {instance_id}"),
            Work::Attach => "attach volume".into(),
            Work::Release { allocation_id } => format!("release {allocation_id}"),
            Work::Address => "Elastic IP".into(),
            Work::Associate => "associate address".into(),
            Work::Bootstrap { reason } => format!("GitLab ({reason})"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SeatPlan {
    pub seat: u16,
    pub work: Vec<Work>,
}

impl SeatPlan {
    pub fn needs(&self, wanted: impl Fn(&Work) -> bool) -> bool {
        self.work.iter().any(wanted)
    }
}

#[derive(Debug, Clone)]
pub struct LabPlan {
    pub security_group: security_group::Change,
    pub role: iam::RoleChange,
    pub profile: iam::ProfileChange,
    pub seats: Vec<SeatPlan>,
    /// Seats above `seats` that still have resources: removed after confirmation.
    pub remove: Vec<u16>,
    /// Untagged lab instances no seat needs: terminated.
    pub stray: Vec<String>,
    pub placement: Placement,
    pub expires_at: String,
    /// Every lab instance EC2 still lists (for the launch token).
    pub seen_instances: Vec<String>,
}

impl LabPlan {
    pub fn is_noop(&self) -> bool {
        matches!(self.security_group, security_group::Change::NoChange { .. })
            && self.role == iam::RoleChange::NoChange
            && self.profile == iam::ProfileChange::NoChange
            && self.seats.is_empty()
            && self.remove.is_empty()
            && self.stray.is_empty()
    }

    pub fn seats_needing(&self, wanted: impl Fn(&Work) -> bool + Copy) -> Vec<u16> {
        self.seats
            .iter()
            .filter(|s| s.needs(wanted))
            .map(|s| s.seat)
            .collect()
    }

    pub fn report(&self, ctx: &Ctx<'_>, lab: &LabSettings) -> PlanReport {
        let shared = [
            self.security_group.item(ctx),
            self.role.item(ctx),
            self.profile.item(ctx),
        ]
        .into_iter()
        .filter(|i| i.action != crate::resources::Action::NoChange)
        .collect();
        PlanReport {
            lab: lab.name.clone(),
            region: ctx.settings.region.clone(),
            seats: lab.seats,
            expires_at: self.expires_at.clone(),
            shared,
            seat_work: self.seats.clone(),
            remove: self.remove.clone(),
            stray: self.stray.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    pub lab: String,
    pub region: String,
    pub seats: u16,
    pub expires_at: String,
    pub shared: Vec<crate::resources::PlanItem>,
    pub seat_work: Vec<SeatPlan>,
    pub remove: Vec<u16>,
    pub stray: Vec<String>,
}

impl PlanReport {
    /// Seats with the same work share a line: `s01-s25  root password, ...`.
    pub fn text(&self) -> String {
        let mut out = format!(
            "Lab {:?} in {}: {} seat(s), expires {}\n",
            self.lab, self.region, self.seats, self.expires_at
        );
        for item in &self.shared {
            out.push_str(&format!(
                "  {:<15} {:<32} {}\n",
                item.resource,
                item.name,
                item.action.label()
            ));
        }
        for (seats, work) in group_by_work(&self.seat_work) {
            let what: Vec<String> = work.iter().map(Work::describe).collect();
            out.push_str(&format!("  {:<15} {}\n", seats, what.join(", ")));
        }
        if !self.remove.is_empty() {
            let labels: Vec<String> = self.remove.iter().map(|s| seat_label(*s)).collect();
            out.push_str(&format!(
                "  remove          {} (instance, data volume and its data, address, password)\n",
                labels.join(", ")
            ));
        }
        for id in &self.stray {
            out.push_str(&format!(
                "  terminate       {id} (a lab instance no seat needs)\n"
            ));
        }
        out
    }
}

/// Consecutive seats with identical work, as `s01-s25` ranges.
fn group_by_work(seats: &[SeatPlan]) -> Vec<(String, Vec<Work>)> {
    let mut groups: Vec<(u16, u16, Vec<Work>)> = Vec::new();
    for plan in seats {
        // Ids differ per seat; group by the kind of work only.
        let shape: Vec<Work> = plan.work.iter().map(shape_of).collect();
        match groups.last_mut() {
            Some((_, last, work)) if *last + 1 == plan.seat && *work == shape => *last = plan.seat,
            _ => groups.push((plan.seat, plan.seat, shape)),
        }
    }
    groups
        .into_iter()
        .map(|(first, last, work)| {
            let seats = if first == last {
                seat_label(first)
            } else {
                format!("{}-{}", seat_label(first), seat_label(last))
            };
            (seats, work)
        })
        .collect()
}

fn shape_of(work: &Work) -> Work {
    match work {
        Work::TerminateDuplicate { .. } => Work::TerminateDuplicate {
            instance_id: "duplicate".into(),
        },
        Work::Adopt { .. } => Work::Adopt {
            instance_id: "an untagged instance".into(),
        },
        Work::Start { .. } => Work::Start {
            instance_id: "instance".into(),
        },
        Work::Release { .. } => Work::Release {
            allocation_id: "extra address".into(),
        },
        other => other.clone(),
    }
}

/// The lab's placement: where its seats are (all in one zone, so volumes
/// and instances meet), else where the settings and type allow.
pub async fn placement(ctx: &Ctx<'_>, observed: &Observed) -> Result<Placement> {
    let instance = observed
        .seats
        .values()
        .flat_map(|s| s.instances.iter())
        .chain(observed.unassigned.iter())
        .map(|i| &i.instance)
        .next();
    let zone = observed
        .seats
        .values()
        .flat_map(|s| s.volumes.iter())
        .map(|v| v.availability_zone.as_str())
        .next();
    placement::resolve(ctx, instance.map(|i| i.placement()), zone).await
}

/// The script seat `seat` gets, when everything it names exists.
pub fn seat_script(seat_ctx: &Ctx<'_>, volume_id: &str, url: &str) -> String {
    crate::endpoint::Script::new(seat_ctx, volume_id, url, None).render(seat_ctx.settings)
}

/// The URL of a seat: its Elastic IP, else its public name or address.
pub fn seat_url(ctx: &Ctx<'_>, seat: &Seat) -> Option<String> {
    let instance = seat.primary().map(|i| &i.instance);
    let address = seat
        .address()
        .filter(|a| a.instance_id.is_some())
        .map(|a| a.public_ip.as_str());
    crate::endpoint::gitlab_url(
        ctx.settings,
        address,
        instance.and_then(|i| i.public_dns.as_deref()),
        instance.and_then(|i| i.public_ip.as_deref()),
    )
}

/// The work seat `number` needs. An adopted instance is already among the
/// seat's instances, its `Adopt` work in `work`.
pub fn seat_work(
    lab: &Ctx<'_>,
    expires_at: &str,
    number: u16,
    seat: &Seat,
    mut work: Vec<Work>,
    with_bootstrap: bool,
) -> Vec<Work> {
    let primary = seat.primary().map(|i| i.instance.clone());
    for duplicate in &seat.instances {
        if Some(&duplicate.instance.id) != primary.as_ref().map(|p| &p.id) {
            work.push(Work::TerminateDuplicate {
                instance_id: duplicate.instance.id.clone(),
            });
        }
    }
    if !seat.password {
        work.push(Work::Password);
    }
    let volume = seat.volume();
    if volume.is_none() {
        work.push(Work::Volume);
    }
    match &primary {
        None => work.push(Work::Launch),
        Some(instance) if matches!(instance.state.as_str(), "stopped" | "stopping") => {
            work.push(Work::Start {
                instance_id: instance.id.clone(),
            })
        }
        Some(_) => {}
    }
    let attached = match (volume, &primary) {
        (Some(v), Some(p)) => v.attached_to.as_deref() == Some(p.id.as_str()),
        _ => false,
    };
    if !attached {
        work.push(Work::Attach);
    }
    let address = seat.address();
    for extra in &seat.addresses {
        let keep = lab.settings.elastic_ip
            && address.is_some_and(|a| a.allocation_id == extra.allocation_id);
        if !keep {
            work.push(Work::Release {
                allocation_id: extra.allocation_id.clone(),
            });
        }
    }
    if lab.settings.elastic_ip {
        match (address, &primary) {
            (None, _) => work.extend([Work::Address, Work::Associate]),
            (Some(a), Some(p)) if a.instance_id.as_deref() == Some(p.id.as_str()) => {}
            (Some(_), _) => work.push(Work::Associate),
        }
    }
    if with_bootstrap {
        if let Some(reason) = bootstrap_reason(lab, expires_at, number, seat, &work) {
            work.push(Work::Bootstrap { reason });
        }
    }
    work
}

/// Why the seat's GitLab must be (re)configured, or `None` if its last
/// bootstrap had exactly the script it would get now.
fn bootstrap_reason(
    lab: &Ctx<'_>,
    expires_at: &str,
    number: u16,
    seat: &Seat,
    work: &[Work],
) -> Option<String> {
    let changes_script = work.iter().any(|w| {
        matches!(
            w,
            Work::Volume | Work::Launch | Work::Address | Work::Associate
        )
    });
    let instance = seat.primary().map(|i| &i.instance);
    let current = match (instance, changes_script) {
        (Some(instance), false) => {
            let script = seat.volume().zip(seat_url(lab, seat)).map(|(volume, url)| {
                seat_script(
                    &crate::lab::seat_ctx(lab, number, expires_at),
                    &volume.id,
                    &url,
                )
            });
            Some((instance, script))
        }
        _ => None,
    };
    match bootstrap::diff(current) {
        bootstrap::Change::NoChange => None,
        bootstrap::Change::Install { reason } | bootstrap::Change::Update { reason, .. } => {
            Some(reason)
        }
    }
}

/// Each seat with the work its adoption needs.
type SeatsWithWork = std::collections::BTreeMap<u16, (Seat, Vec<Work>)>;

/// Gives the lab's unseated instances (a launch whose seat tags were never
/// written) to seats without one: first to the seat whose data volume an
/// instance holds, then in seat order. Returns each seat (adopted instance
/// included) with its `Adopt` work, and the instances no seat needs.
fn adopt_unseated(observed: &Observed, seats: u16) -> (SeatsWithWork, Vec<String>) {
    let mut unseated = observed.unassigned.clone();
    let mut result: SeatsWithWork = (1..=seats)
        .map(|n| (n, (observed.seat(n), Vec::new())))
        .collect();
    fn give(unseated: &mut Vec<SeatInstance>, seat: &mut Seat, work: &mut Vec<Work>, index: usize) {
        let instance = unseated.remove(index);
        work.push(Work::Adopt {
            instance_id: instance.instance.id.clone(),
        });
        seat.instances.push(instance);
    }
    for (seat, work) in result.values_mut() {
        let held = seat.volumes.iter().find_map(|v| v.attached_to.clone());
        let index = held.and_then(|h| unseated.iter().position(|i| i.instance.id == h));
        if let (true, Some(index)) = (seat.instances.is_empty(), index) {
            give(&mut unseated, seat, work, index);
        }
    }
    for (seat, work) in result.values_mut() {
        if seat.instances.is_empty() && !unseated.is_empty() {
            give(&mut unseated, seat, work, 0);
        }
    }
    let stray = unseated.into_iter().map(|i| i.instance.id).collect();
    (result, stray)
}

/// The whole plan, from one observation: the placement's lookup, then the
/// diff.
pub async fn make(
    lab_ctx: &Ctx<'_>,
    lab: &LabSettings,
    observed: &Observed,
    expires_at: &str,
    with_bootstrap: bool,
) -> Result<LabPlan> {
    let placement = placement(lab_ctx, observed).await?;
    Ok(diff(
        lab_ctx,
        lab,
        observed,
        expires_at,
        with_bootstrap,
        placement,
    ))
}

/// The plan from one observation and its placement; no AWS call.
pub fn diff(
    lab_ctx: &Ctx<'_>,
    lab: &LabSettings,
    observed: &Observed,
    expires_at: &str,
    with_bootstrap: bool,
    placement: Placement,
) -> LabPlan {
    let (mut seats_now, stray) = adopt_unseated(observed, lab.seats);
    let mut seats = Vec::new();
    for number in 1..=lab.seats {
        let (seat, adopted) = seats_now.remove(&number).unwrap_or_default();
        let work = seat_work(lab_ctx, expires_at, number, &seat, adopted, with_bootstrap);
        if !work.is_empty() {
            seats.push(SeatPlan { seat: number, work });
        }
    }
    let remove = observed
        .seats
        .iter()
        .filter(|(n, s)| **n > lab.seats && !s.is_empty())
        .map(|(n, _)| *n)
        .collect();
    LabPlan {
        security_group: security_group::diff(lab_ctx.settings, observed.security_group.as_ref()),
        role: iam::diff_role(observed.role.as_ref()),
        profile: iam::diff_profile(&lab_ctx.names.iam_name(), observed.profile.as_ref()),
        seats,
        remove,
        stray,
        placement,
        expires_at: expires_at.to_string(),
        seen_instances: observed.seen_instances.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::observe::SeatInstance;
    use crate::resources::data_volume::Volume;
    use crate::resources::elastic_ip::Address;
    use crate::resources::instance::Instance;
    use crate::ui::{Ui, Verbosity};

    /// Seat `n`, complete: running, with its volume, address and password.
    fn complete_seat(n: u16) -> Seat {
        let id = format!("i-{n}");
        Seat {
            instances: vec![SeatInstance {
                instance: Instance {
                    id: id.clone(),
                    state: "running".into(),
                    ..Instance::default()
                },
                market: "on-demand",
            }],
            volumes: vec![Volume {
                id: format!("vol-{n}"),
                availability_zone: "us-east-1a".into(),
                size_gib: 100,
                iops: 3000,
                throughput_mibps: 125,
                state: "in-use".into(),
                attached_to: Some(id.clone()),
            }],
            addresses: vec![Address {
                allocation_id: format!("eipalloc-{n}"),
                public_ip: format!("198.51.100.{n}"),
                association_id: Some(format!("eipassoc-{n}")),
                instance_id: Some(id),
                seat: Some(n.to_string()),
            }],
            password: true,
            ..Seat::default()
        }
    }

    #[tokio::test]
    async fn a_lab_with_missing_seats_plans_work_for_those_seats_only() {
        let aws = crate::aws::connect(&crate::aws::ConnectOptions {
            region: "us-east-1".into(),
            profile: None,
            endpoint_url: Some("http://127.0.0.1:9".into()),
            adaptive_retry: false,
        })
        .await;
        let settings = crate::test_support::settings("class");
        let ui = Ui::new(Verbosity::Quiet);
        let ctx = Ctx::new(&aws, &settings, &ui);
        let lab = LabSettings {
            name: "class".into(),
            seats: 3,
            expires_in: std::time::Duration::from_secs(8 * 3600),
            spot: false,
            concurrency: 4,
        };
        let observed = Observed {
            security_group: None,
            role: None,
            profile: None,
            seats: [(2, complete_seat(2))].into_iter().collect(),
            unassigned: Vec::new(),
            seen_instances: vec!["i-2".into()],
            expires_at: None,
            foreign: Vec::new(),
            lease_held: false,
        };
        let placement = Placement {
            subnet_id: "subnet-1".into(),
            vpc_id: "vpc-1".into(),
            availability_zone: "us-east-1a".into(),
            public_ip_at_launch: false,
        };
        let plan = diff(
            &ctx,
            &lab,
            &observed,
            "2026-12-02T09:00:00Z",
            false,
            placement,
        );
        let new_seat = vec![
            Work::Password,
            Work::Volume,
            Work::Launch,
            Work::Attach,
            Work::Address,
            Work::Associate,
        ];
        let seats: Vec<(u16, Vec<Work>)> =
            plan.seats.into_iter().map(|s| (s.seat, s.work)).collect();
        assert_eq!(seats, [(1, new_seat.clone()), (3, new_seat)]);
        assert!(plan.remove.is_empty() && plan.stray.is_empty());
    }
}
