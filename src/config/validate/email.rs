//! `[email]`: outbound mail through Amazon SES.

use super::{network::validate_zone_id, optional_text};
use crate::config::raw::RawEmail;
use crate::config::settings::EmailSettings;
use crate::config::{bad, ConfigError};

/// A plain address (letters, digits, `.`, `_`, `+`, `-`): it lands inside
/// quotes in gitlab.rb, in Ruby and in the shell, so nothing else is let in.
pub(super) fn is_plain_address(address: &str) -> bool {
    address
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".@_+-".contains(c))
        && address
            .split_once('@')
            .is_some_and(|(user, domain)| !user.is_empty() && is_domain(domain))
}

/// A DNS name with at least two labels, each 1-63 letters, digits or
/// hyphens, not starting or ending with a hyphen.
pub fn is_domain(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The address's domain is `domain` itself or one of its subdomains.
fn sends_as(address: &str, domain: &str) -> bool {
    address.rsplit_once('@').is_some_and(|(_, host)| {
        host.eq_ignore_ascii_case(domain)
            || host.to_ascii_lowercase().ends_with(&format!(".{domain}"))
    })
}

/// An optional address key (`email.from`, `email.reply_to`, ...).
fn validate_address(field: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    match optional_text(value) {
        Some(address) if !is_plain_address(&address) => Err(bad(
            field,
            &address,
            "is not a plain email address",
            "use an address like gitlab@example.com (letters, digits, . _ + - only)",
        )),
        other => Ok(other),
    }
}

/// `[email]`: `None` unless enabled; the addresses are checked either way.
pub(super) fn validate_email(
    raw: RawEmail,
    region: &str,
) -> Result<Option<EmailSettings>, ConfigError> {
    let (enabled, port) = (raw.enabled(), raw.port());
    // Checked even when email is off, so a typo shows before it is switched on.
    let from = validate_address("email.from", raw.from)?;
    let reply_to = validate_address("email.reply_to", raw.reply_to)?;
    let test_recipient = validate_address("email.test_recipient", raw.test_recipient)?;
    if !enabled {
        return Ok(None);
    }
    let Some(domain) = optional_text(raw.domain).map(|d| d.to_ascii_lowercase()) else {
        return Err(bad(
            "email.domain",
            "",
            "is required when email.enabled = true: SES sends only as a verified domain",
            "set email.domain = \"example.com\" (a domain whose DNS you can change)",
        ));
    };
    if !is_domain(&domain) {
        return Err(bad(
            "email.domain",
            &domain,
            "is not a domain name",
            "use a DNS domain such as \"example.com\" or \"mail.example.com\", without @ or a URL",
        ));
    }
    let from = from.unwrap_or_else(|| format!("gitlab@{domain}"));
    if !sends_as(&from, &domain) {
        return Err(bad(
            "email.from",
            &from,
            &format!("is not an address at {domain}: SES refuses to send as a domain that is not verified"),
            format!("use an address at {domain} (for example gitlab@{domain}), or change email.domain"),
        ));
    }
    let ses_region = optional_text(raw.ses_region).unwrap_or_else(|| region.to_string());
    if !crate::email::smtp_password::is_smtp_region(&ses_region) {
        return Err(bad(
            "email.ses_region",
            &ses_region,
            "has no Amazon SES SMTP endpoint",
            format!(
                "set email.ses_region to one of: {}",
                crate::email::smtp_password::SMTP_REGIONS.join(", ")
            ),
        ));
    }
    let port = match port {
        port @ (587 | 2587 | 465 | 2465) => port as u16,
        25 => {
            return Err(bad(
                "email.port",
                25,
                "is throttled by EC2 for outbound mail by default, so mail would stall",
                "use 587 (STARTTLS, the default) or 465 (TLS)",
            ))
        }
        other => {
            return Err(bad(
                "email.port",
                other,
                "is not an SES SMTP port",
                "use 587 or 2587 (STARTTLS), or 465 or 2465 (TLS)",
            ))
        }
    };
    let route53_zone_id = optional_text(raw.route53_zone_id)
        .map(|id| validate_zone_id("email.route53_zone_id", &id))
        .transpose()?;
    Ok(Some(EmailSettings {
        domain,
        from,
        reply_to,
        ses_region,
        port,
        route53_zone_id,
        test_recipient,
    }))
}
