//! Carries out a plan in dependency order: network, identity and the data
//! volume first (the instance's user data names the volume), then the
//! instance, then what hangs off it (the volume's attachment, the address).

use serde::Serialize;

use crate::checkpoint::reached;
use crate::config::Settings;
use crate::error::Result;
use crate::plan::Plan;
use crate::resources::{
    data_volume, dns_record, elastic_ip, iam, instance, key_pair, security_group, Ctx,
};

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

/// The phases of `up`, as the progress display names them.
pub mod phase {
    pub const SECURITY_GROUP: &str = "security group";
    pub const IAM_ROLE: &str = "IAM role";
    pub const INSTANCE_PROFILE: &str = "instance profile";
    pub const KEY_PAIR: &str = "SSH key pair";
    pub const ROOT_PASSWORD: &str = "root password";
    pub const EMAIL: &str = "email (SES)";
    pub const DATA_VOLUME: &str = "data volume";
    pub const INSTANCE: &str = "instance";
    pub const VOLUME_ATTACHED: &str = "data volume attachment";
    pub const ELASTIC_IP: &str = "Elastic IP";
    pub const DNS_RECORD: &str = "DNS record";
    pub const BOOTSTRAP: &str = "GitLab install";
    pub const VERIFY: &str = "health checks";
}

/// The phases `up` goes through with these settings, in order. Steps that
/// only clean up (a key pair left from SSH mode) run inside the phase
/// before them.
pub fn phases(settings: &Settings, with_bootstrap: bool) -> Vec<&'static str> {
    use phase::*;
    let mut phases = vec![SECURITY_GROUP, IAM_ROLE, INSTANCE_PROFILE];
    if settings.ssh_access().is_some() {
        phases.push(KEY_PAIR);
    }
    phases.push(ROOT_PASSWORD);
    if settings.email.is_some() {
        phases.push(EMAIL);
    }
    phases.extend([DATA_VOLUME, INSTANCE, VOLUME_ATTACHED]);
    if settings.elastic_ip {
        phases.push(ELASTIC_IP);
    }
    if settings.dns_zone_id.is_some() {
        phases.push(DNS_RECORD);
    }
    if with_bootstrap {
        phases.extend([BOOTSTRAP, VERIFY]);
    }
    phases
}

pub async fn apply(ctx: &Ctx<'_>, plan: &Plan) -> Result<Applied> {
    ctx.ui.phase(phase::SECURITY_GROUP);
    let security_group_id =
        security_group::apply(ctx, &plan.security_group, &plan.placement.vpc_id).await?;
    reached("security-group").await?;
    ctx.ui.phase(phase::IAM_ROLE);
    iam::apply_role(ctx, &plan.role, &plan.policy).await?;
    reached("iam-role").await?;
    ctx.ui.phase(phase::INSTANCE_PROFILE);
    iam::apply_profile(ctx, &plan.profile).await?;
    reached("instance-profile").await?;
    ctx.ui.phase(phase::KEY_PAIR);
    key_pair::apply(ctx, &plan.key_pair).await?;
    reached("key-pair").await?;
    ctx.ui.phase(phase::ROOT_PASSWORD);
    crate::resources::parameters::apply(ctx, &plan.root_password).await?;
    reached("root-password").await?;
    ctx.ui.phase(phase::EMAIL);
    // Email before the instance: a refusal (SES or IAM permissions) stops
    // `up` before anything is launched.
    let email = crate::email::apply(ctx, &plan.email, plan.smtp_password_stored).await?;
    if let Some(marker) = &plan.email_use {
        crate::ownership::mark_email_use(ctx, marker).await?;
    }
    reached("email").await?;
    ctx.ui.phase(phase::DATA_VOLUME);
    let data_volume_id =
        data_volume::ensure_exists(ctx, &plan.data_volume, &plan.placement.availability_zone)
            .await?;
    reached("data-volume").await?;
    ctx.ui.phase(phase::INSTANCE);
    let inputs = instance::Inputs {
        security_group: &security_group_id,
        data_volume_id: &data_volume_id,
    };
    let instance = instance::apply(ctx, &plan.instance, &inputs).await?;
    reached("instance").await?;
    ctx.ui.phase(phase::VOLUME_ATTACHED);
    data_volume::converge(ctx, &plan.data_volume, &data_volume_id, &instance.id).await?;
    reached("volume-attached").await?;
    ctx.ui.phase(phase::ELASTIC_IP);
    let elastic_ip = elastic_ip::apply(ctx, &plan.elastic_ip, &instance.id).await?;
    reached("elastic-ip").await?;
    // Before any bootstrap: Let's Encrypt needs the name to resolve to the
    // box when the install runs.
    ctx.ui.phase(phase::DNS_RECORD);
    let dns_record = dns_record::apply(ctx, &plan.dns_record, elastic_ip.as_deref()).await?;
    reached("dns-record").await?;
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
        public_ip: elastic_ip.clone().or(instance.public_ip.clone()),
        public_dns: instance.public_dns.clone(),
        instance_id: instance.id.clone(),
        instance,
        elastic_ip,
        dns_record,
        security_group_id,
        data_volume_id,
        smtp_username: email.smtp_username,
    })
}
