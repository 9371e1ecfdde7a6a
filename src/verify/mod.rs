//! Health verification on the box: `cloud-init/verify.sh` gathers the
//! evidence (health endpoints on 127.0.0.1, `gitlab-ctl status`, the
//! installed version, the data mount, swap), and the parsers here judge it.
//!
//! Each check ends as pass, fail or skipped. While GitLab boots, failures
//! that mean "not yet" (nginx's 502, a refused connection, readiness still
//! failing, services still starting) are retried until the deadline; ones
//! that mean "wrong" (the allowlist's 404, a missing data mount, no swap, a
//! different version) stop at once with the likely cause.

use std::time::Duration;

use serde::Serialize;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::remote::Transport;
use crate::resources::Ctx;

mod evidence;
use evidence::{check_email_identity, check_test_mail, evaluate, sections};

const SCRIPT: &str = include_str!("../../cloud-init/verify.sh");
const ROUND_TIMEOUT: Duration = Duration::from_secs(180);
const DEEP_ROUND_TIMEOUT: Duration = Duration::from_secs(1200);
const PAUSE_BETWEEN_ROUNDS: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skipped,
    /// Waiting on something outside the box (DNS for the SES identity):
    /// reported, not counted as unhealthy.
    Pending,
    /// Worth knowing, not a failure of GitLab (gitlab.rb changed by hand).
    Warn,
}

/// How a failing check should be treated while waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Done,
    NotYet,
    Wrong,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub evidence: String,
    #[serde(skip)]
    kind: Kind,
}

impl Check {
    fn pass(name: &'static str, evidence: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Pass,
            evidence: evidence.into(),
            kind: Kind::Done,
        }
    }

    fn not_yet(name: &'static str, evidence: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Fail,
            evidence: evidence.into(),
            kind: Kind::NotYet,
        }
    }

    fn wrong(name: &'static str, evidence: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Fail,
            evidence: evidence.into(),
            kind: Kind::Wrong,
        }
    }

    fn skipped(name: &'static str, evidence: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Skipped,
            evidence: evidence.into(),
            kind: Kind::Done,
        }
    }

    fn pending(name: &'static str, evidence: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Pending,
            evidence: evidence.into(),
            kind: Kind::Done,
        }
    }

    fn warn(name: &'static str, evidence: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Warn,
            evidence: evidence.into(),
            kind: Kind::Done,
        }
    }
}

/// The email facts the checks need, when email is on.
#[derive(Debug, Clone)]
pub struct EmailFacts {
    /// What SES reports for the domain (`None`: no identity).
    pub identity: Option<crate::email::identity::IdentityState>,
    /// Send GitLab's test mail here in the last round.
    pub test_recipient: Option<String>,
    /// Why no test mail is sent, when none is.
    pub no_test_reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub healthy: bool,
    pub checks: Vec<Check>,
}

/// What the last round adds to the usual checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras<'a> {
    /// `gitlab-rake gitlab:check`.
    pub deep: bool,
    /// A test mail through GitLab to this (plain, validated) address.
    pub test_mail: Option<&'a str>,
}

/// The verify script with the deployment's values in front of it.
pub fn render(settings: &Settings, external_url: &str, extras: Extras<'_>) -> String {
    let (shebang, body) = SCRIPT.split_once('\n').unwrap_or(("#!/bin/bash", SCRIPT));
    format!(
        "{shebang}\nGLBOX_EXTERNAL_URL='{external_url}'\nGLBOX_EDITION='{}'\nGLBOX_OS='{}'\nGLBOX_DEEP='{}'\nGLBOX_TEST_MAIL='{}'\n{}{body}",
        settings.gitlab.edition.as_str(),
        settings.os.as_str(),
        u8::from(extras.deep),
        extras.test_mail.unwrap_or(""),
        extra_config_functions()
    )
}

/// `cloud-init/extra-config.sh` without its shebang, for a script that
/// asks how gitlab.rb stands.
fn extra_config_functions() -> &'static str {
    crate::bootstrap::without_shebang(crate::bootstrap::EXTRA_CONFIG_FUNCTIONS)
}

/// How gitlab.rb on the box stands (`gitlab_rb_state`: as-written,
/// changed, unrecorded), for `plan`: one short read-only script.
pub fn gitlab_rb_state_script() -> String {
    format!("#!/bin/bash\n{}gitlab_rb_state\n", extra_config_functions())
}

/// What `plan` and `verify` say about a gitlab.rb changed on the box.
pub const HAND_EDIT_NOTE: &str = "gitlab.rb was changed on the box; put it in extra_config or it will be replaced (the next glbox up that changes GitLab's configuration stops until then; glbox up --replace-gitlab-rb replaces it and keeps a copy beside it)";

/// Public DNS answers the external URL's name with another address than
/// the box's (or none): Let's Encrypt cannot issue or renew its
/// certificate, and users do not reach this box.
pub fn add_dns_mismatch(report: &mut Report, evidence: &str) {
    report.checks.push(Check::wrong(
        "dns",
        format!("DNS does not point at this box: {evidence}"),
    ));
    report.healthy = false;
}

/// The sign-in page through the URL users will use.
async fn outside(url: &str) -> Check {
    const NAME: &str = "sign_in_page";
    match crate::probe::sign_in_page(url).await {
        crate::probe::Finding::Ok(evidence) => Check::pass(NAME, evidence),
        crate::probe::Finding::NotYet(evidence) => {
            Check::not_yet(NAME, format!("{url}: {evidence}"))
        }
        crate::probe::Finding::Wrong(evidence) => Check::wrong(NAME, format!("{url}: {evidence}")),
    }
}

/// Runs the checks through `transport` until they pass, one is wrong, or
/// `deadline` passes. `Err` only when the box could not be asked at all.
pub async fn run(
    ctx: &Ctx<'_>,
    transport: &Transport,
    external_url: &str,
    deadline: Duration,
    deep: bool,
    email: Option<&EmailFacts>,
) -> Result<Report> {
    let started = crate::clock::Stopwatch::start();
    // gitlab:check takes minutes and fails while GitLab boots, and a test
    // mail is only worth sending to a running GitLab: they run once, in a
    // last round, after everything else passed.
    let wanted = Extras {
        deep,
        test_mail: email.and_then(|e| e.test_recipient.as_deref()),
    };
    let mut last_round = false;
    loop {
        let extras = if last_round {
            wanted
        } else {
            Extras::default()
        };
        let script = render(ctx.settings, external_url, extras);
        let round_timeout = if last_round {
            DEEP_ROUND_TIMEOUT
        } else {
            ROUND_TIMEOUT
        };
        let outcome = transport
            .run(ctx, "health checks", &script, round_timeout)
            .await
            .map_err(|e| Error::Unverifiable(e.to_string()))?;
        if !outcome.output.contains("=== end") {
            return Err(Error::Unverifiable(format!(
                "the check script did not finish ({}): {}",
                outcome.status,
                outcome.tail(5)
            )));
        }
        let mut checks =
            vec![outside(ctx.settings.verify_url.as_deref().unwrap_or(external_url)).await];
        checks.extend(evaluate(ctx.settings, &outcome.output));
        if let Some(facts) = email {
            checks.extend(check_email_identity(facts));
            checks.push(check_test_mail(
                sections(&outcome.output).get("test-mail"),
                facts,
            ));
        }
        let wrong = checks.iter().any(|c| c.kind == Kind::Wrong);
        let waiting: Vec<&Check> = checks.iter().filter(|c| c.kind == Kind::NotYet).collect();
        let extras_due = wanted.deep || wanted.test_mail.is_some();
        if extras_due && !last_round && !wrong && waiting.is_empty() {
            last_round = true;
            continue;
        }
        // The last round's extras (a test mail) are never repeated.
        if wrong || waiting.is_empty() || last_round || started.elapsed() >= deadline {
            return Ok(Report {
                healthy: checks.iter().all(|c| c.status != Status::Fail),
                checks,
            });
        }
        ctx.ui.info(&format!(
            "GitLab is not ready yet ({}: {}); checking again in {}s (gave it {}s of {}s)",
            waiting[0].name,
            waiting[0].evidence,
            PAUSE_BETWEEN_ROUNDS.as_secs(),
            started.elapsed().as_secs(),
            deadline.as_secs()
        ));
        crate::clock::sleep(PAUSE_BETWEEN_ROUNDS).await;
    }
}

/// The report as a table for people. A pending email identity does not
/// make GitLab unhealthy, but it is said.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    for check in &report.checks {
        let status = match check.status {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Skipped => "skip",
            Status::Pending => "wait",
            Status::Warn => "warn",
        };
        out.push_str(&format!(
            "  {status:<5} {:<13} {}\n",
            check.name, check.evidence
        ));
    }
    out.push_str(if report.healthy {
        "GitLab is healthy.\n"
    } else {
        "GitLab is NOT healthy.\n"
    });
    out
}
