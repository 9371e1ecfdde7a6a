//! glbox's error type. Every variant reads as a sentence a user can act on.

use std::time::Duration;

use crate::config::ConfigError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input, found before any AWS call.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// Required values that no source gives, listed all at once (glbox
    /// does not prompt without a terminal or with `--non-interactive`).
    #[error("{}", missing_values(.0))]
    Missing(Vec<ConfigError>),
    /// An AWS call failed (after the SDK's own retries).
    #[error("{0}")]
    Aws(#[from] crate::aws::AwsError),
    /// glbox will not do what was asked, and says why and what to do.
    #[error("{0}")]
    Refused(String),
    /// The account's quotas (Elastic IPs, vCPUs) cannot hold what the plan
    /// makes; found before any mutating call (exit status 2).
    #[error("{0}")]
    Quota(String),
    /// A wait ran past its deadline.
    #[error("timed out after {}s waiting for {what} (last seen: {last_seen})", elapsed.as_secs())]
    Timeout {
        what: String,
        last_seen: String,
        elapsed: Duration,
    },
    /// The health checks ran and GitLab is not healthy (exit status 1).
    #[error("GitLab is not healthy")]
    Unhealthy,
    /// The health checks could not run at all (exit status 2).
    #[error("could not check GitLab's health: {0}")]
    Unverifiable(String),
    /// Ctrl-C stopped the run at a safe point (exit status 130).
    #[error("{0}")]
    Interrupted(String),
    /// The user declined the confirmation prompt.
    #[error("cancelled: nothing was changed")]
    Declined,
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn missing_values(missing: &[ConfigError]) -> String {
    let mut text = format!(
        "{} required value(s) missing, and glbox does not prompt without a terminal or with --non-interactive:",
        missing.len()
    );
    for item in missing {
        text.push_str(&format!(
            "\n  {}: {}\n    fix: {}",
            item.field, item.problem, item.fix
        ));
    }
    text.push_str(
        "\n  or: run glbox init on a terminal, which asks for everything and writes glbox.toml",
    );
    text
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Exit status: 2 for input the user must correct (a quota too small
    /// included) or a health check that could not run, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Missing(_) | Error::Unverifiable(_) | Error::Quota(_) => 2,
            Error::Interrupted(_) => 130,
            _ => 1,
        }
    }
}
