//! `glbox status`: each resource of the deployment with its id and state,
//! the instance's addresses, and the URL.

use serde::Serialize;

use crate::plan::Observed;
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
}

fn entry(resource: &'static str, id: Option<String>, state: impl Into<String>) -> ResourceStatus {
    ResourceStatus {
        resource,
        id,
        state: state.into(),
    }
}

const MISSING: &str = "missing";

pub fn status(ctx: &Ctx<'_>, observed: &Observed) -> Status {
    let holder = observed
        .data_volumes
        .iter()
        .find_map(|v| v.attached_to.as_deref());
    let (primary, duplicates) =
        crate::resources::instance::pick_primary(observed.live_instances(), holder);
    let instance = primary.as_ref();
    let ssh = ctx.settings.ssh.is_some();
    let mut resources = vec![
        entry(
            "security_group",
            observed.security_group.as_ref().map(|g| g.id.clone()),
            if observed.security_group.is_some() {
                "present"
            } else {
                MISSING
            },
        ),
        entry(
            "iam_role",
            observed.role.as_ref().map(|r| r.name.clone()),
            match &observed.role {
                None => MISSING,
                Some(r) if !r.owned => "not glbox's",
                Some(r) if r.converged() => "present",
                Some(_) => "drifted",
            },
        ),
        entry(
            "instance_profile",
            observed.profile.as_ref().map(|p| p.name.clone()),
            match &observed.profile {
                None => MISSING,
                Some(p) if !p.owned => "not glbox's",
                Some(_) => "present",
            },
        ),
    ];
    if ssh || observed.key_pair.is_some() {
        resources.push(entry(
            "key_pair",
            observed.key_pair.as_ref().map(|k| k.name.clone()),
            if observed.key_pair.is_some() {
                "present"
            } else {
                MISSING
            },
        ));
    }
    resources.push(entry(
        "instance",
        instance.map(|i| i.id.clone()),
        instance.map_or(MISSING.to_string(), |i| {
            format!("{} ({})", i.state, i.instance_type)
        }),
    ));
    for extra in &duplicates {
        resources.push(entry(
            "instance",
            Some(extra.id.clone()),
            format!("{} (duplicate)", extra.state),
        ));
    }
    if observed.data_volumes.is_empty() {
        resources.push(entry("data_volume", None, MISSING));
    }
    for v in &observed.data_volumes {
        let attachment = match &v.attached_to {
            Some(holder) => format!("attached to {holder}"),
            None => "not attached".to_string(),
        };
        resources.push(entry(
            "data_volume",
            Some(v.id.clone()),
            format!("{}, {} GiB, {attachment}", v.state, v.size_gib),
        ));
    }
    if ctx.settings.elastic_ip && observed.addresses.is_empty() {
        resources.push(entry("elastic_ip", None, MISSING));
    }
    for a in &observed.addresses {
        let association = match &a.instance_id {
            Some(i) => format!("associated with {i}"),
            None => "not associated".to_string(),
        };
        resources.push(entry(
            "elastic_ip",
            Some(a.allocation_id.clone()),
            format!("{}, {association}", a.public_ip),
        ));
    }
    let address = observed.addresses.first().map(|a| a.public_ip.as_str());
    if let Some((host, state)) =
        crate::resources::dns_record::status(ctx, observed.dns_record.as_ref(), address)
    {
        resources.push(entry("dns_record", Some(host), state));
    }
    resources.push(entry(
        "gitlab",
        instance.map(|i| i.id.clone()),
        match instance.map(|i| i.bootstrap_digest.is_some()) {
            Some(true) => "installed by glbox",
            _ => "not installed",
        },
    ));
    let mut email_complete = true;
    if ctx.settings.email.is_some() {
        resources.extend(email_entries(&observed.email));
        // A usable SMTP credential: the record and the password it names.
        email_complete = observed.email.credentials.current.is_some()
            && observed
                .parameters
                .contains(&crate::email::credentials::password_parameter(ctx));
    }
    let complete = email_complete
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
    }
}

fn email_entries(observed: &crate::email::Observed) -> Vec<ResourceStatus> {
    let identity = observed.identity();
    let user = observed.credentials.user.as_ref();
    vec![
        entry(
            "ses_identity",
            identity.map(|i| i.domain.clone()),
            identity.map_or(MISSING.to_string(), |i| {
                format!(
                    "verification {}, DKIM {}",
                    i.verification.to_lowercase(),
                    i.dkim_status.to_lowercase()
                )
            }),
        ),
        entry(
            "smtp_user",
            user.map(|u| u.name.clone()),
            match (user, &observed.credentials.current) {
                (None, _) => MISSING.to_string(),
                (Some(u), _) if !u.owned => "not glbox's".to_string(),
                (Some(_), Some(current)) => format!("access key {}", current.access_key_id),
                (Some(_), None) => "no SMTP key recorded (run glbox up)".to_string(),
            },
        ),
    ]
}
