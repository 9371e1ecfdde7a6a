//! glbox: stand up a complete GitLab server on one AWS EC2 instance, and
//! take it down again.
//!
//! Layers, from the outside in: [`cli`] parses and dispatches to
//! [`commands`], which print their reports through [`output`]; [`config`]
//! turns layered input into validated [`config::Settings`] before any AWS
//! call; [`deploy`] observes the deployment by its tags, diffs it against
//! the settings and converges it, one ordered list of components driving
//! plan, apply, down and status.

pub mod app;
pub mod aws;
pub mod backup;
pub mod bootstrap;
pub mod caller_ip;
pub mod checkpoint;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod cost;
pub mod deploy;
pub mod doctor;
pub mod email;
pub mod endpoint;
pub mod error;
pub mod gitlab_rb;
pub mod help;
pub mod lab;
pub mod lease;
pub mod log;
pub mod names;
pub mod output;
pub mod ownership;
pub mod paths;
pub mod probe;
pub mod public_dns;
pub mod quotas;
pub mod remote;
pub mod resources;
pub mod secrets;
pub mod ui;
pub mod upgrade_path;
pub mod userdata;
pub mod verify;
pub mod wait;
pub mod wizard;

#[cfg(test)]
pub(crate) mod test_support {
    use crate::config::{raw::DEFAULT_REGION, Settings};

    /// The settings a config file holding only `name` yields: the schema's
    /// defaults, validated like any file.
    pub fn settings(name: &str) -> Settings {
        crate::config::minimal(name, DEFAULT_REGION).expect("the defaults are valid")
    }
}
