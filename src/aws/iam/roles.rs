//! IAM roles, their policies, and instance profiles.

use std::collections::BTreeMap;

use aws_sdk_iam::error::SdkError;
use aws_sdk_iam::types::{InstanceProfile, Role, Tag};
use aws_sdk_iam::Client;
use serde_json::Value;

use super::{attempt, parse_policy, Attempt, GONE};
use crate::aws::{error, ok_if, AwsResultExt};
use crate::error::Result;

/// The role named `name`; `None` when there is none.
pub async fn get_role(iam: &Client, name: &str) -> Result<Option<Role>> {
    match iam.get_role().role_name(name).send().await {
        Ok(out) => Ok(out.role),
        Err(SdkError::ServiceError(e)) if e.err().is_no_such_entity_exception() => Ok(None),
        Err(e) => Err(error("iam:GetRole", e).into()),
    }
}

/// A role to create.
pub struct NewRole<'a> {
    pub name: &'a str,
    pub path: &'a str,
    pub description: String,
    pub trust_policy: String,
    pub boundary: &'a str,
    pub tags: Vec<Tag>,
}

/// `Conflict` when a role of that name exists (EntityAlreadyExists).
pub async fn create_role(iam: &Client, role: NewRole<'_>) -> Result<Attempt<()>> {
    let created = iam
        .create_role()
        .role_name(role.name)
        .path(role.path)
        .description(role.description)
        .assume_role_policy_document(role.trust_policy)
        .permissions_boundary(role.boundary)
        .set_tags(Some(role.tags))
        .send()
        .await;
    attempt("iam:CreateRole", created, "EntityAlreadyExists", |_| ())
}

pub async fn put_permissions_boundary(iam: &Client, role: &str, boundary: &str) -> Result<()> {
    iam.put_role_permissions_boundary()
        .role_name(role)
        .permissions_boundary(boundary)
        .send()
        .await
        .ctx("iam:PutRolePermissionsBoundary")?;
    Ok(())
}

pub async fn update_trust_policy(iam: &Client, role: &str, document: String) -> Result<()> {
    iam.update_assume_role_policy()
        .role_name(role)
        .policy_document(document)
        .send()
        .await
        .ctx("iam:UpdateAssumeRolePolicy")?;
    Ok(())
}

/// The ARNs of the managed policies attached to the role.
pub async fn attached_policies(iam: &Client, role: &str) -> Result<Vec<String>> {
    let out = iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .ctx("iam:ListAttachedRolePolicies")?;
    Ok(out
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect())
}

/// The names of the role's inline policies.
pub async fn inline_policies(iam: &Client, role: &str) -> Result<Vec<String>> {
    let out = iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .ctx("iam:ListRolePolicies")?;
    Ok(out.policy_names().to_vec())
}

/// One inline policy's document (`None` if it went away meanwhile, or
/// cannot be read as JSON).
pub async fn inline_policy(iam: &Client, role: &str, policy: &str) -> Result<Option<Value>> {
    match iam
        .get_role_policy()
        .role_name(role)
        .policy_name(policy)
        .send()
        .await
    {
        Ok(out) => Ok(parse_policy(out.policy_document())),
        Err(SdkError::ServiceError(e)) if e.err().is_no_such_entity_exception() => Ok(None),
        Err(e) => Err(error("iam:GetRolePolicy", e).into()),
    }
}

/// How a role's policies differ from the inline policies wanted (by name);
/// no managed policy is ever wanted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyDrift {
    /// Managed policies attached to the role (ARNs).
    pub attached: Vec<String>,
    /// Wanted inline policies that are missing or differ.
    pub to_put: Vec<String>,
    /// Inline policies that are not wanted.
    pub to_delete: Vec<String>,
}

impl PolicyDrift {
    pub fn is_empty(&self) -> bool {
        self.attached.is_empty() && self.to_put.is_empty() && self.to_delete.is_empty()
    }
}

/// Reads the role's policies (both lists at once, then each wanted inline
/// policy it has) and compares them with `wanted`.
pub async fn policy_drift(
    iam: &Client,
    role: &str,
    wanted: &BTreeMap<String, Value>,
) -> Result<PolicyDrift> {
    let (attached, present) =
        tokio::try_join!(attached_policies(iam, role), inline_policies(iam, role))?;
    let mut to_put = Vec::new();
    for (policy, document) in wanted {
        let current = match present.contains(policy) {
            true => inline_policy(iam, role, policy).await?,
            false => None,
        };
        if current.as_ref() != Some(document) {
            to_put.push(policy.clone());
        }
    }
    let to_delete = present
        .into_iter()
        .filter(|p| !wanted.contains_key(p))
        .collect();
    Ok(PolicyDrift {
        attached,
        to_put,
        to_delete,
    })
}

/// Removes the drift: detaches the managed policies, deletes the unwanted
/// inline ones, then puts the wanted ones from `wanted`. No drift, no call.
pub async fn converge_policies(
    iam: &Client,
    role: &str,
    drift: &PolicyDrift,
    wanted: &BTreeMap<String, Value>,
) -> Result<()> {
    for arn in &drift.attached {
        detach_policy(iam, role, arn).await?;
    }
    for policy in &drift.to_delete {
        delete_inline_policy(iam, role, policy).await?;
    }
    for policy in &drift.to_put {
        iam.put_role_policy()
            .role_name(role)
            .policy_name(policy)
            .policy_document(wanted[policy].to_string())
            .send()
            .await
            .ctx("iam:PutRolePolicy")?;
    }
    Ok(())
}

pub async fn detach_policy(iam: &Client, role: &str, arn: &str) -> Result<()> {
    let detached = iam
        .detach_role_policy()
        .role_name(role)
        .policy_arn(arn)
        .send()
        .await;
    ok_if("iam:DetachRolePolicy", detached, GONE)?;
    Ok(())
}

pub async fn delete_inline_policy(iam: &Client, role: &str, policy: &str) -> Result<()> {
    let deleted = iam
        .delete_role_policy()
        .role_name(role)
        .policy_name(policy)
        .send()
        .await;
    ok_if("iam:DeleteRolePolicy", deleted, GONE)?;
    Ok(())
}

/// Deletes the role with every policy on it (IAM cannot delete a role
/// that has any): the managed ones are listed and detached first, then
/// the inline ones.
pub async fn delete_role(iam: &Client, role: &str) -> Result<()> {
    for arn in attached_policies(iam, role).await? {
        detach_policy(iam, role, &arn).await?;
    }
    for policy in inline_policies(iam, role).await? {
        delete_inline_policy(iam, role, &policy).await?;
    }
    let deleted = iam.delete_role().role_name(role).send().await;
    ok_if("iam:DeleteRole", deleted, GONE)?;
    Ok(())
}

/// The instance profile named `name`; `None` when there is none.
pub async fn get_instance_profile(iam: &Client, name: &str) -> Result<Option<InstanceProfile>> {
    match iam
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
    {
        Ok(out) => Ok(out.instance_profile),
        Err(SdkError::ServiceError(e)) if e.err().is_no_such_entity_exception() => Ok(None),
        Err(e) => Err(error("iam:GetInstanceProfile", e).into()),
    }
}

/// `Conflict` when a profile of that name exists (EntityAlreadyExists).
pub async fn create_instance_profile(
    iam: &Client,
    name: &str,
    path: &str,
    tags: Vec<Tag>,
) -> Result<Attempt<()>> {
    let created = iam
        .create_instance_profile()
        .instance_profile_name(name)
        .path(path)
        .set_tags(Some(tags))
        .send()
        .await;
    attempt(
        "iam:CreateInstanceProfile",
        created,
        "EntityAlreadyExists",
        |_| (),
    )
}

/// `Conflict` when the profile holds a role already (a profile holds one:
/// LimitExceeded).
pub async fn add_role_to_profile(iam: &Client, profile: &str, role: &str) -> Result<Attempt<()>> {
    let added = iam
        .add_role_to_instance_profile()
        .instance_profile_name(profile)
        .role_name(role)
        .send()
        .await;
    attempt(
        "iam:AddRoleToInstanceProfile",
        added,
        "LimitExceeded",
        |_| (),
    )
}

pub async fn remove_role_from_profile(iam: &Client, profile: &str, role: &str) -> Result<()> {
    let removed = iam
        .remove_role_from_instance_profile()
        .instance_profile_name(profile)
        .role_name(role)
        .send()
        .await;
    ok_if("iam:RemoveRoleFromInstanceProfile", removed, GONE)?;
    Ok(())
}

pub async fn delete_instance_profile(iam: &Client, name: &str) -> Result<()> {
    let deleted = iam
        .delete_instance_profile()
        .instance_profile_name(name)
        .send()
        .await;
    ok_if("iam:DeleteInstanceProfile", deleted, GONE)?;
    Ok(())
}
