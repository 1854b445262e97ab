//! The set of running sinks, changed at run time.
//!
//! `apply` takes the new sink list of a reloaded config and diffs it against what runs:
//! new sinks start, removed ones stop (their cursor kept for `retention`, so re-adding one
//! resumes where it stopped), changed ones restart on their existing cursor.
//!
//! Every configured sink runs, even one whose plugin cannot load or create an instance (its
//! database down at start): it shows in `health` from the start, unhealthy, so alerts fire,
//! and it keeps trying with backoff, so it heals by itself once the database is up. Its
//! cursor holds the outbox meanwhile, so nothing it has not seen is collected. `apply`
//! reports the sinks that cannot heal without an operator (wrong ABI, refused or changed
//! library, missing library) as failed.

use super::delivery::{Health, SinkRunner};
use super::plugin::HostError;
use crate::clock::now_ms;
use crate::config::{SinkSettings, SinkStart};
use crate::state::{StateError, Store};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long stopping sinks may take, all together: each finishes its call in hand and
/// flushes, or is left behind. Well inside the watchdog's 30 s (a reload runs in the loop
/// that pings it) and the unit's 60 s stop timeout.
const STOP_GRACE: Duration = Duration::from_secs(5);

struct Running {
    settings: SinkSettings,
    runner: Arc<SinkRunner>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

pub struct SinkManager {
    store: Store,
    plugin_dir: PathBuf,
    poll: Duration,
    retention: Duration,
    running: HashMap<String, Running>,
    configured: Vec<SinkSettings>,
}

impl SinkManager {
    pub fn new(store: Store, plugin_dir: PathBuf, poll: Duration, retention: Duration) -> SinkManager {
        SinkManager { store, plugin_dir, poll, retention, running: HashMap::new(), configured: Vec::new() }
    }

    /// Gives a configured sink its starting cursor before anything else can happen, so that
    /// outbox collection respects it even while its plugin fails to load.
    fn ensure_cursor(&self, s: &SinkSettings) -> Result<(), StateError> {
        if self.store.sink_cursor(&s.name)?.is_none() {
            let c = match s.start {
                SinkStart::Earliest => 0,
                SinkStart::Latest => self.store.outbox_last_pos()?,
            };
            self.store.set_sink_cursor(&s.name, c)?;
        }
        self.store.unmark_sink_removed(&s.name)
    }

    /// Stops the sinks `names` together and waits for them at most [`STOP_GRACE`] in all.
    /// A sink stuck inside a plugin call (a `deliver` that never returns) cannot be
    /// interrupted: the call's thread is left behind, its task aborted and the sink counted
    /// as stopped, so that a reload or a shutdown never waits on a plugin. Its cursor did
    /// not move past the call in hand, so a restarted sink delivers that batch again
    /// (at-least-once).
    async fn stop(&mut self, names: &[String]) {
        let stopping: Vec<(String, Running)> =
            names.iter().filter_map(|n| self.running.remove(n).map(|r| (n.clone(), r))).collect();
        for (_, r) in &stopping {
            let _ = r.stop.send(true);
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        for (name, mut r) in stopping {
            if tokio::time::timeout_at(deadline, &mut r.task).await.is_err() {
                r.task.abort();
                tracing::error!(sink = %name, grace = ?STOP_GRACE, "sink did not stop: its plugin is stuck in a call; left behind");
            }
        }
    }

    /// Brings the running set in line with `sinks`; returns the sinks whose plugin cannot be
    /// loaded (they run anyway, failing and retrying; see the module doc). A sink whose plugin
    /// loads but will not create an instance yet is not in the list: it is expected to heal.
    pub async fn apply(&mut self, sinks: &[SinkSettings]) -> Result<Vec<(String, HostError)>, StateError> {
        let removed: Vec<String> =
            self.running.keys().filter(|n| !sinks.iter().any(|s| &s.name == *n)).cloned().collect();
        self.stop(&removed).await;
        for name in removed {
            self.store.mark_sink_removed(&name, now_ms())?;
            tracing::info!(sink = %name, "sink removed; its cursor is kept for re-adding");
        }
        for old in &self.configured {
            if !sinks.iter().any(|s| s.name == old.name) && !self.running.contains_key(&old.name) {
                self.store.mark_sink_removed(&old.name, now_ms())?;
            }
        }
        let mut failed = Vec::new();
        for s in sinks {
            self.ensure_cursor(s)?;
            if self.running.get(&s.name).is_some_and(|r| r.settings == *s) {
                continue;
            }
            self.stop(std::slice::from_ref(&s.name)).await;
            let (runner, error) =
                SinkRunner::start(s, &self.plugin_dir, self.store.clone(), s.delivery.clone());
            let runner = Arc::new(runner);
            let (stop, rx) = watch::channel(false);
            let (r2, poll) = (runner.clone(), self.poll);
            let task = tokio::spawn(async move { r2.run(poll, rx).await });
            self.running.insert(s.name.clone(), Running { settings: s.clone(), runner, stop, task });
            match error {
                None => tracing::info!(sink = %s.name, plugin = %s.plugin, "sink started"),
                Some(e) if e.may_heal() => {
                    tracing::error!(sink = %s.name, error = %e, "sink cannot start yet; retrying with backoff");
                    if matches!(e, HostError::NotFound { .. }) {
                        failed.push((s.name.clone(), e));
                    }
                }
                Some(e) => {
                    tracing::error!(sink = %s.name, error = %e, "sink cannot start until shopsync restarts or its plugin is fixed");
                    failed.push((s.name.clone(), e));
                }
            }
        }
        self.configured = sinks.to_vec();
        Ok(failed)
    }

    /// Health of every configured sink, including those still failing to start.
    pub fn health(&self) -> Vec<(String, Arc<Health>)> {
        self.running.iter().map(|(n, r)| (n.clone(), r.runner.health.clone())).collect()
    }

    /// The running sink `name` (its plugin instance is shared with delivery).
    pub fn runner(&self, name: &str) -> Option<Arc<SinkRunner>> {
        self.running.get(name).map(|r| r.runner.clone())
    }

    /// Removes outbox events every sink still owed them has seen (see [`collect_outbox`]).
    pub fn collect_outbox(&self) -> Result<usize, StateError> {
        collect_outbox(&self.store, &self.configured, self.retention)
    }

    /// Stops every sink (each finishes its call in hand and flushes its plugin).
    pub async fn shutdown(&mut self) {
        let names: Vec<String> = self.running.keys().cloned().collect();
        self.stop(&names).await;
    }
}

/// Removes outbox events every sink still owed them is past: configured sinks (running or
/// not) and removed sinks within their retention. Removed sinks past it are forgotten.
pub fn collect_outbox(
    store: &Store,
    configured: &[SinkSettings],
    retention: Duration,
) -> Result<usize, StateError> {
    let now = now_ms();
    let keep_ms = retention.as_millis() as i64;
    let mut min = u64::MAX;
    for s in configured {
        min = min.min(store.sink_cursor(&s.name)?.unwrap_or(0));
    }
    for (name, at) in store.removed_sinks()? {
        if configured.iter().any(|s| s.name == name) {
            continue;
        }
        if now - at > keep_ms {
            tracing::info!(sink = %name, "removed sink's retention ran out; cursor forgotten");
            store.forget_sink(&name)?;
        } else {
            min = min.min(store.sink_cursor(&name)?.unwrap_or(0));
        }
    }
    if min == u64::MAX || min == 0 {
        return Ok(0);
    }
    store.gc_outbox(min)
}
