//! The integration tests, one binary with a module per area, so the AWS
//! SDK and glbox link once. Every module shares the harness in `common`
//! (the emulator, the workspace, the glbox binary run as a user would).
//! All tests run in this one process: whatever a test changes for the
//! whole process (environment variables, the current directory) it must
//! change in a child process instead.

mod common;

mod aws_side;
mod backup_box;
mod backups_aws;
mod bad_input;
mod bootstrap_script;
mod cloud_init;
mod config_fuzz;
// Crashes and interrupts `up` at every checkpoint: needs the failpoints
// (scripts/test turns them on).
#[cfg(feature = "failpoints")]
mod crash_resume;
mod demo;
mod dns;
mod doctor;
mod email;
mod extra_config;
mod faults;
mod help;
mod iam_policy;
mod lab;
mod output;
mod ownership;
mod probe;
mod quotas;
mod restore_snapshot;
mod secrets;
mod ssh_bootstrap;
mod ssm_bootstrap;
mod ssm_sandbox;
mod upgrade;
mod wizard;
