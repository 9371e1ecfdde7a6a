//! What the deployment's backups are now: its snapshots and the GitLab
//! backups in its bucket, each with when, how big and whether it is
//! usable; and how old the newest of each is against its schedule (for
//! `status` and `verify`).

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::snapshots::Snapshot;
use crate::aws::s3;
use crate::config::BackupSettings;
use crate::error::Result;
use crate::names::{BACKUP_ARCHIVE_SUFFIX, BACKUP_CONFIG_PREFIX};
use crate::resources::Ctx;

/// One GitLab backup in the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct S3Backup {
    /// The backup id (the archive's key without `_gitlab_backup.tar`), as
    /// `glbox restore --backup` takes it.
    pub name: String,
    /// When the archive was written, RFC 3339 (UTC).
    pub time: String,
    pub size_bytes: u64,
    /// The archive and `config/<name>/gitlab-secrets.json` are both there
    /// (without the secrets a restore loses every encrypted setting).
    pub complete: bool,
}

/// The GitLab backups among a bucket's objects, newest first.
pub fn s3_backups(objects: &[s3::Object]) -> Vec<S3Backup> {
    let secrets = |name: &str| format!("{BACKUP_CONFIG_PREFIX}{name}/gitlab-secrets.json");
    let mut backups: Vec<S3Backup> = objects
        .iter()
        .filter(|o| !o.key.contains('/'))
        .filter_map(|o| {
            let name = o.key.strip_suffix(BACKUP_ARCHIVE_SUFFIX)?;
            Some(S3Backup {
                name: name.to_string(),
                time: o.last_modified.clone(),
                size_bytes: o.size,
                complete: objects.iter().any(|other| other.key == secrets(name)),
            })
        })
        .collect();
    backups.sort_by(|a, b| b.time.cmp(&a.time));
    backups
}

/// The backups in the bucket `name` (none when there is no bucket).
pub async fn read_s3(ctx: &Ctx<'_>, bucket: Option<&str>) -> Result<Vec<S3Backup>> {
    match bucket {
        Some(bucket) => Ok(s3_backups(&s3::objects(&ctx.aws.s3, bucket).await?)),
        None => Ok(Vec::new()),
    }
}

/// How long ago `time` (RFC 3339) was, for people: "3h 5m ago".
pub fn age(time: &str, now: OffsetDateTime) -> Option<String> {
    let then = OffsetDateTime::parse(time, &Rfc3339).ok()?;
    let minutes = (now - then).whole_minutes().max(0);
    Some(match minutes {
        m if m < 60 => format!("{m}m ago"),
        m if m < 48 * 60 => format!("{}h {}m ago", m / 60, m % 60),
        m => format!("{}d ago", m / (24 * 60)),
    })
}

/// Hours since `time` (RFC 3339).
fn hours_since(time: &str, now: OffsetDateTime) -> Option<i64> {
    let then = OffsetDateTime::parse(time, &Rfc3339).ok()?;
    Some((now - then).whole_hours())
}

/// What `verify` warns about: the newest completed snapshot, or the newest
/// complete S3 backup, is older than twice its schedule (or there is none
/// while it is scheduled). A new deployment's first ones are not due yet:
/// `since` is when the deployment's instance was launched.
pub fn stale(
    backup: &BackupSettings,
    snapshots: &[Snapshot],
    backups: &[S3Backup],
    since: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let young = |limit: i64| since.is_some_and(|s| (now - s).whole_hours() < limit);
    if let Some(schedule) = backup.snapshots {
        let limit = 2 * i64::from(schedule.interval_hours());
        let newest = snapshots.iter().find(|s| s.state == "completed");
        match newest.map(|s| (s, hours_since(&s.started, now))) {
            Some((s, Some(hours))) if hours > limit => warnings.push(format!(
                "the newest snapshot ({}, {}) is older than twice its {} schedule: check the snapshot schedule (glbox status) and Data Lifecycle Manager",
                s.id,
                age(&s.started, now).unwrap_or_default(),
                schedule.as_str()
            )),
            None if !young(limit) => warnings.push(format!(
                "no completed snapshot of the data volume, though snapshots are {}: check the snapshot schedule (glbox status), or take one with glbox backup",
                schedule.as_str()
            )),
            _ => {}
        }
    }
    if backup.s3.is_some() {
        let newest = backups.iter().find(|b| b.complete);
        match newest.map(|b| (b, hours_since(&b.time, now))) {
            Some((b, Some(hours))) if hours > 48 => warnings.push(format!(
                "the newest complete GitLab backup ({}, {}) is older than twice its daily schedule: check the backup timer on the box, or run glbox backup",
                b.name,
                age(&b.time, now).unwrap_or_default()
            )),
            None if !young(48) => warnings.push(
                "no complete GitLab backup in the bucket, though backup.s3 is on: check the backup timer on the box, or run glbox backup".to_string(),
            ),
            _ => {}
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{S3Backups, SnapshotSchedule, TimeOfDay};

    fn object(key: &str, time: &str) -> s3::Object {
        s3::Object {
            key: key.into(),
            size: 10,
            last_modified: time.into(),
        }
    }

    #[test]
    fn backups_are_named_by_their_id_and_complete_with_their_secrets() {
        let objects = [
            object(
                "1_2026_12_01_18.6.0_gitlab_backup.tar",
                "2026-12-01T03:00:00Z",
            ),
            object(
                "config/1_2026_12_01_18.6.0/gitlab-secrets.json",
                "2026-12-01T03:00:00Z",
            ),
            object(
                "2_2026_12_02_18.6.0_gitlab_backup.tar",
                "2026-12-02T03:00:00Z",
            ),
            object(
                "config/2_2026_12_02_18.6.0/gitlab.rb",
                "2026-12-02T03:00:00Z",
            ),
            object("notes.txt", "2026-12-02T03:00:00Z"),
        ];
        let found = s3_backups(&objects);
        let names: Vec<(&str, bool)> = found
            .iter()
            .map(|b| (b.name.as_str(), b.complete))
            .collect();
        assert_eq!(
            names,
            [
                ("2_2026_12_02_18.6.0", false),
                ("1_2026_12_01_18.6.0", true)
            ]
        );
    }

    fn snapshot(started: &str) -> Snapshot {
        Snapshot {
            id: "snap-1".into(),
            volume_id: "vol-1".into(),
            size_gib: 100,
            state: "completed".into(),
            started: started.into(),
            reason: "scheduled".into(),
        }
    }

    #[test]
    fn verify_warns_past_twice_the_schedule_only() {
        let now = OffsetDateTime::parse("2026-12-03T12:00:00Z", &Rfc3339).unwrap();
        let backup = BackupSettings {
            snapshots: Some(SnapshotSchedule::Daily),
            s3: Some(S3Backups { keep_days: 7 }),
            time: TimeOfDay { hour: 3, minute: 0 },
            ..BackupSettings::off()
        };
        let fresh = S3Backup {
            name: "1".into(),
            time: "2026-12-03T03:00:00Z".into(),
            size_bytes: 1,
            complete: true,
        };
        let made = OffsetDateTime::parse("2026-11-01T00:00:00Z", &Rfc3339).ok();
        assert!(stale(
            &backup,
            &[snapshot("2026-12-02T03:00:00Z")],
            std::slice::from_ref(&fresh),
            made,
            now
        )
        .is_empty());
        let old = stale(
            &backup,
            &[snapshot("2026-12-01T03:00:00Z")],
            std::slice::from_ref(&fresh),
            made,
            now,
        );
        assert_eq!(old.len(), 1, "{old:?}");
        assert!(old[0].contains("snap-1") && old[0].contains("daily"));
        let none = stale(&backup, &[], &[], made, now);
        assert_eq!(none.len(), 2, "{none:?}");
        // A box made this morning has nothing due yet.
        let this_morning = OffsetDateTime::parse("2026-12-03T09:00:00Z", &Rfc3339).ok();
        assert!(stale(&backup, &[], &[], this_morning, now).is_empty());
        assert!(stale(&BackupSettings::off(), &[], &[], made, now).is_empty());
    }

    #[test]
    fn ages_read_for_people() {
        let now = OffsetDateTime::parse("2026-12-03T12:00:00Z", &Rfc3339).unwrap();
        assert_eq!(age("2026-12-03T11:15:00Z", now).as_deref(), Some("45m ago"));
        assert_eq!(
            age("2026-12-03T02:55:00Z", now).as_deref(),
            Some("9h 5m ago")
        );
        assert_eq!(age("2026-11-29T12:00:00Z", now).as_deref(), Some("4d ago"));
    }
}
