//! Step boundaries: the safe points where `up` may stop. Each one is a place
//! where everything made so far is tagged and findable, so a re-run picks up
//! from there.
//!
//! Ctrl-C (SIGINT) does not kill glbox half-way through an AWS call: the
//! first one asks it to stop at the next checkpoint (or the next poll of a
//! wait), the second one exits at once.
//!
//! With the `failpoints` feature (tests only), `GLBOX_FAILPOINT=<step>`
//! makes the process die at that checkpoint as a crash would (exit 137, no
//! clean-up), and `GLBOX_FAILPOINT=sigint:<step>` sends it a real SIGINT
//! there: that is how the tests crash and interrupt `up` at every step.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use crate::error::{Error, Result};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The command that finishes an interrupted run (`glbox up`, `glbox down`).
static RESUME: OnceLock<&'static str> = OnceLock::new();

/// Catches SIGINT for the rest of the process: the first sets the flag,
/// the second exits with 130. `resume`: the command that finishes the job.
pub fn install_interrupt_handler(ui: crate::ui::Ui, resume: &'static str) {
    let _ = RESUME.set(resume);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        INTERRUPTED.store(true, Ordering::SeqCst);
        ui.warn("interrupted: stopping at the next safe point (Ctrl-C again to stop at once)");
        if tokio::signal::ctrl_c().await.is_ok() {
            ui.stop_display();
            ui.warn(&format!(
                "stopped at once; run {} again to converge",
                resume_command()
            ));
            crate::log::print_path();
            std::process::exit(130);
        }
    });
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

fn resume_command() -> &'static str {
    RESUME.get().copied().unwrap_or("glbox up")
}

/// The error for a run stopped by Ctrl-C after `step`.
pub fn stopped(step: &str) -> Error {
    Error::Interrupted(format!(
        "stopped after {step}, as asked: everything made so far is tagged\n  fix: run {} again to finish (it picks up where this run stopped)",
        resume_command()
    ))
}

/// `step` is done: stop here if asked to.
pub async fn reached(step: &str) -> Result<()> {
    failpoint(step).await;
    if interrupted() {
        return Err(stopped(step));
    }
    Ok(())
}

/// A place inside a step where only a crash may stop the run (a test
/// build's `GLBOX_FAILPOINT`), never Ctrl-C: what is half-made here is
/// recovered by the next run, but a run that stops on purpose must not
/// leave it half-made.
pub async fn crash_point(step: &str) {
    failpoint(step).await;
}

#[cfg(feature = "failpoints")]
async fn failpoint(step: &str) {
    let Ok(wanted) = std::env::var("GLBOX_FAILPOINT") else {
        return;
    };
    if wanted == step {
        eprintln!("failpoint: crashing after {step}");
        std::process::exit(137);
    }
    if wanted.strip_prefix("sigint:") == Some(step) {
        // A real signal, through the real handler.
        let pid = std::process::id().to_string();
        let _ = tokio::task::spawn_blocking(move || {
            std::process::Command::new("kill")
                .args(["-INT", &pid])
                .status()
        })
        .await;
        // The handler runs on the runtime: give it the moment it needs.
        for _ in 0..50 {
            if interrupted() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

#[cfg(not(feature = "failpoints"))]
async fn failpoint(_step: &str) {}
