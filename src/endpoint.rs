//! "This box": the instance, the address to reach it on, its data volume
//! and the URL GitLab answers on. The one place that says which URL GitLab
//! is at, that fills in the bootstrap script's AWS values, and that
//! installs GitLab on a box and checks it (for `up`, `email rotate` and
//! every lab seat).

use std::future::Future;

use crate::bootstrap::Target;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::remote::Transport;
use crate::resources::instance::Instance;
use crate::resources::Ctx;
use crate::verify::EmailFacts;

/// The URL GitLab answers on: the configured one, else `http://` and the
/// Elastic IP (stable), else the instance's public name, else its public
/// address. `None` when the box has no public address at all.
pub fn gitlab_url(
    settings: &Settings,
    elastic_ip: Option<&str>,
    public_dns: Option<&str>,
    public_ip: Option<&str>,
) -> Option<String> {
    if let Some(url) = &settings.gitlab.external_url {
        return Some(url.clone());
    }
    elastic_ip
        .or(public_dns)
        .or(public_ip)
        .map(|host| format!("http://{host}"))
}

/// The values of the bootstrap script that only AWS knows, owned, so the
/// script's [`Target`] is built in one place.
pub struct Script {
    data_volume_id: String,
    external_url: String,
    smtp_username: Option<String>,
    root_password_parameter: String,
    backup_bucket: Option<String>,
}

impl Script {
    /// `ctx` names the box (a deployment or one lab seat): its root
    /// password parameter comes from it.
    pub fn new(
        ctx: &Ctx<'_>,
        data_volume_id: &str,
        external_url: &str,
        smtp_username: Option<&str>,
    ) -> Script {
        Script {
            data_volume_id: data_volume_id.to_string(),
            external_url: external_url.to_string(),
            smtp_username: smtp_username.map(str::to_string),
            root_password_parameter: crate::resources::parameters::root_password_name(ctx),
            backup_bucket: None,
        }
    }

    /// GitLab's backups go to `bucket` (`backup.s3` on; see
    /// [`crate::backup::bucket`]).
    pub fn with_backups_to(mut self, bucket: Option<String>) -> Script {
        self.backup_bucket = bucket;
        self
    }

    pub fn target(&self) -> Target<'_> {
        Target {
            data_volume_id: &self.data_volume_id,
            external_url: &self.external_url,
            smtp_username: self.smtp_username.as_deref(),
            root_password_parameter: &self.root_password_parameter,
            backup_bucket: self.backup_bucket.as_deref(),
        }
    }

    /// The script's text, as the box gets it.
    pub fn render(&self, settings: &Settings) -> String {
        crate::bootstrap::render(settings, &self.target())
    }
}

/// One box GitLab runs on, and how to reach it.
pub struct Endpoint {
    pub instance: Instance,
    /// The public address SSH connects to (the Elastic IP first).
    pub address: Option<String>,
    /// The data volume attached to the instance, if one is.
    pub data_volume_id: Option<String>,
    pub url: String,
}

/// The deployment's running instance and how to reach it, from what was
/// observed of its instances, data volumes and addresses.
pub fn running(
    ctx: &Ctx<'_>,
    instances: &[Instance],
    data_volumes: &[crate::resources::data_volume::Volume],
    addresses: &[crate::resources::elastic_ip::Address],
) -> Result<Endpoint> {
    let holder = data_volumes.iter().find_map(|v| v.attached_to.as_deref());
    let (primary, _) = crate::resources::instance::pick_primary(
        crate::resources::instance::live(instances),
        holder,
    );
    let instance = primary.filter(|i| i.state == "running").ok_or_else(|| {
        Error::Unverifiable("the deployment has no running instance: run glbox up".into())
    })?;
    let elastic_ip = addresses
        .iter()
        .find(|a| a.instance_id.as_deref() == Some(instance.id.as_str()))
        .map(|a| a.public_ip.clone());
    let url = gitlab_url(
        ctx.settings,
        elastic_ip.as_deref(),
        instance.public_dns.as_deref(),
        instance.public_ip.as_deref(),
    )
    .ok_or_else(|| {
        Error::Unverifiable("the instance has no address: set gitlab.external_url".into())
    })?;
    let data_volume_id = data_volumes
        .iter()
        .find(|v| v.attached_to.as_deref() == Some(instance.id.as_str()))
        .map(|v| v.id.clone());
    Ok(Endpoint {
        address: elastic_ip.or_else(|| instance.public_ip.clone()),
        instance,
        url,
        data_volume_id,
    })
}

impl Endpoint {
    /// Brings GitLab on the box to the configuration (nothing when the box
    /// already ran this very script).
    pub async fn install(
        &self,
        ctx: &Ctx<'_>,
        data_volume_id: &str,
        smtp_username: Option<&str>,
    ) -> Result<()> {
        let script = Script::new(ctx, data_volume_id, &self.url, smtp_username)
            .with_backups_to(crate::backup::bucket(ctx).await?);
        crate::bootstrap::apply(
            ctx,
            &self.instance,
            self.address.as_deref(),
            &script.target(),
        )
        .await
    }

    /// How commands reach the box (SSM or SSH).
    pub async fn transport(&self, ctx: &Ctx<'_>) -> Result<Transport> {
        Transport::for_instance(ctx, &self.instance.id, self.address.as_deref()).await
    }

    /// The health checks of `up` (not `--deep`), within the configured time.
    pub async fn verify(
        &self,
        ctx: &Ctx<'_>,
        transport: &Transport,
        email: Option<&EmailFacts>,
    ) -> Result<crate::verify::Report> {
        crate::verify::run(
            ctx,
            transport,
            &self.url,
            ctx.settings.verify_timeout,
            false,
            email,
        )
        .await
    }

    /// Installs, then checks. `email` is read once the box is reachable
    /// (what SES says is only worth asking then).
    pub async fn install_and_verify(
        &self,
        ctx: &Ctx<'_>,
        data_volume_id: &str,
        smtp_username: Option<&str>,
        email: impl Future<Output = Result<Option<EmailFacts>>>,
    ) -> Result<crate::verify::Report> {
        self.install(ctx, data_volume_id, smtp_username).await?;
        let transport = self.transport(ctx).await?;
        let facts = email.await?;
        self.verify(ctx, &transport, facts.as_ref()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_prefers_configuration_then_the_elastic_ip() {
        let mut settings = crate::test_support::settings("trial");
        let dns = Some("ec2-x.compute.amazonaws.com");
        assert_eq!(
            gitlab_url(&settings, Some("198.51.100.1"), dns, None).as_deref(),
            Some("http://198.51.100.1")
        );
        assert_eq!(
            gitlab_url(&settings, None, dns, Some("203.0.113.9")).as_deref(),
            Some("http://ec2-x.compute.amazonaws.com")
        );
        assert_eq!(
            gitlab_url(&settings, None, None, Some("203.0.113.9")).as_deref(),
            Some("http://203.0.113.9")
        );
        assert_eq!(gitlab_url(&settings, None, None, None), None);
        settings.gitlab.external_url = Some("https://git.example.com".into());
        assert_eq!(
            gitlab_url(&settings, Some("198.51.100.1"), None, None).as_deref(),
            Some("https://git.example.com")
        );
    }
}
