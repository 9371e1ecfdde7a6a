//! `glbox secret set NAME`: a secret for `gitlab.extra_config`, stored as
//! an SSM SecureString (see `crate::secrets`). The value comes from
//! standard input (read without echo at a terminal), never from the
//! command line, where other users and the shell's history would see it.

use std::io::{IsTerminal, Read};

use serde::Serialize;

use crate::app::{App, Needs};
use crate::config::ConfigError;
use crate::error::{Error, Result};
use crate::output::Report;

/// SSM's standard tier holds values up to 4 KB.
/// <https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html>
const MAX_VALUE_BYTES: usize = 4096;

#[derive(Serialize)]
pub struct SecretReport {
    name: String,
    parameter: String,
    /// Where the box gets it, once the next `up` ran.
    on_the_box: String,
}

impl Report for SecretReport {
    fn text(&self) -> String {
        format!(
            "Stored secret {} as the SSM SecureString {}.\nThe next glbox up writes it on the box to {} (0600).\n",
            self.name, self.parameter, self.on_the_box
        )
    }
}

pub async fn set(app: &App, name: &str) -> Result<SecretReport> {
    crate::secrets::validate_name(name)?;
    let deployment = app.deployment(Needs::default()).await?;
    let prompt = format!("Value of secret {name} (not shown)");
    let value = tokio::task::spawn_blocking(move || read_value(&prompt))
        .await
        .map_err(|e| Error::Refused(format!("reading the value stopped: {e}")))??;
    let ctx = deployment.ctx(app);
    let parameter = crate::secrets::store(&ctx, name, &value).await?;
    Ok(SecretReport {
        name: name.to_string(),
        parameter,
        on_the_box: format!("{}/{name}", crate::gitlab_rb::SECRETS_DIR),
    })
}

fn refused(problem: &str) -> Error {
    Error::Config(ConfigError {
        field: "the secret's value (standard input)".into(),
        value: String::new(),
        problem: problem.into(),
        fix: "give the value on standard input: printf '%s' \"$VALUE\" | glbox secret set NAME, or type it at the prompt".into(),
    })
}

/// The value, from a prompt without echo at a terminal, else all of
/// standard input; one final line break (what `echo` and editors add) is
/// not part of it.
fn read_value(prompt: &str) -> Result<String> {
    let stdin = std::io::stdin();
    let text = if stdin.is_terminal() {
        dialoguer::Password::new()
            .with_prompt(prompt)
            .allow_empty_password(true)
            .interact()
            .map_err(|e| refused(&format!("could not be read from the terminal: {e}")))?
    } else {
        let mut text = String::new();
        stdin
            .lock()
            .read_to_string(&mut text)
            .map_err(|e| refused(&format!("could not be read: {e}")))?;
        text
    };
    checked(text)
}

fn checked(text: String) -> Result<String> {
    let value = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text)
        .to_string();
    if value.is_empty() {
        return Err(refused("is empty"));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(refused(&format!(
            "is {} bytes; an SSM parameter holds at most {MAX_VALUE_BYTES}",
            value.len()
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_final_line_break_is_dropped_and_empty_is_refused() {
        assert_eq!(checked("s3cret\n".into()).unwrap(), "s3cret");
        assert_eq!(checked("s3cret\r\n".into()).unwrap(), "s3cret");
        assert_eq!(checked("a\nb\n\n".into()).unwrap(), "a\nb\n");
        for empty in ["", "\n", "\r\n"] {
            let err = checked(empty.into()).unwrap_err().to_string();
            assert!(err.contains("is empty") && err.contains("fix:"), "{err}");
        }
        let err = checked("x".repeat(4097)).unwrap_err().to_string();
        assert!(err.contains("at most 4096"), "{err}");
    }
}
