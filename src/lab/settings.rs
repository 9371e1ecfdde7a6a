//! The `[lab]` section: how many seats, for how long, on which market. It
//! is validated with the rest of the configuration, before any AWS call.

use std::time::Duration;

use serde::Deserialize;

use crate::config::raw::RawLab;
use crate::config::{bad, AccessMethod, ConfigError, Settings};

pub const MAX_SEATS: u16 = 200;
/// Every seat at once is the most (and the default): each seat is its own
/// machine, so installing one never waits for another.
const MAX_CONCURRENCY: i64 = MAX_SEATS as i64;
const MIN_EXPIRY: Duration = Duration::from_secs(10 * 60);
const MAX_EXPIRY: Duration = Duration::from_secs(30 * 24 * 3600);
/// `glbox-lab-<lab>-s200-data` and `glbox-lab-<lab>-<region>` stay within
/// AWS's name limits with a lab name this long.
const MAX_LAB_NAME: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSettings {
    pub name: String,
    pub seats: u16,
    pub expires_in: Duration,
    pub spot: bool,
    /// Bootstraps (and checks) in flight at once.
    pub concurrency: usize,
}

/// Parses `"8h"`, `"90m"`, `"2d"`, `"1h30m"`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        let value: u64 = number.parse().ok()?;
        total = total.checked_add(value.checked_mul(unit)?)?;
        number.clear();
    }
    (number.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

/// "name, seats, expires_in, spot and concurrency", from the schema.
fn key_names() -> String {
    let names: Vec<&str> = RawLab::KEYS.iter().map(|key| key.name).collect();
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Validates `[lab]` against the settings every seat shares.
pub fn validate(settings: &Settings, raw: toml::Table) -> Result<LabSettings, ConfigError> {
    let raw = RawLab::deserialize(raw).map_err(|e| {
        bad(
            "lab",
            "",
            e.message(),
            format!("[lab] takes {}", key_names()),
        )
    })?;
    let name = settings.name.clone();
    if name.len() > MAX_LAB_NAME {
        return Err(bad(
            "lab.name",
            &name,
            &format!("is longer than {MAX_LAB_NAME} characters (seat names add to it)"),
            "pick a shorter name, e.g. \"k8s-class\"",
        ));
    }
    let seats = match raw.seats {
        Some(n) if (1..=i64::from(MAX_SEATS)).contains(&n) => n as u16,
        Some(n) => {
            return Err(bad(
                "lab.seats",
                n,
                &format!("must be between 1 and {MAX_SEATS}"),
                "set seats to the number of students",
            ))
        }
        None => {
            return Err(bad(
                "lab.seats",
                "",
                "is required",
                "set seats = 25 (one GitLab box per student) under [lab]",
            ))
        }
    };
    let spot = raw.spot();
    let concurrency = raw.concurrency();
    let expires_in = validate_expiry(raw.expires_in)?;
    let concurrency = match concurrency {
        n if (1..=MAX_CONCURRENCY).contains(&n) => n as usize,
        n => {
            return Err(bad(
                "lab.concurrency",
                n,
                &format!("must be between 1 and {MAX_CONCURRENCY}"),
                "leave it out to install every seat at once",
            ))
        }
    };
    check_seat_settings(settings)?;
    Ok(LabSettings {
        name,
        seats,
        expires_in,
        spot,
        concurrency,
    })
}

fn validate_expiry(text: Option<String>) -> Result<Duration, ConfigError> {
    let Some(text) = text else {
        return Err(bad(
            "lab.expires_in",
            "",
            "is required: a lab must say when it may be removed, so none is left running on the bill",
            "set expires_in = \"8h\" (m, h and d work: \"90m\", \"2d\") and run glbox lab reap from cron",
        ));
    };
    match parse_duration(&text) {
        Some(d) if (MIN_EXPIRY..=MAX_EXPIRY).contains(&d) => Ok(d),
        Some(_) => Err(bad(
            "lab.expires_in",
            &text,
            "must be between 10 minutes and 30 days",
            "set e.g. expires_in = \"8h\"",
        )),
        None => Err(bad(
            "lab.expires_in",
            &text,
            "is not a duration",
            "write a number with a unit: \"90m\", \"8h\", \"2d\" or \"1h30m\"",
        )),
    }
}

/// What a single box may have but a seat cannot (checked before AWS).
fn check_seat_settings(settings: &Settings) -> Result<(), ConfigError> {
    if settings.access == AccessMethod::Ssh {
        return Err(bad(
            "access.method",
            "ssh",
            "is not available for labs: seats are bootstrapped through SSM and open no SSH port",
            "remove access.method (SSM is the default)",
        ));
    }
    if let Some(url) = &settings.gitlab.external_url {
        return Err(bad(
            "gitlab.external_url",
            url,
            "cannot be shared by the seats of a lab: each seat gets its own address",
            "remove gitlab.external_url (and gitlab.letsencrypt)",
        ));
    }
    if settings.email.is_some() {
        return Err(bad(
            "email.enabled",
            "true",
            "is not available for labs yet",
            "remove [email] or set enabled = false",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(text: &str) -> Result<LabSettings, ConfigError> {
        let settings = crate::test_support::settings("class");
        validate(&settings, text.parse().unwrap())
    }

    #[test]
    fn the_refusal_of_an_unknown_key_lists_the_schemas_keys() {
        assert_eq!(key_names(), "name, seats, expires_in, spot and concurrency");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("8h"), Some(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        for bad in ["", "8", "h", "8x", "-1h", "0h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_lab_needs_seats_and_an_expiry() {
        let ok = lab("seats = 25\nexpires_in = \"8h\"\n").unwrap();
        assert_eq!((ok.seats, ok.concurrency, ok.spot), (25, 200, false));
        assert_eq!(lab("expires_in = \"8h\"").unwrap_err().field, "lab.seats");
        assert_eq!(lab("seats = 3").unwrap_err().field, "lab.expires_in");
        assert_eq!(
            lab("seats = 201\nexpires_in = \"8h\"").unwrap_err().field,
            "lab.seats"
        );
        assert_eq!(
            lab("seats = 2\nexpires_in = \"5m\"").unwrap_err().field,
            "lab.expires_in"
        );
        assert_eq!(
            lab("seats = 2\nexpires_in = \"8h\"\nconcurrency = 0")
                .unwrap_err()
                .field,
            "lab.concurrency"
        );
        assert_eq!(
            lab("seats = 2\nexpires_in = \"8h\"\nsize = 1")
                .unwrap_err()
                .field,
            "lab"
        );
    }

    #[test]
    fn seats_cannot_share_an_url_or_use_ssh() {
        let mut settings = crate::test_support::settings("class");
        settings.gitlab.external_url = Some("https://gitlab.example.com".into());
        let raw: toml::Table = "seats = 2\nexpires_in = \"8h\"".parse().unwrap();
        assert_eq!(
            validate(&settings, raw).unwrap_err().field,
            "gitlab.external_url"
        );
    }
}
