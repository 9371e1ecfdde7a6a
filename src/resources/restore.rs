//! `glbox restore --snapshot`: a new data volume made from a snapshot is
//! swapped in for the current one, which is kept (tagged as replaced,
//! never deleted). Each step finds from AWS whether it is done, so a run
//! that dies anywhere is finished by the same command:
//!
//! 1. the intent (`<prefix>owned/intent-restore`): the snapshot, the volume
//!    being replaced, the instance and the CreateVolume token;
//! 2. the new volume (CreateVolume with that token: a replay answers with
//!    the volume the interrupted call made), recorded in the ledger;
//! 3. GitLab stopped and the old volume unmounted on the box, then the old
//!    volume detached (only while it is still attached);
//! 4. the old volume re-tagged as replaced, so no later run sees it as the
//!    deployment's data volume;
//! 5. the new volume attached at the same device, mounted, GitLab started;
//! 6. the bootstrap and the health checks (by the command), then the
//!    intent closed.

use std::time::Duration;

use aws_sdk_ec2::types::{ResourceType, Snapshot};
use serde::{Deserialize, Serialize};

use crate::aws::ec2::volumes::{self as gateway, NewVolume};
use crate::config::{bad, DataVolumeSettings};
use crate::error::{Error, Result};
use crate::names::{
    self, Names, Role, MANAGED_BY, TAG_MANAGED_BY, TAG_REPLACED_AT, TAG_REPLACED_BY,
};
use crate::ownership::{self, Kind, Ledger};
use crate::remote::Transport;
use crate::resources::data_volume::DEVICE;
use crate::resources::Ctx;

/// The safe points of a restore, in order (the crash tests stop at each).
pub const CHECKPOINTS: &[&str] = &[
    "restore-intent",
    "restore-volume",
    "restore-stopped",
    "restore-detached",
    "restore-retagged",
    "restore-attached",
    "restore-started",
    "restore-bootstrap",
];

const SWAP_SCRIPT: &str = include_str!("../../cloud-init/restore-swap.sh");
/// `gitlab-ctl stop` or `start` and a mount: minutes at most.
const SWAP_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const STATE_WAIT: Duration = Duration::from_secs(600);

/// What an open restore is doing; written before the first change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RestoreIntent {
    pub snapshot_id: String,
    /// The data volume being swapped out.
    pub replaced_volume_id: String,
    pub instance_id: String,
    /// CreateVolume's ClientToken: a replay returns the same volume.
    pub client_token: String,
    pub zone: String,
    pub size_gib: i32,
    pub iops: i32,
    pub throughput_mibps: i32,
    /// RFC 3339, UTC: also the replaced volume's `glbox:replaced-at`.
    pub started_at: String,
}

/// The snapshot to restore, as EC2 describes it.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub snapshot_id: String,
    pub size_gib: i32,
    /// When EBS took it (RFC 3339), if it says.
    pub taken_at: Option<String>,
    /// The volume it is a snapshot of.
    pub volume_id: Option<String>,
}

/// A snapshot id as EC2 writes them, refused before any AWS call.
pub fn check_id(id: &str) -> Result<()> {
    let hex = id.strip_prefix("snap-").unwrap_or_default();
    if (8..=17).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(());
    }
    Err(bad(
        "--snapshot",
        id,
        "is not an EBS snapshot id",
        "give one from glbox backups, such as snap-0123456789abcdef0",
    )
    .into())
}

/// The account's snapshot `id`, if it is one this deployment may restore.
pub async fn source(ctx: &Ctx<'_>, id: &str, ledger: &Ledger) -> Result<Source> {
    let filter = aws_sdk_ec2::types::Filter::builder()
        .name("snapshot-id")
        .values(id)
        .build();
    let found = crate::aws::ec2::snapshots::describe(&ctx.aws.ec2, vec![filter]).await?;
    let snapshot = found.first().ok_or_else(|| {
        Error::Refused(format!(
            "snapshot {id} is not one of this account's snapshots in {}: nothing was changed\n  fix: pick one from glbox backups (restore works within the deployment's region)",
            ctx.names.region
        ))
    })?;
    check_source(&ctx.names, &ctx.settings.data_volume, ledger, snapshot)
}

/// Refuses a snapshot that is not usable, not this deployment's or bigger
/// than the configured data volume; pure, so each refusal is tested alone.
pub fn check_source(
    names: &Names,
    desired: &DataVolumeSettings,
    ledger: &Ledger,
    snapshot: &Snapshot,
) -> Result<Source> {
    let id = snapshot.snapshot_id().unwrap_or_default().to_string();
    let state = crate::aws::ec2::snapshots::state_of(snapshot);
    if state != "completed" {
        return Err(Error::Refused(format!(
            "snapshot {id} is {state} ({}), not completed: EBS cannot make a volume from it yet\n  fix: wait until glbox backups shows it complete, then run this again",
            snapshot.progress().unwrap_or("no progress reported")
        )));
    }
    let tags = snapshot.tags();
    let (owner_tag, deployment) = names.owner();
    let tagged_owner = names::ec2_tag(tags, owner_tag);
    let volume_id = snapshot.volume_id().map(str::to_string);
    if let Some(other) = tagged_owner.filter(|o| *o != deployment) {
        return Err(Error::Refused(format!(
            "snapshot {id} belongs to deployment {other:?}, not {deployment:?}: nothing was changed\n  fix: restore it with that deployment's configuration, or pick one of {deployment:?}'s from glbox backups"
        )));
    }
    let tagged_mine = tagged_owner == Some(deployment)
        && names::ec2_tag(tags, TAG_MANAGED_BY) == Some(MANAGED_BY);
    let of_my_volume = volume_id.as_deref().is_some_and(|v| ledger.holds(v));
    if !tagged_mine && !of_my_volume {
        return Err(Error::Refused(format!(
            "snapshot {id} is not of deployment {deployment:?}: it carries neither its tags nor is it of a data volume glbox made for it ({}): nothing was changed\n  fix: pick one of {deployment:?}'s snapshots from glbox backups",
            volume_id.as_deref().unwrap_or("no volume")
        )));
    }
    let size_gib = snapshot.volume_size().unwrap_or_default();
    if size_gib > desired.size_gib {
        return Err(bad(
            "data_volume.size_gib",
            desired.size_gib,
            &format!("is smaller than snapshot {id}'s {size_gib} GiB: a volume cannot be smaller than its snapshot"),
            format!("set data_volume.size_gib = {size_gib} (or more) in glbox.toml, then run this again"),
        )
        .into());
    }
    Ok(Source {
        snapshot_id: id,
        size_gib,
        taken_at: snapshot.start_time().and_then(|t| {
            t.fmt(aws_sdk_ec2::primitives::DateTimeFormat::DateTime)
                .ok()
        }),
        volume_id,
    })
}

/// The intent of a new restore, with a fresh token.
pub fn new_intent(
    ctx: &Ctx<'_>,
    source: &Source,
    instance_id: &str,
    replaced: &crate::resources::data_volume::Volume,
) -> RestoreIntent {
    use rand::distr::{Alphanumeric, SampleString};
    let d = ctx.settings.data_volume;
    RestoreIntent {
        snapshot_id: source.snapshot_id.clone(),
        replaced_volume_id: replaced.id.clone(),
        instance_id: instance_id.to_string(),
        client_token: format!(
            "glbox-restore-{}",
            Alphanumeric.sample_string(&mut rand::rng(), 32)
        ),
        zone: replaced.availability_zone.clone(),
        size_gib: d.size_gib,
        iops: d.iops,
        throughput_mibps: d.throughput_mibps,
        started_at: now(),
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("UTC times format as RFC 3339")
}

/// The open restore's intent, if any.
pub async fn open_intent(ctx: &Ctx<'_>, ledger: &Ledger) -> Result<Option<RestoreIntent>> {
    if !ledger.is_open(Kind::Restore) {
        return Ok(None);
    }
    ownership::read_intent(ctx, Kind::Restore).await
}

/// `up` while a restore is half done would pick a data volume on its own
/// (the old one detached, the new one perhaps not attached yet): refused,
/// naming the command that finishes the restore.
pub async fn refuse_unfinished(ctx: &Ctx<'_>, ledger: &Ledger) -> Result<()> {
    let Some(intent) = open_intent(ctx, ledger).await? else {
        return Ok(());
    };
    Err(Error::Refused(format!(
        "a restore of {} onto this deployment is not finished (started {}), so glbox up would not know which data volume to use\n  fix: run glbox restore --snapshot {} (it picks up where it stopped)",
        intent.snapshot_id, intent.started_at, intent.snapshot_id
    )))
}

/// Writes the intent before anything changes.
pub async fn record_intent(ctx: &Ctx<'_>, intent: &RestoreIntent) -> Result<()> {
    ownership::open_intent(ctx, Kind::Restore, intent).await?;
    crate::checkpoint::reached("restore-intent").await
}

/// The restore is finished (GitLab verified on the new volume).
pub async fn close_intent(ctx: &Ctx<'_>) -> Result<()> {
    ownership::close_intent(ctx, Kind::Restore).await
}

/// Steps 2 to 5: the new volume, made from the snapshot, attached to the
/// instance in the old one's place, GitLab started on it. Returns its id.
pub async fn swap(ctx: &Ctx<'_>, intent: &RestoreIntent, transport: &Transport) -> Result<String> {
    let on_instance = |v: &Option<aws_sdk_ec2::types::Volume>| {
        v.as_ref().and_then(gateway::attached_to) == Some(intent.instance_id.as_str())
    };
    let new = create_volume(ctx, intent).await?;
    crate::checkpoint::reached("restore-volume").await?;
    // A resumed restore may find it attached already.
    if !on_instance(&describe(ctx, &new).await?) {
        wait_for(ctx, &new, "available", true).await?;
    }
    let old = describe(ctx, &intent.replaced_volume_id).await?;
    if on_instance(&old) {
        run_on_box(
            ctx,
            transport,
            "stopping GitLab for the restore",
            &swap_script("stop", None),
        )
        .await?;
        crate::checkpoint::reached("restore-stopped").await?;
        gateway::detach(
            &ctx.aws.ec2,
            ctx.ui,
            &intent.replaced_volume_id,
            &intent.instance_id,
        )
        .await?;
        wait_for(ctx, &intent.replaced_volume_id, "available", false).await?;
        ctx.ui.info(&format!(
            "detached data volume {} from {}",
            intent.replaced_volume_id, intent.instance_id
        ));
    }
    crate::checkpoint::reached("restore-detached").await?;
    if old.as_ref().is_some_and(|v| !is_replaced(v)) {
        mark_replaced(ctx, intent, &new).await?;
    }
    crate::checkpoint::reached("restore-retagged").await?;
    if !on_instance(&describe(ctx, &new).await?) {
        gateway::attach(&ctx.aws.ec2, ctx.ui, &new, &intent.instance_id, DEVICE).await?;
        wait_for(ctx, &new, "in-use", false).await?;
        ctx.ui.info(&format!(
            "attached data volume {new} (from {}) to {} at {DEVICE}",
            intent.snapshot_id, intent.instance_id
        ));
    }
    crate::checkpoint::reached("restore-attached").await?;
    run_on_box(
        ctx,
        transport,
        "starting GitLab on the restored data",
        &swap_script("start", Some(&new)),
    )
    .await?;
    crate::checkpoint::reached("restore-started").await?;
    Ok(new)
}

/// CreateVolume from the snapshot as the intent describes it, tagged as
/// the deployment's data volume at creation, then recorded as glbox's.
async fn create_volume(ctx: &Ctx<'_>, intent: &RestoreIntent) -> Result<String> {
    let volume = NewVolume {
        zone: &intent.zone,
        size_gib: intent.size_gib,
        iops: intent.iops,
        throughput_mibps: intent.throughput_mibps,
        tags: ctx.names.tag_spec(ResourceType::Volume, Role::DataVolume),
        snapshot_id: Some(&intent.snapshot_id),
        client_token: &intent.client_token,
    };
    let id = gateway::create(&ctx.aws.ec2, volume).await?;
    ownership::record(ctx, Kind::Volume, &id).await?;
    ctx.ui.info(&format!(
        "data volume {id} made from {} ({} GiB)",
        intent.snapshot_id, intent.size_gib
    ));
    Ok(id)
}

async fn describe(ctx: &Ctx<'_>, id: &str) -> Result<Option<aws_sdk_ec2::types::Volume>> {
    Ok(gateway::describe_one(&ctx.aws.ec2, ctx.ui, id).await?)
}

fn is_replaced(volume: &aws_sdk_ec2::types::Volume) -> bool {
    names::ec2_tag(volume.tags(), names::TAG_ROLE) == Some(Role::ReplacedDataVolume.tag_value())
}

/// The old volume's role becomes "replaced-data" (the deployment no longer
/// finds it as its data volume; `down` never deletes it), with when and by
/// which restore.
async fn mark_replaced(ctx: &Ctx<'_>, intent: &RestoreIntent, new: &str) -> Result<()> {
    let by = format!("restore of {} onto {new}", intent.snapshot_id);
    let name = ctx.names.name_of(Role::ReplacedDataVolume);
    crate::aws::ec2::instances::create_tags(
        &ctx.aws.ec2,
        ctx.ui,
        &[&intent.replaced_volume_id],
        &[
            (names::TAG_ROLE, Role::ReplacedDataVolume.tag_value()),
            ("Name", &name),
            (TAG_REPLACED_AT, &intent.started_at),
            (TAG_REPLACED_BY, &by),
        ],
    )
    .await?;
    ctx.ui.info(&format!(
        "kept the replaced data volume {} (tagged {}={}; glbox never deletes it)",
        intent.replaced_volume_id,
        names::TAG_ROLE,
        Role::ReplacedDataVolume.tag_value()
    ));
    Ok(())
}

async fn wait_for(ctx: &Ctx<'_>, id: &str, state: &str, fresh: bool) -> Result<()> {
    let what = format!(
        "{}volume {id} to be {state}",
        if fresh { "new " } else { "" }
    );
    let wait = crate::aws::ec2::Wait {
        state,
        what: &what,
        within: STATE_WAIT,
        counted: false,
    };
    gateway::wait_for(&ctx.aws.ec2, ctx.ui, &[id.to_string()], &wait).await?;
    Ok(())
}

/// The swap script with its values in front.
pub fn swap_script(step: &str, volume_id: Option<&str>) -> String {
    let (shebang, body) = SWAP_SCRIPT
        .split_once('\n')
        .unwrap_or(("#!/bin/bash", SWAP_SCRIPT));
    let mut out = format!(
        "{shebang}\nGLBOX_RESTORE_STEP={}\n",
        crate::bootstrap::shell_quote(step)
    );
    if let Some(id) = volume_id {
        out.push_str(&format!(
            "GLBOX_DATA_VOLUME={}\n",
            crate::bootstrap::shell_quote(id)
        ));
    }
    out.push_str(body);
    out
}

async fn run_on_box(ctx: &Ctx<'_>, transport: &Transport, what: &str, script: &str) -> Result<()> {
    ctx.ui.info(what);
    let outcome = transport.run(ctx, what, script, SWAP_TIMEOUT).await?;
    if outcome.succeeded() {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "{what} failed ({}):\n{}\n  fix: correct the cause shown above, then run the same glbox restore again (it picks up where it stopped)",
        outcome.status,
        outcome
            .tail(20)
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{SnapshotState, Tag};

    fn desired(size: i32) -> DataVolumeSettings {
        DataVolumeSettings {
            size_gib: size,
            iops: 3000,
            throughput_mibps: 125,
        }
    }

    fn snapshot(state: SnapshotState, size: i32, tags: &[(&str, &str)], volume: &str) -> Snapshot {
        Snapshot::builder()
            .snapshot_id("snap-0123456789abcdef0")
            .state(state)
            .volume_size(size)
            .volume_id(volume)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                    .collect(),
            ))
            .build()
    }

    const MINE: &[(&str, &str)] = &[("glbox:deployment", "t"), ("glbox:managed-by", "glbox")];

    #[test]
    fn a_snapshot_id_is_checked_before_aws() {
        assert!(check_id("snap-0123456789abcdef0").is_ok());
        assert!(check_id("snap-01234567").is_ok());
        for bad in [
            "vol-0123456789abcdef0",
            "snap-",
            "snap-xyz12345",
            "0123456789",
        ] {
            let err = check_id(bad).unwrap_err().to_string();
            assert!(err.contains("--snapshot") && err.contains("fix:"), "{err}");
        }
    }

    #[test]
    fn only_this_deployments_completed_snapshots_that_fit_are_restored() {
        let names = Names::new("t", "us-east-1");
        let none = Ledger::default();
        let ok = check_source(
            &names,
            &desired(100),
            &none,
            &snapshot(SnapshotState::Completed, 100, MINE, "vol-1"),
        )
        .unwrap();
        assert_eq!(ok.size_gib, 100);

        let pending = snapshot(SnapshotState::Pending, 100, MINE, "vol-1");
        let err = check_source(&names, &desired(100), &none, &pending).unwrap_err();
        assert!(err.to_string().contains("not completed"), "{err}");

        let theirs = snapshot(
            SnapshotState::Completed,
            100,
            &[("glbox:deployment", "prod"), ("glbox:managed-by", "glbox")],
            "vol-1",
        );
        let err = check_source(&names, &desired(100), &none, &theirs).unwrap_err();
        assert!(err.to_string().contains("\"prod\""), "{err}");

        let untagged = snapshot(SnapshotState::Completed, 100, &[], "vol-1");
        let err = check_source(&names, &desired(100), &none, &untagged).unwrap_err();
        assert!(err.to_string().contains("not of deployment"), "{err}");
        // Untagged, but of a volume glbox made for the deployment (a
        // schedule that does not copy tags).
        let parameters = vec!["/glbox/t/owned/vol-1".to_string()];
        let ledger = Ledger::from_parameters(&names, &parameters);
        assert!(check_source(&names, &desired(100), &ledger, &untagged).is_ok());

        let big = snapshot(SnapshotState::Completed, 200, MINE, "vol-1");
        let err = check_source(&names, &desired(100), &none, &big)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("data_volume.size_gib") && err.contains("200"),
            "{err}"
        );
    }

    #[test]
    fn the_swap_script_gets_its_values_first_and_quoted() {
        let script = swap_script("start", Some("vol-1'x"));
        assert!(
            script.starts_with(
                "#!/bin/bash\nGLBOX_RESTORE_STEP='start'\nGLBOX_DATA_VOLUME='vol-1'\\''x'\n"
            ),
            "{script}"
        );
        assert!(!swap_script("stop", None).contains("GLBOX_DATA_VOLUME="));
    }
}
