//! `[gitlab]`: edition, version, external URL and Let's Encrypt.

use super::{email::is_plain_address, validate_range};
use crate::config::raw::RawGitlab;
use crate::config::settings::{Edition, GitlabSettings, GitlabVersion};
use crate::config::{bad, ConfigError};

/// `[gitlab]`; Let's Encrypt defaults to on for an https URL with a DNS name.
pub(super) fn validate_gitlab(raw: RawGitlab) -> Result<GitlabSettings, ConfigError> {
    let install_timeout_minutes = raw.install_timeout_minutes();
    let edition = match raw.edition().as_str() {
        "ce" => Edition::Ce,
        "ee" => Edition::Ee,
        other => {
            return Err(bad(
                "gitlab.edition",
                other,
                "is not a GitLab edition",
                "use \"ce\" (Community Edition) or \"ee\" (Enterprise Edition)",
            ))
        }
    };
    let version = match raw.version().as_str() {
        "latest" => GitlabVersion::Latest,
        pinned if is_version(pinned) => GitlabVersion::Pinned(pinned.to_string()),
        other => {
            return Err(bad(
                "gitlab.version",
                other,
                "is not a GitLab version",
                "use \"latest\" or a release such as \"18.5.1\"",
            ))
        }
    };
    let external_url = raw
        .external_url
        .filter(|u| !u.is_empty())
        .map(|u| validate_url("gitlab.external_url", &u))
        .transpose()?;
    let https = external_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let letsencrypt = raw.letsencrypt.unwrap_or(https);
    if letsencrypt && !https {
        return Err(bad(
            "gitlab.letsencrypt",
            "true",
            "needs an https external_url with a DNS name",
            "set gitlab.external_url = \"https://gitlab.example.com\", or letsencrypt = false",
        ));
    }
    if letsencrypt
        && external_url
            .as_deref()
            .is_some_and(|u| url_host(u).parse::<std::net::IpAddr>().is_ok())
    {
        return Err(bad(
            "gitlab.external_url",
            external_url.unwrap_or_default(),
            "is an IP address, and Let's Encrypt only certifies DNS names",
            "point a DNS name at the Elastic IP and use it, or set gitlab.letsencrypt = false",
        ));
    }
    let install_minutes = validate_range(
        "gitlab.install_timeout_minutes",
        install_timeout_minutes,
        1,
        2880,
        "minutes",
    )?;
    let root_email = raw.root_email.filter(|e| !e.is_empty());
    if let Some(email) = &root_email {
        if !is_plain_address(email) {
            return Err(bad(
                "gitlab.root_email",
                email,
                "is not an email address",
                "use an address like admin@example.com",
            ));
        }
    }
    Ok(GitlabSettings {
        edition,
        version,
        external_url,
        letsencrypt,
        root_email,
        install_timeout: std::time::Duration::from_secs(
            60 * u64::from(install_minutes.unsigned_abs()),
        ),
        // Read with what else is on (see `extra_config`), AWS's facts later.
        extra_config: None,
        secrets: Vec::new(),
        replace_gitlab_rb: false,
    })
}

/// `major.minor.patch`, as GitLab numbers its releases.
pub fn is_version(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit()))
}

/// The host of a validated external URL.
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// An http(s) URL at the root of its host, as gitlab.rb can quote it.
pub fn validate_url(field: &str, url: &str) -> Result<String, ConfigError> {
    let fix = "use a URL like \"https://gitlab.example.com\" or \"http://203.0.113.7\"";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad(field, url, "has no scheme", fix));
    };
    if scheme != "http" && scheme != "https" {
        return Err(bad(field, url, "must start with http:// or https://", fix));
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') || rest.contains('?') || rest.contains('#') {
        return Err(bad(
            field,
            url,
            "has a path: glbox serves GitLab at the root of its host",
            "remove the path",
        ));
    }
    let host = url_host(rest);
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && !host.starts_with(['.', '-'])
        && !host.ends_with(['.', '-']);
    if !host_ok {
        return Err(bad(field, url, "does not have a valid host name", fix));
    }
    // GitLab's gitlab.rb quotes the URL in single quotes: keep it plain.
    Ok(format!("{scheme}://{rest}"))
}
