//! Security groups: describe, create, authorize and revoke ingress, delete.

use aws_sdk_ec2::types::{Filter, IpPermission, SecurityGroup, TagSpecification};
use aws_sdk_ec2::Client;

use crate::aws::{has_code, settled, AwsError, AwsResultExt, Lag};
use crate::ui::Ui;

/// The groups matching `filters`.
pub async fn describe(ec2: &Client, filters: Vec<Filter>) -> Result<Vec<SecurityGroup>, AwsError> {
    let out = ec2
        .describe_security_groups()
        .set_filters((!filters.is_empty()).then_some(filters))
        .send()
        .await
        .ctx("ec2:DescribeSecurityGroups")?;
    Ok(out.security_groups().to_vec())
}

/// Creates the group in `vpc_id`, tagged at creation; returns its id.
pub async fn create(
    ec2: &Client,
    name: &str,
    description: String,
    vpc_id: &str,
    tags: TagSpecification,
) -> Result<String, AwsError> {
    let out = ec2
        .create_security_group()
        .group_name(name)
        .description(description)
        .vpc_id(vpc_id)
        .tag_specifications(tags)
        .send()
        .await
        .ctx("ec2:CreateSecurityGroup")?;
    Ok(out.group_id().unwrap_or_default().to_string())
}

/// What AuthorizeSecurityGroupIngress answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Authorized {
    Added,
    /// Some of the rules are there already (a retried call whose answer was
    /// lost, or rules added meanwhile): none was added.
    SomeExist,
}

/// Adds ingress `rules` to the group; right after CreateSecurityGroup EC2
/// may not know the group yet, which is waited out.
pub async fn authorize(
    ec2: &Client,
    ui: &Ui,
    id: &str,
    rules: Vec<IpPermission>,
) -> Result<Authorized, AwsError> {
    let sent = settled(ui, &[Lag::FreshId], id, || {
        ec2.authorize_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(rules.clone()))
            .send()
    })
    .await;
    match sent {
        Err(e) if has_code(&e, "InvalidPermission.Duplicate") => Ok(Authorized::SomeExist),
        other => other
            .ctx("ec2:AuthorizeSecurityGroupIngress")
            .map(|_| Authorized::Added),
    }
}

/// Removes ingress `rules`; rules that are gone already are success.
pub async fn revoke(ec2: &Client, id: &str, rules: Vec<IpPermission>) -> Result<(), AwsError> {
    let sent = ec2
        .revoke_security_group_ingress()
        .group_id(id)
        .set_ip_permissions(Some(rules))
        .send()
        .await;
    match sent {
        Err(e) if has_code(&e, "InvalidPermission.NotFound") => Ok(()),
        other => other.ctx("ec2:RevokeSecurityGroupIngress").map(|_| ()),
    }
}

/// Deletes the group; one that is gone already (a retried delete whose
/// answer was lost) is success. While a network interface still uses it,
/// EC2 answers DependencyViolation, which the caller waits out.
pub async fn delete(ec2: &Client, id: &str) -> Result<(), AwsError> {
    let sent = ec2.delete_security_group().group_id(id).send().await;
    match sent {
        Err(e) if has_code(&e, "InvalidGroup.NotFound") => Ok(()),
        other => other.ctx("ec2:DeleteSecurityGroup").map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::replay::{ec2_client, ec2_refusal, operations};

    #[tokio::test]
    async fn rules_that_exist_are_reported_not_failed() {
        let (ec2, replay) = ec2_client(vec![ec2_refusal("InvalidPermission.Duplicate")]);
        let ui = Ui::new(crate::ui::Verbosity::Quiet);
        let added = authorize(&ec2, &ui, "sg-1", Vec::new()).await.unwrap();
        assert_eq!(added, Authorized::SomeExist);
        assert_eq!(operations(&replay), ["AuthorizeSecurityGroupIngress"]);
    }

    #[tokio::test]
    async fn a_group_that_is_gone_is_deleted() {
        let (ec2, _) = ec2_client(vec![ec2_refusal("InvalidGroup.NotFound")]);
        delete(&ec2, "sg-1").await.unwrap();
    }
}
