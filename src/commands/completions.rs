//! `glbox completions SHELL`.

use clap::CommandFactory;

use crate::cli::Cli;

/// The script, from the same command tree that parses the arguments (so it
/// cannot fall behind).
pub fn print(shell: clap_complete::Shell) {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "glbox", &mut std::io::stdout());
}
