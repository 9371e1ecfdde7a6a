//! One file per step of [`STEPS`](super::STEPS): what the step shows, plans,
//! applies, removes and reports, through the functions of its resource
//! module.

pub mod backup_bucket;
pub mod data_volume;
pub mod dns_record;
pub mod elastic_ip;
pub mod email;
pub mod gitlab;
pub mod iam_role;
pub mod instance;
pub mod instance_profile;
pub mod key_pair;
pub mod root_password;
pub mod security_group;
pub mod snapshot_schedule;
pub mod volume_attachment;
