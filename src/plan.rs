//! Observe what the deployment has in AWS (by tags, every run: AWS is the
//! state) and compare it with the settings. Only read-only calls happen
//! here; a plan with nothing to do is what makes a repeated `up` free.

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ownership::{self, AddressIntent, Kind, Ledger};
use crate::resources::data_volume::{self, Volume};
use crate::resources::elastic_ip::{self, Address, EipPlan};
use crate::resources::iam::{self, ProfileChange, ProfileState, RoleChange, RoleState};
use crate::resources::instance::{self, Instance, InstancePlan};
use crate::resources::key_pair::{self, KeyPair};
use crate::resources::placement::{self, Placement};
use crate::resources::security_group::{self, SecurityGroup};
use crate::resources::{Action, Ctx, PlanItem};

/// Everything of the deployment that AWS reports.
#[derive(Debug, Clone)]
pub struct Observed {
    pub security_group: Option<SecurityGroup>,
    pub role: Option<RoleState>,
    pub profile: Option<ProfileState>,
    pub key_pair: Option<KeyPair>,
    /// Terminated instances included (AWS lists them for about an hour).
    pub instances: Vec<Instance>,
    pub data_volumes: Vec<Volume>,
    pub addresses: Vec<Address>,
    /// Names of the SSM parameters under `/glbox/<name>/`.
    pub parameters: Vec<String>,
    pub email: crate::email::Observed,
    /// The external URL's record in `dns.route53_zone_id`, with a zone.
    pub dns_record: Option<crate::resources::dns_record::Observed>,
    /// Live instances, volumes and addresses that carry the deployment's
    /// tags without the evidence that glbox made them (see `ownership`):
    /// left alone, and said why. `instances`, `data_volumes` and
    /// `addresses` hold only glbox's own.
    pub foreign: Vec<String>,
    /// Every address with the deployment's tags, glbox's or not.
    pub tagged_addresses: Vec<String>,
    /// glbox's addresses an interrupted allocation did not record.
    pub unrecorded_addresses: Vec<String>,
    pub ledger: Ledger,
    /// Why `down --delete-email-identity` must keep the SES identity
    /// (glbox did not make it, or another deployment uses it); filled in
    /// by `down` only, `None` otherwise.
    pub email_identity_keep: Option<String>,
}

impl Observed {
    pub fn live_instances(&self) -> Vec<Instance> {
        instance::live(&self.instances)
    }
}

/// Reads the deployment's resources, all lookups at once.
pub async fn observe(ctx: &Ctx<'_>) -> Result<Observed> {
    let policy = iam::role_policies(ctx);
    let (
        security_group,
        role,
        profile,
        key_pair,
        instances,
        data_volumes,
        addresses,
        parameters,
        email,
        dns_record,
    ) = tokio::try_join!(
        security_group::observe(ctx),
        iam::observe_role(ctx, &policy),
        iam::observe_profile(ctx),
        key_pair::observe(ctx),
        instance::observe(ctx),
        data_volume::observe(ctx),
        elastic_ip::describe_tagged(ctx),
        crate::resources::parameters::observe(ctx),
        crate::email::observe(ctx),
        crate::resources::dns_record::observe(ctx),
    )?;
    let ledger = Ledger::from_parameters(&ctx.names, &parameters);
    let (instances, foreign_instances) =
        ownership::split(&instances, |i| ownership::owns_instance(&ctx.names, i));
    let (data_volumes, foreign_volumes) = ownership::split(&data_volumes, |v| ledger.holds(&v.id));
    let address_intent = match ledger.is_open(Kind::Address) {
        true => ownership::read_intent::<AddressIntent>(ctx, Kind::Address).await?,
        false => None,
    };
    let tagged_addresses: Vec<String> = addresses.iter().map(|a| a.allocation_id.clone()).collect();
    // While an allocation's intent is open, an address that was not there
    // before it is the one the interrupted run made.
    let made_meanwhile = |id: &str| {
        address_intent
            .as_ref()
            .is_some_and(|intent| !intent.existing.contains(id))
    };
    let (addresses, foreign_addresses) = ownership::split(&addresses, |a| {
        ledger.holds(&a.allocation_id) || made_meanwhile(&a.allocation_id)
    });
    let unrecorded_addresses = addresses
        .iter()
        .filter(|a| !ledger.holds(&a.allocation_id))
        .map(|a| a.allocation_id.clone())
        .collect();
    let mut foreign: Vec<String> = instance::live(&foreign_instances)
        .iter()
        .map(|i| ownership::foreign_instance_note(&ctx.names, &i.id))
        .collect();
    foreign.extend(
        foreign_volumes
            .iter()
            .map(|v| ownership::foreign_note(&ctx.names, "data volume", &v.id)),
    );
    foreign.extend(foreign_addresses.iter().map(|a| {
        ownership::foreign_note(
            &ctx.names,
            "Elastic IP",
            &format!("{} ({})", a.allocation_id, a.public_ip),
        )
    }));
    Ok(Observed {
        security_group,
        role,
        profile,
        key_pair,
        instances,
        data_volumes,
        addresses,
        parameters,
        email,
        dns_record,
        foreign,
        tagged_addresses,
        unrecorded_addresses,
        ledger,
        email_identity_keep: None,
    })
}

/// Names what carries the deployment's tags but is not glbox's.
pub fn warn_foreign(ctx: &Ctx<'_>, observed: &Observed) {
    for note in &observed.foreign {
        ctx.ui.warn(note);
    }
}

/// What `up` will do, resource by resource.
#[derive(Debug, Clone)]
pub struct Plan {
    pub placement: Placement,
    pub security_group: security_group::Change,
    pub role: RoleChange,
    pub profile: ProfileChange,
    /// The instance role's inline policies, by name.
    pub policy: std::collections::BTreeMap<String, Value>,
    pub key_pair: key_pair::Change,
    pub instance: InstancePlan,
    pub data_volume: data_volume::Change,
    /// Other data volumes of the deployment: reported, never touched.
    pub extra_volumes: Vec<Volume>,
    pub elastic_ip: EipPlan,
    pub dns_record: crate::resources::dns_record::Change,
    /// The Elastic IP the plan keeps, when it exists already.
    pub kept_address: Option<String>,
    pub root_password: crate::resources::parameters::Change,
    pub email: crate::email::Plan,
    /// Whether the SMTP password parameter exists (it is then overwritten,
    /// not created).
    pub smtp_password_stored: bool,
    /// `None` with `--no-bootstrap`.
    pub bootstrap: Option<crate::bootstrap::Change>,
    /// The marker that this deployment uses its SES identity (see
    /// `ownership::email_use_name`), when it is still to be written.
    pub email_use: Option<String>,
}

/// The plan as data (`--output json`) and the source of the text table.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    pub deployment: String,
    pub region: String,
    pub changes: bool,
    pub resources: Vec<PlanItem>,
}

impl Plan {
    pub fn items(&self, ctx: &Ctx<'_>, observed: &Observed) -> Vec<PlanItem> {
        let mut items = vec![
            self.security_group.item(ctx),
            self.role.item(ctx),
            self.profile.item(ctx),
        ];
        items.extend(self.key_pair.item(ctx));
        items.extend(self.instance.items(ctx));
        items.push(self.data_volume.item(ctx, &self.extra_volumes));
        items.extend(self.elastic_ip.items(ctx));
        items.extend(self.dns_record.item(self.kept_address.as_deref()));
        items.push(self.root_password.item(ctx));
        items.extend(self.email.items(ctx, &observed.email));
        if let Some(marker) = &self.email_use {
            items.push(
                PlanItem::new("email_identity_use", marker.clone(), None, Action::Create)
                    .with_changes(vec![
                        "record that this deployment sends as the SES identity".into(),
                    ]),
            );
        }
        if let Some(bootstrap) = &self.bootstrap {
            let instance_id = match &self.instance.change {
                instance::Change::Update { id, .. } | instance::Change::NoChange { id } => {
                    Some(id.as_str())
                }
                _ => None,
            };
            items.push(bootstrap.item(ctx, instance_id));
        }
        items
    }

    pub fn report(&self, ctx: &Ctx<'_>, observed: &Observed) -> PlanReport {
        let resources = self.items(ctx, observed);
        PlanReport {
            deployment: ctx.settings.name.clone(),
            region: ctx.settings.region.clone(),
            changes: resources.iter().any(|i| i.action != Action::NoChange),
            resources,
        }
    }

    pub fn is_noop(&self) -> bool {
        matches!(self.security_group, security_group::Change::NoChange { .. })
            && self.role == RoleChange::NoChange
            && self.profile == ProfileChange::NoChange
            && matches!(
                self.key_pair,
                key_pair::Change::NoChange { .. } | key_pair::Change::Absent
            )
            && self.instance.is_noop()
            && matches!(self.data_volume, data_volume::Change::NoChange { .. })
            && self.elastic_ip.is_noop()
            && self.dns_record.is_noop()
            && self.root_password == crate::resources::parameters::Change::NoChange
            && self.email.is_noop()
            && self.email_use.is_none()
            && matches!(
                self.bootstrap,
                None | Some(crate::bootstrap::Change::NoChange)
            )
    }
}

/// Compares what is there with the settings. Besides the pure diff, it
/// looks up what a launch needs (image, zone) only when a launch is due.
pub async fn make(ctx: &Ctx<'_>, observed: &Observed, with_bootstrap: bool) -> Result<Plan> {
    refuse_foreign_iam(observed)?;
    let volume_holder = check_volume_holders(observed)?;
    let (primary, duplicates) =
        instance::pick_primary(observed.live_instances(), volume_holder.as_deref());
    let (chosen_volume, extra_volumes) = data_volume::pick(
        &observed.data_volumes,
        primary.as_ref().map(|i| i.id.as_str()),
    );
    // A launch is likely: check the type exists before looking for a zone
    // that offers it, so a typo gets the right error.
    let type_archs = match primary {
        None => Some(instance::type_architectures(ctx, &ctx.settings.instance_type).await?),
        Some(_) => None,
    };
    let placement = placement::resolve(
        ctx,
        primary.as_ref().map(instance::Instance::placement),
        chosen_volume.as_ref().map(|v| v.availability_zone.as_str()),
    )
    .await?;
    check_placement(
        &placement,
        chosen_volume.as_ref(),
        observed.security_group.as_ref(),
    )?;

    let policy = iam::role_policies(ctx);
    let instance_change = instance::diff(
        ctx.settings,
        &ctx.names.base(),
        observed.security_group.as_ref().map(|g| g.id.as_str()),
        primary.as_ref(),
    );
    let launch = match &instance_change {
        instance::Change::Create | instance::Change::Replace { .. } => {
            Some(instance::resolve_launch(ctx, &placement, &observed.instances, type_archs).await?)
        }
        instance::Change::Update { update, .. } => {
            if let Some((from, to)) = &update.new_type {
                check_type_change(ctx, from, to).await?;
            }
            None
        }
        instance::Change::NoChange { .. } => None,
    };
    // The instance the volume and address must end up on; none yet when a
    // new instance will be launched.
    let target = match &instance_change {
        instance::Change::Update { id, .. } | instance::Change::NoChange { id } => {
            Some(id.as_str())
        }
        instance::Change::Create | instance::Change::Replace { .. } => None,
    };
    let mut eip_plan = elastic_ip::diff(ctx.settings.elastic_ip, &observed.addresses, target);
    eip_plan.tagged = observed.tagged_addresses.clone();
    eip_plan.record = observed.unrecorded_addresses.clone();
    // An open intent with nothing left to record is stale: closed, since
    // while it is open any newly tagged address would count as glbox's.
    eip_plan.close_intent = observed.ledger.is_open(Kind::Address);
    let address = kept_address(&eip_plan, &observed.addresses);
    let dns_record =
        crate::resources::dns_record::diff(ctx, observed.dns_record.as_ref(), address)?;
    let smtp_password_stored = observed
        .parameters
        .contains(&crate::email::credentials::password_parameter(ctx));
    let email = crate::email::diff(ctx, &observed.email, smtp_password_stored, with_bootstrap)?;
    // The SMTP user the box will get, when it is known before applying.
    let smtp_username = smtp_username_after(&email, &observed.email);
    let bootstrap = with_bootstrap.then(|| {
        let staying = target.and(primary.as_ref());
        crate::bootstrap::diff(staying.map(|instance| {
            let root_password_parameter = crate::resources::parameters::root_password_name(ctx);
            let script = chosen_volume.as_ref().and_then(|volume| {
                let smtp_username = match &smtp_username {
                    SmtpUsername::Unknown => return None,
                    SmtpUsername::Known(name) => name.as_deref(),
                };
                let host = instance
                    .public_dns
                    .as_deref()
                    .or(instance.public_ip.as_deref());
                let address = kept_address(&eip_plan, &observed.addresses);
                let url = crate::gitlab_rb::external_url(ctx.settings, address, host)?;
                Some(crate::bootstrap::render(
                    ctx.settings,
                    &crate::bootstrap::Target {
                        data_volume_id: &volume.id,
                        external_url: &url,
                        smtp_username,
                        root_password_parameter: &root_password_parameter,
                    },
                ))
            });
            (instance, script)
        }))
    });
    let email_use = ctx
        .settings
        .email
        .as_ref()
        .map(|e| ownership::email_use_name(&ctx.names, &e.ses_region, &e.domain))
        .filter(|marker| !observed.parameters.contains(marker));
    Ok(Plan {
        email_use,
        root_password: crate::resources::parameters::diff(ctx, &observed.parameters),
        email,
        smtp_password_stored,
        bootstrap,
        security_group: security_group::diff(ctx.settings, observed.security_group.as_ref()),
        role: iam::diff_role(observed.role.as_ref()),
        profile: iam::diff_profile(&ctx.names.iam_name(), observed.profile.as_ref()),
        policy,
        key_pair: key_pair::diff(
            key_pair::desired_key(ctx.settings),
            observed.key_pair.as_ref(),
        ),
        data_volume: data_volume::with_cooldown(
            ctx,
            data_volume::diff(&ctx.settings.data_volume, chosen_volume.as_ref(), target)?,
        )
        .await?,
        extra_volumes,
        elastic_ip: eip_plan,
        dns_record,
        kept_address: address.map(str::to_string),
        instance: InstancePlan {
            change: instance_change,
            launch,
            duplicates,
        },
        placement,
    })
}

enum SmtpUsername {
    /// `None` with email off.
    Known(Option<String>),
    /// A new access key will be made.
    Unknown,
}

fn smtp_username_after(
    plan: &crate::email::Plan,
    observed: &crate::email::Observed,
) -> SmtpUsername {
    use crate::email::credentials::Change;
    match &plan.credentials {
        Change::Absent | Change::Delete { .. } => SmtpUsername::Known(None),
        Change::NoChange { access_key_id } => SmtpUsername::Known(Some(access_key_id.clone())),
        Change::Converge(steps) if steps.new_key => SmtpUsername::Unknown,
        Change::Converge(_) => SmtpUsername::Known(
            observed
                .credentials
                .current
                .as_ref()
                .map(|c| c.access_key_id.clone()),
        ),
    }
}

/// The public IP of the Elastic IP the plan keeps (what `up` will use for
/// GitLab's URL), if one already exists.
fn kept_address<'a>(plan: &EipPlan, addresses: &'a [Address]) -> Option<&'a str> {
    let kept = match &plan.change {
        elastic_ip::Change::NoChange { allocation_id }
        | elastic_ip::Change::Associate { allocation_id } => allocation_id,
        elastic_ip::Change::Create | elastic_ip::Change::Absent => return None,
    };
    addresses
        .iter()
        .find(|a| &a.allocation_id == kept)
        .map(|a| a.public_ip.as_str())
}

fn refuse_foreign_iam(observed: &Observed) -> Result<()> {
    if let Some(role) = observed.role.as_ref().filter(|r| !r.owned) {
        return Err(iam::foreign("role", &role.name));
    }
    if let Some(profile) = observed.profile.as_ref().filter(|p| !p.owned) {
        return Err(iam::foreign("instance profile", &profile.name));
    }
    Ok(())
}

/// A data volume may only hang off one of the deployment's own instances.
/// Returns the live instance holding one, if any.
fn check_volume_holders(observed: &Observed) -> Result<Option<String>> {
    let ours = |id: &str| observed.instances.iter().any(|i| i.id == id);
    for volume in &observed.data_volumes {
        if let Some(holder) = volume.attached_to.as_deref().filter(|h| !ours(h)) {
            return Err(Error::Refused(format!(
                "data volume {} is attached to {holder}, which is not this deployment's instance\n  fix: detach it from {holder} (after stopping what uses it), then re-run",
                volume.id
            )));
        }
    }
    let live = observed.live_instances();
    Ok(observed
        .data_volumes
        .iter()
        .filter_map(|v| v.attached_to.clone())
        .find(|holder| live.iter().any(|i| i.id == *holder)))
}

fn check_placement(
    placement: &Placement,
    volume: Option<&Volume>,
    group: Option<&SecurityGroup>,
) -> Result<()> {
    if let Some(volume) = volume.filter(|v| v.availability_zone != placement.availability_zone) {
        return Err(Error::Refused(format!(
            "the data volume {} is in {}, but subnet {} is in {}: EBS volumes cannot move between zones\n  fix: choose a subnet in {}, or move the data yourself (snapshot, then a volume from it in the new zone)",
            volume.id, volume.availability_zone, placement.subnet_id, placement.availability_zone, volume.availability_zone
        )));
    }
    if let Some(group) = group.filter(|g| g.vpc_id != placement.vpc_id) {
        return Err(Error::Refused(format!(
            "the deployment's security group {} is in {}, but subnet {} is in {}: glbox does not move a deployment between VPCs\n  fix: choose a subnet in {}, or `glbox down` first (it keeps the data volume)",
            group.id, group.vpc_id, placement.subnet_id, placement.vpc_id, group.vpc_id
        )));
    }
    Ok(())
}

async fn check_type_change(ctx: &Ctx<'_>, from: &str, to: &str) -> Result<()> {
    let (old, new) = tokio::try_join!(
        instance::type_architectures(ctx, from),
        instance::type_architectures(ctx, to)
    )?;
    if !new.iter().any(|a| old.contains(a)) {
        return Err(Error::Refused(format!(
            "instance.type {to} runs {}, but the instance's current type {from} runs {}, and its image with it: an architecture change needs a new instance\n  fix: keep a {} type, or `glbox down` and `up` with the new type (the data volume is kept)",
            new.join("/"),
            old.join("/"),
            old.join("/")
        )));
    }
    Ok(())
}
