//! GitLab itself: installed or reconfigured on the instance, then checked.
//! `up` runs the install after `apply` (it may first wait for the public
//! DNS name) and passes this step's checkpoint there; the instance takes
//! it away in `down`.

use crate::config::Settings;
use crate::deploy::plan::{Observed, Plan};
use crate::deploy::status::{entry, ResourceStatus, StatusView};
use crate::deploy::{Component, Part, Step};
use crate::resources::{instance, Ctx, PlanItem};

pub const PHASE: &str = "GitLab install";
pub const VERIFY_PHASE: &str = "health checks";

pub const STEP: Step = Step {
    phases: &[PHASE, VERIFY_PHASE],
    checkpoint: "bootstrap",
    part: Part::GitLab,
    component: &Gitlab,
};

pub struct Gitlab;

impl Component for Gitlab {
    fn shown(&self, _settings: &Settings, with_bootstrap: bool) -> bool {
        with_bootstrap
    }

    /// `None` with `--no-bootstrap`.
    fn items(&self, ctx: &Ctx<'_>, plan: &Plan, _observed: &Observed) -> Vec<PlanItem> {
        let Some(bootstrap) = &plan.bootstrap else {
            return Vec::new();
        };
        let instance_id = match &plan.instance.change {
            instance::Change::Update { id, .. } | instance::Change::NoChange { id } => {
                Some(id.as_str())
            }
            _ => None,
        };
        vec![bootstrap.item(ctx, instance_id)]
    }

    fn is_noop(&self, plan: &Plan) -> bool {
        matches!(
            plan.bootstrap,
            None | Some(crate::bootstrap::Change::NoChange)
        )
    }

    fn status(
        &self,
        _ctx: &Ctx<'_>,
        _observed: &Observed,
        view: &StatusView,
    ) -> Vec<ResourceStatus> {
        let instance = view.primary.as_ref();
        let state = match instance.filter(|i| i.bootstrap_digest.is_some()) {
            None => "not installed".to_string(),
            // The version the last bootstrap reported, where glbox recorded it.
            Some(i) => match &i.gitlab_version {
                Some(version) => format!("installed by glbox (GitLab {version})"),
                None => "installed by glbox".to_string(),
            },
        };
        vec![entry("gitlab", instance.map(|i| i.id.clone()), state)]
    }
}
