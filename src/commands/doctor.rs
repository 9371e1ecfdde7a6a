//! `glbox doctor`: exit 0 when nothing fails (warnings allowed), else 1.

use serde::Serialize;

use crate::app::{App, Needs};
use crate::doctor::{Finding, Verdict};
use crate::error::{Error, Result};
use crate::output::Report;

#[derive(Serialize)]
#[serde(transparent)]
pub struct DoctorReport(Vec<Finding>);

pub async fn run(app: &App) -> Result<DoctorReport> {
    let deployment = app.deployment(Needs::default()).await?;
    Ok(DoctorReport(crate::doctor::run(&deployment.ctx(app)).await))
}

impl DoctorReport {
    fn failed(&self) -> usize {
        self.0.iter().filter(|f| f.verdict == Verdict::Fail).count()
    }
}

impl Report for DoctorReport {
    fn text(&self) -> String {
        let mut out = crate::doctor::table(&self.0);
        if self.failed() == 0 {
            out.push_str("Ready for glbox up.\n");
        }
        out
    }

    fn outcome(self) -> Result<()> {
        match self.failed() {
            0 => Ok(()),
            failed => Err(Error::Refused(format!(
                "{failed} check(s) failed: fix them (see above), then run glbox doctor again"
            ))),
        }
    }
}
