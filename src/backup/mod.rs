//! What the box runs for GitLab's backups to S3: the nightly script the
//! bootstrap installs with its timer (`cloud-init/backup.sh`,
//! `cloud-init/backup-schedule.sh`), the restore glbox sends
//! (`cloud-init/restore.sh`), and the deployment's bucket they use.

use aws_sdk_ec2::types::{Filter, ResourceType, Snapshot, Tag, TagSpecification};

use crate::aws::ec2::snapshots;
use crate::config::{Settings, TimeOfDay};
use crate::error::{Error, Result};
use crate::names::{Role, TAG_SNAPSHOT_REASON};
use crate::resources::Ctx;

const BACKUP_SCRIPT: &str = include_str!("../../cloud-init/backup.sh");
const RESTORE_SCRIPT: &str = include_str!("../../cloud-init/restore.sh");
/// The bootstrap's functions that install, update or remove the timer.
pub const SCHEDULE_FUNCTIONS: &str = include_str!("../../cloud-init/backup-schedule.sh");

/// How long after a `glbox backup` was cut short its backup still counts
/// as "now" for the next `glbox backup` (seconds), and how far back a
/// pending manual snapshot is looked for.
pub const FRESH_WITHIN_SECONDS: u64 = 15 * 60;

/// The deployment's bucket when `backup.s3` is on (its name holds the
/// account: one STS read).
pub async fn bucket(ctx: &Ctx<'_>) -> Result<Option<String>> {
    if ctx.settings.backup.s3.is_none() {
        return Ok(None);
    }
    let account = crate::resources::iam::caller_account(ctx).await?;
    Ok(Some(ctx.names.backup_bucket(&account)))
}

/// The account's own snapshots of this (glbox's) data volume with the
/// deployment's tags and `reason`. They are only waited for and reported,
/// never adopted or removed.
pub async fn snapshots_of(ctx: &Ctx<'_>, volume_id: &str, reason: &str) -> Result<Vec<Snapshot>> {
    let mut filters = ctx.names.owned_filters(Role::Snapshot);
    filters.push(
        Filter::builder()
            .name(format!("tag:{TAG_SNAPSHOT_REASON}"))
            .values(reason)
            .build(),
    );
    filters.push(
        Filter::builder()
            .name("volume-id")
            .values(volume_id)
            .build(),
    );
    Ok(snapshots::describe(&ctx.aws.ec2, filters).await?)
}

/// Starts a snapshot of the data volume, tagged with the deployment's tags
/// and `reason` in the same call; returns its id.
pub async fn start_snapshot(
    ctx: &Ctx<'_>,
    volume_id: &str,
    reason: &str,
    description: String,
) -> Result<String> {
    let mut tags = ctx.names.ec2_tags(Role::Snapshot);
    tags.push(
        Tag::builder()
            .key(TAG_SNAPSHOT_REASON)
            .value(reason)
            .build(),
    );
    let spec = TagSpecification::builder()
        .resource_type(ResourceType::Snapshot)
        .set_tags(Some(tags))
        .build();
    let id = snapshots::create(&ctx.aws.ec2, volume_id, description, spec).await?;
    ctx.ui.info(&format!(
        "started snapshot {id} of the data volume {volume_id}"
    ));
    Ok(id)
}

/// The newest snapshot in `found` started at most `within` seconds before
/// `now` (seconds) and not in `error`, among those `keep` accepts.
pub fn newest_recent(
    found: &[Snapshot],
    now: i64,
    within: u64,
    keep: impl Fn(&Snapshot) -> bool,
) -> Option<&str> {
    found
        .iter()
        .filter(|s| snapshots::state_of(s) != "error" && keep(s))
        .filter_map(|s| Some((s.start_time()?.secs(), s.snapshot_id()?)))
        .filter(|(started, _)| now - started <= within as i64)
        .max_by_key(|(started, _)| *started)
        .map(|(_, id)| id)
}

/// Now, in seconds since the epoch, as EBS gives start times.
pub fn now_secs() -> i64 {
    aws_smithy_types::DateTime::from(std::time::SystemTime::now()).secs()
}

/// systemd's OnCalendar for a daily run at `time` UTC (systemd.time(7):
/// a time zone after the time).
pub fn on_calendar(time: TimeOfDay) -> String {
    format!("*-*-* {time}:00 UTC")
}

/// `script` with `values` set in front of its body, each quoted for the
/// shell, as the bootstrap is sent.
fn with_values(script: &str, what: &str, values: &[(&str, &str)]) -> String {
    let (shebang, body) = script.split_once('\n').unwrap_or(("#!/bin/bash", script));
    let mut out = format!("{shebang}\n# Values for {what}, set by glbox:\n");
    for (name, value) in values {
        out.push_str(&format!(
            "{name}={}\n",
            crate::bootstrap::shell_quote(value)
        ));
    }
    out.push_str(body);
    out
}

/// `/usr/local/sbin/glbox-backup` as the bootstrap installs it.
pub fn backup_script(settings: &Settings, bucket: &str) -> String {
    with_values(
        BACKUP_SCRIPT,
        &format!("deployment \"{}\"", settings.name),
        &[
            ("GLBOX_REGION", &settings.region),
            ("GLBOX_BACKUP_BUCKET", bucket),
        ],
    )
}

/// The bootstrap's values for the nightly backup: the installed script
/// (base64) and the timer's OnCalendar; both empty when `backup.s3` is
/// off (`bucket` is `None`), which removes the timer.
pub fn schedule_values(settings: &Settings, bucket: Option<&str>) -> (String, String) {
    use base64::Engine;
    match bucket {
        Some(bucket) => (
            base64::engine::general_purpose::STANDARD.encode(backup_script(settings, bucket)),
            on_calendar(settings.backup.time),
        ),
        None => (String::new(), String::new()),
    }
}

/// The restore of `backup` glbox sends to the box.
pub fn restore_script(settings: &Settings, bucket: &str, backup: &str) -> String {
    with_values(
        RESTORE_SCRIPT,
        &format!("deployment \"{}\"", settings.name),
        &[
            ("GLBOX_REGION", &settings.region),
            ("GLBOX_BACKUP_BUCKET", bucket),
            ("GLBOX_RESTORE_BACKUP", backup),
            ("GLBOX_OS", settings.os.as_str()),
            ("GLBOX_EDITION", settings.gitlab.edition.as_str()),
        ],
    )
}

/// What `glbox backup` runs on the box: the installed script, as the
/// timer runs it (`GLBOX_SBIN_DIR` is the scripts' override for tests).
pub fn run_now_script() -> String {
    format!(
        "script=\"${{GLBOX_SBIN_DIR:-/usr/local/sbin}}/glbox-backup\"\n\
         if [ ! -x \"$script\" ]; then\n  \
         echo 'glbox-error: glbox-backup is not installed on this box: run glbox up (with backup.s3 = true) first'\n  \
         exit 3\n\
         fi\n\
         exec \"$script\" --fresh-within {FRESH_WITHIN_SECONDS}\n"
    )
}

/// The backup a run reported: its id and the archive's size in bytes.
pub fn reported_backup(output: &str) -> Option<(String, u64)> {
    let line = output
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("glbox-backup: "))?;
    let (id, size) = line.trim().split_once(' ')?;
    Some((id.to_string(), size.trim().parse().ok()?))
}

/// The reason a run on the box gave for failing (its `glbox-error:` line).
pub fn reported_error(output: &str) -> Option<&str> {
    output
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("glbox-error: "))
}

/// Refuses what is not a GitLab backup id before any AWS call:
/// `<unix time>_<YYYY>_<MM>_<DD>_<version>`, perhaps with `-ce`/`-ee`
/// (doc/administration/backup_restore/backup_gitlab.md, "Backup ID").
pub fn check_backup_id(id: &str) -> Result<()> {
    let parts: Vec<&str> = id.splitn(5, '_').collect();
    let digits = |s: &str, n: Option<usize>| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && n.is_none_or(|n| s.len() == n)
    };
    let version = parts.get(4).map(|v| {
        v.strip_suffix("-ce")
            .or_else(|| v.strip_suffix("-ee"))
            .unwrap_or(v)
    });
    let valid = parts.len() == 5
        && digits(parts[0], None)
        && digits(parts[1], Some(4))
        && digits(parts[2], Some(2))
        && digits(parts[3], Some(2))
        && version.is_some_and(|v| {
            let numbers: Vec<&str> = v.split('.').collect();
            numbers.len() == 3 && numbers.iter().all(|n| digits(n, None))
        });
    if valid {
        return Ok(());
    }
    Err(Error::Config(crate::config::ConfigError {
        field: "--backup".into(),
        value: id.to_string(),
        problem: "is not a GitLab backup name (<unix time>_<YYYY>_<MM>_<DD>_<version>, such as 1764644400_2025_12_02_18.5.1)".into(),
        fix: "pick one from glbox backups (the archive's name without _gitlab_backup.tar)".into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_ids_are_checked_before_any_call() {
        for good in [
            "1764644400_2025_12_02_18.5.1",
            "11493107454_2018_04_25_10.6.4-ce",
        ] {
            assert!(check_backup_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "latest",
            "1764644400_2025_12_02",
            "1764644400_2025_12_02_18.5",
            "1764644400_2025_12_2_18.5.1",
            "1764644400_2025_12_02_18.5.1; reboot",
            "../1764644400_2025_12_02_18.5.1",
            "1764644400_2025_12_02_18.5.1-xe",
        ] {
            let err = check_backup_id(bad).unwrap_err().to_string();
            assert!(err.contains("--backup"), "{bad}: {err}");
        }
    }

    fn snapshot(id: &str, started: i64, state: &str) -> Snapshot {
        Snapshot::builder()
            .snapshot_id(id)
            .start_time(aws_smithy_types::DateTime::from_secs(started))
            .state(state.into())
            .description(format!("about {id}"))
            .build()
    }

    #[test]
    fn only_a_recent_snapshot_that_did_not_fail_is_taken_up_again() {
        let now = 1_000_000;
        let found = [
            snapshot("snap-old", now - 3600, "completed"),
            snapshot("snap-failed", now - 10, "error"),
            snapshot("snap-recent", now - 120, "pending"),
            snapshot("snap-earlier", now - 300, "pending"),
        ];
        let any = |_: &Snapshot| true;
        assert_eq!(newest_recent(&found, now, 900, any), Some("snap-recent"));
        assert_eq!(newest_recent(&found[..2], now, 900, any), None);
        assert_eq!(newest_recent(&found, now, 7200, any), Some("snap-recent"));
        let earlier = |s: &Snapshot| s.description() == Some("about snap-earlier");
        assert_eq!(
            newest_recent(&found, now, 900, earlier),
            Some("snap-earlier")
        );
    }

    #[test]
    fn the_timer_runs_at_the_configured_time_in_utc() {
        assert_eq!(
            on_calendar(TimeOfDay { hour: 3, minute: 5 }),
            "*-*-* 03:05:00 UTC"
        );
    }

    #[test]
    fn a_run_reports_its_backup_and_size() {
        let out = "glbox-phase: x\nglbox-backup: 1764644400_2025_12_02_18.5.1 10240\n";
        assert_eq!(
            reported_backup(out),
            Some(("1764644400_2025_12_02_18.5.1".into(), 10240))
        );
        assert_eq!(reported_backup("glbox-error: no\n"), None);
        assert_eq!(reported_error("a\nglbox-error: no\n"), Some("no"));
    }
}
