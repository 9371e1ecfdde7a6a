//! The command line: the clap types and the one dispatch to
//! [`crate::commands`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::app::{App, GlobalArgs};
use crate::commands;
use crate::error::Result;
use crate::help;
use crate::ui::Ui;

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
    #[command(flatten)]
    pub globals: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
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
    /// Take a snapshot of the data volume and a GitLab backup to S3 now, and wait for both.
    #[command(after_help = help::BACKUP)]
    Backup,
    /// List the deployment's snapshots and S3 backups: when, how big, complete or not.
    #[command(after_help = help::BACKUPS)]
    Backups,
    /// Restore GitLab from a snapshot (a new data volume swapped in) or from an S3 backup.
    #[command(after_help = help::RESTORE)]
    Restore(RestoreArgs),
    /// Secrets your gitlab.extra_config reads, kept in SSM Parameter Store.
    #[command(subcommand, after_help = help::SECRET)]
    Secret(SecretCommand),
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

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RestoreArgs {
    /// A snapshot id from `glbox backups` (snap-...): a new data volume made from it replaces the current one, which is kept.
    #[arg(long)]
    pub snapshot: Option<String>,
    /// A backup name from `glbox backups` (such as 1764644400_2025_12_02_18.5.1): GitLab's restore from the S3 bucket.
    #[arg(long)]
    pub backup: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a secret for gitlab.extra_config; the value is read from standard input, never from the command line.
    #[command(after_help = help::SECRET_SET)]
    Set {
        /// The secret's name (a-z, 0-9, '_'), as gitlab.extra_config reads it.
        name: String,
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
    /// Replace a gitlab.rb that was changed by hand on the box (a copy is kept beside it) instead of stopping.
    #[arg(long)]
    pub replace_gitlab_rb: bool,
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
    /// Also delete the backups: the backup bucket with every backup in it, and the deployment's snapshots.
    #[arg(long)]
    pub delete_backups: bool,
}

/// Runs the command; the caller turns an error into a message and status.
pub async fn run(cli: Cli) -> Result<()> {
    if let Command::Completions { shell } = cli.command {
        commands::completions::print(shell);
        return Ok(());
    }
    let ui = Ui::new(cli.globals.verbosity());
    crate::log::start(&ui, &command_name(&cli.command));
    let app = App::new(&cli.globals, ui);
    let result = dispatch(&app, cli.command).await;
    app.ui.end_phases();
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

async fn dispatch(app: &App, command: Command) -> Result<()> {
    use commands::lab;
    match command {
        Command::Plan(args) => app.emit(commands::plan::run(app, &args).await?),
        Command::Up(args) => match commands::up::run(app, &args).await? {
            Some(report) => app.emit(report),
            None => Ok(()),
        },
        Command::Status(args) => app.emit(commands::status::run(app, &args).await?),
        Command::Down(args) => app.emit(commands::down::run(app, &args).await?),
        Command::Verify(args) => app.emit(commands::verify::run(app, &args).await?),
        Command::Render { what } => app.emit(commands::render::run(app, what).await?),
        Command::Email(EmailCommand::Dns { zone_file }) => {
            app.emit(commands::email_dns::run(app, zone_file).await?)
        }
        Command::Email(EmailCommand::Rotate) => app.emit(commands::email_rotate::run(app).await?),
        Command::Doctor => app.emit(commands::doctor::run(app).await?),
        Command::Backup => app.emit(commands::backup::run(app).await?),
        Command::Backups => app.emit(commands::backups::run(app).await?),
        Command::Restore(RestoreArgs {
            snapshot: Some(snapshot),
            ..
        }) => app.emit(commands::restore_snapshot::run(app, &snapshot).await?),
        Command::Restore(RestoreArgs {
            backup: Some(backup),
            ..
        }) => app.emit(commands::restore_backup::run(app, &backup).await?),
        Command::Restore(_) => unreachable!("clap requires --snapshot or --backup"),
        Command::Secret(SecretCommand::Set { name }) => {
            app.emit(commands::secret::set(app, &name).await?)
        }
        Command::Lab(LabCommand::Up(args)) => app.emit(lab::up::run(app, &args).await?),
        Command::Lab(LabCommand::Status) => app.emit(lab::status::run(app).await?),
        Command::Lab(LabCommand::Down) => app.emit(lab::down::run(app).await?),
        Command::Lab(LabCommand::Reap) => app.emit(lab::reap::run(app).await?),
        Command::Init(args) => commands::init::run(app, &args).await,
        Command::Completions { .. } => unreachable!("printed before any set-up"),
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
