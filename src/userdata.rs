//! The instance's user data: a `#cloud-config` rendered from the templates
//! under `cloud-init/`, which are embedded in the binary. It names the host,
//! installs what the bootstrap needs, sets up swap, and mounts the data
//! volume (found by its volume id) at `/var/opt/gitlab`, then downloads
//! GitLab's package while glbox waits for the box (the bootstrap installs
//! that copy). It holds no secret.

use base64::Engine;

use crate::config::{Os, Settings};

const TEMPLATE: &str = include_str!("../cloud-init/user-data.yaml");
pub const PREPARE_DATA_SCRIPT: &str = include_str!("../cloud-init/prepare-data.sh");
const PREFETCH_SCRIPT: &str = include_str!("../cloud-init/prefetch.sh");

/// The packages cloud-init installs at first boot. None on Ubuntu: there
/// unattended-upgrades holds apt's lock for minutes after boot, and
/// cloud-init waits only 30 s for it before failing
/// (cloudinit/distros/package_management/apt.py, APT_LOCK_WAIT_TIMEOUT);
/// the bootstrap installs what is missing, waiting for the lock.
fn packages(os: Os) -> String {
    match os {
        Os::Ubuntu2404 => {
            "# (Ubuntu: the bootstrap installs what is missing, waiting for apt's lock)".into()
        }
        // AL2023 ships curl-minimal, which a full curl would conflict with.
        Os::Al2023 => ["package_update: true", "packages:"]
            .into_iter()
            .map(str::to_string)
            .chain(
                ["ca-certificates", "perl", "tzdata"]
                    .iter()
                    .map(|p| format!("  - {p}")),
            )
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn indent(text: &str, spaces: usize) -> String {
    let pad = " ".repeat(spaces);
    text.lines()
        .map(|line| {
            if line.is_empty() {
                String::new()
            } else {
                format!("{pad}{line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Extra first-boot commands per OS. The bootstrap reads the root password
/// with the AWS CLI: Amazon Linux ships it, Ubuntu gets Amazon's snap.
fn os_runcmd(os: Os) -> &'static str {
    match os {
        Os::Ubuntu2404 => "  - [snap, install, aws-cli, --classic]",
        Os::Al2023 => "  # (Amazon Linux 2023 ships the AWS CLI)",
    }
}

/// Mounting the data volume at first boot, when its id is known at launch.
/// The id comes from AWS: quoted for the shell, and the command for YAML
/// (a JSON string is a YAML double-quoted scalar).
fn prepare_data_runcmd(data_volume_id: Option<&str>) -> String {
    match data_volume_id {
        Some(id) => {
            let command = format!(
                "/usr/local/sbin/glbox-prepare-data {} /var/opt/gitlab >> /var/log/glbox/prepare-data.log 2>&1",
                shell_quote(id)
            );
            format!(
                "  - [sh, -c, {}]",
                serde_json::to_string(&command).expect("a string serializes")
            )
        }
        // A lab launches many seats with one user data: each seat's
        // bootstrap mounts its own volume instead.
        None => "  # (the bootstrap mounts this seat's data volume)".to_string(),
    }
}

/// Quotes a value for a POSIX shell: single quotes, with `'` escaped.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// `/usr/local/sbin/glbox-prefetch` as the box gets it: the package's
/// edition, version and OS in front, then where it comes from (the
/// bootstrap's own `package-source.sh`), then the download. Every value is
/// the deployment's configuration, never a secret.
pub fn prefetch_script(settings: &Settings) -> String {
    let (shebang, body) = PREFETCH_SCRIPT
        .split_once('\n')
        .unwrap_or(("#!/bin/bash", PREFETCH_SCRIPT));
    let values = [
        ("GLBOX_OS", settings.os.as_str()),
        ("GLBOX_EDITION", settings.gitlab.edition.as_str()),
        ("GLBOX_VERSION", settings.gitlab.version.as_str()),
    ];
    let mut out = format!("{shebang}\n");
    for (name, value) in values {
        out.push_str(&format!("{name}={}\n", shell_quote(value)));
    }
    out.push_str(crate::bootstrap::without_shebang(
        crate::bootstrap::PACKAGE_SOURCE,
    ));
    out.push_str(body);
    out
}

/// The cloud-config; `data_volume_id` is `None` for a lab's seats, which
/// share one user data.
pub fn render(settings: &Settings, data_volume_id: Option<&str>) -> String {
    let os = settings.os;
    let swap_bytes = i64::from(settings.swap_gib) << 30;
    let package_list = packages(os);
    TEMPLATE
        .replace("{{name}}", &settings.name)
        .replace("{{swap_bytes}}", &swap_bytes.to_string())
        .replace("{{packages}}", &package_list)
        .replace("{{os_runcmd}}", os_runcmd(os))
        .replace("{{prepare_data}}", &indent(PREPARE_DATA_SCRIPT, 6))
        .replace("{{prefetch}}", &indent(&prefetch_script(settings), 6))
        .replace(
            "{{prepare_data_runcmd}}",
            &prepare_data_runcmd(data_volume_id),
        )
}

/// RunInstances wants base64; the Rust SDK (unlike boto3) does not encode it.
pub fn encode(user_data: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(user_data)
}

/// EC2's limit on user data before encoding.
pub const MAX_BYTES: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_cloud_config_for_the_volume() {
        let settings = crate::test_support::settings("trial");
        let text = render(&settings, Some("vol-0123456789abcdef0"));
        assert!(text.starts_with("#cloud-config\n"));
        assert!(text.contains("hostname: glbox-trial"));
        assert!(text.contains("glbox-prepare-data 'vol-0123456789abcdef0' /var/opt/gitlab"));
        assert!(
            text.contains("      set -euo pipefail"),
            "the script is embedded, indented"
        );
        assert!(
            !text.contains("package_update") && !text.contains("  - curl"),
            "no apt at first boot on Ubuntu: the bootstrap waits for its lock"
        );
        assert!(!text.contains("{{"));
        assert!(text.len() < MAX_BYTES, "{} bytes", text.len());
        assert!(text.contains("[snap, install, aws-cli, --classic]"));
        assert!(
            text.contains("      # glbox prefetch: at first boot")
                && text.contains("      GLBOX_VERSION='latest'\n")
                && text.contains("/usr/local/sbin/glbox-prefetch >> /var/log/glbox/prefetch.log"),
            "the package is downloaded at first boot (the emulator's timeline keys on the mark)"
        );
        assert!(text.contains("  size: 2147483648\n"));
        let mut al = settings.clone();
        al.os = Os::Al2023;
        let al2023 = render(&al, Some("vol-1"));
        let lab = render(&settings, None);
        assert!(!lab.contains("glbox-prepare-data vol-") && !lab.contains("{{"));
        assert!(!al2023.contains("  - curl\n") && !al2023.contains("snap"));
        assert!(al2023.contains("package_update: true\npackages:\n  - ca-certificates\n"));
        let hostile = render(&settings, Some("vol-1'\"; reboot; #"));
        assert!(
            hostile.contains(r#"[sh, -c, "/usr/local/sbin/glbox-prepare-data 'vol-1'\\''\"; reboot; #' /var/opt/gitlab"#),
            "{hostile}"
        );
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encode(&text))
            .unwrap();
        assert_eq!(decoded, text.as_bytes());
    }
}
