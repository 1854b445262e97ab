//! Reload: debounce → validate → diff → apply, or the old config keeps running. Never half.

use super::jobs::{add_jobs, build_jobs};
use super::shared::Shared;
use super::systemd;
use crate::api::{Client, Hooks};
use crate::config::Settings;
use crate::metrics::Readiness;
use crate::sinks::SinkManager;
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::Mutex;
use tokio_cron_scheduler::JobScheduler;

/// Clients for `accounts`. An account whose settings and the `[api]` section are both
/// unchanged keeps its client as it is. Any other account gets a new client (an `[api]`
/// change counts as a change of every account: the base URL, signing and timeouts live in
/// the client); when one of `old` has the same app key, the new client carries on its pacing
/// and quota state as far as they still apply (see [`Client::rebuilt`]).
pub(super) fn clients_for(
    accounts: &[crate::api::AccountSettings],
    old: &[Client],
    api: &crate::api::ApiSettings,
    hooks: &Hooks,
) -> anyhow::Result<Vec<Client>> {
    accounts
        .iter()
        .map(|a| {
            if let Some(c) = old.iter().find(|c| c.settings() == a && c.api() == api) {
                return Ok(c.clone());
            }
            match old.iter().find(|c| c.settings().app_key == a.app_key) {
                Some(c) => Ok(c.rebuilt(api.clone(), a.clone(), hooks.clone())?),
                None => Ok(Client::new(api.clone(), a.clone(), hooks.clone())?),
            }
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
                full_claims: self.shared.full_claims.clone(),
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
            // Validated: now apply, the steps that can be undone first. The new jobs are
            // scheduled beside the old ones before any old one goes, so a failure here leaves
            // the old schedule running (for a moment both run; the per-shop locks, carried
            // over, make a shop's second run skip as "running").
            let added = match add_jobs(&self.sched, jobs).await {
                Ok(ids) => ids,
                Err((ids, e)) => {
                    remove_jobs(&self.sched, ids).await;
                    return Err(("error", e));
                }
            };
            // Sinks last of what can fail: a failed apply (the state unwritable) cannot be
            // rolled back, but the old schedule still runs and a later reload retries it.
            // The manager never waits long on a sink stuck in a plugin call (see
            // sinks/manager.rs), so this lock is not held for long either.
            let failed = match self.sinks.lock().await.apply(&next.settings.sinks).await {
                Ok(f) => f,
                Err(e) => {
                    remove_jobs(&self.sched, added).await;
                    return Err(("error", e.into()));
                }
            };
            self.ready.sinks_loaded.store(failed.is_empty(), Ordering::Relaxed);
            // Passes in flight keep their own Arc of the old settings and finish; only
            // future runs follow the new schedules.
            remove_jobs(&self.sched, std::mem::replace(&mut self.jobs, added)).await;
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
            forget_removed(&self.shared, &next);
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

/// Removes the old jobs `ids` from the schedule. A job the scheduler no longer knows is
/// gone already, which is what was wanted, so failures are only logged.
async fn remove_jobs(sched: &JobScheduler, ids: Vec<uuid::Uuid>) {
    for id in ids {
        if let Err(e) = sched.remove(&id).await {
            tracing::warn!(job = %id, error = %e, "cannot remove a job from the schedule");
        }
    }
}

/// Drops the metric series of the shops, sinks and accounts `old` has and `new` has not, so
/// that no alert fires for ever on a shop that is no longer synced.
fn forget_removed(old: &Shared, new: &Shared) {
    let keys = |s: &Shared| -> HashSet<String> {
        s.settings
            .shops
            .iter()
            .flat_map(|shop| std::iter::once(shop.label.clone()).chain(s.known_member(shop)))
            .collect()
    };
    let m = &new.metrics;
    for shop in keys(old).difference(&keys(new)) {
        m.forget_shop(shop);
    }
    let sinks = |s: &Shared| -> HashSet<String> { s.settings.sinks.iter().map(|k| k.name.clone()).collect() };
    for sink in sinks(old).difference(&sinks(new)) {
        m.forget_sink(sink);
    }
    let accounts =
        |s: &Shared| -> HashSet<String> { s.settings.accounts.iter().map(|a| a.name.clone()).collect() };
    for account in accounts(old).difference(&accounts(new)) {
        m.forget_account(account);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AccountSettings, ApiSettings};

    fn account(name: &str, key: &str) -> AccountSettings {
        AccountSettings {
            name: name.into(),
            app_key: key.into(),
            app_secret: crate::secret::Secret::new("s"),
            daily_quota: 1000,
            oauth: false,
            proxy: None,
            pacing: Default::default(),
        }
    }

    #[test]
    fn an_api_change_rebuilds_every_client_and_the_quota_count_carries_on() {
        let hooks = Hooks::default();
        let api = ApiSettings::default();
        let accounts = [account("main", "1"), account("other", "2")];
        let old = clients_for(&accounts, &[], &api, &hooks).unwrap();
        assert!(old[0].quota().spend(0).is_ok());

        // Nothing changed: the very same clients.
        let same = clients_for(&accounts, &old, &api, &hooks).unwrap();
        assert!(same.iter().zip(&old).all(|(a, b)| std::ptr::eq(a.quota(), b.quota()) && a.api() == b.api()));

        // Another gateway: every account gets a client for it, on the same quota and pacer.
        let moved = ApiSettings { base_url: "http://127.0.0.1:9/".into(), ..api.clone() };
        let new = clients_for(&accounts, &old, &moved, &hooks).unwrap();
        for (n, o) in new.iter().zip(&old) {
            assert_eq!(n.api().base_url, "http://127.0.0.1:9/");
            assert!(
                std::ptr::eq(n.quota(), o.quota()),
                "a pass still on the old client spends on the same count"
            );
            assert!(std::ptr::eq(n.pacer(), o.pacer()));
        }
        assert_eq!(new[0].quota().used(0), 1);

        // A new app key under the old name: nothing of the old account carries over.
        let rekeyed = clients_for(&[account("main", "3")], &old, &api, &hooks).unwrap();
        assert!(!std::ptr::eq(rekeyed[0].quota(), old[0].quota()));
        assert_eq!(rekeyed[0].quota().used(0), 0);
    }
}
