//! One module per AWS resource of a deployment. Each follows the same
//! converge pattern: `observe` finds it by tags (read-only), `diff` compares
//! it with the settings (pure), `apply` carries out the difference, and
//! `delete` removes it for `down`. `deploy::components` wraps each in a
//! step of the one ordered list, `deploy::STEPS`.

pub mod backup;
pub mod data_volume;
pub mod dns_record;
pub mod elastic_ip;
pub mod iam;
pub mod image;
pub mod instance;
pub mod key_pair;
pub mod parameters;
pub mod placement;
pub mod restore;
pub mod security_group;
pub mod upgrade;

use serde::Serialize;

use crate::aws::Aws;
use crate::config::Settings;
use crate::names::Names;
use crate::ui::Ui;

/// What every resource step needs.
pub struct Ctx<'a> {
    pub aws: &'a Aws,
    pub settings: &'a Settings,
    pub names: Names,
    pub ui: &'a Ui,
}

impl<'a> Ctx<'a> {
    pub fn new(aws: &'a Aws, settings: &'a Settings, ui: &'a Ui) -> Self {
        Ctx {
            aws,
            settings,
            names: Names::new(&settings.name, &settings.region),
            ui,
        }
    }
}

/// The kind of change a plan makes to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    NoChange,
}

impl Action {
    pub fn label(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::NoChange => "no change",
        }
    }
}

/// One line of a plan, for people (text) and scripts (JSON).
#[derive(Debug, Clone, Serialize)]
pub struct PlanItem {
    pub resource: &'static str,
    pub name: String,
    pub id: Option<String>,
    pub action: Action,
    /// What changes and why, one entry per field or reason.
    pub changes: Vec<String>,
}

impl PlanItem {
    pub fn new(resource: &'static str, name: String, id: Option<String>, action: Action) -> Self {
        PlanItem {
            resource,
            name,
            id,
            action,
            changes: Vec::new(),
        }
    }

    pub fn with_changes(mut self, changes: Vec<String>) -> Self {
        self.changes = changes;
        self
    }
}
