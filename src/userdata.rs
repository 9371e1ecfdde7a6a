//! The instance's user data, rendered from templates embedded in the binary.

use base64::Engine;

const TEMPLATE: &str = include_str!("../cloud-init/user-data.yaml");

pub fn render(deployment: &str) -> String {
    TEMPLATE.replace("{{name}}", deployment)
}

/// RunInstances wants base64; the Rust SDK (unlike boto3) does not encode it.
pub fn encoded(deployment: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(render(deployment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_cloud_config_naming_the_host() {
        let text = render("trial");
        assert!(text.starts_with("#cloud-config\n"));
        assert!(text.contains("hostname: glbox-trial"));
        assert!(!text.contains("{{"));
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded("trial"))
            .unwrap();
        assert_eq!(decoded, text.as_bytes());
    }
}
