//! `glbox init`: the wizard writes glbox.toml; nothing on AWS.

use crate::app::App;
use crate::cli::InitArgs;
use crate::error::Result;
use crate::wizard::{Purpose, Request};

pub async fn run(app: &App, args: &InitArgs) -> Result<()> {
    first_run(app, Purpose::Init, args.force).await?;
    Ok(())
}

/// The first run asks before anything else (Ctrl-C simply ends it).
pub async fn first_run(app: &App, purpose: Purpose, force: bool) -> Result<crate::wizard::Next> {
    let request = Request {
        purpose,
        force,
        profile: app.profile.clone(),
        endpoint_url: app.endpoint_url.clone(),
        sources: &app.sources,
        ui: &app.ui,
    };
    crate::wizard::prepare(&request).await
}
