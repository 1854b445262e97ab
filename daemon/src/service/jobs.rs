//! The cron jobs of a config: each shop's incremental and full schedules and each watch
//! list's, read in the configured time zone. All are built (and so validated) before any is
//! scheduled.

use super::passes::run_pass;
use super::shared::Shared;
use crate::config::{Settings, ShopSettings, WatchSettings};
use crate::schedule::{jittered, job};
use crate::sync::{Engine, PassStats};
use anyhow::Context as _;
use std::sync::Arc;
use tokio_cron_scheduler::{Job, JobScheduler};

/// What a cron job of the config runs.
enum Task<'a> {
    /// A pass of the shop at this index of `settings.shops`; full or incremental.
    Pass(usize, &'a ShopSettings, bool),
    Watch(&'a WatchSettings),
}

type Run = Box<
    dyn FnMut(uuid::Uuid, JobScheduler) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// Builds every cron job of `settings`, each running what `run` makes of its task. The one
/// way a job is built, for the daemon and for `check-config` alike: the same expressions (a
/// default cron spread by the shop's own label, not a stand-in), the same time zone, the
/// same error text.
fn build_each(settings: &Settings, mut run: impl FnMut(&Task<'_>) -> Run) -> anyhow::Result<Vec<Job>> {
    let tz = settings.timezone;
    let mut jobs = Vec::new();
    for (index, shop) in settings.shops.iter().enumerate() {
        // Cadences on "auto" have no job: the budget planner starts their passes.
        for (cadence, full) in [(&shop.incremental, false), (&shop.full, true)] {
            let Some(expr) = cadence.cron() else { continue };
            let cron = jittered(expr, &shop.label);
            let job = job(&cron, tz, run(&Task::Pass(index, shop, full)))
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("shop {}", shop.label))?;
            jobs.push(job);
        }
    }
    for w in &settings.watches {
        let job = job(&w.schedule, tz, run(&Task::Watch(w)))
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("watch {}", w.name))?;
        jobs.push(job);
    }
    Ok(jobs)
}

pub(super) fn build_jobs(shared: &Arc<Shared>) -> anyhow::Result<Vec<Job>> {
    build_each(&shared.settings, |task| match *task {
        Task::Pass(index, shop, full) => {
            let (shared, shop) = (shared.clone(), shop.clone());
            Box::new(move |_, _| Box::pin(run_pass(shared.clone(), shop.clone(), index, full)))
        }
        Task::Watch(w) => {
            let (shared2, w2) = (shared.clone(), w.clone());
            Box::new(move |_, _| {
                let (shared, w) = (shared2.clone(), w2.clone());
                Box::pin(async move {
                    let client = match &w.account {
                        Some(a) => shared.clients.iter().find(|c| c.account() == a),
                        None => shared.clients.first(),
                    };
                    let Some(client) = client else { return };
                    let engine =
                        Engine::new(client.clone(), shared.store.clone(), shared.settings.sync.clone());
                    if let Err(e) = engine.watch_pass(&w.name, &w.items, &PassStats::default()).await {
                        tracing::warn!(watch = %w.name, error = %e, "watch pass failed");
                    }
                })
            })
        }
    })
}

/// Builds every cron job of `settings` as the daemon would and schedules them on a scheduler
/// that never starts, so that `check-config` refuses what `run` would refuse, in the same
/// words; returns how many jobs there are.
pub async fn check_jobs(settings: &Settings) -> anyhow::Result<usize> {
    let jobs = build_each(settings, |_| Box::new(|_, _| Box::pin(async {})))?;
    let n = jobs.len();
    let mut sched = JobScheduler::new().await?;
    let added = add_jobs(&sched, jobs).await.map_err(|(_, e)| e);
    let _ = sched.shutdown().await;
    added.map(|_| n)
}

/// Schedules `jobs`; on a failure, returns the ids of those already added with the error, so
/// that the caller can take them out again and keep the schedule it had.
pub(super) async fn add_jobs(
    sched: &JobScheduler,
    jobs: Vec<Job>,
) -> Result<Vec<uuid::Uuid>, (Vec<uuid::Uuid>, anyhow::Error)> {
    let mut ids = Vec::with_capacity(jobs.len());
    for j in jobs {
        match sched.add(j).await {
            Ok(id) => ids.push(id),
            Err(e) => return Err((ids, e.into())),
        }
    }
    Ok(ids)
}
