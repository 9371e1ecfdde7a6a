//! `glbox email rotate`: a new key and password; the box is brought to
//! them (then, with a test recipient, a test mail proves they work); only
//! then is the old key deleted, so mail never stops in between. When that
//! may happen is [`crate::email::rotation`]'s to say.

use serde::Serialize;

use crate::app::{App, Needs};
use crate::deploy::plan::{self, Observed};
use crate::email::credentials;
use crate::email::rotation::{self, Rotation};
use crate::error::{Error, Result};
use crate::output::Report;
use crate::resources::Ctx;

#[derive(Serialize)]
pub struct RotateReport {
    new_access_key_id: String,
    deleted_access_key_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<crate::verify::Report>,
}

impl Report for RotateReport {
    fn text(&self) -> String {
        let mut out = self
            .verify
            .as_ref()
            .map(crate::verify::table)
            .unwrap_or_default();
        out.push_str(&format!(
            "SMTP key rotated: GitLab uses {}; deleted {}.\n",
            self.new_access_key_id,
            if self.deleted_access_key_ids.is_empty() {
                "no old key".to_string()
            } else {
                self.deleted_access_key_ids.join(", ")
            }
        ));
        out
    }
}

pub async fn run(app: &App) -> Result<RotateReport> {
    crate::checkpoint::install_interrupt_handler(app.ui.clone(), "glbox up");
    let deployment = app
        .deployment(Needs {
            email_for: Some("glbox email rotate"),
            ..Needs::default()
        })
        .await?;
    let ctx = deployment.ctx(app);
    let observed = plan::observe(&ctx).await?;
    let rotation = Rotation::start(&ctx, &observed.email.credentials)?;
    rotation::refuse_waiting_changes(plan::make(&ctx, &observed, true).await?.is_noop())?;
    if app.preview_wanted() {
        println!(
            "Rotating the SMTP key of {}: a new access key, GitLab updated, then {} deleted.",
            rotation.user,
            if rotation.old.is_empty() {
                "nothing".to_string()
            } else {
                rotation.old.join(", ")
            }
        );
    }
    app.confirm("Rotate the SMTP key?", "rotating the SMTP key")?;
    // The lease after the question (a refusal changes nothing); the key
    // checks above are made again under it.
    let lease = crate::lease::acquire(&ctx, "email rotate").await?;
    let result = async {
        let observed = plan::observe(&ctx).await?;
        rotation.check_unchanged(&observed.email.credentials)?;
        rotate(&ctx, &rotation, &observed).await
    }
    .await;
    crate::lease::released(&ctx, lease, result).await
}

/// Under the lease: the new key, the box brought to it, the old key gone.
async fn rotate(ctx: &Ctx<'_>, rotation: &Rotation, observed: &Observed) -> Result<RotateReport> {
    let email = ctx.settings.email.as_ref().expect("checked before AWS");
    let stored = observed
        .parameters
        .contains(&credentials::password_parameter(ctx));
    let new = credentials::new_key(ctx, email, &rotation.user, stored).await?;
    let mut verify = None;
    let mut keep_old = false;
    match crate::endpoint::running(
        ctx,
        &observed.instances,
        &observed.data_volumes,
        &observed.addresses,
    ) {
        Ok(endpoint) => {
            let data_volume_id = endpoint.data_volume_id.as_deref().ok_or_else(|| {
                Error::Refused(format!(
                    "the instance {} has no data volume attached\n  fix: run glbox up, then glbox email rotate",
                    endpoint.instance.id
                ))
            })?;
            let facts = async {
                let ses = crate::email::identity::observe(ctx, email).await?;
                Ok(Some(crate::email::facts(email, &ses, true)))
            };
            let report = endpoint
                .install_and_verify(ctx, data_volume_id, Some(&new.access_key_id), facts)
                .await?;
            if !report.healthy {
                print!("{}", crate::verify::table(&report));
                return Err(Error::Refused(format!(
                    "GitLab is not healthy with the new key {}; the old key{} kept so you can look into it\n  fix: correct the cause above, then run glbox up (it deletes the old key once GitLab is updated)",
                    new.access_key_id,
                    if rotation.old.len() == 1 { " is" } else { "s are" }
                )));
            }
            verify = Some(report);
        }
        Err(_) if !observed.live_instances().is_empty() => {
            // A stopped box still has the old key: it keeps working until
            // `up` brings the box to the new one (and deletes the old).
            ctx.ui.warn("the deployment's instance is not running: glbox up starts it, gives it the new key, and then deletes the old key");
            keep_old = true;
        }
        Err(_) => ctx
            .ui
            .warn("the deployment has no instance: it gets the new key at the next glbox up"),
    }
    let now = credentials::observe(ctx).await?;
    let retired = rotation.to_retire(&new.access_key_id, keep_old, &now);
    credentials::retire(ctx, &retired).await?;
    Ok(RotateReport {
        new_access_key_id: new.access_key_id,
        deleted_access_key_ids: retired,
        verify,
    })
}
