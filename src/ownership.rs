//! Proof that a resource is glbox's own, beyond its tags.
//!
//! Tags are glbox's state, but anyone allowed to call `ec2:CreateTags` can
//! put a deployment's or a lab's tags on anything. Before glbox adopts a
//! resource (mounts a volume, bootstraps an instance) or destroys one
//! (terminates, deletes, releases), it checks evidence that only its own
//! calls produce. What fails the check is left alone and named.
//!
//! - Instances: the instance profile is the deployment's (or lab's) own
//!   (attaching it takes `iam:PassRole` on a glbox role), or the launch's
//!   `ClientToken` is glbox's (`glbox-<name>-…`; a token is fixed at
//!   launch, so tagging an existing instance cannot give it). Both are in
//!   DescribeInstances, so this costs no call.
//! - Volumes and Elastic IPs: neither DescribeVolumes nor DescribeAddresses
//!   reports who made a resource, so glbox keeps a ledger: one String
//!   parameter per id, `<prefix>owned/<id>`, under the deployment's SSM
//!   path, which only glbox's principals may write. It is written as soon
//!   as the create call returns. Before the create, an intent
//!   (`<prefix>owned/intent-volume`, `…/intent-address`) records what is
//!   being made, so a run that dies between the two is finished by the
//!   next one instead of orphaning what it made (see `docs/reliability.md`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use aws_sdk_ssm::types::ParameterType;

use crate::aws::ssm;
use crate::error::Result;
use crate::names::Names;
use crate::resources::instance::Instance;
use crate::resources::Ctx;

/// The folder of the ledger under the deployment's (or seat's) prefix.
const LEDGER: &str = "owned/";

/// What is being created while an intent is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Volume,
    Address,
    /// `glbox restore --snapshot`: a data volume made from a snapshot and
    /// swapped in (`resources::restore::RestoreIntent`).
    Restore,
}

impl Kind {
    fn leaf(self) -> &'static str {
        match self {
            Kind::Volume => "intent-volume",
            Kind::Address => "intent-address",
            Kind::Restore => "intent-restore",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Volume => "data-volume",
            Kind::Address => "elastic-ip",
            Kind::Restore => "data-volume",
        }
    }
}

/// `<prefix>owned/`.
pub fn ledger_prefix(names: &Names) -> String {
    format!("{}{LEDGER}", names.parameter_prefix())
}

/// `<prefix>owned/<id>`: the record that glbox made `id`.
pub fn record_name(names: &Names, id: &str) -> String {
    format!("{}{id}", ledger_prefix(names))
}

/// `<prefix>owned/intent-volume` or `…/intent-address`.
pub fn intent_name(names: &Names, kind: Kind) -> String {
    format!("{}{}", ledger_prefix(names), kind.leaf())
}

/// Is this parameter name part of some ledger (a record or an intent)?
pub fn is_ledger_parameter(names: &Names, parameter: &str) -> bool {
    parameter.starts_with(&ledger_prefix(names))
}

/// The ids a deployment's (or seat's) ledger holds, and its open intents,
/// read from the names of its parameters (no value is needed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    ids: BTreeSet<String>,
    open_volume: bool,
    open_address: bool,
    open_restore: bool,
}

impl Ledger {
    pub fn from_parameters<'a>(
        names: &Names,
        parameters: impl IntoIterator<Item = &'a String>,
    ) -> Ledger {
        let prefix = ledger_prefix(names);
        let mut ledger = Ledger::default();
        for parameter in parameters {
            let Some(leaf) = parameter.strip_prefix(&prefix) else {
                continue;
            };
            if leaf == Kind::Volume.leaf() {
                ledger.open_volume = true;
            } else if leaf == Kind::Address.leaf() {
                ledger.open_address = true;
            } else if leaf == Kind::Restore.leaf() {
                ledger.open_restore = true;
            } else if !leaf.contains('/') {
                ledger.ids.insert(leaf.to_string());
            }
        }
        ledger
    }

    pub fn holds(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    pub fn is_open(&self, kind: Kind) -> bool {
        match kind {
            Kind::Volume => self.open_volume,
            Kind::Address => self.open_address,
            Kind::Restore => self.open_restore,
        }
    }
}

/// Does the instance carry evidence that glbox launched it for `names`
/// (the deployment, or the lab a seat belongs to)?
pub fn owns_instance(names: &Names, instance: &Instance) -> bool {
    let profile = format!(":instance-profile{}{}", names.iam_path(), names.iam_name());
    let own_profile = instance
        .profile_arn
        .as_deref()
        .is_some_and(|arn| arn.ends_with(&profile));
    own_profile || owns_launch_token(names, &instance.client_token)
}

/// glbox's launch tokens are `glbox-<name>-<hex>` (a box) and
/// `glbox-lab-<lab>-<hex>` (a lab), see the two `client_token` functions.
fn owns_launch_token(names: &Names, token: &str) -> bool {
    token
        .strip_prefix(&format!("{}-", names.base()))
        .is_some_and(|hex| hex.len() == 24 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Why an instance with the right tags was left alone.
pub fn foreign_instance_note(names: &Names, id: &str) -> String {
    format!(
        "{id} carries {}'s tags but neither its instance profile {} nor a glbox launch token: glbox leaves it alone (if it is yours, associate the profile with it and re-run)",
        names.deployment,
        names.iam_name()
    )
}

/// Why a volume or address with the right tags was left alone.
pub fn foreign_note(names: &Names, what: &str, id: &str) -> String {
    format!(
        "{what} {id} carries {}'s tags but is not in glbox's record of what it made ({}): glbox leaves it alone",
        names.deployment,
        ledger_prefix(names)
    )
}

/// Splits `items` into those the evidence shows to be glbox's and the rest.
pub fn split<T>(items: &[T], owned: impl Fn(&T) -> bool) -> (Vec<T>, Vec<T>)
where
    T: Clone,
{
    items.iter().cloned().partition(|item| owned(item))
}

/// Records that glbox made `id` (right after the create call returned).
pub async fn record(ctx: &Ctx<'_>, kind: Kind, id: &str) -> Result<()> {
    record_labelled(ctx, kind.label(), id).await
}

async fn record_labelled(ctx: &Ctx<'_>, label: &str, id: &str) -> Result<()> {
    // Already there: a retried call whose first answer was lost.
    ssm::put(
        &ctx.aws.ssm,
        &ssm::Parameter {
            name: &record_name(&ctx.names, id),
            description: format!(
                "glbox {}: made by glbox (ownership record)",
                ctx.names.deployment
            ),
            kind: ParameterType::String,
            value: label,
            overwrite: false,
            tags: Vec::new(),
        },
    )
    .await?;
    Ok(())
}

/// Records that glbox makes the backup bucket `name`: written before
/// CreateBucket, since the name is fixed and a bucket carries no proof of
/// who made it.
pub async fn record_bucket(ctx: &Ctx<'_>, name: &str) -> Result<()> {
    record_labelled(ctx, "backup-bucket", name).await
}

/// Removes the records of resources glbox deleted (and any intent).
pub async fn forget(ctx: &Ctx<'_>, parameters: Vec<String>) -> Result<()> {
    ssm::delete_many(&ctx.aws.ssm, &parameters).await
}

/// The ledger id of an SES identity: `ses-identity.<region>.<domain>`.
pub fn email_identity_id(region: &str, domain: &str) -> String {
    format!("ses-identity.{region}.{domain}")
}

/// Records that glbox created this SES identity (right after
/// VerifyDomainIdentity made it).
pub async fn record_email_identity(ctx: &Ctx<'_>, region: &str, domain: &str) -> Result<()> {
    record_labelled(ctx, "ses-identity", &email_identity_id(region, domain)).await
}

/// `<prefix>email-identity/<region>/<domain>`: this deployment sends mail
/// as that identity. Every deployment with email on writes one, so that no
/// deployment's `down --delete-email-identity` removes an identity another
/// one still uses.
pub fn email_use_name(names: &Names, region: &str, domain: &str) -> String {
    format!(
        "{}email-identity/{region}/{domain}",
        names.parameter_prefix()
    )
}

/// Writes this deployment's use marker (see [`email_use_name`]).
pub async fn mark_email_use(ctx: &Ctx<'_>, marker: &str) -> Result<()> {
    ssm::put(
        &ctx.aws.ssm,
        &ssm::Parameter {
            name: marker,
            description: format!(
                "glbox {}: sends mail as this SES identity",
                ctx.names.deployment
            ),
            kind: ParameterType::String,
            value: "in use",
            overwrite: true,
            tags: Vec::new(),
        },
    )
    .await?;
    Ok(())
}

/// The other glbox deployments (and their parameters) whose use marker
/// names this identity: one DescribeParameters scan of `/glbox`.
pub async fn other_email_users(ctx: &Ctx<'_>, region: &str, domain: &str) -> Result<Vec<String>> {
    let leaf = format!("/email-identity/{region}/{domain}");
    let mine = email_use_name(&ctx.names, region, domain);
    let names = ssm::names_under(&ctx.aws.ssm, "/glbox").await?;
    Ok(names
        .into_iter()
        .filter(|name| name.ends_with(&leaf) && *name != mine)
        .collect())
}

/// What an open volume intent says is being made: replaying CreateVolume
/// with the same token and parameters returns the volume the interrupted
/// call made (or makes it, if the call never reached AWS).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VolumeIntent {
    pub client_token: String,
    pub zone: String,
    pub size_gib: i32,
    pub iops: i32,
    pub throughput_mibps: i32,
}

/// What an open address intent says: AllocateAddress takes no token, so
/// the intent lists the tagged addresses that existed before it. Any other
/// tagged address that appears while the intent is open is glbox's.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AddressIntent {
    pub existing: BTreeSet<String>,
}

/// Opens an intent (it replaces an older one of the same kind).
pub async fn open_intent<T: Serialize>(ctx: &Ctx<'_>, kind: Kind, intent: &T) -> Result<()> {
    let value = serde_json::to_string(intent).expect("an intent serializes");
    ssm::put(
        &ctx.aws.ssm,
        &ssm::Parameter {
            name: &intent_name(&ctx.names, kind),
            description: format!(
                "glbox {}: a create in progress (ownership intent)",
                ctx.names.deployment
            ),
            kind: ParameterType::String,
            value: &value,
            overwrite: true,
            tags: Vec::new(),
        },
    )
    .await?;
    Ok(())
}

/// Reads an open intent; `None` when there is none (or it is unreadable:
/// then it is treated as absent and replaced by the next create).
pub async fn read_intent<T: for<'de> Deserialize<'de>>(
    ctx: &Ctx<'_>,
    kind: Kind,
) -> Result<Option<T>> {
    let value = ssm::find(&ctx.aws.ssm, &intent_name(&ctx.names, kind), false).await?;
    Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
}

/// Closes an intent once its resource is recorded.
pub async fn close_intent(ctx: &Ctx<'_>, kind: Kind) -> Result<()> {
    forget(ctx, vec![intent_name(&ctx.names, kind)]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(profile: Option<&str>, token: &str) -> Instance {
        Instance {
            id: "i-1".into(),
            profile_arn: profile.map(str::to_string),
            client_token: token.into(),
            ..Instance::default()
        }
    }

    #[test]
    fn an_instance_is_owned_by_its_profile_or_its_launch_token() {
        let names = Names::new("t", "us-east-1");
        let profile = "arn:aws:iam::1:instance-profile/glbox/glbox-t-us-east-1";
        assert!(owns_instance(&names, &instance(Some(profile), "")));
        assert!(owns_instance(
            &names,
            &instance(None, "glbox-t-0123456789abcdef01234567")
        ));
        // Tags alone, another deployment's profile, or a look-alike token: no.
        assert!(!owns_instance(&names, &instance(None, "")));
        assert!(!owns_instance(
            &names,
            &instance(
                Some("arn:aws:iam::1:instance-profile/glbox/glbox-tt-us-east-1"),
                ""
            )
        ));
        assert!(!owns_instance(&names, &instance(None, "glbox-t-prod")));
        let lab = Names::lab("gl", "us-east-1", "2030-01-01T00:00:00Z");
        assert!(owns_instance(
            &lab,
            &instance(None, "glbox-lab-gl-0123456789abcdef01234567")
        ));
        assert!(!owns_instance(
            &lab,
            &instance(None, "glbox-t-0123456789abcdef01234567")
        ));
    }

    #[test]
    fn the_ledger_is_read_from_parameter_names() {
        let names = Names::new("t", "us-east-1");
        let parameters: Vec<String> = [
            "/glbox/t/root-password",
            "/glbox/t/owned/vol-1",
            "/glbox/t/owned/eipalloc-2",
            "/glbox/t/owned/intent-volume",
            "/glbox/t/owned/intent-restore",
            "/glbox/tt/owned/vol-9",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let ledger = Ledger::from_parameters(&names, &parameters);
        assert!(ledger.holds("vol-1") && ledger.holds("eipalloc-2"));
        assert!(!ledger.holds("vol-9") && !ledger.holds("intent-volume"));
        assert!(!ledger.holds("intent-restore") && ledger.is_open(Kind::Restore));
        assert!(ledger.is_open(Kind::Volume) && !ledger.is_open(Kind::Address));
    }
}
