//! The daemon's life: it opens the state, starts the sinks, schedules every shop's passes,
//! serves metrics, talks to systemd, reloads its config on SIGHUP or a file change, resumes
//! open full passes as quota allows, and on SIGTERM stops starting passes, lets the passes in
//! hand commit their page, flushes the sinks and exits.

use super::control::{Control, ReloadAsk};
use super::gauges::refresher;
use super::jobs::{add_jobs, build_jobs};
use super::passes::{resume_open, start_due};
use super::reload::{clients_for, watch_config, Live};
use super::shared::Shared;
use super::systemd;
use crate::api::{CallRecord, Hooks};
use crate::clock::now_ms;
use crate::config::Settings;
use crate::control::Server;
use crate::metrics::{serve, Metrics, Readiness};
use crate::sinks::SinkManager;
use crate::state::Store;
use anyhow::Context as _;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_cron_scheduler::{Job, JobScheduler};

/// Runs the daemon until SIGTERM/SIGINT or until `stop` resolves.
pub async fn run(config: &Path, stop: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(Readiness::default());
    let store = open_state(&settings).await?;
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
    let (settings_for_demand, clients_for_demand) = (settings.clone(), clients.clone());
    let shared = Arc::new(Shared {
        store: store.clone(),
        metrics: metrics.clone(),
        clients,
        settings,
        locks: Default::default(),
        full_claims: Default::default(),
        active: Default::default(),
        passes: Arc::new(tokio::sync::Semaphore::new(max_passes)),
        resume_after: Default::default(),
        ledger: Default::default(),
        cron_demand: super::planning::cron_demand(&settings_for_demand, &clients_for_demand, &store),
        cron_intervals: super::planning::cron_intervals(&settings_for_demand),
        poll_intervals: Default::default(),
        replan: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind(shared.settings.metrics_listen)
        .await
        .with_context(|| format!("cannot listen on {}", shared.settings.metrics_listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "metrics on http://{addr}/metrics");
    // What the metrics and the control socket read: the shared state a reload replaced last.
    let (published, shared_rx) = tokio::sync::watch::channel(shared.clone());
    tokio::spawn(serve(
        listener,
        metrics.clone(),
        ready.clone(),
        refresher(shared_rx.clone(), sinks.clone()),
    ));
    // `[push] listen` and `path` are read here only: a reload changes whose secret and which
    // shops apply, not where the receiver listens.
    let push = match &shared.settings.push {
        Some(p) => Some(
            crate::push::start(p, store.clone(), metrics.clone(), Arc::new(PushDirectory(shared_rx.clone())))
                .await?,
        ),
        None => None,
    };

    // The CLI's way in: the state is locked to this process from here on.
    let (reload_tx, mut reload_asks) = tokio::sync::mpsc::channel::<ReloadAsk>(4);
    let control = Arc::new(Control { shared: shared_rx, sinks: sinks.clone(), reload: reload_tx });
    let control = Server::start(&shared.settings.control_socket, control)?;

    let sched = JobScheduler::new().await?;
    let jobs = add_jobs(&sched, build_jobs(&shared)?).await.map_err(|(_, e)| e)?;
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

    // Shops never synced, and full passes left open, go on now; a shop that has its
    // watermark waits for its schedules (a restart costs no calls). Shops on "auto" are
    // the planner's, from its first tick on.
    start_due(&shared);
    super::planning::tick(&shared);

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut housekeeping = tokio::time::interval(Duration::from_millis(250));
    let mut last_plan = now_ms();
    let (_watcher, mut changes) = watch_config(config)?;
    let replan = shared.replan.clone();
    let mut live = Live { sched, jobs, shared, sinks, hooks, ready: ready.clone(), published };
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
            _ = hup.recv() => {
                let _ = live.reload(config).await;
                super::planning::tick(&live.shared);
            }
            Some(ask) = reload_asks.recv() => {
                tracing::info!("reload asked for on the control socket");
                let _ = ask.send(live.reload(config).await);
                super::planning::tick(&live.shared);
            }
            // A pass ended: its slot and what it taught are used at once.
            _ = replan.notified() => super::planning::tick(&live.shared),
            Some(()) = changes.recv() => {
                reload_at = Some(tokio::time::Instant::now() + Duration::from_millis(500));
            }
            _ = housekeeping.tick() => {
                if reload_at.is_some_and(|t| t <= tokio::time::Instant::now()) {
                    reload_at = None;
                    tracing::info!("config file changed");
                    let _ = live.reload(config).await;
                    super::planning::tick(&live.shared);
                }
                let now = now_ms();
                if now - last_plan >= live.shared.settings.plan_every.as_millis() as i64 {
                    last_plan = now;
                    resume_open(&live.shared);
                    super::planning::tick(&live.shared);
                }
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
    // Messages not yet acknowledged are sent again by the platform; stored ones wait.
    drop(push);
    // No more requests: a CLI started from here on waits for the state to be free.
    drop(control);
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

/// How long the daemon waits at start for a state another shopsync process holds: a CLI
/// command (`status`, `export`) run while no daemon answers opens the state itself for the
/// moment it needs.
const STATE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Opens the state, waiting while a short-lived command holds it.
async fn open_state(settings: &Settings) -> anyhow::Result<Store> {
    let t0 = std::time::Instant::now();
    let mut told = false;
    loop {
        match Store::open(&settings.state_dir, settings.cache_bytes) {
            Err(e) if e.is_locked() && t0.elapsed() < STATE_WAIT => {
                // A daemon that answers on the socket is not a passing command: no wait.
                if matches!(crate::control::Client::connect(&settings.control_socket), Ok(Some(_))) {
                    anyhow::bail!(
                        "another shopsync daemon runs with the state in {} (its control socket {} answers)",
                        settings.state_dir.display(),
                        settings.control_socket.display()
                    );
                }
                if !told {
                    let pid = crate::control::lock_holder(&settings.state_dir)
                        .map_or_else(|| "pid unknown".to_string(), |p| format!("pid {p}"));
                    tracing::warn!(state_dir = %settings.state_dir.display(), holder = %pid, "the state is held by another shopsync process; waiting up to 60 s for it");
                    told = true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            r => return Ok(r?),
        }
    }
}

/// The push receiver's view of the current config.
struct PushDirectory(tokio::sync::watch::Receiver<Arc<Shared>>);

impl crate::push::Directory for PushDirectory {
    fn secret(&self) -> Option<crate::secret::Secret> {
        let s = self.0.borrow();
        let name = &s.settings.push.as_ref()?.account;
        s.settings.account(name).map(|a| a.app_secret.clone())
    }

    /// A configured shop whose member id is `member`, fetched with its pinned account, else
    /// with the `[push]` account (on param2 an account's token speaks for one member, so
    /// the account that receives a shop's messages is the one that reads its offers).
    fn route(&self, member: &str) -> Option<crate::push::Route> {
        let s = self.0.borrow().clone();
        let shop = s.settings.shops.iter().find(|x| s.known_member(x).as_deref() == Some(member))?;
        let account = shop.account.clone().or_else(|| Some(s.settings.push.as_ref()?.account.clone()))?;
        let client = s.clients.iter().find(|c| c.account() == account)?.clone();
        Some(crate::push::Route {
            key: member.to_string(),
            client,
            lock: s.lock_for(member),
            sync: s.settings.sync.clone(),
        })
    }

    fn puller(&self) -> Option<crate::api::Client> {
        let s = self.0.borrow();
        let name = &s.settings.push.as_ref()?.account;
        s.clients.iter().find(|c| c.account() == name).cloned()
    }

    /// Each shop with `follow = true` is followed by the `[push]` account: the app that
    /// follows an offer is the one its messages go to.
    fn follows(&self) -> Vec<crate::push::FollowTarget> {
        let Some(client) = self.puller() else { return Vec::new() };
        let s = self.0.borrow().clone();
        let budget = &s.settings.budget;
        s.settings
            .shops
            .iter()
            .filter(|shop| shop.follow)
            .filter_map(|shop| {
                Some(crate::push::FollowTarget {
                    key: s.known_member(shop)?,
                    client: client.clone(),
                    share: budget.watch,
                    reserve: budget.reserve,
                })
            })
            .collect()
    }
}
