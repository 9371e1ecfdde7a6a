//! Running a script on the instance, through SSM Run Command or SSH. Both
//! transports answer the same two questions (is the box reachable? what did
//! the script do?), so the bootstrap does not care which one runs.

pub mod ssh;
pub mod ssm;

use crate::error::Result;

/// What a script run on the box came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The script's exit status, when it got to exit.
    pub exit_code: Option<i32>,
    /// Why it ended, in the transport's words (`Success`, `Failed`, `TimedOut`, `exit 3`…).
    pub status: String,
    /// What it printed (SSM keeps at most 24,000 characters of it).
    pub output: String,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// The last `lines` lines of the output.
    pub fn tail(&self, lines: usize) -> String {
        tail(&self.output, lines)
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub enum Transport {
    Ssm(ssm::Ssm),
    Ssh(ssh::Ssh),
}

impl Transport {
    /// The configured transport to `instance_id` (SSH connects to
    /// `access.host`, else `public_address`).
    pub async fn for_instance(
        ctx: &crate::resources::Ctx<'_>,
        instance_id: &str,
        public_address: Option<&str>,
    ) -> Result<Transport> {
        Ok(match ctx.settings.access {
            crate::config::AccessMethod::Ssm => Transport::Ssm(ssm::Ssm {
                instance_id: instance_id.to_string(),
            }),
            crate::config::AccessMethod::Ssh => {
                Transport::Ssh(ssh::Ssh::prepare(ctx, instance_id, public_address).await?)
            }
        })
    }

    /// Waits (with the configured deadline) until the box can take commands.
    pub async fn wait_ready(&self, ctx: &crate::resources::Ctx<'_>) -> Result<()> {
        match self {
            Transport::Ssm(t) => t.wait_ready(ctx).await,
            Transport::Ssh(t) => t.wait_ready(ctx).await,
        }
    }

    /// Runs `script` as root with bash; `what` names it in progress output.
    pub async fn run(
        &self,
        ctx: &crate::resources::Ctx<'_>,
        what: &str,
        script: &str,
        timeout: std::time::Duration,
    ) -> Result<Outcome> {
        match self {
            Transport::Ssm(t) => t.run(ctx, what, script, timeout).await,
            Transport::Ssh(t) => t.run(ctx, what, script, timeout).await,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(super::tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(super::tail("a", 5), "a");
        assert_eq!(super::tail("", 5), "");
    }
}
