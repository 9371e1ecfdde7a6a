//! The policy documents of the instance role and the permissions
//! boundary, and the names and ARNs they go by: pure, no AWS call.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::aws::partition;
use crate::resources::Ctx;

pub const INLINE_POLICY_NAME: &str = "glbox-own-parameters";
pub const AGENT_POLICY_NAME: &str = "glbox-ssm-agent";
pub const BACKUP_POLICY_NAME: &str = "glbox-backup-objects";
/// One per account, shared by every deployment and lab (see
/// [`boundary_document`]).
pub const BOUNDARY_POLICY_NAME: &str = "glbox-permissions-boundary";

/// The actions the SSM agent calls to register the instance and take Run
/// Command and Session Manager work: the second and third statements of
/// `AmazonSSMManagedInstanceCore`, and `ssm:UpdateInstanceInformation`
/// from its first (the rest of that statement serves State Manager,
/// Inventory and Patch Manager, which glbox does not use, and the
/// parameter reads).
/// <https://docs.aws.amazon.com/systems-manager/latest/userguide/setup-instance-permissions.html>
pub const SSM_AGENT_ACTIONS: &[&str] = &[
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
];

pub(super) fn trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// Read access to the deployment's parameters (`/glbox/<name>/*`, or a
/// lab's `/glbox-lab/<lab>/*`) in its region, nothing else. (The
/// AWS-managed `aws/ssm` key needs no extra KMS permission to decrypt.)
///
/// A lab's seats share one role, so the path alone would let any seat's
/// box read every seat's root password. A lab role may therefore read
/// only parameters whose `glbox:instance` tag is the ARN of the instance
/// the request comes from: requests signed with an instance role's
/// credentials carry `ec2:SourceInstanceARN`, and a request without it
/// (the credentials used elsewhere) matches nothing. `lab up` tags each
/// seat's parameters with its instance's ARN whenever the seat gets an
/// instance. A tag condition on one shared role, not a role per seat:
/// a lab of 200 seats would need 200 roles and profiles (IAM quotas,
/// 400 more calls per `lab up` and `lab down`, each eventually consistent).
/// <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-ec2-source-instance-arn>
/// <https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-access.html>
pub fn parameters_policy(ctx: &Ctx<'_>) -> Value {
    let region = &ctx.settings.region;
    let mut statement = json!({
        "Sid": "ReadOwnParameters",
        "Effect": "Allow",
        "Action": ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
        "Resource": [
            format!("arn:{}:ssm:{region}:*:parameter{}*", partition(region), ctx.names.parameter_prefix())
        ]
    });
    if ctx.names.is_lab() {
        statement["Condition"] = json!({
            "StringEquals": {
                format!("ssm:resourceTag/{}", crate::names::TAG_INSTANCE): "${ec2:SourceInstanceARN}"
            }
        });
    }
    json!({"Version": "2012-10-17", "Statement": [statement]})
}

/// What the SSM agent needs, on `*` (these actions have no resource-level
/// permissions).
pub fn agent_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "SsmAgent",
            "Effect": "Allow",
            "Action": SSM_AGENT_ACTIONS,
            "Resource": "*"
        }]
    })
}

/// The objects of the backup bucket the box may write and read back:
/// GitLab's archives (`<id>_gitlab_backup.tar`, at the bucket's root:
/// GitLab's upload takes no prefix) and the copies of gitlab.rb and
/// gitlab-secrets.json under `config/`. Writing (PutObject, and aborting
/// its own multipart uploads) and reading them for a restore; never
/// deleting (the lifecycle rule expires them) and never listing (the box
/// knows the names it wrote), so a compromised box cannot destroy the
/// backups or see what else the bucket holds.
/// <https://docs.gitlab.com/administration/backup_restore/backup_gitlab/#upload-backups-to-a-remote-cloud-storage>
pub fn backup_objects_policy(partition: &str, bucket: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "WriteOwnBackups",
            "Effect": "Allow",
            "Action": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
            "Resource": backup_object_arns(partition, bucket)
        }]
    })
}

fn backup_object_arns(partition: &str, bucket: &str) -> Vec<String> {
    vec![
        format!(
            "arn:{partition}:s3:::{bucket}/*{}",
            crate::names::BACKUP_ARCHIVE_SUFFIX
        ),
        format!(
            "arn:{partition}:s3:::{bucket}/{}*",
            crate::names::BACKUP_CONFIG_PREFIX
        ),
    ]
}

/// The inline policies the instance role holds, by name: its own
/// parameters always, the agent's actions only in SSM mode (an SSH-mode
/// box runs no command glbox sends through SSM).
pub fn role_policies(ctx: &Ctx<'_>) -> BTreeMap<String, Value> {
    role_policies_with(ctx, None)
}

/// [`role_policies`], and with S3 backups on (`backup_bucket` named) the
/// bucket's backup objects.
pub fn role_policies_with(ctx: &Ctx<'_>, backup_bucket: Option<&str>) -> BTreeMap<String, Value> {
    let mut policies = BTreeMap::from([(INLINE_POLICY_NAME.to_string(), parameters_policy(ctx))]);
    if ctx.settings.access == crate::config::AccessMethod::Ssm {
        policies.insert(AGENT_POLICY_NAME.to_string(), agent_policy());
    }
    if let Some(bucket) = backup_bucket {
        let partition = partition(&ctx.settings.region);
        policies.insert(
            BACKUP_POLICY_NAME.to_string(),
            backup_objects_policy(partition, bucket),
        );
    }
    policies
}

/// The permissions boundary of every role and user glbox creates: the most
/// any of them may ever do, whatever inline policy it is given. An
/// instance may read parameters under glbox's two prefixes (its inline
/// policy narrows that to its own) and run the SSM agent; the SMTP user
/// may send email (its inline policy narrows that to its domain). The
/// operator policy allows creating roles and users only with this
/// boundary, so holding it does not make anyone an administrator. An
/// instance may also write and read back the backup objects of glbox's
/// buckets (its inline policy narrows that to its own bucket), and the
/// snapshot schedule's role may snapshot and tag volumes as Data
/// Lifecycle Manager does.
/// <https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html>
pub fn boundary_document(partition: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadGlboxParameters",
                "Effect": "Allow",
                "Action": ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
                "Resource": [
                    format!("arn:{partition}:ssm:*:*:parameter/glbox/*"),
                    format!("arn:{partition}:ssm:*:*:parameter/glbox-lab/*")
                ]
            },
            {
                "Sid": "SsmAgent",
                "Effect": "Allow",
                "Action": SSM_AGENT_ACTIONS,
                "Resource": "*"
            },
            {
                "Sid": "SendEmail",
                "Effect": "Allow",
                "Action": "ses:SendRawEmail",
                "Resource": "*"
            },
            {
                "Sid": "WriteGlboxBackups",
                "Effect": "Allow",
                "Action": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                "Resource": backup_object_arns(partition, "glbox-*")
            },
            {
                "Sid": "DlmSnapshots",
                "Effect": "Allow",
                "Action": crate::resources::backup::schedule::DLM_SNAPSHOT_ACTIONS,
                "Resource": "*"
            },
            {
                "Sid": "DlmTagSnapshots",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": format!("arn:{partition}:ec2:*::snapshot/*")
            }
        ]
    })
}

pub fn boundary_arn(partition: &str, account: &str) -> String {
    format!("arn:{partition}:iam::{account}:policy/glbox/{BOUNDARY_POLICY_NAME}")
}

/// The partition and account of an IAM ARN
/// (`arn:aws:iam::123456789012:role/...`).
pub fn partition_and_account(arn: &str) -> Option<(&str, &str)> {
    let mut fields = arn.split(':');
    let partition = fields.nth(1).filter(|p| !p.is_empty())?;
    let account = fields.nth(2).filter(|a| !a.is_empty())?;
    Some((partition, account))
}

/// The boundary's ARN for a role or user whose ARN is `entity_arn`.
pub fn boundary_arn_for(entity_arn: &str) -> Option<String> {
    partition_and_account(entity_arn).map(|(partition, account)| boundary_arn(partition, account))
}

/// The boundary belongs to no deployment: only `glbox:managed-by`.
pub(super) fn boundary_tags() -> Vec<aws_sdk_iam::types::Tag> {
    vec![aws_sdk_iam::types::Tag::builder()
        .key(crate::names::TAG_MANAGED_BY)
        .value(crate::names::MANAGED_BY)
        .build()
        .expect("key and value are set")]
}
