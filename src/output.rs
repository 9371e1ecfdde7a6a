//! What a command prints: its report, as text or as JSON, and the question
//! it asks before it changes anything.

use clap::ValueEnum;
use serde::Serialize;

use crate::app::App;
use crate::error::{Error, Result};
use crate::ui::Verbosity;

/// The result format on stdout (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// A command's result: the same facts as JSON (its `Serialize` form) or as
/// text for people.
pub trait Report: Serialize {
    /// The text form, with its line ends.
    fn text(&self) -> String;

    /// Printed as text even with `--output json` (a rendered file is its
    /// own format).
    fn text_only(&self) -> bool {
        false
    }

    /// The command's result once the report is printed: a report may say
    /// that what it shows failed (an unhealthy box, seats that failed).
    fn outcome(self) -> Result<()>
    where
        Self: Sized,
    {
        Ok(())
    }
}

/// Prints `report` in the run's format, then hands back its outcome.
pub fn emit(app: &App, report: impl Report) -> Result<()> {
    match app.output {
        OutputFormat::Json if !report.text_only() => print_json(&report),
        _ => print!("{}", report.text()),
    }
    report.outcome()
}

fn print_json(value: &impl Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("reports serialize")
    );
}

/// Should a command show what it is about to change before it asks? Not
/// as JSON, and not with `-q` and `--yes` (no question, only the result).
pub fn preview_wanted(app: &App) -> bool {
    app.output == OutputFormat::Text && !(app.yes && app.ui.verbosity() == Verbosity::Quiet)
}

/// Asks before changing anything, unless `--yes`. Without a terminal to ask
/// on, refuses rather than guessing.
pub fn confirm(app: &App, question: &str, what: &str) -> Result<()> {
    if app.yes {
        return Ok(());
    }
    if !crate::wizard::can_prompt() {
        return Err(Error::Refused(format!(
            "{what} needs confirmation, and there is no terminal to ask on (or --non-interactive): nothing was changed\n  fix: review the list above, then re-run with --yes"
        )));
    }
    let agreed = app
        .ui
        .confirm(question)
        .map_err(|e| Error::Refused(format!("could not read the answer: {e}")))?;
    if agreed {
        Ok(())
    } else {
        Err(Error::Declined)
    }
}
