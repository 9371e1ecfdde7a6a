//! SMTP credentials: a dedicated IAM user per deployment whose only
//! permission is `ses:SendRawEmail` as the domain, one access key, and the
//! SMTP password derived from it, stored only as an SSM SecureString that
//! the instance reads.
//!
//! Two parameters record the credential. `smtp-password` holds the secret;
//! `smtp-key` (plain JSON: key id and SES region) says which key the
//! password belongs to and is written last and removed first whenever a key
//! is made, so a crash half-way leaves no record that pairs a key with the
//! wrong password: the next run sees no usable key and makes one.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::aws::iam::{users, Attempt};
use crate::aws::{partition, ssm};
use crate::config::EmailSettings;
use crate::error::{Error, Result};
use crate::names::Role;
use crate::resources::{Action, Ctx, PlanItem};

mod keys;
use keys::{current_key, delete_parameters};
pub use keys::{delete_key, new_key, retire};

pub const POLICY_NAME: &str = "glbox-ses-send";

pub fn user_name(ctx: &Ctx<'_>) -> String {
    format!("{}-smtp", ctx.names.iam_name())
}

pub fn password_parameter(ctx: &Ctx<'_>) -> String {
    password_parameter_for(&ctx.names.deployment)
}

/// `/glbox/<name>/smtp-password`.
pub fn password_parameter_for(deployment: &str) -> String {
    format!(
        "{}smtp-password",
        crate::names::Names::new(deployment, "").parameter_prefix()
    )
}

pub fn key_parameter(ctx: &Ctx<'_>) -> String {
    format!("{}smtp-key", ctx.names.parameter_prefix())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub active: bool,
}

#[derive(Debug, Clone)]
pub struct UserState {
    pub name: String,
    /// False when a user of this name lacks the deployment's tags.
    pub owned: bool,
    pub arn: String,
    /// Oldest first.
    pub keys: Vec<AccessKey>,
    pub policy: Option<Value>,
    /// The user carries the account's glbox permissions boundary.
    pub boundary_ok: bool,
}

/// What `smtp-key` records: the key the stored password was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentKey {
    pub access_key_id: String,
    pub ses_region: String,
}

#[derive(Debug, Clone)]
pub struct Observed {
    pub user: Option<UserState>,
    pub current: Option<CurrentKey>,
}

/// The account id in an IAM ARN (`arn:aws:iam::123456789012:user/...`).
fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// `ses:SendRawEmail` as the domain's identity, nothing else. The test
/// recipient's identity is listed too: while the account is in the SES
/// sandbox, SES also authorizes the send against a verified recipient.
pub fn desired_policy(email: &EmailSettings, account: &str) -> Value {
    let arn = |identity: &str| {
        format!(
            "arn:{}:ses:{}:{account}:identity/{identity}",
            partition(&email.ses_region),
            email.ses_region
        )
    };
    let mut resources = vec![arn(&email.domain)];
    resources.extend(email.test_recipient.as_deref().map(arn));
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "SendAsTheDomainOnly",
            "Effect": "Allow",
            "Action": "ses:SendRawEmail",
            "Resource": resources
        }]
    })
}

pub async fn observe(ctx: &Ctx<'_>) -> Result<Observed> {
    let (user, current) = tokio::try_join!(observe_user(ctx), observe_current(ctx))?;
    Ok(Observed { user, current })
}

async fn observe_user(ctx: &Ctx<'_>) -> Result<Option<UserState>> {
    let name = user_name(ctx);
    let iam = &ctx.aws.iam;
    let Some(user) = users::get_user(iam, &name).await? else {
        return Ok(None);
    };
    let arn = user.arn().to_string();
    let boundary = user
        .permissions_boundary()
        .and_then(|b| b.permissions_boundary_arn());
    let boundary_ok =
        boundary.is_some() && boundary == crate::resources::iam::boundary_arn_for(&arn).as_deref();
    if !ctx.names.owns_iam(user.tags()) {
        return Ok(Some(UserState {
            name,
            owned: false,
            arn,
            keys: Vec::new(),
            policy: None,
            boundary_ok: false,
        }));
    }
    let mut keys = users::access_keys(iam, &name).await?;
    keys.sort_by_key(|k| k.create_date().map(|d| (d.secs(), d.subsec_nanos())));
    let policy = users::user_policy(iam, &name, POLICY_NAME).await?;
    Ok(Some(UserState {
        name,
        owned: true,
        arn,
        keys: keys
            .iter()
            .filter_map(|k| {
                Some(AccessKey {
                    id: k.access_key_id()?.to_string(),
                    active: k.status().is_some_and(|s| s.as_str() == "Active"),
                })
            })
            .collect(),
        policy,
        boundary_ok,
    }))
}

async fn observe_current(ctx: &Ctx<'_>) -> Result<Option<CurrentKey>> {
    let value = ssm::find(&ctx.aws.ssm, &key_parameter(ctx), false).await?;
    Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
}

/// The steps that bring the credentials to the settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Steps {
    pub create_user: bool,
    /// The user lacks the permissions boundary (made by an older glbox).
    pub put_boundary: bool,
    pub put_policy: bool,
    /// No usable key (none, inactive, unrecorded, or made for another SES
    /// region): make one.
    pub new_key: bool,
    /// Deleted before the new key, to stay within IAM's two keys per user.
    pub make_room: Option<String>,
    /// Deleted once GitLab uses the current key (after the bootstrap).
    pub retire: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Email is off and nothing of it exists.
    Absent,
    NoChange {
        access_key_id: String,
    },
    Converge(Steps),
    /// Email was turned off: the user, its keys and the parameters go.
    Delete {
        user: Option<String>,
    },
}

/// `password_stored`: the `smtp-password` parameter exists. `retire_old`:
/// this run will bring the box to the current key (so old keys may go).
pub fn diff(
    email: Option<&EmailSettings>,
    observed: &Observed,
    password_stored: bool,
    retire_old: bool,
) -> Result<Change> {
    // Someone else's user of that name: never touched; in the way only
    // when email is on.
    let ours = observed.user.as_ref().filter(|u| u.owned);
    let Some(email) = email else {
        return Ok(match (ours, &observed.current, password_stored) {
            (None, None, false) => Change::Absent,
            (user, _, _) => Change::Delete {
                user: user.map(|u| u.name.clone()),
            },
        });
    };
    if let Some(user) = observed.user.as_ref().filter(|u| !u.owned) {
        return Err(Error::Refused(format!(
            "an IAM user named {} exists but is not tagged as this deployment's (glbox:deployment)\n  fix: delete or rename it, or choose another deployment name",
            user.name
        )));
    }
    let Some(user) = &observed.user else {
        return Ok(Change::Converge(Steps {
            create_user: true,
            put_policy: true,
            new_key: true,
            ..Steps::default()
        }));
    };
    let put_policy = account_of(&user.arn)
        .is_none_or(|account| user.policy.as_ref() != Some(&desired_policy(email, account)));
    let usable = observed.current.as_ref().filter(|current| {
        password_stored
            && current.ses_region == email.ses_region
            && user
                .keys
                .iter()
                .any(|k| k.id == current.access_key_id && k.active)
    });
    let others: Vec<String> = user
        .keys
        .iter()
        .filter(|k| usable.is_none_or(|u| u.access_key_id != k.id))
        .map(|k| k.id.clone())
        .collect();
    let new_key = usable.is_none();
    // Two keys and none usable: drop the newer (the older is likelier to be
    // the one the box still uses until it gets the new one).
    let make_room = (new_key && user.keys.len() >= 2).then(|| others[others.len() - 1].clone());
    let retire = if retire_old {
        others
            .into_iter()
            .filter(|k| Some(k) != make_room.as_ref())
            .collect()
    } else {
        Vec::new()
    };
    let steps = Steps {
        create_user: false,
        put_boundary: !user.boundary_ok,
        put_policy,
        new_key,
        make_room,
        retire,
    };
    Ok(match usable {
        Some(current) if steps == Steps::default() => Change::NoChange {
            access_key_id: current.access_key_id.clone(),
        },
        _ => Change::Converge(steps),
    })
}

impl Change {
    pub fn item(&self, ctx: &Ctx<'_>) -> Option<PlanItem> {
        let name = user_name(ctx);
        let item = match self {
            Change::Absent => return None,
            Change::NoChange { access_key_id } => {
                PlanItem::new("smtp_user", name.clone(), Some(name), Action::NoChange)
                    .with_changes(vec![format!("SMTP user {access_key_id}")])
            }
            Change::Converge(steps) => {
                let mut changes = Vec::new();
                if steps.create_user {
                    changes.push(format!("IAM user under {}", ctx.names.iam_path()));
                }
                if steps.create_user || steps.put_boundary {
                    changes.push(format!(
                        "permissions boundary {}",
                        crate::resources::iam::BOUNDARY_POLICY_NAME
                    ));
                }
                if steps.put_policy {
                    changes.push("allow only ses:SendRawEmail as the domain".into());
                }
                if let Some(old) = &steps.make_room {
                    changes.push(format!("delete access key {old} (IAM allows two)"));
                }
                if steps.new_key {
                    changes.push(format!(
                        "new access key; SMTP password into {} (SecureString)",
                        password_parameter(ctx)
                    ));
                }
                for old in &steps.retire {
                    changes.push(format!(
                        "delete old access key {old} once GitLab uses the new one"
                    ));
                }
                let (id, action) = if steps.create_user {
                    (None, Action::Create)
                } else {
                    (Some(name.clone()), Action::Update)
                };
                PlanItem::new("smtp_user", name, id, action).with_changes(changes)
            }
            Change::Delete { user } => {
                PlanItem::new("smtp_user", name, user.clone(), Action::Delete).with_changes(vec![
                    "email is off: the SMTP user, its keys and parameters go".into(),
                ])
            }
        };
        Some(item)
    }
}

/// Carries out everything but retiring old keys; returns the access key id
/// GitLab must use (when email is on).
pub async fn apply(
    ctx: &Ctx<'_>,
    email: Option<&EmailSettings>,
    change: &Change,
    password_stored: bool,
) -> Result<Option<String>> {
    let steps = match change {
        Change::Absent => return Ok(None),
        Change::NoChange { access_key_id } => return Ok(Some(access_key_id.clone())),
        Change::Delete { user } => {
            if let Some(user) = user {
                delete_user(ctx, user).await?;
            }
            delete_parameters(ctx).await?;
            return Ok(None);
        }
        Change::Converge(steps) => steps,
    };
    let email = email.expect("credentials converge only with email on");
    let name = user_name(ctx);
    let iam = &ctx.aws.iam;
    // The boundary goes on first: the operator policy lets glbox write the
    // user's policy only once the user carries it.
    let boundary = match steps.create_user || steps.put_boundary {
        true => Some(crate::resources::iam::ensure_boundary(ctx).await?),
        false => None,
    };
    let arn = if steps.create_user {
        let user = users::NewUser {
            name: &name,
            path: ctx.names.iam_path(),
            boundary: boundary.clone(),
            tags: ctx.names.iam_tags(Role::SmtpUser),
        };
        let arn = match users::create_user(iam, user).await? {
            Attempt::Done(arn) => arn,
            // A retried create whose answer was lost: ours if tagged so.
            Attempt::Conflict(e) => match observe_user(ctx).await? {
                Some(user) if user.owned => user.arn,
                _ => return Err(e.into()),
            },
        };
        ctx.ui.info(&format!("created IAM user {name}"));
        arn
    } else {
        users::user_arn(iam, &name).await?
    };
    if let Some(boundary) = boundary.filter(|_| steps.put_boundary) {
        users::put_permissions_boundary(iam, &name, &boundary).await?;
    }
    if steps.put_policy {
        let account = account_of(&arn).ok_or_else(|| {
            Error::Refused(format!(
                "IAM returned no account id for user {name} ({arn:?})"
            ))
        })?;
        let document = desired_policy(email, account).to_string();
        users::put_user_policy(iam, &name, POLICY_NAME, document).await?;
    }
    if let Some(old) = &steps.make_room {
        delete_key(ctx, &name, old).await?;
    }
    if !steps.new_key {
        return Ok(Some(current_key(ctx).await?.access_key_id));
    }
    let key = new_key(ctx, email, &name, password_stored).await?;
    Ok(Some(key.access_key_id))
}

/// The user with its keys and policy (IAM refuses to delete a user that
/// still has either).
pub async fn delete_user(ctx: &Ctx<'_>, user: &str) -> Result<()> {
    let iam = &ctx.aws.iam;
    for key in users::access_keys(iam, user).await? {
        if let Some(id) = key.access_key_id() {
            delete_key(ctx, user, id).await?;
        }
    }
    users::delete_user_policy(iam, user, POLICY_NAME).await?;
    users::delete_user(iam, user).await?;
    ctx.ui.info(&format!("deleted IAM user {user}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> EmailSettings {
        EmailSettings {
            domain: "example.com".into(),
            from: "gitlab@example.com".into(),
            reply_to: None,
            ses_region: "eu-west-1".into(),
            port: 587,
            route53_zone_id: None,
            test_recipient: None,
        }
    }

    fn user(keys: &[(&str, bool)], policy: Option<Value>) -> UserState {
        UserState {
            name: "glbox-t-us-east-1-smtp".into(),
            owned: true,
            arn: "arn:aws:iam::123456789012:user/glbox/glbox-t-us-east-1-smtp".into(),
            keys: keys
                .iter()
                .map(|(id, active)| AccessKey {
                    id: id.to_string(),
                    active: *active,
                })
                .collect(),
            policy,
            boundary_ok: true,
        }
    }

    fn current(id: &str, region: &str) -> Option<CurrentKey> {
        Some(CurrentKey {
            access_key_id: id.into(),
            ses_region: region.into(),
        })
    }

    fn policy() -> Option<Value> {
        Some(desired_policy(&email(), "123456789012"))
    }

    #[test]
    fn a_recorded_active_key_is_kept() {
        let observed = Observed {
            user: Some(user(&[("AK1", true)], policy())),
            current: current("AK1", "eu-west-1"),
        };
        assert_eq!(
            diff(Some(&email()), &observed, true, true).unwrap(),
            Change::NoChange {
                access_key_id: "AK1".into()
            }
        );
    }

    #[test]
    fn a_key_for_another_region_or_without_password_is_replaced() {
        for (region, stored) in [("us-east-1", true), ("eu-west-1", false)] {
            let observed = Observed {
                user: Some(user(&[("AK1", true)], policy())),
                current: current("AK1", region),
            };
            let Change::Converge(steps) = diff(Some(&email()), &observed, stored, true).unwrap()
            else {
                panic!("expected converge");
            };
            assert!(steps.new_key);
            assert_eq!(steps.make_room, None);
            assert_eq!(steps.retire, vec!["AK1".to_string()]);
        }
    }

    #[test]
    fn two_unusable_keys_make_room_by_dropping_the_newer() {
        let observed = Observed {
            user: Some(user(&[("OLD", true), ("NEW", true)], policy())),
            current: None,
        };
        let Change::Converge(steps) = diff(Some(&email()), &observed, false, false).unwrap() else {
            panic!("expected converge");
        };
        assert_eq!(steps.make_room.as_deref(), Some("NEW"));
        assert!(steps.retire.is_empty(), "not without a bootstrap");
    }

    #[test]
    fn a_crashed_rotation_retires_the_old_key_only_with_a_bootstrap() {
        let observed = Observed {
            user: Some(user(&[("OLD", true), ("NEW", true)], policy())),
            current: current("NEW", "eu-west-1"),
        };
        let Change::Converge(steps) = diff(Some(&email()), &observed, true, true).unwrap() else {
            panic!("expected converge");
        };
        assert_eq!(steps.retire, vec!["OLD".to_string()]);
        assert!(!steps.new_key);
        assert!(matches!(
            diff(Some(&email()), &observed, true, false).unwrap(),
            Change::NoChange { .. }
        ));
    }

    #[test]
    fn email_off_removes_what_exists() {
        let observed = Observed {
            user: Some(user(&[("AK1", true)], policy())),
            current: None,
        };
        assert!(matches!(
            diff(None, &observed, false, true).unwrap(),
            Change::Delete { user: Some(_) }
        ));
        let nothing = Observed {
            user: None,
            current: None,
        };
        assert_eq!(diff(None, &nothing, false, true).unwrap(), Change::Absent);
    }

    #[test]
    fn the_policy_names_the_identity_and_the_recipient() {
        let mut settings = email();
        settings.test_recipient = Some("me@example.org".into());
        let policy = desired_policy(&settings, "123456789012");
        assert_eq!(policy["Statement"][0]["Action"], "ses:SendRawEmail");
        assert_eq!(
            policy["Statement"][0]["Resource"],
            json!([
                "arn:aws:ses:eu-west-1:123456789012:identity/example.com",
                "arn:aws:ses:eu-west-1:123456789012:identity/me@example.org"
            ])
        );
        assert_eq!(account_of("arn:aws:iam::123:user/x"), Some("123"));
    }
}
