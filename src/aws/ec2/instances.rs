//! EC2 instances: describe, launch, start, stop, change, terminate and wait.
//! One box and a lab of two hundred seats call the same functions; the
//! many-id calls batch ids EC2's way (up to 500 a call).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    AttributeValue, BlockDeviceMapping, EbsBlockDevice, Filter, HttpTokensState,
    IamInstanceProfileSpecification, Instance, InstanceInterruptionBehavior,
    InstanceMarketOptionsRequest, InstanceMetadataEndpointState, InstanceMetadataOptionsRequest,
    InstanceNetworkInterfaceSpecification, InstanceType, MarketType, SpotInstanceType,
    SpotMarketOptions, TagSpecification, VolumeType,
};
use aws_sdk_ec2::Client;
use sha2::{Digest, Sha256};

use super::{filter, Wait, IDS_PER_CALL};
use crate::aws::{has_code, ok_if, settled, AwsError, AwsResultExt, Lag};
use crate::error::{Error, Result};
use crate::ui::Ui;
use crate::wait::{self, Poll};

/// Every instance matching `filters`, all pages.
pub async fn describe(ec2: &Client, filters: Vec<Filter>) -> Result<Vec<Instance>, AwsError> {
    let mut pages = ec2
        .describe_instances()
        .set_filters((!filters.is_empty()).then_some(filters))
        .into_paginator()
        .send();
    let mut instances = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.ctx("ec2:DescribeInstances")?;
        for reservation in page.reservations() {
            instances.extend(reservation.instances().iter().cloned());
        }
    }
    Ok(instances)
}

/// One instance by id; a just-launched one can be briefly unknown to
/// Describe, which is waited out.
pub async fn describe_one(ec2: &Client, ui: &Ui, id: &str) -> Result<Option<Instance>, AwsError> {
    let out = settled(ui, &[Lag::FreshId], id, || {
        ec2.describe_instances().instance_ids(id).send()
    })
    .await
    .ctx("ec2:DescribeInstances")?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()
        .cloned())
}

/// The instances `ids` by id, all pages; `None` while EC2 does not know
/// one of them yet (just launched).
async fn describe_ids(ec2: &Client, ids: &[String]) -> Result<Option<Vec<Instance>>, AwsError> {
    let mut found = Vec::new();
    for chunk in ids.chunks(IDS_PER_CALL) {
        let mut pages = ec2
            .describe_instances()
            .set_instance_ids(Some(chunk.to_vec()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Err(e) if has_code(&e, "InvalidInstanceID.NotFound") => return Ok(None),
                other => other.ctx("ec2:DescribeInstances")?,
            };
            found.extend(
                page.reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .cloned(),
            );
        }
    }
    Ok(Some(found))
}

fn state_of(instance: &Instance) -> &str {
    instance
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str())
        .unwrap_or_default()
}

/// Waits until every instance in `ids` is in `wait.state`, with one
/// DescribeInstances per poll for all of them; returns them as last seen.
/// An instance that terminates while waited for to be anything else can
/// never get there: `lost` says so for those ids.
pub async fn wait_for(
    ec2: &Client,
    ui: &Ui,
    ids: &[String],
    wait: &Wait<'_>,
    lost: impl Fn(&[&str]) -> Error,
) -> Result<Vec<Instance>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let state = wait.state;
    wait::until(ui, wait.what, wait.within, || async {
        let Some(found) = describe_ids(ec2, ids).await? else {
            return Ok(Poll::Pending("not visible yet".into()));
        };
        let by_id: BTreeMap<&str, &Instance> = found
            .iter()
            .map(|i| (i.instance_id().unwrap_or_default(), i))
            .collect();
        let terminated: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| {
                state != "terminated" && by_id.get(id).map(|i| state_of(i)) == Some("terminated")
            })
            .collect();
        if !terminated.is_empty() {
            return Err(lost(&terminated));
        }
        let ready = ids
            .iter()
            .filter(|id| by_id.get(id.as_str()).map(|i| state_of(i)) == Some(state))
            .count();
        if ready == ids.len() {
            return Ok(Poll::Ready(found.clone()));
        }
        Ok(Poll::Pending(match found.first() {
            _ if wait.counted => format!("{ready} of {} {state}", ids.len()),
            Some(only) => state_of(only).to_string(),
            None => "not visible yet".into(),
        }))
    })
    .await
}

/// Terminates `ids`, up to 500 in one call; ids EC2 no longer knows are
/// gone already. Does not wait (see [`wait_for`]).
pub async fn terminate(ec2: &Client, ids: &[String]) -> Result<(), AwsError> {
    for chunk in ids.chunks(IDS_PER_CALL) {
        let sent = ec2
            .terminate_instances()
            .set_instance_ids(Some(chunk.to_vec()))
            .send()
            .await;
        ok_if(
            "ec2:TerminateInstances",
            sent,
            &["InvalidInstanceID.NotFound"],
        )?;
    }
    Ok(())
}

/// Starts `ids` in one call.
pub async fn start(ec2: &Client, ids: &[String]) -> Result<(), AwsError> {
    ec2.start_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .ctx("ec2:StartInstances")?;
    Ok(())
}

pub async fn stop(ec2: &Client, id: &str) -> Result<(), AwsError> {
    ec2.stop_instances()
        .instance_ids(id)
        .send()
        .await
        .ctx("ec2:StopInstances")?;
    Ok(())
}

/// A stopped instance's new type.
pub async fn set_type(ec2: &Client, id: &str, instance_type: &str) -> Result<(), AwsError> {
    ec2.modify_instance_attribute()
        .instance_id(id)
        .instance_type(AttributeValue::builder().value(instance_type).build())
        .send()
        .await
        .ctx("ec2:ModifyInstanceAttribute")?;
    Ok(())
}

/// The instance's security groups, all of them (replacing the old set).
pub async fn set_groups(ec2: &Client, id: &str, groups: Vec<String>) -> Result<(), AwsError> {
    ec2.modify_instance_attribute()
        .instance_id(id)
        .set_groups(Some(groups))
        .send()
        .await
        .ctx("ec2:ModifyInstanceAttribute")?;
    Ok(())
}

/// IMDSv2 only, hop limit 1, on a running instance.
pub async fn require_imdsv2(ec2: &Client, id: &str) -> Result<(), AwsError> {
    ec2.modify_instance_metadata_options()
        .instance_id(id)
        .http_tokens(HttpTokensState::Required)
        .http_put_response_hop_limit(1)
        .send()
        .await
        .ctx("ec2:ModifyInstanceMetadataOptions")?;
    Ok(())
}

/// How the profile is named in the wait line of [`Lag::InstanceProfile`].
fn profile_named(name: &str) -> String {
    format!("instance profile {name}")
}

/// Points the instance at the instance profile `profile`: a new
/// association, or a replacement of whatever profile is associated now.
/// Waits for EC2 to accept a profile made moments ago.
pub async fn associate_profile(
    ec2: &Client,
    ui: &Ui,
    id: &str,
    profile: &str,
) -> Result<(), AwsError> {
    let spec = IamInstanceProfileSpecification::builder()
        .name(profile)
        .build();
    let named = profile_named(profile);
    let current = ec2
        .describe_iam_instance_profile_associations()
        .filters(filter("instance-id", &[id]))
        .send()
        .await
        .ctx("ec2:DescribeIamInstanceProfileAssociations")?;
    let existing = current
        .iam_instance_profile_associations()
        .iter()
        .find(|a| a.state().is_some_and(|s| s.as_str() == "associated"))
        .and_then(|a| a.association_id());
    let lags = [Lag::InstanceProfile, Lag::FreshId];
    match existing {
        Some(association) => {
            settled(ui, &lags, &named, || {
                ec2.replace_iam_instance_profile_association()
                    .association_id(association)
                    .iam_instance_profile(spec.clone())
                    .send()
            })
            .await
            .ctx("ec2:ReplaceIamInstanceProfileAssociation")?;
        }
        None => {
            settled(ui, &lags, &named, || {
                ec2.associate_iam_instance_profile()
                    .instance_id(id)
                    .iam_instance_profile(spec.clone())
                    .send()
            })
            .await
            .ctx("ec2:AssociateIamInstanceProfile")?;
        }
    }
    Ok(())
}

/// Tags `resources` (instances, volumes, ...) with `tags`; ids EC2 has
/// just given may be unknown to it for a moment, which is waited out.
pub async fn create_tags(
    ec2: &Client,
    ui: &Ui,
    resources: &[&str],
    tags: &[(&str, &str)],
) -> Result<(), AwsError> {
    let what = resources.join(", ");
    let tags: Vec<aws_sdk_ec2::types::Tag> = tags
        .iter()
        .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build())
        .collect();
    settled(ui, &[Lag::FreshId], &what, || {
        ec2.create_tags()
            .set_resources(Some(resources.iter().map(|r| r.to_string()).collect()))
            .set_tags(Some(tags.clone()))
            .send()
    })
    .await
    .ctx("ec2:CreateTags")?;
    Ok(())
}

/// What one RunInstances launches: `count` instances at most (EC2 may
/// give fewer), from plain values.
pub struct Launch<'a> {
    pub image_id: &'a str,
    pub instance_type: &'a str,
    pub subnet_id: &'a str,
    pub security_group: &'a str,
    /// Ask for a public IPv4 (the subnet assigns none but routes to an
    /// internet gateway).
    pub public_ip_at_launch: bool,
    pub profile: &'a str,
    pub root_device: &'a str,
    pub root_gib: i32,
    /// The user data, base64-encoded as RunInstances takes it.
    pub user_data: &'a str,
    /// Tags at launch: the instance's and the root volume's.
    pub tags: Vec<TagSpecification>,
    pub key_name: Option<String>,
    pub count: usize,
    pub spot: bool,
}

/// Why a launch failed.
#[derive(Debug)]
pub enum RunFailed {
    Aws(AwsError),
    /// Every fresh token still replayed an earlier launch whose instances
    /// are gone (AWS keeps tokens longer than it lists terminated
    /// instances).
    Replayed,
}

/// How many fresh tokens a launch tries after the first before giving up.
const FRESH_TOKENS: u32 = 3;

/// Launches with RunInstances, waiting while EC2 does not accept a profile
/// made moments ago. `token(attempt)` gives the call's ClientToken, so a
/// retried call whose answer was lost cannot launch twice; when the token
/// replays an earlier launch whose instances are gone, or was used with
/// other parameters, the next attempt's token is tried. Returns the
/// instances launched, in EC2's order.
pub async fn run(
    ec2: &Client,
    ui: &Ui,
    launch: &Launch<'_>,
    token: impl Fn(u32) -> String,
) -> Result<Vec<Instance>, RunFailed> {
    let profile = profile_named(launch.profile);
    for attempt in 0..=FRESH_TOKENS {
        let token = token(attempt);
        let sent = settled(ui, &[Lag::InstanceProfile, Lag::FreshId], &profile, || {
            run_request(ec2, launch, &token).send()
        })
        .await;
        match sent {
            Ok(out) if out.instances().iter().all(|i| is_live(state_of(i))) => {
                return Ok(out.instances().to_vec())
            }
            Ok(_) => {}
            Err(e) if has_code(&e, "IdempotentParameterMismatch") => {}
            Err(e) => return Err(RunFailed::Aws(crate::aws::error("ec2:RunInstances", e))),
        }
    }
    Err(RunFailed::Replayed)
}

fn is_live(state: &str) -> bool {
    !matches!(state, "terminated" | "shutting-down")
}

fn run_request(
    ec2: &Client,
    launch: &Launch<'_>,
    token: &str,
) -> aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder {
    let count = i32::try_from(launch.count).unwrap_or(i32::MAX);
    let call = on_network(ec2.run_instances(), launch)
        .image_id(launch.image_id)
        .instance_type(InstanceType::from(launch.instance_type))
        .min_count(1)
        .max_count(count)
        .iam_instance_profile(
            IamInstanceProfileSpecification::builder()
                .name(launch.profile)
                .build(),
        )
        .metadata_options(imdsv2_only())
        .block_device_mappings(root_volume(launch.root_device, launch.root_gib))
        .user_data(launch.user_data)
        .set_tag_specifications(Some(launch.tags.clone()))
        .set_key_name(launch.key_name.clone())
        .client_token(token);
    if !launch.spot {
        return call;
    }
    call.instance_market_options(
        InstanceMarketOptionsRequest::builder()
            .market_type(MarketType::Spot)
            .spot_options(
                SpotMarketOptions::builder()
                    .spot_instance_type(SpotInstanceType::OneTime)
                    .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
                    .build(),
            )
            .build(),
    )
}

/// Puts the instance in the subnet with the security group. With
/// `public_ip_at_launch`, through a network interface specification asking
/// for a public IPv4: the subnet and groups then go on the interface, not
/// on the call (API_RunInstances, NetworkInterfaces).
fn on_network(
    call: aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder,
    launch: &Launch<'_>,
) -> aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder {
    if !launch.public_ip_at_launch {
        return call
            .subnet_id(launch.subnet_id)
            .security_group_ids(launch.security_group);
    }
    call.network_interfaces(
        InstanceNetworkInterfaceSpecification::builder()
            .device_index(0)
            .subnet_id(launch.subnet_id)
            .groups(launch.security_group)
            .associate_public_ip_address(true)
            .delete_on_termination(true)
            .build(),
    )
}

/// The encrypted gp3 root volume, deleted with the instance.
fn root_volume(device: &str, gib: i32) -> BlockDeviceMapping {
    BlockDeviceMapping::builder()
        .device_name(device)
        .ebs(
            EbsBlockDevice::builder()
                .volume_size(gib)
                .volume_type(VolumeType::Gp3)
                .encrypted(true)
                .delete_on_termination(true)
                .build(),
        )
        .build()
}

/// IMDSv2 only, reachable from the instance itself only (hop limit 1).
fn imdsv2_only() -> InstanceMetadataOptionsRequest {
    InstanceMetadataOptionsRequest::builder()
        .http_tokens(HttpTokensState::Required)
        .http_put_response_hop_limit(1)
        .http_endpoint(InstanceMetadataEndpointState::Enabled)
        .build()
}

/// A deterministic ClientToken `<prefix>-<24 hex digits>` from the launch's
/// `parts`: the same launch gives the same token.
pub fn client_token<'a>(prefix: &str, parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{prefix}-{hex}")
}

/// The boot log of an instance (base64, as EC2 gives it), if it has one.
pub async fn console_output(ec2: &Client, id: &str) -> Result<Option<String>, AwsError> {
    let out = ec2
        .get_console_output()
        .instance_id(id)
        .latest(true)
        .send()
        .await
        .ctx("ec2:GetConsoleOutput")?;
    Ok(out.output().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::replay::{answer, ec2_client, ec2_refusal, operations};
    use std::time::Duration;

    fn reservation(instances: &[(&str, &str)]) -> String {
        let items: String = instances
            .iter()
            .map(|(id, state)| {
                format!("<item><instanceId>{id}</instanceId><instanceState><name>{state}</name></instanceState></item>")
            })
            .collect();
        format!("<DescribeInstancesResponse><reservationSet><item><instancesSet>{items}</instancesSet></item></reservationSet></DescribeInstancesResponse>")
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("i-{i}")).collect()
    }

    #[tokio::test]
    async fn terminating_many_is_one_request() {
        let (ec2, replay) = ec2_client(vec![answer(200, "<TerminateInstancesResponse/>")]);
        terminate(&ec2, &ids(200)).await.unwrap();
        assert_eq!(operations(&replay), ["TerminateInstances"]);
    }

    #[tokio::test]
    async fn terminating_what_is_gone_already_succeeds() {
        let (ec2, replay) = ec2_client(vec![ec2_refusal("InvalidInstanceID.NotFound")]);
        terminate(&ec2, &ids(2)).await.unwrap();
        assert_eq!(operations(&replay).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_many_is_one_describe_per_poll() {
        let all = ids(3);
        let (ec2, replay) = ec2_client(vec![
            answer(
                200,
                &reservation(&[("i-0", "pending"), ("i-1", "running"), ("i-2", "pending")]),
            ),
            answer(
                200,
                &reservation(&[("i-0", "running"), ("i-1", "running"), ("i-2", "running")]),
            ),
        ]);
        let ui = Ui::new(crate::ui::Verbosity::Quiet);
        let wait = Wait {
            state: "running",
            what: "3 instance(s) to be running",
            within: Duration::from_secs(60),
            counted: true,
        };
        let seen = wait_for(&ec2, &ui, &all, &wait, |_| Error::Refused("lost".into()))
            .await
            .unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(
            operations(&replay),
            ["DescribeInstances", "DescribeInstances"]
        );
    }

    #[tokio::test]
    async fn an_instance_terminated_while_waited_for_fails_the_wait() {
        let (ec2, _) = ec2_client(vec![answer(200, &reservation(&[("i-0", "terminated")]))]);
        let ui = Ui::new(crate::ui::Verbosity::Quiet);
        let wait = Wait {
            state: "running",
            what: "instance i-0 to be running",
            within: Duration::from_secs(60),
            counted: true,
        };
        let err = wait_for(&ec2, &ui, &ids(1), &wait, |lost| {
            Error::Refused(format!("lost {}", lost.join(",")))
        })
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "lost i-0");
    }

    #[tokio::test]
    async fn a_token_that_replays_a_gone_launch_is_replaced() {
        let run_answer = |state: &str| {
            answer(
                200,
                &format!("<RunInstancesResponse><instancesSet><item><instanceId>i-{state}</instanceId><instanceState><name>{state}</name></instanceState></item></instancesSet></RunInstancesResponse>"),
            )
        };
        let (ec2, replay) = ec2_client(vec![
            run_answer("terminated"),
            ec2_refusal("IdempotentParameterMismatch"),
            run_answer("pending"),
        ]);
        let launch = Launch {
            image_id: "ami-1",
            instance_type: "c5.2xlarge",
            subnet_id: "subnet-1",
            security_group: "sg-1",
            public_ip_at_launch: false,
            profile: "glbox-t-us-east-1",
            root_device: "/dev/sda1",
            root_gib: 30,
            user_data: "#!/bin/sh",
            tags: Vec::new(),
            key_name: None,
            count: 1,
            spot: false,
        };
        let ui = Ui::new(crate::ui::Verbosity::Quiet);
        let tokens = std::sync::Mutex::new(Vec::new());
        let launched = run(&ec2, &ui, &launch, |attempt| {
            tokens.lock().unwrap().push(attempt);
            format!("t-{attempt}")
        })
        .await
        .unwrap();
        assert_eq!(launched[0].instance_id(), Some("i-pending"));
        assert_eq!(*tokens.lock().unwrap(), [0, 1, 2]);
        assert_eq!(operations(&replay), ["RunInstances"; 3]);
    }

    #[test]
    fn client_tokens_fit_aws_limit() {
        let token = client_token("glbox-n", ["a", "b"]);
        assert_eq!(token.len(), "glbox-n-".len() + 24);
        assert_eq!(token, client_token("glbox-n", ["a", "b"]));
        assert_ne!(token, client_token("glbox-n", ["ab"]));
    }
}
