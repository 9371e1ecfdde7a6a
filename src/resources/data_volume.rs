//! The data volume for `/var/opt/gitlab`: encrypted gp3, in the instance's
//! zone, attached at `/dev/sdf`. It outlives instance replacements and, by
//! default, `down`. glbox never deletes it on its own.

use std::time::Duration;

use aws_sdk_ec2::types::ResourceType;

use crate::aws::ec2::volumes::{self as gateway, Modified, NewVolume};
use crate::config::DataVolumeSettings;
use crate::error::{Error, Result};
use crate::names::Role;
use crate::ownership::{self, Kind, VolumeIntent};
use crate::resources::{Action, Ctx, PlanItem};

pub const DEVICE: &str = "/dev/sdf";
const STATE_WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct Volume {
    pub id: String,
    pub availability_zone: String,
    pub size_gib: i32,
    pub iops: i32,
    pub throughput_mibps: i32,
    pub state: String,
    /// The instance it is attached to (any attachment state but detached).
    pub attached_to: Option<String>,
}

pub fn from_sdk(v: &aws_sdk_ec2::types::Volume) -> Volume {
    Volume {
        id: v.volume_id().unwrap_or_default().to_string(),
        availability_zone: v.availability_zone().unwrap_or_default().to_string(),
        size_gib: v.size().unwrap_or_default(),
        iops: v.iops().unwrap_or_default(),
        throughput_mibps: v.throughput().unwrap_or_default(),
        state: gateway::state_of(v).to_string(),
        attached_to: gateway::attached_to(v).map(str::to_string),
    }
}

/// The deployment's data volumes, and apart from them those a restore
/// swapped out (kept, never used or deleted again), in one describe.
pub async fn observe(ctx: &Ctx<'_>) -> Result<(Vec<Volume>, Vec<Volume>)> {
    let filters = ctx
        .names
        .owned_filters_any(&[Role::DataVolume, Role::ReplacedDataVolume]);
    let found = gateway::describe(&ctx.aws.ec2, filters).await?;
    let (replaced, current): (Vec<_>, Vec<_>) = found.iter().partition(|v| {
        crate::names::ec2_tag(v.tags(), crate::names::TAG_ROLE)
            == Some(Role::ReplacedDataVolume.tag_value())
    });
    let sorted = |found: Vec<&aws_sdk_ec2::types::Volume>| {
        let mut volumes: Vec<Volume> = found.into_iter().map(from_sdk).collect();
        volumes.sort_by(|a, b| a.id.cmp(&b.id));
        volumes
    };
    Ok((sorted(current), sorted(replaced)))
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Modify {
    pub size_gib: Option<(i32, i32)>,
    pub iops: Option<(i32, i32)>,
    pub throughput_mibps: Option<(i32, i32)>,
    /// EBS refuses another modification of the volume until then (RFC 3339,
    /// UTC): the change waits for a later `up`.
    pub not_before: Option<String>,
}

impl Modify {
    fn is_empty(&self) -> bool {
        self.size_gib.is_none() && self.iops.is_none() && self.throughput_mibps.is_none()
    }
}

/// EBS allows one modification of a volume every six hours, and none while
/// one is in progress ("After modifying a volume, you must wait at least six
/// hours and ensure that the volume is in the in-use or available state
/// before you can modify the same volume": ModifyVolume, EC2 API reference,
/// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyVolume.html).
const MODIFY_COOLDOWN_SECS: i64 = 6 * 60 * 60;

/// When the plan would modify the volume, asks EBS when the volume's last
/// modification allows the next one; a change that must wait is marked
/// with that time, so `plan` shows it and `up` leaves it for later.
pub async fn with_cooldown(ctx: &Ctx<'_>, change: Change) -> Result<Change> {
    let Change::Update {
        id,
        attach,
        mut modify,
    } = change
    else {
        return Ok(change);
    };
    if !modify.is_empty() {
        modify.not_before = next_modification(ctx, &id).await?;
    }
    Ok(Change::Update { id, attach, modify })
}

/// The time the volume may next be modified, if that is in the future (or
/// a modification is still in progress).
async fn next_modification(ctx: &Ctx<'_>, id: &str) -> Result<Option<String>> {
    let modifications = gateway::modifications(&ctx.aws.ec2, id).await?;
    let latest = modifications
        .iter()
        .filter_map(|m| Some((m.start_time()?.secs(), m)))
        .max_by_key(|(start, _)| *start);
    let Some((start, modification)) = latest else {
        return Ok(None);
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let in_progress = modification
        .modification_state()
        .is_some_and(|s| s.as_str() == "modifying");
    let allowed = start + MODIFY_COOLDOWN_SECS;
    if allowed <= now && !in_progress {
        return Ok(None);
    }
    let at = time::OffsetDateTime::from_unix_timestamp(allowed.max(now))
        .map_err(|e| Error::Refused(format!("EBS reported an odd modification time: {e}")))?;
    Ok(Some(
        at.format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| Error::Refused(format!("internal: {e}")))?,
    ))
}

#[derive(Debug, Clone)]
pub enum Change {
    /// `resume`: an earlier run's intent to create one is open (the
    /// ledger lists it), so its volume may exist already.
    Create {
        resume: bool,
    },
    Update {
        id: String,
        attach: bool,
        modify: Modify,
    },
    NoChange {
        id: String,
    },
}

/// The data volume to use: the one attached to the instance, else the first.
/// Any other tagged data volume is reported, never deleted.
pub fn pick(volumes: &[Volume], instance_id: Option<&str>) -> (Option<Volume>, Vec<Volume>) {
    let index = volumes
        .iter()
        .position(|v| instance_id.is_some() && v.attached_to.as_deref() == instance_id)
        .unwrap_or(0);
    let mut rest = volumes.to_vec();
    if rest.is_empty() {
        return (None, rest);
    }
    let chosen = rest.remove(index);
    (Some(chosen), rest)
}

/// Compares the volume with the settings. `instance_id` is the instance it
/// must be attached to (`None` when that instance is about to be launched);
/// `intent_open`: the ledger lists an open intent to create one.
pub fn diff(
    desired: &DataVolumeSettings,
    current: Option<&Volume>,
    instance_id: Option<&str>,
    intent_open: bool,
) -> Result<Change> {
    let Some(volume) = current else {
        return Ok(Change::Create {
            resume: intent_open,
        });
    };
    if desired.size_gib < volume.size_gib {
        return Err(Error::Refused(format!(
            "data_volume.size_gib = {} is smaller than the volume's {} GiB: EBS volumes cannot shrink\n  fix: set data_volume.size_gib = {} (or more); to start smaller, snapshot the data, `glbox down --delete-data`, and `up` again",
            desired.size_gib, volume.size_gib, volume.size_gib
        )));
    }
    let change = |want: i32, have: i32| (want != have).then_some((have, want));
    let modify = Modify {
        size_gib: change(desired.size_gib, volume.size_gib),
        iops: change(desired.iops, volume.iops),
        throughput_mibps: change(desired.throughput_mibps, volume.throughput_mibps),
        not_before: None,
    };
    let attach = instance_id.is_none() || volume.attached_to.as_deref() != instance_id;
    if !attach && modify.is_empty() {
        Ok(Change::NoChange {
            id: volume.id.clone(),
        })
    } else {
        Ok(Change::Update {
            id: volume.id.clone(),
            attach,
            modify,
        })
    }
}

impl Change {
    pub fn item(&self, ctx: &Ctx<'_>, extra: &[Volume]) -> PlanItem {
        let name = ctx.names.name_of(Role::DataVolume);
        let d = ctx.settings.data_volume;
        let mut item = match self {
            Change::Create { .. } => PlanItem::new("data_volume", name, None, Action::Create)
                .with_changes(vec![
                    format!(
                        "encrypted gp3, {} GiB, {} IOPS, {} MiB/s",
                        d.size_gib, d.iops, d.throughput_mibps
                    ),
                    format!("attach at {DEVICE}"),
                ]),
            Change::Update { id, attach, modify } => {
                let mut changes = Vec::new();
                if *attach {
                    changes.push(format!("attach at {DEVICE}"));
                }
                let mut field = |label: &str, pair: Option<(i32, i32)>| {
                    if let Some((from, to)) = pair {
                        changes.push(format!("{label} {from} -> {to}"));
                    }
                };
                field("size_gib", modify.size_gib);
                field("iops", modify.iops);
                field("throughput_mibps", modify.throughput_mibps);
                if let Some(at) = &modify.not_before {
                    changes.push(format!(
                        "not before {at}: EBS allows one modification of a volume every 6 hours; a later glbox up applies it"
                    ));
                }
                PlanItem::new("data_volume", name, Some(id.clone()), Action::Update)
                    .with_changes(changes)
            }
            Change::NoChange { id } => {
                PlanItem::new("data_volume", name, Some(id.clone()), Action::NoChange)
            }
        };
        for other in extra {
            item.changes.push(format!(
                "note: {} is another data volume of this deployment; glbox leaves it alone",
                other.id
            ));
        }
        item
    }
}

/// Makes sure the volume exists (before the instance: the instance's user
/// data names it) and returns its id.
pub async fn ensure_exists(ctx: &Ctx<'_>, change: &Change, zone: &str) -> Result<String> {
    match change {
        Change::Create { resume } => {
            let id = create(ctx, zone, *resume).await?;
            ownership::close_intent(ctx, Kind::Volume).await?;
            Ok(id)
        }
        Change::NoChange { id } | Change::Update { id, .. } => Ok(id.clone()),
    }
}

/// Converges the volume onto `instance_id` (which is running).
pub async fn converge(ctx: &Ctx<'_>, change: &Change, id: &str, instance_id: &str) -> Result<()> {
    match change {
        Change::NoChange { .. } => Ok(()),
        Change::Create { .. } => attach(ctx, id, instance_id).await,
        Change::Update {
            attach: needs_attach,
            modify,
            ..
        } => {
            if !modify.is_empty() {
                apply_modify(ctx, id, modify).await?;
            }
            // The attachment does not wait for the modification.
            if *needs_attach {
                attach(ctx, id, instance_id).await?;
            }
            Ok(())
        }
    }
}

/// Creates the data volume and records it in the ledger (see
/// `ownership`); the caller then closes the intent (`ownership::close_intent`;
/// a lab closes its seats' intents together). With `resume`, the open
/// intent of a run that died between CreateVolume and the record is
/// replayed with its token: EC2 answers with the volume the interrupted
/// call made, which is then recorded instead of orphaned. Without it (the
/// ledger lists no intent) there is nothing to read.
pub async fn create(ctx: &Ctx<'_>, zone: &str, resume: bool) -> Result<String> {
    let replayed = match resume {
        true => ownership::read_intent::<VolumeIntent>(ctx, Kind::Volume).await?,
        false => None,
    };
    if let Some(intent) = &replayed {
        let id = send_create(ctx, intent).await?;
        // An intent left open after its volume was recorded (a crash
        // between the two) replays a volume that may since be gone: then
        // it is spent, and a fresh create follows.
        if gateway::describe_one(&ctx.aws.ec2, ctx.ui, &id)
            .await?
            .is_some_and(|v| !matches!(gateway::state_of(&v), "deleting" | "deleted"))
        {
            ownership::record(ctx, Kind::Volume, &id).await?;
            ctx.ui.info(&format!(
                "finished the data volume an interrupted run began: {id} ({} GiB)",
                intent.size_gib
            ));
            return Ok(id);
        }
    }
    let d = ctx.settings.data_volume;
    let intent = VolumeIntent {
        client_token: fresh_token(),
        zone: zone.to_string(),
        size_gib: d.size_gib,
        iops: d.iops,
        throughput_mibps: d.throughput_mibps,
    };
    ownership::open_intent(ctx, Kind::Volume, &intent).await?;
    let id = send_create(ctx, &intent).await?;
    // Made but not yet recorded: after a crash here the open intent lets
    // the next run finish it.
    crate::checkpoint::crash_point("volume-created").await;
    ownership::record(ctx, Kind::Volume, &id).await?;
    ctx.ui.info(&format!(
        "created data volume {id} ({} GiB)",
        intent.size_gib
    ));
    Ok(id)
}

/// CreateVolume as the intent describes it, tagged at creation.
async fn send_create(ctx: &Ctx<'_>, intent: &VolumeIntent) -> Result<String> {
    let volume = NewVolume {
        zone: &intent.zone,
        size_gib: intent.size_gib,
        iops: intent.iops,
        throughput_mibps: intent.throughput_mibps,
        tags: ctx.names.tag_spec(ResourceType::Volume, Role::DataVolume),
        snapshot_id: None,
        client_token: &intent.client_token,
    };
    Ok(gateway::create(&ctx.aws.ec2, volume).await?)
}

/// A ClientToken for one CreateVolume (AWS allows up to 64 characters).
fn fresh_token() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    format!("glbox-{}", Alphanumeric.sample_string(&mut rand::rng(), 32))
}

/// Modifies the volume, unless EBS does not allow it yet: that is said, and
/// the rest of `up` goes on.
async fn apply_modify(ctx: &Ctx<'_>, id: &str, modify: &Modify) -> Result<()> {
    let later = |at: &str| {
        ctx.ui.warn(&format!(
            "data volume {id} is not modified now: EBS allows one modification of a volume every 6 hours ({at}); run glbox up again then"
        ))
    };
    if let Some(at) = &modify.not_before {
        later(&format!("not before {at}"));
        return Ok(());
    }
    let modified = gateway::modify(
        &ctx.aws.ec2,
        id,
        modify.size_gib.map(|(_, to)| to),
        modify.iops.map(|(_, to)| to),
        modify.throughput_mibps.map(|(_, to)| to),
    )
    .await?;
    if modified == Modified::NotNow {
        later("EBS said so just now");
        return Ok(());
    }
    ctx.ui.info(&format!(
        "modifying data volume {id} (EBS applies it in the background)"
    ));
    if modify.size_gib.is_some() {
        ctx.ui.warn("the file system on the data volume must be grown on the box (resize2fs) to use the new size");
    }
    Ok(())
}

/// Attaches the volume, first waiting for it to be free (a replaced
/// instance releases it as it terminates).
async fn attach(ctx: &Ctx<'_>, id: &str, instance_id: &str) -> Result<()> {
    // The planner has made sure any current holder is the deployment's own.
    wait_for(ctx, id, "available").await?;
    gateway::attach(&ctx.aws.ec2, ctx.ui, id, instance_id, DEVICE).await?;
    wait_for(ctx, id, "in-use").await?;
    ctx.ui.info(&format!(
        "attached data volume {id} to {instance_id} at {DEVICE}"
    ));
    Ok(())
}

async fn wait_for(ctx: &Ctx<'_>, id: &str, state: &str) -> Result<Volume> {
    let what = format!("volume {id} to be {state}");
    let wait = crate::aws::ec2::Wait {
        state,
        what: &what,
        within: STATE_WAIT,
        counted: false,
    };
    let seen = gateway::wait_for(&ctx.aws.ec2, ctx.ui, &[id.to_string()], &wait).await?;
    seen.first()
        .map(from_sdk)
        .ok_or_else(|| Error::Refused(format!("volume {id} disappeared while glbox waited for it")))
}

/// `down --delete-data`: an optional final snapshot (tagged, kept), then the
/// volume. Returns the snapshot id.
pub async fn delete(ctx: &Ctx<'_>, volume: &Volume, snapshot: bool) -> Result<Option<String>> {
    if volume.attached_to.is_some() {
        wait_for(ctx, &volume.id, "available").await?;
    }
    let snapshot_id = if snapshot {
        let id = crate::aws::ec2::snapshots::create(
            &ctx.aws.ec2,
            &volume.id,
            format!(
                "glbox {}: final snapshot of the data volume",
                ctx.names.deployment
            ),
            ctx.names
                .tag_spec(ResourceType::Snapshot, Role::FinalSnapshot),
        )
        .await?;
        ctx.ui
            .info(&format!("started final snapshot {id} of {}", volume.id));
        Some(id)
    } else {
        None
    };
    // EBS finishes a started snapshot even after its volume is deleted.
    gateway::delete(&ctx.aws.ec2, &volume.id).await?;
    ownership::forget(ctx, vec![ownership::record_name(&ctx.names, &volume.id)]).await?;
    ctx.ui.info(&format!("deleted data volume {}", volume.id));
    Ok(snapshot_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(size: i32, attached: Option<&str>) -> Volume {
        Volume {
            id: "vol-1".into(),
            availability_zone: "us-east-1a".into(),
            size_gib: size,
            iops: 3000,
            throughput_mibps: 125,
            state: "in-use".into(),
            attached_to: attached.map(str::to_string),
        }
    }

    fn desired(size: i32) -> DataVolumeSettings {
        DataVolumeSettings {
            size_gib: size,
            iops: 3000,
            throughput_mibps: 125,
        }
    }

    #[test]
    fn growth_modifies_and_shrink_is_refused() {
        let Change::Update { modify, attach, .. } = diff(
            &desired(200),
            Some(&volume(100, Some("i-1"))),
            Some("i-1"),
            false,
        )
        .unwrap() else {
            panic!("expected an update");
        };
        assert_eq!(modify.size_gib, Some((100, 200)));
        assert!(!attach);
        let err = diff(
            &desired(50),
            Some(&volume(100, Some("i-1"))),
            Some("i-1"),
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("cannot shrink"), "{err}");
    }

    #[test]
    fn a_detached_volume_is_reattached() {
        let change = diff(&desired(100), Some(&volume(100, None)), Some("i-1"), false).unwrap();
        assert!(matches!(change, Change::Update { attach: true, .. }));
        let same = diff(
            &desired(100),
            Some(&volume(100, Some("i-1"))),
            Some("i-1"),
            false,
        )
        .unwrap();
        assert!(matches!(same, Change::NoChange { .. }));
    }

    #[test]
    fn a_missing_volume_resumes_only_an_intent_the_ledger_lists() {
        let fresh = diff(&desired(100), None, None, false).unwrap();
        assert!(matches!(fresh, Change::Create { resume: false }));
        let resumed = diff(&desired(100), None, Some("i-1"), true).unwrap();
        assert!(matches!(resumed, Change::Create { resume: true }));
    }
}
