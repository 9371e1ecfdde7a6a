//! The deployment's name and its region.

use std::collections::BTreeMap;

use crate::config::raw::DEFAULT_REGION;
use crate::config::{bad, ConfigError};

/// `name`: required, and usable in every AWS name and tag glbox makes.
pub fn validate_name(name: Option<String>) -> Result<String, ConfigError> {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Err(bad(
            "name",
            "",
            "is required: it names the deployment and owns every resource",
            "set name = \"trial\" in glbox.toml, or GLBOX_NAME=trial (glbox init asks for everything and writes the file)",
        ));
    };
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !starts_with_letter || !rest_ok || name.len() > 31 {
        return Err(bad(
            "name",
            &name,
            "must be 1-31 characters of a-z, 0-9 and '-', starting with a letter",
            "pick a name like \"trial\" or \"team-gitlab\"",
        ));
    }
    Ok(name)
}

/// The AWS regions glbox accepts: the AWS General Reference's region table
/// ("AWS Region billing codes",
/// https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-region-billing-codes.html),
/// as of November 2026, for the partitions glbox builds ARNs for (aws,
/// aws-cn, aws-us-gov). A name outside it would only fail at the first AWS
/// call, with an endpoint error that does not say the name is wrong.
pub const AWS_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "ca-west-1",
    "mx-central-1",
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "sa-east-1",
    "us-gov-east-1",
    "us-gov-west-1",
    "cn-north-1",
    "cn-northwest-1",
];

/// Is `region` one of [`AWS_REGIONS`]? A typo (`us-east-9`, `eu-middle-1`)
/// is caught before any AWS call.
pub fn is_region_name(region: &str) -> bool {
    AWS_REGIONS.contains(&region)
}

/// `region`, else AWS_REGION / AWS_DEFAULT_REGION, else the default.
pub fn validate_region(
    region: Option<String>,
    env: &BTreeMap<String, String>,
) -> Result<String, ConfigError> {
    // The AWS variables are the lowest layer above the built-in default, so a
    // user with AWS_REGION exported does not silently deploy to us-east-1.
    let region = region
        .or_else(|| env.get("AWS_REGION").cloned())
        .or_else(|| env.get("AWS_DEFAULT_REGION").cloned())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| DEFAULT_REGION.to_string());
    if !is_region_name(&region) {
        return Err(bad(
            "region",
            &region,
            "is not an AWS region",
            format!(
                "use one of AWS's region codes (as of November 2026): {}",
                AWS_REGIONS.join(", ")
            ),
        ));
    }
    Ok(region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_aws_regions_are_accepted_and_every_ses_region_is_one() {
        assert!(is_region_name("eu-west-1") && is_region_name("ap-southeast-7"));
        for typo in [
            "us-east-9",
            "eu-middle-1",
            "mars-1",
            "US-EAST-1",
            "us-east-1 ",
        ] {
            assert!(!is_region_name(typo), "{typo}");
        }
        for region in crate::email::smtp_password::SMTP_REGIONS {
            assert!(is_region_name(region), "{region}");
        }
    }
}
