//! `[backup]`: the snapshot schedule, its retention and copy region, and
//! the nightly GitLab backup to S3.

use super::{identity::is_region_name, validate_range};
use crate::config::raw::RawBackup;
use crate::config::settings::{BackupSettings, S3Backups, SnapshotSchedule, TimeOfDay};
use crate::config::{bad, ConfigError};

/// Data Lifecycle Manager keeps at most 1,000 snapshots per schedule
/// (CreateLifecyclePolicy, RetainRule.Count: 1-1000).
const MAX_SNAPSHOT_KEEP: i64 = 1000;

pub(super) fn validate_backup(raw: RawBackup, region: &str) -> Result<BackupSettings, ConfigError> {
    let snapshots = match raw.snapshots().as_str() {
        "daily" => Some(SnapshotSchedule::Daily),
        "hourly" => Some(SnapshotSchedule::Hourly),
        "off" => None,
        other => {
            return Err(bad(
                "backup.snapshots",
                other,
                "is not a snapshot schedule",
                "use \"daily\", \"hourly\" or \"off\"",
            ))
        }
    };
    let snapshot_keep = validate_range(
        "backup.snapshot_keep",
        raw.snapshot_keep(),
        1,
        MAX_SNAPSHOT_KEEP,
        "snapshots",
    )?;
    let keep_days = validate_range("backup.s3_keep_days", raw.s3_keep_days(), 1, 3650, "days")?;
    let time = parse_time(&raw.s3_time()).ok_or_else(|| {
        bad(
            "backup.s3_time",
            raw.s3_time(),
            "is not a time of day",
            "use \"HH:MM\" in UTC, such as \"03:00\"",
        )
    })?;
    let s3 = raw.s3();
    let copy_to_region = raw
        .copy_to_region
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if let Some(copy) = &copy_to_region {
        if !is_region_name(copy) {
            return Err(bad(
                "backup.copy_to_region",
                copy,
                "is not an AWS region name",
                "use a region such as \"eu-west-1\", or leave it empty",
            ));
        }
        if copy == region {
            return Err(bad(
                "backup.copy_to_region",
                copy,
                "is the deployment's own region, so a copy there protects against nothing",
                "name another region, or leave it empty",
            ));
        }
        if snapshots.is_none() {
            return Err(bad(
                "backup.copy_to_region",
                copy,
                "copies scheduled snapshots, and backup.snapshots is \"off\"",
                "set backup.snapshots = \"daily\" (or \"hourly\"), or leave copy_to_region empty",
            ));
        }
    }
    Ok(BackupSettings {
        snapshots,
        snapshot_keep: snapshot_keep.unsigned_abs(),
        s3: s3.then_some(S3Backups {
            keep_days: keep_days.unsigned_abs(),
        }),
        time,
        copy_to_region,
    })
}

/// `HH:MM`, 00:00 to 23:59.
fn parse_time(text: &str) -> Option<TimeOfDay> {
    let (hour, minute) = text.split_once(':')?;
    let two_digits = |part: &str| part.len() == 2 && part.chars().all(|c| c.is_ascii_digit());
    if !two_digits(hour) || !two_digits(minute) {
        return None;
    }
    let (hour, minute): (u8, u8) = (hour.parse().ok()?, minute.parse().ok()?);
    (hour < 24 && minute < 60).then_some(TimeOfDay { hour, minute })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(edit: impl FnOnce(&mut RawBackup)) -> RawBackup {
        let mut raw = RawBackup::default();
        edit(&mut raw);
        raw
    }

    #[test]
    fn without_the_section_nothing_is_backed_up() {
        let backup = validate_backup(RawBackup::default(), "us-east-1").unwrap();
        assert_eq!(backup, BackupSettings::off());
    }

    #[test]
    fn the_wizards_choice_validates() {
        let backup = validate_backup(
            raw(|r| {
                r.snapshots = Some("hourly".into());
                r.s3 = Some(true);
                r.s3_time = Some("23:59".into());
                r.copy_to_region = Some("eu-west-1".into());
            }),
            "us-east-1",
        )
        .unwrap();
        assert_eq!(backup.snapshots, Some(SnapshotSchedule::Hourly));
        assert_eq!(backup.s3, Some(S3Backups { keep_days: 30 }));
        assert_eq!(backup.time.to_string(), "23:59");
        assert_eq!(backup.copy_to_region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases: Vec<(RawBackup, &str)> = vec![
            (
                raw(|r| r.snapshots = Some("weekly".into())),
                "backup.snapshots",
            ),
            (raw(|r| r.snapshot_keep = Some(0)), "backup.snapshot_keep"),
            (
                raw(|r| r.snapshot_keep = Some(1001)),
                "backup.snapshot_keep",
            ),
            (raw(|r| r.s3_keep_days = Some(0)), "backup.s3_keep_days"),
            (raw(|r| r.s3_time = Some("3:00".into())), "backup.s3_time"),
            (raw(|r| r.s3_time = Some("24:00".into())), "backup.s3_time"),
            (raw(|r| r.s3_time = Some("03:60".into())), "backup.s3_time"),
            (
                raw(|r| {
                    r.snapshots = Some("daily".into());
                    r.copy_to_region = Some("mars-1".into());
                }),
                "backup.copy_to_region",
            ),
            (
                raw(|r| {
                    r.snapshots = Some("daily".into());
                    r.copy_to_region = Some("us-east-1".into());
                }),
                "backup.copy_to_region",
            ),
            (
                raw(|r| r.copy_to_region = Some("eu-west-1".into())),
                "backup.copy_to_region",
            ),
        ];
        for (raw, field) in cases {
            let err = validate_backup(raw.clone(), "us-east-1").unwrap_err();
            assert_eq!(err.field, field, "{raw:?}");
            assert!(!err.fix.is_empty());
        }
    }
}
