//! Placeholder while the command is being built (replaced within this change).

use crate::app::App;
use crate::error::{Error, Result};

pub async fn run(_app: &App, _what: &str) -> Result<crate::output::Placeholder> {
    Err(Error::Refused("not built yet".into()))
}
