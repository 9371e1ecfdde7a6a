//! Outbound email: the SES identity, its DNS records, the SMTP user and its
//! key, and the marker that this deployment sends as the identity. Before
//! the instance in `up`: a refusal (SES or IAM permissions) stops `up`
//! before anything is launched.

use crate::config::Settings;
use crate::deploy::down::{DownItem, DownOptions, DownOutcome};
use crate::deploy::plan::{Observed, Plan};
use crate::deploy::status::{entry, ResourceStatus, StatusView, MISSING};
use crate::deploy::{Component, Made, Part, Removal, Step, Work};
use crate::resources::{Action, Ctx, PlanItem};

pub const PHASE: &str = "email (SES)";
pub const SMTP_USER_PHASE: &str = "SMTP user";
pub const IDENTITY_PHASE: &str = "SES identity";

pub const STEP: Step = Step {
    phases: &[PHASE],
    checkpoint: "email",
    part: Part::Email,
    component: &Email,
};

pub struct Email;

impl Component for Email {
    fn shown(&self, settings: &Settings, _with_bootstrap: bool) -> bool {
        settings.email.is_some()
    }

    fn items(&self, ctx: &Ctx<'_>, plan: &Plan, observed: &Observed) -> Vec<PlanItem> {
        let mut items = plan.email.items(ctx, &observed.email);
        if let Some(marker) = &plan.email_use {
            items.push(
                PlanItem::new("email_identity_use", marker.clone(), None, Action::Create)
                    .with_changes(vec![
                        "record that this deployment sends as the SES identity".into(),
                    ]),
            );
        }
        items
    }

    fn is_noop(&self, plan: &Plan) -> bool {
        plan.email.is_noop() && plan.email_use.is_none()
    }

    fn apply<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        plan: &'a Plan,
        made: &'a mut Made,
    ) -> Option<Work<'a, ()>> {
        Some(Box::pin(async move {
            let email = crate::email::apply(ctx, &plan.email, plan.smtp_password_stored).await?;
            if let Some(marker) = &plan.email_use {
                crate::ownership::mark_email_use(ctx, marker).await?;
            }
            made.smtp_username = email.smtp_username;
            Ok(())
        }))
    }

    fn down_items(
        &self,
        ctx: &Ctx<'_>,
        observed: &Observed,
        options: DownOptions,
    ) -> Vec<DownItem> {
        let mut items = Vec::new();
        if let Some(user) = &observed.email.credentials.user {
            let action = super::iam_role::ownership(user.owned);
            items.push(DownItem::new("smtp_user", &user.name, action));
        }
        if let (Some(email), Some(_)) = (&ctx.settings.email, observed.email.identity()) {
            let action = match (options.delete_email_identity, &observed.email_identity_keep) {
                (true, None) => "delete",
                (true, Some(_)) => "skip: kept (see below)",
                (false, _) => "keep",
            };
            items.push(DownItem::new("ses_identity", &email.domain, action));
            if options.delete_email_identity && observed.email.zone.is_some() {
                items.push(DownItem::new(
                    "dns_records",
                    &email.domain,
                    "delete glbox's",
                ));
            }
        }
        items
    }

    fn removals<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        observed: &'a Observed,
        options: DownOptions,
    ) -> Vec<Removal<'a>> {
        let mut removals = Vec::new();
        if let Some(user) = observed.email.credentials.user.as_ref().filter(|u| u.owned) {
            removals.push(Removal {
                phase: Some(SMTP_USER_PHASE),
                work: Box::pin(async move {
                    crate::email::credentials::delete_user(ctx, &user.name).await?;
                    Ok(DownOutcome::removed(vec![user.name.clone()]))
                }),
            });
        }
        removals.extend(identity_removal(ctx, observed, options));
        removals
    }

    fn status(
        &self,
        ctx: &Ctx<'_>,
        observed: &Observed,
        _view: &StatusView,
    ) -> Vec<ResourceStatus> {
        match ctx.settings.email {
            Some(_) => entries(&observed.email),
            None => Vec::new(),
        }
    }

    /// With email on, a usable SMTP credential: the record and the
    /// password it names.
    fn usable(&self, ctx: &Ctx<'_>, observed: &Observed) -> bool {
        ctx.settings.email.is_none()
            || (observed.email.credentials.current.is_some()
                && observed
                    .parameters
                    .contains(&crate::email::credentials::password_parameter(ctx)))
    }
}

/// The SES identity: deleted with `--delete-email-identity` when glbox may
/// (see `down::decide_email_identity`), else kept and said so.
fn identity_removal<'a>(
    ctx: &'a Ctx<'a>,
    observed: &'a Observed,
    options: DownOptions,
) -> Option<Removal<'a>> {
    let (Some(email), Some(_)) = (&ctx.settings.email, observed.email.identity()) else {
        return None;
    };
    let kept = DownOutcome {
        kept_identity: Some(email.domain.clone()),
        ..DownOutcome::default()
    };
    if !options.delete_email_identity {
        return Some(Removal {
            phase: None,
            work: Box::pin(async move { Ok(kept) }),
        });
    }
    if let Some(reason) = &observed.email_identity_keep {
        return Some(Removal {
            phase: None,
            work: Box::pin(async move {
                ctx.ui.warn(reason);
                Ok(kept)
            }),
        });
    }
    Some(Removal {
        phase: Some(IDENTITY_PHASE),
        work: Box::pin(async move {
            if let Some(zone) = &observed.email.zone {
                crate::email::dns::delete(ctx, &observed.email.records(), zone).await?;
            }
            crate::email::identity::delete(ctx, email).await?;
            let record = crate::ownership::email_identity_id(&email.ses_region, &email.domain);
            crate::ownership::forget(
                ctx,
                vec![crate::ownership::record_name(&ctx.names, &record)],
            )
            .await?;
            Ok(DownOutcome::removed(vec![email.domain.clone()]))
        }),
    })
}

fn entries(observed: &crate::email::Observed) -> Vec<ResourceStatus> {
    let identity = observed.identity();
    let user = observed.credentials.user.as_ref();
    vec![
        entry(
            "ses_identity",
            identity.map(|i| i.domain.clone()),
            identity.map_or(MISSING.to_string(), |i| {
                format!(
                    "verification {}, DKIM {}",
                    i.verification.to_lowercase(),
                    i.dkim_status.to_lowercase()
                )
            }),
        ),
        entry(
            "smtp_user",
            user.map(|u| u.name.clone()),
            match (user, &observed.credentials.current) {
                (None, _) => MISSING.to_string(),
                (Some(u), _) if !u.owned => "not glbox's".to_string(),
                (Some(_), Some(current)) => format!("access key {}", current.access_key_id),
                (Some(_), None) => "no SMTP key recorded (run glbox up)".to_string(),
            },
        ),
    ]
}
