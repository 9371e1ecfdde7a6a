//! Rotating the SMTP key (`glbox email rotate`, and `up` finishing a
//! change): when a rotation may start, and when old keys are deleted. Mail
//! never stops: an old key goes only once GitLab runs with the new one.

use crate::email::credentials;
use crate::error::{Error, Result};
use crate::resources::Ctx;

/// A rotation that may start: the SMTP user and the keys it has now.
pub struct Rotation {
    pub user: String,
    pub old: Vec<String>,
}

/// The ids of the SMTP user's access keys (none without a user).
fn key_ids(credentials: &credentials::Observed) -> Vec<String> {
    credentials
        .user
        .as_ref()
        .map(|u| u.keys.iter().map(|k| k.id.clone()).collect())
        .unwrap_or_default()
}

impl Rotation {
    /// A rotation needs glbox's SMTP user with at most one key.
    pub fn start(ctx: &Ctx<'_>, credentials: &credentials::Observed) -> Result<Rotation> {
        let user = credentials
            .user
            .as_ref()
            .filter(|u| u.owned)
            .ok_or_else(|| {
                Error::Refused(format!(
                    "there is no SMTP user {} to rotate\n  fix: run glbox up first",
                    credentials::user_name(ctx)
                ))
            })?;
        let old: Vec<String> = user.keys.iter().map(|k| k.id.clone()).collect();
        // Two keys: a change is half-way (the box may still use either), and
        // IAM has no room for a third. `up` finishes it safely.
        if old.len() >= 2 {
            return Err(Error::Refused(format!(
                "{} has two access keys ({}): an earlier change is not finished, and IAM allows no third\n  fix: run glbox up (it brings GitLab to the current key and deletes the other), then glbox email rotate",
                user.name,
                old.join(", ")
            )));
        }
        Ok(Rotation {
            user: user.name.clone(),
            old,
        })
    }

    /// Under the lease: the keys are still those the rotation started from.
    pub fn check_unchanged(&self, now: &credentials::Observed) -> Result<()> {
        if key_ids(now) == self.old {
            return Ok(());
        }
        Err(Error::Refused(
            "another glbox run changed the SMTP key meanwhile\n  fix: run glbox email rotate again"
                .into(),
        ))
    }

    /// The old keys to delete now that `new` exists: none when `keep_old`
    /// (a stopped box still uses them: `up` gives it the new key, then
    /// deletes them), and only those still there.
    pub fn to_retire(&self, new: &str, keep_old: bool, now: &credentials::Observed) -> Vec<String> {
        let still_there = key_ids(now);
        self.old
            .iter()
            .filter(|k| *k != new && !keep_old && still_there.contains(k))
            .cloned()
            .collect()
    }
}

/// The box gets the whole configuration again when its key changes: only
/// the key may differ, so a deployment with other changes waiting is not
/// rotated.
pub fn refuse_waiting_changes(plan_is_noop: bool) -> Result<()> {
    if plan_is_noop {
        return Ok(());
    }
    Err(Error::Refused(
        "the deployment has changes waiting (glbox plan shows them), and rotating would apply them to the box unasked\n  fix: run glbox up, then glbox email rotate".into(),
    ))
}

/// After `up`: GitLab uses the current SMTP key now; once the checks did
/// not find mail failing, older keys go (else they stay, and the next up
/// retries).
pub fn old_keys_may_go(verify: Option<&crate::verify::Report>) -> bool {
    verify.is_some_and(|r| {
        !r.checks
            .iter()
            .any(|c| c.name == "email_test" && c.status == crate::verify::Status::Fail)
    })
}
