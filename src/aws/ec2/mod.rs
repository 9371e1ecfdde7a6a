//! The EC2 gateways, one file per AWS type. Both the single box and the
//! labs call them, with slices of ids where EC2 takes many at once, so
//! pagination, batching and the "not found right after create" retries
//! ([`crate::aws::settled`]) are written once, here.

pub mod addresses;
pub mod dry_runs;
pub mod instances;
pub mod key_pairs;
pub mod lookups;
pub mod security_groups;
pub mod snapshots;
pub mod volumes;

use std::time::Duration;

use aws_sdk_ec2::types::Filter;

/// The most ids EC2 takes in one DescribeInstances, TerminateInstances or
/// DescribeVolumes call.
const IDS_PER_CALL: usize = 500;

/// An EC2 filter from plain values.
pub fn filter(name: impl Into<String>, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}

/// How a wait for instances or volumes is shown and when it gives up.
pub struct Wait<'a> {
    /// The state every one must reach ("running", "available", ...).
    pub state: &'a str,
    /// The wait line: what is waited for.
    pub what: &'a str,
    pub within: Duration,
    /// Show progress as "n of m <state>" (many) rather than the one's state.
    pub counted: bool,
}
