//! What a command prints: its report, as text or as JSON (`App::emit`
//! prints it in the run's format).

use clap::ValueEnum;
use serde::Serialize;

use crate::error::Result;

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

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("reports serialize")
    );
}
