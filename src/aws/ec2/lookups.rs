//! Read-only EC2 look-ups: instance types and their offerings, images,
//! zones, regions, subnets and route tables.

use aws_sdk_ec2::types::{
    Filter, Image, InstanceType, InstanceTypeInfo, LocationType, RouteTable, Subnet,
};
use aws_sdk_ec2::Client;

use super::filter;
use crate::aws::{AwsError, AwsResultExt};

/// The types' descriptions. EC2 answers InvalidInstanceType when it does
/// not know one of the names in this region.
pub async fn instance_types(
    ec2: &Client,
    names: &[String],
) -> Result<Vec<InstanceTypeInfo>, AwsError> {
    let out = ec2
        .describe_instance_types()
        .set_instance_types(Some(
            names
                .iter()
                .map(|n| InstanceType::from(n.as_str()))
                .collect(),
        ))
        .send()
        .await
        .ctx("ec2:DescribeInstanceTypes")?;
    Ok(out.instance_types().to_vec())
}

/// The image `id`, if it exists in the region.
pub async fn image(ec2: &Client, id: &str) -> Result<Option<Image>, AwsError> {
    let out = ec2
        .describe_images()
        .image_ids(id)
        .send()
        .await
        .ctx("ec2:DescribeImages")?;
    Ok(out.images().first().cloned())
}

/// The zones (names) of the region that offer `instance_type`.
pub async fn zones_offering(ec2: &Client, instance_type: &str) -> Result<Vec<String>, AwsError> {
    let out = ec2
        .describe_instance_type_offerings()
        .location_type(LocationType::AvailabilityZone)
        .filters(filter("instance-type", &[instance_type]))
        .send()
        .await
        .ctx("ec2:DescribeInstanceTypeOfferings")?;
    Ok(out
        .instance_type_offerings()
        .iter()
        .filter_map(|o| o.location().map(str::to_string))
        .collect())
}

/// Every instance type the client's region offers, all pages.
pub async fn types_offered(ec2: &Client) -> Result<Vec<String>, AwsError> {
    let mut pages = ec2
        .describe_instance_type_offerings()
        .location_type(LocationType::Region)
        .into_paginator()
        .send();
    let mut types = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.ctx("ec2:DescribeInstanceTypeOfferings")?;
        types.extend(
            page.instance_type_offerings()
                .iter()
                .filter_map(|o| o.instance_type().map(|t| t.as_str().to_string())),
        );
    }
    Ok(types)
}

/// The regions enabled for the account.
pub async fn regions(ec2: &Client) -> Result<Vec<String>, AwsError> {
    let out = ec2
        .describe_regions()
        .send()
        .await
        .ctx("ec2:DescribeRegions")?;
    Ok(out
        .regions()
        .iter()
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect())
}

/// The zones of the client's region, by name.
pub async fn zones(ec2: &Client) -> Result<Vec<String>, AwsError> {
    let out = ec2
        .describe_availability_zones()
        .send()
        .await
        .ctx("ec2:DescribeAvailabilityZones")?;
    Ok(out
        .availability_zones()
        .iter()
        .filter_map(|z| z.zone_name().map(str::to_string))
        .collect())
}

/// The subnet `id`, if it exists.
pub async fn subnet(ec2: &Client, id: &str) -> Result<Option<Subnet>, AwsError> {
    let out = ec2
        .describe_subnets()
        .subnet_ids(id)
        .send()
        .await
        .ctx("ec2:DescribeSubnets")?;
    Ok(out.subnets().first().cloned())
}

/// The default VPC's default subnets (one per zone).
pub async fn default_subnets(ec2: &Client) -> Result<Vec<Subnet>, AwsError> {
    let out = ec2
        .describe_subnets()
        .filters(filter("default-for-az", &["true"]))
        .send()
        .await
        .ctx("ec2:DescribeSubnets")?;
    Ok(out.subnets().to_vec())
}

/// The route tables that decide a subnet's routes: its own association,
/// else the VPC's main table (Route tables,
/// https://docs.aws.amazon.com/vpc/latest/userguide/VPC_Route_Tables.html).
pub async fn route_tables_of(
    ec2: &Client,
    subnet_id: &str,
    vpc_id: &str,
) -> Result<Vec<RouteTable>, AwsError> {
    let ask = |filters: Vec<Filter>| async {
        ec2.describe_route_tables()
            .set_filters(Some(filters))
            .send()
            .await
            .ctx("ec2:DescribeRouteTables")
    };
    let own = ask(vec![filter("association.subnet-id", &[subnet_id])]).await?;
    if !own.route_tables().is_empty() {
        return Ok(own.route_tables().to_vec());
    }
    let main = ask(vec![
        filter("vpc-id", &[vpc_id]),
        filter("association.main", &["true"]),
    ])
    .await?;
    Ok(main.route_tables().to_vec())
}
