//! Amazon Data Lifecycle Manager: the lifecycle policy that snapshots the
//! data volume on a schedule. Find by target tag, read one, create (tagged
//! in the call), update, delete.

use std::collections::HashMap;

use aws_sdk_dlm::error::SdkError;
use aws_sdk_dlm::types::{
    LifecyclePolicy, LifecyclePolicySummary, PolicyDetails, ResourceTypeValues,
    SettablePolicyStateValues,
};
use aws_sdk_dlm::Client;

use crate::aws::{ok_if, AwsResultExt};
use crate::error::Result;

/// The policies targeting volumes with the tag `key=value` (DLM matches a
/// policy that targets any of the tags asked for).
pub async fn policies_targeting(
    dlm: &Client,
    key: &str,
    value: &str,
) -> Result<Vec<LifecyclePolicySummary>> {
    let out = dlm
        .get_lifecycle_policies()
        .target_tags(format!("{key}={value}"))
        .resource_types(ResourceTypeValues::Volume)
        .send()
        .await
        .ctx("dlm:GetLifecyclePolicies")?;
    Ok(out.policies().to_vec())
}

/// One policy in full; `None` when it is gone.
pub async fn policy(dlm: &Client, id: &str) -> Result<Option<LifecyclePolicy>> {
    match dlm.get_lifecycle_policy().policy_id(id).send().await {
        Ok(out) => Ok(out.policy),
        Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => Ok(None),
        Err(e) => Err(crate::aws::error("dlm:GetLifecyclePolicy", e).into()),
    }
}

/// A policy to create or to set.
pub struct NewPolicy {
    pub description: String,
    pub role_arn: String,
    pub details: PolicyDetails,
    pub tags: HashMap<String, String>,
}

/// Creates the policy, enabled and tagged; returns its id. DLM takes no
/// client token: a caller that may have lost an answer looks for the
/// policy by its target tag first.
pub async fn create(dlm: &Client, policy: NewPolicy) -> Result<String> {
    let out = dlm
        .create_lifecycle_policy()
        .description(policy.description)
        .execution_role_arn(policy.role_arn)
        .state(SettablePolicyStateValues::Enabled)
        .policy_details(policy.details)
        .set_tags(Some(policy.tags))
        .send()
        .await
        .ctx("dlm:CreateLifecyclePolicy")?;
    Ok(out.policy_id().unwrap_or_default().to_string())
}

/// Sets the policy's role, details and description, and enables it.
pub async fn update(dlm: &Client, id: &str, policy: NewPolicy) -> Result<()> {
    dlm.update_lifecycle_policy()
        .policy_id(id)
        .description(policy.description)
        .execution_role_arn(policy.role_arn)
        .state(SettablePolicyStateValues::Enabled)
        .policy_details(policy.details)
        .send()
        .await
        .ctx("dlm:UpdateLifecyclePolicy")?;
    Ok(())
}

/// Deletes the policy (the snapshots it made stay); one DLM no longer
/// knows is gone already.
pub async fn delete(dlm: &Client, id: &str) -> Result<()> {
    let deleted = dlm.delete_lifecycle_policy().policy_id(id).send().await;
    ok_if(
        "dlm:DeleteLifecyclePolicy",
        deleted,
        &["ResourceNotFoundException"],
    )?;
    Ok(())
}
