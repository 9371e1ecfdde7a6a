//! The deployment's SSM parameters under `/glbox/<name>/`. glbox creates the
//! GitLab root password there as a SecureString; the instance reads it at
//! install time, and only `glbox status --show-password` ever prints it.

use aws_sdk_ssm::types::{ParameterType, Tag};
use rand::distr::{Alphanumeric, SampleString};

use crate::aws::AwsResultExt;
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
    let mut pages = ctx
        .aws
        .ssm
        .get_parameters_by_path()
        .path(ctx.names.parameter_prefix())
        .recursive(true)
        .with_decryption(false)
        .into_paginator()
        .send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.ctx("ssm:GetParametersByPath")?;
        names.extend(
            page.parameters()
                .iter()
                .filter_map(|p| p.name())
                .map(str::to_string),
        );
    }
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
    let name = root_password_name(ctx);
    let password = Alphanumeric.sample_string(&mut rand::rng(), PASSWORD_LENGTH);
    crate::log::redact::secret(&password);
    let tag = |key: &str, value: &str| {
        Tag::builder()
            .key(key)
            .value(value)
            .build()
            .expect("key and value set")
    };
    let put = ctx
        .aws
        .ssm
        .put_parameter()
        .name(&name)
        .description(format!(
            "glbox {}: initial GitLab root password",
            ctx.names.deployment
        ))
        .r#type(ParameterType::SecureString)
        .value(password)
        // Never replace an existing password: GitLab only reads it once.
        .overwrite(false)
        .tags(tag(ctx.names.owner().0, ctx.names.owner().1))
        .tags(tag(TAG_MANAGED_BY, MANAGED_BY))
        .send()
        .await;
    // Already there (a retried call whose first answer was lost): the one
    // stored first is the password, as it would be anyway.
    crate::aws::ok_if("ssm:PutParameter", put, &["ParameterAlreadyExists"])?;
    ctx.ui
        .info(&format!("stored a generated root password in {name}"));
    Ok(())
}

/// Tags the seat's root password with the ARN of the instance that may
/// read it (`glbox:instance`, see `iam::parameters_policy`), replacing the
/// previous instance's. PutParameter cannot change the tags of an existing
/// parameter, so this is its own call.
/// <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AddTagsToResource.html>
pub async fn tag_instance(ctx: &Ctx<'_>, instance_arn: &str) -> Result<()> {
    let tag = Tag::builder()
        .key(crate::names::TAG_INSTANCE)
        .value(instance_arn)
        .build()
        .expect("key and value set");
    ctx.aws
        .ssm
        .add_tags_to_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(root_password_name(ctx))
        .tags(tag)
        .send()
        .await
        .ctx("ssm:AddTagsToResource")?;
    Ok(())
}

/// The root password, decrypted (for `status --show-password` only).
pub async fn root_password(ctx: &Ctx<'_>) -> Result<String> {
    read(ctx, &root_password_name(ctx), true).await
}

/// One parameter's value.
pub async fn read(ctx: &Ctx<'_>, name: &str, decrypt: bool) -> Result<String> {
    let out = ctx
        .aws
        .ssm
        .get_parameter()
        .name(name)
        .with_decryption(decrypt)
        .send()
        .await
        .ctx("ssm:GetParameter")?;
    let value = out
        .parameter()
        .and_then(|p| p.value())
        .map(str::to_string)
        .ok_or_else(|| Error::Refused(format!("the parameter {name} has no value")))?;
    if decrypt {
        crate::log::redact::secret(&value);
    }
    Ok(value)
}

/// The names of every parameter under `path` (values are not read), by
/// DescribeParameters: it lists names the caller may not be able to read,
/// 50 a page.
pub async fn names_under(ctx: &Ctx<'_>, path: &str) -> Result<Vec<String>> {
    let filter = aws_sdk_ssm::types::ParameterStringFilter::builder()
        .key("Path")
        .option("Recursive")
        .values(path.trim_end_matches('/'))
        .build()
        .expect("key is set");
    let mut pages = ctx
        .aws
        .ssm
        .describe_parameters()
        .parameter_filters(filter)
        .max_results(50)
        .into_paginator()
        .send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.ctx("ssm:DescribeParameters")?;
        names.extend(
            page.parameters()
                .iter()
                .filter_map(|p| p.name())
                .map(str::to_string),
        );
    }
    Ok(names)
}

/// Deletes `names`, saying nothing. Names that are already gone come back
/// as InvalidParameters in a successful answer: nothing to do for them.
pub async fn delete_names(ctx: &Ctx<'_>, names: &[String]) -> Result<()> {
    // DeleteParameters takes at most 10 names at a time.
    for chunk in names.chunks(10) {
        ctx.aws
            .ssm
            .delete_parameters()
            .set_names(Some(chunk.to_vec()))
            .send()
            .await
            .ctx("ssm:DeleteParameters")?;
    }
    Ok(())
}

/// Deletes every parameter under the deployment's prefix.
pub async fn delete(ctx: &Ctx<'_>, names: &[String]) -> Result<()> {
    delete_names(ctx, names).await?;
    ctx.ui.info(&format!(
        "deleted {} parameter(s) under {}",
        names.len(),
        ctx.names.parameter_prefix()
    ));
    Ok(())
}
