//! Where the instance (and so its data volume) lives: subnet, VPC and zone.
//!
//! The placement is sticky: once an instance or a data volume exists, glbox
//! keeps using its zone, so a re-run never moves data by accident.

use aws_sdk_ec2::types::{Filter, LocationType};

use crate::aws::AwsResultExt;
use crate::error::{Error, Result};
use crate::resources::Ctx;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub subnet_id: String,
    pub vpc_id: String,
    pub availability_zone: String,
}

/// The placement an existing instance has.
pub fn of_instance(instance: &super::instance::Instance) -> Placement {
    Placement {
        subnet_id: instance.subnet_id.clone(),
        vpc_id: instance.vpc_id.clone(),
        availability_zone: instance.availability_zone.clone(),
    }
}

/// Resolves the placement: the configured subnet, else the running
/// instance's, else the default VPC's subnet in the data volume's zone, else
/// the first default subnet whose zone offers the instance type.
pub async fn resolve(
    ctx: &Ctx<'_>,
    instance: Option<&super::instance::Instance>,
    data_volume_zone: Option<&str>,
) -> Result<Placement> {
    if let Some(subnet_id) = &ctx.settings.subnet_id {
        return configured_subnet(ctx, subnet_id).await;
    }
    if let Some(instance) = instance {
        return Ok(of_instance(instance));
    }
    let defaults = default_subnets(ctx).await?;
    if let Some(zone) = data_volume_zone {
        return defaults
            .into_iter()
            .find(|p| p.availability_zone == zone)
            .ok_or_else(|| {
                Error::Refused(format!(
                    "the data volume is in {zone}, but the default VPC has no default subnet there\n  fix: set instance.subnet_id to a subnet in {zone}"
                ))
            });
    }
    let zones = zones_offering(ctx).await?;
    defaults
        .into_iter()
        .find(|p| zones.contains(&p.availability_zone))
        .ok_or_else(|| {
            Error::Refused(format!(
                "no default subnet in {} is in a zone that offers {}\n  fix: choose another instance.type, or set instance.subnet_id",
                ctx.settings.region, ctx.settings.instance_type
            ))
        })
}

async fn configured_subnet(ctx: &Ctx<'_>, subnet_id: &str) -> Result<Placement> {
    let out = ctx
        .aws
        .ec2
        .describe_subnets()
        .subnet_ids(subnet_id)
        .send()
        .await
        .ctx("ec2:DescribeSubnets")?;
    let subnet = out.subnets().first().ok_or_else(|| {
        Error::Refused(format!(
            "instance.subnet_id = {subnet_id:?} does not exist in {}\n  fix: use a subnet of this region, or leave it empty for the default VPC",
            ctx.settings.region
        ))
    })?;
    Ok(Placement {
        subnet_id: subnet_id.to_string(),
        vpc_id: subnet.vpc_id().unwrap_or_default().to_string(),
        availability_zone: subnet.availability_zone().unwrap_or_default().to_string(),
    })
}

/// The default VPC's default subnets, ordered by zone name.
async fn default_subnets(ctx: &Ctx<'_>) -> Result<Vec<Placement>> {
    let out = ctx
        .aws
        .ec2
        .describe_subnets()
        .filters(
            Filter::builder()
                .name("default-for-az")
                .values("true")
                .build(),
        )
        .send()
        .await
        .ctx("ec2:DescribeSubnets")?;
    let mut placements: Vec<Placement> = out
        .subnets()
        .iter()
        .map(|s| Placement {
            subnet_id: s.subnet_id().unwrap_or_default().to_string(),
            vpc_id: s.vpc_id().unwrap_or_default().to_string(),
            availability_zone: s.availability_zone().unwrap_or_default().to_string(),
        })
        .collect();
    if placements.is_empty() {
        return Err(Error::Refused(format!(
            "{} has no default VPC\n  fix: set instance.subnet_id to a subnet with a route to the internet",
            ctx.settings.region
        )));
    }
    placements.sort_by(|a, b| a.availability_zone.cmp(&b.availability_zone));
    Ok(placements)
}

async fn zones_offering(ctx: &Ctx<'_>) -> Result<Vec<String>> {
    let out = ctx
        .aws
        .ec2
        .describe_instance_type_offerings()
        .location_type(LocationType::AvailabilityZone)
        .filters(
            Filter::builder()
                .name("instance-type")
                .values(&ctx.settings.instance_type)
                .build(),
        )
        .send()
        .await
        .ctx("ec2:DescribeInstanceTypeOfferings")?;
    Ok(out
        .instance_type_offerings()
        .iter()
        .filter_map(|o| o.location().map(str::to_string))
        .collect())
}
