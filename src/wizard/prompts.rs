//! The questions, each answer checked (and re-asked with the reason), and
//! the AWS reads they need: the regions enabled for the account and the
//! instance types offered in the chosen one.

use std::collections::BTreeSet;

use dialoguer::{Confirm, Input, Select};

use crate::aws::{self, ConnectOptions};
use crate::config::raw::{RawDataVolume, RawGitlab, DEFAULT_REGION};
use crate::config::{self, AccessMethod, ConfigError, Edition, Os};
use crate::email::smtp_password::is_smtp_region;
use crate::error::Result;
use crate::ui::Ui;

use super::file::{Answers, EmailAnswers};
use super::unreadable;

/// AWS reads for the questions, from the blocking thread.
pub(super) struct Lookups {
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) connect: ConnectOptions,
    pub(super) ui: Ui,
}

impl Lookups {
    /// The regions enabled for the account; `None` (with a warning) when
    /// AWS cannot be asked, so that any well-formed name is accepted.
    fn regions(&self) -> Option<BTreeSet<String>> {
        let aws = self.runtime.block_on(aws::connect(&self.connect));
        let result = self.runtime.block_on(aws::ec2::lookups::regions(&aws.ec2));
        match result {
            Ok(regions) => Some(regions.into_iter().collect()),
            Err(e) => {
                self.ui.warn(&format!(
                    "could not list the regions, so any region name is accepted: {e}"
                ));
                None
            }
        }
    }

    /// The instance types offered in `region`; `None` (with a warning)
    /// when AWS cannot be asked.
    fn offered_types(&self, region: &str) -> Option<BTreeSet<String>> {
        let options = ConnectOptions {
            region: region.to_string(),
            ..self.connect.clone()
        };
        let result = self.runtime.block_on(async {
            let aws = aws::connect(&options).await;
            aws::ec2::lookups::types_offered(&aws.ec2).await
        });
        match result {
            Ok(types) => Some(types.into_iter().collect()),
            Err(e) => {
                self.ui.warn(&format!(
                    "could not list the instance types offered in {region}, so they are not checked: {e}"
                ));
                None
            }
        }
    }
}

/// One rung of the size ladder the wizard offers.
struct Size {
    instance_type: &'static str,
    vcpus: u32,
    memory_gib: u32,
    note: &'static str,
}

const REFERENCE: &str = "GitLab's reference for up to 1,000 users";
const BELOW: &str = "below the recommendation: trials and small teams only";
const BURSTABLE: &str = "burstable, below the recommendation: short trials only";
const ABOVE: &str = "for more than 1,000 users (GitLab's references there use several nodes)";

const X86_SIZES: &[Size] = &[
    Size {
        instance_type: "c5.2xlarge",
        vcpus: 8,
        memory_gib: 16,
        note: REFERENCE,
    },
    Size {
        instance_type: "c6i.2xlarge",
        vcpus: 8,
        memory_gib: 16,
        note: REFERENCE,
    },
    Size {
        instance_type: "m6i.2xlarge",
        vcpus: 8,
        memory_gib: 32,
        note: "more memory than the reference",
    },
    Size {
        instance_type: "m6i.xlarge",
        vcpus: 4,
        memory_gib: 16,
        note: BELOW,
    },
    Size {
        instance_type: "t3.xlarge",
        vcpus: 4,
        memory_gib: 16,
        note: BURSTABLE,
    },
    Size {
        instance_type: "c5.4xlarge",
        vcpus: 16,
        memory_gib: 32,
        note: ABOVE,
    },
];

const GRAVITON_SIZES: &[Size] = &[
    Size {
        instance_type: "c7g.2xlarge",
        vcpus: 8,
        memory_gib: 16,
        note: REFERENCE,
    },
    Size {
        instance_type: "m7g.2xlarge",
        vcpus: 8,
        memory_gib: 32,
        note: "more memory than the reference",
    },
    Size {
        instance_type: "m7g.xlarge",
        vcpus: 4,
        memory_gib: 16,
        note: BELOW,
    },
    Size {
        instance_type: "t4g.xlarge",
        vcpus: 4,
        memory_gib: 16,
        note: BURSTABLE,
    },
    Size {
        instance_type: "c7g.4xlarge",
        vcpus: 16,
        memory_gib: 32,
        note: ABOVE,
    },
];

/// The recommended type for `users` on x86 or Graviton.
pub fn recommended_type(users: u32, graviton: bool) -> &'static str {
    match (users > 1_000, graviton) {
        (false, false) => "c5.2xlarge",
        (false, true) => "c7g.2xlarge",
        (true, false) => "c5.4xlarge",
        (true, true) => "c7g.4xlarge",
    }
}

/// Why a chosen type is below GitLab's recommendation, if it is.
fn size_warning(instance_type: &str, users: u32) -> Option<String> {
    let known = X86_SIZES
        .iter()
        .chain(GRAVITON_SIZES)
        .find(|s| s.instance_type == instance_type);
    match known {
        None => Some(format!(
            "{instance_type} is not one glbox sizes: make sure it has at least 8 vCPU and 16 GiB for up to 1,000 users"
        )),
        Some(size) if size.vcpus < 8 || size.memory_gib < 16 => Some(format!(
            "{instance_type} ({} vCPU, {} GiB) is below GitLab's recommendation of 8 vCPU and 16 GiB: fine for a trial, slow for a team",
            size.vcpus, size.memory_gib
        )),
        Some(size) if users > 1_000 => Some(format!(
            "{users} users is above what GitLab sizes one node for; {instance_type} ({} vCPU, {} GiB) is the largest box glbox offers",
            size.vcpus, size.memory_gib
        )),
        Some(_) => None,
    }
}

/// The answers proposed before anything is asked.
pub(super) struct Defaults {
    /// GLBOX_NAME, else "gitlab".
    pub(super) name: String,
    /// The region from flags, environment or profile, else us-east-1.
    pub(super) region: String,
}

pub(super) fn ask(aws: &Lookups, defaults: &Defaults, ui: &Ui) -> Result<Answers> {
    eprintln!("glbox needs a few answers to set up GitLab on AWS (Enter takes the [default]).");
    let name: String = Input::new()
        .with_prompt("Deployment name")
        .default(defaults.name.clone())
        .validate_with(|n: &String| {
            config::validate_name(Some(n.clone()))
                .map(|_| ())
                .map_err(|e| format!("{} ({})", e.problem, e.fix))
        })
        .interact_text()
        .map_err(unreadable)?;

    let regions = aws.regions();
    if let Some(regions) = &regions {
        eprintln!(
            "Regions enabled for your account: {}",
            regions.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let region: String = Input::new()
        .with_prompt("AWS region")
        .default(defaults.region.clone())
        .validate_with(|r: &String| -> std::result::Result<(), String> {
            if !config::is_region_name(r) {
                return Err(format!("{r:?} is not an AWS region name (like eu-west-1)"));
            }
            match &regions {
                Some(known) if !known.contains(r) => Err(format!(
                    "{r} is not enabled for your account (see the list above)"
                )),
                _ => Ok(()),
            }
        })
        .interact_text()
        .map_err(unreadable)?;

    let users: u32 = Input::new()
        .with_prompt("How many users will use GitLab?")
        .default(100)
        .validate_with(|u: &u32| {
            if *u == 0 {
                Err("at least 1 user".to_string())
            } else {
                Ok(())
            }
        })
        .interact_text()
        .map_err(unreadable)?;

    let graviton = Select::new()
        .with_prompt("Processor")
        .items([
            "x86_64 (Intel, AMD)",
            "arm64 (AWS Graviton: cheaper for the same size)",
        ])
        .default(0)
        .interact()
        .map_err(unreadable)?
        == 1;
    let instance_type = ask_instance_type(aws, &region, users, graviton)?;
    if let Some(warning) = size_warning(&instance_type, users) {
        ui.warn(&warning);
    }

    let os = [Os::Ubuntu2404, Os::Al2023][Select::new()
        .with_prompt("Operating system")
        .items(["ubuntu-24.04", "al2023 (Amazon Linux 2023)"])
        .default(0)
        .interact()
        .map_err(unreadable)?];
    let access = [AccessMethod::Ssm, AccessMethod::Ssh][Select::new()
        .with_prompt("How glbox reaches the box")
        .items([
            "ssm (recommended: Session Manager, no inbound SSH port)",
            "ssh (port 22 open to your address, a generated key)",
        ])
        .default(0)
        .interact()
        .map_err(unreadable)?];

    let (external_url, letsencrypt) = ask_url()?;
    let edition = [Edition::Ce, Edition::Ee][Select::new()
        .with_prompt("GitLab edition")
        .items([
            "ce (Community Edition)",
            "ee (Enterprise Edition, free until licensed)",
        ])
        .default(0)
        .interact()
        .map_err(unreadable)?];
    let version: String = Input::new()
        .with_prompt("GitLab version (latest, or a release like 18.5.1)")
        .default(RawGitlab::default().version())
        .validate_with(|v: &String| {
            if v == "latest" || config::is_version(v) {
                Ok(())
            } else {
                Err(format!("{v:?} is not \"latest\" or a release like 18.5.1"))
            }
        })
        .interact_text()
        .map_err(unreadable)?;
    let email = ask_email(&region, external_url.as_deref())?;
    let data_volume_gib: i64 = Input::new()
        .with_prompt("Data volume size in GiB (repositories, uploads, database)")
        .default(RawDataVolume::default().size_gib())
        .validate_with(|size: &i64| {
            if (config::MIN_DATA_GIB..=config::GP3_MAX_GIB).contains(size) {
                Ok(())
            } else {
                Err(format!(
                    "{size} is out of range: {} to {} GiB",
                    config::MIN_DATA_GIB,
                    config::GP3_MAX_GIB
                ))
            }
        })
        .interact_text()
        .map_err(unreadable)?;
    Ok(Answers {
        name,
        region,
        users: Some(users),
        instance_type,
        os,
        access,
        external_url,
        letsencrypt,
        edition,
        version,
        email,
        data_volume_gib: i32::try_from(data_volume_gib).expect("range checked"),
        // A new deployment keeps its data from the start; the file says
        // how to turn it off.
        backups: true,
    })
}

fn ask_instance_type(aws: &Lookups, region: &str, users: u32, graviton: bool) -> Result<String> {
    let offered = aws.offered_types(region);
    let sizes = if graviton { GRAVITON_SIZES } else { X86_SIZES };
    let hours = crate::cost::hours_per_month();
    eprintln!("Instance types in {region} (on-demand, per month of {hours} hours):");
    for size in sizes {
        let price = crate::cost::instance_hourly(region, size.instance_type)
            .map_or("no price".to_string(), |h| format!("${:.2}", h * hours));
        let availability = match &offered {
            Some(types) if !types.contains(size.instance_type) => " (not offered here)",
            _ => "",
        };
        eprintln!(
            "  {:<12} {:>2} vCPU {:>2} GiB  {:>9}  {}{availability}",
            size.instance_type, size.vcpus, size.memory_gib, price, size.note
        );
    }
    let recommended = recommended_type(users, graviton);
    Input::new()
        .with_prompt("Instance type")
        .default(recommended.to_string())
        .validate_with(|t: &String| -> std::result::Result<(), String> {
            config::validate_instance_type(t.clone())
                .map_err(|e| format!("{} ({})", e.problem, e.fix))?;
            match &offered {
                Some(types) if !types.contains(t) => Err(format!(
                    "{t} is not offered in {region}: choose one of the types above"
                )),
                _ => Ok(()),
            }
        })
        .interact_text()
        .map_err(unreadable)
}

/// The external URL (empty: the Elastic IP) and, for a DNS name, whether
/// Let's Encrypt certifies it (which makes the URL https).
fn ask_url() -> Result<(Option<String>, bool)> {
    let typed: String = Input::new()
        .with_prompt(
            "External URL, e.g. https://gitlab.example.com (empty: http:// and the Elastic IP)",
        )
        .allow_empty(true)
        .validate_with(|u: &String| {
            if u.is_empty() {
                return Ok(());
            }
            normalized_url(u)
                .map(|_| ())
                .map_err(|e| format!("{} ({})", e.problem, e.fix))
        })
        .interact_text()
        .map_err(unreadable)?;
    if typed.is_empty() {
        return Ok((None, false));
    }
    let mut url = normalized_url(&typed)?;
    let host = config::url_host(&url).to_string();
    // Let's Encrypt certifies public DNS names only, never addresses.
    if !config::is_domain(&host) || host.parse::<std::net::IpAddr>().is_ok() {
        return Ok((Some(url), false));
    }
    let letsencrypt = Confirm::new()
        .with_prompt(format!(
            "Serve https with a Let's Encrypt certificate for {host}? (ports 80 and 443 open to the internet, {host} pointing at the Elastic IP)"
        ))
        .default(true)
        .interact()
        .map_err(unreadable)?;
    if letsencrypt {
        url = url.replacen("http://", "https://", 1);
    } else if url.starts_with("https://") {
        eprintln!(
            "  Without Let's Encrypt, put your own certificate in /etc/gitlab/ssl/ on the box."
        );
    }
    Ok((Some(url), letsencrypt))
}

/// A typed URL as glbox keeps it; "gitlab.example.com" means https.
fn normalized_url(typed: &str) -> std::result::Result<String, ConfigError> {
    let with_scheme = if typed.contains("://") {
        typed.to_string()
    } else {
        format!("https://{typed}")
    };
    config::validate_url("gitlab.external_url", &with_scheme)
}

fn ask_email(region: &str, external_url: Option<&str>) -> Result<Option<EmailAnswers>> {
    let enabled = Confirm::new()
        .with_prompt("Send email (invitations, password resets) through Amazon SES?")
        .default(false)
        .interact()
        .map_err(unreadable)?;
    if !enabled {
        return Ok(None);
    }
    // The URL's domain is the likely sender: gitlab.example.com -> example.com.
    let suggested = external_url
        .map(config::url_host)
        .and_then(|host| host.split_once('.').map(|(_, parent)| parent.to_string()))
        .filter(|d| config::is_domain(d));
    let mut input = Input::new()
        .with_prompt("Email domain (one whose DNS you can change)")
        .validate_with(|d: &String| {
            if config::is_domain(&d.to_ascii_lowercase()) {
                Ok(())
            } else {
                Err(format!("{d:?} is not a domain like example.com"))
            }
        });
    if let Some(domain) = suggested {
        input = input.default(domain);
    }
    let domain: String = input.interact_text().map_err(unreadable)?;
    let ses_region = if is_smtp_region(region) {
        None
    } else {
        Some(
            Input::new()
                .with_prompt(format!(
                    "{region} has no Amazon SES SMTP endpoint. SES region to send through"
                ))
                .default(DEFAULT_REGION.to_string())
                .validate_with(|r: &String| {
                    if is_smtp_region(r) {
                        Ok(())
                    } else {
                        Err(format!("{r} has no Amazon SES SMTP endpoint either"))
                    }
                })
                .interact_text()
                .map_err(unreadable)?,
        )
    };
    Ok(Some(EmailAnswers {
        domain: domain.to_ascii_lowercase(),
        ses_region,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recommendation_follows_gitlabs_reference() {
        assert_eq!(recommended_type(1, false), "c5.2xlarge");
        assert_eq!(recommended_type(1_000, true), "c7g.2xlarge");
        assert_eq!(recommended_type(1_001, false), "c5.4xlarge");
        assert!(size_warning("c5.2xlarge", 500).is_none());
        assert!(size_warning("t3.xlarge", 10).unwrap().contains("below"));
        assert!(size_warning("c5.4xlarge", 5_000).unwrap().contains("5000"));
        assert!(size_warning("x2iedn.xlarge", 10)
            .unwrap()
            .contains("8 vCPU"));
    }
}
