//! What glbox tells the person running it while it works. Progress goes to
//! stderr (results go to stdout): a spinner with elapsed time on a terminal,
//! plain lines stamped with the elapsed time otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

#[derive(Debug, Clone)]
pub struct Ui {
    verbosity: Verbosity,
    terminal: bool,
    started: Instant,
}

impl Ui {
    pub fn new(verbosity: Verbosity) -> Self {
        Ui {
            verbosity,
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
        }
    }

    fn line(&self, text: &str) {
        if self.terminal {
            eprintln!("{text}");
        } else {
            eprintln!("[+{:>6.1}s] {text}", self.started.elapsed().as_secs_f64());
        }
    }

    /// A step of the work, shown unless `-q`.
    pub fn info(&self, text: &str) {
        if self.verbosity >= Verbosity::Normal {
            self.line(text);
        }
    }

    /// Extra detail, shown with `-v`.
    pub fn detail(&self, text: &str) {
        if self.verbosity >= Verbosity::Verbose {
            self.line(text);
        }
    }

    /// Something the user should know even with `-q`.
    pub fn warn(&self, text: &str) {
        self.line(&format!("warning: {text}"));
    }

    /// Starts showing that glbox is waiting for `what`.
    pub fn waiting(&self, what: &str) -> Waiting {
        let bar = (self.terminal && self.verbosity >= Verbosity::Normal).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} waiting for {msg} ({elapsed})")
                    .expect("static template is valid"),
            );
            bar.set_message(what.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if bar.is_none() {
            self.info(&format!("waiting for {what}"));
        }
        Waiting {
            bar,
            what: what.to_string(),
            started: Instant::now(),
            ui: self.clone(),
        }
    }
}

/// A wait in progress; dropping it clears the spinner.
pub struct Waiting {
    bar: Option<ProgressBar>,
    what: String,
    started: Instant,
    ui: Ui,
}

impl Waiting {
    /// Shows the latest observed state next to what is awaited.
    pub fn observed(&self, state: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(format!("{} (now: {state})", self.what)),
            None => self.ui.detail(&format!("  {}: now {state}", self.what)),
        }
    }

    pub fn done(self) {
        let took = self.started.elapsed().as_secs_f64();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.ui
            .detail(&format!("done waiting for {} after {took:.1}s", self.what));
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
