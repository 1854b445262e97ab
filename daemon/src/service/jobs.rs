//! The cron jobs of a config: each shop's incremental and full schedules and each watch
//! list's, read in the configured time zone. All are built (and so validated) before any is
//! scheduled.

use super::passes::run_pass;
use super::shared::Shared;
use crate::schedule::{jittered, job};
use crate::sync::{Engine, PassStats};
use anyhow::Context as _;
use std::sync::Arc;
use tokio_cron_scheduler::{Job, JobScheduler};

pub(super) fn build_jobs(shared: &Arc<Shared>) -> anyhow::Result<Vec<Job>> {
    let tz = shared.settings.timezone;
    let mut jobs = Vec::new();
    for (index, shop) in shared.settings.shops.iter().enumerate() {
        // Cadences on "auto" have no job: the budget planner starts their passes.
        for (cadence, full) in [(&shop.incremental, false), (&shop.full, true)] {
            let Some(expr) = cadence.cron() else { continue };
            let cron = jittered(expr, &shop.label);
            let (shared, shop2) = (shared.clone(), shop.clone());
            let job =
                job(&cron, tz, move |_, _| Box::pin(run_pass(shared.clone(), shop2.clone(), index, full)))
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("shop {}", shop.label))?;
            jobs.push(job);
        }
    }
    for w in &shared.settings.watches {
        let (shared2, w2) = (shared.clone(), w.clone());
        let job = job(&w.schedule, tz, move |_, _| {
            let (shared, w) = (shared2.clone(), w2.clone());
            Box::pin(async move {
                let client = match &w.account {
                    Some(a) => shared.clients.iter().find(|c| c.account() == a),
                    None => shared.clients.first(),
                };
                let Some(client) = client else { return };
                let engine = Engine::new(client.clone(), shared.store.clone(), shared.settings.sync.clone());
                if let Err(e) = engine.watch_pass(&w.name, &w.items, &PassStats::default()).await {
                    tracing::warn!(watch = %w.name, error = %e, "watch pass failed");
                }
            })
        })
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("watch {}", w.name))?;
        jobs.push(job);
    }
    Ok(jobs)
}

pub(super) async fn add_jobs(sched: &JobScheduler, jobs: Vec<Job>) -> anyhow::Result<Vec<uuid::Uuid>> {
    let mut ids = Vec::with_capacity(jobs.len());
    for j in jobs {
        ids.push(sched.add(j).await?);
    }
    Ok(ids)
}
