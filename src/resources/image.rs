//! What a launch needs looked up before anything is created: the instance
//! type's architectures and the image (explicit, or the OS's current one
//! for that architecture), checked to fit each other.

use crate::aws::ec2::lookups;
use crate::config::Os;
use crate::error::{Error, Result};
use crate::resources::placement::Placement;
use crate::resources::Ctx;

/// Everything RunInstances needs that must be looked up first.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub image_id: String,
    pub architecture: String,
    pub root_device: String,
    pub placement: Placement,
    /// The deployment's instances AWS still reports (for the launch token).
    pub seen: Vec<String>,
}

/// The public SSM parameter naming the current image of `os` for `arch`.
pub fn ami_parameter(os: Os, arch: &str) -> String {
    match os {
        Os::Ubuntu2404 => {
            let arch = if arch == "arm64" { "arm64" } else { "amd64" };
            format!("/aws/service/canonical/ubuntu/server/24.04/stable/current/{arch}/hvm/ebs-gp3/ami-id")
        }
        Os::Al2023 => {
            let arch = if arch == "arm64" { "arm64" } else { "x86_64" };
            format!("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}")
        }
    }
}

/// The architectures an instance type runs; fails for a type the region
/// does not have.
pub async fn type_architectures(ctx: &Ctx<'_>, instance_type: &str) -> Result<Vec<String>> {
    let types = match lookups::instance_types(&ctx.aws.ec2, &[instance_type.to_string()]).await {
        Err(e) if e.code.as_deref() == Some("InvalidInstanceType") => {
            return Err(Error::Refused(format!(
                "instance.type = {instance_type:?} does not exist in {}\n  fix: choose a type offered there, e.g. \"c5.2xlarge\" or \"m7g.2xlarge\"",
                ctx.settings.region
            )))
        }
        other => other?,
    };
    Ok(types
        .first()
        .and_then(|t| t.processor_info())
        .map(|p| {
            p.supported_architectures()
                .iter()
                .map(|a| a.as_str().to_string())
                .collect()
        })
        .unwrap_or_default())
}

/// Resolves the image (explicit or the OS's current one for the type's
/// architecture) and checks the two fit, before anything is created.
/// `seen`: the ids of the deployment's instances AWS still reports (for
/// the launch token); `type_archs`: the type's architectures if the caller
/// already looked them up.
pub async fn resolve_launch(
    ctx: &Ctx<'_>,
    placement: &Placement,
    seen: Vec<String>,
    type_archs: Option<Vec<String>>,
) -> Result<LaunchSpec> {
    let settings = ctx.settings;
    let archs = match type_archs {
        Some(archs) => archs,
        None => type_architectures(ctx, &settings.instance_type).await?,
    };
    let arch = if archs.iter().any(|a| a == "arm64") {
        "arm64"
    } else {
        "x86_64"
    };
    let image_id = match &settings.ami {
        Some(ami) => ami.clone(),
        None => {
            let parameter = ami_parameter(settings.os, arch);
            crate::resources::parameters::read(ctx, &parameter, false).await?
        }
    };
    let image = lookups::image(&ctx.aws.ec2, &image_id).await?;
    let image = image.ok_or_else(|| {
        Error::Refused(format!(
            "the image {image_id} does not exist in {}\n  fix: check instance.ami, or leave it empty to use {}'s current image",
            settings.region,
            settings.os.as_str()
        ))
    })?;
    let image_arch = image
        .architecture()
        .map(|a| a.as_str().to_string())
        .unwrap_or_default();
    if !archs.contains(&image_arch) {
        return Err(Error::Refused(format!(
            "instance.ami = {image_id:?} is an {image_arch} image, but {} runs {}\n  fix: choose an {} image, or an instance.type for {image_arch} (Graviton types such as m7g are arm64)",
            settings.instance_type,
            archs.join("/"),
            archs.join("/")
        )));
    }
    let root_device = image.root_device_name().unwrap_or("/dev/xvda").to_string();
    Ok(LaunchSpec {
        seen,
        image_id,
        architecture: image_arch,
        root_device,
        placement: placement.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ami_parameters_follow_os_and_architecture() {
        assert!(ami_parameter(Os::Ubuntu2404, "arm64").contains("/arm64/"));
        assert!(ami_parameter(Os::Ubuntu2404, "x86_64").contains("/amd64/"));
        assert!(ami_parameter(Os::Al2023, "x86_64").ends_with("default-x86_64"));
    }
}
