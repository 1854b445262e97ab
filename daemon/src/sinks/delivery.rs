//! Delivery from the outbox to one sink.
//!
//! Each sink reads the outbox from its own cursor, in batches, and moves the cursor only
//! after the plugin accepted the batch: at-least-once, with every event's stable `id` letting
//! the sink drop a redelivery. Before reading, the store is flushed, so an event never leaves
//! the process before it is durable (see `state/store.rs`). A failing sink backs off
//! exponentially without touching the others or the sync; a batch the plugin rejects as bad
//! goes to the sink's dead-letter queue after `reject_attempts` tries so it cannot block the
//! cursor forever; a call that outlives `timeout` marks the sink stuck and unhealthy.

use super::plugin::{load, Call, HostError, Instance};
use crate::clock::now_ms;
use crate::config::{SinkSettings, SinkStart};
use crate::state::{DeadLetter, StateError, Store};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Tuning of one sink's delivery (validated config).
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryOptions {
    pub batch_size: usize,
    /// A plugin call taking longer is reported stuck.
    pub timeout: Duration,
    /// Tries of a rejected batch before it goes to the dead-letter queue.
    pub reject_attempts: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            batch_size: 500,
            timeout: Duration::from_secs(30),
            reject_attempts: 3,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// What the metrics and `status` show of a sink.
#[derive(Debug, Default)]
pub struct Health {
    pub healthy: AtomicBool,
    pub stuck: AtomicBool,
    pub delivered: AtomicU64,
    pub errors: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

/// The end of a drain.
#[derive(Debug, Clone)]
pub struct DrainReport {
    pub sink: String,
    pub delivered: u64,
    pub dead_lettered: u64,
    pub cursor: u64,
    /// Set when the drain gave up on a failing sink.
    pub error: Option<String>,
}

enum Step {
    Delivered,
    Idle,
    Failed(String),
}

pub struct SinkRunner {
    pub name: String,
    instance: Arc<Instance>,
    store: Store,
    start: SinkStart,
    opts: DeliveryOptions,
    pub health: Arc<Health>,
    rejections: AtomicU32,
    in_flight: Arc<AtomicBool>,
}

impl SinkRunner {
    /// Loads the sink's plugin from `plugin_dir` and creates its instance.
    pub fn new(
        s: &SinkSettings,
        plugin_dir: &Path,
        store: Store,
        opts: DeliveryOptions,
    ) -> Result<SinkRunner, HostError> {
        let plugin = load(plugin_dir, &s.plugin)?;
        let instance = Arc::new(Instance::create(plugin, &s.name, &s.config)?);
        let health = Arc::new(Health::default());
        health.healthy.store(true, Ordering::Relaxed);
        Ok(SinkRunner {
            name: s.name.clone(),
            instance,
            store,
            start: s.start,
            opts,
            health,
            rejections: AtomicU32::new(0),
            in_flight: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The sink's cursor; a new sink starts at the oldest event or after the newest.
    pub fn cursor(&self) -> Result<u64, StateError> {
        if let Some(c) = self.store.sink_cursor(&self.name)? {
            return Ok(c);
        }
        let c = match self.start {
            SinkStart::Earliest => 0,
            SinkStart::Latest => self.store.outbox_last_pos()?,
        };
        self.store.set_sink_cursor(&self.name, c)?;
        Ok(c)
    }

    fn failed(&self, msg: String) -> Step {
        self.health.errors.fetch_add(1, Ordering::Relaxed);
        self.health.healthy.store(false, Ordering::Relaxed);
        tracing::warn!(sink = %self.name, error = %msg, "sink delivery failed");
        if let Ok(mut e) = self.health.last_error.lock() {
            *e = Some(msg.clone());
        }
        Step::Failed(msg)
    }

    async fn step(&self) -> Result<Step, StateError> {
        if self.in_flight.load(Ordering::Acquire) {
            return Ok(self.failed("still stuck in an earlier call".into()));
        }
        let cursor = self.cursor()?;
        let batch = self.store.raw_events_after(cursor, self.opts.batch_size)?;
        let (Some(first), Some(last)) = (batch.first().map(|b| b.0), batch.last().map(|b| b.0)) else {
            return Ok(Step::Idle);
        };
        // An event leaves the process only once it is durable (see state/store.rs).
        self.store.ensure_durable(last).await?;
        // The stored events are JSON already: the batch is their array, built without decoding.
        let mut json = Vec::with_capacity(batch.iter().map(|b| b.1.len() + 1).sum::<usize>() + 2);
        json.push(b'[');
        for (i, (_, ev)) in batch.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            json.extend_from_slice(ev);
        }
        json.push(b']');
        let (inst, flag) = (self.instance.clone(), self.in_flight.clone());
        flag.store(true, Ordering::Release);
        let payload = json.clone();
        let call = tokio::task::spawn_blocking(move || {
            let r = inst.deliver(&payload);
            flag.store(false, Ordering::Release);
            r
        });
        let result = match tokio::time::timeout(self.opts.timeout, call).await {
            Err(_) => {
                self.health.stuck.store(true, Ordering::Relaxed);
                tracing::error!(sink = %self.name, timeout = ?self.opts.timeout, "sink plugin is stuck in deliver");
                return Ok(self.failed(format!("plugin call took longer than {:?}", self.opts.timeout)));
            }
            Ok(Err(join)) => Call::Retry(format!("plugin call failed: {join}")),
            Ok(Ok(c)) => c,
        };
        self.health.stuck.store(false, Ordering::Relaxed);
        match result {
            Call::Ok => {
                self.store.set_sink_cursor(&self.name, last)?;
                self.rejections.store(0, Ordering::Relaxed);
                self.health.delivered.fetch_add(batch.len() as u64, Ordering::Relaxed);
                self.health.healthy.store(true, Ordering::Relaxed);
                Ok(Step::Delivered)
            }
            Call::Retry(m) => Ok(self.failed(m)),
            Call::Reject(m) => {
                let tries = self.rejections.fetch_add(1, Ordering::Relaxed) + 1;
                if tries < self.opts.reject_attempts {
                    return Ok(self.failed(format!(
                        "batch rejected ({tries} of {} tries): {m}",
                        self.opts.reject_attempts
                    )));
                }
                let letter = DeadLetter {
                    sink: self.name.clone(),
                    first_pos: first,
                    last_pos: last,
                    events: batch.len() as u64,
                    error: m.clone(),
                    at_ms: now_ms(),
                    batch: String::from_utf8_lossy(&json).into_owned(),
                };
                self.store.dlq_put(&letter)?;
                self.store.set_sink_cursor(&self.name, last)?;
                self.rejections.store(0, Ordering::Relaxed);
                self.health.dead_lettered.fetch_add(batch.len() as u64, Ordering::Relaxed);
                tracing::error!(sink = %self.name, events = batch.len(), error = %m, "batch moved to the dead-letter queue");
                Ok(Step::Delivered)
            }
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        let f = self.opts.backoff_initial.saturating_mul(1u32 << failures.min(16));
        f.min(self.opts.backoff_max)
    }

    /// Delivers until the outbox is drained, or until `max_failures` failures in a row.
    pub async fn drain(&self, max_failures: u32) -> Result<DrainReport, StateError> {
        let (d0, q0) = (
            self.health.delivered.load(Ordering::Relaxed),
            self.health.dead_lettered.load(Ordering::Relaxed),
        );
        let mut failures = 0;
        let mut error = None;
        loop {
            match self.step().await? {
                Step::Delivered => failures = 0,
                Step::Idle => break,
                Step::Failed(m) => {
                    failures += 1;
                    if failures >= max_failures {
                        error = Some(m);
                        break;
                    }
                    tokio::time::sleep(self.backoff(failures)).await;
                }
            }
        }
        if error.is_none() {
            let inst = self.instance.clone();
            if let Ok(Call::Retry(m) | Call::Reject(m)) =
                tokio::task::spawn_blocking(move || inst.flush()).await
            {
                error = Some(format!("flush: {m}"));
            }
        }
        Ok(DrainReport {
            sink: self.name.clone(),
            delivered: self.health.delivered.load(Ordering::Relaxed) - d0,
            dead_lettered: self.health.dead_lettered.load(Ordering::Relaxed) - q0,
            cursor: self.cursor()?,
            error,
        })
    }

    /// Delivers forever: at once while there is work, every `poll` when idle, with backoff
    /// after failures; returns when `stop` turns true (after flushing the plugin).
    pub async fn run(&self, poll: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut failures = 0u32;
        loop {
            if *stop.borrow() {
                break;
            }
            let wait = match self.step().await {
                Ok(Step::Delivered) => {
                    failures = 0;
                    continue;
                }
                Ok(Step::Idle) => poll,
                Ok(Step::Failed(_)) => {
                    failures += 1;
                    self.backoff(failures)
                }
                Err(e) => {
                    tracing::error!(sink = %self.name, error = %e, "state unreadable for delivery");
                    failures += 1;
                    self.backoff(failures)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
        let inst = self.instance.clone();
        let _ = tokio::task::spawn_blocking(move || inst.flush()).await;
    }

    /// Re-sends the sink's dead letters; returns (resent, still failing).
    pub async fn replay_dead_letters(&self) -> Result<(u64, u64), StateError> {
        let (mut ok, mut failed) = (0, 0);
        for letter in self.store.dlq(&self.name)? {
            let (inst, batch) = (self.instance.clone(), letter.batch.clone().into_bytes());
            let r = tokio::time::timeout(
                self.opts.timeout,
                tokio::task::spawn_blocking(move || inst.deliver(&batch)),
            )
            .await;
            match r {
                Ok(Ok(Call::Ok)) => {
                    self.store.dlq_remove(&letter)?;
                    ok += letter.events;
                }
                _ => failed += letter.events,
            }
        }
        Ok((ok, failed))
    }
}
