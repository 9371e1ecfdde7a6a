//! The deployment's SSM parameters under `/glbox/<name>/`. glbox creates the
//! GitLab root password there as a SecureString; the instance reads it at
//! install time, and only `glbox status --show-password` ever prints it.

use aws_sdk_ssm::types::ParameterType;
use rand::distr::{Alphanumeric, SampleString};

use crate::aws::ssm;
use crate::error::{Error, Result};
use crate::names::{MANAGED_BY, TAG_MANAGED_BY};
use crate::resources::{Action, Ctx, PlanItem};

/// Long and plain: 24 letters and digits are about 142 bits, and need no
/// quoting anywhere (shell, YAML, Ruby).
const PASSWORD_LENGTH: usize = 24;

pub fn root_password_name(ctx: &Ctx<'_>) -> String {
    format!("{}root-password", ctx.names.parameter_prefix())
}

/// The names of the deployment's parameters (values are not read).
pub async fn observe(ctx: &Ctx<'_>) -> Result<Vec<String>> {
    let mut names = ssm::names_by_path(&ctx.aws.ssm, &ctx.names.parameter_prefix()).await?;
    names.sort();
    Ok(names)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Create,
    NoChange,
}

pub fn diff(ctx: &Ctx<'_>, observed: &[String]) -> Change {
    if observed.contains(&root_password_name(ctx)) {
        Change::NoChange
    } else {
        Change::Create
    }
}

impl Change {
    pub fn item(&self, ctx: &Ctx<'_>) -> PlanItem {
        let name = root_password_name(ctx);
        match self {
            Change::Create => PlanItem::new("root_password", name, None, Action::Create)
                .with_changes(vec!["generate, store as an SSM SecureString".into()]),
            Change::NoChange => {
                PlanItem::new("root_password", name.clone(), Some(name), Action::NoChange)
            }
        }
    }
}

pub async fn apply(ctx: &Ctx<'_>, change: &Change) -> Result<()> {
    if *change == Change::NoChange {
        return Ok(());
    }
    create(ctx, None).await.map(|_| ())
}

/// Generates and stores the root password. A lab seat's names the ARN of
/// the instance that may read it (`glbox:instance`, see
/// `iam::parameters_policy`), tagged in the creating call. Returns
/// whether this call wrote it (`AlreadyExists`: one was there, with
/// whatever tags it had).
pub async fn create(ctx: &Ctx<'_>, reader_instance_arn: Option<&str>) -> Result<ssm::Put> {
    let name = root_password_name(ctx);
    let password = Alphanumeric.sample_string(&mut rand::rng(), PASSWORD_LENGTH);
    crate::log::redact::secret(&password);
    let (owner_key, owner_value) = ctx.names.owner();
    // Never replace an existing password: GitLab only reads it once. One
    // already there (a retried call whose first answer was lost) is the
    // password, as it would be anyway.
    let put = ssm::put(
        &ctx.aws.ssm,
        &ssm::Parameter {
            name: &name,
            description: format!(
                "glbox {}: initial GitLab root password",
                ctx.names.deployment
            ),
            kind: ParameterType::SecureString,
            value: &password,
            overwrite: false,
            tags: [(owner_key, owner_value), (TAG_MANAGED_BY, MANAGED_BY)]
                .into_iter()
                .chain(reader_instance_arn.map(|arn| (crate::names::TAG_INSTANCE, arn)))
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        },
    )
    .await?;
    ctx.ui
        .info(&format!("stored a generated root password in {name}"));
    Ok(put)
}

/// Tags the seat's root password with the ARN of the instance that may
/// read it (`glbox:instance`, see `iam::parameters_policy`), replacing the
/// previous instance's. PutParameter cannot change the tags of an existing
/// parameter, so this is its own call (a new password gets it in
/// [`create`]).
/// <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AddTagsToResource.html>
pub async fn tag_instance(ctx: &Ctx<'_>, instance_arn: &str) -> Result<()> {
    let tags = [(crate::names::TAG_INSTANCE, instance_arn)];
    ssm::add_tags(&ctx.aws.ssm, &root_password_name(ctx), &tags).await
}

/// The root password, decrypted (for `status --show-password` only).
pub async fn root_password(ctx: &Ctx<'_>) -> Result<String> {
    read(ctx, &root_password_name(ctx), true).await
}

/// One parameter's value.
pub async fn read(ctx: &Ctx<'_>, name: &str, decrypt: bool) -> Result<String> {
    let value = ssm::get(&ctx.aws.ssm, name, decrypt)
        .await?
        .ok_or_else(|| Error::Refused(format!("the parameter {name} has no value")))?;
    if decrypt {
        crate::log::redact::secret(&value);
    }
    Ok(value)
}

/// Deletes every parameter under the deployment's prefix.
pub async fn delete(ctx: &Ctx<'_>, names: &[String]) -> Result<()> {
    ssm::delete_many(&ctx.aws.ssm, names).await?;
    ctx.ui.info(&format!(
        "deleted {} parameter(s) under {}",
        names.len(),
        ctx.names.parameter_prefix()
    ));
    Ok(())
}
