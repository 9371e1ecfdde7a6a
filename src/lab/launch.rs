//! Launching many seats with one RunInstances call: tags at launch say
//! "this lab" (a crash before the per-seat tags leaves instances the next
//! run adopts, never unowned ones); each instance then gets its seat's tags.
//! Spot capacity is asked for first when the lab wants it; whatever spot
//! cannot give is launched on-demand, and said so.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::ResourceType;
use futures_util::stream::{self, StreamExt};

use crate::aws::ec2::instances::{self as gateway, Launch, RunFailed};
use crate::names::{seat_label, Role};
use crate::resources::image::LaunchSpec;
use crate::resources::instance;
use crate::resources::Ctx;

/// Answers that mean "no spot capacity for this request now".
const NO_SPOT_CAPACITY: &[&str] = &[
    "InsufficientInstanceCapacity",
    "SpotMaxPriceTooLow",
    "MaxSpotInstanceCountExceeded",
    "InsufficientCapacityOnHost",
    "UnfulfillableCapacity",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Market {
    Spot,
    OnDemand,
}

impl Market {
    pub fn as_str(self) -> &'static str {
        match self {
            Market::Spot => "spot",
            Market::OnDemand => "on-demand",
        }
    }
}

/// What a launch made and what it could not.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Seat → instance id, tagged with its seat.
    pub launched: BTreeMap<u16, String>,
    pub failed: BTreeMap<u16, String>,
    /// Said to the user: spot fallbacks, short launches.
    pub notes: Vec<String>,
}

pub struct Request<'a> {
    pub spec: &'a LaunchSpec,
    pub security_group: &'a str,
    pub spot: bool,
}

fn labels(seats: &[u16]) -> String {
    seats
        .iter()
        .map(|s| seat_label(*s))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Launches one instance per seat in `seats` (in as few calls as EC2
/// allows) and tags each with its seat.
pub async fn launch(lab: &Ctx<'_>, request: &Request<'_>, seats: &[u16]) -> Outcome {
    let mut outcome = Outcome::default();
    let mut on_demand: Vec<u16> = seats.to_vec();
    if request.spot {
        match run_batch(lab, request, seats, Market::Spot).await {
            Ok(ids) => {
                let (got, rest) = seats.split_at(ids.len().min(seats.len()));
                assign(lab, &mut outcome, got, ids).await;
                if !rest.is_empty() {
                    outcome.notes.push(format!(
                        "spot capacity ran out after {} instance(s): {} launched on-demand instead",
                        got.len(),
                        labels(rest)
                    ));
                }
                on_demand = rest.to_vec();
            }
            Err(e)
                if e.code
                    .as_deref()
                    .is_some_and(|c| NO_SPOT_CAPACITY.contains(&c)) =>
            {
                outcome.notes.push(format!(
                    "no spot capacity for {} ({}): {} launched on-demand instead",
                    lab.settings.instance_type,
                    e.code.as_deref().unwrap_or_default(),
                    labels(seats)
                ));
            }
            Err(e) => {
                fail_all(&mut outcome, seats, &e.to_string());
                return outcome;
            }
        }
    }
    if on_demand.is_empty() {
        return outcome;
    }
    match run_batch(lab, request, &on_demand, Market::OnDemand).await {
        Ok(ids) => {
            let (got, rest) = on_demand.split_at(ids.len().min(on_demand.len()));
            assign(lab, &mut outcome, got, ids).await;
            fail_all(
                &mut outcome,
                rest,
                "EC2 launched fewer instances than asked (capacity or vCPU quota); re-run glbox lab up",
            );
        }
        Err(e) => fail_all(&mut outcome, &on_demand, &e.to_string()),
    }
    outcome
}

fn fail_all(outcome: &mut Outcome, seats: &[u16], reason: &str) {
    for seat in seats {
        outcome.failed.insert(*seat, reason.to_string());
    }
}

/// Gives each launched instance its seat's tags (and name).
async fn assign(lab: &Ctx<'_>, outcome: &mut Outcome, seats: &[u16], ids: Vec<String>) {
    let pairs: Vec<(u16, String)> = seats.iter().copied().zip(ids).collect();
    let results: Vec<(u16, String, crate::error::Result<()>)> = stream::iter(pairs)
        .map(|(seat, id)| async move {
            let tagged = tag_seat(lab, &id, seat).await;
            (seat, id, tagged)
        })
        .buffer_unordered(super::CALLS_IN_FLIGHT)
        .collect()
        .await;
    for (seat, id, tagged) in results {
        match tagged {
            Ok(()) => {
                outcome.launched.insert(seat, id);
            }
            Err(e) => {
                outcome.failed.insert(
                    seat,
                    format!("launched {id} but could not tag it for the seat ({e}); the next glbox lab up adopts it"),
                );
            }
        }
    }
}

/// Marks an instance as seat `seat`'s (the lab's tags came at launch).
pub async fn tag_seat(lab: &Ctx<'_>, instance_id: &str, seat: u16) -> crate::error::Result<()> {
    let names = crate::names::Names::seat(
        &lab.settings.name,
        seat,
        &lab.settings.region,
        &lab.names.expires_at(),
    );
    let seat = seat.to_string();
    let name = names.base();
    gateway::create_tags(
        &lab.aws.ec2,
        lab.ui,
        &[instance_id],
        &[(crate::names::TAG_SEAT, &seat), ("Name", &name)],
    )
    .await?;
    Ok(())
}

/// One RunInstances for `seats.len()` instances (at least one); returns
/// the ids EC2 launched, in its order.
async fn run_batch(
    lab: &Ctx<'_>,
    request: &Request<'_>,
    seats: &[u16],
    market: Market,
) -> Result<Vec<String>, crate::aws::AwsError> {
    let settings = lab.settings;
    let spec = request.spec;
    let user_data = crate::userdata::render(settings, None);
    let profile = lab.names.iam_name();
    let launch = Launch {
        image_id: &spec.image_id,
        instance_type: &settings.instance_type,
        subnet_id: &spec.placement.subnet_id,
        security_group: request.security_group,
        public_ip_at_launch: spec.placement.public_ip_at_launch,
        profile: &profile,
        root_device: &spec.root_device,
        root_gib: settings.root_volume_gib,
        user_data: &crate::userdata::encode(&user_data),
        tags: vec![
            instance::instance_tags(lab),
            lab.names.tag_spec(ResourceType::Volume, Role::RootVolume),
        ],
        key_name: None,
        // Whatever EC2 can give: the seats it cannot are said and retried.
        count: seats.len(),
        spot: market == Market::Spot,
    };
    let token = |attempt| client_token(lab, spec, seats, market, attempt);
    match gateway::run(&lab.aws.ec2, lab.ui, &launch, token).await {
        Ok(instances) => {
            let ids: Vec<String> = instances
                .iter()
                .map(|i| i.instance_id().unwrap_or_default().to_string())
                .collect();
            lab.ui.info(&format!(
                "launched {} {} instance(s) for {}",
                ids.len(),
                market.as_str(),
                labels(&seats[..ids.len().min(seats.len())])
            ));
            Ok(ids)
        }
        Err(RunFailed::Aws(e)) => Err(e),
        Err(RunFailed::Replayed) => Err(crate::aws::AwsError {
            action: "ec2:RunInstances",
            code: None,
            message: "AWS kept answering with an earlier launch".into(),
            hint: Some("re-run glbox lab up".into()),
        }),
    }
}

/// The same seats, spec and history give the same token, so a retried
/// call whose answer was lost cannot launch the seats twice.
fn client_token(
    lab: &Ctx<'_>,
    spec: &LaunchSpec,
    seats: &[u16],
    market: Market,
    attempt: u32,
) -> String {
    let settings = lab.settings;
    let seat_list = labels(seats);
    let attempt = attempt.to_string();
    let root = settings.root_volume_gib.to_string();
    let parts = [
        settings.name.as_str(),
        &settings.region,
        &spec.image_id,
        &settings.instance_type,
        &spec.placement.subnet_id,
        settings.os.as_str(),
        &root,
        market.as_str(),
        &seat_list,
        &attempt,
    ]
    .into_iter()
    .chain(spec.seen.iter().map(String::as_str));
    gateway::client_token(&format!("glbox-lab-{}", settings.name), parts)
}
