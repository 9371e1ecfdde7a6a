//! EBS volumes: describe, create, attach and detach (one rule each for a
//! lost answer), modify, wait for many and delete. The box's data volume and
//! the lab's seat volumes go through these same functions.

use aws_sdk_ec2::types::{Filter, TagSpecification, Volume, VolumeModification, VolumeType};
use aws_sdk_ec2::Client;

use super::{Wait, IDS_PER_CALL};
use crate::aws::{has_code, ok_if, settled, AwsError, AwsResultExt, Lag};
use crate::error::{Error, Result};
use crate::ui::Ui;
use crate::wait::{self, Poll};

/// Every volume matching `filters`, all pages.
pub async fn describe(ec2: &Client, filters: Vec<Filter>) -> Result<Vec<Volume>, AwsError> {
    let mut pages = ec2
        .describe_volumes()
        .set_filters((!filters.is_empty()).then_some(filters))
        .into_paginator()
        .send();
    let mut volumes = Vec::new();
    while let Some(page) = pages.next().await {
        volumes.extend(page.ctx("ec2:DescribeVolumes")?.volumes().iter().cloned());
    }
    Ok(volumes)
}

/// The volumes `ids`; ids EC2 has just given may be unknown to it for a
/// moment, which is waited out.
async fn describe_ids(ec2: &Client, ui: &Ui, ids: &[String]) -> Result<Vec<Volume>, AwsError> {
    let mut found = Vec::new();
    for chunk in ids.chunks(IDS_PER_CALL) {
        let what = if chunk.len() == 1 {
            &chunk[0]
        } else {
            "volumes"
        };
        let out = settled(ui, &[Lag::FreshId], what, || {
            ec2.describe_volumes()
                .set_volume_ids(Some(chunk.to_vec()))
                .send()
        })
        .await
        .ctx("ec2:DescribeVolumes")?;
        found.extend(out.volumes().iter().cloned());
    }
    Ok(found)
}

/// One volume by id (EC2 may not know a fresh one for a moment).
pub async fn describe_one(ec2: &Client, ui: &Ui, id: &str) -> Result<Option<Volume>, AwsError> {
    let found = describe_ids(ec2, ui, &[id.to_string()]).await?;
    Ok(found.into_iter().next())
}

/// The volume's state ("available", "in-use", ...).
pub fn state_of(volume: &Volume) -> &str {
    volume.state().map(|s| s.as_str()).unwrap_or_default()
}

/// The instance the volume is attached to, in any attachment state but
/// detached.
pub fn attached_to(volume: &Volume) -> Option<&str> {
    volume
        .attachments()
        .iter()
        .find(|a| a.state().is_some_and(|s| s.as_str() != "detached"))
        .and_then(|a| a.instance_id())
}

/// Waits until every volume in `ids` is in `wait.state`, with one
/// DescribeVolumes per poll for all of them; returns them as last seen.
pub async fn wait_for(
    ec2: &Client,
    ui: &Ui,
    ids: &[String],
    wait: &Wait<'_>,
) -> Result<Vec<Volume>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    wait::until(ui, wait.what, wait.within, || async {
        let found = describe_ids(ec2, ui, ids).await?;
        let known = |id: &str| found.iter().find(|v| v.volume_id() == Some(id));
        if let Some(gone) = ids.iter().find(|id| known(id).is_none()) {
            return Err(Error::Refused(format!(
                "volume {gone} disappeared while glbox waited for it"
            )));
        }
        let ready = found.iter().filter(|v| state_of(v) == wait.state).count();
        if ready == ids.len() {
            return Ok(Poll::Ready(found));
        }
        Ok(Poll::Pending(if wait.counted {
            format!("{ready} of {} {}", ids.len(), wait.state)
        } else {
            found.first().map(state_of).unwrap_or_default().to_string()
        }))
    })
    .await
}

/// What CreateVolume makes: an encrypted gp3 volume.
pub struct NewVolume<'a> {
    pub zone: &'a str,
    pub size_gib: i32,
    pub iops: i32,
    pub throughput_mibps: i32,
    pub tags: TagSpecification,
    /// The snapshot the volume is made from (`glbox restore --snapshot`);
    /// `None`: an empty volume.
    pub snapshot_id: Option<&'a str>,
    /// Makes a retried call whose answer was lost return the same volume.
    pub client_token: &'a str,
}

/// Creates the volume; returns its id.
pub async fn create(ec2: &Client, volume: NewVolume<'_>) -> Result<String, AwsError> {
    let out = ec2
        .create_volume()
        .availability_zone(volume.zone)
        .volume_type(VolumeType::Gp3)
        .size(volume.size_gib)
        .iops(volume.iops)
        .throughput(volume.throughput_mibps)
        .encrypted(true)
        .set_snapshot_id(volume.snapshot_id.map(str::to_string))
        .tag_specifications(volume.tags)
        .client_token(volume.client_token)
        .send()
        .await
        .ctx("ec2:CreateVolume")?;
    Ok(out.volume_id().unwrap_or_default().to_string())
}

/// Attaches `volume` to `instance` at `device`. Both ids may be fresh, so
/// EC2 not knowing them yet is waited out. A retried call whose first
/// answer was lost finds the volume in use: that is success when it is
/// attached to `instance`, and an error when attached elsewhere.
pub async fn attach(
    ec2: &Client,
    ui: &Ui,
    volume: &str,
    instance: &str,
    device: &str,
) -> Result<(), AwsError> {
    let sent = settled(ui, &[Lag::FreshId], volume, || {
        ec2.attach_volume()
            .volume_id(volume)
            .instance_id(instance)
            .device(device)
            .send()
    })
    .await;
    match sent {
        Err(e) if has_code(&e, "VolumeInUse") => {
            let holder = describe_one(ec2, ui, volume).await?;
            if holder.as_ref().and_then(attached_to) == Some(instance) {
                return Ok(());
            }
            Err(crate::aws::error("ec2:AttachVolume", e))
        }
        other => other.ctx("ec2:AttachVolume").map(|_| ()),
    }
}

/// Detaches `volume` from `instance` (the instance is always named: the
/// emulator answers a DetachVolume without one with HTTP 500). A retried
/// call whose first answer was lost finds the volume no longer attached
/// there (`IncorrectState` on AWS for an available or detaching volume,
/// `InvalidAttachment.NotFound` for one attached elsewhere or nowhere):
/// that is success unless the volume is still attached (or attaching) to
/// `instance`; a detach under way is the caller's to wait for.
pub async fn detach(ec2: &Client, ui: &Ui, volume: &str, instance: &str) -> Result<(), AwsError> {
    let sent = ec2
        .detach_volume()
        .volume_id(volume)
        .instance_id(instance)
        .send()
        .await;
    match sent {
        Err(e) if has_code(&e, "IncorrectState") || has_code(&e, "InvalidAttachment.NotFound") => {
            let seen = describe_one(ec2, ui, volume).await?;
            let still = seen.iter().flat_map(|v| v.attachments()).any(|a| {
                a.instance_id() == Some(instance)
                    && a.state()
                        .is_some_and(|s| matches!(s.as_str(), "attached" | "attaching"))
            });
            if still {
                return Err(crate::aws::error("ec2:DetachVolume", e));
            }
            Ok(())
        }
        other => other.ctx("ec2:DetachVolume").map(|_| ()),
    }
}

/// What ModifyVolume did.
#[derive(Debug, PartialEq, Eq)]
pub enum Modified {
    Started,
    /// EBS allows no modification now (one every 6 hours, none while one
    /// is in progress): modified meanwhile, by someone else or by a run
    /// whose answer was lost.
    NotNow,
}

/// Asks EBS for new size, IOPS or throughput (`None`: unchanged).
pub async fn modify(
    ec2: &Client,
    id: &str,
    size_gib: Option<i32>,
    iops: Option<i32>,
    throughput_mibps: Option<i32>,
) -> Result<Modified, AwsError> {
    let sent = ec2
        .modify_volume()
        .volume_id(id)
        .set_size(size_gib)
        .set_iops(iops)
        .set_throughput(throughput_mibps)
        .send()
        .await;
    match sent {
        Err(e)
            if has_code(&e, "VolumeModificationRateExceeded")
                || has_code(&e, "IncorrectModificationState") =>
        {
            Ok(Modified::NotNow)
        }
        other => other.ctx("ec2:ModifyVolume").map(|_| Modified::Started),
    }
}

/// The volume's modifications EBS remembers.
pub async fn modifications(ec2: &Client, id: &str) -> Result<Vec<VolumeModification>, AwsError> {
    let out = ec2
        .describe_volumes_modifications()
        .volume_ids(id)
        .send()
        .await
        .ctx("ec2:DescribeVolumesModifications")?;
    Ok(out.volumes_modifications().to_vec())
}

/// Deletes the volume; one EC2 no longer knows is gone already.
pub async fn delete(ec2: &Client, id: &str) -> Result<(), AwsError> {
    let deleted = ec2.delete_volume().volume_id(id).send().await;
    ok_if("ec2:DeleteVolume", deleted, &["InvalidVolume.NotFound"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::replay::{answer, ec2_client, ec2_refusal, operations};
    use std::time::Duration;

    fn volumes(items: &[(&str, &str, Option<&str>)]) -> String {
        let items: String = items
            .iter()
            .map(|(id, state, instance)| {
                let attachment = instance
                    .map(|i| format!("<item><volumeId>{id}</volumeId><instanceId>{i}</instanceId><status>attached</status></item>"))
                    .unwrap_or_default();
                format!("<item><volumeId>{id}</volumeId><status>{state}</status><attachmentSet>{attachment}</attachmentSet></item>")
            })
            .collect();
        format!("<DescribeVolumesResponse><volumeSet>{items}</volumeSet></DescribeVolumesResponse>")
    }

    fn ui() -> Ui {
        Ui::new(crate::ui::Verbosity::Quiet)
    }

    #[tokio::test]
    async fn a_retried_attach_that_finds_the_volume_on_the_same_instance_succeeds() {
        let (ec2, replay) = ec2_client(vec![
            ec2_refusal("VolumeInUse"),
            answer(200, &volumes(&[("vol-1", "in-use", Some("i-1"))])),
        ]);
        attach(&ec2, &ui(), "vol-1", "i-1", "/dev/sdf")
            .await
            .unwrap();
        assert_eq!(operations(&replay), ["AttachVolume", "DescribeVolumes"]);
    }

    #[tokio::test]
    async fn a_volume_attached_elsewhere_is_an_error() {
        let (ec2, _) = ec2_client(vec![
            ec2_refusal("VolumeInUse"),
            answer(200, &volumes(&[("vol-1", "in-use", Some("i-other"))])),
        ]);
        let err = attach(&ec2, &ui(), "vol-1", "i-1", "/dev/sdf")
            .await
            .unwrap_err();
        assert_eq!(err.code.as_deref(), Some("VolumeInUse"));
    }

    #[tokio::test]
    async fn an_attach_answered_is_one_request() {
        let (ec2, replay) = ec2_client(vec![answer(200, "<AttachVolumeResponse/>")]);
        attach(&ec2, &ui(), "vol-1", "i-1", "/dev/sdf")
            .await
            .unwrap();
        assert_eq!(operations(&replay), ["AttachVolume"]);
    }

    #[tokio::test]
    async fn a_retried_detach_that_finds_the_volume_free_succeeds() {
        let (ec2, replay) = ec2_client(vec![
            ec2_refusal("IncorrectState"),
            answer(200, &volumes(&[("vol-1", "available", None)])),
        ]);
        detach(&ec2, &ui(), "vol-1", "i-1").await.unwrap();
        assert_eq!(operations(&replay), ["DetachVolume", "DescribeVolumes"]);
    }

    #[tokio::test]
    async fn a_refused_detach_of_a_volume_still_attached_is_an_error() {
        let (ec2, _) = ec2_client(vec![
            ec2_refusal("InvalidAttachment.NotFound"),
            answer(200, &volumes(&[("vol-1", "in-use", Some("i-1"))])),
        ]);
        let err = detach(&ec2, &ui(), "vol-1", "i-1").await.unwrap_err();
        assert_eq!(err.code.as_deref(), Some("InvalidAttachment.NotFound"));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_many_is_one_describe_per_poll() {
        let ids: Vec<String> = vec!["vol-1".into(), "vol-2".into()];
        let (ec2, replay) = ec2_client(vec![
            answer(
                200,
                &volumes(&[
                    ("vol-1", "available", None),
                    ("vol-2", "in-use", Some("i-1")),
                ]),
            ),
            answer(
                200,
                &volumes(&[("vol-1", "available", None), ("vol-2", "available", None)]),
            ),
        ]);
        let wait = Wait {
            state: "available",
            what: "2 volume(s) to be available",
            within: Duration::from_secs(60),
            counted: true,
        };
        let seen = wait_for(&ec2, &ui(), &ids, &wait).await.unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(operations(&replay), ["DescribeVolumes", "DescribeVolumes"]);
    }

    #[tokio::test]
    async fn deleting_a_volume_that_is_gone_succeeds() {
        let (ec2, replay) = ec2_client(vec![ec2_refusal("InvalidVolume.NotFound")]);
        delete(&ec2, "vol-1").await.unwrap();
        assert_eq!(operations(&replay), ["DeleteVolume"]);
    }

    #[tokio::test]
    async fn a_modification_ebs_refuses_for_now_is_not_an_error() {
        let (ec2, _) = ec2_client(vec![ec2_refusal("VolumeModificationRateExceeded")]);
        let modified = modify(&ec2, "vol-1", Some(200), None, None).await.unwrap();
        assert_eq!(modified, Modified::NotNow);
    }
}
