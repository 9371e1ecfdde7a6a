//! The instance's IAM role and instance profile. The role trusts EC2, has
//! `AmazonSSMManagedInstanceCore` (so SSM Run Command can reach the box) and
//! one inline policy that lets the instance read only its own parameters.
//!
//! IAM names are global to the account, so a role or profile with glbox's
//! name but without the deployment's tags is someone else's: glbox refuses
//! to adopt it and never deletes it.

use aws_sdk_iam::error::SdkError;
use serde_json::{json, Value};

use crate::aws::{has_code, ok_if, partition, AwsResultExt};
use crate::error::{Error, Result};
use crate::names::Role;
use crate::resources::{Action, Ctx, PlanItem};

pub const INLINE_POLICY_NAME: &str = "glbox-own-parameters";
const SSM_MANAGED_POLICY: &str = "AmazonSSMManagedInstanceCore";

fn managed_policy_arn(region: &str) -> String {
    format!(
        "arn:{}:iam::aws:policy/{SSM_MANAGED_POLICY}",
        partition(region)
    )
}

fn trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// Read access to `/glbox/<name>/*` in the deployment's region, nothing else.
/// (The AWS-managed `aws/ssm` key needs no extra KMS permission to decrypt.)
pub fn parameters_policy(ctx: &Ctx<'_>) -> Value {
    let region = &ctx.settings.region;
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ReadOwnParameters",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
            "Resource": [
                format!("arn:{}:ssm:{region}:*:parameter{}*", partition(region), ctx.names.parameter_prefix())
            ]
        }]
    })
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

#[derive(Debug, Clone)]
pub struct RoleState {
    pub name: String,
    /// False when a role of this name exists without the deployment's tags:
    /// it is someone else's, and glbox neither adopts nor deletes it.
    pub owned: bool,
    pub trust_ok: bool,
    pub managed_attached: bool,
    pub inline_ok: bool,
}

#[derive(Debug, Clone)]
pub struct ProfileState {
    pub name: String,
    /// See [`RoleState::owned`].
    pub owned: bool,
    pub roles: Vec<String>,
}

/// The error for a role or profile that carries glbox's name but is not ours.
pub fn foreign(kind: &str, name: &str) -> Error {
    Error::Refused(format!(
        "an IAM {kind} named {name} exists but is not tagged as this deployment's (glbox:deployment)\n  fix: delete or rename it, or choose another deployment name"
    ))
}

/// Finds the role by its name and tells whether it is the deployment's.
pub async fn observe_role(ctx: &Ctx<'_>, desired_policy: &Value) -> Result<Option<RoleState>> {
    let name = ctx.names.iam_name();
    let role = match ctx.aws.iam.get_role().role_name(&name).send().await {
        Ok(out) => out.role,
        Err(SdkError::ServiceError(e)) if e.err().is_no_such_entity_exception() => return Ok(None),
        Err(e) => return Err(crate::aws::error("iam:GetRole", e).into()),
    };
    let Some(role) = role else { return Ok(None) };
    if !ctx.names.owns_iam(role.tags()) {
        return Ok(Some(RoleState {
            name,
            owned: false,
            trust_ok: false,
            managed_attached: false,
            inline_ok: false,
        }));
    }
    let trust_ok =
        role.assume_role_policy_document().and_then(parse_policy) == Some(trust_policy());
    let attached = ctx
        .aws
        .iam
        .list_attached_role_policies()
        .role_name(&name)
        .send()
        .await
        .ctx("iam:ListAttachedRolePolicies")?;
    let managed_arn = managed_policy_arn(&ctx.settings.region);
    let managed_attached = attached
        .attached_policies()
        .iter()
        .any(|p| p.policy_arn() == Some(managed_arn.as_str()));
    let inline = match ctx
        .aws
        .iam
        .get_role_policy()
        .role_name(&name)
        .policy_name(INLINE_POLICY_NAME)
        .send()
        .await
    {
        Ok(out) => parse_policy(out.policy_document()),
        Err(SdkError::ServiceError(e)) if e.err().is_no_such_entity_exception() => None,
        Err(e) => return Err(crate::aws::error("iam:GetRolePolicy", e).into()),
    };
    Ok(Some(RoleState {
        name,
        owned: true,
        trust_ok,
        managed_attached,
        inline_ok: inline.as_ref() == Some(desired_policy),
    }))
}

pub async fn observe_profile(ctx: &Ctx<'_>) -> Result<Option<ProfileState>> {
    let name = ctx.names.iam_name();
    let profile = match ctx
        .aws
        .iam
        .get_instance_profile()
        .instance_profile_name(&name)
        .send()
        .await
    {
        Ok(out) => out.instance_profile,
        Err(SdkError::ServiceError(e)) if e.err().is_no_such_entity_exception() => return Ok(None),
        Err(e) => return Err(crate::aws::error("iam:GetInstanceProfile", e).into()),
    };
    let Some(profile) = profile else {
        return Ok(None);
    };
    Ok(Some(ProfileState {
        owned: ctx.names.owns_iam(profile.tags()),
        name,
        roles: profile
            .roles()
            .iter()
            .map(|r| r.role_name().to_string())
            .collect(),
    }))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleChange {
    Create,
    Update {
        trust: bool,
        attach_managed: bool,
        put_inline: bool,
    },
    NoChange,
}

pub fn diff_role(observed: Option<&RoleState>) -> RoleChange {
    match observed {
        None => RoleChange::Create,
        Some(r) if r.trust_ok && r.managed_attached && r.inline_ok => RoleChange::NoChange,
        Some(r) => RoleChange::Update {
            trust: !r.trust_ok,
            attach_managed: !r.managed_attached,
            put_inline: !r.inline_ok,
        },
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileChange {
    Create,
    Update {
        add_role: bool,
        remove_roles: Vec<String>,
    },
    NoChange,
}

pub fn diff_profile(role_name: &str, observed: Option<&ProfileState>) -> ProfileChange {
    let Some(profile) = observed else {
        return ProfileChange::Create;
    };
    let add_role = !profile.roles.iter().any(|r| r == role_name);
    let remove_roles: Vec<String> = profile
        .roles
        .iter()
        .filter(|r| *r != role_name)
        .cloned()
        .collect();
    if add_role || !remove_roles.is_empty() {
        ProfileChange::Update {
            add_role,
            remove_roles,
        }
    } else {
        ProfileChange::NoChange
    }
}

impl RoleChange {
    pub fn item(&self, ctx: &Ctx<'_>) -> PlanItem {
        let name = ctx.names.iam_name();
        let id = (!matches!(self, RoleChange::Create)).then(|| name.clone());
        match self {
            RoleChange::Create => PlanItem::new("iam_role", name, None, Action::Create)
                .with_changes(vec![
                    "trust ec2.amazonaws.com".into(),
                    format!("attach {SSM_MANAGED_POLICY}"),
                    format!("allow reading only {}*", ctx.names.parameter_prefix()),
                ]),
            RoleChange::Update {
                trust,
                attach_managed,
                put_inline,
            } => {
                let mut changes = Vec::new();
                if *trust {
                    changes.push("restore the EC2 trust policy".to_string());
                }
                if *attach_managed {
                    changes.push(format!("attach {SSM_MANAGED_POLICY}"));
                }
                if *put_inline {
                    changes.push(format!("restore inline policy {INLINE_POLICY_NAME}"));
                }
                PlanItem::new("iam_role", name, id, Action::Update).with_changes(changes)
            }
            RoleChange::NoChange => PlanItem::new("iam_role", name, id, Action::NoChange),
        }
    }
}

impl ProfileChange {
    pub fn item(&self, ctx: &Ctx<'_>) -> PlanItem {
        let name = ctx.names.iam_name();
        match self {
            ProfileChange::Create => {
                PlanItem::new("instance_profile", name.clone(), None, Action::Create)
                    .with_changes(vec![format!("holds role {name}")])
            }
            ProfileChange::Update {
                add_role,
                remove_roles,
            } => {
                let mut changes: Vec<String> = remove_roles
                    .iter()
                    .map(|r| format!("remove role {r}"))
                    .collect();
                if *add_role {
                    changes.push(format!("add role {name}"));
                }
                PlanItem::new("instance_profile", name.clone(), Some(name), Action::Update)
                    .with_changes(changes)
            }
            ProfileChange::NoChange => PlanItem::new(
                "instance_profile",
                name.clone(),
                Some(name),
                Action::NoChange,
            ),
        }
    }
}

/// Makes the role match; returns whether anything was created (EC2 may not
/// see a new role for a few seconds).
pub async fn apply_role(ctx: &Ctx<'_>, change: &RoleChange, policy: &Value) -> Result<bool> {
    let name = ctx.names.iam_name();
    let (create, trust, attach, inline) = match change {
        RoleChange::NoChange => return Ok(false),
        RoleChange::Create => (true, false, true, true),
        RoleChange::Update {
            trust,
            attach_managed,
            put_inline,
        } => (false, *trust, *attach_managed, *put_inline),
    };
    let iam = &ctx.aws.iam;
    if create {
        let created = iam
            .create_role()
            .role_name(&name)
            .path(ctx.names.iam_path())
            .description(format!(
                "glbox deployment {}: GitLab instance",
                ctx.names.deployment
            ))
            .assume_role_policy_document(trust_policy().to_string())
            .set_tags(Some(ctx.names.iam_tags(Role::InstanceRole)))
            .send()
            .await;
        match created {
            // A retried create whose answer was lost: ours if tagged so.
            Err(e) if has_code(&e, "EntityAlreadyExists") => {
                if !observe_role(ctx, policy).await?.is_some_and(|r| r.owned) {
                    return Err(crate::aws::error("iam:CreateRole", e).into());
                }
            }
            other => {
                other.ctx("iam:CreateRole")?;
            }
        }
        ctx.ui.info(&format!("created IAM role {name}"));
    }
    if trust {
        iam.update_assume_role_policy()
            .role_name(&name)
            .policy_document(trust_policy().to_string())
            .send()
            .await
            .ctx("iam:UpdateAssumeRolePolicy")?;
    }
    if attach {
        iam.attach_role_policy()
            .role_name(&name)
            .policy_arn(managed_policy_arn(&ctx.settings.region))
            .send()
            .await
            .ctx("iam:AttachRolePolicy")?;
    }
    if inline {
        iam.put_role_policy()
            .role_name(&name)
            .policy_name(INLINE_POLICY_NAME)
            .policy_document(policy.to_string())
            .send()
            .await
            .ctx("iam:PutRolePolicy")?;
    }
    if !create {
        ctx.ui.info(&format!("repaired IAM role {name}"));
    }
    Ok(create)
}

pub async fn apply_profile(ctx: &Ctx<'_>, change: &ProfileChange) -> Result<bool> {
    let name = ctx.names.iam_name();
    let iam = &ctx.aws.iam;
    let (created, add_role, remove_roles) = match change {
        ProfileChange::NoChange => return Ok(false),
        ProfileChange::Create => {
            let created = iam
                .create_instance_profile()
                .instance_profile_name(&name)
                .path(ctx.names.iam_path())
                .set_tags(Some(ctx.names.iam_tags(Role::InstanceRole)))
                .send()
                .await;
            let add_role = match created {
                // A retried create whose answer was lost: ours if tagged so.
                Err(e) if has_code(&e, "EntityAlreadyExists") => {
                    match observe_profile(ctx).await?.filter(|p| p.owned) {
                        Some(profile) => !profile.roles.contains(&name),
                        None => {
                            return Err(crate::aws::error("iam:CreateInstanceProfile", e).into())
                        }
                    }
                }
                other => {
                    other.ctx("iam:CreateInstanceProfile")?;
                    true
                }
            };
            ctx.ui.info(&format!("created instance profile {name}"));
            (true, add_role, Vec::new())
        }
        ProfileChange::Update {
            add_role,
            remove_roles,
        } => (false, *add_role, remove_roles.clone()),
    };
    for role in &remove_roles {
        remove_role(ctx, role).await?;
    }
    if add_role {
        let added = iam
            .add_role_to_instance_profile()
            .instance_profile_name(&name)
            .role_name(&name)
            .send()
            .await;
        match added {
            // A profile holds one role: if it is ours, the retried call's
            // first attempt did the job.
            Err(e) if has_code(&e, "LimitExceeded") => {
                let holds_ours = observe_profile(ctx)
                    .await?
                    .is_some_and(|p| p.roles == [name.clone()]);
                if !holds_ours {
                    return Err(crate::aws::error("iam:AddRoleToInstanceProfile", e).into());
                }
            }
            other => {
                other.ctx("iam:AddRoleToInstanceProfile")?;
            }
        }
    }
    Ok(created || add_role)
}

/// Deletes and removals below treat "no such entity" as done: a retried
/// call whose first answer was lost finds nothing left to remove.
const GONE: &[&str] = &["NoSuchEntity"];

async fn remove_role(ctx: &Ctx<'_>, role: &str) -> Result<()> {
    let removed = ctx
        .aws
        .iam
        .remove_role_from_instance_profile()
        .instance_profile_name(ctx.names.iam_name())
        .role_name(role)
        .send()
        .await;
    ok_if("iam:RemoveRoleFromInstanceProfile", removed, GONE)?;
    Ok(())
}

/// Deletes the instance profile (after taking its roles out).
pub async fn delete_profile(ctx: &Ctx<'_>, profile: &ProfileState) -> Result<()> {
    for role in &profile.roles {
        remove_role(ctx, role).await?;
    }
    let deleted = ctx
        .aws
        .iam
        .delete_instance_profile()
        .instance_profile_name(&profile.name)
        .send()
        .await;
    ok_if("iam:DeleteInstanceProfile", deleted, GONE)?;
    ctx.ui
        .info(&format!("deleted instance profile {}", profile.name));
    Ok(())
}

/// Deletes the role with every policy glbox put on it. Policies someone
/// else attached are detached too: IAM cannot delete a role that has any.
pub async fn delete_role(ctx: &Ctx<'_>, role: &RoleState) -> Result<()> {
    let iam = &ctx.aws.iam;
    let attached = iam
        .list_attached_role_policies()
        .role_name(&role.name)
        .send()
        .await
        .ctx("iam:ListAttachedRolePolicies")?;
    for policy in attached.attached_policies() {
        let detached = iam
            .detach_role_policy()
            .role_name(&role.name)
            .policy_arn(policy.policy_arn().unwrap_or_default())
            .send()
            .await;
        ok_if("iam:DetachRolePolicy", detached, GONE)?;
    }
    let inline = iam
        .list_role_policies()
        .role_name(&role.name)
        .send()
        .await
        .ctx("iam:ListRolePolicies")?;
    for policy in inline.policy_names() {
        let deleted = iam
            .delete_role_policy()
            .role_name(&role.name)
            .policy_name(policy)
            .send()
            .await;
        ok_if("iam:DeleteRolePolicy", deleted, GONE)?;
    }
    let deleted = iam.delete_role().role_name(&role.name).send().await;
    ok_if("iam:DeleteRole", deleted, GONE)?;
    ctx.ui.info(&format!("deleted IAM role {}", role.name));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_profile_converges_to_exactly_our_role() {
        let state = ProfileState {
            name: "glbox-a".into(),
            owned: true,
            roles: vec!["other".into()],
        };
        assert_eq!(
            diff_profile("glbox-a", Some(&state)),
            ProfileChange::Update {
                add_role: true,
                remove_roles: vec!["other".into()]
            }
        );
        let state = ProfileState {
            name: "glbox-a".into(),
            owned: true,
            roles: vec!["glbox-a".into()],
        };
        assert_eq!(
            diff_profile("glbox-a", Some(&state)),
            ProfileChange::NoChange
        );
        assert_eq!(diff_profile("glbox-a", None), ProfileChange::Create);
    }

    #[test]
    fn role_drift_is_itemised() {
        let state = RoleState {
            name: "glbox-a".into(),
            owned: true,
            trust_ok: true,
            managed_attached: false,
            inline_ok: true,
        };
        assert_eq!(
            diff_role(Some(&state)),
            RoleChange::Update {
                trust: false,
                attach_managed: true,
                put_inline: false
            }
        );
    }
}
