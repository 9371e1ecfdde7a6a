//! IAM users, their inline policy and access keys.

use aws_sdk_iam::error::SdkError;
use aws_sdk_iam::types::{AccessKeyMetadata, Tag, User};
use aws_sdk_iam::Client;
use serde_json::Value;

use super::{attempt, parse_policy, Attempt, GONE};
use crate::aws::{ok_if, AwsResultExt};
use crate::error::Result;

/// The user named `name`; `None` when there is none.
pub async fn get_user(iam: &Client, name: &str) -> Result<Option<User>> {
    match iam.get_user().user_name(name).send().await {
        Ok(out) => Ok(out.user),
        Err(SdkError::ServiceError(e)) if e.err().is_no_such_entity_exception() => Ok(None),
        Err(e) => Err(crate::aws::error("iam:GetUser", e).into()),
    }
}

/// The ARN of a user that must exist (its absence is IAM's error).
pub async fn user_arn(iam: &Client, name: &str) -> Result<String> {
    let out = iam
        .get_user()
        .user_name(name)
        .send()
        .await
        .ctx("iam:GetUser")?;
    Ok(out.user().map(|u| u.arn().to_string()).unwrap_or_default())
}

/// A user to create.
pub struct NewUser<'a> {
    pub name: &'a str,
    pub path: &'a str,
    pub boundary: Option<String>,
    pub tags: Vec<Tag>,
}

/// The new user's ARN; `Conflict` when a user of that name exists
/// (EntityAlreadyExists).
pub async fn create_user(iam: &Client, user: NewUser<'_>) -> Result<Attempt<String>> {
    let created = iam
        .create_user()
        .user_name(user.name)
        .path(user.path)
        .set_permissions_boundary(user.boundary)
        .set_tags(Some(user.tags))
        .send()
        .await;
    attempt(
        created.ctx("iam:CreateUser"),
        "EntityAlreadyExists",
        |out| out.user().map(|u| u.arn().to_string()).unwrap_or_default(),
    )
}

pub async fn put_permissions_boundary(iam: &Client, user: &str, boundary: &str) -> Result<()> {
    iam.put_user_permissions_boundary()
        .user_name(user)
        .permissions_boundary(boundary)
        .send()
        .await
        .ctx("iam:PutUserPermissionsBoundary")?;
    Ok(())
}

/// One inline policy's document (`None` when there is none, or it cannot
/// be read as JSON).
pub async fn user_policy(iam: &Client, user: &str, policy: &str) -> Result<Option<Value>> {
    match iam
        .get_user_policy()
        .user_name(user)
        .policy_name(policy)
        .send()
        .await
    {
        Ok(out) => Ok(parse_policy(out.policy_document())),
        Err(SdkError::ServiceError(e)) if e.err().is_no_such_entity_exception() => Ok(None),
        Err(e) => Err(crate::aws::error("iam:GetUserPolicy", e).into()),
    }
}

pub async fn put_user_policy(
    iam: &Client,
    user: &str,
    policy: &str,
    document: String,
) -> Result<()> {
    iam.put_user_policy()
        .user_name(user)
        .policy_name(policy)
        .policy_document(document)
        .send()
        .await
        .ctx("iam:PutUserPolicy")?;
    Ok(())
}

pub async fn delete_user_policy(iam: &Client, user: &str, policy: &str) -> Result<()> {
    let deleted = iam
        .delete_user_policy()
        .user_name(user)
        .policy_name(policy)
        .send()
        .await;
    ok_if("iam:DeleteUserPolicy", deleted, GONE)?;
    Ok(())
}

/// The user's access keys, in IAM's order.
pub async fn access_keys(iam: &Client, user: &str) -> Result<Vec<AccessKeyMetadata>> {
    let out = iam
        .list_access_keys()
        .user_name(user)
        .send()
        .await
        .ctx("iam:ListAccessKeys")?;
    Ok(out.access_key_metadata().to_vec())
}

/// A key IAM has just made: the only time it tells the secret.
pub struct NewKey {
    pub id: String,
    pub secret: String,
}

/// `Conflict` when the user has IAM's two keys already (LimitExceeded).
pub async fn create_access_key(iam: &Client, user: &str) -> Result<Attempt<Option<NewKey>>> {
    let created = iam.create_access_key().user_name(user).send().await;
    attempt(created.ctx("iam:CreateAccessKey"), "LimitExceeded", |out| {
        out.access_key().map(|key| NewKey {
            id: key.access_key_id().to_string(),
            secret: key.secret_access_key().to_string(),
        })
    })
}

pub async fn delete_access_key(iam: &Client, user: &str, key: &str) -> Result<()> {
    let deleted = iam
        .delete_access_key()
        .user_name(user)
        .access_key_id(key)
        .send()
        .await;
    ok_if("iam:DeleteAccessKey", deleted, GONE)?;
    Ok(())
}

pub async fn delete_user(iam: &Client, user: &str) -> Result<()> {
    let deleted = iam.delete_user().user_name(user).send().await;
    ok_if("iam:DeleteUser", deleted, GONE)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::replay::{self, answers, operations};

    fn client(replay: &aws_smithy_http_client::test_util::StaticReplayClient) -> Client {
        let config = aws_sdk_iam::Config::builder()
            .http_client(replay.clone())
            .behavior_version_latest()
            .region(aws_sdk_iam::config::Region::new(replay::REGION))
            .credentials_provider(replay::credentials())
            .build();
        Client::from_conf(config)
    }

    fn refused(code: &str) -> String {
        format!(
            r#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>{code}</Code><Message>{code}</Message></Error><RequestId>r</RequestId></ErrorResponse>"#
        )
    }

    #[tokio::test]
    async fn a_full_user_is_a_conflict_and_gone_things_are_deleted() {
        let gone = refused("NoSuchEntity");
        let replay = answers(&[
            (409, &refused("LimitExceeded")),
            (404, &gone),
            (404, &gone),
            (404, &gone),
            (404, &gone),
        ]);
        let iam = client(&replay);
        let created = create_access_key(&iam, "glbox-t-smtp").await.unwrap();
        assert!(matches!(created, Attempt::Conflict(e) if e.action == "iam:CreateAccessKey"));
        delete_access_key(&iam, "glbox-t-smtp", "AKIAOLD")
            .await
            .unwrap();
        delete_user_policy(&iam, "glbox-t-smtp", "glbox-ses-send")
            .await
            .unwrap();
        delete_user(&iam, "glbox-t-smtp").await.unwrap();
        assert_eq!(get_user(&iam, "glbox-t-smtp").await.unwrap(), None);
        assert_eq!(
            operations(&replay),
            [
                "CreateAccessKey",
                "DeleteAccessKey",
                "DeleteUserPolicy",
                "DeleteUser",
                "GetUser"
            ]
        );
    }
}
