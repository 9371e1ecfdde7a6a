//! The SES (v1) gateway: domain identities, Easy DKIM and the account's
//! sending status. The client is the identity's region's
//! ([`crate::aws::Aws::ses`]), which need not be the deployment's.

use std::collections::BTreeMap;

use aws_sdk_ses::Client;

use crate::aws::AwsResultExt;
use crate::error::Result;

/// An identity's verification: Success, Pending, Failed, TemporaryFailure
/// or NotStarted, and a domain's TXT token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub status: String,
    pub token: Option<String>,
}

/// A domain's DKIM settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dkim {
    pub enabled: bool,
    pub status: String,
    /// Easy DKIM's tokens (none when the domain signs another way).
    pub tokens: Vec<String>,
}

/// The account's sending limits in the client's region.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub max_24_hour_send: f64,
    pub sent_last_24_hours: f64,
    pub max_send_rate: f64,
}

/// The verification of those of `identities` SES knows, by identity.
pub async fn verifications(
    ses: &Client,
    identities: &[String],
) -> Result<BTreeMap<String, Verification>> {
    let out = ses
        .get_identity_verification_attributes()
        .set_identities(Some(identities.to_vec()))
        .send()
        .await
        .ctx("ses:GetIdentityVerificationAttributes")?;
    Ok(out
        .verification_attributes()
        .iter()
        .map(|(identity, v)| {
            let verification = Verification {
                status: v.verification_status().as_str().to_string(),
                token: v.verification_token().map(str::to_string),
            };
            (identity.clone(), verification)
        })
        .collect())
}

/// The domain's DKIM settings; `None` when SES reports none.
pub async fn dkim(ses: &Client, domain: &str) -> Result<Option<Dkim>> {
    let out = ses
        .get_identity_dkim_attributes()
        .identities(domain)
        .send()
        .await
        .ctx("ses:GetIdentityDkimAttributes")?;
    Ok(out.dkim_attributes().get(domain).map(|d| Dkim {
        enabled: d.dkim_enabled(),
        status: d.dkim_verification_status().as_str().to_string(),
        tokens: d.dkim_tokens().to_vec(),
    }))
}

pub async fn send_quota(ses: &Client) -> Result<Quota> {
    let out = ses.get_send_quota().send().await.ctx("ses:GetSendQuota")?;
    Ok(Quota {
        max_24_hour_send: out.max24_hour_send(),
        sent_last_24_hours: out.sent_last24_hours(),
        max_send_rate: out.max_send_rate(),
    })
}

/// Creates the domain's identity, or restarts a failed verification (with
/// the same token).
pub async fn verify_domain(ses: &Client, domain: &str) -> Result<()> {
    ses.verify_domain_identity()
        .domain(domain)
        .send()
        .await
        .ctx("ses:VerifyDomainIdentity")?;
    Ok(())
}

/// Turns Easy DKIM on (or restarts it).
pub async fn enable_dkim(ses: &Client, domain: &str) -> Result<()> {
    ses.verify_domain_dkim()
        .domain(domain)
        .send()
        .await
        .ctx("ses:VerifyDomainDkim")?;
    Ok(())
}

pub async fn delete_identity(ses: &Client, identity: &str) -> Result<()> {
    ses.delete_identity()
        .identity(identity)
        .send()
        .await
        .ctx("ses:DeleteIdentity")?;
    Ok(())
}
