//! `[network]` and `[dns]`: who reaches GitLab, and the address record.

use ipnet::IpNet;

use super::{gitlab::url_host, optional_text};
use crate::config::raw::RawDns;
use crate::config::settings::GitlabSettings;
use crate::config::{bad, ConfigError};

/// CIDR blocks in network form, duplicates dropped.
pub(super) fn validate_cidrs(field: &str, cidrs: Vec<String>) -> Result<Vec<IpNet>, ConfigError> {
    let mut parsed: Vec<IpNet> = Vec::with_capacity(cidrs.len());
    for text in cidrs {
        let net: IpNet = text.trim().parse().map_err(|_| {
            bad(
                field,
                &text,
                "is not a CIDR block",
                "write addresses as CIDR blocks, e.g. \"203.0.113.7/32\" or \"2001:db8::/32\"",
            )
        })?;
        if net.trunc() != net {
            return Err(bad(
                field,
                &text,
                "has host bits set",
                format!("use the network address \"{}\"", net.trunc()),
            ));
        }
        if !parsed.contains(&net) {
            parsed.push(net);
        }
    }
    Ok(parsed)
}

/// Let's Encrypt's HTTP-01 challenge comes from addresses it does not
/// publish, on port 80: anything less than the whole internet there makes
/// issuance and every renewal fail.
/// <https://letsencrypt.org/docs/faq/#what-ip-addresses-does-let-s-encrypt-use-to-validate-my-web-server>
pub(super) fn check_letsencrypt_reachable(
    gitlab: &GitlabSettings,
    http_cidrs: &[IpNet],
) -> Result<(), ConfigError> {
    let internet: IpNet = "0.0.0.0/0".parse().expect("a valid CIDR");
    if !gitlab.letsencrypt || http_cidrs.contains(&internet) {
        return Ok(());
    }
    let listed: Vec<String> = http_cidrs.iter().map(ToString::to_string).collect();
    Err(bad(
        "network.http_cidrs",
        listed.join(","),
        "does not include 0.0.0.0/0, but gitlab.letsencrypt needs port 80 open to the whole internet: Let's Encrypt checks the name from addresses it does not publish, at issuance and at every renewal",
        "add \"0.0.0.0/0\" (and \"::/0\") to network.http_cidrs, or set gitlab.letsencrypt = false and bring your own certificate",
    ))
}

/// `[dns]`: a hosted zone needs a DNS name in the external URL and a
/// stable address (the Elastic IP) to point it at.
pub(super) fn validate_dns(
    raw: RawDns,
    gitlab: &GitlabSettings,
    elastic_ip: bool,
) -> Result<Option<String>, ConfigError> {
    let Some(id) = optional_text(raw.route53_zone_id) else {
        return Ok(None);
    };
    let field = "dns.route53_zone_id";
    let zone_id = validate_zone_id(field, &id)?;
    let host = gitlab.external_url.as_deref().map(url_host);
    if host.is_none_or(|h| h.parse::<std::net::IpAddr>().is_ok()) {
        return Err(bad(
            field,
            &id,
            "needs gitlab.external_url with a DNS name to make the record for",
            "set gitlab.external_url = \"https://gitlab.example.com\" (a name in this zone), or remove dns.route53_zone_id",
        ));
    }
    if !elastic_ip {
        return Err(bad(
            field,
            &id,
            "needs network.elastic_ip = true: without it the instance's address changes at every stop and start, and the record would point at someone else's",
            "set network.elastic_ip = true, or remove dns.route53_zone_id",
        ));
    }
    Ok(Some(zone_id))
}

/// `Z0123456789ABC` or `/hostedzone/Z0123456789ABC`; the id alone is kept.
pub(super) fn validate_zone_id(field: &str, id: &str) -> Result<String, ConfigError> {
    let bare = id.strip_prefix("/hostedzone/").unwrap_or(id);
    let ok = bare.len() >= 2
        && bare.len() <= 32
        && bare.starts_with('Z')
        && bare
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if ok {
        Ok(bare.to_string())
    } else {
        Err(bad(
            field,
            id,
            "is not a Route 53 hosted zone id",
            "use the id shown by `aws route53 list-hosted-zones` (like Z0123456789ABCDEFGHIJ), or leave it empty to publish the records yourself",
        ))
    }
}
