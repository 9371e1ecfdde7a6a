//! EC2's DryRun: would this identity be allowed to create what `up`
//! creates? Nothing is made.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{InstanceType, VolumeType};
use aws_sdk_ec2::Client;

use crate::aws::{has_code, AwsError};

/// Whether the identity may make the call; an error that says neither.
pub type Verdict = Result<bool, AwsError>;

/// EC2 answers a DryRun with DryRunOperation when the call would be
/// allowed and UnauthorizedOperation when not.
fn verdict<T, E, R>(action: &'static str, result: Result<T, SdkError<E, R>>) -> Verdict
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Err(e) if has_code(&e, "DryRunOperation") => Ok(true),
        Err(e) if has_code(&e, "UnauthorizedOperation") => Ok(false),
        Err(e) => Err(crate::aws::error(action, e)),
        Ok(_) => Ok(true),
    }
}

pub async fn run_instances(
    ec2: &Client,
    image_id: &str,
    instance_type: &str,
    subnet_id: &str,
) -> Verdict {
    let sent = ec2
        .run_instances()
        .dry_run(true)
        .image_id(image_id)
        .instance_type(InstanceType::from(instance_type))
        .subnet_id(subnet_id)
        .min_count(1)
        .max_count(1)
        .send()
        .await;
    verdict("ec2:RunInstances", sent)
}

pub async fn create_volume(ec2: &Client, zone: &str, size_gib: i32) -> Verdict {
    let sent = ec2
        .create_volume()
        .dry_run(true)
        .availability_zone(zone)
        .size(size_gib)
        .volume_type(VolumeType::Gp3)
        .encrypted(true)
        .send()
        .await;
    verdict("ec2:CreateVolume", sent)
}

pub async fn create_security_group(ec2: &Client, vpc_id: &str) -> Verdict {
    let sent = ec2
        .create_security_group()
        .dry_run(true)
        .group_name("glbox-doctor-dry-run")
        .description("glbox doctor dry run")
        .vpc_id(vpc_id)
        .send()
        .await;
    verdict("ec2:CreateSecurityGroup", sent)
}

pub async fn allocate_address(ec2: &Client) -> Verdict {
    let sent = ec2.allocate_address().dry_run(true).send().await;
    verdict("ec2:AllocateAddress", sent)
}
