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

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use aws_config::meta::region::ProvideRegion;
use dialoguer::{Confirm, Input, Select};

use crate::aws::{self, ConnectOptions};
use crate::config::{self, AccessMethod, ConfigError, Edition, Os, Settings, Sources};
use crate::email::smtp_password::is_smtp_region;
use crate::error::{Error, Result};
use crate::ui::Ui;

/// Where no other source names a region, the wizard proposes this one.
const FALLBACK_REGION: &str = "us-east-1";

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
fn unreadable(e: dialoguer::Error) -> Error {
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
        .unwrap_or_else(|| FALLBACK_REGION.to_string())
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
    if load_text(&text, path)? != settings {
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

// --------------------------------------------------------------- answers

/// Everything the wizard asks, as written to `glbox.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    pub name: String,
    pub region: String,
    /// The expected number of users, when asked (kept as a comment).
    pub users: Option<u32>,
    pub instance_type: String,
    pub os: Os,
    pub access: AccessMethod,
    pub external_url: Option<String>,
    pub letsencrypt: bool,
    pub edition: Edition,
    /// "latest" or a release like "18.5.1".
    pub version: String,
    /// `Some`: email through SES.
    pub email: Option<EmailAnswers>,
    pub data_volume_gib: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAnswers {
    /// The domain mail is sent as.
    pub domain: String,
    /// Where SES is, when the deployment's region has no SES SMTP endpoint.
    pub ses_region: Option<String>,
}

impl Answers {
    fn from_settings(s: &Settings) -> Answers {
        Answers {
            name: s.name.clone(),
            region: s.region.clone(),
            users: None,
            instance_type: s.instance_type.clone(),
            os: s.os,
            access: s.access,
            external_url: s.gitlab.external_url.clone(),
            letsencrypt: s.gitlab.letsencrypt,
            edition: s.gitlab.edition,
            version: s.gitlab.version.as_str().to_string(),
            email: s.email.as_ref().map(|e| EmailAnswers {
                domain: e.domain.clone(),
                ses_region: (e.ses_region != s.region).then(|| e.ses_region.clone()),
            }),
            data_volume_gib: s.data_volume.size_gib,
        }
    }
}

/// A TOML string literal (quotes and escapes as TOML wants them).
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// The commented `glbox.toml` for `answers`, in the schema `config::load`
/// reads. It never holds a secret: the root and SMTP passwords live only in
/// SSM Parameter Store.
pub fn render(answers: &Answers) -> String {
    let users = match answers.users {
        Some(users) => format!("Chosen for about {users} users.\n# "),
        None => String::new(),
    };
    let url_comment = match &answers.external_url {
        Some(_) => "# The address users open GitLab at (a DNS name pointing at the Elastic IP).",
        None => "# Empty: http:// and the Elastic IP's address.",
    };
    let email = match &answers.email {
        Some(email) => format!(
            "# Outbound email through Amazon SES as this domain: glbox prints the DNS\n# records to publish (glbox email dns).\nenabled = true\ndomain = {}\n{}",
            quoted(&email.domain),
            email.ses_region.as_deref().map_or(String::new(), |r| {
                format!("# The deployment's region has no SES SMTP endpoint: SES is used here.\nses_region = {}\n", quoted(r))
            })
        ),
        None => "# Outbound email through Amazon SES: set enabled = true and domain = \"...\".\nenabled = false\n".to_string(),
    };
    format!(
        r#"# glbox configuration, written by the glbox wizard.
# Run again without questions: glbox up --config glbox.toml --yes
# Every key, with its default, is described in examples/glbox.toml.
# GLBOX_* environment variables and command-line flags override this file.
# No secret is kept here: the GitLab root password and the SMTP password
# live only in SSM Parameter Store (glbox status --show-password).

# The deployment's name: every AWS resource is tagged glbox:deployment=<name>.
name = {name}
region = {region}

[instance]
# {users}GitLab's reference for up to 1,000 users is 8 vCPU and 16 GiB
# (c5.2xlarge, or c7g.2xlarge on Graviton); smaller types suit trials only.
type = {instance_type}
# "ubuntu-24.04" or "al2023".
os = {os}

[access]
# "ssm" (recommended: no inbound SSH port at all) or "ssh".
method = {access}

[gitlab]
# "ce" (Community Edition) or "ee" (Enterprise Edition, free until licensed).
edition = {edition}
# "latest" (the newest at first install) or a release such as "18.5.1".
version = {version}
{url_comment}
external_url = {url}
# Let's Encrypt needs an https:// external_url with a DNS name that points here.
letsencrypt = {letsencrypt}

[data_volume]
# The encrypted gp3 volume for /var/opt/gitlab, 40-65536 GiB. It can grow,
# never shrink, and glbox down keeps it unless --delete-data.
size_gib = {size}

[email]
{email}"#,
        name = quoted(&answers.name),
        region = quoted(&answers.region),
        instance_type = quoted(&answers.instance_type),
        os = quoted(answers.os.as_str()),
        access = quoted(match answers.access {
            AccessMethod::Ssm => "ssm",
            AccessMethod::Ssh => "ssh",
        }),
        edition = quoted(answers.edition.as_str()),
        version = quoted(&answers.version),
        url = quoted(answers.external_url.as_deref().unwrap_or("")),
        letsencrypt = answers.letsencrypt,
        size = answers.data_volume_gib,
    )
}

/// Writes the file through a temporary one beside it and a rename, so a
/// crash never leaves half a configuration. It holds no secret: 0644 less
/// the user's umask, like any file they would write.
fn write_config(path: &Path, text: &str) -> Result<()> {
    let temporary = temporary_path(path);
    write_new(&temporary, text)?;
    std::fs::rename(&temporary, path)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{:016x}.tmp", rand::random::<u64>()));
    path.with_file_name(name)
}

/// Creates `path` anew (never through a symlink or over a file already
/// there) and writes `text` to it.
fn write_new(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o644);
    let context = || format!("cannot write {}", path.display());
    let mut file = options.open(path).map_err(|e| Error::io(context(), e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(context(), e))
}

/// Loads `text` exactly as `config::load` reads a file holding it, with no
/// environment or flag on top: what the file alone says.
fn load_text(text: &str, beside: &Path) -> Result<Settings> {
    let temporary = temporary_path(beside);
    write_new(&temporary, text)?;
    let loaded = config::load(&Sources {
        explicit_file: Some(temporary.clone()),
        ..Sources::default()
    });
    let _ = std::fs::remove_file(&temporary);
    Ok(loaded?)
}

// ------------------------------------------------------------- questions

/// AWS reads for the questions, from the blocking thread.
struct Lookups {
    runtime: tokio::runtime::Handle,
    connect: ConnectOptions,
    ui: Ui,
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
struct Defaults {
    /// GLBOX_NAME, else "gitlab".
    name: String,
    /// The region from flags, environment or profile, else us-east-1.
    region: String,
}

fn ask(aws: &Lookups, defaults: &Defaults, ui: &Ui) -> Result<Answers> {
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
        .default("latest".to_string())
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
        .default(100)
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
            config::validate_instance_type(Some(t.clone()))
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
                .default(FALLBACK_REGION.to_string())
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
            match settings.access {
                AccessMethod::Ssh => "; tcp 22 from your address",
                AccessMethod::Ssm => "",
            }
        ),
        format!(
            "  + IAM role         SSM access{}",
            match settings.access {
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
    let settings = load_text(&text, path)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answers() -> Answers {
        Answers {
            name: "team-gitlab".into(),
            region: "ap-east-1".into(),
            users: Some(250),
            instance_type: "c7g.2xlarge".into(),
            os: Os::Al2023,
            access: AccessMethod::Ssh,
            external_url: Some("https://gitlab.example.com".into()),
            letsencrypt: true,
            edition: Edition::Ee,
            version: "18.5.1".into(),
            email: Some(EmailAnswers {
                domain: "example.com".into(),
                ses_region: Some("us-east-1".into()),
            }),
            data_volume_gib: 250,
        }
    }

    #[test]
    fn the_rendered_file_loads_back_to_the_answers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("glbox.toml");
        for answers in [
            answers(),
            Answers {
                external_url: None,
                letsencrypt: false,
                email: None,
                access: AccessMethod::Ssm,
                os: Os::Ubuntu2404,
                users: None,
                ..answers()
            },
        ] {
            let settings = load_text(&render(&answers), &path).unwrap();
            assert_eq!(
                Answers::from_settings(&settings),
                Answers {
                    users: None,
                    ..answers
                }
            );
        }
    }

    #[test]
    fn any_text_is_quoted_as_a_toml_string_that_reads_back() {
        for text in ["a\"b", "it's", "back\\slash", "line\nbreak", ""] {
            let table: toml::Table = format!("x = {}", quoted(text)).parse().unwrap();
            assert_eq!(table["x"].as_str(), Some(text));
        }
    }

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
