//! The SES SMTP password for an IAM secret access key: SigV4's key
//! derivation (HMAC-SHA256 from `"AWS4" + secret` over a fixed date, the
//! region, `ses`, `aws4_request`), signed over `SendRawEmail`, with the
//! version byte 0x04 in front, base64-encoded. The password only works in
//! the region it was derived for.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Regions with an SES SMTP endpoint (`email-smtp.<region>.amazonaws.com`),
/// from the AWS General Reference's SES endpoint table, November 2026.
pub const SMTP_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ca-central-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "sa-east-1",
    "us-gov-east-1",
    "us-gov-west-1",
];

const DATE: &str = "11111111";
const SERVICE: &str = "ses";
const TERMINAL: &str = "aws4_request";
const MESSAGE: &str = "SendRawEmail";
const VERSION: u8 = 0x04;

pub fn is_smtp_region(region: &str) -> bool {
    SMTP_REGIONS.contains(&region)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} has no Amazon SES SMTP endpoint, so no SMTP password can be made for it")]
pub struct NoSmtpEndpoint(pub String);

fn sign(key: &[u8], message: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The SMTP password for `secret_access_key` in `region`.
pub fn derive(secret_access_key: &str, region: &str) -> Result<String, NoSmtpEndpoint> {
    if !is_smtp_region(region) {
        return Err(NoSmtpEndpoint(region.to_string()));
    }
    let mut signature = sign(format!("AWS4{secret_access_key}").as_bytes(), DATE);
    for step in [region, SERVICE, TERMINAL, MESSAGE] {
        signature = sign(&signature, step);
    }
    let mut versioned = Vec::with_capacity(1 + signature.len());
    versioned.push(VERSION);
    versioned.extend_from_slice(&signature);
    Ok(base64::engine::general_purpose::STANDARD.encode(versioned))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published vectors: the Terraform AWS provider's test of the same
    /// algorithm (internal/service/iam/access_key_test.go,
    /// TestSESSMTPPasswordFromSecretKeySigV4), whose output authenticates
    /// against SES. Expectations taken from this code would prove nothing.
    #[test]
    fn matches_published_passwords() {
        let vectors = [
            (
                "eu-central-1",
                "some+secret+key",
                "BMXhUYlu5Z3gSXVQORxlVa7XPaz91aGWdfHxvkOZdWZ2",
            ),
            (
                "eu-central-1",
                "another+secret+key",
                "BBbphbrQmrKMx42d1N6+C7VINYEBGI5v9VsZeTxwskfh",
            ),
            (
                "us-west-1",
                "some+secret+key",
                "BH+jbMzper5WwlwUar9E1ySBqHa9whi0GPo+sJ0mVYJj",
            ),
            (
                "us-west-1",
                "another+secret+key",
                "BKVmjjMDFk/qqw8EROW99bjCS65PF8WKvK5bSr4Y6EqF",
            ),
        ];
        for (region, secret, expected) in vectors {
            assert_eq!(derive(secret, region).unwrap(), expected, "{region}");
        }
    }

    #[test]
    fn passwords_differ_by_region_and_start_with_the_version() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let east = derive(secret, "us-east-1").unwrap();
        let west = derive(secret, "eu-west-1").unwrap();
        assert_ne!(east, west);
        for password in [&east, &west] {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(password)
                .unwrap();
            assert_eq!(raw.len(), 33);
            assert_eq!(raw[0], 0x04);
            assert!(!password.contains('\''), "gitlab.rb quotes it in ''");
        }
    }

    #[test]
    fn a_region_without_smtp_is_refused() {
        assert_eq!(
            derive("secret", "us-east-7"),
            Err(NoSmtpEndpoint("us-east-7".into()))
        );
        assert!(derive("secret", "").is_err());
        assert!(!is_smtp_region("cn-north-1"));
    }
}
