//! The IAM gateway: roles and instance profiles ([`roles`]), users and
//! access keys ([`users`]), and the managed policies and simulation below.
//!
//! Creates answer [`Attempt::Conflict`] when IAM says the thing is there
//! already: the SDK may have retried a create whose first answer was lost,
//! or someone else's entity has the name; only the caller can tell (by the
//! tags), so it decides.

use aws_sdk_iam::error::SdkError;
use aws_sdk_iam::types::{ContextEntry, EvaluationResult, Tag};
use aws_sdk_iam::Client;
use serde_json::Value;

use crate::aws::{probe_retry, AwsError, AwsResultExt};
use crate::error::Result;

pub mod roles;
pub mod users;

/// What a create, or an add to something that holds a limited number,
/// did.
#[derive(Debug)]
pub enum Attempt<T> {
    Done(T),
    /// IAM refused because the wanted thing, or one like it, is there:
    /// its refusal, for the caller to return when the thing is not its own.
    Conflict(AwsError),
}

/// Deletes and removals treat "no such entity" as done: a retried call
/// whose first answer was lost finds nothing left to remove.
const GONE: &[&str] = &["NoSuchEntity"];

/// `Done` for an answer, `Conflict` for the error code that means "there
/// already", the error for anything else.
fn attempt<T, O>(
    result: std::result::Result<O, AwsError>,
    conflict: &str,
    done: impl FnOnce(O) -> T,
) -> Result<Attempt<T>> {
    match result {
        Ok(out) => Ok(Attempt::Done(done(out))),
        Err(e) if e.code.as_deref() == Some(conflict) => Ok(Attempt::Conflict(e)),
        Err(e) => Err(e.into()),
    }
}

/// A managed policy to create.
pub struct NewPolicy<'a> {
    pub name: &'a str,
    pub path: &'a str,
    pub description: &'a str,
    pub document: String,
    pub tags: Vec<Tag>,
}

pub async fn create_policy(iam: &Client, policy: NewPolicy<'_>) -> Result<Attempt<()>> {
    let created = iam
        .create_policy()
        .policy_name(policy.name)
        .path(policy.path)
        .description(policy.description)
        .policy_document(policy.document)
        .set_tags(Some(policy.tags))
        .send()
        .await;
    attempt(
        created.ctx("iam:CreatePolicy"),
        "EntityAlreadyExists",
        |_| (),
    )
}

/// A managed policy's default document: `None` when there is no such
/// policy, `Some(None)` when its document cannot be read as JSON.
pub async fn policy_document(iam: &Client, arn: &str) -> Result<Option<Option<Value>>> {
    let policy = match iam.get_policy().policy_arn(arn).send().await {
        Ok(out) => out.policy,
        Err(SdkError::ServiceError(e)) if e.err().is_no_such_entity_exception() => None,
        Err(e) => return Err(crate::aws::error("iam:GetPolicy", e).into()),
    };
    let Some(policy) = policy else {
        return Ok(None);
    };
    let version = iam
        .get_policy_version()
        .policy_arn(arn)
        .version_id(policy.default_version_id().unwrap_or("v1"))
        .send()
        .await
        .ctx("iam:GetPolicyVersion")?;
    Ok(Some(
        version
            .policy_version
            .and_then(|v| v.document)
            .and_then(|d| parse_policy(&d)),
    ))
}

/// Whether `principal` may call `actions` on `resource`, with the
/// condition keys in `context`. A probe: an answer now or the error, not a
/// minute of retries.
pub async fn simulate_principal_policy(
    iam: &Client,
    principal: &str,
    actions: &[&str],
    resource: &str,
    context: Vec<ContextEntry>,
) -> std::result::Result<Vec<EvaluationResult>, AwsError> {
    let out = iam
        .simulate_principal_policy()
        .policy_source_arn(principal)
        .set_action_names(Some(actions.iter().map(|a| a.to_string()).collect()))
        .resource_arns(resource)
        .set_context_entries(Some(context))
        .customize()
        .config_override(aws_sdk_iam::config::Builder::default().retry_config(probe_retry()))
        .send()
        .await
        .ctx("iam:SimulatePrincipalPolicy")?;
    Ok(out.evaluation_results().to_vec())
}

/// IAM returns policy documents URL-encoded; the emulator sometimes does not.
pub fn parse_policy(document: &str) -> Option<Value> {
    serde_json::from_str(document)
        .ok()
        .or_else(|| serde_json::from_str(&percent_decode(document)).ok())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn url_encoded_documents_parse() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(
            parse_policy(encoded),
            Some(json!({"Version": "2012-10-17", "Statement": []}))
        );
        assert_eq!(parse_policy("{\"a\": 1}"), Some(json!({"a": 1})));
        assert_eq!(parse_policy("%ZZnot json"), None);
    }
}
