//! The instance's IAM role and instance profile, and the permissions
//! boundary every role and user glbox makes carries.
//!
//! The role trusts EC2 and holds only inline policies glbox writes: one
//! that lets the instance read its own parameters and, in SSM mode, one
//! with exactly the SSM agent's actions. It holds no managed policy: the
//! AWS-managed `AmazonSSMManagedInstanceCore` (which versions of glbox
//! before this one attached) also allows `ssm:GetParameter(s)` on `*`, so
//! any process on the box could read every parameter of the account
//! (<https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonSSMManagedInstanceCore.html>).
//! `up` converges the role's policies exactly: managed policies are
//! detached and inline policies glbox did not write are deleted.
//!
//! IAM names are global to the account, so a role or profile with glbox's
//! name but without the deployment's tags is someone else's: glbox refuses
//! to adopt it and never deletes it.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::aws::iam::{self, parse_policy, roles, Attempt};
use crate::aws::partition;
use crate::error::{Error, Result};
use crate::names::Role;
use crate::resources::{Action, Ctx, PlanItem};

mod policies;
pub use policies::{
    agent_policy, backup_objects_policy, boundary_arn, boundary_arn_for, boundary_document,
    parameters_policy, partition_and_account, role_policies, role_policies_with, AGENT_POLICY_NAME,
    BACKUP_POLICY_NAME, BOUNDARY_POLICY_NAME, INLINE_POLICY_NAME, SSM_AGENT_ACTIONS,
};
use policies::{boundary_tags, trust_policy};

/// Makes sure the account's boundary policy exists and is glbox's; returns
/// its ARN. Created when missing. One that exists with another document
/// is refused, not rewritten: the operator policy may create the boundary
/// but never change its versions (whoever could, could widen every glbox
/// role and user at once), so an administrator must put it right.
pub async fn ensure_boundary(ctx: &Ctx<'_>) -> Result<String> {
    let partition = partition(&ctx.settings.region);
    let account = caller_account(ctx).await?;
    let arn = boundary_arn(partition, &account);
    let document = boundary_document(partition);
    let iam = &ctx.aws.iam;
    let current = match iam::policy_document(iam, &arn).await? {
        Some(current) => current,
        None => {
            let policy = iam::NewPolicy {
                name: BOUNDARY_POLICY_NAME,
                path: ctx.names.iam_path(),
                description: "glbox: the most any role or user glbox creates may do",
                document: document.to_string(),
                tags: boundary_tags(),
            };
            match iam::create_policy(iam, policy).await? {
                // Another glbox, or a retried call whose answer was lost,
                // made it first: check what it holds.
                Attempt::Conflict(e) => match iam::policy_document(iam, &arn).await? {
                    Some(current) => current,
                    None => return Err(e.into()),
                },
                Attempt::Done(()) => {
                    ctx.ui
                        .info(&format!("created the permissions boundary policy {arn}"));
                    return Ok(arn);
                }
            }
        }
    };
    if current.as_ref() == Some(&document) {
        return Ok(arn);
    }
    Err(Error::Refused(format!(
        "the permissions boundary policy {arn} does not hold glbox's document, and glbox may not change it (whoever could, could widen every role and user glbox makes)\n  fix: an administrator sets glbox's document as its default version:\n  aws iam create-policy-version --policy-arn {arn} --set-as-default --policy-document '{document}'"
    )))
}

/// The account glbox works in (the caller's).
pub async fn caller_account(ctx: &Ctx<'_>) -> Result<String> {
    crate::aws::sts::caller(&ctx.aws.sts())
        .await?
        .account
        .ok_or_else(|| Error::Refused("sts:GetCallerIdentity returned no account id".into()))
}

#[derive(Debug, Clone, Default)]
pub struct RoleState {
    pub name: String,
    /// False when a role of this name exists without the deployment's tags:
    /// it is someone else's, and glbox neither adopts nor deletes it.
    pub owned: bool,
    pub trust_ok: bool,
    /// The role carries the account's glbox permissions boundary.
    pub boundary_ok: bool,
    /// Managed policies attached to the role: glbox wants none.
    pub attached: Vec<String>,
    /// glbox's inline policies that are missing or differ.
    pub inline_to_put: Vec<String>,
    /// Inline policies glbox does not want (someone else's, or one an
    /// older glbox wrote).
    pub inline_to_delete: Vec<String>,
}

impl RoleState {
    pub fn converged(&self) -> bool {
        self.trust_ok
            && self.boundary_ok
            && self.attached.is_empty()
            && self.inline_to_put.is_empty()
            && self.inline_to_delete.is_empty()
    }
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

/// Finds the role by its name, tells whether it is the deployment's, and
/// how its policies differ from `desired` (inline policies by name).
pub async fn observe_role(
    ctx: &Ctx<'_>,
    desired: &BTreeMap<String, Value>,
) -> Result<Option<RoleState>> {
    let name = ctx.names.iam_name();
    let Some(role) = roles::get_role(&ctx.aws.iam, &name).await? else {
        return Ok(None);
    };
    if !ctx.names.owns_iam(role.tags()) {
        return Ok(Some(RoleState {
            name,
            ..RoleState::default()
        }));
    }
    let trust_ok =
        role.assume_role_policy_document().and_then(parse_policy) == Some(trust_policy());
    let boundary = role
        .permissions_boundary()
        .and_then(|b| b.permissions_boundary_arn());
    let boundary_ok = boundary.is_some() && boundary == boundary_arn_for(role.arn()).as_deref();
    let drift = roles::policy_drift(&ctx.aws.iam, &name, desired).await?;
    Ok(Some(RoleState {
        name,
        owned: true,
        trust_ok,
        boundary_ok,
        attached: drift.attached,
        inline_to_put: drift.to_put,
        inline_to_delete: drift.to_delete,
    }))
}

pub async fn observe_profile(ctx: &Ctx<'_>) -> Result<Option<ProfileState>> {
    let name = ctx.names.iam_name();
    let Some(profile) = roles::get_instance_profile(&ctx.aws.iam, &name).await? else {
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
    Update(RoleRepair),
    NoChange,
}

/// What `up` does to an existing role to converge it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleRepair {
    pub trust: bool,
    pub boundary: bool,
    pub detach: Vec<String>,
    pub put_inline: Vec<String>,
    pub delete_inline: Vec<String>,
}

pub fn diff_role(observed: Option<&RoleState>) -> RoleChange {
    match observed {
        None => RoleChange::Create,
        Some(r) if r.converged() => RoleChange::NoChange,
        Some(r) => RoleChange::Update(RoleRepair {
            trust: !r.trust_ok,
            boundary: !r.boundary_ok,
            detach: r.attached.clone(),
            put_inline: r.inline_to_put.clone(),
            delete_inline: r.inline_to_delete.clone(),
        }),
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

/// `arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore` -> its name.
fn policy_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

impl RoleChange {
    pub fn item(&self, ctx: &Ctx<'_>) -> PlanItem {
        let name = ctx.names.iam_name();
        let id = (!matches!(self, RoleChange::Create)).then(|| name.clone());
        match self {
            RoleChange::Create => {
                let mut changes = vec![
                    "trust ec2.amazonaws.com".into(),
                    format!("permissions boundary {BOUNDARY_POLICY_NAME}"),
                    format!("allow reading only {}*", ctx.names.parameter_prefix()),
                ];
                if ctx.settings.access == crate::config::AccessMethod::Ssm {
                    changes.push("allow the SSM agent's actions".into());
                }
                PlanItem::new("iam_role", name, None, Action::Create).with_changes(changes)
            }
            RoleChange::Update(repair) => {
                let mut changes = Vec::new();
                if repair.trust {
                    changes.push("restore the EC2 trust policy".to_string());
                }
                if repair.boundary {
                    changes.push(format!("set permissions boundary {BOUNDARY_POLICY_NAME}"));
                }
                for arn in &repair.detach {
                    changes.push(format!("detach managed policy {}", policy_name(arn)));
                }
                for policy in &repair.delete_inline {
                    changes.push(format!("delete inline policy {policy} (not glbox's)"));
                }
                for policy in &repair.put_inline {
                    changes.push(format!("put inline policy {policy}"));
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
/// see a new role for a few seconds). The boundary goes on first: the
/// operator policy lets glbox write a role's policies only once the role
/// carries it.
pub async fn apply_role(
    ctx: &Ctx<'_>,
    change: &RoleChange,
    policies: &BTreeMap<String, Value>,
) -> Result<bool> {
    let repair = match change {
        RoleChange::NoChange => return Ok(false),
        RoleChange::Create => {
            let boundary = ensure_boundary(ctx).await?;
            create_role(ctx, policies, &boundary).await?;
            RoleRepair {
                put_inline: policies.keys().cloned().collect(),
                ..RoleRepair::default()
            }
        }
        RoleChange::Update(repair) => repair.clone(),
    };
    let name = ctx.names.iam_name();
    let iam = &ctx.aws.iam;
    if repair.boundary {
        let boundary = ensure_boundary(ctx).await?;
        roles::put_permissions_boundary(iam, &name, &boundary).await?;
    } else if repair.put_inline.iter().any(|p| p == BACKUP_POLICY_NAME) {
        // The boundary of an older glbox does not allow the backup
        // objects: the new policy would be granted and silently refused.
        ensure_boundary(ctx).await?;
    }
    if repair.trust {
        roles::update_trust_policy(iam, &name, trust_policy().to_string()).await?;
    }
    let drift = roles::PolicyDrift {
        attached: repair.detach,
        to_put: repair.put_inline,
        to_delete: repair.delete_inline,
    };
    roles::converge_policies(iam, &name, &drift, policies).await?;
    let created = matches!(change, RoleChange::Create);
    if !created {
        ctx.ui.info(&format!("repaired IAM role {name}"));
    }
    Ok(created)
}

async fn create_role(
    ctx: &Ctx<'_>,
    policies: &BTreeMap<String, Value>,
    boundary: &str,
) -> Result<()> {
    let name = ctx.names.iam_name();
    let role = roles::NewRole {
        name: &name,
        path: ctx.names.iam_path(),
        description: format!("glbox deployment {}: GitLab instance", ctx.names.deployment),
        trust_policy: trust_policy().to_string(),
        boundary,
        tags: ctx.names.iam_tags(Role::InstanceRole),
    };
    // A retried create whose answer was lost: ours if tagged so.
    if let Attempt::Conflict(e) = roles::create_role(&ctx.aws.iam, role).await? {
        if !observe_role(ctx, policies).await?.is_some_and(|r| r.owned) {
            return Err(e.into());
        }
    }
    ctx.ui.info(&format!("created IAM role {name}"));
    Ok(())
}

pub async fn apply_profile(ctx: &Ctx<'_>, change: &ProfileChange) -> Result<bool> {
    let name = ctx.names.iam_name();
    let iam = &ctx.aws.iam;
    let (created, add_role, remove_roles) = match change {
        ProfileChange::NoChange => return Ok(false),
        ProfileChange::Create => {
            let tags = ctx.names.iam_tags(Role::InstanceRole);
            let created =
                roles::create_instance_profile(iam, &name, ctx.names.iam_path(), tags).await?;
            let add_role = match created {
                // A retried create whose answer was lost: ours if tagged so.
                Attempt::Conflict(e) => match observe_profile(ctx).await?.filter(|p| p.owned) {
                    Some(profile) => !profile.roles.contains(&name),
                    None => return Err(e.into()),
                },
                Attempt::Done(()) => true,
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
        roles::remove_role_from_profile(iam, &name, role).await?;
    }
    if add_role {
        // A profile holds one role: if it is ours, the retried call's
        // first attempt did the job.
        if let Attempt::Conflict(e) = roles::add_role_to_profile(iam, &name, &name).await? {
            let holds_ours = observe_profile(ctx)
                .await?
                .is_some_and(|p| p.roles == [name.clone()]);
            if !holds_ours {
                return Err(e.into());
            }
        }
    }
    Ok(created || add_role)
}

/// Deletes the instance profile (after taking its roles out).
pub async fn delete_profile(ctx: &Ctx<'_>, profile: &ProfileState) -> Result<()> {
    let iam = &ctx.aws.iam;
    for role in &profile.roles {
        roles::remove_role_from_profile(iam, &profile.name, role).await?;
    }
    roles::delete_instance_profile(iam, &profile.name).await?;
    ctx.ui
        .info(&format!("deleted instance profile {}", profile.name));
    Ok(())
}

/// Deletes the role with every policy on it. The boundary policy stays: it
/// is the account's, shared by every deployment and lab.
pub async fn delete_role(ctx: &Ctx<'_>, role: &RoleState) -> Result<()> {
    roles::delete_role(&ctx.aws.iam, &role.name).await?;
    ctx.ui.info(&format!("deleted IAM role {}", role.name));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            boundary_ok: false,
            attached: vec!["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore".into()],
            inline_to_put: vec![AGENT_POLICY_NAME.into()],
            inline_to_delete: vec!["someone-elses".into()],
        };
        assert_eq!(
            diff_role(Some(&state)),
            RoleChange::Update(RoleRepair {
                trust: false,
                boundary: true,
                detach: vec!["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore".into()],
                put_inline: vec![AGENT_POLICY_NAME.into()],
                delete_inline: vec!["someone-elses".into()],
            })
        );
        let converged = RoleState {
            owned: true,
            trust_ok: true,
            boundary_ok: true,
            ..RoleState::default()
        };
        assert_eq!(diff_role(Some(&converged)), RoleChange::NoChange);
    }

    #[test]
    fn the_boundary_is_the_accounts() {
        assert_eq!(
            boundary_arn_for("arn:aws-cn:iam::123456789012:role/glbox/glbox-a-cn-north-1"),
            Some("arn:aws-cn:iam::123456789012:policy/glbox/glbox-permissions-boundary".into())
        );
        assert_eq!(boundary_arn_for("not an arn"), None);
    }
}
