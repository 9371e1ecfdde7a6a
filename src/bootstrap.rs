//! The bootstrap script sent to the instance: `cloud-init/bootstrap.sh`
//! (embedded) with the deployment's values in front of it. It holds no
//! secret: the root password is read on the box from SSM.

use base64::Engine;

use crate::config::Settings;

const SCRIPT: &str = include_str!("../cloud-init/bootstrap.sh");

/// What the script needs that only AWS knows.
pub struct Target<'a> {
    pub data_volume_id: &'a str,
    pub external_url: &'a str,
}

/// Quotes a value for a POSIX shell: single quotes, with `'` escaped.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

pub fn render(settings: &Settings, target: &Target<'_>) -> String {
    let gitlab_rb = crate::gitlab_rb::render(settings, target.external_url);
    let values = [
        ("GLBOX_DEPLOYMENT", settings.name.as_str()),
        ("GLBOX_REGION", &settings.region),
        ("GLBOX_OS", settings.os.as_str()),
        ("GLBOX_EDITION", settings.gitlab.edition.as_str()),
        ("GLBOX_VERSION", settings.gitlab.version.as_str()),
        ("GLBOX_EXTERNAL_URL", target.external_url),
        (
            "GLBOX_ROOT_EMAIL",
            settings.gitlab.root_email.as_deref().unwrap_or(""),
        ),
        ("GLBOX_DATA_VOLUME", target.data_volume_id),
        (
            "GLBOX_GITLAB_RB_B64",
            &base64::engine::general_purpose::STANDARD.encode(gitlab_rb),
        ),
    ];
    let (shebang, body) = SCRIPT.split_once('\n').unwrap_or(("#!/bin/bash", SCRIPT));
    let mut out = format!(
        "{shebang}\n# Values for deployment \"{}\", set by glbox:\n",
        settings.name
    );
    for (name, value) in values {
        out.push_str(&format!("{name}={}\n", shell_quote(value)));
    }
    out.push_str(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_first_and_are_quoted() {
        let settings = crate::test_support::settings("trial");
        let script = render(
            &settings,
            &Target {
                data_volume_id: "vol-1",
                external_url: "http://203.0.113.7",
            },
        );
        assert!(script.starts_with("#!/bin/bash\n# Values for deployment \"trial\""));
        assert!(script.contains("GLBOX_DATA_VOLUME='vol-1'\n"));
        assert!(script.contains("GLBOX_VERSION='latest'\n"));
        assert!(script.contains("set -euo pipefail"));
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
