//! The instance and its volumes: type, OS, and gp3's limits.

use super::{optional_id, validate_range};
use crate::config::raw::{RawDataVolume, RawInstance};
use crate::config::settings::{DataVolumeSettings, Os};
use crate::config::{bad, ConfigError};

// AWS's documented gp3 limits, as raised in September 2025 (EC2 user
// guide, "Amazon EBS volume types",
// https://docs.aws.amazon.com/ebs/latest/userguide/general-purpose.html; the
// ModifyVolume API reference gives throughput up to 2,000 MiB/s).
pub const GP3_MAX_GIB: i64 = 65_536;
const GP3_MIN_IOPS: i64 = 3_000;
const GP3_MAX_IOPS: i64 = 80_000;
const GP3_MIN_THROUGHPUT: i64 = 125;
const GP3_MAX_THROUGHPUT: i64 = 2_000;
/// gp3 allows at most 0.25 MiB/s of throughput per provisioned IOPS.
const GP3_IOPS_PER_MIBPS: i64 = 4;
/// gp3 allows at most 500 provisioned IOPS per GiB of volume size.
const GP3_IOPS_PER_GIB: i64 = 500;
/// The OS, the GitLab package (about 2.5 GB) and its logs need room even
/// with the data on its own volume.
const MIN_ROOT_GIB: i64 = 20;
/// GitLab asks for at least 40 GB before any repository data.
pub const MIN_DATA_GIB: i64 = 40;

/// `[instance]`, validated: the fields of `Settings` it gives.
pub(super) struct Instance {
    pub(super) instance_type: String,
    pub(super) os: Os,
    pub(super) ami: Option<String>,
    pub(super) root_volume_gib: i32,
    pub(super) swap_gib: i32,
    pub(super) subnet_id: Option<String>,
}

/// `[instance]`, in the order its keys are listed.
pub(super) fn validate_instance(raw: RawInstance) -> Result<Instance, ConfigError> {
    let instance_type = validate_instance_type(raw.instance_type())?;
    let os = validate_os(raw.os())?;
    let root_volume_gib = raw.root_volume_gib();
    let swap_gib = raw.swap_gib();
    let ami = optional_id(
        "instance.ami",
        raw.ami,
        "ami-",
        "an AMI id like ami-0123456789abcdef0",
    )?;
    let root_volume_gib = validate_range(
        "instance.root_volume_gib",
        root_volume_gib,
        MIN_ROOT_GIB,
        GP3_MAX_GIB,
        "GiB",
    )?;
    let swap_gib = validate_range("instance.swap_gib", swap_gib, 2, 64, "GiB")?;
    let subnet_id = optional_id(
        "instance.subnet_id",
        raw.subnet_id,
        "subnet-",
        "a subnet id like subnet-0123456789abcdef0, or leave it empty for the default VPC",
    )?;
    Ok(Instance {
        instance_type,
        os,
        ami,
        root_volume_gib,
        swap_gib,
        subnet_id,
    })
}

/// `instance.type`: shaped like an EC2 type (whether it is offered is AWS's to say).
pub fn validate_instance_type(instance_type: String) -> Result<String, ConfigError> {
    let well_formed = instance_type.split_once('.').is_some_and(|(family, size)| {
        family.starts_with(|c: char| c.is_ascii_lowercase())
            && family
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !size.is_empty()
            && size
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    if !well_formed {
        return Err(bad(
            "instance.type",
            &instance_type,
            "is not an EC2 instance type",
            "use a type such as \"c5.2xlarge\" (GitLab's 1,000-user reference) or \"m7g.2xlarge\" (Graviton)",
        ));
    }
    Ok(instance_type)
}

/// `instance.os`: one of the images glbox knows how to bootstrap.
fn validate_os(os: String) -> Result<Os, ConfigError> {
    match os.as_str() {
        "ubuntu-24.04" => Ok(Os::Ubuntu2404),
        "al2023" => Ok(Os::Al2023),
        other => Err(bad(
            "instance.os",
            other,
            "is not a supported operating system",
            "use \"ubuntu-24.04\" or \"al2023\"",
        )),
    }
}

/// `[data_volume]` within gp3's limits, each limit named in the refusal.
pub(super) fn validate_data_volume(raw: RawDataVolume) -> Result<DataVolumeSettings, ConfigError> {
    let size_gib = validate_range(
        "data_volume.size_gib",
        raw.size_gib(),
        MIN_DATA_GIB,
        GP3_MAX_GIB,
        "GiB",
    )?;
    let iops = validate_range(
        "data_volume.iops",
        raw.iops(),
        GP3_MIN_IOPS,
        GP3_MAX_IOPS,
        "IOPS",
    )?;
    let throughput_mibps = validate_range(
        "data_volume.throughput_mibps",
        raw.throughput_mibps(),
        GP3_MIN_THROUGHPUT,
        GP3_MAX_THROUGHPUT,
        "MiB/s",
    )?;
    let max_iops = i64::from(size_gib) * GP3_IOPS_PER_GIB;
    if i64::from(iops) > max_iops {
        return Err(bad(
            "data_volume.iops",
            iops,
            &format!("exceeds gp3's 500 IOPS per GiB ({max_iops} IOPS at {size_gib} GiB)"),
            format!(
                "lower iops to {max_iops} or raise size_gib to {}",
                (i64::from(iops) + GP3_IOPS_PER_GIB - 1) / GP3_IOPS_PER_GIB
            ),
        ));
    }
    let max_throughput = i64::from(iops) / GP3_IOPS_PER_MIBPS;
    if i64::from(throughput_mibps) > max_throughput {
        return Err(bad(
            "data_volume.throughput_mibps",
            throughput_mibps,
            &format!("exceeds gp3's 0.25 MiB/s per IOPS ({max_throughput} MiB/s at {iops} IOPS)"),
            format!(
                "lower throughput_mibps to {max_throughput} or raise iops to {}",
                i64::from(throughput_mibps) * GP3_IOPS_PER_MIBPS
            ),
        ));
    }
    Ok(DataVolumeSettings {
        size_gib,
        iops,
        throughput_mibps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gp3_limits_are_aws_current_ones() {
        let volume = |size: i64, iops: i64, throughput: i64| {
            validate_data_volume(RawDataVolume {
                size_gib: Some(size),
                iops: Some(iops),
                throughput_mibps: Some(throughput),
            })
        };
        assert!(volume(65_536, 80_000, 2_000).is_ok());
        assert_eq!(
            volume(65_537, 3_000, 125).unwrap_err().field,
            "data_volume.size_gib"
        );
        assert_eq!(
            volume(1_000, 80_001, 125).unwrap_err().field,
            "data_volume.iops"
        );
        assert_eq!(
            volume(100, 60_000, 125).unwrap_err().field,
            "data_volume.iops"
        );
        assert_eq!(
            volume(1_000, 80_000, 2_001).unwrap_err().field,
            "data_volume.throughput_mibps"
        );
    }
}
