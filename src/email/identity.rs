//! The SES domain identity the box sends as, with Easy DKIM, and the
//! account's sending quota (which tells whether SES is in the sandbox).
//!
//! SES (v1) identities carry no tags and are often shared by other senders
//! of the same domain: glbox creates one when it is missing, never changes
//! one that exists, and deletes it only when asked to.

use serde::Serialize;

use crate::aws::ses;
use crate::config::EmailSettings;
use crate::error::Result;
use crate::resources::{Action, Ctx, PlanItem};

/// What SES reports for the domain (and the test recipient).
#[derive(Debug, Clone, Serialize)]
pub struct IdentityState {
    pub domain: String,
    /// Success, Pending, Failed, TemporaryFailure or NotStarted.
    pub verification: String,
    #[serde(skip)]
    pub token: Option<String>,
    pub dkim_enabled: bool,
    pub dkim_status: String,
    #[serde(skip)]
    pub dkim_tokens: Vec<String>,
    /// Where the DKIM CNAMEs point: the identity's region's Easy DKIM
    /// domain (see [`dkim_signing_domain`]).
    #[serde(skip)]
    pub dkim_domain: String,
}

/// SES regions whose Easy DKIM CNAMEs point at `dkim.<region>.amazonses.com`
/// rather than `dkim.amazonses.com`: the "Easy DKIM domains" table of the
/// AWS General Reference (Amazon SES endpoints and quotas,
/// https://docs.aws.amazon.com/general/latest/gr/ses.html), as of late 2025.
/// The SES v1 API glbox uses does not report the domain (SESv2's
/// GetEmailIdentity does, as `DkimAttributes.SigningHostedZone`; a second
/// SES SDK for one string is not worth its build time), hence the table.
pub const REGIONAL_DKIM_DOMAINS: &[&str] = &[
    "af-south-1",
    "ap-northeast-3",
    "ap-south-2",
    "ap-southeast-3",
    "ap-southeast-5",
    "ca-west-1",
    "eu-central-2",
    "eu-south-1",
    "il-central-1",
    "me-central-1",
    "us-gov-east-1",
];

/// The domain Easy DKIM's CNAMEs point at for an identity in `region`.
pub fn dkim_signing_domain(region: &str) -> String {
    if REGIONAL_DKIM_DOMAINS.contains(&region) {
        format!("dkim.{region}.amazonses.com")
    } else {
        "dkim.amazonses.com".to_string()
    }
}

impl IdentityState {
    pub fn verified(&self) -> bool {
        self.verification == "Success"
    }

    pub fn dkim_verified(&self) -> bool {
        self.dkim_status == "Success"
    }
}

/// The account's SES sending limits in the identity's region.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SendQuota {
    pub max_24_hour_send: f64,
    pub sent_last_24_hours: f64,
    pub max_send_rate: f64,
}

/// SES's sandbox allows 200 messages a day; production access raises it.
const SANDBOX_DAILY_LIMIT: f64 = 200.0;

impl SendQuota {
    pub fn sandbox(&self) -> bool {
        self.max_24_hour_send <= SANDBOX_DAILY_LIMIT
    }
}

#[derive(Debug, Clone)]
pub struct Observed {
    /// `None`: SES has no identity for the domain.
    pub identity: Option<IdentityState>,
    pub quota: SendQuota,
    /// Whether the test recipient is a verified SES identity (it must be
    /// while the account is in the sandbox); `None` without a recipient.
    pub recipient_verified: Option<bool>,
}

pub async fn observe(ctx: &Ctx<'_>, email: &EmailSettings) -> Result<Observed> {
    let client = ctx.aws.ses(&email.ses_region);
    let mut identities = vec![email.domain.clone()];
    identities.extend(email.test_recipient.clone());
    let (verifications, dkim, quota) = tokio::try_join!(
        ses::verifications(&client, &identities),
        ses::dkim(&client, &email.domain),
        ses::send_quota(&client),
    )?;
    let identity = verifications.get(&email.domain).map(|v| IdentityState {
        domain: email.domain.clone(),
        verification: v.status.clone(),
        token: v.token.clone(),
        dkim_enabled: dkim.as_ref().is_some_and(|d| d.enabled),
        dkim_status: dkim
            .as_ref()
            .map(|d| d.status.clone())
            .unwrap_or_else(|| "NotStarted".into()),
        dkim_tokens: dkim.map(|d| d.tokens).unwrap_or_default(),
        dkim_domain: dkim_signing_domain(&email.ses_region),
    });
    let recipient_verified = email.test_recipient.as_ref().map(|recipient| {
        verifications
            .get(recipient)
            .is_some_and(|v| v.status == "Success")
    });
    Ok(Observed {
        identity,
        quota: SendQuota {
            max_24_hour_send: quota.max_24_hour_send,
            sent_last_24_hours: quota.sent_last_24_hours,
            max_send_rate: quota.max_send_rate,
        },
        recipient_verified,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// VerifyDomainIdentity, then Easy DKIM.
    Create,
    /// Verification failed (SES gives up after 72 hours without the DNS
    /// record): ask again, which restarts it with the same token.
    Reverify {
        dkim: bool,
    },
    /// The identity exists without DKIM tokens.
    EnableDkim,
    NoChange,
}

pub fn diff(observed: Option<&IdentityState>) -> Change {
    let Some(identity) = observed else {
        return Change::Create;
    };
    // Easy DKIM is asked for when it is off, or when SES gave up on it
    // (after 72 hours without the CNAMEs): asking again restarts it. An
    // identity that signs another way (its DKIM on, without Easy DKIM
    // tokens) is someone's choice, and left alone.
    let dkim_wanted = !identity.dkim_enabled || identity.dkim_status == "Failed";
    match identity.verification.as_str() {
        "Failed" => Change::Reverify { dkim: dkim_wanted },
        _ if dkim_wanted => Change::EnableDkim,
        _ => Change::NoChange,
    }
}

impl Change {
    pub fn item(&self, email: &EmailSettings, observed: Option<&IdentityState>) -> PlanItem {
        let name = format!("{} ({})", email.domain, email.ses_region);
        let id = observed.map(|i| i.domain.clone());
        match self {
            Change::Create => PlanItem::new("ses_identity", name, None, Action::Create)
                .with_changes(vec![
                    "verify the domain and turn on Easy DKIM".into(),
                    "then publish the DNS records glbox prints".into(),
                ]),
            Change::Reverify { .. } => PlanItem::new("ses_identity", name, id, Action::Update)
                .with_changes(vec![
                    "verification failed: start it again (publish the DNS records)".into(),
                ]),
            Change::EnableDkim => PlanItem::new("ses_identity", name, id, Action::Update)
                .with_changes(vec!["turn on (or restart) Easy DKIM".into()]),
            Change::NoChange => {
                let state = observed
                    .map(|i| {
                        format!(
                            "verification {}, DKIM {}",
                            i.verification.to_lowercase(),
                            i.dkim_status.to_lowercase()
                        )
                    })
                    .unwrap_or_default();
                PlanItem::new("ses_identity", name, id, Action::NoChange).with_changes(vec![state])
            }
        }
    }
}

pub async fn apply(ctx: &Ctx<'_>, email: &EmailSettings, change: &Change) -> Result<()> {
    let client = ctx.aws.ses(&email.ses_region);
    let (verify, dkim) = match change {
        Change::Create => (true, true),
        Change::Reverify { dkim } => (true, *dkim),
        Change::EnableDkim => (false, true),
        Change::NoChange => return Ok(()),
    };
    if verify {
        ses::verify_domain(&client, &email.domain).await?;
        ctx.ui.info(&format!(
            "asked SES ({}) to verify {}",
            email.ses_region, email.domain
        ));
        if *change == Change::Create {
            // Only an identity glbox made is one `down` may delete.
            crate::ownership::record_email_identity(ctx, &email.ses_region, &email.domain).await?;
        }
    }
    if dkim {
        ses::enable_dkim(&client, &email.domain).await?;
        ctx.ui
            .info(&format!("turned on Easy DKIM for {}", email.domain));
    }
    Ok(())
}

/// `down --delete-email-identity`: the identity goes (it may be shared:
/// glbox only does this when asked).
pub async fn delete(ctx: &Ctx<'_>, email: &EmailSettings) -> Result<()> {
    ses::delete_identity(&ctx.aws.ses(&email.ses_region), &email.domain).await?;
    ctx.ui.info(&format!(
        "deleted the SES identity {} in {}",
        email.domain, email.ses_region
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(verification: &str, tokens: usize) -> IdentityState {
        IdentityState {
            domain: "example.com".into(),
            verification: verification.into(),
            token: Some("t".into()),
            dkim_enabled: tokens > 0,
            dkim_status: "Pending".into(),
            dkim_tokens: (0..tokens).map(|i| format!("k{i}")).collect(),
            dkim_domain: dkim_signing_domain("us-east-1"),
        }
    }

    #[test]
    fn dkim_points_at_the_regions_signing_domain() {
        assert_eq!(dkim_signing_domain("eu-west-1"), "dkim.amazonses.com");
        assert_eq!(
            dkim_signing_domain("il-central-1"),
            "dkim.il-central-1.amazonses.com"
        );
        for region in REGIONAL_DKIM_DOMAINS {
            assert!(crate::config::AWS_REGIONS.contains(region), "{region}");
        }
    }

    #[test]
    fn only_what_is_missing_is_asked_for() {
        assert_eq!(diff(None), Change::Create);
        assert_eq!(diff(Some(&state("Pending", 3))), Change::NoChange);
        assert_eq!(diff(Some(&state("Success", 0))), Change::EnableDkim);
        assert_eq!(
            diff(Some(&state("Failed", 3))),
            Change::Reverify { dkim: false }
        );
    }

    #[test]
    fn a_failed_dkim_is_restarted_and_another_signer_left_alone() {
        let mut failed = state("Success", 3);
        failed.dkim_status = "Failed".into();
        assert_eq!(diff(Some(&failed)), Change::EnableDkim);
        let mut byodkim = state("Success", 0);
        byodkim.dkim_enabled = true;
        byodkim.dkim_status = "Success".into();
        assert_eq!(diff(Some(&byodkim)), Change::NoChange);
    }

    #[test]
    fn the_sandbox_is_told_by_its_daily_limit() {
        let quota = |max| SendQuota {
            max_24_hour_send: max,
            sent_last_24_hours: 0.0,
            max_send_rate: 1.0,
        };
        assert!(quota(200.0).sandbox());
        assert!(!quota(50_000.0).sandbox());
    }
}
