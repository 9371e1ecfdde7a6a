//! Outbound email through Amazon SES: the domain identity with Easy DKIM,
//! its DNS records (printed, or written to Route 53), and SMTP credentials
//! GitLab reads on the box. Like every other part of a deployment it is
//! observed, diffed and converged; `credentials` keeps secrets out of
//! everything glbox prints.

pub mod credentials;
pub mod dns;
pub mod identity;
pub mod rotation;
pub mod smtp_password;

use std::time::Duration;

use serde::Serialize;

use crate::config::EmailSettings;
use crate::error::{Error, Result};
use crate::resources::{Action, Ctx, PlanItem};

/// What AWS holds of the deployment's email.
#[derive(Debug, Clone)]
pub struct Observed {
    /// SES's view (only with email on).
    pub ses: Option<identity::Observed>,
    /// The hosted zone's records (only with `route53_zone_id`).
    pub zone: Option<dns::ZoneState>,
    pub credentials: credentials::Observed,
    /// SES or Route 53 could not be read (a deleted zone, a missing
    /// permission). `up` stops on it; `down`, `status` and `verify` say it
    /// and go on with what they could read.
    pub problem: Option<String>,
}

impl Observed {
    pub fn identity(&self) -> Option<&identity::IdentityState> {
        self.ses.as_ref().and_then(|s| s.identity.as_ref())
    }

    /// The records SES asks for (empty until the identity exists).
    pub fn records(&self) -> Vec<dns::Record> {
        self.identity().map(dns::records).unwrap_or_default()
    }
}

pub async fn observe(ctx: &Ctx<'_>) -> Result<Observed> {
    let Some(email) = &ctx.settings.email else {
        return Ok(Observed {
            ses: None,
            zone: None,
            credentials: credentials::observe(ctx).await?,
            problem: None,
        });
    };
    let (ses, credentials) = tokio::join!(identity::observe(ctx, email), credentials::observe(ctx));
    let credentials = credentials?;
    let ses = match ses {
        Ok(ses) => ses,
        Err(e) => {
            return Ok(Observed {
                ses: None,
                zone: None,
                credentials,
                problem: Some(e.to_string()),
            })
        }
    };
    let (zone, problem) = match &email.route53_zone_id {
        Some(zone_id) => {
            let wanted = ses.identity.as_ref().map(dns::records).unwrap_or_default();
            match dns::observe(ctx, zone_id, &wanted).await {
                Ok(zone) => (Some(zone), None),
                Err(e) => (None, Some(e.to_string())),
            }
        }
        None => (None, None),
    };
    Ok(Observed {
        ses: Some(ses),
        zone,
        credentials,
        problem,
    })
}

#[derive(Debug, Clone)]
pub struct Plan {
    /// `None` with email off.
    pub identity: Option<identity::Change>,
    pub dns: Option<DnsPlan>,
    pub credentials: credentials::Change,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsPlan {
    Known(dns::Change),
    /// The identity is new: its records are written once SES made them.
    AfterIdentity {
        zone_id: String,
    },
}

pub fn diff(
    ctx: &Ctx<'_>,
    observed: &Observed,
    password_stored: bool,
    retire_old: bool,
) -> Result<Plan> {
    if let Some(problem) = &observed.problem {
        return Err(Error::Refused(problem.clone()));
    }
    let email = ctx.settings.email.as_ref();
    let credentials = credentials::diff(email, &observed.credentials, password_stored, retire_old)?;
    let Some(email) = email else {
        return Ok(Plan {
            identity: None,
            dns: None,
            credentials,
        });
    };
    if let Some(zone) = &observed.zone {
        dns::check_zone(email, zone)?;
    }
    let identity = identity::diff(observed.identity());
    let dns = match (&identity, &email.route53_zone_id) {
        (identity::Change::Create, Some(zone_id)) => DnsPlan::AfterIdentity {
            zone_id: zone_id.clone(),
        },
        _ => DnsPlan::Known(dns::diff(&observed.records(), observed.zone.as_ref())),
    };
    Ok(Plan {
        identity: Some(identity),
        dns: Some(dns),
        credentials,
    })
}

impl Plan {
    pub fn items(&self, ctx: &Ctx<'_>, observed: &Observed) -> Vec<PlanItem> {
        let mut items = Vec::new();
        if let (Some(change), Some(email)) = (&self.identity, &ctx.settings.email) {
            items.push(change.item(email, observed.identity()));
            match &self.dns {
                Some(DnsPlan::Known(change)) => {
                    items.push(change.item(email, observed.records().len()))
                }
                Some(DnsPlan::AfterIdentity { zone_id }) => items.push(
                    PlanItem::new(
                        "dns_records",
                        format!("{} records", email.domain),
                        Some(zone_id.clone()),
                        Action::Update,
                    )
                    .with_changes(vec![
                        "write the verification and DKIM records in Route 53 once SES made them"
                            .into(),
                    ]),
                ),
                None => {}
            }
        }
        items.extend(self.credentials.item(ctx));
        items
    }

    pub fn is_noop(&self) -> bool {
        matches!(self.identity, None | Some(identity::Change::NoChange))
            && matches!(
                self.dns,
                None | Some(DnsPlan::Known(dns::Change::NoChange | dns::Change::Manual))
            )
            && matches!(
                self.credentials,
                credentials::Change::Absent | credentials::Change::NoChange { .. }
            )
    }
}

/// What the rest of `up` needs from the email step.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The SMTP user name (access key id) GitLab must use.
    pub smtp_username: Option<String>,
}

pub async fn apply(ctx: &Ctx<'_>, plan: &Plan, password_stored: bool) -> Result<Applied> {
    let email = ctx.settings.email.as_ref();
    if let (Some(email), Some(change)) = (email, &plan.identity) {
        identity::apply(ctx, email, change).await?;
        match &plan.dns {
            Some(DnsPlan::Known(change)) => dns::apply(ctx, change).await?,
            Some(DnsPlan::AfterIdentity { zone_id }) => {
                let ses = identity::observe(ctx, email).await?;
                let wanted = ses.identity.as_ref().map(dns::records).unwrap_or_default();
                let zone = dns::observe(ctx, zone_id, &wanted).await?;
                dns::apply(ctx, &dns::diff(&wanted, Some(&zone))).await?;
            }
            None => {}
        }
    }
    let smtp_username = credentials::apply(ctx, email, &plan.credentials, password_stored).await?;
    Ok(Applied { smtp_username })
}

/// After GitLab runs with the current key: old keys go.
pub async fn finish(ctx: &Ctx<'_>, plan: &Plan) -> Result<()> {
    if let credentials::Change::Converge(steps) = &plan.credentials {
        credentials::retire(ctx, &steps.retire).await?;
    }
    Ok(())
}

/// Email facts for `status` and for the checks.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub domain: String,
    pub ses_region: String,
    pub identity: Option<identity::IdentityState>,
    pub sandbox: Option<bool>,
    pub records: Vec<dns::Record>,
    pub smtp_user: Option<String>,
    pub smtp_access_key_id: Option<String>,
    pub smtp_password_parameter: String,
}

pub fn report(ctx: &Ctx<'_>, observed: &Observed) -> Option<Report> {
    let email = ctx.settings.email.as_ref()?;
    Some(Report {
        domain: email.domain.clone(),
        ses_region: email.ses_region.clone(),
        identity: observed.identity().cloned(),
        sandbox: observed.ses.as_ref().map(|s| s.quota.sandbox()),
        records: observed.records(),
        smtp_user: observed.credentials.user.as_ref().map(|u| u.name.clone()),
        smtp_access_key_id: observed
            .credentials
            .current
            .as_ref()
            .map(|c| c.access_key_id.clone()),
        smtp_password_parameter: credentials::password_parameter(ctx),
    })
}

/// What to tell the user after `up` about email: records still to publish,
/// and the sandbox.
pub fn advice(email: &EmailSettings, observed: &identity::Observed) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(identity) = &observed.identity {
        if email.route53_zone_id.is_none() && !(identity.verified() && identity.dkim_verified()) {
            let records = dns::records(identity);
            lines.push(format!(
                "publish these DNS records for {} (SES verification {}, DKIM {}); `glbox email dns` prints them again:\n{}\nAs zone-file lines:\n{}",
                email.domain,
                identity.verification.to_lowercase(),
                identity.dkim_status.to_lowercase(),
                dns::table(&records).trim_end(),
                dns::zone_file(&records).trim_end()
            ));
        }
    }
    if observed.quota.sandbox() {
        lines.push(format!(
            "SES in {} is in the sandbox: mail goes only to verified addresses, at most {} a day. Request production access in the SES console (Account dashboard → Request production access) for GitLab to mail anyone",
            email.ses_region, observed.quota.max_24_hour_send
        ));
        if observed.recipient_verified == Some(false) {
            lines.push(format!(
                "the test recipient {} is not a verified SES address, so the test mail will be refused: verify it (aws ses verify-email-identity --region {} --email-address {}) or leave the sandbox",
                email.test_recipient.as_deref().unwrap_or(""),
                email.ses_region,
                email.test_recipient.as_deref().unwrap_or("")
            ));
        }
    }
    lines
}

/// `up --wait-email`: shows the records to publish, then waits until SES
/// says the domain and DKIM are verified. A failed verification stops the
/// wait at once; the deadline passing is a warning, not an error (the
/// rest of `up` is done, and SES keeps checking).
pub async fn wait_verified(ctx: &Ctx<'_>, deadline: Duration) -> Result<identity::Observed> {
    let email = ctx
        .settings
        .email
        .as_ref()
        .ok_or_else(|| Error::Refused("--wait-email needs email.enabled = true".into()))?;
    let first = identity::observe(ctx, email).await?;
    if let Some(identity) = &first.identity {
        if email.route53_zone_id.is_none() && !(identity.verified() && identity.dkim_verified()) {
            ctx.ui.info(&format!(
                "publish these DNS records for {} while glbox waits:\n{}",
                email.domain,
                dns::table(&dns::records(identity)).trim_end()
            ));
        }
    }
    let what = format!(
        "SES ({}) to verify {} and its DKIM records",
        email.ses_region, email.domain
    );
    let waited = crate::wait::until(ctx.ui, &what, deadline, || async {
        let observed = identity::observe(ctx, email).await?;
        Ok(match &observed.identity {
            Some(i) if i.verified() && i.dkim_verified() => crate::wait::Poll::Ready(observed),
            Some(i) if i.verification == "Failed" || i.dkim_status == "Failed" => {
                return Err(Error::Refused(format!(
                    "SES gave up verifying {} (verification {}, DKIM {}): it did not find the DNS records\n  fix: publish the records `glbox email dns` prints, then run glbox up (it restarts the verification)",
                    email.domain,
                    i.verification.to_lowercase(),
                    i.dkim_status.to_lowercase()
                )))
            }
            Some(i) => crate::wait::Poll::Pending(format!(
                "verification {}, DKIM {}",
                i.verification.to_lowercase(),
                i.dkim_status.to_lowercase()
            )),
            None => crate::wait::Poll::Pending("no SES identity".into()),
        })
    })
    .await;
    match waited {
        Err(Error::Timeout { last_seen, .. }) => {
            ctx.ui.warn(&format!(
                "SES has not verified {} within {} minutes ({last_seen}); it keeps checking for 72 hours: glbox status shows progress",
                email.domain,
                deadline.as_secs() / 60
            ));
            identity::observe(ctx, email).await
        }
        other => other,
    }
}

/// What the health checks need. `may_send`: this run may send the test
/// mail (`up` after a change, `verify --deep`, `email rotate`).
pub fn facts(
    email: &EmailSettings,
    ses: &identity::Observed,
    may_send: bool,
) -> crate::verify::EmailFacts {
    let identity = ses.identity.clone();
    let reason = match &email.test_recipient {
        None => Some("set email.test_recipient to have GitLab send a test mail".to_string()),
        Some(_) if !may_send => {
            Some("sent after a change by glbox up, or by glbox verify --deep".to_string())
        }
        Some(_) if !identity.as_ref().is_some_and(|i| i.verified()) => {
            Some(format!("{} is not verified in SES yet", email.domain))
        }
        Some(recipient) if ses.quota.sandbox() && ses.recipient_verified == Some(false) => {
            Some(format!(
                "SES is in the sandbox and {recipient} is not a verified address, so SES would refuse it"
            ))
        }
        Some(_) => None,
    };
    crate::verify::EmailFacts {
        identity,
        test_recipient: match reason {
            None => email.test_recipient.clone(),
            Some(_) => None,
        },
        no_test_reason: reason.unwrap_or_default(),
    }
}
