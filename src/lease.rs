//! One changing glbox run per deployment (or lab) at a time.
//!
//! Two `up` runs at once would each make a volume and an instance, delete
//! each other's access key and release each other's address. Before its
//! first changing call, a run takes a lease in AWS itself: the String
//! parameter `<prefix>lease`, created with `Overwrite=false`, which SSM
//! refuses with `ParameterAlreadyExists` while another run holds it
//! (PutParameter API reference,
//! https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html).
//! It holds who runs what since when and when it counts as abandoned.
//! A run that finds it held waits (with a deadline, saying for whom); a
//! lease past its `stale_after` is broken. The run deletes it when it ends.
//! Read-only commands (`plan`, `status`, `verify`) take none, and an `up`
//! with nothing to do takes none either (it plans first).

use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use aws_sdk_ssm::types::ParameterType;

use crate::aws::ssm;
use crate::error::{Error, Result};
use crate::names::Names;
use crate::resources::Ctx;
use crate::wait::{self, Poll};

/// How long a run waits for another to finish.
const WAIT: Duration = Duration::from_secs(15 * 60);
/// When a lease counts as abandoned (its run was killed): longer than the
/// longest run glbox makes, a 200-seat lab installing 10 seats at a time.
const STALE_AFTER: Duration = Duration::from_secs(8 * 3600);

/// `<prefix>lease` (`/glbox/<name>/lease`, `/glbox-lab/<lab>/lease`).
pub fn parameter_name(names: &Names) -> String {
    format!("{}lease", names.parameter_prefix())
}

/// What the lease parameter holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    /// `user@host pid N`.
    pub holder: String,
    /// This run's random id: tells a lost answer's echo from another run.
    pub run: String,
    pub command: String,
    pub since: String,
    pub stale_after: String,
    /// The machine and process, to tell a run that died on this machine.
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub pid: u32,
}

impl Holder {
    fn describe(&self) -> String {
        format!("{} ({}) since {}", self.holder, self.command, self.since)
    }

    fn is_stale(&self, now: OffsetDateTime) -> bool {
        OffsetDateTime::parse(&self.stale_after, &Rfc3339).is_ok_and(|at| at <= now)
    }

    /// A run on this machine whose process is gone (killed, crashed): its
    /// lease is abandoned. (Linux's /proc; another machine's run cannot be
    /// checked, and waits for `stale_after`.)
    fn died_here(&self, me: &Holder) -> bool {
        !self.host.is_empty()
            && self.host == me.host
            && self.pid != me.pid
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// A lease this run holds; give it back with [`Lease::release`].
#[derive(Debug)]
pub struct Lease {
    name: String,
    run: String,
}

fn this_run(command: &str) -> Holder {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown user".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown host".into());
    let now = OffsetDateTime::now_utc();
    let format = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    Holder {
        holder: format!("{user}@{host} pid {}", std::process::id()),
        host: host.clone(),
        pid: std::process::id(),
        run: Alphanumeric.sample_string(&mut rand::rng(), 16),
        command: command.to_string(),
        since: format(now),
        stale_after: format(now + STALE_AFTER),
    }
}

/// How to break a lease by hand.
fn break_hint(ctx: &Ctx<'_>, name: &str) -> String {
    format!(
        "if that run is gone (killed, its machine lost), break the lease: aws ssm delete-parameter --region {} --name {name}",
        ctx.settings.region
    )
}

/// Takes the lease of `ctx`'s deployment or lab for `command`, waiting
/// while another run holds it.
pub async fn acquire(ctx: &Ctx<'_>, command: &str) -> Result<Lease> {
    let name = parameter_name(&ctx.names);
    let me = this_run(command);
    let value = serde_json::to_string(&me).expect("a holder serializes");
    let what = format!("the lease on {} ({name})", ctx.names.deployment);
    let last_holder: std::sync::Mutex<Option<Holder>> = std::sync::Mutex::new(None);
    let taken = wait::until(ctx.ui, &what, WAIT, || {
        let (name, value, me, last_holder, what) = (&name, &value, &me, &last_holder, &what);
        async move {
            let put = ssm::put(
                &ctx.aws.ssm,
                &ssm::Parameter {
                    name,
                    description: "glbox: the run that is changing this deployment (lease)".into(),
                    kind: ParameterType::String,
                    value,
                    overwrite: false,
                    tags: Vec::new(),
                },
            )
            .await?;
            if put == ssm::Put::Written {
                return Ok(Poll::Ready(()));
            }
            let Some((holder, raw)) = read(ctx, name).await? else {
                // Released between the two calls: try again at once.
                return Ok(Poll::Pending("just released".into()));
            };
            let Some(holder) = holder else {
                return Err(Error::Refused(format!(
                    "the lease parameter {name} holds something glbox cannot read ({raw:?})\n  fix: {}",
                    break_hint(ctx, name)
                )));
            };
            if holder.run == me.run {
                // Our own PutParameter, repeated after its answer was lost.
                return Ok(Poll::Ready(()));
            }
            let died = holder.died_here(me);
            if died || holder.is_stale(OffsetDateTime::now_utc()) {
                ctx.ui.warn(&format!(
                    "breaking the lease of {}: {}",
                    holder.describe(),
                    if died {
                        "that process is gone".to_string()
                    } else {
                        format!("it was stale after {}", holder.stale_after)
                    }
                ));
                delete_if_unchanged(ctx, name, &raw).await?;
                return Ok(Poll::Pending("broke a stale lease".into()));
            }
            let seen = format!("held by {}", holder.describe());
            let mut last = last_holder.lock().expect("not poisoned");
            if last.as_ref() != Some(&holder) {
                ctx.ui.warn(&format!(
                    "{what} is {seen}: waiting up to {} minutes for that run to end ({})",
                    WAIT.as_secs() / 60,
                    break_hint(ctx, name)
                ));
            }
            *last = Some(holder);
            Ok(Poll::Pending(seen))
        }
    })
    .await;
    match taken {
        Ok(()) => Ok(Lease { name, run: me.run }),
        Err(Error::Timeout { .. }) => Err(Error::Refused(format!(
            "{} is held by {}: another glbox run is changing it\n  fix: wait for that run to end and re-run; {}",
            what,
            last_holder
                .into_inner()
                .ok()
                .flatten()
                .map_or_else(|| "another run".to_string(), |h| h.describe()),
            break_hint(ctx, &name)
        ))),
        Err(e) => Err(e),
    }
}

/// The lease's holder (`None` inside when unreadable) and its raw value;
/// `None` when there is no lease.
async fn read(ctx: &Ctx<'_>, name: &str) -> Result<Option<(Option<Holder>, String)>> {
    let raw = ssm::find(&ctx.aws.ssm, name, false).await?;
    Ok(raw.map(|raw| (serde_json::from_str(&raw).ok(), raw)))
}

/// Deletes the lease if it still holds `raw` (SSM has no conditional
/// delete: between the read and the delete another run could take it; the
/// window is one round trip).
async fn delete_if_unchanged(ctx: &Ctx<'_>, name: &str, raw: &str) -> Result<()> {
    if let Some((_, now)) = read(ctx, name).await? {
        if now == raw {
            ssm::delete_many(&ctx.aws.ssm, &[name.to_string()]).await?;
        }
    }
    Ok(())
}

impl Lease {
    /// Gives the lease back, unless another run broke it meanwhile.
    pub async fn release(self, ctx: &Ctx<'_>) -> Result<()> {
        if let Some((Some(holder), raw)) = read(ctx, &self.name).await? {
            if holder.run == self.run {
                delete_if_unchanged(ctx, &self.name, &raw).await?;
            } else {
                ctx.ui.warn(&format!(
                    "the lease {} was taken over by {} while this run held it",
                    self.name,
                    holder.describe()
                ));
            }
        }
        Ok(())
    }
}

/// The result of a run under a lease, with the lease given back either
/// way (a failure to give it back is said, and does not hide the run's
/// own error).
pub async fn released<T>(ctx: &Ctx<'_>, lease: Lease, result: Result<T>) -> Result<T> {
    let name = lease.name.clone();
    match (result, lease.release(ctx).await) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(e)) => Err(e),
        (Err(e), released) => {
            if let Err(release_error) = released {
                ctx.ui.warn(&format!(
                    "could not give back the lease {name} ({release_error}); {}",
                    break_hint(ctx, &name)
                ));
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_stale_only_after_its_time() {
        let holder = this_run("up");
        let now = OffsetDateTime::now_utc();
        assert!(!holder.is_stale(now));
        assert!(holder.is_stale(now + STALE_AFTER + Duration::from_secs(1)));
        assert!(holder.describe().contains("(up) since"));
        let mut dead = holder.clone();
        dead.pid = u32::MAX;
        assert!(dead.died_here(&holder) && !holder.died_here(&holder));
        let names = Names::lab("gl", "us-east-1", "");
        assert_eq!(parameter_name(&names), "/glbox-lab/gl/lease");
    }
}
