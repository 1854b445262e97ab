//! `shopsync run`: the daemon. It opens the state, starts the sinks, schedules every shop's
//! passes, serves metrics, talks to systemd, reloads its config on SIGHUP, and on SIGTERM
//! stops starting passes, lets the passes in hand commit their page, flushes the sinks and
//! exits.

mod systemd;

use crate::api::{CallRecord, Client, Hooks, ShopRef};
use crate::clock::now_ms;
use crate::config::{Settings, ShopSettings};
use crate::metrics::{serve, Metrics, Readiness};
use crate::schedule::jittered;
use crate::sinks::SinkManager;
use crate::state::{PassKind, Store};
use crate::sync::{Engine, PassStats};
use anyhow::Context as _;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_cron_scheduler::{Job, JobScheduler};

/// Passes in flight: each shop's label with its pass's live counters.
type ActivePasses = Arc<std::sync::Mutex<Vec<(String, std::sync::Weak<PassStats>)>>>;

/// Everything a scheduled job needs.
struct Shared {
    store: Store,
    metrics: Arc<Metrics>,
    clients: Vec<Client>,
    settings: Settings,
    /// One lock per shop: two passes of one shop never run at once.
    locks: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Passes in flight by shop label, so shutdown (or a reload that removes their shop) can
    /// ask them to stop after their page in hand.
    active: ActivePasses,
    /// `daemon.max_passes` permits: passes beyond it wait (holding their shop's lock, so the
    /// shop's next cron run is skipped as still running rather than queued twice).
    passes: Arc<tokio::sync::Semaphore>,
}

impl Shared {
    fn lock_for(&self, key: &str) -> Arc<Mutex<()>> {
        let mut m = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key.to_string()).or_default().clone()
    }

    /// The accounts a shop may use, in order: its pinned one, or all of them starting at the
    /// shop's position (so shops spread over the accounts), leaving out those whose quota is
    /// spent until the reset.
    fn candidates(&self, shop: &ShopSettings, index: usize) -> Vec<&Client> {
        let now = now_ms();
        let n = self.clients.len();
        let order: Vec<&Client> = match &shop.account {
            Some(name) => self.clients.iter().filter(|c| c.account() == name).collect(),
            None => (0..n).map(|k| &self.clients[(index + k) % n]).collect(),
        };
        order.into_iter().filter(|c| c.quota().remaining(now) > 0).collect()
    }
}

/// Calls a full pass of a shop with `items` stored items is likely to need (list calls with
/// the planning margin, plus SKU calls for the share of listings that change).
fn full_pass_estimate(items: u64) -> u64 {
    items.div_ceil(40) * 11 / 10 + items / 100 + 10
}

async fn run_pass(shared: Arc<Shared>, shop: ShopSettings, index: usize, full: bool) {
    let lock = shared.lock_for(&shop.label);
    let Ok(_guard) = lock.try_lock() else {
        tracing::warn!(shop = %shop.label, full, "scheduled pass skipped: the previous pass of this shop still runs or waits its turn");
        shared.metrics.passes_skipped.with_label_values(&[&shop.label, "running"]).inc();
        return;
    };
    let Ok(_permit) = shared.passes.clone().acquire_owned().await else {
        return; // never closed
    };
    let candidates = shared.candidates(&shop, index);
    let Some(first) = candidates.first() else {
        tracing::warn!(shop = %shop.label, "no account with quota left today; the pass waits for the reset");
        shared.metrics.passes_skipped.with_label_values(&[&shop.label, "quota"]).inc();
        return;
    };
    let engine = Engine::new((*first).clone(), shared.store.clone(), shared.settings.sync.clone());
    let member = match engine.resolve(&shop.shop).await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(shop = %shop.label, error = %e, "cannot resolve the shop");
            shared.metrics.passes.with_label_values(&[&shop.label, "resolve", "error"]).inc();
            return;
        }
    };
    let started = std::time::Instant::now();
    let stored = shared
        .store
        .shop(member.as_str())
        .map(|s| (s.item_count, s.watermark_ms.is_none()))
        .unwrap_or((0, true));
    let mut result = None;
    for client in &candidates {
        // Never start more work than the account can finish today, when that is knowable.
        let need = if full || stored.1 { full_pass_estimate(stored.0) } else { 0 };
        let left = client.quota().remaining(now_ms());
        if stored.0 > 0 && need > left {
            tracing::warn!(shop = %member, account = client.account(), need, left, "full pass needs more calls than the account has left today; trying another");
            continue;
        }
        let engine = Engine::new((*client).clone(), shared.store.clone(), shared.settings.sync.clone());
        let stats = Arc::new(PassStats::default());
        if let Ok(mut a) = shared.active.lock() {
            a.retain(|(_, w)| w.strong_count() > 0);
            a.push((shop.label.clone(), Arc::downgrade(&stats)));
        }
        let r = engine.pass(&member, full, None, stats).await;
        if let Err(crate::sync::SyncError::Api(crate::api::ApiError::QuotaExhausted { account, .. })) = &r {
            tracing::warn!(shop = %member, account = %account, "account's daily quota ran out mid-pass; moving the shop to the next account with quota left");
            shared.metrics.passes_skipped.with_label_values(&[member.as_str(), "quota_moved"]).inc();
            result = Some(r);
            continue;
        }
        result = Some(r);
        break;
    }
    let Some(result) = result else {
        tracing::warn!(shop = %member, "skipped: no account has quota enough for this pass today");
        shared.metrics.passes_skipped.with_label_values(&[member.as_str(), "quota"]).inc();
        return;
    };
    let m = &shared.metrics;
    match result {
        Ok(r) => {
            let kind = match r.kind {
                PassKind::Full => "full",
                _ => "incremental",
            };
            m.passes.with_label_values(&[member.as_str(), kind, "ok"]).inc();
            m.pass_duration.with_label_values(&[kind]).observe(started.elapsed().as_secs_f64());
            m.events.with_label_values(&["create"]).inc_by(r.creates);
            m.events.with_label_values(&["update"]).inc_by(r.updates);
            m.events.with_label_values(&["delete"]).inc_by(r.deletes);
        }
        Err(e) => {
            let kind = if full { "full" } else { "incremental" };
            m.passes.with_label_values(&[member.as_str(), kind, "error"]).inc();
            tracing::warn!(shop = %member, error = %e, kind = e.kind(), "pass failed");
        }
    }
}

/// Every job of a config, built (and so validated) before anything is scheduled.
fn build_jobs(shared: &Arc<Shared>) -> anyhow::Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for (index, shop) in shared.settings.shops.iter().enumerate() {
        for (expr, full) in [(&shop.incremental, false), (&shop.full, true)] {
            let cron = jittered(expr, &shop.label);
            let label = shop.label.clone();
            let (shared, shop) = (shared.clone(), shop.clone());
            let job = Job::new_async(cron.as_str(), move |_, _| {
                Box::pin(run_pass(shared.clone(), shop.clone(), index, full))
            })
            .with_context(|| format!("shop {label}: schedule {cron:?}"))?;
            jobs.push(job);
        }
    }
    for w in &shared.settings.watches {
        let (shared2, w2) = (shared.clone(), w.clone());
        let job = Job::new_async(w.schedule.as_str(), move |_, _| {
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
        .with_context(|| format!("watch {}: schedule {:?}", w.name, w.schedule))?;
        jobs.push(job);
    }
    Ok(jobs)
}

async fn add_jobs(sched: &JobScheduler, jobs: Vec<Job>) -> anyhow::Result<Vec<uuid::Uuid>> {
    let mut ids = Vec::with_capacity(jobs.len());
    for j in jobs {
        ids.push(sched.add(j).await?);
    }
    Ok(ids)
}

/// Clients for `accounts`, re-using the client of every account whose settings did not
/// change (its pacing state and quota count carry on).
fn clients_for(
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
struct Live {
    sched: JobScheduler,
    jobs: Vec<uuid::Uuid>,
    shared: Arc<Shared>,
    sinks: Arc<Mutex<SinkManager>>,
    hooks: Hooks,
    ready: Arc<Readiness>,
}

impl Live {
    /// Debounced, validated, diffed, applied, or the old config keeps running: never half.
    async fn reload(&mut self, config: &Path) {
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
                clients,
                settings: new,
                // Locks carry over, so a pass in flight still keeps its shop's next one out.
                locks: std::sync::Mutex::new(self.shared.locks.lock().map(|l| l.clone()).unwrap_or_default()),
                active: self.shared.active.clone(),
                passes,
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
                    if !next.settings.shops.iter().any(|s| &s.label == label) {
                        if let Some(stats) = w.upgrade() {
                            tracing::info!(shop = %label, "shop removed from the config; its pass stops after the page in hand");
                            stats.request_stop();
                        }
                    }
                }
            }
            self.shared = next;
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
            }
            Err((result, e)) => {
                m.reloads.with_label_values(&[result]).inc();
                tracing::error!(error = %format!("{e:#}"), "new config refused; the old one keeps running");
                systemd::notify_ready("config reload refused; the old config keeps running");
            }
        }
    }
}

/// Watches the config file's folder (editors replace files atomically, so watching the file
/// itself would lose it after the first save) and reports changes to that file.
fn watch_config(
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

/// Per sink: delivered, errors and dead-lettered counts at the previous scrape.
type SinkCounts = Arc<std::sync::Mutex<HashMap<String, (u64, u64, u64)>>>;

/// Updates the gauges that are read from state, at scrape time.
fn refresher(shared: Arc<Shared>, sinks: Arc<Mutex<SinkManager>>) -> Arc<dyn Fn() + Send + Sync> {
    let last: SinkCounts = Default::default();
    Arc::new(move || {
        let m = &shared.metrics;
        let now = now_ms();
        for c in &shared.clients {
            m.quota_used.with_label_values(&[c.account()]).set(c.quota().used(now) as i64);
            m.quota_remaining.with_label_values(&[c.account()]).set(c.quota().remaining(now) as i64);
            m.pacing_interval
                .with_label_values(&[c.account()])
                .set(c.pacer().current_interval().as_secs_f64());
        }
        if let Ok(shops) = shared.store.shops() {
            for (id, s) in shops {
                if let Some(w) = s.watermark_ms {
                    m.watermark.with_label_values(&[&id]).set(w as f64 / 1000.0);
                }
                m.items.with_label_values(&[&id]).set(s.item_count as i64);
                if let Some(c) = s.completeness {
                    let count = if c.official == 0 { 1.0 } else { c.fetched as f64 / c.official as f64 };
                    m.completeness.with_label_values(&[&id, "count"]).set(count);
                    m.completeness.with_label_values(&[&id, "sku"]).set(c.sku_share);
                    m.completeness.with_label_values(&[&id, "price"]).set(c.price_share);
                }
            }
        }
        let outbox_last = shared.store.outbox_last_pos().unwrap_or(0);
        if let Ok(mgr) = sinks.try_lock() {
            let mut seen = last.lock().unwrap_or_else(|e| e.into_inner());
            for (name, h) in mgr.health() {
                let now = (
                    h.delivered.load(Ordering::Relaxed),
                    h.errors.load(Ordering::Relaxed),
                    h.dead_lettered.load(Ordering::Relaxed),
                );
                let before = seen.insert(name.clone(), now).unwrap_or((0, 0, 0));
                m.sink_delivered.with_label_values(&[&name]).inc_by(now.0.saturating_sub(before.0));
                m.sink_errors.with_label_values(&[&name]).inc_by(now.1.saturating_sub(before.1));
                m.sink_dead_letters.with_label_values(&[&name]).inc_by(now.2.saturating_sub(before.2));
                m.sink_healthy.with_label_values(&[&name]).set(i64::from(h.healthy.load(Ordering::Relaxed)));
                let cursor = shared.store.sink_cursor(&name).ok().flatten().unwrap_or(0);
                m.sink_lag.with_label_values(&[&name]).set(outbox_last.saturating_sub(cursor) as i64);
            }
        }
    })
}

/// Runs the daemon until SIGTERM/SIGINT or until `stop` resolves.
pub async fn run(config: &Path, stop: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(Readiness::default());
    let store = Store::open(&settings.state_dir, settings.cache_bytes)?;
    ready.state_open.store(true, Ordering::Relaxed);
    let m2 = metrics.clone();
    let observer: crate::api::Observer = Arc::new(move |r: &CallRecord<'_>| {
        m2.api_calls.with_label_values(&[r.account, r.method, r.outcome]).inc();
        m2.api_latency.with_label_values(&[r.method]).observe(r.latency.as_secs_f64());
    });
    let hooks =
        Hooks { quota: Arc::new(store.clone()), tokens: Arc::new(store.clone()), observer: Some(observer) };
    let clients = clients_for(&settings.accounts, &[], &settings.api, &hooks)?;

    let mut mgr = SinkManager::new(
        store.clone(),
        settings.plugin_dir.clone(),
        Duration::from_millis(200),
        settings.sink_retention,
    );
    let failed = mgr.apply(&settings.sinks).await?;
    ready.sinks_loaded.store(failed.is_empty(), Ordering::Relaxed);
    let sinks = Arc::new(Mutex::new(mgr));

    let max_passes = settings.max_passes;
    let shared = Arc::new(Shared {
        store: store.clone(),
        metrics: metrics.clone(),
        clients,
        settings,
        locks: Default::default(),
        active: Default::default(),
        passes: Arc::new(tokio::sync::Semaphore::new(max_passes)),
    });
    let listener = tokio::net::TcpListener::bind(shared.settings.metrics_listen)
        .await
        .with_context(|| format!("cannot listen on {}", shared.settings.metrics_listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "metrics on http://{addr}/metrics");
    tokio::spawn(serve(listener, metrics.clone(), ready.clone(), refresher(shared.clone(), sinks.clone())));

    let sched = JobScheduler::new().await?;
    let jobs = add_jobs(&sched, build_jobs(&shared)?).await?;
    // A heartbeat job proves the scheduler loop really ticks; the watchdog pings on it.
    let tick = Arc::new(AtomicI64::new(now_ms()));
    let (t2, m3) = (tick.clone(), metrics.clone());
    sched
        .add(Job::new_async("* * * * * *", move |_, _| {
            let (t, m) = (t2.clone(), m3.clone());
            Box::pin(async move {
                t.store(now_ms(), Ordering::Relaxed);
                m.scheduler_ticks.set(now_ms() / 1000);
            })
        })?)
        .await?;
    sched.start().await?;
    ready.scheduler_running.store(true, Ordering::Relaxed);
    systemd::notify_ready(&format!("syncing {} shops", shared.settings.shops.len()));
    tracing::info!(
        shops = shared.settings.shops.len(),
        sinks = shared.settings.sinks.len(),
        "shopsync running"
    );

    // Shops that never had a pass get their first (full) one now rather than at the next cron.
    for (i, shop) in shared.settings.shops.iter().enumerate() {
        let first = match &shop.shop {
            ShopRef::Member(m) => {
                shared.store.shop(m.as_str()).map(|s| s.watermark_ms.is_none()).unwrap_or(true)
            }
            ShopRef::Url(_) => true,
        };
        if first {
            tokio::spawn(run_pass(shared.clone(), shop.clone(), i, true));
        }
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut housekeeping = tokio::time::interval(Duration::from_millis(250));
    let (_watcher, mut changes) = watch_config(config)?;
    let mut live = Live { sched, jobs, shared, sinks, hooks, ready: ready.clone() };
    // File events come in bursts (write, rename, chmod); reload once they settle.
    let mut reload_at: Option<tokio::time::Instant> = None;
    let mut last_watchdog = 0i64;
    let mut storage_failed = None;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = hup.recv() => live.reload(config).await,
            Some(()) = changes.recv() => {
                reload_at = Some(tokio::time::Instant::now() + Duration::from_millis(500));
            }
            _ = housekeeping.tick() => {
                if reload_at.is_some_and(|t| t <= tokio::time::Instant::now()) {
                    reload_at = None;
                    tracing::info!("config file changed");
                    live.reload(config).await;
                }
                let now = now_ms();
                if now - last_watchdog >= 1_000 {
                    last_watchdog = now;
                    if now - tick.load(Ordering::Relaxed) < 5_000 {
                        systemd::watchdog();
                    }
                    if let Ok(mgr) = live.sinks.try_lock() {
                        if let Err(e) = mgr.collect_outbox() {
                            tracing::warn!(error = %e, "outbox collection failed");
                        }
                    }
                    if let Err(e) = live.shared.store.probe() {
                        ready.state_open.store(false, Ordering::Relaxed);
                        tracing::error!(error = %e, "the state cannot be written any more; stopping so that a restart reopens it");
                        storage_failed = Some(e);
                        break;
                    }
                }
            }
        }
    }
    let Live { mut sched, shared, sinks, .. } = live;
    systemd::notify_stopping();
    tracing::info!("stopping: no new passes; waiting for the passes in hand");
    let _ = sched.shutdown().await;
    if let Ok(active) = shared.active.lock() {
        for stats in active.iter().filter_map(|(_, w)| w.upgrade()) {
            stats.request_stop();
        }
    }
    let locks: Vec<Arc<Mutex<()>>> =
        shared.locks.lock().map(|l| l.values().cloned().collect()).unwrap_or_default();
    for l in locks {
        // Each page commits atomically, so a pass cut short loses nothing committed; wait a
        // little for the page in hand all the same.
        let _ = tokio::time::timeout(Duration::from_secs(20), l.lock()).await;
    }
    sinks.lock().await.shutdown().await;
    if let Some(e) = storage_failed {
        // Exit non-zero: systemd's Restart=on-failure reopens the state, which sled then
        // recovers up to its last committed transaction; it fails again at open while the
        // cause (a full disk) lasts.
        anyhow::bail!(
            "the state in {} cannot be written ({e}); what was committed is kept; restart once the cause is gone",
            shared.settings.state_dir.display()
        );
    }
    store.flush().await?;
    tracing::info!("stopped");
    Ok(())
}
