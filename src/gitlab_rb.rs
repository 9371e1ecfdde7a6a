//! `/etc/gitlab/gitlab.rb` as glbox writes it: rendered from the settings,
//! the same text on every run, so the bootstrap reconfigures GitLab only
//! when the configuration really changed.

use crate::config::{EmailSettings, Settings};

/// Where the bootstrap writes each secret of `glbox secret set` on the box
/// (one 0600 file per name in a 0700 folder), for `gitlab.extra_config` to
/// read: `File.read('/etc/gitlab/glbox-secrets/<name>')`.
pub const SECRETS_DIR: &str = "/etc/gitlab/glbox-secrets";

/// The file the bootstrap writes on the box with the SMTP password it reads
/// from SSM (mode 0600): the password never travels in what glbox sends.
pub const SMTP_PASSWORD_INCLUDE: &str = "/etc/gitlab/glbox-smtp-password.rb";

/// A Ruby single-quoted string literal: inside one, only `\\` and `\'` are
/// escapes, so escaping those two makes any text inert (a value AWS
/// returns, like an access key id or an address, included).
/// <https://docs.ruby-lang.org/en/master/syntax/literals_rdoc.html#label-Strings>
fn ruby_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Renders gitlab.rb for `external_url` (already resolved: configured, or
/// the instance's address). `smtp_username` is the SES SMTP user (an access
/// key id) when email is on; `backup_bucket` the deployment's bucket when
/// `backup.s3` is on.
pub fn render(
    settings: &Settings,
    external_url: &str,
    smtp_username: Option<&str>,
    backup_bucket: Option<&str>,
) -> String {
    let gitlab = &settings.gitlab;
    let mut out = format!(
        "# Written by glbox for deployment \"{name}\". Change glbox.toml (your own\n\
         # settings: gitlab.extra_config), then run `glbox up`; an edit made here\n\
         # by hand stops the next `glbox up` until it is moved there.\n\n\
         external_url {external_url}\n\n",
        name = settings.name,
        external_url = ruby_quote(external_url),
    );
    if gitlab.letsencrypt {
        out.push_str("letsencrypt['enable'] = true\nletsencrypt['auto_renew'] = true\n");
        if let Some(email) = &gitlab.root_email {
            out.push_str(&format!(
                "letsencrypt['contact_emails'] = [{}]\n",
                ruby_quote(email)
            ));
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
    if let Some(email) = &settings.email {
        out.push_str(&smtp_block(
            email,
            smtp_username.unwrap_or("<smtp-username>"),
        ));
    }
    if let Some(bucket) = backup_bucket {
        out.push_str(&backup_block(&settings.region, bucket));
    }
    if let Some(extra) = &gitlab.extra_config {
        out.push_str(&extra_block(&extra.text));
    }
    out
}

/// The user's own settings, last, so they build on glbox's (validation
/// refused the ones that would fight them).
fn extra_block(text: &str) -> String {
    let mut out =
        String::from("\n# ---- Your own settings (gitlab.extra_config), after glbox's ----\n");
    out.push_str(text);
    if !text.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// How long GitLab keeps its local archives (seconds): a day, so the data
/// disk holds at most the last two nightly archives (the next
/// `gitlab-backup create` prunes older ones); S3 keeps them for
/// `backup.s3_keep_days`. `backup_keep_time` prunes only local files
/// (doc/administration/backup_restore/backup_gitlab.md, "Limit backup
/// lifetime for local files").
pub const BACKUP_KEEP_TIME_SECONDS: u32 = 86_400;

/// GitLab's upload of each backup to the deployment's bucket, with the
/// instance role's credentials (no keys: `use_iam_profile`), archives at
/// the bucket's root (doc/administration/backup_restore/backup_gitlab.md,
/// "Using Amazon S3").
fn backup_block(region: &str, bucket: &str) -> String {
    format!(
        "\n# GitLab backups to S3, written with the instance role (glbox-backup.timer).\n\
         gitlab_rails['backup_upload_connection'] = {{\n  \
         'provider' => 'AWS',\n  \
         'region' => {region},\n  \
         'use_iam_profile' => true\n}}\n\
         gitlab_rails['backup_upload_remote_directory'] = {bucket}\n\
         gitlab_rails['backup_upload_storage_options'] = {{ 'server_side_encryption' => 'AES256' }}\n\
         gitlab_rails['backup_keep_time'] = {BACKUP_KEEP_TIME_SECONDS}\n",
        region = ruby_quote(region),
        bucket = ruby_quote(bucket),
    )
}

/// GitLab's SMTP settings for SES (`doc/settings/smtp.md`).
fn smtp_block(email: &EmailSettings, username: &str) -> String {
    let mut out = format!(
        "# Outbound email through Amazon SES ({region}).\n\
         gitlab_rails['smtp_enable'] = true\n\
         gitlab_rails['smtp_address'] = {host}\n\
         gitlab_rails['smtp_port'] = {port}\n\
         gitlab_rails['smtp_user_name'] = {username}\n\
         gitlab_rails['smtp_domain'] = {domain}\n\
         gitlab_rails['smtp_authentication'] = 'login'\n",
        region = email.ses_region,
        host = ruby_quote(&email.smtp_host()),
        port = email.port,
        username = ruby_quote(username),
        domain = ruby_quote(&email.domain),
    );
    if email.implicit_tls() {
        out.push_str(
            "gitlab_rails['smtp_enable_starttls_auto'] = false\n\
             gitlab_rails['smtp_ssl'] = true\n\
             gitlab_rails['smtp_force_ssl'] = true\n",
        );
    } else {
        out.push_str("gitlab_rails['smtp_enable_starttls_auto'] = true\n");
    }
    out.push_str(&format!(
        "gitlab_rails['gitlab_email_from'] = {}\n",
        ruby_quote(&email.from)
    ));
    if let Some(reply_to) = &email.reply_to {
        out.push_str(&format!(
            "gitlab_rails['gitlab_email_reply_to'] = {}\n",
            ruby_quote(reply_to)
        ));
    }
    out.push_str(&format!(
        "# The SMTP password: read from SSM on the box into this file (0600).\n\
         from_file {}\n",
        ruby_quote(SMTP_PASSWORD_INCLUDE)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_required_settings() {
        let settings = crate::test_support::settings("trial");
        let rb = render(&settings, "http://203.0.113.7", None, None);
        assert!(rb.contains("external_url 'http://203.0.113.7'\n"));
        assert!(rb.contains("letsencrypt['enable'] = false\n"));
        assert!(rb.contains("high_availability['mountpoint'] = '/var/opt/gitlab'\n"));
        assert!(rb.contains("gitlab_rails['monitoring_whitelist'] = ['127.0.0.0/8', '::1/128']\n"));
        assert!(!rb.contains("smtp"), "no email settings while email is off");
        assert!(!rb.contains("git_data_dirs"), "removed in GitLab 18.0");
        assert_eq!(
            rb,
            render(&settings, "http://203.0.113.7", None, None),
            "stable text"
        );
    }

    #[test]
    fn the_extra_settings_come_last_as_written() {
        let mut settings = crate::test_support::settings("trial");
        settings.gitlab.extra_config = Some(crate::config::ExtraConfig {
            path: "extra.rb".into(),
            text: "gitlab_rails['ldap_enabled'] = true".into(),
        });
        let rb = render(&settings, "http://203.0.113.7", None, None);
        let own = render(
            &crate::test_support::settings("trial"),
            "http://203.0.113.7",
            None,
            None,
        );
        assert_eq!(
            rb,
            format!("{own}\n# ---- Your own settings (gitlab.extra_config), after glbox's ----\ngitlab_rails['ldap_enabled'] = true\n")
        );
    }

    #[test]
    fn letsencrypt_gets_contact_and_renewal() {
        let mut settings = crate::test_support::settings("trial");
        settings.gitlab.letsencrypt = true;
        settings.gitlab.root_email = Some("admin@example.com".into());
        let rb = render(&settings, "https://git.example.com", None, None);
        assert!(rb.contains("letsencrypt['enable'] = true\n"));
        assert!(rb.contains("letsencrypt['contact_emails'] = ['admin@example.com']\n"));
    }

    fn email_settings(port: u16) -> crate::config::Settings {
        let mut settings = crate::test_support::settings("trial");
        settings.email = Some(EmailSettings {
            domain: "example.com".into(),
            from: "gitlab@example.com".into(),
            reply_to: Some("noreply@example.com".into()),
            ses_region: "eu-west-1".into(),
            port,
            route53_zone_id: None,
            test_recipient: None,
        });
        settings
    }

    #[test]
    fn the_smtp_block_for_starttls_on_587() {
        let rb = render(
            &email_settings(587),
            "http://203.0.113.7",
            Some("AKIAEXAMPLE"),
            None,
        );
        let expected = "\
gitlab_rails['smtp_enable'] = true
gitlab_rails['smtp_address'] = 'email-smtp.eu-west-1.amazonaws.com'
gitlab_rails['smtp_port'] = 587
gitlab_rails['smtp_user_name'] = 'AKIAEXAMPLE'
gitlab_rails['smtp_domain'] = 'example.com'
gitlab_rails['smtp_authentication'] = 'login'
gitlab_rails['smtp_enable_starttls_auto'] = true
gitlab_rails['gitlab_email_from'] = 'gitlab@example.com'
gitlab_rails['gitlab_email_reply_to'] = 'noreply@example.com'
# The SMTP password: read from SSM on the box into this file (0600).
from_file '/etc/gitlab/glbox-smtp-password.rb'
";
        assert!(rb.contains(expected), "{rb}");
        assert!(
            !rb.contains("smtp_password"),
            "the password is only on the box"
        );
        assert!(!rb.contains("smtp_ssl"));
    }

    #[test]
    fn values_from_aws_cannot_leave_their_ruby_string() {
        let hostile = "AKIA'; system('id') #\\";
        let rb = render(
            &email_settings(587),
            "http://203.0.113.7",
            Some(hostile),
            None,
        );
        assert!(
            rb.contains("gitlab_rails['smtp_user_name'] = 'AKIA\\'; system(\\'id\\') #\\\\'\n"),
            "{rb}"
        );
        let rb = render(
            &email_settings(587),
            "http://203.0.113.7'; exit 1; '",
            None,
            None,
        );
        assert!(
            rb.contains("external_url 'http://203.0.113.7\\'; exit 1; \\''\n"),
            "{rb}"
        );
        assert_eq!(ruby_quote("plain"), "'plain'");
    }

    #[test]
    fn the_smtp_block_for_tls_on_465() {
        let rb = render(
            &email_settings(465),
            "http://203.0.113.7",
            Some("AKIAEXAMPLE"),
            None,
        );
        assert!(rb.contains("gitlab_rails['smtp_port'] = 465\n"));
        assert!(rb.contains("gitlab_rails['smtp_enable_starttls_auto'] = false\n"));
        assert!(rb.contains("gitlab_rails['smtp_ssl'] = true\n"));
        assert!(rb.contains("gitlab_rails['smtp_force_ssl'] = true\n"));
        assert!(!rb.contains("smtp_password"));
    }

    #[test]
    fn backups_go_to_the_bucket_with_the_instance_role_only_when_asked() {
        let settings = crate::test_support::settings("trial");
        let rb = render(
            &settings,
            "http://203.0.113.7",
            None,
            Some("glbox-trial-0a1b2c3d4e"),
        );
        let expected = "\
gitlab_rails['backup_upload_connection'] = {
  'provider' => 'AWS',
  'region' => 'us-east-1',
  'use_iam_profile' => true
}
gitlab_rails['backup_upload_remote_directory'] = 'glbox-trial-0a1b2c3d4e'
gitlab_rails['backup_upload_storage_options'] = { 'server_side_encryption' => 'AES256' }
gitlab_rails['backup_keep_time'] = 86400
";
        assert!(rb.contains(expected), "{rb}");
        assert!(
            !rb.contains("aws_access_key_id"),
            "no keys: the instance role"
        );
        let off = render(&settings, "http://203.0.113.7", None, None);
        assert!(!off.contains("backup_"), "{off}");
    }
}
