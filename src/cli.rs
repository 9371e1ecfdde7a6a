//! The command line: parse, load settings (no AWS call before they are
//! valid), then plan / up / status / down.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::{IpNet, Ipv4Net};

use crate::aws::{self, ConnectOptions};
use crate::config::{self, ConfigError, Settings, Sources};
use crate::deploy::down::{self, DownOptions};
use crate::deploy::plan;
use crate::deploy::{apply, status};
use crate::error::{Error, Result};
use crate::resources::{dns_record, Action, Ctx};
use crate::ui::{Ui, Verbosity};
use crate::{caller_ip, help};

const EXAMPLES: &str = "\
Examples:
  glbox init                          answer a few questions, see the cost, get a glbox.toml
  glbox doctor                        check credentials, permissions, quota, tools before the first up
  glbox plan                          show what `up` would change
  glbox up                            create or converge everything, GitLab included
  glbox up --no-bootstrap --yes       create or converge the AWS side, no prompt
  glbox status --output json          the deployment's resources as JSON
  glbox verify [--deep]               is GitLab healthy? (exit 0 yes, 1 no, 2 could not check)
  glbox down                          remove the deployment, keep the data volume
  glbox down --delete-data            also delete the data volume (after a final snapshot)
  glbox render user-data              the cloud-config the instance gets at launch
  glbox render gitlab-rb              /etc/gitlab/gitlab.rb as glbox writes it
  glbox up --wait-email               also wait until SES has verified the email domain
  glbox email dns [--zone-file]       the DNS records SES needs for the email domain
  glbox email rotate                  new SMTP key, GitLab updated, old key deleted
  glbox completions bash              shell completions (also zsh, fish)

Configuration: glbox.toml (see examples/glbox.toml), overridden by GLBOX_* variables
(e.g. GLBOX_NAME, GLBOX_INSTANCE_TYPE, GLBOX_DATA_VOLUME_SIZE_GIB), overridden by flags.";

#[derive(Debug, Parser)]
#[command(name = "glbox", version, about = "Stand up a GitLab server on one AWS EC2 instance, and take it down again", after_help = EXAMPLES)]
pub struct Cli {
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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what `up` would create, change or replace (changes nothing).
    #[command(after_help = help::PLAN)]
    Plan(UpArgs),
    /// Create or converge the deployment.
    #[command(after_help = help::UP)]
    Up(UpArgs),
    /// Show the deployment's resources, addresses and URL.
    #[command(after_help = help::STATUS)]
    Status(StatusArgs),
    /// Remove everything the deployment owns (the data volume is kept unless --delete-data).
    #[command(after_help = help::DOWN)]
    Down(DownArgs),
    /// Check that GitLab works: health endpoints, services, version, data volume, swap.
    #[command(after_help = help::VERIFY)]
    Verify(VerifyArgs),
    /// Print what glbox would send to the instance, for review (changes nothing).
    #[command(after_help = help::RENDER)]
    Render {
        #[arg(value_enum)]
        what: RenderWhat,
    },
    /// Outbound email through Amazon SES ([email] in the configuration).
    #[command(subcommand, after_help = help::EMAIL)]
    Email(EmailCommand),
    /// Check what `up` needs (credentials, region, permissions, vCPU quota, local tools); changes nothing.
    #[command(after_help = help::DOCTOR)]
    Doctor,
    /// Training labs: a GitLab box per student ([lab] in the configuration).
    #[command(subcommand, after_help = help::LAB)]
    Lab(LabCommand),
    /// Ask for every choice, show what it builds and costs, and write glbox.toml (creates nothing on AWS).
    #[command(after_help = help::INIT)]
    Init(InitArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = help::COMPLETIONS)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Create or converge every seat of the lab, then write the roster.
    #[command(after_help = help::LAB_UP)]
    Up(LabUpArgs),
    /// One line per seat: instance, market, URL, state; the lab's cost per hour.
    #[command(after_help = help::LAB_STATUS)]
    Status,
    /// Remove everything of the lab, seats' data included.
    #[command(after_help = help::LAB_DOWN)]
    Down,
    /// Remove every lab in the region whose expiry has passed (for cron; needs no configuration).
    #[command(after_help = help::LAB_REAP)]
    Reap,
}

#[derive(Debug, Args)]
pub struct LabUpArgs {
    /// Stop after the AWS side: do not install GitLab on the seats.
    #[arg(long)]
    pub no_bootstrap: bool,
    /// Where to write the roster (seat, URL, user, password, state; mode 0600).
    #[arg(long, value_name = "FILE", default_value = "roster.csv")]
    pub roster: PathBuf,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Replace an existing configuration file without asking.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum EmailCommand {
    /// Print the DNS records SES needs: the verification TXT record and the three DKIM CNAMEs.
    #[command(after_help = help::EMAIL_DNS)]
    Dns {
        /// Print BIND zone-file lines instead of a table.
        #[arg(long)]
        zone_file: bool,
    },
    /// Make a new SMTP access key, bring GitLab on the box to it, then delete the old key.
    #[command(after_help = help::EMAIL_ROTATE)]
    Rotate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenderWhat {
    /// The cloud-config given to the instance at launch.
    UserData,
    /// The script that installs and configures GitLab on the instance.
    Bootstrap,
    /// /etc/gitlab/gitlab.rb as glbox writes it.
    GitlabRb,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Stop after the AWS side: do not install or configure GitLab on the box.
    #[arg(long)]
    pub no_bootstrap: bool,
    /// Wait (up to 30 minutes) until SES has verified the email domain and its DKIM records.
    #[arg(long)]
    pub wait_email: bool,
    /// Without dns.route53_zone_id: install now with Let's Encrypt off when public DNS does not point at the box yet, instead of waiting (a later up turns it on).
    #[arg(long)]
    pub no_wait_dns: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Also run `gitlab-rake gitlab:check` (takes minutes).
    #[arg(long)]
    pub deep: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Also print GitLab's initial root password (read from SSM).
    #[arg(long)]
    pub show_password: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Also delete the data volume (GitLab's data), after a final snapshot.
    #[arg(long)]
    pub delete_data: bool,
    /// With --delete-data: skip the final snapshot.
    #[arg(long, requires = "delete_data")]
    pub no_snapshot: bool,
    /// Also delete the SES domain identity (kept by default: other senders may share it).
    #[arg(long)]
    pub delete_email_identity: bool,
}

/// How long `up --wait-email` waits for SES to see the DNS records.
const EMAIL_WAIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);
/// How long `up` waits for public DNS to answer with the Elastic IP
/// before an install with Let's Encrypt (without a Route 53 zone).
const DNS_WAIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Runs the command; the caller turns an error into a message and status.
pub async fn run(cli: Cli) -> Result<()> {
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (_, true) => Verbosity::Verbose,
        _ => Verbosity::Normal,
    };
    if let Command::Completions { shell } = cli.command {
        print_completions(shell);
        return Ok(());
    }
    let ui = Ui::new(verbosity);
    crate::log::start(&ui, &command_name(&cli.command));
    let result = run_command(cli, &ui).await;
    ui.end_phases();
    result
}

/// The command's name (`up`, `email`, ...), for the log file's name: the
/// variant's name, read from its `Debug` form so that new commands need
/// no entry here.
fn command_name(command: &Command) -> String {
    format!("{command:?}")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_lowercase()
}

/// `glbox completions SHELL`: the script, from the same command tree that
/// parses the arguments (so it cannot fall behind).
fn print_completions(shell: clap_complete::Shell) {
    use clap::CommandFactory;
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "glbox", &mut std::io::stdout());
}

async fn run_command(cli: Cli, ui: &Ui) -> Result<()> {
    let ui = ui.clone();
    if cli.non_interactive {
        crate::wizard::forbid_prompts();
    }
    let sources = Sources::from_process(cli.config.clone(), cli.region.clone());
    // The first run asks before anything else (Ctrl-C simply ends it).
    let purpose = match &cli.command {
        Command::Init(_) => Some(crate::wizard::Purpose::Init),
        Command::Up(_) => Some(crate::wizard::Purpose::Up),
        _ => None,
    };
    if let Some(purpose) = purpose {
        let request = crate::wizard::Request {
            purpose,
            force: matches!(&cli.command, Command::Init(args) if args.force),
            profile: cli.profile.clone(),
            endpoint_url: cli.endpoint_url.clone(),
            sources: &sources,
            ui: &ui,
        };
        if crate::wizard::prepare(&request).await? == crate::wizard::Next::Done {
            return Ok(());
        }
    }
    let resume = match cli.command {
        Command::Up(_) => Some("glbox up"),
        Command::Lab(LabCommand::Up(_)) => Some("glbox lab up"),
        Command::Lab(LabCommand::Down) => Some("glbox lab down"),
        Command::Lab(LabCommand::Reap) => Some("glbox lab reap"),
        Command::Down(_) => Some("glbox down"),
        Command::Email(EmailCommand::Rotate) => Some("glbox up"),
        _ => None,
    };
    if let Some(resume) = resume {
        // Changes stop at a safe point, never in the middle of one.
        crate::checkpoint::install_interrupt_handler(ui.clone(), resume);
    }
    match &cli.command {
        Command::Lab(command) => run_lab(&cli, command, &ui).await,
        _ => run_box(&cli, &sources, &ui).await,
    }
}

/// The single-box commands.
async fn run_box(cli: &Cli, sources: &Sources, ui: &Ui) -> Result<()> {
    let ui = ui.clone();
    let mut settings = config::load(sources)?;
    tracing::debug!("settings: {settings:?}");
    check_email_flags(&cli.command, &settings)?;
    if matches!(cli.command, Command::Plan(_) | Command::Up(_)) {
        resolve_ssh_cidrs(&mut settings, &ui).await?;
    }
    let aws = aws::connect(&ConnectOptions {
        region: settings.region.clone(),
        profile: cli.profile.clone(),
        endpoint_url: cli.endpoint_url.clone(),
        adaptive_retry: false,
    })
    .await;
    let ctx = Ctx::new(&aws, &settings, &ui);
    match &cli.command {
        Command::Plan(args) => run_plan(&ctx, cli.output, !args.no_bootstrap).await,
        Command::Up(args) => run_up(&ctx, cli.output, cli.yes, args).await,
        Command::Status(args) => run_status(&ctx, cli.output, args.show_password).await,
        Command::Down(args) => {
            let options = DownOptions {
                delete_data: args.delete_data,
                snapshot: !args.no_snapshot,
                delete_email_identity: args.delete_email_identity,
            };
            run_down(&ctx, cli.output, cli.yes, options).await
        }
        Command::Render { what } => run_render(&ctx, *what).await,
        Command::Verify(args) => run_verify(&ctx, cli.output, args.deep).await,
        Command::Email(EmailCommand::Dns { zone_file }) => {
            run_email_dns(&ctx, cli.output, *zone_file).await
        }
        Command::Email(EmailCommand::Rotate) => run_email_rotate(&ctx, cli.output, cli.yes).await,
        Command::Doctor => run_doctor(&ctx, cli.output).await,
        Command::Lab(_) => unreachable!("run() hands lab commands to run_lab"),
        Command::Init(_) => unreachable!("init ends in the wizard"),
        Command::Completions { .. } => unreachable!("printed before any set-up"),
    }
}

/// The lab commands load their own settings (`[lab]` included).
async fn run_lab(cli: &Cli, command: &LabCommand, ui: &Ui) -> Result<()> {
    use crate::lab::commands;
    let invocation = commands::Invocation {
        config: cli.config.clone(),
        region: cli.region.clone(),
        profile: cli.profile.clone(),
        endpoint_url: cli.endpoint_url.clone(),
        output: cli.output,
        yes: cli.yes,
    };
    match command {
        LabCommand::Up(args) => {
            commands::up(&invocation, ui, !args.no_bootstrap, &args.roster).await
        }
        LabCommand::Status => commands::status(&invocation, ui).await,
        LabCommand::Down => commands::down_lab(&invocation, ui).await,
        LabCommand::Reap => commands::reap(&invocation, ui).await,
    }
}

/// Email flags and commands need `[email]` on: said before any AWS call.
fn check_email_flags(command: &Command, settings: &Settings) -> Result<()> {
    if settings.email.is_some() {
        return Ok(());
    }
    let what = match command {
        Command::Up(args) if args.wait_email => "--wait-email",
        Command::Down(args) if args.delete_email_identity => "--delete-email-identity",
        Command::Email(EmailCommand::Dns { .. }) => "glbox email dns",
        Command::Email(EmailCommand::Rotate) => "glbox email rotate",
        _ => return Ok(()),
    };
    Err(Error::Config(ConfigError {
        field: "email.enabled".into(),
        value: "false".into(),
        problem: format!("{what} needs email turned on"),
        fix: "set enabled = true and domain = \"example.com\" under [email] (or GLBOX_EMAIL_ENABLED=true, GLBOX_EMAIL_DOMAIN=...)".into(),
    }))
}

/// Renders against what AWS has: the data volume's id and the instance's
/// address. Before the first `up` creates them, placeholders stand in and
/// glbox says so.
async fn run_render(ctx: &Ctx<'_>, what: RenderWhat) -> Result<()> {
    let observed = plan::observe(ctx).await?;
    let volume_id = match observed.data_volumes.first() {
        Some(volume) => volume.id.clone(),
        None => {
            ctx.ui.warn("the data volume does not exist yet: `glbox up` creates it and puts its id where <data-volume-id> stands");
            "<data-volume-id>".to_string()
        }
    };
    let live = observed.live_instances();
    let instance_host = live
        .first()
        .and_then(|i| i.public_dns.clone().or_else(|| i.public_ip.clone()));
    let external_url = crate::gitlab_rb::external_url(
        ctx.settings,
        observed.addresses.first().map(|a| a.public_ip.as_str()),
        instance_host.as_deref(),
    )
    .unwrap_or_else(|| {
        if matches!(what, RenderWhat::Bootstrap | RenderWhat::GitlabRb) {
            ctx.ui.warn("the instance has no address yet: `glbox up` puts it where <elastic-ip> stands (or set gitlab.external_url)");
        }
        "http://<elastic-ip>".to_string()
    });
    let smtp_username = ctx.settings.email.as_ref().map(|_| {
        match &observed.email.credentials.current {
            Some(current) => current.access_key_id.clone(),
            None => {
                if what != RenderWhat::UserData {
                    ctx.ui.warn("the SMTP user does not exist yet: `glbox up` creates it and puts its name where <smtp-username> stands");
                }
                "<smtp-username>".to_string()
            }
        }
    });
    let root_password_parameter = crate::resources::parameters::root_password_name(ctx);
    let text = match what {
        RenderWhat::UserData => crate::userdata::render(ctx.settings, Some(&volume_id)),
        RenderWhat::Bootstrap => crate::bootstrap::render(
            ctx.settings,
            &crate::bootstrap::Target {
                data_volume_id: &volume_id,
                external_url: &external_url,
                smtp_username: smtp_username.as_deref(),
                root_password_parameter: &root_password_parameter,
            },
        ),
        RenderWhat::GitlabRb => {
            crate::gitlab_rb::render(ctx.settings, &external_url, smtp_username.as_deref())
        }
    };
    print!("{text}");
    Ok(())
}

/// SSH mode with no `ssh_cidrs`: allow the caller's own address only.
async fn resolve_ssh_cidrs(settings: &mut Settings, ui: &Ui) -> Result<()> {
    let Some(ssh) = settings.ssh_access_mut().filter(|s| s.cidrs.is_empty()) else {
        return Ok(());
    };
    match caller_ip::detect().await {
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

pub(crate) fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("reports serialize")
    );
}

fn print_plan(report: &plan::PlanReport) {
    println!(
        "Plan for deployment {:?} in {}:",
        report.deployment, report.region
    );
    for item in &report.resources {
        let marker = match item.action {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::NoChange => "=",
        };
        let id = item.id.as_deref().unwrap_or("(new)");
        println!(
            "  {marker:>3} {:<17} {:<24} {:<22} {}",
            item.resource,
            item.name,
            id,
            item.action.label()
        );
        for change in &item.changes {
            println!("        {change}");
        }
    }
    let count = |action| {
        report
            .resources
            .iter()
            .filter(|i| i.action == action)
            .count()
    };
    println!(
        "{} to create, {} to update, {} to replace, {} to delete.",
        count(Action::Create),
        count(Action::Update),
        count(Action::Replace),
        count(Action::Delete)
    );
}

async fn run_plan(ctx: &Ctx<'_>, output: OutputFormat, with_bootstrap: bool) -> Result<()> {
    let observed = plan::observe(ctx).await?;
    let plan = plan::make(ctx, &observed, with_bootstrap).await?;
    let report = plan.report(ctx, &observed);
    let cost = crate::cost::estimate(ctx.settings);
    match output {
        OutputFormat::Json => print_json(&PlanOutput {
            plan: &report,
            cost,
        }),
        OutputFormat::Text => {
            print_plan(&report);
            print!("{}", cost.table());
        }
    }
    Ok(())
}

/// `plan --output json`: the plan's keys, plus the cost estimate.
#[derive(serde::Serialize)]
struct PlanOutput<'a> {
    #[serde(flatten)]
    plan: &'a plan::PlanReport,
    cost: crate::cost::Estimate,
}

/// What a command is about to change is shown before it asks; with `-q`
/// and `--yes` there is no question, and only the result is printed.
fn preview_wanted(ui: &Ui, yes: bool) -> bool {
    !(yes && ui.verbosity() == Verbosity::Quiet)
}

/// Asks before changing anything, unless `--yes`. Without a terminal to ask
/// on, refuses rather than guessing.
pub(crate) fn confirm(ui: &Ui, question: &str, what: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !crate::wizard::can_prompt() {
        return Err(Error::Refused(format!(
            "{what} needs confirmation, and there is no terminal to ask on (or --non-interactive): nothing was changed\n  fix: review the list above, then re-run with --yes"
        )));
    }
    let agreed = ui
        .confirm(question)
        .map_err(|e| Error::Refused(format!("could not read the answer: {e}")))?;
    if agreed {
        Ok(())
    } else {
        Err(Error::Declined)
    }
}

#[derive(serde::Serialize)]
struct UpReport {
    plan: plan::PlanReport,
    applied: Option<apply::Applied>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<crate::verify::Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<crate::email::Report>,
}

/// `up`: a plan without the lease first, so an `up` with nothing to do
/// changes nothing at all (not even a lease); with changes, the lease,
/// then everything again under it (another run may have done the work
/// meanwhile).
async fn run_up(ctx: &Ctx<'_>, output: OutputFormat, yes: bool, args: &UpArgs) -> Result<()> {
    let with_bootstrap = !args.no_bootstrap;
    let observed = plan::observe(ctx).await?;
    // With Let's Encrypt put off, the plan (and the bootstrap's digest) is
    // for an install without it, so a repeated `up --no-wait-dns` is free.
    let deferred =
        dns_record::letsencrypt_deferred(ctx, &observed, with_bootstrap && args.no_wait_dns).await;
    let deferred_ctx = deferred.as_ref().map(|s| Ctx::new(ctx.aws, s, ctx.ui));
    let ctx = deferred_ctx.as_ref().unwrap_or(ctx);
    let plan = plan::make(ctx, &observed, with_bootstrap).await?;
    // A lease left by a crashed run is taken (and so broken) even when
    // there is nothing else to do.
    let lease_left = observed
        .parameters
        .contains(&crate::lease::parameter_name(&ctx.names));
    if plan.is_noop() && !lease_left {
        let planned = Planned {
            observed,
            plan,
            confirmed: None,
            letsencrypt_deferred: deferred.is_some(),
        };
        return up_planned(ctx, output, yes, args, planned).await;
    }
    // Asked before the lease: a refusal changes nothing at all.
    let first = plan.report(ctx, &observed);
    plan::warn_foreign(ctx, &observed);
    if !plan.is_noop() {
        crate::quotas::check(ctx, &crate::quotas::box_needs(&plan)).await?;
        confirm_plan(ctx, output, yes, &first)?;
    }
    let lease = crate::lease::acquire(ctx, "up").await?;
    let result = async {
        let observed = plan::observe(ctx).await?;
        let plan = plan::make(ctx, &observed, with_bootstrap).await?;
        let planned = Planned {
            observed,
            plan,
            confirmed: Some(&first),
            letsencrypt_deferred: deferred.is_some(),
        };
        up_planned(ctx, output, yes, args, planned).await
    }
    .await;
    crate::lease::released(ctx, lease, result).await
}

fn confirm_plan(
    ctx: &Ctx<'_>,
    output: OutputFormat,
    yes: bool,
    report: &plan::PlanReport,
) -> Result<()> {
    if output == OutputFormat::Text && preview_wanted(ctx.ui, yes) {
        print_plan(report);
    }
    confirm(ctx.ui, "Apply these changes?", "applying this plan", yes)
}

/// An `up`'s plan and what it was made from.
struct Planned<'r> {
    observed: plan::Observed,
    plan: plan::Plan,
    /// The plan the user agreed to before the lease, if asked.
    confirmed: Option<&'r plan::PlanReport>,
    /// Let's Encrypt is put off until DNS points at the box.
    letsencrypt_deferred: bool,
}

async fn up_planned(
    ctx: &Ctx<'_>,
    output: OutputFormat,
    yes: bool,
    args: &UpArgs,
    planned: Planned<'_>,
) -> Result<()> {
    let Planned {
        observed,
        plan,
        confirmed,
        letsencrypt_deferred,
    } = planned;
    let with_bootstrap = !args.no_bootstrap;
    let report = plan.report(ctx, &observed);
    let same =
        |c: &plan::PlanReport| serde_json::to_value(c).ok() == serde_json::to_value(&report).ok();
    if confirmed.is_none() {
        plan::warn_foreign(ctx, &observed);
    }
    if plan.is_noop() {
        // Waiting for DNS is still worth doing when nothing else is.
        let ses = match args.wait_email {
            true => Some(crate::email::wait_verified(ctx, EMAIL_WAIT).await?),
            false => None,
        };
        match output {
            OutputFormat::Json => print_json(&UpReport {
                plan: report,
                applied: None,
                verify: None,
                email: crate::email::report(ctx, &observed.email),
            }),
            OutputFormat::Text => {
                println!(
                    "Deployment {:?} in {} is up to date: nothing to do.",
                    ctx.settings.name, ctx.settings.region
                );
                if ses.is_some() {
                    println!("Email: SES has verified the domain and its DKIM records.");
                }
            }
        }
        return Ok(());
    }
    // The plan asked about before the lease, unless the lease's wait
    // changed it (another run did part of the work): then ask again.
    if !confirmed.is_some_and(same) {
        confirm_plan(ctx, output, yes, &report)?;
    }
    if crate::checkpoint::interrupted() {
        return Err(crate::checkpoint::stopped("planning (nothing was changed)"));
    }
    ctx.ui
        .start_phases(apply::phases(ctx.settings, with_bootstrap));
    let applied = apply::apply(ctx, &plan).await?;
    if let Some(record) = applied
        .dns_record
        .as_ref()
        .filter(|r| r.managed_by == "manual")
    {
        ctx.ui.info(&format!(
            "publish this DNS record for GitLab's name (name, type, value): {} {} {}\n  as a zone-file line: {}",
            record.name,
            record.kind,
            record.value,
            record.zone_line()
        ));
        if with_bootstrap && dns_record::needs_public_dns(ctx.settings) {
            dns_record::wait_for_public_dns(ctx, record, DNS_WAIT).await?;
        }
    }
    let url = crate::gitlab_rb::external_url(
        ctx.settings,
        applied.elastic_ip.as_deref(),
        applied
            .public_dns
            .as_deref()
            .or(applied.public_ip.as_deref()),
    );
    let mut transport = None;
    if with_bootstrap {
        let url = url.clone().ok_or_else(|| {
            Error::Refused(format!(
                "instance {} has no public address for GitLab's URL\n  fix: set gitlab.external_url, or network.elastic_ip = true",
                applied.instance_id
            ))
        })?;
        let root_password_parameter = crate::resources::parameters::root_password_name(ctx);
        let target = crate::bootstrap::Target {
            data_volume_id: &applied.data_volume_id,
            external_url: &url,
            smtp_username: applied.smtp_username.as_deref(),
            root_password_parameter: &root_password_parameter,
        };
        ctx.ui.phase(crate::deploy::components::gitlab::PHASE);
        crate::bootstrap::apply(
            ctx,
            &applied.instance,
            applied.public_ip.as_deref(),
            &target,
        )
        .await?;
        crate::checkpoint::reached("bootstrap").await?;
        transport = Some(
            crate::remote::Transport::for_instance(
                ctx,
                &applied.instance_id,
                applied.public_ip.as_deref(),
            )
            .await?,
        );
    }
    let ses = email_state(ctx, args.wait_email).await?;
    let mut verify_report = None;
    let mut verify_error = None;
    if let (Some(transport), Some(url)) = (&transport, &url) {
        let facts = email_facts(ctx, ses.as_ref(), true);
        ctx.ui
            .phase(crate::deploy::components::gitlab::VERIFY_PHASE);
        // Whatever the checks say, the summary of what exists comes first.
        match crate::verify::run(
            ctx,
            transport,
            url,
            ctx.settings.verify_timeout,
            false,
            facts.as_ref(),
        )
        .await
        {
            Ok(report) => verify_report = Some(report),
            Err(e) => verify_error = Some(e),
        }
    }
    // GitLab uses the current SMTP key now; once the checks did not find
    // it failing, older keys go (else they stay, and the next up retries).
    let email_works = verify_report.as_ref().is_some_and(|r| {
        !r.checks
            .iter()
            .any(|c| c.name == "email_test" && c.status == crate::verify::Status::Fail)
    });
    if email_works {
        crate::email::finish(ctx, &plan.email).await?;
    }
    let healthy = verify_report.as_ref().is_none_or(|r| r.healthy);
    ctx.ui.end_phases();
    let email_advice = match (&ctx.settings.email, &ses) {
        (Some(email), Some(ses)) => crate::email::advice(email, ses),
        _ => Vec::new(),
    };
    match output {
        OutputFormat::Json => {
            // What the email step made, read back (the plan's view is stale).
            let email = match ctx.settings.email {
                Some(_) => crate::email::report(ctx, &crate::email::observe(ctx).await?),
                None => None,
            };
            print_json(&UpReport {
                plan: report,
                applied: Some(applied),
                verify: verify_report,
                email,
            })
        }
        OutputFormat::Text => {
            println!(
                "Deployment {:?} is up in {}.",
                ctx.settings.name, ctx.settings.region
            );
            println!("  instance:    {}", applied.instance_id);
            println!("  data volume: {}", applied.data_volume_id);
            if let Some(ip) = &applied.public_ip {
                println!("  public IP:   {ip}");
            }
            if let Some(dns) = &applied.public_dns {
                println!("  public DNS:  {dns}");
            }
            if let Some(record) = &applied.dns_record {
                let how = match record.managed_by {
                    "route53" => "in Route 53",
                    _ => "publish it yourself",
                };
                println!(
                    "  DNS record:  {} {} {} ({how})",
                    record.name, record.kind, record.value
                );
            }
            if letsencrypt_deferred {
                println!("  HTTPS:       Let's Encrypt is off until DNS points at the box; run glbox up again then");
            }
            if with_bootstrap {
                if let Some(url) = &url {
                    println!("  GitLab:      {url} (user root)");
                }
                println!("  password:    glbox status --show-password");
            }
            if let Some(email) = &ctx.settings.email {
                println!(
                    "  email:       from {} through {}:{}",
                    email.from,
                    email.smtp_host(),
                    email.port
                );
            }
            println!("  shell:       {}", shell_command(ctx, &applied));
            println!(
                "  cost:        {} (glbox plan itemizes it)",
                crate::cost::estimate(ctx.settings).monthly_summary()
            );
            if let Some(report) = &verify_report {
                print!("{}", crate::verify::table(report));
            }
            for line in &email_advice {
                println!("Email: {line}");
            }
            println!("Tear down with: glbox down");
        }
    }
    match verify_error {
        Some(e) => Err(e),
        None if healthy => Ok(()),
        None => Err(Error::Unhealthy),
    }
}

/// SES's view of the email domain after `up` changed things: waited for
/// with `--wait-email`, else read once. `None` with email off.
async fn email_state(
    ctx: &Ctx<'_>,
    wait: bool,
) -> Result<Option<crate::email::identity::Observed>> {
    let Some(email) = &ctx.settings.email else {
        return Ok(None);
    };
    if wait {
        return Ok(Some(crate::email::wait_verified(ctx, EMAIL_WAIT).await?));
    }
    Ok(Some(crate::email::identity::observe(ctx, email).await?))
}

fn email_facts(
    ctx: &Ctx<'_>,
    ses: Option<&crate::email::identity::Observed>,
    may_send: bool,
) -> Option<crate::verify::EmailFacts> {
    let email = ctx.settings.email.as_ref()?;
    Some(crate::email::facts(email, ses?, may_send))
}

/// The running instance of the deployment and how to reach it.
struct RunningBox {
    instance: crate::resources::instance::Instance,
    url: String,
    /// The public address SSH connects to (Elastic IP first).
    address: Option<String>,
    data_volume_id: Option<String>,
}

fn running_box(ctx: &Ctx<'_>, observed: &plan::Observed) -> Result<RunningBox> {
    let holder = observed
        .data_volumes
        .iter()
        .find_map(|v| v.attached_to.as_deref());
    let (primary, _) = crate::resources::instance::pick_primary(observed.live_instances(), holder);
    let instance = primary.filter(|i| i.state == "running").ok_or_else(|| {
        Error::Unverifiable("the deployment has no running instance: run glbox up".into())
    })?;
    let elastic_ip = observed
        .addresses
        .iter()
        .find(|a| a.instance_id.as_deref() == Some(instance.id.as_str()))
        .map(|a| a.public_ip.clone());
    let host = instance
        .public_dns
        .clone()
        .or_else(|| instance.public_ip.clone());
    let url = crate::gitlab_rb::external_url(ctx.settings, elastic_ip.as_deref(), host.as_deref())
        .ok_or_else(|| {
            Error::Unverifiable("the instance has no address: set gitlab.external_url".into())
        })?;
    let data_volume_id = observed
        .data_volumes
        .iter()
        .find(|v| v.attached_to.as_deref() == Some(instance.id.as_str()))
        .map(|v| v.id.clone());
    Ok(RunningBox {
        address: elastic_ip.or_else(|| instance.public_ip.clone()),
        instance,
        url,
        data_volume_id,
    })
}

/// `glbox verify`: exit 0 healthy, 1 unhealthy, 2 could not check.
async fn run_verify(ctx: &Ctx<'_>, output: OutputFormat, deep: bool) -> Result<()> {
    let unverifiable = |e: Error| match e {
        Error::Unverifiable(_) => e,
        other => Error::Unverifiable(other.to_string()),
    };
    let observed = plan::observe(ctx).await.map_err(unverifiable)?;
    warn_email_problem(ctx, &observed);
    let target = running_box(ctx, &observed)?;
    let transport =
        crate::remote::Transport::for_instance(ctx, &target.instance.id, target.address.as_deref())
            .await
            .map_err(unverifiable)?;
    transport.wait_ready(ctx).await.map_err(unverifiable)?;
    // The test mail only with --deep: a plain verify may run from cron.
    let facts = email_facts(ctx, observed.email.ses.as_ref(), deep);
    let report = crate::verify::run(
        ctx,
        &transport,
        &target.url,
        ctx.settings.verify_timeout,
        deep,
        facts.as_ref(),
    )
    .await?;
    let mut report = report;
    dns_record::check_dns(
        ctx,
        observed.dns_record.as_ref(),
        target.address.as_deref(),
        &mut report,
    )
    .await;
    match output {
        OutputFormat::Json => print_json(&report),
        OutputFormat::Text => print!("{}", crate::verify::table(&report)),
    }
    if report.healthy {
        Ok(())
    } else {
        Err(Error::Unhealthy)
    }
}

/// `glbox email dns`: the records, from what SES reports now.
async fn run_email_dns(ctx: &Ctx<'_>, output: OutputFormat, zone_file: bool) -> Result<()> {
    let email = ctx.settings.email.as_ref().expect("checked before AWS");
    let ses = crate::email::identity::observe(ctx, email).await?;
    let identity = ses.identity.as_ref().ok_or_else(|| {
        Error::Refused(format!(
            "SES ({}) has no identity for {} yet, so there are no records to publish\n  fix: run glbox up (it creates the identity), then glbox email dns",
            email.ses_region, email.domain
        ))
    })?;
    let records = crate::email::dns::records(identity);
    match (output, zone_file) {
        (OutputFormat::Json, _) => print_json(&records),
        (OutputFormat::Text, true) => print!("{}", crate::email::dns::zone_file(&records)),
        (OutputFormat::Text, false) => {
            println!(
                "DNS records for {} (SES {}: verification {}, DKIM {}):",
                email.domain,
                email.ses_region,
                identity.verification.to_lowercase(),
                identity.dkim_status.to_lowercase()
            );
            print!("{}", crate::email::dns::table(&records));
            println!("As zone-file lines: glbox email dns --zone-file");
        }
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct RotateReport {
    new_access_key_id: String,
    deleted_access_key_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<crate::verify::Report>,
}

/// `glbox email rotate`: a new key and password; the box is brought to them
/// (then, with a test recipient, a test mail proves they work); only then
/// is the old key deleted, so mail never stops in between.
async fn run_email_rotate(ctx: &Ctx<'_>, output: OutputFormat, yes: bool) -> Result<()> {
    use crate::email::credentials;
    let email = ctx.settings.email.as_ref().expect("checked before AWS");
    let observed = plan::observe(ctx).await?;
    let user = observed
        .email
        .credentials
        .user
        .as_ref()
        .filter(|u| u.owned)
        .ok_or_else(|| {
            Error::Refused(format!(
                "there is no SMTP user {} to rotate\n  fix: run glbox up first",
                credentials::user_name(ctx)
            ))
        })?;
    let old: Vec<String> = user.keys.iter().map(|k| k.id.clone()).collect();
    // Two keys: a change is half-way (the box may still use either), and
    // IAM has no room for a third. `up` finishes it safely.
    if old.len() >= 2 {
        return Err(Error::Refused(format!(
            "{} has two access keys ({}): an earlier change is not finished, and IAM allows no third\n  fix: run glbox up (it brings GitLab to the current key and deletes the other), then glbox email rotate",
            user.name,
            old.join(", ")
        )));
    }
    // The box gets the whole configuration again: only the key may differ.
    let plan = plan::make(ctx, &observed, true).await?;
    if !plan.is_noop() {
        return Err(Error::Refused(
            "the deployment has changes waiting (glbox plan shows them), and rotating would apply them to the box unasked\n  fix: run glbox up, then glbox email rotate".into(),
        ));
    }
    if output == OutputFormat::Text && preview_wanted(ctx.ui, yes) {
        println!(
            "Rotating the SMTP key of {}: a new access key, GitLab updated, then {} deleted.",
            user.name,
            if old.is_empty() {
                "nothing".to_string()
            } else {
                old.join(", ")
            }
        );
    }
    confirm(ctx.ui, "Rotate the SMTP key?", "rotating the SMTP key", yes)?;
    // The lease after the question (a refusal changes nothing); the key
    // checks above are made again under it.
    let lease = crate::lease::acquire(ctx, "email rotate").await?;
    let result = async {
        let observed = plan::observe(ctx).await?;
        let keys_now: Vec<String> = observed
            .email
            .credentials
            .user
            .as_ref()
            .map(|u| u.keys.iter().map(|k| k.id.clone()).collect())
            .unwrap_or_default();
        if keys_now != old {
            return Err(Error::Refused(
                "another glbox run changed the SMTP key meanwhile\n  fix: run glbox email rotate again".into(),
            ));
        }
        let user = &user.name;

    let stored = observed
        .parameters
        .contains(&credentials::password_parameter(ctx));
    let new = credentials::new_key(ctx, email, user, stored).await?;
    let mut verify_report = None;
    let mut keep_old = false;
    match running_box(ctx, &observed) {
        Ok(target) => {
            let data_volume_id = target.data_volume_id.clone().ok_or_else(|| {
                Error::Refused(format!(
                    "the instance {} has no data volume attached\n  fix: run glbox up, then glbox email rotate",
                    target.instance.id
                ))
            })?;
            let root_password_parameter = crate::resources::parameters::root_password_name(ctx);
            let script_target = crate::bootstrap::Target {
                data_volume_id: &data_volume_id,
                external_url: &target.url,
                smtp_username: Some(&new.access_key_id),
                root_password_parameter: &root_password_parameter,
            };
            crate::bootstrap::apply(
                ctx,
                &target.instance,
                target.address.as_deref(),
                &script_target,
            )
            .await?;
            let transport = crate::remote::Transport::for_instance(
                ctx,
                &target.instance.id,
                target.address.as_deref(),
            )
            .await?;
            let ses = crate::email::identity::observe(ctx, email).await?;
            let facts = crate::email::facts(email, &ses, true);
            let report = crate::verify::run(
                ctx,
                &transport,
                &target.url,
                ctx.settings.verify_timeout,
                false,
                Some(&facts),
            )
            .await?;
            if !report.healthy {
                print!("{}", crate::verify::table(&report));
                return Err(Error::Refused(format!(
                    "GitLab is not healthy with the new key {}; the old key{} kept so you can look into it\n  fix: correct the cause above, then run glbox up (it deletes the old key once GitLab is updated)",
                    new.access_key_id,
                    if old.len() == 1 { " is" } else { "s are" }
                )));
            }
            verify_report = Some(report);
        }
        Err(_) if !observed.live_instances().is_empty() => {
            // A stopped box still has the old key: it keeps working until
            // `up` brings the box to the new one (and deletes the old).
            ctx.ui.warn("the deployment's instance is not running: glbox up starts it, gives it the new key, and then deletes the old key");
            keep_old = true;
        }
        Err(_) => ctx
            .ui
            .warn("the deployment has no instance: it gets the new key at the next glbox up"),
    }
    let retired: Vec<String> = old
        .into_iter()
        .filter(|k| *k != new.access_key_id && !keep_old)
        .collect();
    let still_there: Vec<String> = {
        let now = credentials::observe(ctx).await?;
        now.user
            .map(|u| u.keys.into_iter().map(|k| k.id).collect())
            .unwrap_or_default()
    };
    let retired: Vec<String> = retired
        .into_iter()
        .filter(|k| still_there.contains(k))
        .collect();
    credentials::retire(ctx, &retired).await?;
    match output {
        OutputFormat::Json => print_json(&RotateReport {
            new_access_key_id: new.access_key_id,
            deleted_access_key_ids: retired,
            verify: verify_report,
        }),
        OutputFormat::Text => {
            if let Some(report) = &verify_report {
                print!("{}", crate::verify::table(report));
            }
            println!(
                "SMTP key rotated: GitLab uses {}; deleted {}.",
                new.access_key_id,
                if retired.is_empty() {
                    "no old key".to_string()
                } else {
                    retired.join(", ")
                }
            );
        }
    }
    Ok(())
    }
    .await;
    crate::lease::released(ctx, lease, result).await
}

/// `glbox doctor`: exit 0 when nothing fails (warnings allowed), else 1.
async fn run_doctor(ctx: &Ctx<'_>, output: OutputFormat) -> Result<()> {
    let findings = crate::doctor::run(ctx).await;
    let failed = findings
        .iter()
        .filter(|f| f.verdict == crate::doctor::Verdict::Fail)
        .count();
    match output {
        OutputFormat::Json => print_json(&findings),
        OutputFormat::Text => {
            print!("{}", crate::doctor::table(&findings));
            if failed == 0 {
                println!("Ready for glbox up.");
            }
        }
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "{failed} check(s) failed: fix them (see above), then run glbox doctor again"
        )))
    }
}

/// The command that opens a shell on the box.
fn shell_command(ctx: &Ctx<'_>, applied: &apply::Applied) -> String {
    match ctx.settings.ssh_access() {
        None => format!(
            "aws ssm start-session --region {} --target {}",
            ctx.settings.region, applied.instance_id
        ),
        Some(ssh) => {
            let host = ctx
                .settings
                .remote_host
                .clone()
                .or_else(|| applied.public_ip.clone())
                .unwrap_or_else(|| "<address>".into());
            let user = ssh.user.clone().unwrap_or_else(|| {
                match ctx.settings.os {
                    crate::config::Os::Ubuntu2404 => "ubuntu",
                    crate::config::Os::Al2023 => "ec2-user",
                }
                .to_string()
            });
            let key = match &ssh.key {
                crate::config::SshKeySource::Generated => {
                    crate::paths::generated_key(&ctx.settings.name)
                }
                crate::config::SshKeySource::File { path, .. } => path.with_extension(""),
            };
            format!(
                "ssh -i {} -p {} {user}@{host}",
                key.display(),
                ctx.settings.remote_port
            )
        }
    }
}

/// SES or Route 53 could not be read: said, and the rest goes on.
fn warn_email_problem(ctx: &Ctx<'_>, observed: &plan::Observed) {
    if let Some(problem) = &observed.email.problem {
        ctx.ui
            .warn(&format!("the email state could not be read: {problem}"));
    }
}

async fn run_status(ctx: &Ctx<'_>, output: OutputFormat, show_password: bool) -> Result<()> {
    let observed = plan::observe(ctx).await?;
    warn_email_problem(ctx, &observed);
    let mut report = status::status(ctx, &observed);
    if show_password {
        report.root_password = Some(crate::resources::parameters::root_password(ctx).await?);
    }
    match output {
        OutputFormat::Json => print_json(&report),
        OutputFormat::Text => {
            println!(
                "Deployment {:?} in {}: {}",
                report.deployment,
                report.region,
                if report.complete {
                    "complete"
                } else {
                    "incomplete (run glbox up)"
                }
            );
            for r in &report.resources {
                println!(
                    "  {:<17} {:<24} {}",
                    r.resource,
                    r.id.as_deref().unwrap_or("-"),
                    r.state
                );
            }
            if let Some(ip) = &report.public_ip {
                println!("  public IP:  {ip}");
            }
            if let Some(dns) = &report.public_dns {
                println!("  public DNS: {dns}");
            }
            if let Some(ip) = &report.private_ip {
                println!("  private IP: {ip}");
            }
            if let Some(url) = &report.url {
                println!("  URL:        {url}");
            }
            if let Some(email) = &report.email {
                print_email_status(email);
            }
            if let Some(password) = &report.root_password {
                println!("  root password: {password}");
            }
        }
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct DownReport {
    deployment: String,
    region: String,
    resources: Vec<down::DownItem>,
    outcome: Option<down::DownOutcome>,
}

async fn run_down(
    ctx: &Ctx<'_>,
    output: OutputFormat,
    yes: bool,
    options: DownOptions,
) -> Result<()> {
    let mut observed = plan::observe(ctx).await?;
    down::decide_email_identity(ctx, &mut observed, options).await?;
    warn_email_problem(ctx, &observed);
    let items = down::items(ctx, &observed, options);
    let mut report = DownReport {
        deployment: ctx.settings.name.clone(),
        region: ctx.settings.region.clone(),
        resources: items,
        outcome: None,
    };
    let anything_to_remove = report
        .resources
        .iter()
        .any(|i| i.action != "keep" && !i.action.starts_with("skip"));
    if !anything_to_remove {
        match output {
            OutputFormat::Json => print_json(&report),
            OutputFormat::Text => {
                println!(
                    "Deployment {:?} in {} has nothing to remove.",
                    ctx.settings.name, ctx.settings.region
                );
                print_kept(&report.resources);
            }
        }
        return Ok(());
    }
    if output == OutputFormat::Text && preview_wanted(ctx.ui, yes) {
        println!(
            "Removing deployment {:?} in {}:",
            ctx.settings.name, ctx.settings.region
        );
        for item in &report.resources {
            println!("  {:<17} {:<24} {}", item.resource, item.id, item.action);
        }
    }
    confirm(
        ctx.ui,
        "Remove these resources?",
        "removing these resources",
        yes,
    )?;
    let lease = crate::lease::acquire(ctx, "down").await?;
    let result = async {
        // Under the lease, what is there now (another run may have changed it).
        let mut observed = plan::observe(ctx).await?;
        down::decide_email_identity(ctx, &mut observed, options).await?;
        ctx.ui.start_phases(down::phases(ctx, &observed, options));
        down::down(ctx, &observed, options).await
    }
    .await;
    let outcome = crate::lease::released(ctx, lease, result).await?;
    ctx.ui.end_phases();
    match output {
        OutputFormat::Json => {
            report.outcome = Some(outcome);
            print_json(&report);
        }
        OutputFormat::Text => {
            println!("Removed {} resource(s).", outcome.removed.len());
            for id in &outcome.kept_volumes {
                println!("Kept data volume {id} (tagged with the deployment; `glbox up` re-attaches it, `glbox down --delete-data` removes it).");
            }
            for id in &outcome.snapshots {
                println!("Kept final snapshot {id} (tagged with the deployment; delete it when no longer needed).");
            }
            if let Some(domain) = &outcome.kept_identity {
                println!("Kept the SES identity {domain} (other senders may use it; `glbox down --delete-email-identity` removes it).");
            }
        }
    }
    Ok(())
}

fn print_email_status(email: &crate::email::Report) {
    let identity = email
        .identity
        .as_ref()
        .map_or("no SES identity".to_string(), |i| {
            format!(
                "verification {}, DKIM {}",
                i.verification.to_lowercase(),
                i.dkim_status.to_lowercase()
            )
        });
    println!(
        "  email:      {} in SES {}: {identity}",
        email.domain, email.ses_region
    );
    if email.sandbox == Some(true) {
        println!("              SES sandbox: only verified recipients, 200 a day (request production access in the SES console)");
    }
    if email
        .identity
        .as_ref()
        .is_some_and(|i| !(i.verified() && i.dkim_verified()))
    {
        println!("              DNS records to publish: glbox email dns");
    }
}

fn print_kept(items: &[down::DownItem]) {
    for item in items.iter().filter(|i| i.action == "keep") {
        println!("  kept {} {}", item.resource, item.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names_are_the_lowercase_variant() {
        let name = |args: &[&str]| command_name(&Cli::parse_from(args).command);
        assert_eq!(name(&["glbox", "up", "--yes"]), "up");
        assert_eq!(name(&["glbox", "email", "rotate"]), "email");
        assert_eq!(name(&["glbox", "render", "user-data"]), "render");
        assert_eq!(name(&["glbox", "doctor"]), "doctor");
    }
}
