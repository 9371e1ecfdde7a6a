//! The first run: `glbox init`, and `glbox up` on a terminal with no
//! configuration file, ask for every choice (with defaults, each answer
//! checked and re-asked with the reason), show what will be built and what
//! it costs, and write a commented `glbox.toml` that makes the next run
//! scripted. Without a terminal, or with `--non-interactive`, nothing is
//! asked: the required values that no source gives are listed in one error,
//! before any AWS call.
//!
//! The questions block on the terminal, so they run on a blocking thread;
//! the few AWS reads they need (DescribeRegions,
//! DescribeInstanceTypeOfferings) are made from there on the runtime.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_config::meta::region::ProvideRegion;
use dialoguer::Confirm;

use crate::aws::ConnectOptions;
use crate::config::raw::DEFAULT_REGION;
use crate::config::{self, AccessMethod, ConfigError, Settings, Sources};
use crate::error::{Error, Result};
use crate::ui::Ui;

mod file;
mod prompts;

pub use file::{render, Answers, EmailAnswers};
pub use prompts::recommended_type;

use file::write_config;
use prompts::{ask, Defaults, Lookups};

/// Which command asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `glbox init`: write the file, then stop.
    Init,
    /// `glbox up`: write the file, then go on with it.
    Up,
}

/// What the command line gives the wizard.
pub struct Request<'a> {
    pub purpose: Purpose,
    /// `glbox init --force`: replace an existing file without asking.
    pub force: bool,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub sources: &'a Sources,
    pub ui: &'a Ui,
}

/// What the command does after [`prepare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Load the configuration (now written, or given by the environment)
    /// and carry on.
    Continue,
    /// The file is written; nothing else to do (`glbox init`).
    Done,
}

/// `--non-interactive`: set once, before anything could ask.
static NON_INTERACTIVE: AtomicBool = AtomicBool::new(false);

/// Turns every prompt off for this run (`--non-interactive`).
pub fn forbid_prompts() {
    NON_INTERACTIVE.store(true, Ordering::Relaxed);
}

/// Questions can be asked and seen: stdin and stderr are terminals, and
/// `--non-interactive` was not given.
pub fn can_prompt() -> bool {
    !NON_INTERACTIVE.load(Ordering::Relaxed)
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal()
}

/// Runs the wizard when it is wanted, or checks that nothing required is
/// missing when it cannot run.
pub async fn prepare(request: &Request<'_>) -> Result<Next> {
    let path = request.sources.config_path();
    let exists = path.exists();
    let prompt = can_prompt();
    if exists && request.purpose == Purpose::Up {
        return Ok(Next::Continue);
    }
    if exists && !request.force {
        let asked = path.clone();
        tokio::task::spawn_blocking(move || refuse_or_confirm_overwrite(&asked, prompt))
            .await
            .map_err(|e| Error::Refused(format!("the question stopped: {e}")))??;
    }
    if !prompt {
        let missing = missing_values(request).await;
        if !missing.is_empty() {
            return Err(Error::Missing(missing));
        }
        return match request.purpose {
            Purpose::Up => Ok(Next::Continue),
            Purpose::Init => write_from_environment(request, &path),
        };
    }
    let defaults = Defaults {
        name: request
            .sources
            .env
            .get("GLBOX_NAME")
            .filter(|n| !n.is_empty())
            .cloned()
            .unwrap_or_else(|| "gitlab".to_string()),
        region: default_region(request).await,
    };
    let connect = ConnectOptions {
        region: defaults.region.clone(),
        profile: request.profile.clone(),
        endpoint_url: request.endpoint_url.clone(),
        adaptive_retry: false,
    };
    let ui = request.ui.clone();
    let runtime = tokio::runtime::Handle::current();
    let target = path.clone();
    let questions = tokio::task::spawn_blocking(move || {
        let aws = Lookups {
            runtime,
            connect,
            ui: ui.clone(),
        };
        let answers = ask(&aws, &defaults, &ui)?;
        review_and_write(&answers, &target, &ui)
    });
    // Ctrl-C at a prompt: the prompt has put the terminal back; a list may
    // have hidden the cursor, so it is shown again. The file is written
    // last, so nothing is left half-done.
    let outcome = tokio::select! {
        done = questions => {
            done.map_err(|e| Error::Refused(format!("the wizard stopped: {e}")))?
        }
        _ = tokio::signal::ctrl_c() => Err(Error::Interrupted(STOPPED.into())),
    };
    let written = match outcome {
        Err(stopped @ Error::Interrupted(_)) => {
            eprintln!("\x1b[?25h");
            return Err(stopped);
        }
        other => other?,
    };
    if !written {
        return Err(Error::Declined);
    }
    eprintln!(
        "Wrote {}. To run again without questions: glbox up --config {} --yes (in scripts add --non-interactive).",
        path.display(),
        path.display()
    );
    Ok(match request.purpose {
        Purpose::Init => Next::Done,
        Purpose::Up => Next::Continue,
    })
}

fn refuse_or_confirm_overwrite(path: &Path, prompt: bool) -> Result<()> {
    if !prompt {
        return Err(Error::Refused(format!(
            "{} exists: glbox init does not replace it unasked\n  fix: run glbox init --force to replace it, or edit it",
            path.display()
        )));
    }
    let replace = Confirm::new()
        .with_prompt(format!("{} exists. Replace it?", path.display()))
        .default(false)
        .interact()
        .map_err(unreadable)?;
    if replace {
        Ok(())
    } else {
        Err(Error::Declined)
    }
}

const STOPPED: &str = "stopped: nothing was written";

/// An answer that could not be read. Ctrl-C at a prompt comes back as an
/// interrupted read (as well as a SIGINT, whichever is seen first).
pub(super) fn unreadable(e: dialoguer::Error) -> Error {
    let dialoguer::Error::IO(io) = &e;
    if io.kind() == std::io::ErrorKind::Interrupted {
        return Error::Interrupted(STOPPED.into());
    }
    Error::Refused(format!("could not read the answer: {e}"))
}

// ------------------------------------------------------- no prompts at all

/// The region from `--region`, `GLBOX_REGION`, `AWS_REGION`,
/// `AWS_DEFAULT_REGION` or the AWS profile, in that order.
async fn configured_region(request: &Request<'_>) -> Option<String> {
    let env = &request.sources.env;
    let named = request
        .sources
        .region_flag
        .clone()
        .or_else(|| env.get("GLBOX_REGION").cloned())
        .or_else(|| env.get("AWS_REGION").cloned())
        .or_else(|| env.get("AWS_DEFAULT_REGION").cloned())
        .filter(|r| !r.is_empty());
    if named.is_some() {
        return named;
    }
    // Reads ~/.aws/config only: no instance metadata, no network.
    let mut provider = aws_config::profile::ProfileFileRegionProvider::builder();
    if let Some(profile) = &request.profile {
        provider = provider.profile_name(profile);
    }
    provider
        .build()
        .region()
        .await
        .map(|r| r.as_ref().to_string())
}

async fn default_region(request: &Request<'_>) -> String {
    configured_region(request)
        .await
        .unwrap_or_else(|| DEFAULT_REGION.to_string())
}

/// With no configuration file, the values glbox cannot choose for the user:
/// the deployment's name and its region.
async fn missing_values(request: &Request<'_>) -> Vec<ConfigError> {
    if request.sources.config_path().exists() {
        return Vec::new();
    }
    let file = request.sources.config_path();
    let mut missing = Vec::new();
    let has_name = request
        .sources
        .env
        .get("GLBOX_NAME")
        .is_some_and(|n| !n.is_empty());
    if !has_name {
        missing.push(ConfigError {
            field: "name".into(),
            value: String::new(),
            problem: format!(
                "no {} and no GLBOX_NAME: the name tags every resource of the deployment",
                file.display()
            ),
            fix: "set GLBOX_NAME=trial (1-31 of a-z, 0-9, '-'), or name = \"trial\" in glbox.toml"
                .into(),
        });
    }
    if configured_region(request).await.is_none() {
        missing.push(ConfigError {
            field: "region".into(),
            value: String::new(),
            problem: "no --region, GLBOX_REGION, AWS_REGION, AWS_DEFAULT_REGION or region in the AWS profile: glbox does not pick a region for you".into(),
            fix: "pass --region eu-west-1 (or export AWS_REGION=eu-west-1), or region = \"eu-west-1\" in glbox.toml".into(),
        });
    }
    missing
}

/// `glbox init` without questions: the file is written from what the
/// environment and flags give (and the defaults).
fn write_from_environment(request: &Request<'_>, path: &Path) -> Result<Next> {
    let settings = config::load(request.sources)?;
    let text = render(&Answers::from_settings(&settings));
    if config::from_str(&text, path)? != settings {
        request.ui.warn(
            "some of your GLBOX_* settings are not among the keys glbox init writes (name, region, instance type and OS, access method, GitLab edition, version and URL, email domain, data volume size): keep them in the environment, or add them to the file (examples/glbox.toml lists every key)",
        );
    }
    write_config(path, &text)?;
    eprintln!(
        "Wrote {} from the environment and defaults. Run: glbox up --config {} --yes",
        path.display(),
        path.display()
    );
    Ok(Next::Done)
}

// ------------------------------------------------------- review and write

/// What `up` will build, from the settings the file yields.
pub fn summary(settings: &Settings) -> String {
    let url = settings
        .gitlab
        .external_url
        .clone()
        .unwrap_or_else(|| "http://<the Elastic IP>".to_string());
    let mut lines = vec![
        format!("Deployment {:?} in {}:", settings.name, settings.region),
        format!(
            "  + instance         {}, {}, {} GiB encrypted gp3 root, {} GiB swap",
            settings.instance_type,
            settings.os.as_str(),
            settings.root_volume_gib,
            settings.swap_gib
        ),
        format!(
            "  + data volume      {} GiB encrypted gp3 ({} IOPS, {} MiB/s) at /var/opt/gitlab",
            settings.data_volume.size_gib,
            settings.data_volume.iops,
            settings.data_volume.throughput_mibps
        ),
        format!(
            "  + security group   tcp 80, 443 from {}{}",
            settings
                .http_cidrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            match settings.access.method() {
                AccessMethod::Ssh => "; tcp 22 from your address",
                AccessMethod::Ssm => "",
            }
        ),
        format!(
            "  + IAM role         SSM access{}",
            match settings.access.method() {
                AccessMethod::Ssm => " (how glbox and you reach the box)",
                AccessMethod::Ssh => " (for the box's own parameters)",
            }
        ),
    ];
    if settings.elastic_ip {
        lines.push("  + Elastic IP       a fixed public address".into());
    }
    lines.push(format!(
        "  + GitLab           {} {} at {url}{}",
        settings.gitlab.edition.as_str().to_uppercase(),
        settings.gitlab.version.as_str(),
        if settings.gitlab.letsencrypt {
            ", certificate from Let's Encrypt"
        } else {
            ""
        }
    ));
    if let Some(email) = &settings.email {
        lines.push(format!(
            "  + email            through SES ({}) as {}, from {}",
            email.ses_region, email.domain, email.from
        ));
    }
    lines.join("\n") + "\n"
}

/// Shows what the answers build and cost, asks, and writes the file.
/// Returns whether it was written.
fn review_and_write(answers: &Answers, path: &Path, ui: &Ui) -> Result<bool> {
    let text = render(answers);
    let settings = config::from_str(&text, path)?;
    eprintln!();
    eprint!("{}", summary(&settings));
    eprint!("{}", crate::cost::estimate(&settings).table());
    if settings.gitlab.external_url.is_some() {
        ui.info("Point the external URL's DNS name at the Elastic IP once glbox up shows it.");
    }
    let write = Confirm::new()
        .with_prompt(format!("Write {}?", path.display()))
        .default(true)
        .interact()
        .map_err(unreadable)?;
    if write {
        write_config(path, &text)?;
    }
    Ok(write)
}
