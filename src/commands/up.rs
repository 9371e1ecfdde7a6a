//! `glbox up`: a plan without the lease first, so an `up` with nothing to
//! do changes nothing at all (not even a lease); with changes, the lease,
//! then everything again under it (another run may have done the work
//! meanwhile).

use std::time::Duration;

use serde::Serialize;

use crate::app::{App, Needs};
use crate::cli::UpArgs;
use crate::deploy::apply::{self, Applied};
use crate::deploy::plan::{self, PlanReport};
use crate::email::identity::Observed as SesObserved;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::output::Report;
use crate::resources::{dns_record, Ctx};

/// How long `up --wait-email` waits for SES to see the DNS records.
const EMAIL_WAIT: Duration = Duration::from_secs(30 * 60);
/// How long `up` waits for public DNS to answer with the Elastic IP
/// before an install with Let's Encrypt (without a Route 53 zone).
const DNS_WAIT: Duration = Duration::from_secs(30 * 60);

#[derive(Serialize)]
pub struct UpReport {
    plan: PlanReport,
    applied: Option<Applied>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<crate::verify::Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<crate::email::Report>,
    /// The text form's lines beyond the JSON's facts.
    #[serde(skip)]
    summary: Summary,
    /// The checks could not run to the end.
    #[serde(skip)]
    verify_error: Option<Error>,
}

/// What the text form says.
enum Summary {
    /// Nothing to do; `email_verified` with `--wait-email`.
    UpToDate {
        deployment: String,
        region: String,
        email_verified: bool,
    },
    /// The lines after "is up", the checks' table and the advice.
    Applied { head: String, tail: String },
}

impl Report for UpReport {
    fn text(&self) -> String {
        match &self.summary {
            Summary::UpToDate {
                deployment,
                region,
                email_verified,
            } => {
                let mut out = format!(
                    "Deployment {deployment:?} in {region} is up to date: nothing to do.\n"
                );
                if *email_verified {
                    out.push_str("Email: SES has verified the domain and its DKIM records.\n");
                }
                out
            }
            Summary::Applied { head, tail } => {
                let table = self
                    .verify
                    .as_ref()
                    .map(crate::verify::table)
                    .unwrap_or_default();
                format!("{head}{table}{tail}")
            }
        }
    }

    fn outcome(self) -> Result<()> {
        match self.verify_error {
            Some(e) => Err(e),
            None if self.verify.as_ref().is_none_or(|r| r.healthy) => Ok(()),
            None => Err(Error::Unhealthy),
        }
    }
}

/// `None`: the first-run wizard wrote the configuration and ends the run.
pub async fn run(app: &App, args: &UpArgs) -> Result<Option<UpReport>> {
    let next = super::init::first_run(app, crate::wizard::Purpose::Up, false).await?;
    if next == crate::wizard::Next::Done {
        return Ok(None);
    }
    // Changes stop at a safe point, never in the middle of one.
    crate::checkpoint::install_interrupt_handler(app.ui.clone(), "glbox up");
    let mut deployment = app
        .deployment(Needs {
            email_for: args.wait_email.then_some("--wait-email"),
            ssh_cidrs: true,
        })
        .await?;
    deployment.settings.gitlab.replace_gitlab_rb = args.replace_gitlab_rb;
    let ctx = deployment.ctx(app);
    crate::secrets::warn_unstored(ctx.settings, ctx.ui);
    up(app, &ctx, args).await.map(Some)
}

async fn up(app: &App, ctx: &Ctx<'_>, args: &UpArgs) -> Result<UpReport> {
    let with_bootstrap = !args.no_bootstrap;
    let observed = plan::observe(ctx).await?;
    crate::resources::restore::refuse_unfinished(ctx, &observed.ledger).await?;
    // With Let's Encrypt put off, the plan (and the bootstrap's digest) is
    // for an install without it, so a repeated `up --no-wait-dns` is free.
    let deferred = dns_record::letsencrypt_deferred(
        ctx,
        &observed.addresses,
        with_bootstrap && args.no_wait_dns,
    )
    .await;
    let deferred_ctx = deferred.as_ref().map(|s| Ctx::new(ctx.aws, s, ctx.ui));
    let ctx = deferred_ctx.as_ref().unwrap_or(ctx);
    let plan = plan::make(ctx, &observed, with_bootstrap).await?;
    // A lease left by a crashed run is taken (and so broken) even when
    // there is nothing else to do.
    let lease_left = observed
        .parameters
        .contains(&crate::lease::parameter_name(&ctx.names));
    if plan.is_noop() && !lease_left {
        let planned = Planned {
            observed,
            plan,
            confirmed: None,
            letsencrypt_deferred: deferred.is_some(),
        };
        return up_planned(app, ctx, args, planned).await;
    }
    // Asked before the lease: a refusal changes nothing at all.
    let first = plan.report(ctx, &observed);
    plan::warn_foreign(ctx, &observed);
    if !plan.is_noop() {
        crate::quotas::check(ctx, &crate::quotas::box_needs(&plan)).await?;
        confirm_plan(app, &first)?;
    }
    let lease = crate::lease::acquire(ctx, "up").await?;
    let result = async {
        let observed = plan::observe(ctx).await?;
        let plan = plan::make(ctx, &observed, with_bootstrap).await?;
        let planned = Planned {
            observed,
            plan,
            confirmed: Some(&first),
            letsencrypt_deferred: deferred.is_some(),
        };
        up_planned(app, ctx, args, planned).await
    }
    .await;
    crate::lease::released(ctx, lease, result).await
}

fn confirm_plan(app: &App, report: &PlanReport) -> Result<()> {
    if app.preview_wanted() {
        print!("{}", super::plan::plan_text(report));
    }
    app.confirm("Apply these changes?", "applying this plan")
}

/// An `up`'s plan and what it was made from.
struct Planned<'r> {
    observed: plan::Observed,
    plan: plan::Plan,
    /// The plan the user agreed to before the lease, if asked.
    confirmed: Option<&'r PlanReport>,
    /// Let's Encrypt is put off until DNS points at the box.
    letsencrypt_deferred: bool,
}

async fn up_planned(
    app: &App,
    ctx: &Ctx<'_>,
    args: &UpArgs,
    planned: Planned<'_>,
) -> Result<UpReport> {
    let Planned {
        observed,
        plan,
        confirmed,
        letsencrypt_deferred,
    } = planned;
    let with_bootstrap = !args.no_bootstrap;
    let report = plan.report(ctx, &observed);
    let same = |c: &PlanReport| serde_json::to_value(c).ok() == serde_json::to_value(&report).ok();
    if confirmed.is_none() {
        plan::warn_foreign(ctx, &observed);
    }
    if plan.is_noop() {
        // Waiting for DNS is still worth doing when nothing else is.
        let ses = match args.wait_email {
            true => Some(crate::email::wait_verified(ctx, EMAIL_WAIT).await?),
            false => None,
        };
        return Ok(UpReport {
            plan: report,
            applied: None,
            verify: None,
            email: crate::email::report(ctx, &observed.email),
            summary: Summary::UpToDate {
                deployment: ctx.settings.name.clone(),
                region: ctx.settings.region.clone(),
                email_verified: ses.is_some(),
            },
            verify_error: None,
        });
    }
    // The plan asked about before the lease, unless the lease's wait
    // changed it (another run did part of the work): then ask again.
    if !confirmed.is_some_and(same) {
        confirm_plan(app, &report)?;
    }
    if crate::checkpoint::interrupted() {
        return Err(crate::checkpoint::stopped("planning (nothing was changed)"));
    }
    ctx.ui
        .start_phases(apply::phases(ctx.settings, with_bootstrap));
    let applied = apply::apply(ctx, &plan).await?;
    publish_dns_record(ctx, &applied, with_bootstrap).await?;
    let url = crate::endpoint::gitlab_url(
        ctx.settings,
        applied.elastic_ip.as_deref(),
        applied.public_dns.as_deref(),
        applied.public_ip.as_deref(),
    );
    let installed = match with_bootstrap {
        true => Some(install(ctx, &applied, url.clone()).await?),
        false => None,
    };
    let ses = email_state(ctx, args.wait_email).await?;
    let mut verify = None;
    let mut verify_error = None;
    if let Some((endpoint, transport)) = &installed {
        let facts = email_facts(ctx, ses.as_ref());
        ctx.ui
            .phase(crate::deploy::components::gitlab::VERIFY_PHASE);
        // Whatever the checks say, the summary of what exists comes first.
        match endpoint.verify(ctx, transport, facts.as_ref()).await {
            Ok(report) => verify = Some(report),
            Err(e) => verify_error = Some(e),
        }
    }
    if crate::email::rotation::old_keys_may_go(verify.as_ref()) {
        crate::email::finish(ctx, &plan.email).await?;
    }
    ctx.ui.end_phases();
    // What the email step made, read back (the plan's view is stale).
    let email = match (&ctx.settings.email, app.output) {
        (Some(_), crate::output::OutputFormat::Json) => {
            crate::email::report(ctx, &crate::email::observe(ctx).await?)
        }
        _ => None,
    };
    let summary = Summary::Applied {
        head: applied_text(
            ctx,
            &applied,
            url.as_deref(),
            with_bootstrap,
            letsencrypt_deferred,
        ),
        tail: advice_text(ctx, ses.as_ref()),
    };
    Ok(UpReport {
        plan: report,
        applied: Some(applied),
        verify,
        email,
        summary,
        verify_error,
    })
}

/// A record to publish by hand is said; with Let's Encrypt, up waits
/// until public DNS answers with it.
async fn publish_dns_record(ctx: &Ctx<'_>, applied: &Applied, with_bootstrap: bool) -> Result<()> {
    let Some(record) = applied
        .dns_record
        .as_ref()
        .filter(|r| r.managed_by == "manual")
    else {
        return Ok(());
    };
    ctx.ui.info(&format!(
        "publish this DNS record for GitLab's name (name, type, value): {} {} {}\n  as a zone-file line: {}",
        record.name,
        record.kind,
        record.value,
        record.zone_line()
    ));
    if with_bootstrap && dns_record::needs_public_dns(ctx.settings) {
        dns_record::wait_for_public_dns(ctx, record, DNS_WAIT).await?;
    }
    Ok(())
}

/// GitLab installed on the box just applied, and how to reach it.
async fn install(
    ctx: &Ctx<'_>,
    applied: &Applied,
    url: Option<String>,
) -> Result<(Endpoint, crate::remote::Transport)> {
    let url = url.ok_or_else(|| {
        Error::Refused(format!(
            "instance {} has no public address for GitLab's URL\n  fix: set gitlab.external_url, or network.elastic_ip = true",
            applied.instance_id
        ))
    })?;
    let endpoint = Endpoint {
        instance: applied.instance.clone(),
        address: applied.public_ip.clone(),
        data_volume_id: Some(applied.data_volume_id.clone()),
        url,
    };
    ctx.ui.phase(crate::deploy::components::gitlab::PHASE);
    endpoint
        .install(
            ctx,
            &applied.data_volume_id,
            applied.smtp_username.as_deref(),
        )
        .await?;
    crate::checkpoint::reached("bootstrap").await?;
    let transport = endpoint.transport(ctx).await?;
    Ok((endpoint, transport))
}

/// SES's view of the email domain after `up` changed things: waited for
/// with `--wait-email`, else read once. `None` with email off.
async fn email_state(ctx: &Ctx<'_>, wait: bool) -> Result<Option<SesObserved>> {
    let Some(email) = &ctx.settings.email else {
        return Ok(None);
    };
    if wait {
        return Ok(Some(crate::email::wait_verified(ctx, EMAIL_WAIT).await?));
    }
    Ok(Some(crate::email::identity::observe(ctx, email).await?))
}

fn email_facts(ctx: &Ctx<'_>, ses: Option<&SesObserved>) -> Option<crate::verify::EmailFacts> {
    let email = ctx.settings.email.as_ref()?;
    Some(crate::email::facts(email, ses?, true))
}

/// "is up" and what was made, up to the checks' table.
fn applied_text(
    ctx: &Ctx<'_>,
    applied: &Applied,
    url: Option<&str>,
    with_bootstrap: bool,
    letsencrypt_deferred: bool,
) -> String {
    let mut lines = vec![
        format!(
            "Deployment {:?} is up in {}.",
            ctx.settings.name, ctx.settings.region
        ),
        format!("  instance:    {}", applied.instance_id),
        format!("  data volume: {}", applied.data_volume_id),
    ];
    if let Some(ip) = &applied.public_ip {
        lines.push(format!("  public IP:   {ip}"));
    }
    if let Some(dns) = &applied.public_dns {
        lines.push(format!("  public DNS:  {dns}"));
    }
    if let Some(record) = &applied.dns_record {
        let how = match record.managed_by {
            "route53" => "in Route 53",
            _ => "publish it yourself",
        };
        lines.push(format!(
            "  DNS record:  {} {} {} ({how})",
            record.name, record.kind, record.value
        ));
    }
    if letsencrypt_deferred {
        lines.push("  HTTPS:       Let's Encrypt is off until DNS points at the box; run glbox up again then".into());
    }
    if with_bootstrap {
        if let Some(url) = url {
            lines.push(format!("  GitLab:      {url} (user root)"));
        }
        lines.push("  password:    glbox status --show-password".into());
    }
    if let Some(email) = &ctx.settings.email {
        lines.push(format!(
            "  email:       from {} through {}:{}",
            email.from,
            email.smtp_host(),
            email.port
        ));
    }
    lines.push(format!("  shell:       {}", shell_command(ctx, applied)));
    lines.push(format!(
        "  cost:        {} (glbox plan itemizes it)",
        crate::cost::estimate(ctx.settings).monthly_summary()
    ));
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The email advice and the way down, after the checks' table.
fn advice_text(ctx: &Ctx<'_>, ses: Option<&SesObserved>) -> String {
    let advice = match (&ctx.settings.email, ses) {
        (Some(email), Some(ses)) => crate::email::advice(email, ses),
        _ => Vec::new(),
    };
    let mut out: String = advice.iter().map(|l| format!("Email: {l}\n")).collect();
    out.push_str("Tear down with: glbox down\n");
    out
}

/// The command that opens a shell on the box.
fn shell_command(ctx: &Ctx<'_>, applied: &Applied) -> String {
    match ctx.settings.ssh_access() {
        None => format!(
            "aws ssm start-session --region {} --target {}",
            ctx.settings.region, applied.instance_id
        ),
        Some(ssh) => {
            let host = ctx
                .settings
                .remote_host
                .clone()
                .or_else(|| applied.public_ip.clone())
                .unwrap_or_else(|| "<address>".into());
            let user = ssh.user.clone().unwrap_or_else(|| {
                match ctx.settings.os {
                    crate::config::Os::Ubuntu2404 => "ubuntu",
                    crate::config::Os::Al2023 => "ec2-user",
                }
                .to_string()
            });
            let key = match &ssh.key {
                crate::config::SshKeySource::Generated => {
                    crate::paths::generated_key(&ctx.settings.name)
                }
                crate::config::SshKeySource::File { path, .. } => path.with_extension(""),
            };
            format!(
                "ssh -i {} -p {} {user}@{host}",
                key.display(),
                ctx.settings.remote_port
            )
        }
    }
}
