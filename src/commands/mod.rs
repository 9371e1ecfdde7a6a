//! One module per command: each `run` takes the run's [`crate::app::App`]
//! and its arguments, does the work, and returns a report that prints
//! itself ([`crate::output::Report`]).

pub mod backup;
pub mod backups;
pub mod completions;
pub mod doctor;
pub mod down;
pub mod email_dns;
pub mod email_rotate;
pub mod init;
pub mod lab;
pub mod plan;
pub mod render;
pub mod restore_backup;
pub mod restore_snapshot;
pub mod secret;
pub mod status;
pub mod up;
pub mod verify;

use crate::resources::Ctx;

/// SES or Route 53 could not be read: said, and the rest goes on.
fn warn_email_problem(ctx: &Ctx<'_>, observed: &crate::deploy::plan::Observed) {
    if let Some(problem) = &observed.email.problem {
        ctx.ui
            .warn(&format!("the email state could not be read: {problem}"));
    }
}
