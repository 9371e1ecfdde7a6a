//! What glbox tells the person running it while it works. Progress goes to
//! stderr (results go to stdout, so `glbox ... > file` keeps only them).
//!
//! Two ways to show it:
//! - live, on a terminal: the phase of `up` (`[3/9] instance`) with a
//!   spinner and the elapsed time, and under it what glbox is waiting for;
//! - plain lines otherwise, stamped with the UTC time and the time since
//!   the start when stderr is not a terminal (a CI log, a pipe). `NO_COLOR`
//!   or `TERM=dumb` also mean plain lines: no ANSI escape at all.
//!
//! `-q` shows only warnings (errors are printed by `main`), `-v` adds
//! detail. Everything shown, and the detail not shown, also goes to this
//! run's debug log (see [`crate::log`]).

use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// How progress reaches the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Display {
    /// indicatif bars on a terminal that takes escapes.
    Live,
    /// One line per event; `stamped` when stderr is not a terminal.
    Plain { stamped: bool },
}

impl Display {
    fn detect() -> Display {
        let terminal = std::io::stderr().is_terminal();
        if terminal && !escapes_forbidden() {
            Display::Live
        } else {
            Display::Plain { stamped: !terminal }
        }
    }
}

/// `NO_COLOR` (any non-empty value, see no-color.org) or a dumb terminal.
fn escapes_forbidden() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
        || std::env::var("TERM").is_ok_and(|t| t == "dumb")
}

#[derive(Debug, Clone)]
pub struct Ui {
    verbosity: Verbosity,
    display: Display,
    started: Instant,
    /// Live display only: the bars, drawn together below the log lines.
    bars: MultiProgress,
    phases: Arc<Mutex<Phases>>,
}

/// The named phases of a long command and the bar that shows them.
#[derive(Debug, Default)]
struct Phases {
    names: Vec<&'static str>,
    bar: Option<ProgressBar>,
}

impl Ui {
    pub fn new(verbosity: Verbosity) -> Self {
        Ui {
            verbosity,
            display: Display::detect(),
            started: Instant::now(),
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            phases: Arc::default(),
        }
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    fn live(&self) -> bool {
        self.display == Display::Live && self.verbosity >= Verbosity::Normal
    }

    /// Prints one line to stderr, above the bars when they are drawn.
    fn line(&self, text: &str) {
        match self.display {
            Display::Live => self.bars.suspend(|| eprintln!("{text}")),
            Display::Plain { stamped: false } => eprintln!("{text}"),
            Display::Plain { stamped: true } => {
                eprintln!(
                    "[{} +{:.1}s] {text}",
                    clock(),
                    self.started.elapsed().as_secs_f64()
                )
            }
        }
    }

    /// A step of the work, shown unless `-q`.
    pub fn info(&self, text: &str) {
        tracing::info!(target: "glbox::ui", "{text}");
        if self.verbosity >= Verbosity::Normal {
            self.line(text);
        }
    }

    /// Extra detail, shown with `-v` (always in the debug log).
    pub fn detail(&self, text: &str) {
        tracing::debug!(target: "glbox::ui", "{text}");
        self.show_detail(text);
    }

    /// Shows `text` with `-v` without logging it (it is a log line already).
    pub fn show_detail(&self, text: &str) {
        if self.verbosity >= Verbosity::Verbose {
            self.line(text);
        }
    }

    /// Something the user should know even with `-q`.
    pub fn warn(&self, text: &str) {
        tracing::warn!(target: "glbox::ui", "{text}");
        self.line(&format!("warning: {text}"));
    }

    /// Announces the phases a command goes through, in order; [`Ui::phase`]
    /// then shows which one runs (`[3/9] instance`).
    pub fn start_phases(&self, names: Vec<&'static str>) {
        let mut phases = self.phases.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = phases.bar.take() {
            self.clear(&old);
        }
        phases.bar = self.live().then(|| {
            let bar = self.bars.add(ProgressBar::new(names.len() as u64));
            bar.set_style(
                ProgressStyle::with_template("{spinner:.cyan} [{pos}/{len}] {msg} ({elapsed})")
                    .expect("static template is valid"),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        phases.names = names;
    }

    /// Phase `name` begins. A name not announced is only logged.
    pub fn phase(&self, name: &str) {
        let phases = self.phases.lock().unwrap_or_else(|e| e.into_inner());
        let Some(index) = phases.names.iter().position(|n| *n == name) else {
            tracing::debug!(target: "glbox::ui", "phase {name}");
            return;
        };
        let counter = format!("[{}/{}] {name}", index + 1, phases.names.len());
        tracing::info!(target: "glbox::ui", "{counter}");
        match &phases.bar {
            Some(bar) => {
                bar.set_position(index as u64 + 1);
                bar.set_message(name.to_string());
            }
            None if self.verbosity >= Verbosity::Normal => self.line(&counter),
            None => {}
        }
    }

    /// The phases are over: the bar goes, so the result printed next
    /// stands alone.
    pub fn end_phases(&self) {
        let mut phases = self.phases.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = phases.bar.take() {
            self.clear(&bar);
        }
        phases.names.clear();
    }

    /// The process is about to exit in the middle of things: every bar
    /// goes from the screen, and none is drawn again.
    pub fn stop_display(&self) {
        self.end_phases();
        let _ = self.bars.clear();
        self.bars.set_draw_target(ProgressDrawTarget::hidden());
    }

    fn clear(&self, bar: &ProgressBar) {
        bar.finish_and_clear();
        self.bars.remove(bar);
    }

    /// Starts showing that glbox is waiting for `what`.
    pub fn waiting(&self, what: &str) -> Waiting {
        tracing::debug!(target: "glbox::ui", "waiting for {what}");
        let bar = self.live().then(|| {
            let bar = self.bars.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner:.cyan} waiting for {msg} ({elapsed})")
                    .expect("static template is valid"),
            );
            bar.set_message(what.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if bar.is_none() && self.verbosity >= Verbosity::Normal {
            self.line(&format!("waiting for {what}"));
        }
        Waiting {
            bar,
            what: what.to_string(),
            started: Instant::now(),
            last_seen: Mutex::new(None),
            ui: self.clone(),
        }
    }

    /// Asks a yes/no question on the terminal (the caller has checked
    /// there is one); the default is no. Live: dialoguer's prompt. Plain
    /// (`NO_COLOR`, dumb terminal): a line read from stdin, no escapes.
    pub fn confirm(&self, question: &str) -> std::io::Result<bool> {
        tracing::info!(target: "glbox::ui", "asked: {question}");
        let agreed = if self.display == Display::Live {
            dialoguer::Confirm::new()
                .with_prompt(question)
                .default(false)
                .interact()
                .map_err(std::io::Error::other)?
        } else {
            eprint!("{question} [y/N] ");
            std::io::stderr().flush()?;
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
        };
        tracing::info!(target: "glbox::ui", "answered: {}", if agreed { "yes" } else { "no" });
        Ok(agreed)
    }
}

/// The UTC time of day, `HH:MM:SS`.
fn clock() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{:02}:{:02}:{:02}", now.hour(), now.minute(), now.second())
}

/// A wait in progress; dropping it clears the spinner.
pub struct Waiting {
    bar: Option<ProgressBar>,
    what: String,
    started: Instant,
    /// The last state shown, so plain output says only what changed.
    last_seen: Mutex<Option<String>>,
    ui: Ui,
}

impl Waiting {
    /// Shows the latest observed state next to what is awaited.
    pub fn observed(&self, state: &str) {
        let mut last = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_deref() == Some(state) {
            return;
        }
        *last = Some(state.to_string());
        tracing::debug!(target: "glbox::ui", "{}: now {state}", self.what);
        match &self.bar {
            Some(bar) => bar.set_message(format!("{} (now: {state})", self.what)),
            None => self
                .ui
                .show_detail(&format!("  {}: now {state}", self.what)),
        }
    }

    pub fn done(mut self) {
        let took = self.started.elapsed().as_secs_f64();
        if let Some(bar) = self.bar.take() {
            self.ui.clear(&bar);
        }
        self.ui
            .detail(&format!("done waiting for {} after {took:.1}s", self.what));
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            self.ui.clear(&bar);
        }
    }
}
