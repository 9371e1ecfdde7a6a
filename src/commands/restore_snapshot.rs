//! `glbox restore --snapshot ID`: GitLab's data from an EBS snapshot. A new
//! data volume made from it replaces the current one, which is kept
//! (tagged as replaced, never deleted); then the bootstrap and the health
//! checks. Every refusal comes before any change; the steps are
//! `resources::restore`'s, each safe to repeat, so after Ctrl-C or a crash
//! the same command finishes the job, and after success it changes nothing.

use serde::Serialize;

use crate::app::{App, Needs};
use crate::deploy::plan::{self, Observed};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::output::Report;
use crate::resources::data_volume::Volume;
use crate::resources::restore::{self, RestoreIntent, Source};
use crate::resources::Ctx;

#[derive(Serialize)]
pub struct RestoreReport {
    snapshot_id: String,
    instance_id: String,
    /// The data volume GitLab now runs on, made from the snapshot.
    data_volume_id: String,
    /// The data volume swapped out, kept (`None` when nothing was done).
    replaced_volume_id: Option<String>,
    /// The data volume was already made from this snapshot: nothing to do.
    already_restored: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<crate::verify::Report>,
    #[serde(skip)]
    deployment: String,
}

impl Report for RestoreReport {
    fn text(&self) -> String {
        if self.already_restored {
            return format!(
                "Deployment {:?} already runs on data volume {}, made from {}: nothing to do.\n",
                self.deployment, self.data_volume_id, self.snapshot_id
            );
        }
        let mut out = self
            .verify
            .as_ref()
            .map(crate::verify::table)
            .unwrap_or_default();
        out.push_str(&format!(
            "Deployment {:?} restored from {}: data volume {} is attached to {}.\n",
            self.deployment, self.snapshot_id, self.data_volume_id, self.instance_id
        ));
        if let Some(old) = &self.replaced_volume_id {
            out.push_str(&format!(
                "  kept:  the replaced data volume {old} (glbox:role = replaced-data); glbox never deletes it.\n         Delete it yourself once you no longer need it: aws ec2 delete-volume --volume-id {old}\n"
            ));
        }
        if self.verify.as_ref().is_some_and(|r| !r.healthy) {
            out.push_str("  GitLab is not healthy on the restored data: correct the cause above, then run the same glbox restore again.\n");
        }
        out
    }

    fn outcome(self) -> Result<()> {
        match self.verify {
            Some(report) if !report.healthy => Err(Error::Unhealthy),
            _ => Ok(()),
        }
    }
}

pub async fn run(app: &App, snapshot_id: &str) -> Result<RestoreReport> {
    restore::check_id(snapshot_id)?;
    let resume: &'static str =
        Box::leak(format!("glbox restore --snapshot {snapshot_id}").into_boxed_str());
    crate::checkpoint::install_interrupt_handler(app.ui.clone(), resume);
    let deployment = app.deployment(Needs::default()).await?;
    let ctx = deployment.ctx(app);
    let observed = plan::observe(&ctx).await?;
    let start = match prepare(&ctx, &observed, snapshot_id).await? {
        Start::Done(report) => return Ok(report),
        start => start,
    };
    if app.preview_wanted() {
        print!("{}", preview(&ctx, &start));
    }
    app.confirm("Restore from this snapshot?", "restoring from a snapshot")?;
    if crate::checkpoint::interrupted() {
        return Err(crate::checkpoint::stopped(
            "the question (nothing was changed)",
        ));
    }
    let lease = crate::lease::acquire(&ctx, "restore").await?;
    let result = async {
        // Under the lease, from what AWS says now.
        let observed = plan::observe(&ctx).await?;
        match prepare(&ctx, &observed, snapshot_id).await? {
            Start::Done(report) => Ok(report),
            start => execute(&ctx, &observed, start).await,
        }
    }
    .await;
    crate::lease::released(&ctx, lease, result).await
}

/// Where a restore starts from.
enum Start {
    /// The data volume was already made from the snapshot.
    Done(RestoreReport),
    /// A restore to begin: the volume it replaces.
    Fresh {
        source: Source,
        endpoint: Box<Endpoint>,
        replaced: Volume,
    },
    /// An interrupted restore of this snapshot, to finish.
    Resume {
        source: Source,
        endpoint: Box<Endpoint>,
        intent: RestoreIntent,
    },
}

/// Every refusal, before any change: the snapshot (the account's,
/// completed, this deployment's, not bigger than the configured volume),
/// a running box with its data volume, nothing else waiting for `up`.
async fn prepare(ctx: &Ctx<'_>, observed: &Observed, snapshot_id: &str) -> Result<Start> {
    let intent = restore::open_intent(ctx, &observed.ledger).await?;
    if let Some(other) = intent.as_ref().filter(|i| i.snapshot_id != snapshot_id) {
        return Err(Error::Refused(format!(
            "a restore from {} began at {} and did not finish: nothing was changed\n  fix: finish it first with glbox restore --snapshot {}",
            other.snapshot_id, other.started_at, other.snapshot_id
        )));
    }
    let source = restore::source(ctx, snapshot_id, &observed.ledger).await?;
    let endpoint = running_box(ctx, observed)?;
    if let Some(intent) = intent {
        if intent.instance_id != endpoint.instance.id {
            return Err(Error::Refused(format!(
                "the restore from {snapshot_id} began on instance {}, but the deployment now runs {}: glbox does not move a half-done restore\n  fix: look at the volumes tagged glbox:deployment = {} (the one made from {snapshot_id}, and {} it replaces), then attach the one you want with glbox up",
                intent.instance_id, endpoint.instance.id, ctx.names.deployment, intent.replaced_volume_id
            )));
        }
        return Ok(Start::Resume {
            source,
            endpoint: Box::new(endpoint),
            intent,
        });
    }
    let replaced = attached_volume(observed, &endpoint)?;
    if made_from(ctx, &replaced.id).await?.as_deref() == Some(snapshot_id) {
        return Ok(Start::Done(RestoreReport {
            snapshot_id: snapshot_id.to_string(),
            instance_id: endpoint.instance.id.clone(),
            data_volume_id: replaced.id,
            replaced_volume_id: None,
            already_restored: true,
            verify: None,
            deployment: ctx.settings.name.clone(),
        }));
    }
    if !plan::make(ctx, observed, true).await?.is_noop() {
        return Err(Error::Refused(
            "the deployment has changes waiting (glbox plan lists them): nothing was changed\n  fix: run glbox up first, so that the restore starts from a box that matches the configuration".into(),
        ));
    }
    Ok(Start::Fresh {
        source,
        endpoint: Box::new(endpoint),
        replaced,
    })
}

fn running_box(ctx: &Ctx<'_>, observed: &Observed) -> Result<Endpoint> {
    crate::endpoint::running(
        ctx,
        &observed.instances,
        &observed.data_volumes,
        &observed.addresses,
    )
    .map_err(|_| {
        Error::Refused(
            "the deployment has no running instance to restore onto: nothing was changed\n  fix: run glbox up first".into(),
        )
    })
}

fn attached_volume(observed: &Observed, endpoint: &Endpoint) -> Result<Volume> {
    let id = endpoint.data_volume_id.as_deref();
    observed
        .data_volumes
        .iter()
        .find(|v| Some(v.id.as_str()) == id)
        .cloned()
        .ok_or_else(|| {
            Error::Refused(format!(
                "instance {} has no data volume attached: nothing was changed\n  fix: run glbox up first",
                endpoint.instance.id
            ))
        })
}

/// The snapshot a volume was made from.
async fn made_from(ctx: &Ctx<'_>, volume_id: &str) -> Result<Option<String>> {
    let volume = crate::aws::ec2::volumes::describe_one(&ctx.aws.ec2, ctx.ui, volume_id).await?;
    Ok(volume
        .and_then(|v| v.snapshot_id().map(str::to_string))
        .filter(|s| !s.is_empty()))
}

/// What will happen, shown before the question.
fn preview(ctx: &Ctx<'_>, start: &Start) -> String {
    let d = ctx.settings.data_volume;
    let (source, instance, replaced, resuming) = match start {
        Start::Fresh {
            source,
            endpoint,
            replaced,
        } => (source, &endpoint.instance.id, &replaced.id, false),
        Start::Resume {
            source,
            endpoint,
            intent,
        } => (
            source,
            &endpoint.instance.id,
            &intent.replaced_volume_id,
            true,
        ),
        Start::Done(_) => unreachable!("nothing to preview"),
    };
    let mut out = format!(
        "Restoring deployment {:?} from snapshot {} ({} GiB{}):\n",
        ctx.settings.name,
        source.snapshot_id,
        source.size_gib,
        source
            .taken_at
            .as_deref()
            .map(|t| format!(", taken {t}"))
            .unwrap_or_default()
    );
    if resuming {
        out.push_str("  finishing the restore an interrupted run began\n");
    }
    out.push_str(&format!(
        "  + a new data volume from it: encrypted gp3, {} GiB, {} IOPS, {} MiB/s\n  ~ GitLab on {instance} is stopped; {replaced} is detached and kept (tagged replaced, never deleted)\n  + the new volume attached in its place; GitLab configured and checked on the restored data\n  GitLab is unavailable during the swap; what was written since the snapshot stays on {replaced} only.\n",
        d.size_gib, d.iops, d.throughput_mibps
    ));
    out
}

/// Under the lease: the intent, the swap, the bootstrap, the checks.
async fn execute(ctx: &Ctx<'_>, observed: &Observed, start: Start) -> Result<RestoreReport> {
    let (endpoint, intent) = match start {
        Start::Fresh {
            source,
            endpoint,
            replaced,
        } => {
            let intent = restore::new_intent(ctx, &source, &endpoint.instance.id, &replaced);
            restore::record_intent(ctx, &intent).await?;
            (endpoint, intent)
        }
        Start::Resume {
            endpoint, intent, ..
        } => {
            ctx.ui.info(&format!(
                "finishing the restore from {} that began at {}",
                intent.snapshot_id, intent.started_at
            ));
            (endpoint, intent)
        }
        Start::Done(report) => return Ok(report),
    };
    let transport = endpoint.transport(ctx).await?;
    transport.wait_ready(ctx).await?;
    let new = restore::swap(ctx, &intent, &transport).await?;
    let smtp_username = ctx.settings.email.as_ref().and_then(|_| {
        observed
            .email
            .credentials
            .current
            .as_ref()
            .map(|c| c.access_key_id.clone())
    });
    endpoint
        .install(ctx, &new, smtp_username.as_deref())
        .await?;
    crate::checkpoint::reached("restore-bootstrap").await?;
    let facts = ctx.settings.email.as_ref().and_then(|email| {
        let ses = observed.email.ses.as_ref()?;
        Some(crate::email::facts(email, ses, false))
    });
    let report = endpoint.verify(ctx, &transport, facts.as_ref()).await?;
    // Unhealthy: the intent stays, so the same command checks again.
    if report.healthy {
        restore::close_intent(ctx).await?;
    }
    Ok(RestoreReport {
        snapshot_id: intent.snapshot_id.clone(),
        instance_id: intent.instance_id.clone(),
        data_volume_id: new,
        replaced_volume_id: Some(intent.replaced_volume_id.clone()),
        already_restored: false,
        verify: Some(report),
        deployment: ctx.settings.name.clone(),
    })
}
