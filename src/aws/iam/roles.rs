//! IAM roles, their policies, and instance profiles.

use std::collections::BTreeMap;

use aws_sdk_iam::error::SdkError;
use aws_sdk_iam::types::{InstanceProfile, Role, Tag};
use aws_sdk_iam::Client;
use serde_json::Value;

use super::{attempt, parse_policy, Attempt, GONE};
use crate::aws::{ok_if, AwsResultExt};
use crate::error::Result;

/// The role named `name`; `None` when there is none.
pub async fn get_role(iam: &Client, name: &str) -> Result<Option<Role>> {
    match iam.get_role().role_name(name).send().await {
        Ok(out) => Ok(out.role),
        Err(SdkError::ServiceError(e)) if e.err().is_no_such_entity_exception() => Ok(None),
        Err(e) => Err(crate::aws::error("iam:GetRole", e).into()),
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
    attempt(created.ctx("iam:CreateRole"), "EntityAlreadyExists", |_| ())
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
        Err(e) => Err(crate::aws::error("iam:GetRolePolicy", e).into()),
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
        Err(e) => Err(crate::aws::error("iam:GetInstanceProfile", e).into()),
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
        created.ctx("iam:CreateInstanceProfile"),
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
        added.ctx("iam:AddRoleToInstanceProfile"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::replay::{self, answers, operations};
    use aws_smithy_http_client::test_util::StaticReplayClient;
    use serde_json::json;

    fn client(replay: &StaticReplayClient) -> Client {
        let config = aws_sdk_iam::Config::builder()
            .http_client(replay.clone())
            .behavior_version_latest()
            .region(aws_sdk_iam::config::Region::new(replay::REGION))
            .credentials_provider(replay::credentials())
            .build();
        Client::from_conf(config)
    }

    /// An IAM (query protocol) answer to `operation`.
    fn ok(operation: &str, result: &str) -> String {
        format!(
            r#"<{operation}Response xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><{operation}Result>{result}</{operation}Result><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></{operation}Response>"#
        )
    }

    fn refused(code: &str) -> String {
        format!(
            r#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>{code}</Code><Message>{code}</Message></Error><RequestId>r</RequestId></ErrorResponse>"#
        )
    }

    fn wanted() -> BTreeMap<String, Value> {
        BTreeMap::from([(
            "glbox-own-parameters".to_string(),
            json!({"Version": "2012-10-17", "Statement": []}),
        )])
    }

    #[tokio::test]
    async fn a_converged_role_costs_its_reads_and_nothing_more() {
        let attached = ok(
            "ListAttachedRolePolicies",
            "<AttachedPolicies/><IsTruncated>false</IsTruncated>",
        );
        let inline = ok(
            "ListRolePolicies",
            "<PolicyNames><member>glbox-own-parameters</member></PolicyNames><IsTruncated>false</IsTruncated>",
        );
        // URL-encoded, as IAM returns documents.
        let document = ok(
            "GetRolePolicy",
            "<RoleName>glbox-t</RoleName><PolicyName>glbox-own-parameters</PolicyName><PolicyDocument>%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D</PolicyDocument>",
        );
        let replay = answers(&[(200, &attached), (200, &inline), (200, &document)]);
        let iam = client(&replay);
        let drift = policy_drift(&iam, "glbox-t", &wanted()).await.unwrap();
        assert!(drift.is_empty(), "{drift:?}");
        converge_policies(&iam, "glbox-t", &drift, &wanted())
            .await
            .unwrap();
        assert_eq!(
            operations(&replay),
            [
                "ListAttachedRolePolicies",
                "ListRolePolicies",
                "GetRolePolicy"
            ]
        );
    }

    #[tokio::test]
    async fn drift_is_repaired_in_order_detach_delete_put() {
        let drift = PolicyDrift {
            attached: vec!["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore".into()],
            to_put: vec!["glbox-own-parameters".into()],
            to_delete: vec!["someone-elses".into()],
        };
        let replay = answers(&[
            (200, &ok("DetachRolePolicy", "")),
            // Gone already: a retried delete whose first answer was lost.
            (404, &refused("NoSuchEntity")),
            (200, &ok("PutRolePolicy", "")),
        ]);
        converge_policies(&client(&replay), "glbox-t", &drift, &wanted())
            .await
            .unwrap();
        assert_eq!(
            operations(&replay),
            ["DetachRolePolicy", "DeleteRolePolicy", "PutRolePolicy"]
        );
    }

    #[tokio::test]
    async fn a_create_that_finds_the_name_taken_is_a_conflict_for_the_caller() {
        let replay = answers(&[
            (409, &refused("EntityAlreadyExists")),
            (409, &refused("LimitExceeded")),
            (400, &refused("MalformedPolicyDocument")),
        ]);
        let iam = client(&replay);
        let role = || NewRole {
            name: "glbox-t",
            path: "/glbox/",
            description: "glbox deployment t: GitLab instance".into(),
            trust_policy: "{}".into(),
            boundary: "arn:aws:iam::1:policy/glbox/glbox-permissions-boundary",
            tags: Vec::new(),
        };
        match create_role(&iam, role()).await.unwrap() {
            Attempt::Conflict(e) => assert_eq!(e.action, "iam:CreateRole"),
            Attempt::Done(()) => panic!("a conflict"),
        }
        let added = add_role_to_profile(&iam, "glbox-t", "glbox-t")
            .await
            .unwrap();
        assert!(
            matches!(added, Attempt::Conflict(e) if e.code.as_deref() == Some("LimitExceeded"))
        );
        assert!(
            create_role(&iam, role()).await.is_err(),
            "any other refusal is an error"
        );
    }
}
