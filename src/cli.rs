//! The command line: parse, load settings (no AWS call before they are
//! valid), then plan / up / status / down.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::{IpNet, Ipv4Net};

use crate::aws::{self, ConnectOptions};
use crate::config::{self, ConfigError, Settings, Sources};
use crate::down::{self, DownOptions};
use crate::error::{Error, Result};
use crate::plan;
use crate::resources::{Action, Ctx};
use crate::ui::{Ui, Verbosity};
use crate::{apply, caller_ip, status};

const EXAMPLES: &str = "\
Examples:
  glbox plan                          show what `up` would change
  glbox up                            create or converge everything, GitLab included
  glbox up --no-bootstrap --yes       create or converge the AWS side, no prompt
  glbox status --output json          the deployment's resources as JSON
  glbox verify [--deep]               is GitLab healthy? (exit 0 yes, 1 no, 2 could not check)
  glbox down                          remove the deployment, keep the data volume
  glbox down --delete-data            also delete the data volume (after a final snapshot)
  glbox render user-data              the cloud-config the instance gets at launch
  glbox render gitlab-rb              /etc/gitlab/gitlab.rb as glbox writes it

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
    Plan(UpArgs),
    /// Create or converge the deployment.
    Up(UpArgs),
    /// Show the deployment's resources, addresses and URL.
    Status(StatusArgs),
    /// Remove everything the deployment owns (the data volume is kept unless --delete-data).
    Down(DownArgs),
    /// Check that GitLab works: health endpoints, services, version, data volume, swap.
    Verify(VerifyArgs),
    /// Print what glbox would send to the instance, for review (changes nothing).
    Render {
        #[arg(value_enum)]
        what: RenderWhat,
    },
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
}

/// Runs the command; the caller turns an error into a message and status.
pub async fn run(cli: Cli) -> Result<()> {
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (_, true) => Verbosity::Verbose,
        _ => Verbosity::Normal,
    };
    let ui = Ui::new(verbosity);
    let sources = Sources::from_process(cli.config.clone(), cli.region.clone());
    let mut settings = config::load(&sources)?;
    if matches!(cli.command, Command::Plan(_) | Command::Up(_)) {
        resolve_ssh_cidrs(&mut settings, &ui).await?;
    }
    let aws = aws::connect(&ConnectOptions {
        region: settings.region.clone(),
        profile: cli.profile.clone(),
        endpoint_url: cli.endpoint_url.clone(),
    })
    .await;
    let ctx = Ctx::new(&aws, &settings, &ui);
    match &cli.command {
        Command::Plan(args) => run_plan(&ctx, cli.output, !args.no_bootstrap).await,
        Command::Up(args) => run_up(&ctx, cli.output, cli.yes, !args.no_bootstrap).await,
        Command::Status(args) => run_status(&ctx, cli.output, args.show_password).await,
        Command::Down(args) => {
            let options = DownOptions {
                delete_data: args.delete_data,
                snapshot: !args.no_snapshot,
            };
            run_down(&ctx, cli.output, cli.yes, options).await
        }
        Command::Render { what } => run_render(&ctx, *what).await,
        Command::Verify(args) => run_verify(&ctx, cli.output, args.deep).await,
    }
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
    let text = match what {
        RenderWhat::UserData => crate::userdata::render(ctx.settings, &volume_id),
        RenderWhat::Bootstrap => crate::bootstrap::render(
            ctx.settings,
            &crate::bootstrap::Target {
                data_volume_id: &volume_id,
                external_url: &external_url,
            },
        ),
        RenderWhat::GitlabRb => crate::gitlab_rb::render(ctx.settings, &external_url),
    };
    print!("{text}");
    Ok(())
}

/// SSH mode with no `ssh_cidrs`: allow the caller's own address only.
async fn resolve_ssh_cidrs(settings: &mut Settings, ui: &Ui) -> Result<()> {
    let Some(ssh) = settings.ssh.as_mut().filter(|s| s.cidrs.is_empty()) else {
        return Ok(());
    };
    match caller_ip::detect().await {
        Ok(ip) => {
            let net = IpNet::V4(Ipv4Net::new(ip, 32).expect("32 is a valid IPv4 prefix"));
            ui.info(&format!("SSH will be allowed from your address {net} only"));
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

fn print_json(value: &impl serde::Serialize) {
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
    let report = plan.report(ctx);
    match output {
        OutputFormat::Json => print_json(&report),
        OutputFormat::Text => print_plan(&report),
    }
    Ok(())
}

/// Asks before changing anything, unless `--yes`. Without a terminal to ask
/// on, refuses rather than guessing.
fn confirm(question: &str, what: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(Error::Refused(format!(
            "{what} needs confirmation, and there is no terminal to ask on: nothing was changed\n  fix: review the list above, then re-run with --yes"
        )));
    }
    let agreed = dialoguer::Confirm::new()
        .with_prompt(question)
        .default(false)
        .interact()
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
}

async fn run_up(
    ctx: &Ctx<'_>,
    output: OutputFormat,
    yes: bool,
    with_bootstrap: bool,
) -> Result<()> {
    let observed = plan::observe(ctx).await?;
    let plan = plan::make(ctx, &observed, with_bootstrap).await?;
    let report = plan.report(ctx);
    if plan.is_noop() {
        match output {
            OutputFormat::Json => print_json(&UpReport {
                plan: report,
                applied: None,
                verify: None,
            }),
            OutputFormat::Text => println!(
                "Deployment {:?} in {} is up to date: nothing to do.",
                ctx.settings.name, ctx.settings.region
            ),
        }
        return Ok(());
    }
    if output == OutputFormat::Text {
        print_plan(&report);
    }
    confirm("Apply these changes?", "applying this plan", yes)?;
    let applied = apply::apply(ctx, &plan).await?;
    let mut verify_report = None;
    let mut verify_error = None;
    let url = crate::gitlab_rb::external_url(
        ctx.settings,
        applied.elastic_ip.as_deref(),
        applied
            .public_dns
            .as_deref()
            .or(applied.public_ip.as_deref()),
    );
    if with_bootstrap {
        let url = url.clone().ok_or_else(|| {
            Error::Refused(format!(
                "instance {} has no public address for GitLab's URL\n  fix: set gitlab.external_url, or network.elastic_ip = true",
                applied.instance_id
            ))
        })?;
        let target = crate::bootstrap::Target {
            data_volume_id: &applied.data_volume_id,
            external_url: &url,
        };
        crate::bootstrap::apply(
            ctx,
            &applied.instance,
            applied.public_ip.as_deref(),
            &target,
        )
        .await?;
        let transport = crate::remote::Transport::for_instance(
            ctx,
            &applied.instance_id,
            applied.public_ip.as_deref(),
        )
        .await?;
        // Whatever the checks say, the summary of what exists comes first.
        match crate::verify::run(ctx, &transport, &url, ctx.settings.verify_timeout, false).await {
            Ok(report) => verify_report = Some(report),
            Err(e) => verify_error = Some(e),
        }
    }
    let healthy = verify_report.as_ref().is_none_or(|r| r.healthy);
    match output {
        OutputFormat::Json => print_json(&UpReport {
            plan: report,
            applied: Some(applied),
            verify: verify_report,
        }),
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
            if with_bootstrap {
                if let Some(url) = &url {
                    println!("  GitLab:      {url} (user root)");
                }
                println!("  password:    glbox status --show-password");
            }
            println!("  shell:       {}", shell_command(ctx, &applied));
            if let Some(report) = &verify_report {
                print!("{}", crate::verify::table(report));
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

/// `glbox verify`: exit 0 healthy, 1 unhealthy, 2 could not check.
async fn run_verify(ctx: &Ctx<'_>, output: OutputFormat, deep: bool) -> Result<()> {
    let unverifiable = |e: Error| match e {
        Error::Unverifiable(_) => e,
        other => Error::Unverifiable(other.to_string()),
    };
    let observed = plan::observe(ctx).await.map_err(unverifiable)?;
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
    let address = elastic_ip.or_else(|| instance.public_ip.clone());
    let transport = crate::remote::Transport::for_instance(ctx, &instance.id, address.as_deref())
        .await
        .map_err(unverifiable)?;
    transport.wait_ready(ctx).await.map_err(unverifiable)?;
    let report =
        crate::verify::run(ctx, &transport, &url, ctx.settings.verify_timeout, deep).await?;
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

/// The command that opens a shell on the box.
fn shell_command(ctx: &Ctx<'_>, applied: &apply::Applied) -> String {
    match &ctx.settings.ssh {
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

async fn run_status(ctx: &Ctx<'_>, output: OutputFormat, show_password: bool) -> Result<()> {
    let observed = plan::observe(ctx).await?;
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
    let observed = plan::observe(ctx).await?;
    let items = down::items(&observed, options);
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
    if output == OutputFormat::Text {
        println!(
            "Removing deployment {:?} in {}:",
            ctx.settings.name, ctx.settings.region
        );
        for item in &report.resources {
            println!("  {:<17} {:<24} {}", item.resource, item.id, item.action);
        }
    }
    confirm("Remove these resources?", "removing these resources", yes)?;
    let outcome = down::down(ctx, &observed, options).await?;
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
        }
    }
    Ok(())
}

fn print_kept(items: &[down::DownItem]) {
    for item in items.iter().filter(|i| i.action == "keep") {
        println!("  kept {} {}", item.resource, item.id);
    }
}
