//! `glbox lab up`: carries out a lab plan. Shared resources first (a
//! failure there stops everything), then each kind of per-seat work for
//! all seats at once. A seat that fails is set aside with its reason and
//! the others go on; a re-run retries only what is still missing.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use futures_util::stream::{self, StreamExt};

use crate::aws::ec2::{instances, volumes};
use crate::checkpoint::reached;
use crate::error::{Error, Result};
use crate::lab::launch::{self, Request};
use crate::lab::observe::{self, Observed};
use crate::lab::plan::{LabPlan, Work};
use crate::lab::{seat_ctx, terminate, wait_instances, wait_volumes, LabSettings, CALLS_IN_FLIGHT};
use crate::names::seat_label;
use crate::resources::{data_volume, iam, security_group, Ctx};

/// Seat → why it is not complete.
pub type Failures = BTreeMap<u16, String>;

/// The outcome of each seat's health check (bootstrapped seats only).
pub type Health = BTreeMap<u16, crate::verify::Report>;

/// Runs `work` for each seat, `limit` at a time; failures are recorded
/// against the seat, successes returned.
async fn each_seat<T, F, Fut>(
    seats: Vec<u16>,
    limit: usize,
    failed: &mut Failures,
    work: F,
) -> BTreeMap<u16, T>
where
    F: Fn(u16) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let results: Vec<(u16, Result<T>)> = stream::iter(seats)
        .map(|seat| {
            let run = work(seat);
            async move { (seat, run.await) }
        })
        .buffer_unordered(limit)
        .collect()
        .await;
    let mut done = BTreeMap::new();
    for (seat, result) in results {
        match result {
            Ok(value) => {
                done.insert(seat, value);
            }
            Err(e) => {
                failed.insert(seat, e.to_string());
            }
        }
    }
    done
}

/// The seats that need `wanted` and have not failed yet.
fn pending(plan: &LabPlan, failed: &Failures, wanted: impl Fn(&Work) -> bool + Copy) -> Vec<u16> {
    plan.seats_needing(wanted)
        .into_iter()
        .filter(|s| !failed.contains_key(s))
        .collect()
}

/// What the plan adds against the account's quotas: an address per seat
/// that gets one, an instance per seat launched or started; duplicates and
/// strays are terminated first and free their vCPUs.
pub fn quota_needs(
    settings: &LabSettings,
    plan: &LabPlan,
    observed: &Observed,
) -> crate::quotas::Needs {
    let count = |wanted: fn(&Work) -> bool| plan.seats_needing(wanted).len() as u32;
    let mut doomed: BTreeSet<&str> = plan.stray.iter().map(String::as_str).collect();
    for work in plan.seats.iter().flat_map(|s| s.work.iter()) {
        if let Work::TerminateDuplicate { instance_id } = work {
            doomed.insert(instance_id);
        }
    }
    let freed = observed
        .seats
        .values()
        .flat_map(|s| s.instances.iter())
        .chain(observed.unassigned.iter())
        .filter(|i| doomed.contains(i.instance.id.as_str()))
        .filter(|i| matches!(i.instance.state.as_str(), "pending" | "running"))
        .map(|i| (i.instance.instance_type.clone(), i.market == "spot"))
        .collect();
    crate::quotas::Needs {
        addresses: count(|w| *w == Work::Address),
        instances: count(|w| matches!(w, Work::Launch | Work::Start { .. })),
        spot: settings.spot,
        freed,
        lab_seats: Some(settings.seats),
    }
}

pub async fn apply(
    lab: &Ctx<'_>,
    settings: &LabSettings,
    plan: &LabPlan,
    observed: &Observed,
) -> Result<Failures> {
    let expires_at = plan.expires_at.as_str();
    let group = security_group::apply(lab, &plan.security_group, &plan.placement.vpc_id).await?;
    let policy = iam::role_policies(lab);
    iam::apply_role(lab, &plan.role, &policy).await?;
    iam::apply_profile(lab, &plan.profile).await?;
    reached("lab-shared").await?;
    if !plan.remove.is_empty() {
        crate::lab::down::remove_seats(lab, observed, &plan.remove).await?;
    }
    let doomed = terminate_extras(lab, plan).await?;
    let mut failed = Failures::new();

    let zone = plan.placement.availability_zone.as_str();
    let seats = pending(plan, &failed, |w| *w == Work::Volume);
    let new_volumes = each_seat(seats, CALLS_IN_FLIGHT, &mut failed, |seat| async move {
        let resume = observed.seat(seat).volume_intent_open;
        data_volume::create(&seat_ctx(lab, seat, expires_at), zone, resume).await
    })
    .await;
    close_volume_intents(lab, expires_at, new_volumes.keys()).await;
    reached("lab-volumes").await?;

    let adopted = adopt(lab, plan, &mut failed).await;
    let launched = launch_missing(lab, settings, plan, &group, &mut failed).await;
    reached("lab-instances").await?;

    start_stopped(lab, plan, &failed).await?;
    // Every seat's instance and volume, as they are now planned to be.
    let mut instance_of: BTreeMap<u16, String> = BTreeMap::new();
    let mut volume_of: BTreeMap<u16, String> = BTreeMap::new();
    for seat in 1..=settings.seats {
        let current = observed.seat(seat);
        if let Some(primary) = current.primary() {
            instance_of.insert(seat, primary.instance.id.clone());
        }
        if let Some(volume) = current.volume() {
            volume_of.insert(seat, volume.id.clone());
        }
    }
    let mut new_instance: BTreeSet<u16> = adopted.keys().chain(launched.keys()).copied().collect();
    new_instance.extend(pending(plan, &failed, |w| {
        matches!(w, Work::Bootstrap { .. })
    }));
    instance_of.extend(adopted);
    instance_of.extend(launched);
    volume_of.extend(new_volumes);
    let readers: BTreeSet<u16> = pending(plan, &failed, |w| *w == Work::Password)
        .into_iter()
        .chain(new_instance.iter().copied())
        .collect();
    let arns = instance_arns(lab, &instance_of, &readers).await?;
    let created = create_passwords(lab, plan, expires_at, &arns, &mut failed).await;
    new_instance.retain(|seat| !created.contains(seat));
    tag_passwords(lab, expires_at, &arns, new_instance, &mut failed).await;
    let to_attach: Vec<u16> = pending(plan, &failed, |w| *w == Work::Attach)
        .into_iter()
        .filter(|s| instance_of.contains_key(s) && volume_of.contains_key(s))
        .collect();
    let to_attach = free_to_attach(observed, &doomed, to_attach, &mut failed);
    let waited_instances: Vec<String> = to_attach
        .iter()
        .chain(pending(plan, &failed, |w| *w == Work::Associate).iter())
        .filter_map(|s| instance_of.get(s).cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    wait_instances(lab, &waited_instances, "running").await?;
    let volumes: Vec<String> = to_attach
        .iter()
        .filter_map(|s| volume_of.get(s).cloned())
        .collect();
    wait_volumes(lab, &volumes, "available").await?;
    let attached = each_seat(to_attach, CALLS_IN_FLIGHT, &mut failed, |seat| {
        let volume = volume_of[&seat].clone();
        let instance = instance_of[&seat].clone();
        async move { attach(lab, &volume, &instance).await.map(|()| volume) }
    })
    .await;
    let attached: Vec<String> = attached.into_values().collect();
    wait_volumes(lab, &attached, "in-use").await?;
    reached("lab-volumes-attached").await?;

    release_extra_addresses(lab, plan, observed).await?;
    let seats = pending(plan, &failed, |w| *w == Work::Address);
    let allocations = each_seat(seats, CALLS_IN_FLIGHT, &mut failed, |seat| async move {
        let tagged = observed.seat(seat).tagged_addresses;
        crate::resources::elastic_ip::allocate(&seat_ctx(lab, seat, expires_at), &tagged).await
    })
    .await;
    let seats: Vec<u16> = pending(plan, &failed, |w| *w == Work::Associate)
        .into_iter()
        .filter(|s| instance_of.contains_key(s))
        .collect();
    each_seat(seats, CALLS_IN_FLIGHT, &mut failed, |seat| {
        let allocation = allocations.get(&seat).cloned().or_else(|| {
            observed
                .seat(seat)
                .address()
                .map(|a| a.allocation_id.clone())
        });
        let instance = instance_of[&seat].clone();
        async move {
            let allocation = allocation.ok_or_else(|| {
                Error::Refused(format!(
                    "seat {} has no Elastic IP to associate",
                    seat_label(seat)
                ))
            })?;
            crate::resources::elastic_ip::associate(lab, &allocation, &instance).await
        }
    })
    .await;
    reached("lab-addresses").await?;
    for seat in plan.seats.iter().map(|s| s.seat) {
        if !instance_of.contains_key(&seat) && !failed.contains_key(&seat) {
            failed.insert(seat, "no instance could be launched for it".into());
        }
    }
    Ok(failed)
}

/// The intents of the volumes just made and recorded, closed together:
/// DeleteParameters takes ten names a call, where one seat at a time
/// would take one call each. One left open is harmless (its volume is
/// recorded; a later create for the seat replays it and finds that
/// volume), so a failure here is said, not fatal.
async fn close_volume_intents(lab: &Ctx<'_>, expires_at: &str, seats: impl Iterator<Item = &u16>) {
    let names: Vec<String> = seats
        .map(|seat| {
            let names = &seat_ctx(lab, *seat, expires_at).names;
            crate::ownership::intent_name(names, crate::ownership::Kind::Volume)
        })
        .collect();
    if names.is_empty() {
        return;
    }
    if let Err(e) = crate::ownership::forget(lab, names).await {
        lab.ui.warn(&format!(
            "could not close the data volumes' creation intents ({e}); they are recorded, and lab down removes the intents"
        ));
    }
}

/// Seat → the ARN of its instance, the one its password names, for the
/// `seats` whose password is made or tagged now. Asks STS for the account
/// only then (a converged lab makes no call here).
async fn instance_arns(
    lab: &Ctx<'_>,
    instance_of: &BTreeMap<u16, String>,
    seats: &BTreeSet<u16>,
) -> Result<BTreeMap<u16, String>> {
    let instance_of: BTreeMap<u16, &String> = instance_of
        .iter()
        .filter(|(seat, _)| seats.contains(seat))
        .map(|(seat, id)| (*seat, id))
        .collect();
    if instance_of.is_empty() {
        return Ok(BTreeMap::new());
    }
    let account = crate::resources::iam::caller_account(lab).await?;
    let region = &lab.settings.region;
    let partition = crate::aws::partition(region);
    Ok(instance_of
        .iter()
        .map(|(seat, id)| {
            let arn = format!("arn:{partition}:ec2:{region}:{account}:instance/{id}");
            (*seat, arn)
        })
        .collect())
}

/// The root passwords still missing, made once the seats' instances are
/// known, so each is tagged with its reader in the creating call (one
/// call a seat, not two). A seat without an instance gets its password
/// untagged; the run that gives it one tags it. Returns the seats whose
/// password now names their instance.
async fn create_passwords(
    lab: &Ctx<'_>,
    plan: &LabPlan,
    expires_at: &str,
    arns: &BTreeMap<u16, String>,
    failed: &mut Failures,
) -> BTreeSet<u16> {
    let seats = pending(plan, failed, |w| *w == Work::Password);
    let created = each_seat(seats, CALLS_IN_FLIGHT, failed, |seat| async move {
        let ctx = seat_ctx(lab, seat, expires_at);
        let reader = arns.get(&seat).map(String::as_str);
        let put = crate::resources::parameters::create(&ctx, reader).await?;
        // One already there keeps its own tags: it is tagged after.
        Ok(reader.is_some() && put == crate::aws::ssm::Put::Written)
    })
    .await;
    created
        .into_iter()
        .filter_map(|(seat, tagged)| tagged.then_some(seat))
        .collect()
}

/// Tags the password of each seat in `seats` with its instance's ARN, so
/// that box, and only it, may read it (`iam::parameters_policy`): seats
/// that got an instance in this run (launched or adopted) and seats still
/// to be bootstrapped (a run stopped between the launch and the tag),
/// unless their password was just made with the tag. A converged lab has
/// none, so a second `lab up` makes no call here.
async fn tag_passwords(
    lab: &Ctx<'_>,
    expires_at: &str,
    arns: &BTreeMap<u16, String>,
    seats: BTreeSet<u16>,
    failed: &mut Failures,
) {
    let seats: Vec<u16> = seats
        .into_iter()
        .filter(|s| arns.contains_key(s) && !failed.contains_key(s))
        .collect();
    each_seat(seats, CALLS_IN_FLIGHT, failed, |seat| {
        let arn = arns[&seat].as_str();
        async move {
            crate::resources::parameters::tag_instance(&seat_ctx(lab, seat, expires_at), arn).await
        }
    })
    .await;
}

/// Seats whose volume another live lab instance (not being terminated)
/// holds cannot be attached: waiting would never end. They fail, said.
fn free_to_attach(
    observed: &Observed,
    doomed: &BTreeSet<String>,
    seats: Vec<u16>,
    failed: &mut Failures,
) -> Vec<u16> {
    let live: BTreeSet<&str> = observed
        .seats
        .values()
        .flat_map(|s| s.instances.iter())
        .chain(observed.unassigned.iter())
        .map(|i| i.instance.id.as_str())
        .collect();
    seats
        .into_iter()
        .filter(|number| {
            let seat = observed.seat(*number);
            let holder = seat.volume().and_then(|v| v.attached_to.clone());
            match holder {
                Some(holder) if live.contains(holder.as_str()) && !doomed.contains(&holder) => {
                    failed.insert(
                        *number,
                        format!("its data volume is attached to {holder}, another lab instance: detach it, then re-run glbox lab up"),
                    );
                    false
                }
                _ => true,
            }
        })
        .collect()
}

/// Duplicates of a seat and strays: one TerminateInstances for all, then
/// one wait (their volumes and addresses must be free for the seats).
/// Returns the ids terminated.
async fn terminate_extras(lab: &Ctx<'_>, plan: &LabPlan) -> Result<BTreeSet<String>> {
    let mut ids: Vec<String> = plan.stray.clone();
    for seat in &plan.seats {
        for work in &seat.work {
            if let Work::TerminateDuplicate { instance_id } = work {
                ids.push(instance_id.clone());
            }
        }
    }
    terminate(lab, &ids).await?;
    Ok(ids.into_iter().collect())
}

/// Untagged lab instances become the seats that need one.
async fn adopt(lab: &Ctx<'_>, plan: &LabPlan, failed: &mut Failures) -> BTreeMap<u16, String> {
    let mut adoptions = BTreeMap::new();
    for seat in &plan.seats {
        for work in &seat.work {
            if let Work::Adopt { instance_id } = work {
                adoptions.insert(seat.seat, instance_id.clone());
            }
        }
    }
    let seats: Vec<u16> = adoptions.keys().copied().collect();
    let adoptions = &adoptions;
    each_seat(seats, CALLS_IN_FLIGHT, failed, |seat| async move {
        let id = adoptions[&seat].clone();
        launch::tag_seat(lab, &id, seat).await?;
        lab.ui
            .info(&format!("{}: took over instance {id}", seat_label(seat)));
        Ok(id)
    })
    .await
}

async fn launch_missing(
    lab: &Ctx<'_>,
    settings: &LabSettings,
    plan: &LabPlan,
    security_group: &str,
    failed: &mut Failures,
) -> BTreeMap<u16, String> {
    let seats = pending(plan, failed, |w| *w == Work::Launch);
    if seats.is_empty() {
        return BTreeMap::new();
    }
    let spec = match crate::resources::image::resolve_launch(lab, &plan.placement, Vec::new(), None)
        .await
    {
        Ok(spec) => spec,
        Err(e) => {
            for seat in seats {
                failed.insert(seat, e.to_string());
            }
            return BTreeMap::new();
        }
    };
    let spec = crate::resources::image::LaunchSpec {
        seen: plan.seen_instances.clone(),
        ..spec
    };
    let request = Request {
        spec: &spec,
        security_group,
        spot: settings.spot,
    };
    let outcome = launch::launch(lab, &request, &seats).await;
    for note in &outcome.notes {
        lab.ui.warn(note);
    }
    failed.extend(outcome.failed);
    outcome.launched
}

/// Stopped seats: one StartInstances for all.
async fn start_stopped(lab: &Ctx<'_>, plan: &LabPlan, failed: &Failures) -> Result<()> {
    let ids: Vec<String> = plan
        .seats
        .iter()
        .filter(|s| !failed.contains_key(&s.seat))
        .flat_map(|s| s.work.iter())
        .filter_map(|w| match w {
            Work::Start { instance_id } => Some(instance_id.clone()),
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    // A stopping instance must finish stopping before it can start.
    wait_instances(lab, &ids, "stopped").await?;
    instances::start(&lab.aws.ec2, &ids).await?;
    lab.ui.info(&format!("started {} instance(s)", ids.len()));
    Ok(())
}

async fn attach(lab: &Ctx<'_>, volume: &str, instance: &str) -> Result<()> {
    volumes::attach(&lab.aws.ec2, lab.ui, volume, instance, data_volume::DEVICE).await?;
    lab.ui.detail(&format!("attaching {volume} to {instance}"));
    Ok(())
}

/// Addresses a seat holds beyond the one it keeps (a lost AllocateAddress
/// answer), or all of them with `elastic_ip = false`: they cost money.
async fn release_extra_addresses(lab: &Ctx<'_>, plan: &LabPlan, observed: &Observed) -> Result<()> {
    for seat in &plan.seats {
        for work in &seat.work {
            if let Work::Release { allocation_id } = work {
                let address = observed
                    .seat(seat.seat)
                    .addresses
                    .into_iter()
                    .find(|a| &a.allocation_id == allocation_id);
                if let Some(address) = address {
                    let seat_ctx = seat_ctx(lab, seat.seat, &plan.expires_at);
                    crate::resources::elastic_ip::release(&seat_ctx, &address).await?;
                }
            }
        }
    }
    Ok(())
}

/// Bootstraps, then checks, the seats that need it, all at once unless
/// `concurrency` caps it, against a fresh observation (new instances have addresses now).
pub async fn bootstrap_seats(
    lab: &Ctx<'_>,
    settings: &LabSettings,
    plan: &LabPlan,
    failed: &mut Failures,
) -> Result<Health> {
    let seats = pending(plan, failed, |w| matches!(w, Work::Bootstrap { .. }));
    if seats.is_empty() {
        return Ok(Health::new());
    }
    let now = observe::observe(lab, &iam::role_policies(lab)).await?;
    let now = &now;
    let expires_at = plan.expires_at.as_str();
    lab.ui.info(&format!(
        "installing GitLab on {} seat(s), {} at a time",
        seats.len(),
        settings.concurrency.min(seats.len())
    ));
    let reports = each_seat(seats, settings.concurrency, failed, |number| async move {
        let ctx = seat_ctx(lab, number, expires_at);
        let seat = now.seat(number);
        let missing =
            |what: &str| Error::Refused(format!("{} has no {what} yet", seat_label(number)));
        let instance = seat
            .primary()
            .ok_or_else(|| missing("instance"))?
            .instance
            .clone();
        let volume = seat
            .volume()
            .ok_or_else(|| missing("data volume"))?
            .id
            .clone();
        let url = crate::lab::plan::seat_url(lab, &seat).ok_or_else(|| missing("address"))?;
        let address = seat
            .address()
            .map(|a| a.public_ip.clone())
            .or_else(|| instance.public_ip.clone());
        let endpoint = crate::endpoint::Endpoint {
            instance,
            address,
            data_volume_id: Some(volume.clone()),
            url,
        };
        let report = endpoint
            .install_and_verify(&ctx, &volume, None, async { Ok(None) })
            .await?;
        lab.ui.info(&format!(
            "{}: GitLab {}",
            seat_label(number),
            if report.healthy {
                "is healthy"
            } else {
                "is NOT healthy"
            }
        ));
        Ok(report)
    })
    .await;
    for (seat, report) in &reports {
        if !report.healthy {
            let wrong: Vec<&str> = report
                .checks
                .iter()
                .filter(|c| c.status == crate::verify::Status::Fail)
                .map(|c| c.name)
                .collect();
            failed.insert(
                *seat,
                format!("GitLab is not healthy ({})", wrong.join(", ")),
            );
        }
    }
    Ok(reports)
}
