//! `glbox verify`: exit 0 healthy, 1 unhealthy, 2 could not check.

use serde::Serialize;

use crate::app::{App, Needs};
use crate::cli::VerifyArgs;
use crate::error::{Error, Result};
use crate::output::Report;
use crate::resources::dns_record;

#[derive(Serialize)]
#[serde(transparent)]
pub struct VerifyReport(crate::verify::Report);

impl Report for VerifyReport {
    fn text(&self) -> String {
        crate::verify::table(&self.0)
    }

    fn outcome(self) -> Result<()> {
        if self.0.healthy {
            Ok(())
        } else {
            Err(Error::Unhealthy)
        }
    }
}

pub async fn run(app: &App, args: &VerifyArgs) -> Result<VerifyReport> {
    let unverifiable = |e: Error| match e {
        Error::Unverifiable(_) => e,
        other => Error::Unverifiable(other.to_string()),
    };
    let deployment = app.deployment(Needs::default()).await?;
    let ctx = deployment.ctx(app);
    let observed = crate::deploy::plan::observe(&ctx)
        .await
        .map_err(unverifiable)?;
    super::warn_email_problem(&ctx, &observed);
    super::backups::warn_stale(&ctx, &observed)
        .await
        .map_err(unverifiable)?;
    let endpoint = crate::endpoint::running(
        &ctx,
        &observed.instances,
        &observed.data_volumes,
        &observed.addresses,
    )?;
    let transport = endpoint.transport(&ctx).await.map_err(unverifiable)?;
    transport.wait_ready(&ctx).await.map_err(unverifiable)?;
    // The test mail only with --deep: a plain verify may run from cron.
    let facts = ctx.settings.email.as_ref().and_then(|email| {
        let ses = observed.email.ses.as_ref()?;
        Some(crate::email::facts(email, ses, args.deep))
    });
    let mut report = crate::verify::run(
        &ctx,
        &transport,
        &endpoint.url,
        ctx.settings.verify_timeout,
        args.deep,
        facts.as_ref(),
    )
    .await?;
    dns_record::check_dns(
        &ctx,
        observed.dns_record.as_ref(),
        endpoint.address.as_deref(),
        &mut report,
    )
    .await;
    Ok(VerifyReport(report))
}
