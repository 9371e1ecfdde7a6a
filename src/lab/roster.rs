//! The roster: one row per seat (URL, user, password, state) for the
//! trainer to hand out. It holds every seat's root password, so the file
//! is written 0600 and the passwords appear nowhere else (not on stdout,
//! not in `--output json`, which names the SSM parameter instead).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::aws::ssm;
use crate::error::{Error, Result};
use crate::lab::observe::Observed;
use crate::lab::plan::seat_url;
use crate::lab::up::{Failures, Health};
use crate::names::seat_label;
use crate::resources::Ctx;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub seat: u16,
    pub name: String,
    pub url: Option<String>,
    pub username: &'static str,
    /// Only for the roster file.
    #[serde(skip)]
    pub password: Option<String>,
    pub password_parameter: String,
    pub state: String,
    pub instance_id: Option<String>,
    pub market: Option<&'static str>,
}

/// A seat's state in words: `ready`, `failed: ...`, or what is missing.
fn state_of(
    seat: &crate::lab::observe::Seat,
    failure: Option<&String>,
    health: Option<&crate::verify::Report>,
) -> String {
    if let Some(reason) = failure {
        // One line in the roster; the whole reason is in glbox's output.
        let first = reason.lines().next().unwrap_or_default();
        return format!("failed: {first}");
    }
    let Some(primary) = seat.primary() else {
        return "missing: no instance".into();
    };
    let instance = &primary.instance;
    if instance.state != "running" {
        return instance.state.clone();
    }
    match (&instance.bootstrap_digest, health) {
        (_, Some(report)) if !report.healthy => "unhealthy".into(),
        (Some(_), _) => "ready".into(),
        (None, _) => "running (GitLab not installed)".into(),
    }
}

/// The rows for seats 1..=`seats`, from an observation made after `up`.
pub fn rows(
    lab: &Ctx<'_>,
    seats: u16,
    observed: &Observed,
    failures: &Failures,
    health: &Health,
) -> Vec<Row> {
    (1..=seats)
        .map(|number| {
            let seat = observed.seat(number);
            Row {
                seat: number,
                name: format!("{}-{}", lab.names.base(), seat_label(number)),
                url: seat_url(lab, &seat),
                username: "root",
                password: None,
                password_parameter: format!(
                    "{}{}/root-password",
                    lab.names.parameter_prefix(),
                    seat_label(number)
                ),
                state: state_of(&seat, failures.get(&number), health.get(&number)),
                instance_id: seat.primary().map(|i| i.instance.id.clone()),
                market: seat.primary().map(|i| i.market),
            }
        })
        .collect()
}

/// Reads the passwords of `rows` that exist (GetParameters, 10 at a time).
pub async fn fill_passwords(
    lab: &Ctx<'_>,
    rows: &mut [Row],
    exists: impl Fn(u16) -> bool,
) -> Result<()> {
    let names: Vec<String> = rows
        .iter()
        .filter(|r| exists(r.seat))
        .map(|r| r.password_parameter.clone())
        .collect();
    let values: BTreeMap<String, String> = ssm::get_many(&lab.aws.ssm, &names, true)
        .await?
        .into_iter()
        // Masked in the debug log, should anything ever print it.
        .inspect(|(_, value)| crate::log::redact::secret(value))
        .collect();
    for row in rows.iter_mut() {
        row.password = values.get(&row.password_parameter).cloned();
    }
    Ok(())
}

/// A CSV field, quoted when it must be.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from("seat,name,url,username,password,state,instance_id,market\n");
    for r in rows {
        let fields = [
            r.seat.to_string(),
            r.name.clone(),
            r.url.clone().unwrap_or_default(),
            r.username.to_string(),
            r.password.clone().unwrap_or_default(),
            r.state.clone(),
            r.instance_id.clone().unwrap_or_default(),
            r.market.unwrap_or_default().to_string(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// Writes the roster with mode 0600 from the first byte: a temporary file
/// beside it, renamed over it, so a reader never sees half a roster. The
/// temporary file is created anew under a name nobody can guess
/// (`create_new`: O_CREAT|O_EXCL, which also refuses a symlink planted
/// there), so the roster's passwords never go through someone else's link.
pub fn write(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("csv.{:016x}.tmp", rand::random::<u64>()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(|e| Error::io(format!("writing the roster {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_and_quotes_are_quoted() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn the_temporary_file_never_follows_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.csv");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        // The name the temporary file used to have, pointing elsewhere.
        std::os::unix::fs::symlink(&victim, dir.path().join("roster.csv.tmp")).unwrap();
        write(&path, "seat\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "seat\n");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp") && n != "roster.csv.tmp")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn the_roster_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.csv");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&path, "seat\n").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "seat\n");
    }
}
