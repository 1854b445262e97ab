//! Reload: debounce → validate → diff → apply, or the old config keeps running. Never half.

use super::jobs::{add_jobs, build_jobs};
use super::shared::Shared;
use super::systemd;
use crate::api::{Client, Hooks};
use crate::config::Settings;
use crate::metrics::Readiness;
use crate::sinks::SinkManager;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::Mutex;
use tokio_cron_scheduler::JobScheduler;

/// Clients for `accounts`, re-using the client of every account whose settings did not
/// change (its pacing state and quota count carry on).
pub(super) fn clients_for(
    accounts: &[crate::api::AccountSettings],
    old: &[Client],
    api: &crate::api::ApiSettings,
    hooks: &Hooks,
) -> anyhow::Result<Vec<Client>> {
    accounts
        .iter()
        .map(|a| match old.iter().find(|c| c.settings() == a) {
            Some(c) => Ok(c.clone()),
            None => Ok(Client::new(api.clone(), a.clone(), hooks.clone())?),
        })
        .collect()
}

/// The running daemon's changeable parts.
pub(super) struct Live {
    pub sched: JobScheduler,
    pub jobs: Vec<uuid::Uuid>,
    pub shared: Arc<Shared>,
    pub sinks: Arc<Mutex<SinkManager>>,
    pub hooks: Hooks,
    pub ready: Arc<Readiness>,
    /// Where the control socket reads the current shared state.
    pub published: tokio::sync::watch::Sender<Arc<Shared>>,
}

impl Live {
    /// Debounced, validated, diffed, applied, or the old config keeps running: never half.
    /// Returns a line saying what runs now, or why the new config was refused.
    pub async fn reload(&mut self, config: &Path) -> Result<String, String> {
        systemd::notify_reloading();
        let m = self.shared.metrics.clone();
        let outcome = async {
            let new = Settings::load(config).map_err(|e| ("invalid", anyhow::Error::from(e)))?;
            let clients = clients_for(&new.accounts, &self.shared.clients, &new.api, &self.hooks)
                .map_err(|e| ("invalid", e))?;
            let passes = if new.max_passes == self.shared.settings.max_passes {
                self.shared.passes.clone()
            } else {
                Arc::new(tokio::sync::Semaphore::new(new.max_passes))
            };
            let next = Arc::new(Shared {
                store: self.shared.store.clone(),
                metrics: m.clone(),
                clients: clients.clone(),
                // Locks carry over, so a pass in flight still keeps its shop's next one out.
                locks: std::sync::Mutex::new(self.shared.locks.lock().map(|l| l.clone()).unwrap_or_default()),
                active: self.shared.active.clone(),
                passes,
                resume_after: std::sync::Mutex::new(
                    self.shared.resume_after.lock().map(|r| r.clone()).unwrap_or_default(),
                ),
                ledger: std::sync::Mutex::new(self.shared.ledger.lock().map(|l| l.clone()).unwrap_or_default()),
                cron_demand: super::planning::cron_demand(&new, &clients, &self.shared.store),
                cron_intervals: super::planning::cron_intervals(&new),
                poll_intervals: Default::default(),
                replan: self.shared.replan.clone(),
                settings: new,
            });
            let jobs = build_jobs(&next).map_err(|e| ("invalid", e))?;
            // Validated: now apply. Passes in flight keep their own Arc of the old settings
            // and finish; only future runs follow the new schedules.
            for id in self.jobs.drain(..) {
                let _ = self.sched.remove(&id).await;
            }
            self.jobs = add_jobs(&self.sched, jobs).await.map_err(|e| ("error", e))?;
            let failed =
                self.sinks.lock().await.apply(&next.settings.sinks).await.map_err(|e| ("error", e.into()))?;
            self.ready.sinks_loaded.store(failed.is_empty(), Ordering::Relaxed);
            // A removed shop's pass in flight commits its page in hand and stops.
            if let Ok(active) = next.active.lock() {
                for (label, w) in active.iter() {
                    if !next.settings.shops.iter().any(|s| next.known_member(s).as_ref() == Some(label)) {
                        if let Some(stats) = w.upgrade() {
                            tracing::info!(shop = %label, "shop removed from the config; its pass stops after the page in hand");
                            stats.request_stop();
                        }
                    }
                }
            }
            self.shared = next;
            self.published.send_replace(self.shared.clone());
            Ok::<(), (&str, anyhow::Error)>(())
        }
        .await;
        match outcome {
            Ok(()) => {
                m.reloads.with_label_values(&["ok"]).inc();
                tracing::info!(
                    shops = self.shared.settings.shops.len(),
                    sinks = self.shared.settings.sinks.len(),
                    "config reloaded"
                );
                systemd::notify_ready("config reloaded");
                Ok(format!(
                    "config reloaded: {} shops, {} watch lists, {} sinks, {} accounts",
                    self.shared.settings.shops.len(),
                    self.shared.settings.watches.len(),
                    self.shared.settings.sinks.len(),
                    self.shared.settings.accounts.len()
                ))
            }
            Err((result, e)) => {
                m.reloads.with_label_values(&[result]).inc();
                tracing::error!(error = %format!("{e:#}"), "new config refused; the old one keeps running");
                systemd::notify_ready("config reload refused; the old config keeps running");
                Err(format!("{e:#}"))
            }
        }
    }
}

/// Watches the config file's folder (editors replace files atomically, so watching the file
/// itself would lose it after the first save) and reports changes to that file.
pub(super) fn watch_config(
    config: &Path,
) -> anyhow::Result<(notify::RecommendedWatcher, tokio::sync::mpsc::UnboundedReceiver<()>)> {
    use notify::Watcher;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let name = config.file_name().map(|n| n.to_os_string());
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev {
            if ev.paths.iter().any(|p| p.file_name().map(|n| n.to_os_string()) == name)
                && !ev.kind.is_access()
            {
                let _ = tx.send(());
            }
        }
    })?;
    let dir = config.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
    Ok((watcher, rx))
}
