//! Where the instance (and so its data volume) lives: subnet, VPC and zone.
//!
//! The placement is sticky: once an instance or a data volume exists, glbox
//! keeps using its zone, so a re-run never moves data by accident.

use crate::aws::ec2::lookups;
use crate::error::{Error, Result};
use crate::resources::Ctx;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub subnet_id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    /// Ask RunInstances for a public IPv4: the subnet does not assign one
    /// but routes to an internet gateway (see `internet_at_first_boot`).
    pub public_ip_at_launch: bool,
}

/// Resolves the placement: the configured subnet, else the running
/// instance's (`current`), else the default VPC's subnet in the data volume's zone, else
/// the first default subnet whose zone offers the instance type.
pub async fn resolve(
    ctx: &Ctx<'_>,
    current: Option<Placement>,
    data_volume_zone: Option<&str>,
) -> Result<Placement> {
    if let Some(subnet_id) = &ctx.settings.subnet_id {
        return configured_subnet(ctx, subnet_id).await;
    }
    if let Some(current) = current {
        return Ok(current);
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
    let zones = lookups::zones_offering(&ctx.aws.ec2, &ctx.settings.instance_type).await?;
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
    let subnet = lookups::subnet(&ctx.aws.ec2, subnet_id).await?;
    let subnet = subnet.ok_or_else(|| {
        Error::Refused(format!(
            "instance.subnet_id = {subnet_id:?} does not exist in {}\n  fix: use a subnet of this region, or leave it empty for the default VPC",
            ctx.settings.region
        ))
    })?;
    let vpc_id = subnet.vpc_id().unwrap_or_default().to_string();
    let maps_public_ip = subnet.map_public_ip_on_launch() == Some(true);
    let route = if maps_public_ip {
        // Not asked: a subnet that maps public IPs is taken at its word.
        DefaultRoute::InternetGateway
    } else {
        default_route(&lookups::route_tables_of(&ctx.aws.ec2, subnet_id, &vpc_id).await?)
    };
    let public_ip_at_launch = internet_at_first_boot(maps_public_ip, route).map_err(|problem| {
        Error::Refused(format!("instance.subnet_id = {subnet_id:?} {problem}"))
    })?;
    Ok(Placement {
        subnet_id: subnet_id.to_string(),
        vpc_id,
        availability_zone: subnet.availability_zone().unwrap_or_default().to_string(),
        public_ip_at_launch,
    })
}

/// Where a subnet's traffic to 0.0.0.0/0 goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultRoute {
    InternetGateway,
    /// A NAT gateway, NAT instance, transit gateway or the like: outbound
    /// traffic gets out, without a public address on the box.
    Nat,
    None,
}

/// Whether the box must ask for a public IPv4 at launch to reach the
/// internet at first boot (cloud-init installs packages, the bootstrap
/// downloads GitLab, the SSM agent connects), or why it cannot reach it.
///
/// A non-default subnet assigns no public IPv4 unless MapPublicIpOnLaunch
/// is set (VPC IP addressing,
/// https://docs.aws.amazon.com/vpc/latest/userguide/vpc-ip-addressing.html),
/// and an Elastic IP comes only after the launch, too late for first boot.
/// A box without a public address reaches the internet only through a NAT
/// route; with neither, nothing it needs at first boot is reachable.
pub fn internet_at_first_boot(
    maps_public_ip: bool,
    route: DefaultRoute,
) -> std::result::Result<bool, String> {
    match (maps_public_ip, route) {
        (true, _) => Ok(false),
        (false, DefaultRoute::InternetGateway) => Ok(true),
        (false, DefaultRoute::Nat) => Ok(false),
        (false, DefaultRoute::None) => Err(
            "has no route to the internet (its route table sends 0.0.0.0/0 to no internet gateway and no NAT gateway): the box could not install its packages or GitLab at first boot, nor reach Systems Manager\n  fix: add a NAT gateway route (0.0.0.0/0) to the subnet's route table, or SSM VPC endpoints (ssm, ssmmessages, ec2messages) and a package mirror, or choose a subnet whose route table has an internet gateway"
                .into(),
        ),
    }
}

/// The 0.0.0.0/0 route of the tables that decide a subnet's routes.
fn default_route(tables: &[aws_sdk_ec2::types::RouteTable]) -> DefaultRoute {
    let route = tables
        .iter()
        .flat_map(|t| t.routes())
        .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"));
    match route {
        Some(r) if r.gateway_id().is_some_and(|g| g.starts_with("igw-")) => {
            DefaultRoute::InternetGateway
        }
        Some(r)
            if r.nat_gateway_id().is_some()
                || r.transit_gateway_id().is_some()
                || r.instance_id().is_some()
                || r.network_interface_id().is_some() =>
        {
            DefaultRoute::Nat
        }
        _ => DefaultRoute::None,
    }
}

/// The default VPC's default subnets, ordered by zone name.
async fn default_subnets(ctx: &Ctx<'_>) -> Result<Vec<Placement>> {
    let subnets = lookups::default_subnets(&ctx.aws.ec2).await?;
    let mut placements: Vec<Placement> = subnets
        .iter()
        .map(|s| Placement {
            subnet_id: s.subnet_id().unwrap_or_default().to_string(),
            vpc_id: s.vpc_id().unwrap_or_default().to_string(),
            availability_zone: s.availability_zone().unwrap_or_default().to_string(),
            // Default subnets assign public IPv4 addresses themselves.
            public_ip_at_launch: false,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_ip_is_asked_for_only_where_it_is_the_way_out() {
        assert_eq!(
            internet_at_first_boot(true, DefaultRoute::InternetGateway),
            Ok(false)
        );
        assert_eq!(internet_at_first_boot(true, DefaultRoute::None), Ok(false));
        assert_eq!(
            internet_at_first_boot(false, DefaultRoute::InternetGateway),
            Ok(true)
        );
        assert_eq!(internet_at_first_boot(false, DefaultRoute::Nat), Ok(false));
        let refused = internet_at_first_boot(false, DefaultRoute::None).unwrap_err();
        assert!(
            refused.contains("NAT gateway") && refused.contains("ssmmessages"),
            "{refused}"
        );
    }
}
