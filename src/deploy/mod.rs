//! Converging one box. Every thing a deployment is made of (the security
//! group, the instance's role and profile, the key pair, the root
//! password, email, the data volume, the instance, the volume's
//! attachment, the Elastic IP, the DNS record, GitLab itself) is a
//! [`Component`] in [`STEPS`], the one ordered list that `plan`, `apply`,
//! `down` and `status` walk. A phase, a checkpoint, a plan line, a removal
//! or a status entry exists because a step in that list says so, so they
//! cannot disagree.
//!
//! The lifecycle: `plan::observe` reads what AWS holds (read-only), and
//! `plan::make` looks up what a launch needs, then diffs without AWS
//! (`diff`). Each step then reports its plan lines, says whether it has
//! nothing to do, applies its part of the plan (`apply`), lists and
//! removes what `down` takes away (`down`), and reports its status
//! (`status`).

pub mod apply;
pub mod components;
pub mod diff;
pub mod down;
pub mod plan;
pub mod status;
#[cfg(test)]
mod tests;

use futures_util::future::BoxFuture;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::resources::{Ctx, PlanItem};
use components::*;
use down::{DownItem, DownOptions, DownOutcome};
use plan::{Observed, Plan};
use status::{ResourceStatus, StatusView};

/// Everything a deployment is made of, in the order `up` converges it
/// (each step may use what the steps before it made).
pub const STEPS: &[Step] = &[
    security_group::STEP,
    iam_role::STEP,
    instance_profile::STEP,
    key_pair::STEP,
    root_password::STEP,
    email::STEP,
    data_volume::STEP,
    backup_bucket::STEP,
    snapshot_schedule::STEP,
    instance::STEP,
    volume_attachment::STEP,
    elastic_ip::STEP,
    dns_record::STEP,
    gitlab::STEP,
];

/// Every checkpoint `up` passes, in order (the tests walk this list): one
/// per step of [`STEPS`].
pub const CHECKPOINTS: &[&str] = &checkpoints();

/// The checkpoints of [`STEPS`], in order.
const fn checkpoints() -> [&'static str; STEPS.len()] {
    let mut names = [""; STEPS.len()];
    let mut i = 0;
    while i < STEPS.len() {
        names[i] = STEPS[i].checkpoint;
        i += 1;
    }
    names
}

/// One entry of [`STEPS`].
pub struct Step {
    /// The phases `up` shows for it (the progress display); its apply runs
    /// in the first.
    pub phases: &'static [&'static str],
    /// The safe point `up` passes once it is converged (see `checkpoint`).
    pub checkpoint: &'static str,
    pub part: Part,
    pub component: &'static dyn Component,
}

/// Which part of a deployment a step belongs to: it places the step's
/// lines in the reports and its removal in `down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// What runs in the VPC or hangs off the instance.
    Box,
    /// Who the instance acts as: its role and instance profile.
    Identity,
    /// What glbox keeps in SSM Parameter Store.
    Stored,
    /// Outbound email through SES.
    Email,
    /// GitLab on the box.
    GitLab,
}

/// The plan lists the box and who it acts as, then what is stored, then
/// email, then GitLab.
const PLAN_ORDER: &[&[Part]] = &[
    &[Part::Box, Part::Identity],
    &[Part::Stored],
    &[Part::Email],
    &[Part::GitLab],
];

/// Status lists GitLab with the box, and email last.
const STATUS_ORDER: &[&[Part]] = &[
    &[Part::Box, Part::Identity],
    &[Part::Stored],
    &[Part::GitLab],
    &[Part::Email],
];

/// `down` removes the box first (what costs money and holds the public
/// address, the instance before its group and key), then what it stored,
/// then the identity it acted as, then email (whose identity may be
/// shared); each part in the reverse of `up`'s order.
const DOWN_ORDER: &[&[Part]] = &[
    &[Part::Box],
    &[Part::Stored],
    &[Part::Identity],
    &[Part::Email],
];

/// The steps of one group of parts, in [`STEPS`] order (or its reverse).
fn steps_of(group: &[Part], reverse: bool) -> Vec<&'static Step> {
    let mut steps: Vec<&Step> = STEPS.iter().filter(|s| group.contains(&s.part)).collect();
    if reverse {
        steps.reverse();
    }
    steps
}

/// The steps of each group of parts, group by group (see [`steps_of`]).
fn in_order(
    groups: &'static [&'static [Part]],
    reverse: bool,
) -> impl Iterator<Item = &'static Step> {
    groups
        .iter()
        .flat_map(move |group| steps_of(group, reverse))
}

/// Work a step does against AWS, run when the engine gets to it.
pub type Work<'a, T> = BoxFuture<'a, Result<T>>;

/// One removal of `down`.
pub struct Removal<'a> {
    /// The phase `down` shows while it runs; `None` when it removes
    /// nothing (something kept, or not glbox's).
    pub phase: Option<&'static str>,
    pub work: Work<'a, DownOutcome>,
}

/// The lifecycle every converged thing implements. `observe` is joined for
/// all of them in `plan::observe` (one concurrent read of the deployment),
/// and the diff in `diff` (parts of it feed each other); each step reads
/// its part of the [`Plan`] and of the [`Observed`] deployment.
pub trait Component: Sync {
    /// Whether `up` shows the step's phases with these settings (a step
    /// that only cleans up, such as a key pair left from SSH mode, runs
    /// inside the phase before it).
    fn shown(&self, _settings: &Settings, _with_bootstrap: bool) -> bool {
        true
    }

    /// The step's lines of the plan.
    fn items(&self, _ctx: &Ctx<'_>, _plan: &Plan, _observed: &Observed) -> Vec<PlanItem> {
        Vec::new()
    }

    /// Whether the plan leaves the step's part as it is.
    fn is_noop(&self, _plan: &Plan) -> bool {
        true
    }

    /// Converges the step's part; `None` when `apply` has nothing to run
    /// for it.
    fn apply<'a>(
        &'a self,
        _ctx: &'a Ctx<'a>,
        _plan: &'a Plan,
        _made: &'a mut Made,
    ) -> Option<Work<'a, ()>> {
        None
    }

    /// What `down` removes or keeps of the step, for its preview.
    fn down_items(
        &self,
        _ctx: &Ctx<'_>,
        _observed: &Observed,
        _options: DownOptions,
    ) -> Vec<DownItem> {
        Vec::new()
    }

    /// What `down` runs for the step, in order.
    fn removals<'a>(
        &'a self,
        _ctx: &'a Ctx<'a>,
        _observed: &'a Observed,
        _options: DownOptions,
    ) -> Vec<Removal<'a>> {
        Vec::new()
    }

    /// The step's entries of `status`.
    fn status(
        &self,
        _ctx: &Ctx<'_>,
        _observed: &Observed,
        _view: &StatusView,
    ) -> Vec<ResourceStatus> {
        Vec::new()
    }

    /// Whether what `status` sees of the step is usable, beyond its entries.
    fn usable(&self, _ctx: &Ctx<'_>, _observed: &Observed) -> bool {
        true
    }
}

/// What the steps of `apply` made so far, for the steps after them.
#[derive(Debug, Default)]
pub struct Made {
    pub security_group_id: Option<String>,
    pub data_volume_id: Option<String>,
    pub instance: Option<crate::resources::instance::Instance>,
    pub elastic_ip: Option<String>,
    pub dns_record: Option<crate::resources::dns_record::Record>,
    pub smtp_username: Option<String>,
}

/// An output of an earlier step; missing only if [`STEPS`] were out of
/// order.
fn earlier<'m, T>(value: &'m Option<T>, what: &str) -> Result<&'m T> {
    value
        .as_ref()
        .ok_or_else(|| Error::Refused(format!("internal: the {what} step did not run first")))
}
