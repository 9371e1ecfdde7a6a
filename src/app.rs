//! The run's context, built once from the global flags: the user
//! interface, the output format, `--yes`, where the configuration comes
//! from and how to reach AWS. Box and lab commands take the same one.

use std::path::PathBuf;

use clap::Args;
use ipnet::{IpNet, Ipv4Net};

use crate::aws::{self, Aws, ConnectOptions};
use crate::config::{self, ConfigError, Settings, Sources};
use crate::error::{Error, Result};
use crate::lab::LabSettings;
use crate::output::{print_json, OutputFormat, Report};
use crate::resources::Ctx;
use crate::ui::{Ui, Verbosity};

/// The flags every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file.
    #[arg(long, global = true, env = "GLBOX_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// AWS region (overrides the configuration).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// AWS shared-config profile to use.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Send AWS requests to this endpoint (AWS_ENDPOINT_URL works too).
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Result format on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
    /// More detail about each step.
    #[arg(long, short = 'v', global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print only the result.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// Never ask anything (also without a terminal): missing values are listed in one error.
    #[arg(long, global = true)]
    pub non_interactive: bool,
}

impl GlobalArgs {
    pub fn verbosity(&self) -> Verbosity {
        match (self.quiet, self.verbose) {
            (true, _) => Verbosity::Quiet,
            (_, true) => Verbosity::Verbose,
            _ => Verbosity::Normal,
        }
    }
}

/// One run of glbox.
pub struct App {
    pub ui: Ui,
    pub output: OutputFormat,
    /// `--yes`: no question before a change.
    pub yes: bool,
    /// The configuration file, environment and `--region`.
    pub sources: Sources,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
}

/// What a single-box command needs checked before its first AWS call.
#[derive(Default)]
pub struct Needs {
    /// The flag or command that needs `[email]` on, if any.
    pub email_for: Option<&'static str>,
    /// Plan and up fill an empty `access.ssh_cidrs` with the caller's address.
    pub ssh_cidrs: bool,
}

/// The single box's settings and AWS connection.
pub struct Deployment {
    pub aws: Aws,
    pub settings: Settings,
}

impl Deployment {
    pub fn ctx<'a>(&'a self, app: &'a App) -> Ctx<'a> {
        Ctx::new(&self.aws, &self.settings, &app.ui)
    }
}

impl App {
    pub fn new(flags: &GlobalArgs, ui: Ui) -> App {
        if flags.non_interactive {
            crate::wizard::forbid_prompts();
        }
        App {
            ui,
            output: flags.output,
            yes: flags.yes,
            sources: Sources::from_process(flags.config.clone(), flags.region.clone()),
            profile: flags.profile.clone(),
            endpoint_url: flags.endpoint_url.clone(),
        }
    }

    /// The AWS clients for `region`. Labs retry adaptively: they send many
    /// calls of one kind at once.
    pub async fn connect(&self, region: &str, adaptive_retry: bool) -> Aws {
        aws::connect(&ConnectOptions {
            region: region.to_string(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
            adaptive_retry,
        })
        .await
    }

    /// The single box: settings loaded and checked (no AWS call before they
    /// are valid), then the connection.
    pub async fn deployment(&self, needs: Needs) -> Result<Deployment> {
        let mut settings = config::load(&self.sources)?;
        tracing::debug!("settings: {settings:?}");
        if let Some(what) = needs.email_for {
            require_email(&settings, what)?;
        }
        if needs.ssh_cidrs {
            resolve_ssh_cidrs(&mut settings, &self.ui).await?;
        }
        let aws = self.connect(&settings.region, false).await;
        crate::secrets::resolve(&aws, &mut settings).await?;
        Ok(Deployment { aws, settings })
    }

    /// A lab's settings, `[lab]` included, checked before any AWS call.
    pub fn lab_settings(&self) -> Result<(Settings, LabSettings)> {
        let (settings, raw_lab) = config::load_lab(&self.sources)?;
        let lab = crate::lab::settings::validate(&settings, raw_lab)?;
        Ok((settings, lab))
    }
}

/// Email flags and commands need `[email]` on: said before any AWS call.
fn require_email(settings: &Settings, what: &str) -> Result<()> {
    if settings.email.is_some() {
        return Ok(());
    }
    Err(Error::Config(ConfigError {
        field: "email.enabled".into(),
        value: "false".into(),
        problem: format!("{what} needs email turned on"),
        fix: "set enabled = true and domain = \"example.com\" under [email] (or GLBOX_EMAIL_ENABLED=true, GLBOX_EMAIL_DOMAIN=...)".into(),
    }))
}

/// SSH mode with no `ssh_cidrs`: allow the caller's own address only.
async fn resolve_ssh_cidrs(settings: &mut Settings, ui: &Ui) -> Result<()> {
    let Some(ssh) = settings.ssh_access_mut().filter(|s| s.cidrs.is_empty()) else {
        return Ok(());
    };
    match crate::caller_ip::detect().await {
        Ok(found) => {
            let net =
                IpNet::V4(Ipv4Net::new(found.address, 32).expect("32 is a valid IPv4 prefix"));
            ui.info(&format!(
                "SSH will be allowed from your address {net} only (as {} sees it)",
                found.source
            ));
            ssh.cidrs.push(net);
            Ok(())
        }
        Err(reason) => Err(Error::Config(ConfigError {
            field: "access.ssh_cidrs".into(),
            value: String::new(),
            problem: format!("is empty, and your public IP address could not be found ({reason})"),
            fix: "set access.ssh_cidrs = [\"<your public IP>/32\"]".into(),
        })),
    }
}

/// What a command prints and asks, in the run's format.
impl App {
    /// Prints `report` in the run's format, then hands back its outcome.
    pub fn emit(&self, report: impl Report) -> Result<()> {
        match self.output {
            OutputFormat::Json if !report.text_only() => print_json(&report),
            _ => print!("{}", report.text()),
        }
        report.outcome()
    }

    /// Should a command show what it is about to change before it asks? Not
    /// as JSON, and not with `-q` and `--yes` (no question, only the result).
    pub fn preview_wanted(&self) -> bool {
        self.output == OutputFormat::Text && !(self.yes && self.ui.verbosity() == Verbosity::Quiet)
    }

    /// Asks before changing anything, unless `--yes`. Without a terminal to
    /// ask on, refuses rather than guessing.
    pub fn confirm(&self, question: &str, what: &str) -> Result<()> {
        if self.yes {
            return Ok(());
        }
        if !crate::wizard::can_prompt() {
            return Err(Error::Refused(format!(
                "{what} needs confirmation, and there is no terminal to ask on (or --non-interactive): nothing was changed\n  fix: review the list above, then re-run with --yes"
            )));
        }
        let agreed = self
            .ui
            .confirm(question)
            .map_err(|e| Error::Refused(format!("could not read the answer: {e}")))?;
        if agreed {
            Ok(())
        } else {
            Err(Error::Declined)
        }
    }
}
