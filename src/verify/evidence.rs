//! The parsers that judge one round of `cloud-init/verify.sh`'s output:
//! each section of its evidence becomes one check.

use std::collections::BTreeMap;

use crate::config::{GitlabVersion, Settings};

use super::{Check, EmailFacts};

/// Splits the script's output into its `=== name` sections.
pub(super) fn sections(output: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in output.lines() {
        if let Some(name) = line.strip_prefix("=== ") {
            if let Some((done, text)) = current.take() {
                map.insert(done, text);
            }
            current = Some((name.trim().to_string(), String::new()));
        } else if let Some((_, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    if let Some((done, text)) = current {
        map.insert(done, text);
    }
    map
}

/// An endpoint section: the status code line, then the body.
fn endpoint(section: Option<&String>) -> (String, String) {
    let text = section.map(String::as_str).unwrap_or("");
    let (code, body) = text.split_once('\n').unwrap_or((text, ""));
    (code.trim().to_string(), body.trim().to_string())
}

/// What a non-200 answer from a health endpoint means.
fn judge_http(name: &'static str, code: &str, body: &str) -> Check {
    match code {
        "404" if body.is_empty() => Check::wrong(
            name,
            "404 with an empty body: 127.0.0.1 is not in gitlab_rails['monitoring_whitelist'] (glbox sets it; was gitlab.rb changed by hand?)",
        ),
        "302" => Check::wrong(
            name,
            "302 to the sign-in page: the request reached Rails but not the health route (an old GitLab, or a proxy in front?)",
        ),
        "000" => Check::not_yet(name, "no answer on 127.0.0.1 (nginx not up yet)"),
        "502" | "503" | "504" => Check::not_yet(name, format!("{code}: GitLab is still starting")),
        other if other.starts_with('4') => Check::wrong(name, format!("HTTP {other}: {}", first_line(body))),
        other => Check::not_yet(name, format!("HTTP {other}: {}", first_line(body))),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

fn check_liveness(section: Option<&String>) -> Check {
    let (code, body) = endpoint(section);
    if code == "200" {
        Check::pass("liveness", format!("200 {}", first_line(&body)))
    } else {
        judge_http("liveness", &code, &body)
    }
}

fn check_health(section: Option<&String>) -> Check {
    let (code, body) = endpoint(section);
    if code == "200" && body.contains("GitLab OK") {
        Check::pass("health", "200 GitLab OK")
    } else if code == "200" {
        Check::wrong(
            "health",
            format!("200 but not \"GitLab OK\": {}", first_line(&body)),
        )
    } else {
        judge_http("health", &code, &body)
    }
}

/// The failing sub-checks of a `/-/readiness?all=1` answer, by name;
/// `None` when the answer is not a readiness report (not JSON, or no
/// sub-check at all).
pub fn failing_readiness(json: &str) -> Option<Vec<String>> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let object = value.as_object()?;
    let has_checks = object
        .iter()
        .any(|(name, v)| name.ends_with("_check") && v.as_array().is_some_and(|a| !a.is_empty()));
    if !has_checks {
        return None;
    }
    let mut failing = Vec::new();
    for (name, results) in object {
        if let Some(list) = results.as_array() {
            if list.iter().any(|r| r["status"] != "ok") {
                let message = list
                    .iter()
                    .filter_map(|r| r["message"].as_str())
                    .next()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default();
                failing.push(format!("{}{message}", name.trim_end_matches("_check")));
            }
        }
    }
    // A failed overall status with every sub-check ok is still a failure.
    let overall_ok = object.get("status").is_none_or(|s| s == "ok");
    if failing.is_empty() && !overall_ok {
        failing.push("overall status".to_string());
    }
    Some(failing)
}

fn check_readiness(section: Option<&String>) -> Check {
    let (code, body) = endpoint(section);
    match (code.as_str(), failing_readiness(&body)) {
        ("200", Some(failing)) if failing.is_empty() => {
            Check::pass("readiness", "200, every sub-check ok")
        }
        ("200" | "503", Some(failing)) if !failing.is_empty() => {
            Check::not_yet("readiness", format!("failing: {}", failing.join(", ")))
        }
        ("500", _) => Check::not_yet("readiness", "500: the readiness check raised an exception"),
        _ => judge_http("readiness", &code, &body),
    }
}

/// `gitlab-ctl status`: each service and whether it runs.
pub fn parse_gitlab_ctl(text: &str) -> Vec<(String, bool)> {
    text.lines()
        .filter_map(|line| {
            let (state, rest) = line.split_once(": ")?;
            let service = rest.split(':').next()?.trim();
            match state {
                "run" => Some((service.to_string(), true)),
                "down" | "fail" | "warning" | "finish" => Some((service.to_string(), false)),
                _ => None,
            }
        })
        .collect()
}

fn check_services(section: Option<&String>) -> Check {
    let services = parse_gitlab_ctl(section.map(String::as_str).unwrap_or(""));
    if services.is_empty() {
        return Check::not_yet("services", "gitlab-ctl status listed no service");
    }
    let down: Vec<&str> = services
        .iter()
        .filter(|(_, up)| !up)
        .map(|(s, _)| s.as_str())
        .collect();
    if down.is_empty() {
        Check::pass("services", format!("{} services running", services.len()))
    } else {
        Check::not_yet("services", format!("down: {}", down.join(", ")))
    }
}

fn check_version(settings: &Settings, section: Option<&String>) -> Check {
    let installed = section.map(|s| s.trim()).unwrap_or("");
    match (&settings.gitlab.version, installed) {
        (_, "") => Check::wrong("version", "the GitLab package is not installed"),
        (GitlabVersion::Latest, installed) => {
            Check::pass("version", format!("{installed} (latest at install)"))
        }
        (GitlabVersion::Pinned(wanted), installed) if wanted == installed => {
            Check::pass("version", installed.to_string())
        }
        (GitlabVersion::Pinned(wanted), installed) => Check::wrong(
            "version",
            format!("{installed} installed, {wanted} requested: run glbox up"),
        ),
    }
}

/// `findmnt -o SOURCE,FSTYPE,SIZE,AVAIL --target /var/opt/gitlab` against
/// the root file system's source.
fn check_data_mount(mount: Option<&String>, root: Option<&String>) -> Check {
    let fields: Vec<&str> = mount
        .map(|m| m.split_whitespace().collect())
        .unwrap_or_default();
    let root_source = root.map(|r| r.trim()).unwrap_or("");
    match fields.as_slice() {
        [source, fstype, size, avail, ..] if *source != root_source => Check::pass(
            "data_volume",
            format!("{source} ({fstype}) at /var/opt/gitlab: {avail} free of {size}"),
        ),
        [source, ..] => Check::wrong(
            "data_volume",
            format!("/var/opt/gitlab is on the root disk ({source}), not the data volume: see /var/log/glbox/prepare-data.log"),
        ),
        [] => Check::wrong("data_volume", "findmnt found nothing at /var/opt/gitlab"),
    }
}

/// `swapon --show=NAME,SIZE --noheadings --bytes`: the total swap in bytes.
pub fn swap_bytes(text: &str) -> u64 {
    text.lines()
        .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

/// GitLab asks for 2 GiB; a 2 GiB swap file shows a page less.
const MIN_SWAP_BYTES: u64 = (2 << 30) - (1 << 20);

fn check_swap(section: Option<&String>) -> Check {
    let bytes = swap_bytes(section.map(String::as_str).unwrap_or(""));
    if bytes >= MIN_SWAP_BYTES {
        Check::pass("swap", format!("{} MiB", bytes >> 20))
    } else if bytes > 0 {
        Check::wrong(
            "swap",
            format!(
                "{} MiB of swap; GitLab asks for at least 2 GiB",
                bytes >> 20
            ),
        )
    } else {
        Check::wrong("swap", "no swap is on (GitLab asks for at least 2 GiB)")
    }
}

/// `gitlab_rb_state` (cloud-init/extra-config.sh): a gitlab.rb changed by
/// hand is a warning, since GitLab may run fine with it, but the next
/// bootstrap will not replace it.
fn check_gitlab_rb(section: Option<&String>) -> Check {
    const NAME: &str = "gitlab_rb";
    match section.map(|s| s.trim()) {
        Some("as-written") => Check::pass(NAME, "as glbox wrote it"),
        Some("changed") => Check::warn(NAME, super::HAND_EDIT_NOTE),
        Some("unrecorded") => Check::skipped(
            NAME,
            "not recorded yet: the next bootstrap records the gitlab.rb it writes",
        ),
        _ => Check::skipped(NAME, "the box did not say"),
    }
}

/// The failures in `gitlab-rake gitlab:check` output: the lines that say
/// "no" or "Failure" (with the check name before them).
pub fn gitlab_check_failures(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| {
            line.ends_with("... no")
                || line.contains("... Failure")
                || line.contains("... FAIL")
                || line.ends_with("... failed")
                || line.starts_with("Try fixing it")
        })
        .filter(|line| !line.starts_with("Try fixing it"))
        .map(str::to_string)
        .collect()
}

fn check_deep(section: Option<&String>) -> Check {
    match section {
        None => Check::skipped("gitlab_check", "run with --deep"),
        Some(text) => {
            let failures = gitlab_check_failures(text);
            let exit = text
                .lines()
                .find_map(|l| l.strip_prefix("glbox-exit: "))
                .unwrap_or("?");
            if failures.is_empty() && exit != "0" {
                Check::wrong(
                    "gitlab_check",
                    format!("gitlab-rake gitlab:check did not run (exit {exit})"),
                )
            } else if failures.is_empty() {
                Check::pass("gitlab_check", "gitlab:check found nothing wrong")
            } else {
                Check::wrong("gitlab_check", failures.join("; "))
            }
        }
    }
}

/// The SES identity and its DKIM, as SES reports them.
pub fn check_email_identity(facts: &EmailFacts) -> Vec<Check> {
    let Some(identity) = &facts.identity else {
        return vec![Check::wrong(
            "email_identity",
            "SES has no identity for the domain: run glbox up",
        )];
    };
    let fix = "publish the records `glbox email dns` prints, or wait with glbox up --wait-email";
    let domain = &identity.domain;
    let verification = match identity.verification.as_str() {
        "Success" => Check::pass("email_identity", format!("{domain} verified in SES")),
        "Pending" | "NotStarted" => Check::pending(
            "email_identity",
            format!("{domain}: SES verification pending; {fix}"),
        ),
        "TemporaryFailure" => Check::wrong(
            "email_identity",
            format!("{domain}: SES could not check the records for now (TemporaryFailure); it retries on its own: check that they are published (glbox email dns)"),
        ),
        other => Check::wrong(
            "email_identity",
            format!("{domain}: SES verification {other}; run glbox up to restart it, then {fix}"),
        ),
    };
    let dkim = match identity.dkim_status.as_str() {
        "Success" => Check::pass("email_dkim", "DKIM records verified"),
        "Pending" | "NotStarted" => Check::pending("email_dkim", format!("DKIM pending; {fix}")),
        other => Check::wrong(
            "email_dkim",
            format!("DKIM {other}: publish the three CNAME records (glbox email dns), then run glbox up (it restarts DKIM)"),
        ),
    };
    vec![verification, dkim]
}

/// The test mail's outcome: `gitlab-rails runner` output and exit status.
pub(super) fn check_test_mail(section: Option<&String>, facts: &EmailFacts) -> Check {
    const NAME: &str = "email_test";
    let Some(text) = section else {
        return Check::skipped(NAME, facts.no_test_reason.clone());
    };
    let exit = text
        .lines()
        .find_map(|l| l.strip_prefix("glbox-exit: "))
        .unwrap_or("?");
    let recipient = facts.test_recipient.as_deref().unwrap_or("?");
    if exit == "0" {
        return Check::pass(
            NAME,
            format!("GitLab sent a test mail to {recipient} through SES"),
        );
    }
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("glbox-exit: ") && !l.trim().is_empty())
        .collect();
    // The exception's line says most; else the last thing printed.
    let cause = lines
        .iter()
        .find(|l| l.contains("Error") || l.contains("error"))
        .or(lines.last())
        .map_or("", |l| l.trim());
    let hint = if cause.contains("535") || cause.contains("Authentication") {
        "; SES refused the SMTP credentials: run glbox email rotate"
    } else if cause.contains("not verified") {
        "; in the SES sandbox both sender and recipient must be verified"
    } else if cause.contains("OpenTimeout") || cause.contains("timed out") {
        "; the box cannot reach the SMTP endpoint: check outbound traffic on the SMTP port"
    } else {
        ""
    };
    Check::wrong(
        NAME,
        format!("the test mail to {recipient} failed (exit {exit}): {cause}{hint}"),
    )
}

/// Judges one round of the script's output.
pub fn evaluate(settings: &Settings, output: &str) -> Vec<Check> {
    let s = sections(output);
    vec![
        check_liveness(s.get("liveness")),
        check_readiness(s.get("readiness")),
        check_health(s.get("health")),
        check_services(s.get("gitlab-ctl")),
        check_version(settings, s.get("version")),
        check_data_mount(s.get("mount"), s.get("root")),
        check_swap(s.get("swap")),
        check_gitlab_rb(s.get("gitlab-rb")),
        check_deep(s.get("gitlab-check")),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::{Kind, Status};
    use super::*;

    const HEALTHY: &str = include_str!("../../tests/data/verify-healthy.txt");
    const BROKEN: &str = include_str!("../../tests/data/verify-broken.txt");

    fn by_name<'a>(checks: &'a [Check], name: &str) -> &'a Check {
        checks.iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn a_healthy_box_passes_everything_but_the_deep_check() {
        let checks = evaluate(&crate::test_support::settings("t"), HEALTHY);
        for check in &checks {
            let expected = if check.name == "gitlab_check" {
                Status::Skipped
            } else {
                Status::Pass
            };
            assert_eq!(check.status, expected, "{check:?}");
        }
        assert_eq!(by_name(&checks, "services").evidence, "11 services running");
        assert_eq!(by_name(&checks, "swap").evidence, "2048 MiB");
    }

    #[test]
    fn a_broken_box_names_every_problem() {
        let mut settings = crate::test_support::settings("t");
        settings.gitlab.version = GitlabVersion::Pinned("18.7.0".into());
        let checks = evaluate(&settings, BROKEN);
        let readiness = by_name(&checks, "readiness");
        assert_eq!(readiness.kind, Kind::NotYet);
        assert!(
            readiness.evidence.contains("db (PG::ConnectionBad"),
            "{readiness:?}"
        );
        assert!(
            readiness
                .evidence
                .contains("gitaly (14:Connection refused)"),
            "{readiness:?}"
        );
        assert_eq!(
            by_name(&checks, "services").evidence,
            "down: postgresql, sidekiq"
        );
        assert_eq!(by_name(&checks, "version").kind, Kind::Wrong);
        assert!(by_name(&checks, "data_volume")
            .evidence
            .contains("root disk"));
        assert_eq!(by_name(&checks, "swap").kind, Kind::Wrong);
        let deep = by_name(&checks, "gitlab_check");
        assert_eq!(deep.evidence, "All migrations up? ... no");
        let rb = by_name(&checks, "gitlab_rb");
        assert_eq!(rb.status, Status::Warn);
        assert!(rb
            .evidence
            .contains("put it in extra_config or it will be replaced"));
    }

    #[test]
    fn a_hand_edited_gitlab_rb_warns_without_making_gitlab_unhealthy() {
        let changed = HEALTHY.replace("=== gitlab-rb\nas-written", "=== gitlab-rb\nchanged");
        assert_ne!(changed, HEALTHY);
        let checks = evaluate(&crate::test_support::settings("t"), &changed);
        assert!(
            checks.iter().all(|c| c.status != Status::Fail),
            "{checks:?}"
        );
        assert_eq!(by_name(&checks, "gitlab_rb").status, Status::Warn);
        let unrecorded = check_gitlab_rb(Some(&"unrecorded\n".to_string()));
        assert_eq!(unrecorded.status, Status::Skipped);
    }

    #[test]
    fn only_the_data_mount_being_wrong_is_wrong_at_once() {
        let root_disk = HEALTHY.replace(
            "/dev/nvme1n1 ext4 98.1G 90.2G",
            "/dev/nvme0n1p1 ext4 48.4G 40.1G",
        );
        let checks = evaluate(&crate::test_support::settings("t"), &root_disk);
        let failing: Vec<&Check> = checks.iter().filter(|c| c.status == Status::Fail).collect();
        assert_eq!(failing.len(), 1, "{failing:?}");
        assert_eq!(failing[0].name, "data_volume");
        assert_eq!(failing[0].kind, Kind::Wrong);
    }

    #[test]
    fn readiness_needs_sub_checks_and_small_swap_is_wrong() {
        assert_eq!(failing_readiness(r#"{"status":"ok"}"#), None);
        assert_eq!(failing_readiness(r#"{"status":"ok","db_check":[]}"#), None);
        assert_eq!(
            failing_readiness(r#"{"status":"failed","db_check":[{"status":"ok"}]}"#),
            Some(vec!["overall status".to_string()])
        );
        assert_eq!(
            check_swap(Some(&"/swapfile 536870912\n".to_string())).kind,
            Kind::Wrong
        );
        assert_eq!(
            check_swap(Some(&"/swapfile 2147479552\n".to_string())).status,
            Status::Pass
        );
        let gitaly = gitlab_check_failures("Gitaly: ... default ... FAIL: 14:connection refused\n");
        assert_eq!(gitaly.len(), 1);
    }

    #[test]
    fn http_answers_are_told_apart() {
        assert_eq!(judge_http("health", "502", "").kind, Kind::NotYet);
        assert_eq!(judge_http("health", "000", "").kind, Kind::NotYet);
        let allowlist = judge_http("health", "404", "");
        assert_eq!(allowlist.kind, Kind::Wrong);
        assert!(allowlist.evidence.contains("monitoring_whitelist"));
        assert_eq!(judge_http("health", "302", "").kind, Kind::Wrong);
        assert_eq!(judge_http("health", "403", "Forbidden").kind, Kind::Wrong);
    }

    #[test]
    fn gitlab_ctl_lines_parse() {
        let services = parse_gitlab_ctl(
            "run: puma: (pid 1234) 345s; run: log: (pid 1200) 400s\ndown: sidekiq: 0s, normally up; run: log: (pid 1) 2s\nfail: redis: runsv not running\nnoise\n",
        );
        assert_eq!(
            services,
            vec![
                ("puma".into(), true),
                ("sidekiq".into(), false),
                ("redis".into(), false)
            ]
        );
    }

    #[test]
    fn a_deep_check_that_could_not_run_is_a_failure() {
        let check = check_deep(Some(
            &"bash: gitlab-rake: command not found\nglbox-exit: 127\n".to_string(),
        ));
        assert_eq!(check.kind, Kind::Wrong);
        assert!(check.evidence.contains("exit 127"));
        assert_eq!(
            check_deep(Some(&"ok ... yes\nglbox-exit: 0\n".to_string())).status,
            Status::Pass
        );
    }

    fn facts(verification: &str, dkim: &str) -> EmailFacts {
        EmailFacts {
            identity: Some(crate::email::identity::IdentityState {
                domain: "example.com".into(),
                verification: verification.into(),
                token: None,
                dkim_enabled: true,
                dkim_status: dkim.into(),
                dkim_tokens: Vec::new(),
                dkim_domain: "dkim.amazonses.com".into(),
            }),
            test_recipient: Some("me@example.org".into()),
            no_test_reason: "set email.test_recipient".into(),
        }
    }

    #[test]
    fn a_pending_identity_is_pending_and_a_failed_one_wrong() {
        let checks = check_email_identity(&facts("Pending", "Success"));
        assert_eq!(checks[0].status, Status::Pending);
        assert!(checks[0].evidence.contains("glbox email dns"));
        assert_eq!(checks[1].status, Status::Pass);
        let checks = check_email_identity(&facts("Failed", "Failed"));
        assert_eq!(checks[0].kind, Kind::Wrong);
        assert_eq!(checks[1].kind, Kind::Wrong);
        let none = EmailFacts {
            identity: None,
            ..facts("Success", "Success")
        };
        assert_eq!(check_email_identity(&none)[0].kind, Kind::Wrong);
    }

    #[test]
    fn the_test_mail_outcome_is_judged_with_a_hint() {
        let facts = facts("Success", "Success");
        assert_eq!(check_test_mail(None, &facts).status, Status::Skipped);
        let sent = check_test_mail(Some(&"glbox-exit: 0\n".to_string()), &facts);
        assert_eq!(sent.status, Status::Pass);
        assert!(sent.evidence.contains("me@example.org"));
        let refused = check_test_mail(
            Some(&"Net::SMTPAuthenticationError: 535 Authentication Credentials Invalid\nglbox-exit: 1\n".to_string()),
            &facts,
        );
        assert_eq!(refused.kind, Kind::Wrong);
        assert!(refused.evidence.contains("535"), "{refused:?}");
        assert!(refused.evidence.contains("glbox email rotate"));
    }

    #[test]
    fn unparseable_readiness_is_not_a_pass() {
        assert_eq!(failing_readiness("<html>"), None);
        let check = check_readiness(Some(&"200\n<html>".to_string()));
        assert_eq!(check.status, Status::Fail);
    }
}
