//! `glbox status`: each resource of the deployment with its id and state,
//! the instance's addresses, and the URL; the entries come from the steps,
//! in `STATUS_ORDER`.

use serde::Serialize;

use super::plan::Observed;
use super::{in_order, STATUS_ORDER, STEPS};
use crate::resources::instance::{self, Instance};
use crate::resources::Ctx;

#[derive(Debug, Clone, Serialize)]
pub struct ResourceStatus {
    pub resource: &'static str,
    pub id: Option<String>,
    pub state: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub deployment: String,
    pub region: String,
    /// Every resource `up` creates is there.
    pub complete: bool,
    pub resources: Vec<ResourceStatus>,
    pub public_ip: Option<String>,
    pub public_dns: Option<String>,
    /// For access over a VPN or from inside the VPC.
    pub private_ip: Option<String>,
    pub url: Option<String>,
    /// Only with `--show-password`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_password: Option<String>,
    /// With email on: the SES identity, the sandbox, the records, the SMTP user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<crate::email::Report>,
    /// With backups: the newest snapshot and S3 backup (filled in by the
    /// `status` command, which lists the bucket).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backups: Option<crate::commands::backups::Newest>,
}

pub(crate) fn entry(
    resource: &'static str,
    id: Option<String>,
    state: impl Into<String>,
) -> ResourceStatus {
    ResourceStatus {
        resource,
        id,
        state: state.into(),
    }
}

pub(crate) const MISSING: &str = "missing";

/// What the steps' entries share: which live instance is the
/// deployment's (the one holding a data volume, else the oldest).
pub struct StatusView {
    pub primary: Option<Instance>,
    pub duplicates: Vec<Instance>,
}

pub fn status(ctx: &Ctx<'_>, observed: &Observed) -> Status {
    let holder = observed
        .data_volumes
        .iter()
        .find_map(|v| v.attached_to.as_deref());
    let (primary, duplicates) = instance::pick_primary(observed.live_instances(), holder);
    let view = StatusView {
        primary,
        duplicates,
    };
    let resources: Vec<ResourceStatus> = in_order(STATUS_ORDER, false)
        .flat_map(|step| step.component.status(ctx, observed, &view))
        .collect();
    let instance = view.primary.as_ref();
    let complete = STEPS.iter().all(|s| s.component.usable(ctx, observed))
        && resources.iter().all(|r| {
            r.state != MISSING && !r.state.contains("not ") && !r.state.contains("drifted")
        })
        && instance.is_some_and(|i| i.state == "running");
    let public_ip = instance.and_then(|i| i.public_ip.clone());
    let public_dns = instance.and_then(|i| i.public_dns.clone());
    let private_ip = instance.and_then(|i| i.private_ip.clone());
    let elastic_ip = observed.addresses.first().map(|a| a.public_ip.as_str());
    let url = crate::endpoint::gitlab_url(
        ctx.settings,
        elastic_ip,
        public_dns.as_deref(),
        public_ip.as_deref(),
    );
    Status {
        deployment: ctx.settings.name.clone(),
        region: ctx.settings.region.clone(),
        complete,
        resources,
        public_ip,
        public_dns,
        private_ip,
        url,
        root_password: None,
        email: crate::email::report(ctx, &observed.email),
        backups: None,
    }
}
