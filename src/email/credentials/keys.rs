//! The SMTP user's access keys and the two parameters that record the
//! credential (see the parent module for why `smtp-key` is written last
//! and removed first).

use aws_sdk_ssm::types::ParameterType;

use super::{key_parameter, observe_current, password_parameter, user_name, CurrentKey};
use crate::aws::iam::{users, Attempt};
use crate::aws::ssm;
use crate::config::EmailSettings;
use crate::email::smtp_password;
use crate::error::{Error, Result};
use crate::names::Role;
use crate::resources::Ctx;

pub(super) async fn current_key(ctx: &Ctx<'_>) -> Result<CurrentKey> {
    observe_current(ctx).await?.ok_or_else(|| {
        Error::Refused(format!(
            "{} disappeared while glbox was running\n  fix: re-run glbox up",
            key_parameter(ctx)
        ))
    })
}

/// Makes a key, stores its SMTP password, then records which key it is.
pub async fn new_key(
    ctx: &Ctx<'_>,
    email: &EmailSettings,
    user: &str,
    password_stored: bool,
) -> Result<CurrentKey> {
    // The record goes first, so no crash leaves it naming the wrong key.
    ssm::delete(&ctx.aws.ssm, &key_parameter(ctx)).await?;
    let iam = &ctx.aws.iam;
    let before = key_ids(ctx, user).await?;
    let key = match users::create_access_key(iam, user).await? {
        // Full, because a retried call whose answer was lost made a key.
        Attempt::Conflict(_) => {
            delete_unseen_keys(ctx, user, &before, None).await?;
            match users::create_access_key(iam, user).await? {
                Attempt::Done(key) => key,
                Attempt::Conflict(e) => return Err(e.into()),
            }
        }
        Attempt::Done(key) => key,
    }
    .ok_or_else(|| Error::Refused("IAM returned no access key".into()))?;
    delete_unseen_keys(ctx, user, &before, Some(&key.id)).await?;
    crate::log::redact::secret(&key.secret);
    let password = smtp_password::derive(&key.secret, &email.ses_region)
        .map_err(|e| Error::Refused(e.to_string()))?;
    crate::log::redact::secret(&password);
    put_parameter(
        ctx,
        &password_parameter(ctx),
        &password,
        ParameterType::SecureString,
        password_stored,
        "SES SMTP password",
    )
    .await?;
    let current = CurrentKey {
        access_key_id: key.id,
        ses_region: email.ses_region.clone(),
    };
    put_parameter(
        ctx,
        &key_parameter(ctx),
        &serde_json::to_string(&current).expect("serializes"),
        ParameterType::String,
        // Deleted above: always a fresh parameter.
        false,
        "which access key the SMTP password belongs to",
    )
    .await?;
    ctx.ui.info(&format!(
        "made access key {} for {user}; its SMTP password is in {}",
        current.access_key_id,
        password_parameter(ctx)
    ));
    Ok(current)
}

async fn key_ids(ctx: &Ctx<'_>, user: &str) -> Result<Vec<String>> {
    let keys = users::access_keys(&ctx.aws.iam, user).await?;
    Ok(keys
        .iter()
        .filter_map(|k| k.access_key_id().map(str::to_string))
        .collect())
}

/// Keys that appeared around a CreateAccessKey glbox did not get the
/// answer of (the SDK retried it): their secret was never seen, so they
/// are useless, and they hold one of IAM's two places.
async fn delete_unseen_keys(
    ctx: &Ctx<'_>,
    user: &str,
    before: &[String],
    kept: Option<&str>,
) -> Result<()> {
    for key in key_ids(ctx, user).await? {
        if !before.contains(&key) && Some(key.as_str()) != kept {
            delete_key(ctx, user, &key).await?;
        }
    }
    Ok(())
}

async fn put_parameter(
    ctx: &Ctx<'_>,
    name: &str,
    value: &str,
    kind: ParameterType,
    exists: bool,
    what: &str,
) -> Result<()> {
    // Without `exists`, one already there is a retried create whose first
    // answer was lost, with the same value.
    let parameter = ssm::Parameter {
        name,
        description: format!("glbox {}: {what}", ctx.names.deployment),
        kind,
        value,
        overwrite: exists,
        // SSM takes tags only when a parameter is created.
        tags: match exists {
            true => Vec::new(),
            false => ctx.names.tag_pairs(Role::SmtpUser),
        },
    };
    ssm::put(&ctx.aws.ssm, &parameter).await?;
    Ok(())
}

pub(super) async fn delete_parameters(ctx: &Ctx<'_>) -> Result<()> {
    ssm::delete(&ctx.aws.ssm, &key_parameter(ctx)).await?;
    ssm::delete(&ctx.aws.ssm, &password_parameter(ctx)).await
}

pub async fn delete_key(ctx: &Ctx<'_>, user: &str, key: &str) -> Result<()> {
    // Gone already: a retried delete whose first answer was lost.
    users::delete_access_key(&ctx.aws.iam, user, key).await?;
    ctx.ui.info(&format!("deleted access key {key} of {user}"));
    Ok(())
}

/// Deletes keys that GitLab no longer uses.
pub async fn retire(ctx: &Ctx<'_>, keys: &[String]) -> Result<()> {
    let user = user_name(ctx);
    for key in keys {
        delete_key(ctx, &user, key).await?;
    }
    Ok(())
}
