//! Running a script on the instance, through SSM Run Command or SSH. Both
//! transports answer the same two questions (is the box reachable? what did
//! the script do?), so the bootstrap does not care which one runs.

pub mod ssh;
pub mod ssm;

use base64::Engine;

use crate::error::{Error, Result};

/// What a script run on the box came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The script's exit status, when it got to exit.
    pub exit_code: Option<i32>,
    /// Why it ended, in the transport's words (`Success`, `Failed`, `TimedOut`, `exit 3`…).
    pub status: String,
    /// What it printed, stdout and stderr together; whole even where the
    /// transport cut it, and [`printable`].
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

/// Where a run's output is kept on the box (`GLBOX_LOG_DIR` is the scripts'
/// own override, for tests), one file per run, root's only.
const OUTPUT_DIR: &str = "${GLBOX_LOG_DIR:-/var/log/glbox}/output";
/// Kept outputs older than a day are removed when the next run starts.
const OUTPUT_KEEP_MINUTES: u32 = 24 * 60;
/// How much of what a transport cut glbox reads back: the end of the output
/// (the bootstrap's warnings and result, verify's report) is what matters.
const READ_BACK_LIMIT: u64 = 64_000;
/// Bytes per read-back command: base64 makes 16,000 bytes 21,336
/// characters, under SSM's 24,000 (see `ssm::STDOUT_CHARACTERS`).
const READ_BACK_CHUNK: u64 = 16_000;
/// The first line of every read-back command.
pub const READ_BACK_MARK: &str = "# glbox read-back";
const READ_BACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// `script`, run so that everything it prints is also kept in `file` on the
/// box: a pipe into tee (not `exec > >(tee)`), so the run ends only once
/// the copy is complete, with the script's own exit status.
fn keeping_output(script: &str, file: &str) -> String {
    let newline = if script.ends_with('\n') { "" } else { "\n" };
    let prepare = format!(
        "mkdir -p \"{OUTPUT_DIR}\" && chmod 0700 \"{OUTPUT_DIR}\" && find \"{OUTPUT_DIR}\" -maxdepth 1 -name '*.log' -mmin +{OUTPUT_KEEP_MINUTES} -delete"
    );
    let keep = format!("tee --output-error=warn-nopipe \"{file}\"");
    format!(
        "# glbox keeps this run's output on the box, to read back what a transport cuts.\n{prepare}\n{{\n{script}{newline}}} 2>&1 | {keep}\nexit \"${{PIPESTATUS[0]}}\"\n"
    )
}

/// `file` as the operator finds it on a real box.
fn shown(file: &str) -> String {
    file.replace("${GLBOX_LOG_DIR:-/var/log/glbox}", "/var/log/glbox")
}

/// A command printing `size start` (the kept output's size, and where the
/// read-back starts: at `from`, or later when more than the limit is left),
/// then the first chunk from there, base64-encoded.
fn read_back_first(file: &str, from: u64) -> String {
    format!(
        "{READ_BACK_MARK}\nf=\"{file}\"; size=\"$(wc -c < \"$f\")\" || exit 1; start=$(( size - {READ_BACK_LIMIT} > {from} ? size - {READ_BACK_LIMIT} : {from} )); echo \"$size $start\"; tail -c +$(( start + 1 )) \"$f\" | head -c {READ_BACK_CHUNK} | base64 -w 0; echo"
    )
}

/// A command printing the chunk of the kept output at `start`, base64-encoded.
fn read_back_next(file: &str, start: u64) -> String {
    format!(
        "{READ_BACK_MARK}\ntail -c +{} \"{file}\" | head -c {READ_BACK_CHUNK} | base64 -w 0; echo",
        start + 1
    )
}

fn decode_chunk(text: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| Error::Refused(format!("reading back the output: not base64 ({e})")))
}

/// A file name for one run's kept output, unique enough that two runs on
/// one box never share it.
fn output_file() -> String {
    format!("{OUTPUT_DIR}/{:016x}.log", rand::random::<u64>())
}

/// Makes text from the box safe for the operator's terminal: control
/// characters (escape sequences, carriage returns, C1 codes) and the
/// invisible direction overrides are shown escaped; newlines and tabs stay.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let invisible = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if (c.is_control() && c != '\n' && c != '\t') || invisible {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

impl Transport {
    /// The configured transport to `instance_id` (SSH connects to
    /// `access.host`, else `public_address`).
    pub async fn for_instance(
        ctx: &crate::resources::Ctx<'_>,
        instance_id: &str,
        public_address: Option<&str>,
    ) -> Result<Transport> {
        Ok(match ctx.settings.access.method() {
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
    /// The output is whole even when the transport cut it (SSM keeps only
    /// its start): the box keeps a copy, and the end is read back from it.
    /// It is [`printable`].
    pub async fn run(
        &self,
        ctx: &crate::resources::Ctx<'_>,
        what: &str,
        script: &str,
        timeout: std::time::Duration,
    ) -> Result<Outcome> {
        let file = output_file();
        let (mut outcome, cut) = self
            .run_as_sent(ctx, what, &keeping_output(script, &file), timeout)
            .await?;
        if cut {
            let rest = self
                .read_back(ctx, what, &file, outcome.output.len() as u64)
                .await?;
            outcome.output.push_str(&rest);
        }
        outcome.output = printable(&outcome.output);
        Ok(outcome)
    }

    /// The script as it is, and whether the transport cut its output.
    async fn run_as_sent(
        &self,
        ctx: &crate::resources::Ctx<'_>,
        what: &str,
        script: &str,
        timeout: std::time::Duration,
    ) -> Result<(Outcome, bool)> {
        match self {
            Transport::Ssm(t) => t.run(ctx, what, script, timeout).await,
            Transport::Ssh(t) => Ok((t.run(ctx, what, script, timeout).await?, false)),
        }
    }

    /// What the kept output holds after its first `received` bytes (at
    /// most its last [`READ_BACK_LIMIT`] bytes, said so when more is left
    /// out).
    async fn read_back(
        &self,
        ctx: &crate::resources::Ctx<'_>,
        what: &str,
        file: &str,
        received: u64,
    ) -> Result<String> {
        let reading = format!("reading back the end of {what}'s output");
        let first = self
            .run_as_sent(
                ctx,
                &reading,
                &read_back_first(file, received),
                READ_BACK_TIMEOUT,
            )
            .await?
            .0;
        let unreadable = |why: &str| {
            Error::Refused(format!(
                "{what}'s output was cut by the transport after {received} bytes, and the rest could not be read back from {} on the box ({why})",
                shown(file)
            ))
        };
        if !first.succeeded() {
            return Err(unreadable(&first.status));
        }
        let (header, chunk) = first.output.split_once('\n').unwrap_or((&first.output, ""));
        let (size, start) = header
            .split_once(' ')
            .and_then(|(s, t)| Some((s.trim().parse::<u64>().ok()?, t.trim().parse::<u64>().ok()?)))
            .ok_or_else(|| unreadable(&format!("answered {header:?}")))?;
        let mut bytes = decode_chunk(chunk)?;
        while start + (bytes.len() as u64) < size {
            let next = self
                .run_as_sent(
                    ctx,
                    &reading,
                    &read_back_next(file, start + bytes.len() as u64),
                    READ_BACK_TIMEOUT,
                )
                .await?
                .0;
            let more = decode_chunk(&next.output)?;
            if !next.succeeded() || more.is_empty() {
                return Err(unreadable(&next.status));
            }
            bytes.extend(more);
        }
        let skipped = start.saturating_sub(received);
        let note = if skipped > 0 {
            format!(
                "\n[glbox: {skipped} bytes of output not shown; all of it is in {} on the box]\n",
                shown(file)
            )
        } else {
            String::new()
        };
        Ok(format!("{note}{}", String::from_utf8_lossy(&bytes)))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_from_the_box_are_shown_escaped() {
        let shown = super::printable("ok\tdone\n\u{1b}]0;owned\u{7}\u{1b}[2J\rX\u{202e}Y\u{9b}");
        assert_eq!(
            shown,
            "ok\tdone\n\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\u{d}X\\u{202e}Y\\u{9b}"
        );
        assert!(!shown
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'));
    }

    #[test]
    fn the_script_runs_whole_inside_the_wrapper_that_keeps_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("output/run.log");
        let file = "${GLBOX_LOG_DIR:-/var/log/glbox}/output/run.log";
        let wrapped = super::keeping_output("echo hi\nexit 3", file);
        assert!(wrapped.contains(&format!(
            "\n{{\necho hi\nexit 3\n}} 2>&1 | tee --output-error=warn-nopipe \"{file}\"\n"
        )));
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(&wrapped)
            .env("GLBOX_LOG_DIR", dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "the script's own exit status");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
        assert_eq!(std::fs::read_to_string(kept).unwrap(), "hi\n");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(super::tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(super::tail("a", 5), "a");
        assert_eq!(super::tail("", 5), "");
    }
}
