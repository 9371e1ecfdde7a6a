//! `glbox email dns`: the records SES needs, from what SES reports now.

use serde::Serialize;

use crate::app::{App, Needs};
use crate::email::dns::{self, Record};
use crate::email::identity::IdentityState;
use crate::error::{Error, Result};
use crate::output::Report;

#[derive(Serialize)]
#[serde(transparent)]
pub struct DnsReport {
    records: Vec<Record>,
    #[serde(skip)]
    zone_file: bool,
    #[serde(skip)]
    domain: String,
    #[serde(skip)]
    ses_region: String,
    #[serde(skip)]
    identity: IdentityState,
}

impl Report for DnsReport {
    fn text(&self) -> String {
        if self.zone_file {
            return dns::zone_file(&self.records);
        }
        format!(
            "DNS records for {} (SES {}: verification {}, DKIM {}):\n{}As zone-file lines: glbox email dns --zone-file\n",
            self.domain,
            self.ses_region,
            self.identity.verification.to_lowercase(),
            self.identity.dkim_status.to_lowercase(),
            dns::table(&self.records)
        )
    }
}

pub async fn run(app: &App, zone_file: bool) -> Result<DnsReport> {
    let deployment = app
        .deployment(Needs {
            email_for: Some("glbox email dns"),
            ..Needs::default()
        })
        .await?;
    let ctx = deployment.ctx(app);
    let email = ctx.settings.email.as_ref().expect("checked before AWS");
    let ses = crate::email::identity::observe(&ctx, email).await?;
    let identity = ses.identity.ok_or_else(|| {
        Error::Refused(format!(
            "SES ({}) has no identity for {} yet, so there are no records to publish\n  fix: run glbox up (it creates the identity), then glbox email dns",
            email.ses_region, email.domain
        ))
    })?;
    Ok(DnsReport {
        records: dns::records(&identity),
        zone_file,
        domain: email.domain.clone(),
        ses_region: email.ses_region.clone(),
        identity,
    })
}
