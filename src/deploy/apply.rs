//! Carries out a plan step by step in [`STEPS`](super::STEPS) order:
//! network, identity and the data volume first (the instance's user data
//! names the volume), then the instance, then what hangs off it (the
//! volume's attachment, the address, the name). Each step ends at its
//! checkpoint.

use serde::Serialize;

use super::{earlier, Made, STEPS};
use crate::checkpoint::reached;
use crate::config::Settings;
use crate::error::Result;
use crate::resources::{dns_record, instance, Ctx};

use super::plan::Plan;

/// What `up` leaves behind, for the summary.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub instance_id: String,
    #[serde(skip)]
    pub instance: instance::Instance,
    pub elastic_ip: Option<String>,
    /// The external URL's record: made in Route 53, or to publish.
    pub dns_record: Option<dns_record::Record>,
    pub security_group_id: String,
    pub data_volume_id: String,
    pub public_ip: Option<String>,
    pub public_dns: Option<String>,
    /// The SES SMTP user GitLab must use (email on).
    #[serde(skip)]
    pub smtp_username: Option<String>,
}

/// The phases `up` goes through with these settings, in order.
pub fn phases(settings: &Settings, with_bootstrap: bool) -> Vec<&'static str> {
    STEPS
        .iter()
        .filter(|step| step.component.shown(settings, with_bootstrap))
        .flat_map(|step| step.phases.iter().copied())
        .collect()
}

/// Converges every step that `apply` runs (GitLab's install is run by `up`
/// after it, see `components::gitlab`).
pub async fn apply(ctx: &Ctx<'_>, plan: &Plan) -> Result<Applied> {
    let mut made = Made::default();
    for step in STEPS {
        let Some(work) = step.component.apply(ctx, plan, &mut made) else {
            continue;
        };
        ctx.ui.phase(step.phases[0]);
        work.await?;
        reached(step.checkpoint).await?;
    }
    let instance = earlier(&made.instance, "instance")?.clone();
    // A new or released address changes the instance's public IP and name.
    let instance = if !plan.elastic_ip.is_noop() {
        instance::wait_for_state(
            ctx,
            &instance.id,
            aws_sdk_ec2::types::InstanceStateName::Running,
        )
        .await?
    } else {
        instance
    };
    Ok(Applied {
        public_ip: made.elastic_ip.clone().or(instance.public_ip.clone()),
        public_dns: instance.public_dns.clone(),
        instance_id: instance.id.clone(),
        instance,
        elastic_ip: made.elastic_ip,
        dns_record: made.dns_record,
        security_group_id: earlier(&made.security_group_id, "security group")?.clone(),
        data_volume_id: earlier(&made.data_volume_id, "data volume")?.clone(),
        smtp_username: made.smtp_username,
    })
}
