//! The log files themselves: one per run, in `<state dir>/logs/`, named by
//! the UTC time it started (so names sort by age), private to the user,
//! and only the newest [`KEEP`] kept.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::redact;

/// How many run logs stay in the folder.
pub const KEEP: usize = 50;
const PREFIX: &str = "glbox-";
const SUFFIX: &str = ".log";

pub fn dir() -> PathBuf {
    crate::paths::state_dir().join("logs")
}

/// Creates this run's file (0600) in `dir` (made 0700), after pruning the
/// oldest so that, with it, at most [`KEEP`] remain.
pub fn create(dir: &Path, command: &str) -> io::Result<(PathBuf, File)> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // An existing folder keeps the mode it had: make it private.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    prune(dir, KEEP - 1)?;
    let path = dir.join(file_name(command));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    Ok((path, file))
}

/// `glbox-20261127T054158.123Z-up-4242.log`: sortable by time, unique per
/// process.
fn file_name(command: &str) -> String {
    let now = time::OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    );
    let command: String = command
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{PREFIX}{stamp}-{command}-{}{SUFFIX}", std::process::id())
}

/// Deletes glbox's oldest logs in `dir` until at most `keep` remain. Other
/// files are never touched.
pub fn prune(dir: &Path, keep: usize) -> io::Result<()> {
    let mut logs: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
        })
        .collect();
    if logs.len() <= keep {
        return Ok(());
    }
    logs.sort();
    for old in &logs[..logs.len() - keep] {
        // Another glbox may have pruned it already.
        match fs::remove_file(old) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Hands the formatter one buffer per log line; the line is scrubbed of
/// known secrets and written when the buffer is dropped. Writes are
/// synchronous on purpose: a line is on disk before the next step runs, so
/// the log of a run that crashes or is killed ends where the run did (and a
/// line is a few hundred bytes to a local file).
#[derive(Clone)]
pub struct Writer {
    file: Arc<Mutex<File>>,
}

impl Writer {
    pub fn new(file: File) -> Self {
        Writer {
            file: Arc::new(Mutex::new(file)),
        }
    }
}

pub struct Line {
    buffer: Vec<u8>,
    file: Arc<Mutex<File>>,
}

impl Write for Line {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let text = redact::scrub(&String::from_utf8_lossy(&self.buffer));
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        // A full disk must not stop glbox's work: the line is lost.
        let _ = file.write_all(text.as_bytes());
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Writer {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line {
            buffer: Vec::new(),
            file: Arc::clone(&self.file),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_log_is_private_in_a_private_folder() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("logs");
        let (path, _file) = create(&dir, "up").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&path), 0o600);
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("glbox-") && name.contains("-up-"),
            "{name}"
        );
    }

    #[test]
    fn pruning_keeps_the_newest_and_leaves_other_files_alone() {
        let dir = tempfile::tempdir().unwrap();
        for day in 10..20 {
            fs::write(
                dir.path()
                    .join(format!("glbox-202611{day}T000000.000Z-up-1.log")),
                "",
            )
            .unwrap();
        }
        fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        prune(dir.path(), 3).unwrap();
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "glbox-20261117T000000.000Z-up-1.log",
                "glbox-20261118T000000.000Z-up-1.log",
                "glbox-20261119T000000.000Z-up-1.log",
                "notes.txt"
            ]
        );
    }
}
