//! What keeps a deployment's data beyond its box: the snapshot schedule
//! (Data Lifecycle Manager and its role) and the bucket for GitLab's
//! backups.

pub mod bucket;
pub mod inventory;
pub mod schedule;
pub mod snapshots;
