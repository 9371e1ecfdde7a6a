//! A raised `gitlab.version` on a box that stays: the path it takes through
//! GitLab's required stops (the plan's line and the bootstrap's time
//! limit), the refusal of a downgrade, and the data volume's snapshot taken
//! before the package is touched. The walk itself runs on the box
//! (cloud-init/bootstrap.sh).

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};

use crate::aws::ec2::{self, snapshots, Wait};
use crate::config::{bad, GitlabVersion, Settings};
use crate::error::Result;
use crate::names::{Role, TAG_SNAPSHOT_REASON, TAG_UPGRADE_FROM, TAG_UPGRADE_TO};
use crate::resources::instance::Instance;
use crate::resources::Ctx;
use crate::upgrade_path::{self, Version};

const PRE_UPGRADE: &str = "pre-upgrade";
/// EBS copies only the blocks changed since the volume's last snapshot,
/// but a first one of a large volume can take long.
const SNAPSHOT_WAIT: std::time::Duration = std::time::Duration::from_secs(4 * 3600);

/// GitLab from one version to a newer one, through the stops between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    pub from: Version,
    pub to: Version,
    pub through: Vec<Version>,
}

impl Upgrade {
    /// "upgrade 17.0.1 -> 18.5.1 through 17.1.8, 17.3.7, ...".
    pub fn line(&self) -> String {
        let mut line = format!("upgrade {} -> {}", self.from, self.to);
        if !self.through.is_empty() {
            let stops: Vec<String> = self.through.iter().map(Version::to_string).collect();
            line.push_str(&format!(" through {}", stops.join(", ")));
        }
        line
    }

    /// How many packages the bootstrap installs: each stop, then the target.
    pub fn installs(&self) -> u32 {
        u32::try_from(self.through.len()).unwrap_or(u32::MAX) + 1
    }
}

/// The upgrade `settings` ask of `instance`: `None` for `latest` (the
/// newest at first install, never an upgrade by itself), the same version,
/// or a box whose version glbox has not recorded. A lower version is
/// refused: GitLab does not support downgrades.
pub fn of(settings: &Settings, instance: &Instance) -> Result<Option<Upgrade>> {
    let GitlabVersion::Pinned(wanted) = &settings.gitlab.version else {
        return Ok(None);
    };
    let (Some(to), Some(from)) = (
        Version::parse(wanted),
        instance.gitlab_version.as_deref().and_then(Version::parse),
    ) else {
        return Ok(None);
    };
    if to < from {
        return Err(bad(
            "gitlab.version",
            wanted,
            &format!(
                "is older than GitLab {from}, which runs on {}; GitLab does not support downgrades",
                instance.id
            ),
            format!(
                "set gitlab.version = \"{from}\" or newer (to go back, restore a snapshot taken before the upgrade)"
            ),
        )
        .into());
    }
    Ok((to > from).then(|| Upgrade {
        from,
        to,
        through: upgrade_path::through(from, to),
    }))
}

/// The data volume's snapshot before `upgrade`, completed: the one an
/// earlier (interrupted) run took for the same volume and versions, found
/// by its tags, else a new one. Returns its id.
pub async fn snapshot_before(ctx: &Ctx<'_>, upgrade: &Upgrade, volume_id: &str) -> Result<String> {
    let (from, to) = (upgrade.from.to_string(), upgrade.to.to_string());
    let mut filters = ctx.names.owned_filters(Role::Snapshot);
    filters.push(ec2::filter(
        format!("tag:{TAG_SNAPSHOT_REASON}"),
        &[PRE_UPGRADE],
    ));
    filters.push(ec2::filter(format!("tag:{TAG_UPGRADE_FROM}"), &[&from]));
    filters.push(ec2::filter(format!("tag:{TAG_UPGRADE_TO}"), &[&to]));
    filters.push(ec2::filter("volume-id", &[volume_id]));
    let earlier = snapshots::describe(&ctx.aws.ec2, filters)
        .await?
        .into_iter()
        .find(|s| snapshots::state_of(s) != "error")
        .and_then(|s| s.snapshot_id().map(str::to_string));
    let id = match earlier {
        Some(id) => id,
        None => {
            let id = snapshots::create(
                &ctx.aws.ec2,
                volume_id,
                format!(
                    "glbox: data volume of {} before GitLab {from} -> {to}",
                    ctx.names.deployment
                ),
                snapshot_tags(ctx, &from, &to),
            )
            .await?;
            ctx.ui.info(&format!(
                "snapshot {id} of {volume_id} taken before the upgrade"
            ));
            id
        }
    };
    let what = format!("snapshot {id} of the data volume to complete before the upgrade");
    snapshots::wait_completed(
        &ctx.aws.ec2,
        ctx.ui,
        std::slice::from_ref(&id),
        &Wait {
            state: "completed",
            what: &what,
            within: SNAPSHOT_WAIT,
            counted: false,
        },
    )
    .await?;
    Ok(id)
}

fn snapshot_tags(ctx: &Ctx<'_>, from: &str, to: &str) -> TagSpecification {
    let mut tags = ctx.names.ec2_tags(Role::Snapshot);
    for (key, value) in [
        (TAG_SNAPSHOT_REASON, PRE_UPGRADE),
        (TAG_UPGRADE_FROM, from),
        (TAG_UPGRADE_TO, to),
    ] {
        tags.push(Tag::builder().key(key).value(value).build());
    }
    TagSpecification::builder()
        .resource_type(ResourceType::Snapshot)
        .set_tags(Some(tags))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(version: Option<&str>) -> Instance {
        Instance {
            id: "i-1".into(),
            gitlab_version: version.map(str::to_string),
            ..Instance::default()
        }
    }

    fn pinned(version: &str) -> Settings {
        let mut settings = crate::test_support::settings("trial");
        settings.gitlab.version = GitlabVersion::Pinned(version.into());
        settings
    }

    #[test]
    fn a_raised_version_is_an_upgrade_through_the_stops_between() {
        let upgrade = of(&pinned("18.5.1"), &on(Some("17.0.1"))).unwrap().unwrap();
        assert_eq!(
            upgrade.line(),
            "upgrade 17.0.1 -> 18.5.1 through 17.1.8, 17.3.7, 17.5.5, 17.8.7, 17.11.7, 18.2.8"
        );
        assert_eq!(upgrade.installs(), 7);
        let small = of(&pinned("17.0.3"), &on(Some("17.0.1"))).unwrap().unwrap();
        assert_eq!(small.line(), "upgrade 17.0.1 -> 17.0.3");
    }

    #[test]
    fn no_upgrade_without_a_pin_a_known_version_or_a_change() {
        let latest = crate::test_support::settings("trial");
        assert_eq!(of(&latest, &on(Some("17.0.1"))).unwrap(), None);
        assert_eq!(of(&pinned("18.5.1"), &on(None)).unwrap(), None);
        assert_eq!(of(&pinned("18.5.1"), &on(Some("18.5.1"))).unwrap(), None);
    }

    #[test]
    fn a_downgrade_is_refused_naming_the_field_and_the_running_version() {
        let err = of(&pinned("17.0.1"), &on(Some("18.5.1"))).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.contains("gitlab.version = \"17.0.1\""), "{text}");
        assert!(text.contains("GitLab 18.5.1, which runs on i-1"), "{text}");
        assert!(text.contains("does not support downgrades"), "{text}");
    }
}
