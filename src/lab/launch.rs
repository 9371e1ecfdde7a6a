//! Launching many seats with one RunInstances call: tags at launch say
//! "this lab" (a crash before the per-seat tags leaves instances the next
//! run adopts, never unowned ones); each instance then gets its seat's tags.
//! Spot capacity is asked for first when the lab wants it; whatever spot
//! cannot give is launched on-demand, and said so.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    IamInstanceProfileSpecification, InstanceInterruptionBehavior, InstanceMarketOptionsRequest,
    InstanceType, MarketType, ResourceType, SpotInstanceType, SpotMarketOptions, Tag,
};
use futures_util::stream::{self, StreamExt};
use sha2::{Digest, Sha256};

use crate::aws::{has_code, AwsResultExt, Lag};
use crate::names::{seat_label, Role, TAG_OS};
use crate::resources::instance::{profile_named, LaunchSpec, RunError};
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
    // Right after the launch, EC2 may not know the instance yet.
    crate::aws::settled(lab.ui, &[Lag::FreshId], instance_id, || {
        lab.aws
            .ec2
            .create_tags()
            .resources(instance_id)
            .tags(
                Tag::builder()
                    .key(crate::names::TAG_SEAT)
                    .value(seat.to_string())
                    .build(),
            )
            .tags(Tag::builder().key("Name").value(names.base()).build())
            .send()
    })
    .await
    .ctx("ec2:CreateTags")?;
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
    let user_data = crate::userdata::render(lab.settings, None);
    let profile = profile_named(&lab.names.iam_name());
    let mut attempt = 0u32;
    loop {
        let token = client_token(lab, request.spec, seats, market, attempt);
        let sent = crate::aws::settled(
            lab.ui,
            &[Lag::InstanceProfile, Lag::FreshId],
            &profile,
            || send(lab, request, seats.len(), market, &user_data, &token),
        )
        .await;
        match sent {
            Ok(instances) if instances.iter().all(|(_, live)| *live) => {
                let ids: Vec<String> = instances.into_iter().map(|(id, _)| id).collect();
                lab.ui.info(&format!(
                    "launched {} {} instance(s) for {}",
                    ids.len(),
                    market.as_str(),
                    labels(&seats[..ids.len().min(seats.len())])
                ));
                return Ok(ids);
            }
            // The token replayed an earlier launch whose instances are
            // gone, or was used with other parameters: a fresh token.
            Ok(_) if attempt < 3 => attempt += 1,
            Err(e) if has_code(&e, "IdempotentParameterMismatch") && attempt < 3 => attempt += 1,
            Ok(_) => {
                return Err(crate::aws::AwsError {
                    action: "ec2:RunInstances",
                    code: None,
                    message: "AWS kept answering with an earlier launch".into(),
                    hint: Some("re-run glbox lab up".into()),
                })
            }
            Err(e) => return Err(crate::aws::error("ec2:RunInstances", e)),
        }
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
    let mut hasher = Sha256::new();
    let settings = lab.settings;
    let seat_list = labels(seats);
    let attempt = attempt.to_string();
    let root = settings.root_volume_gib.to_string();
    for part in [
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
    .chain(spec.seen.iter().map(String::as_str))
    {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("glbox-lab-{}-{hex}", settings.name)
}

/// Sends RunInstances; returns each instance's id and whether it is live.
async fn send(
    lab: &Ctx<'_>,
    request: &Request<'_>,
    count: usize,
    market: Market,
    user_data: &str,
    token: &str,
) -> Result<Vec<(String, bool)>, RunError> {
    let settings = lab.settings;
    let spec = request.spec;
    let count = i32::try_from(count).unwrap_or(i32::MAX);
    let mut tags = lab.names.tag_spec(ResourceType::Instance, Role::Instance);
    tags.tags.get_or_insert_with(Vec::new).push(
        Tag::builder()
            .key(TAG_OS)
            .value(settings.os.as_str())
            .build(),
    );
    let mut call = crate::resources::placement::on_network(
        lab.aws.ec2.run_instances(),
        &spec.placement,
        request.security_group,
    )
    .image_id(&spec.image_id)
    .instance_type(InstanceType::from(settings.instance_type.as_str()))
    // Whatever EC2 can give: the seats it cannot are said and retried.
    .min_count(1)
    .max_count(count)
    .iam_instance_profile(
        IamInstanceProfileSpecification::builder()
            .name(lab.names.iam_name())
            .build(),
    )
    .metadata_options(crate::resources::instance::imdsv2_only())
    .block_device_mappings(crate::resources::instance::root_volume(settings, spec))
    .user_data(crate::userdata::encode(user_data))
    .tag_specifications(tags)
    .tag_specifications(lab.names.tag_spec(ResourceType::Volume, Role::RootVolume))
    .client_token(token);
    if market == Market::Spot {
        call = call.instance_market_options(
            InstanceMarketOptionsRequest::builder()
                .market_type(MarketType::Spot)
                .spot_options(
                    SpotMarketOptions::builder()
                        .spot_instance_type(SpotInstanceType::OneTime)
                        .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
                        .build(),
                )
                .build(),
        );
    }
    let out = call.send().await?;
    Ok(out
        .instances()
        .iter()
        .map(|i| {
            let instance = crate::resources::instance::from_sdk(i);
            let live = instance.is_live();
            (instance.id, live)
        })
        .collect())
}
