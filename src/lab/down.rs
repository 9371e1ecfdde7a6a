//! Removing seats (`lab up` with fewer seats), whole labs (`lab down`),
//! and every expired lab of a region (`lab reap`). A lab's data goes with
//! it: seats are for a class, not for keeping.

use std::collections::BTreeMap;

use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::aws::ec2::{filter, instances, security_groups, volumes};
use crate::error::Result;
use crate::lab::observe::Observed;
use crate::lab::{seat_ctx, terminate, wait_volumes};
use crate::names::{ec2_tag, seat_label, MANAGED_BY, TAG_EXPIRES_AT, TAG_LAB, TAG_MANAGED_BY};
use crate::resources::{elastic_ip, iam, Ctx};

/// What `lab down` removed.
#[derive(Debug, Default, Serialize)]
pub struct Removed {
    pub instances: Vec<String>,
    pub volumes: Vec<String>,
    pub addresses: Vec<String>,
    pub parameters: Vec<String>,
    pub shared: Vec<String>,
}

/// Removes the seats in `seats`: instances (one call), then their
/// addresses, volumes and passwords.
pub async fn remove_seats(lab: &Ctx<'_>, observed: &Observed, seats: &[u16]) -> Result<Removed> {
    let mut removed = Removed::default();
    let chosen: Vec<_> = seats.iter().map(|s| (*s, observed.seat(*s))).collect();
    removed.instances = chosen
        .iter()
        .flat_map(|(_, s)| s.instances.iter().map(|i| i.instance.id.clone()))
        .collect();
    terminate(lab, &removed.instances).await?;
    let expires_at = lab.names.expires_at();
    let expires_at = expires_at.as_str();
    let addresses: Vec<(u16, &elastic_ip::Address)> = chosen
        .iter()
        .flat_map(|(seat, s)| s.addresses.iter().map(move |a| (*seat, a)))
        .collect();
    in_parallel(addresses.clone(), |(seat, address)| async move {
        elastic_ip::release(&seat_ctx(lab, seat, expires_at), address).await
    })
    .await?;
    removed.addresses = addresses
        .iter()
        .map(|(_, a)| a.allocation_id.clone())
        .collect();
    let volumes: Vec<String> = chosen
        .iter()
        .flat_map(|(_, s)| s.volumes.iter().map(|v| v.id.clone()))
        .collect();
    // Terminated instances let go of their volumes.
    wait_volumes(lab, &volumes, "available").await?;
    in_parallel(volumes.iter().collect(), |id: &String| async move {
        Ok(volumes::delete(&lab.aws.ec2, id).await?)
    })
    .await?;
    removed.volumes = volumes;
    removed.parameters = chosen
        .iter()
        .filter(|(_, s)| s.password)
        .map(|(n, _)| {
            format!(
                "{}{}/root-password",
                lab.names.parameter_prefix(),
                seat_label(*n)
            )
        })
        .collect();
    // The seats' ownership records go with what they record.
    let records: Vec<String> = chosen
        .iter()
        .flat_map(|(_, s)| s.ledger_parameters.iter().cloned())
        .collect();
    let parameters: Vec<String> = removed.parameters.iter().cloned().chain(records).collect();
    crate::aws::ssm::delete_many(&lab.aws.ssm, &parameters).await?;
    let labels: Vec<String> = seats.iter().map(|s| seat_label(*s)).collect();
    lab.ui
        .info(&format!("removed seat(s) {}", labels.join(", ")));
    Ok(removed)
}

/// Runs `work` on every item, a few calls at a time (AWS has no batch
/// form for these); the first error, if any, once all have run.
async fn in_parallel<T, F, Fut>(items: Vec<T>, work: F) -> Result<()>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let results: Vec<Result<()>> = stream::iter(items)
        .map(work)
        .buffer_unordered(crate::lab::CALLS_IN_FLIGHT)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Removes everything of the lab.
pub async fn down(lab: &Ctx<'_>, observed: &Observed) -> Result<Removed> {
    let strays: Vec<String> = observed
        .unassigned
        .iter()
        .map(|i| i.instance.id.clone())
        .collect();
    terminate(lab, &strays).await?;
    let seats: Vec<u16> = observed.seats.keys().copied().collect();
    let mut removed = remove_seats(lab, observed, &seats).await?;
    removed.instances.extend(strays);
    if let Some(group) = &observed.security_group {
        crate::deploy::down::delete_group_when_free(lab, group).await?;
        removed.shared.push(group.id.clone());
    }
    if let Some(profile) = observed.profile.as_ref().filter(|p| p.owned) {
        iam::delete_profile(lab, profile).await?;
        removed.shared.push(profile.name.clone());
    }
    if let Some(role) = observed.role.as_ref().filter(|r| r.owned) {
        iam::delete_role(lab, role).await?;
        removed.shared.push(role.name.clone());
    }
    Ok(removed)
}

/// A lab found in a region by its tags.
#[derive(Debug, Clone, Serialize)]
pub struct FoundLab {
    pub name: String,
    /// `None` when no resource of the lab says when it expires.
    pub expires_at: Option<String>,
}

/// Every lab in the region: names from the tags of its security groups,
/// instances and volumes (one describe each), with their expiry.
pub async fn find_labs(ctx: &Ctx<'_>) -> Result<Vec<FoundLab>> {
    let managed_by = format!("tag:{TAG_MANAGED_BY}");
    let filters = || {
        vec![
            filter("tag-key", &[TAG_LAB]),
            filter(&managed_by, &[MANAGED_BY]),
        ]
    };
    let ec2 = &ctx.aws.ec2;
    let mut tag_sets: Vec<Vec<aws_sdk_ec2::types::Tag>> = Vec::new();
    let groups = security_groups::describe(ec2, filters()).await?;
    tag_sets.extend(groups.iter().map(|g| g.tags().to_vec()));
    let found = instances::describe(ec2, filters()).await?;
    tag_sets.extend(
        found
            .iter()
            .filter(|i| {
                i.state()
                    .and_then(|s| s.name())
                    .is_some_and(|n| n.as_str() != "terminated")
            })
            .map(|i| i.tags().to_vec()),
    );
    let found = volumes::describe(ec2, filters()).await?;
    tag_sets.extend(found.iter().map(|v| v.tags().to_vec()));
    let mut labs: BTreeMap<String, Option<String>> = BTreeMap::new();
    for tags in &tag_sets {
        let Some(name) = ec2_tag(tags, TAG_LAB) else {
            continue;
        };
        let expires = ec2_tag(tags, TAG_EXPIRES_AT).map(str::to_string);
        let entry = labs.entry(name.to_string()).or_default();
        if entry.is_none() {
            *entry = expires;
        }
    }
    Ok(labs
        .into_iter()
        .map(|(name, expires_at)| FoundLab { name, expires_at })
        .collect())
}
