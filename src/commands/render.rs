//! `glbox render`: what glbox would send to the instance, for review.

use serde::Serialize;

use crate::app::{App, Needs};
use crate::cli::RenderWhat;
use crate::deploy::plan::Observed;
use crate::error::Result;
use crate::output::Report;
use crate::resources::Ctx;

/// The rendered file: text, whatever `--output` says.
#[derive(Serialize)]
#[serde(transparent)]
pub struct Rendered(String);

impl Report for Rendered {
    fn text(&self) -> String {
        self.0.clone()
    }

    fn text_only(&self) -> bool {
        true
    }
}

/// Renders against what AWS has: the data volume's id and the instance's
/// address. Before the first `up` creates them, placeholders stand in and
/// glbox says so.
pub async fn run(app: &App, what: RenderWhat) -> Result<Rendered> {
    let deployment = app.deployment(Needs::default()).await?;
    let ctx = deployment.ctx(app);
    let observed = crate::deploy::plan::observe(&ctx).await?;
    let volume_id = match observed.data_volumes.first() {
        Some(volume) => volume.id.clone(),
        None => {
            ctx.ui.warn("the data volume does not exist yet: `glbox up` creates it and puts its id where <data-volume-id> stands");
            "<data-volume-id>".to_string()
        }
    };
    let external_url = external_url(&ctx, &observed, what);
    let smtp_username = smtp_username(&ctx, &observed, what);
    let backup_bucket = crate::backup::bucket(&ctx).await?;
    let text = match what {
        RenderWhat::UserData => crate::userdata::render(ctx.settings, Some(&volume_id)),
        RenderWhat::Bootstrap => {
            crate::endpoint::Script::new(&ctx, &volume_id, &external_url, smtp_username.as_deref())
                .with_backups_to(backup_bucket)
                .render(ctx.settings)
        }
        RenderWhat::GitlabRb => crate::gitlab_rb::render(
            ctx.settings,
            &external_url,
            smtp_username.as_deref(),
            backup_bucket.as_deref(),
        ),
    };
    Ok(Rendered(text))
}

fn external_url(ctx: &Ctx<'_>, observed: &Observed, what: RenderWhat) -> String {
    let live = observed.live_instances();
    let instance = live.first();
    crate::endpoint::gitlab_url(
        ctx.settings,
        observed.addresses.first().map(|a| a.public_ip.as_str()),
        instance.and_then(|i| i.public_dns.as_deref()),
        instance.and_then(|i| i.public_ip.as_deref()),
    )
    .unwrap_or_else(|| {
        if matches!(what, RenderWhat::Bootstrap | RenderWhat::GitlabRb) {
            ctx.ui.warn("the instance has no address yet: `glbox up` puts it where <elastic-ip> stands (or set gitlab.external_url)");
        }
        "http://<elastic-ip>".to_string()
    })
}

fn smtp_username(ctx: &Ctx<'_>, observed: &Observed, what: RenderWhat) -> Option<String> {
    ctx.settings.email.as_ref().map(|_| {
        match &observed.email.credentials.current {
            Some(current) => current.access_key_id.clone(),
            None => {
                if what != RenderWhat::UserData {
                    ctx.ui.warn("the SMTP user does not exist yet: `glbox up` creates it and puts its name where <smtp-username> stands");
                }
                "<smtp-username>".to_string()
            }
        }
    })
}
