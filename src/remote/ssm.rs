//! SSM Run Command: no inbound port at all. The agent on the box must be
//! `Online` first (it needs the instance role and outbound HTTPS).

use std::time::Duration;

use base64::Engine;

use crate::aws::ssm;
use crate::error::{Error, Result};
use crate::remote::Outcome;
use crate::resources::Ctx;
use crate::wait::{self, Poll};

/// How long SSM may take to hand the command to the agent.
const DELIVERY_TIMEOUT_SECONDS: i32 = 600;
/// How long glbox keeps polling after the script's own limit, for SSM to
/// report the end.
const REPORT_MARGIN: Duration = Duration::from_secs(30);
/// GetCommandInvocation's `StandardOutputContent` is "the first 24,000
/// characters written by the plugin to stdout", `StandardErrorContent` the
/// first 8,000 of stderr
/// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetCommandInvocation.html).
pub const STDOUT_CHARACTERS: usize = 24_000;
pub const STDERR_CHARACTERS: usize = 8_000;
/// Where each command's script is written on the box before it runs (root
/// only). `GLBOX_RUN_DIR`, set on the box, overrides it: only the tests'
/// sandbox does.
const RUN_DIR: &str = "/var/lib/glbox/run";

pub struct Ssm {
    pub instance_id: String,
}

/// SSM's shell document runs `sh`; the script wants bash and arrives as a
/// file, so it is sent base64-encoded and written out first. Each command
/// gets its own file (mktemp: 0600), removed when it ends: a second
/// command to the box (a verify, a repeated SendCommand) never overwrites
/// the file a running bootstrap is still reading.
fn command_for(script: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(script);
    format!(
        r#"d="${{GLBOX_RUN_DIR:-{RUN_DIR}}}" && mkdir -p "$d" && chmod 0700 "$d" && f="$(mktemp "$d/command.XXXXXXXX")" && echo '{encoded}' | base64 -d > "$f" && exec bash -c 'bash "$1"; s=$?; rm -f "$1"; exit "$s"' glbox-command "$f""#
    )
}

/// Statuses of an invocation that has not ended.
fn still_running(status: &str) -> bool {
    matches!(
        status,
        "Pending" | "InProgress" | "Delayed" | "Cancelling" | ""
    )
}

impl Ssm {
    pub async fn wait_ready(&self, ctx: &Ctx<'_>) -> Result<()> {
        let what = format!("the SSM agent on {} to be Online", self.instance_id);
        let waited = wait::until(ctx.ui, &what, ctx.settings.ready_timeout, || async {
            let ping = ctx.aws.ssm_watch.agent_ping(&self.instance_id).await?;
            Ok(match ping.as_deref() {
                Some("Online") => Poll::Ready(()),
                Some(other) => Poll::Pending(other.to_string()),
                None => Poll::Pending("not registered yet".into()),
            })
        })
        .await;
        ctx.aws.ssm_watch.forget_agent(&self.instance_id).await;
        match waited {
            Err(Error::Timeout { elapsed, last_seen, .. }) => Err(Error::Refused(format!(
                "the SSM agent on {} did not come Online within {}s (last seen: {last_seen})\n  fix: the usual causes are a missing instance profile, no outbound HTTPS (443) from the subnet (no internet or NAT gateway, and no SSM VPC endpoints), or an image without the agent; check the instance's system log, then re-run glbox up",
                self.instance_id,
                elapsed.as_secs()
            ))),
            other => other,
        }
    }

    /// The outcome, and whether SSM cut its output (it may have).
    pub async fn run(
        &self,
        ctx: &Ctx<'_>,
        what: &str,
        script: &str,
        timeout: Duration,
    ) -> Result<(Outcome, bool)> {
        let command = ssm::Command {
            instance_id: &self.instance_id,
            comment: format!("glbox {}: {what}", ctx.names.deployment),
            delivery_timeout_seconds: DELIVERY_TIMEOUT_SECONDS,
            commands: vec![command_for(script)],
            execution_timeout_seconds: timeout.as_secs(),
        };
        let sent = ssm::send_command(&ctx.aws.ssm, command)
            .await?
            .ok_or_else(|| Error::Refused("SendCommand answered without a command id".into()))?;
        let command_id = sent.command_id;
        ctx.ui
            .detail(&format!("sent {what} as SSM command {command_id}"));
        let waiting_for = format!("{what} on {} (SSM command {command_id})", self.instance_id);
        let result = wait::until(ctx.ui, &waiting_for, timeout + REPORT_MARGIN, || async {
            self.poll(ctx, &command_id, sent.requested_at).await
        })
        .await;
        ctx.aws
            .ssm_watch
            .forget_command(&command_id, &self.instance_id)
            .await;
        if matches!(result, Err(Error::Timeout { .. })) {
            // Stop it, so that a re-run does not overlap it.
            let cancelled = ssm::cancel_command(&ctx.aws.ssm, &command_id, &self.instance_id).await;
            if let Err(e) = cancelled {
                ctx.ui
                    .warn(&format!("could not cancel SSM command {command_id}: {e}"));
            }
        }
        result
    }

    async fn poll(
        &self,
        ctx: &Ctx<'_>,
        command_id: &str,
        requested_at: Option<time::OffsetDateTime>,
    ) -> Result<Poll<(Outcome, bool)>> {
        // Right after SendCommand the invocation may not be listed yet.
        let status = ctx
            .aws
            .ssm_watch
            .command_status(command_id, &self.instance_id, requested_at)
            .await?;
        match status.as_deref() {
            None => return Ok(Poll::Pending("not delivered yet".into())),
            Some(status) if still_running(status) => return Ok(Poll::Pending(status.to_string())),
            Some(_) => {}
        }
        // Ended: its output, once (the listing carries none).
        let Some(invocation) = ssm::invocation(&ctx.aws.ssm, command_id, &self.instance_id).await?
        else {
            return Ok(Poll::Pending("not delivered yet".into()));
        };
        let status = invocation.status;
        if still_running(&status) {
            return Ok(Poll::Pending(status));
        }
        let (stdout, stderr) = (invocation.stdout, invocation.stderr);
        let cut = stdout.chars().count() >= STDOUT_CHARACTERS
            || stderr.chars().count() >= STDERR_CHARACTERS;
        let code = invocation.response_code;
        Ok(Poll::Ready((
            Outcome {
                // SSM reports -1 when the script never got to exit.
                exit_code: (code >= 0 && status != "TimedOut" && status != "Cancelled")
                    .then_some(code),
                status,
                output: format!("{stdout}{stderr}"),
            },
            cut,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_writes_the_script_and_runs_it_with_bash() {
        let command = command_for("#!/bin/bash\necho 'hi'\n");
        assert!(command.starts_with(r#"d="${GLBOX_RUN_DIR:-/var/lib/glbox/run}" && "#));
        assert!(command.contains(r#"f="$(mktemp "#), "a file of its own");
        assert!(command.ends_with(r#"glbox-command "$f""#));
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .env("GLBOX_RUN_DIR", dir.path())
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "removed after the run"
        );
        assert!(!command.contains("echo 'hi'"), "the script travels encoded");
    }
}
