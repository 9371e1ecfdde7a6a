//! `/etc/gitlab/gitlab.rb` as glbox writes it: rendered from the settings,
//! the same text on every run, so the bootstrap reconfigures GitLab only
//! when the configuration really changed.

use crate::config::Settings;

/// The file the email settings go to (written by the email feature); the
/// main file includes it when it exists.
pub const EMAIL_INCLUDE: &str = "/etc/gitlab/glbox-email.rb";

/// The URL GitLab answers on: the configured one, else `http://` and the
/// Elastic IP (stable), else the instance's public name or address.
pub fn external_url(
    settings: &Settings,
    elastic_ip: Option<&str>,
    instance_host: Option<&str>,
) -> Option<String> {
    if let Some(url) = &settings.gitlab.external_url {
        return Some(url.clone());
    }
    elastic_ip
        .or(instance_host)
        .map(|host| format!("http://{host}"))
}

/// Renders gitlab.rb for `external_url` (already resolved: configured, or
/// the instance's address).
pub fn render(settings: &Settings, external_url: &str) -> String {
    let gitlab = &settings.gitlab;
    let mut out = format!(
        "# Written by glbox for deployment \"{name}\": `glbox up` replaces this file.\n\
         # Change glbox.toml instead, then run `glbox up`.\n\n\
         external_url '{external_url}'\n\n",
        name = settings.name
    );
    if gitlab.letsencrypt {
        out.push_str("letsencrypt['enable'] = true\nletsencrypt['auto_renew'] = true\n");
        if let Some(email) = &gitlab.root_email {
            out.push_str(&format!("letsencrypt['contact_emails'] = ['{email}']\n"));
        }
    } else {
        out.push_str("letsencrypt['enable'] = false\n");
    }
    out.push_str(
        "\n# GitLab's data lives on the separate EBS volume: refuse to start\n\
         # services when it is not mounted, instead of writing to the root disk.\n\
         high_availability['mountpoint'] = '/var/opt/gitlab'\n\n\
         # Health endpoints answer only on the box itself; glbox checks them\n\
         # there (through SSM or SSH), so they need not be open to the internet.\n\
         gitlab_rails['monitoring_whitelist'] = ['127.0.0.0/8', '::1/128']\n\n",
    );
    out.push_str(&format!(
        "# Outbound email settings, when glbox manages them.\n\
         from_file '{EMAIL_INCLUDE}' if File.exist?('{EMAIL_INCLUDE}')\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_required_settings() {
        let settings = crate::test_support::settings("trial");
        let rb = render(&settings, "http://203.0.113.7");
        assert!(rb.contains("external_url 'http://203.0.113.7'\n"));
        assert!(rb.contains("letsencrypt['enable'] = false\n"));
        assert!(rb.contains("high_availability['mountpoint'] = '/var/opt/gitlab'\n"));
        assert!(rb.contains("gitlab_rails['monitoring_whitelist'] = ['127.0.0.0/8', '::1/128']\n"));
        assert!(rb.contains(&format!("from_file '{EMAIL_INCLUDE}'")));
        assert!(!rb.contains("git_data_dirs"), "removed in GitLab 18.0");
        assert_eq!(rb, render(&settings, "http://203.0.113.7"), "stable text");
    }

    #[test]
    fn the_external_url_prefers_configuration_then_the_elastic_ip() {
        let mut settings = crate::test_support::settings("trial");
        assert_eq!(
            external_url(
                &settings,
                Some("198.51.100.1"),
                Some("ec2-x.compute.amazonaws.com")
            )
            .as_deref(),
            Some("http://198.51.100.1")
        );
        assert_eq!(
            external_url(&settings, None, Some("ec2-x.compute.amazonaws.com")).as_deref(),
            Some("http://ec2-x.compute.amazonaws.com")
        );
        assert_eq!(external_url(&settings, None, None), None);
        settings.gitlab.external_url = Some("https://git.example.com".into());
        assert_eq!(
            external_url(&settings, Some("198.51.100.1"), None).as_deref(),
            Some("https://git.example.com")
        );
    }

    #[test]
    fn letsencrypt_gets_contact_and_renewal() {
        let mut settings = crate::test_support::settings("trial");
        settings.gitlab.letsencrypt = true;
        settings.gitlab.root_email = Some("admin@example.com".into());
        let rb = render(&settings, "https://git.example.com");
        assert!(rb.contains("letsencrypt['enable'] = true\n"));
        assert!(rb.contains("letsencrypt['contact_emails'] = ['admin@example.com']\n"));
    }
}
