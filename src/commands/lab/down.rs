//! `glbox lab down`: remove everything of the lab, seats' data included.

use serde::Serialize;

use crate::app::App;
use crate::error::Result;
use crate::lab::down::Removed;
use crate::output::{OutputFormat, Report};

#[derive(Serialize)]
#[serde(transparent)]
pub struct LabDownReport {
    removed: Removed,
    /// Nothing was there to remove.
    #[serde(skip)]
    nothing: bool,
    #[serde(skip)]
    name: String,
    #[serde(skip)]
    region: String,
}

pub async fn run(app: &App) -> Result<LabDownReport> {
    crate::checkpoint::install_interrupt_handler(app.ui.clone(), "glbox lab down");
    let (settings, lab) = app.lab_settings()?;
    let aws = app.connect(&settings.region, true).await;
    let show = app.output == OutputFormat::Text;
    let removed = super::remove(app, &aws, &settings, show).await?;
    Ok(LabDownReport {
        nothing: removed.is_none(),
        removed: removed.unwrap_or_default(),
        name: lab.name,
        region: settings.region,
    })
}

impl Report for LabDownReport {
    fn text(&self) -> String {
        let name = &self.name;
        if self.nothing {
            return format!("Lab {name:?} in {} has nothing to remove.\n", self.region);
        }
        let removed = &self.removed;
        format!(
            "Removed lab {name:?}: {} instance(s), {} volume(s), {} address(es), {} password(s), {} shared resource(s).\n",
            removed.instances.len(),
            removed.volumes.len(),
            removed.addresses.len(),
            removed.parameters.len(),
            removed.shared.len()
        )
    }
}
