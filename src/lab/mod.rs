//! Training labs: many identical GitLab boxes ("seats") at once, made,
//! checked and removed together.
//!
//! A lab shares one security group and one instance role; every seat is a
//! full box (instance, data volume, optional Elastic IP, root password).
//! Everything carries `glbox:lab` (never `glbox:deployment`, so the
//! single-box commands cannot touch a seat), the seat's number and the
//! lab's expiry, from the call that creates it. AWS calls grow with the
//! number of seats only where AWS has no batch form (one CreateVolume per
//! volume); launches and describes cover the whole lab.

pub mod down;
pub mod launch;
pub mod observe;
pub mod plan;
pub mod roster;
pub mod settings;
pub mod up;

use std::time::{Duration, SystemTime};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::aws::ec2::{instances, volumes};
use crate::aws::Aws;
use crate::config::Settings;
use crate::names::Names;
use crate::resources::Ctx;
use crate::ui::Ui;

pub use settings::LabSettings;

/// API calls of one kind in flight at once (bootstraps use `concurrency`).
const CALLS_IN_FLIGHT: usize = 8;

/// How long the lab waits for its instances and volumes.
const STATE_WAIT: Duration = Duration::from_secs(900);

/// Terminates `ids` (up to 500 in one call) and waits until all are gone.
pub async fn terminate(lab: &Ctx<'_>, ids: &[String]) -> crate::error::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    instances::terminate(&lab.aws.ec2, ids).await?;
    lab.ui.info(&format!(
        "terminating {} instance(s): {}",
        ids.len(),
        ids.join(", ")
    ));
    wait_instances(lab, ids, "terminated").await
}

/// Waits until every instance in `ids` is `state`: one DescribeInstances
/// per poll for all of them.
pub async fn wait_instances(
    lab: &Ctx<'_>,
    ids: &[String],
    state: &str,
) -> crate::error::Result<()> {
    let what = format!("{} instance(s) to be {state}", ids.len());
    let wait = crate::aws::ec2::Wait {
        state,
        what: &what,
        within: STATE_WAIT,
        counted: true,
    };
    let lost = |lost: &[&str]| {
        crate::error::Error::Refused(format!(
            "instance(s) {} terminated while glbox waited for them to be {state}\n  fix: look at their state reason in the EC2 console, then re-run glbox lab up",
            lost.join(", ")
        ))
    };
    instances::wait_for(&lab.aws.ec2, lab.ui, ids, &wait, lost).await?;
    Ok(())
}

/// Waits until every volume in `ids` is `state`, one DescribeVolumes a poll.
pub async fn wait_volumes(lab: &Ctx<'_>, ids: &[String], state: &str) -> crate::error::Result<()> {
    let what = format!("{} volume(s) to be {state}", ids.len());
    let wait = crate::aws::ec2::Wait {
        state,
        what: &what,
        within: STATE_WAIT,
        counted: true,
    };
    volumes::wait_for(&lab.aws.ec2, lab.ui, ids, &wait).await?;
    Ok(())
}

/// The context for the lab's shared resources.
pub fn lab_ctx<'a>(aws: &'a Aws, settings: &'a Settings, ui: &'a Ui, expires_at: &str) -> Ctx<'a> {
    Ctx {
        aws,
        settings,
        names: Names::lab(&settings.name, &settings.region, expires_at),
        ui,
    }
}

/// The context for one seat: its names, tags and parameters.
pub fn seat_ctx<'a>(lab: &Ctx<'a>, seat: u16, expires_at: &str) -> Ctx<'a> {
    Ctx {
        aws: lab.aws,
        settings: lab.settings,
        names: Names::seat(&lab.settings.name, seat, &lab.settings.region, expires_at),
        ui: lab.ui,
    }
}

/// `now + after` as RFC 3339 (UTC, whole seconds): the `glbox:expires-at` tag.
pub fn expiry_after(after: Duration) -> String {
    let at = OffsetDateTime::from(SystemTime::now() + after)
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond");
    at.format(&Rfc3339).expect("UTC times format as RFC 3339")
}

/// Is the `glbox:expires-at` value in the past? An unreadable value is not
/// expired: reaping is for labs that said when they may go.
pub fn is_expired(expires_at: &str, now: OffsetDateTime) -> bool {
    OffsetDateTime::parse(expires_at, &Rfc3339).is_ok_and(|at| at <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_round_trips_and_compares() {
        let soon = expiry_after(Duration::from_secs(3600));
        let now = OffsetDateTime::now_utc();
        assert!(!is_expired(&soon, now));
        assert!(is_expired(&soon, now + time::Duration::hours(2)));
        assert!(!is_expired("tomorrow", now));
        assert!(soon.ends_with('Z'), "{soon}");
    }
}
