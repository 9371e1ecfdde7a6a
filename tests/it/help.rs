//! `--help` has examples for every command, and every example parses;
//! `glbox completions` prints scripts the shells accept and that complete
//! glbox's own commands. The command tree is walked, so a new command
//! without examples fails here.

use std::process::Command;

use clap::CommandFactory;
use glbox::cli::Cli;

/// Every command with its full name (`glbox email dns`), the root first.
fn commands() -> Vec<(String, clap::Command)> {
    fn walk(prefix: &str, command: &clap::Command, out: &mut Vec<(String, clap::Command)>) {
        let name = format!("{prefix}{}", command.get_name());
        out.push((name.clone(), command.clone()));
        for sub in command.get_subcommands() {
            walk(&format!("{name} "), sub, out);
        }
    }
    let mut root = Cli::command();
    root.build();
    let mut out = Vec::new();
    walk("", &root, &mut out);
    // clap's own `help` subcommands explain themselves.
    out.retain(|(name, _)| !name.ends_with(" help") && !name.contains(" help "));
    out
}

/// The example command lines of a help text: the lines under "Examples:"
/// that start with `glbox`, cut before their explanation (two spaces)
/// and any shell redirection; optional parts in [brackets] included.
fn examples(after_help: &str) -> Vec<Vec<String>> {
    after_help
        .lines()
        .skip_while(|l| l.trim() != "Examples:")
        .skip(1)
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("glbox "))
        .map(|line| {
            let command = line.split("  ").next().unwrap();
            let command = command.split(" > ").next().unwrap();
            command
                .split_whitespace()
                .map(|word| word.trim_matches(['[', ']']).to_string())
                .collect()
        })
        .collect()
}

#[test]
fn every_command_has_examples_that_parse() {
    let commands = commands();
    assert!(
        commands.len() >= 12,
        "the tree was walked: {}",
        commands.len()
    );
    for (name, command) in &commands {
        let help = command
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(
            help.contains("Examples:"),
            "`{name} --help` has no Examples section (add one in src/help.rs)"
        );
        let examples = examples(&help);
        assert!(
            examples.len() >= 2,
            "`{name} --help` shows fewer than 2 examples"
        );
        for example in examples {
            if let Err(e) = Cli::command().try_get_matches_from(&example) {
                panic!(
                    "the example `{}` in `{name} --help` does not parse: {e}",
                    example.join(" ")
                );
            }
            // A subcommand's examples use that subcommand.
            let words = name.split(' ').collect::<Vec<_>>();
            assert!(
                example
                    .iter()
                    .map(String::as_str)
                    .take(words.len())
                    .eq(words.iter().copied()),
                "`{}` in `{name} --help` is not an example of {name}",
                example.join(" ")
            );
        }
    }
}

#[test]
fn the_binary_shows_the_examples() {
    let out = Command::new(env!("CARGO_BIN_EXE_glbox"))
        .args(["up", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("Examples:\n  glbox up "), "{help}");
    assert!(help.contains("glbox up --no-bootstrap --yes"), "{help}");
}

fn completions(shell: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_glbox"))
        .args(["completions", shell])
        // No configuration and no AWS are needed.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What bash offers after `words` (the last one being completed).
fn bash_completes(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let program = format!(
        "source {script}\nCOMP_WORDS=({words})\nCOMP_CWORD={cword}\nCOMP_LINE='{line}'\nCOMP_POINT={point}\n_glbox glbox '{current}' '{previous}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script = script.display(),
        words = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
        cword = words.len() - 1,
        point = line.len(),
        current = words[words.len() - 1],
        previous = words[words.len() - 2],
    );
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &program])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completion_is_valid_and_completes_commands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("glbox.bash");
    std::fs::write(&script, completions("bash")).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    assert_eq!(bash_completes(&script, &["glbox", "em"]), ["email"]);
    let commands = bash_completes(&script, &["glbox", ""]);
    for command in [
        "plan",
        "up",
        "status",
        "down",
        "verify",
        "doctor",
        "completions",
    ] {
        assert!(
            commands.iter().any(|c| c == command),
            "{command} in {commands:?}"
        );
    }
    let flags = bash_completes(&script, &["glbox", "down", "--delete-"]);
    assert!(
        flags.iter().any(|f| f == "--delete-data")
            && flags.iter().any(|f| f == "--delete-email-identity"),
        "{flags:?}"
    );
}

#[test]
fn zsh_and_fish_completions_name_every_command() {
    let zsh = completions("zsh");
    assert!(zsh.starts_with("#compdef glbox"), "{zsh}");
    let fish = completions("fish");
    for command in [
        "plan", "up", "status", "down", "verify", "render", "email", "doctor",
    ] {
        assert!(zsh.contains(&format!("'{command}:")), "zsh lacks {command}");
        assert!(
            fish.contains(&format!("-a \"{command}\"")),
            "fish lacks {command}"
        );
    }
    // The shells check the syntax where they are installed.
    for (shell, text) in [("zsh", &zsh), ("fish", &fish)] {
        if Command::new(shell).arg("--version").output().is_ok() {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("completion");
            std::fs::write(&file, text).unwrap();
            let out = Command::new(shell).arg("-n").arg(&file).output().unwrap();
            assert!(
                out.status.success(),
                "{shell} -n: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
