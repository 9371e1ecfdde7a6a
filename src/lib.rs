//! glbox: stand up a complete GitLab server on one AWS EC2 instance, and
//! take it down again.
//!
//! Layers, from the outside in: [`cli`] parses and dispatches; [`config`]
//! turns layered input into validated [`config::Settings`] before any AWS
//! call; [`plan`] observes the deployment by its tags and diffs it against
//! the settings; [`apply`] and [`down`] change AWS through the per-resource
//! gateways in [`resources`].

pub mod apply;
pub mod aws;
pub mod bootstrap;
pub mod caller_ip;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod cost;
pub mod doctor;
pub mod down;
pub mod email;
pub mod error;
pub mod gitlab_rb;
pub mod help;
pub mod lab;
pub mod lease;
pub mod log;
pub mod names;
pub mod ownership;
pub mod paths;
pub mod plan;
pub mod probe;
pub mod public_dns;
pub mod quotas;
pub mod remote;
pub mod resources;
pub mod status;
pub mod ui;
pub mod userdata;
pub mod verify;
pub mod wait;
pub mod wizard;

#[cfg(test)]
pub(crate) mod test_support {
    use crate::config::{
        AccessMethod, DataVolumeSettings, Edition, GitlabSettings, GitlabVersion, Os, Settings,
    };

    /// The settings a config file holding only `name` yields.
    pub fn settings(name: &str) -> Settings {
        Settings {
            name: name.into(),
            region: "us-east-1".into(),
            instance_type: "c5.2xlarge".into(),
            os: Os::Ubuntu2404,
            ami: None,
            root_volume_gib: 50,
            swap_gib: 2,
            subnet_id: None,
            access: AccessMethod::Ssm,
            ssh: None,
            http_cidrs: vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
            elastic_ip: true,
            data_volume: DataVolumeSettings {
                size_gib: 100,
                iops: 3000,
                throughput_mibps: 125,
            },
            gitlab: GitlabSettings {
                edition: Edition::Ce,
                version: GitlabVersion::Latest,
                external_url: None,
                letsencrypt: false,
                root_email: None,
                install_timeout: std::time::Duration::from_secs(3600),
            },
            remote_host: None,
            remote_port: 22,
            ready_timeout: std::time::Duration::from_secs(900),
            verify_timeout: std::time::Duration::from_secs(600),
            verify_url: None,
            email: None,
            dns_zone_id: None,
        }
    }
}
