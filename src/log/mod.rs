//! The debug log of every run: a file in `<state dir>/logs/` (see
//! [`crate::paths`]) with every step at the most detailed level, UTC
//! timestamps, and each AWS operation with its outcome. On failure `main`
//! prints its path, also with `-q`.
//!
//! Secrets never reach it. glbox's own events are logged at every level;
//! the AWS SDK's at debug at most: its trace level prints whole requests
//! and responses and signing input, and with `LOG_SENSITIVE_BODIES=true`
//! in the environment even the bodies it marks sensitive (decrypted
//! parameters, new access keys). Other crates (SSH, TLS, HTTP) log at info
//! at most. On top of that, every secret glbox handles is registered with
//! [`redact::secret`] and masked in each line before it is written
//! (tests/it/secrets.rs searches the logs of a full run for each secret).

pub mod aws_calls;
pub mod file;
pub mod redact;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::ui::{Ui, Verbosity};

static PATH: OnceLock<PathBuf> = OnceLock::new();

/// This run's log file, once [`start`] made it.
pub fn path() -> Option<&'static Path> {
    PATH.get().map(PathBuf::as_path)
}

/// What goes to the file: everything of glbox's, the SDK's debug detail
/// (attempts, retries, timeouts, credentials chain), only info of the rest.
fn file_filter() -> Targets {
    Targets::new()
        .with_target("glbox", LevelFilter::TRACE)
        .with_target("aws_smithy_runtime", LevelFilter::DEBUG)
        .with_target("aws_smithy_http_client", LevelFilter::DEBUG)
        .with_target("aws_runtime", LevelFilter::DEBUG)
        .with_target("aws_config", LevelFilter::DEBUG)
        .with_default(LevelFilter::INFO)
}

/// Opens this run's log and sends every tracing event there (and, with
/// `-v`, each AWS operation to the terminal). `command` names the file
/// (`up`, `status`, ...). Without a writable state folder glbox warns and
/// runs on without a log.
pub fn start(ui: &Ui, command: &str) {
    let dir = file::dir();
    let file_layer = match file::create(&dir, command) {
        Ok((path, log)) => {
            let _ = PATH.set(path);
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(file::Writer::new(log))
                    .with_ansi(false)
                    .with_target(true)
                    .with_filter(file_filter()),
            )
        }
        Err(e) => {
            ui.warn(&format!(
                "no debug log for this run: cannot write in {} ({e})",
                dir.display()
            ));
            None
        }
    };
    let terminal_layer =
        (ui.verbosity() >= Verbosity::Verbose).then(|| AwsCallsOnTerminal { ui: ui.clone() });
    // Only one subscriber per process; a second start changes nothing.
    let _ = tracing_subscriber::registry()
        .with(file_layer)
        .with(terminal_layer)
        .try_init();
    log_panics();
    let args: Vec<String> = std::env::args().collect();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        cwd = %std::env::current_dir().unwrap_or_default().display(),
        "glbox started: {}",
        args.join(" ")
    );
}

/// A panic is a failure too: into the log, and the log's path shown.
fn log_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!("panic: {info}");
        default(info);
        print_path();
    }));
}

/// Tells the user where this run's log is (stderr, whatever the verbosity).
pub fn print_path() {
    if let Some(log) = path() {
        eprintln!("The full log of this run: {}", log.display());
    }
}

/// Records how the run ended.
pub fn finished(outcome: Result<(), &crate::error::Error>) {
    match outcome {
        Ok(()) => tracing::info!("glbox finished: success"),
        Err(err) => tracing::error!(exit_code = err.exit_code(), "glbox failed: {err}"),
    }
}

/// With `-v`, each AWS operation is shown on the terminal too.
struct AwsCallsOnTerminal {
    ui: Ui,
}

impl<S: tracing::Subscriber> Layer<S> for AwsCallsOnTerminal {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != aws_calls::TARGET {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        self.ui.show_detail(&format!("  aws {}", message.0));
    }
}

/// The `message` field of an event.
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}
