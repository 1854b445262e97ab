//! Delivery from the outbox to one sink.
//!
//! Each sink reads the outbox from its own cursor, in batches, and moves the cursor only
//! after the plugin accepted the batch: at-least-once, with every event's stable `id` letting
//! the sink drop a redelivery. Before reading, the store is flushed, so an event never leaves
//! the process before it is durable (see `state/store.rs`). A failing sink backs off
//! exponentially without touching the others or the sync; a call that outlives `timeout`
//! marks the sink stuck and unhealthy.
//!
//! A batch the plugin rejects (a data error, not a transient one) is split in halves until
//! the events it refuses are alone: only those go to the sink's dead-letter queue, each
//! after `reject_attempts` tries, and everything around them is delivered. The halving is
//! immediate (a rejection is about the data, waiting does not change it).
//!
//! While the plugin delivers a batch, the next one is read from the outbox and framed
//! (`Batch`): the read is about half of a fast sink's time per batch, and it need not wait
//! for the call. It is used only if the cursor then stands where it was read from (the batch
//! passed); after a failure or a split it is dropped and the outbox read again.
//!
//! A sink whose plugin cannot create an instance (its database is down at start, a secret
//! file is not there yet) or whose library is missing still runs: it is unhealthy, counts
//! errors, and tries again with the same backoff as a failing delivery.

use super::plugin::{load, Call, HostError, Instance};
use crate::clock::now_ms;
use crate::config::{SinkSettings, SinkStart};
use crate::state::{DeadLetter, StateError, Store};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
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
    /// A rejected batch was split, or a lone rejected event is tried again: go on at once.
    Split,
}

/// A batch read from the outbox and framed as the JSON array the plugin takes.
struct Batch {
    /// The cursor it was read after.
    after: u64,
    first: u64,
    last: u64,
    len: usize,
    /// The stored events are JSON already: the array is built without decoding them.
    json: Arc<Vec<u8>>,
}

impl Batch {
    fn read(store: &Store, after: u64, limit: usize) -> Result<Option<Batch>, StateError> {
        let events = store.raw_events_after(after, limit)?;
        let (Some(first), Some(last)) = (events.first().map(|b| b.0), events.last().map(|b| b.0)) else {
            return Ok(None);
        };
        let mut json = Vec::with_capacity(events.iter().map(|b| b.1.len() + 1).sum::<usize>() + 2);
        json.push(b'[');
        for (i, (_, ev)) in events.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            json.extend_from_slice(ev);
        }
        json.push(b']');
        Ok(Some(Batch { after, first, last, len: events.len(), json: Arc::new(json) }))
    }
}

pub struct SinkRunner {
    pub name: String,
    plugin: String,
    config: serde_json::Value,
    plugin_dir: PathBuf,
    /// `None` until the plugin loads and creates an instance.
    instance: Mutex<Option<Arc<Instance>>>,
    store: Store,
    start: SinkStart,
    opts: DeliveryOptions,
    pub health: Arc<Health>,
    rejections: AtomicU32,
    in_flight: Arc<AtomicBool>,
    /// While the cursor is below `suspect_until` (the end of a rejected batch), batches hold
    /// at most `limit` events: the bisection's state. In memory only: after a restart the
    /// rejected batch is simply split again.
    limit: AtomicUsize,
    suspect_until: AtomicU64,
    /// Set once a lone event was dead-lettered: the rest of the suspect range is probed
    /// with batches doubling in size instead of one event at a time.
    widening: AtomicBool,
    /// The batch after the one being delivered, read while the plugin worked.
    ahead: Mutex<Option<Batch>>,
}

fn open(s: &SinkSettings, plugin_dir: &Path) -> Result<Instance, HostError> {
    let plugin = load(plugin_dir, &s.plugin)?;
    Instance::create(plugin, &s.name, &s.config)
}

impl SinkRunner {
    fn with(s: &SinkSettings, plugin_dir: &Path, store: Store, opts: DeliveryOptions) -> SinkRunner {
        SinkRunner {
            name: s.name.clone(),
            plugin: s.plugin.clone(),
            config: s.config.clone(),
            plugin_dir: plugin_dir.to_path_buf(),
            instance: Mutex::new(None),
            store,
            start: s.start,
            limit: AtomicUsize::new(opts.batch_size.max(1)),
            opts,
            health: Arc::new(Health::default()),
            rejections: AtomicU32::new(0),
            in_flight: Arc::new(AtomicBool::new(false)),
            suspect_until: AtomicU64::new(0),
            widening: AtomicBool::new(false),
            ahead: Mutex::new(None),
        }
    }

    /// Loads the sink's plugin from `plugin_dir` and creates its instance; fails if either
    /// fails (for one-shot commands, which report and exit).
    pub fn new(
        s: &SinkSettings,
        plugin_dir: &Path,
        store: Store,
        opts: DeliveryOptions,
    ) -> Result<SinkRunner, HostError> {
        let instance = Arc::new(open(s, plugin_dir)?);
        let runner = SinkRunner::with(s, plugin_dir, store, opts);
        *runner.instance.lock().unwrap_or_else(|e| e.into_inner()) = Some(instance);
        runner.health.healthy.store(true, Ordering::Relaxed);
        Ok(runner)
    }

    /// Like [`SinkRunner::new`], but the runner exists even when its plugin does not load or
    /// will not create an instance: it is then unhealthy from the start (so the metrics and
    /// alerts see it) and [`SinkRunner::run`] keeps trying with backoff. Returns the first
    /// attempt's error too.
    pub fn start(
        s: &SinkSettings,
        plugin_dir: &Path,
        store: Store,
        opts: DeliveryOptions,
    ) -> (SinkRunner, Option<HostError>) {
        let runner = SinkRunner::with(s, plugin_dir, store, opts);
        match open(s, plugin_dir) {
            Ok(i) => {
                *runner.instance.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(i));
                runner.health.healthy.store(true, Ordering::Relaxed);
                (runner, None)
            }
            Err(e) => {
                runner.failed(e.to_string());
                (runner, Some(e))
            }
        }
    }

    /// The live instance, created now if there is none yet (off the async threads: a
    /// plugin's create may block, and within `timeout`, like any call).
    async fn instance(&self) -> Result<Arc<Instance>, String> {
        if let Some(i) = self.instance.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            return Ok(i.clone());
        }
        let settings = SinkSettings {
            name: self.name.clone(),
            plugin: self.plugin.clone(),
            start: self.start,
            delivery: self.opts.clone(),
            config: self.config.clone(),
        };
        let (dir, flag) = (self.plugin_dir.clone(), self.in_flight.clone());
        flag.store(true, Ordering::Release);
        let create = tokio::task::spawn_blocking(move || {
            let r = open(&settings, &dir);
            flag.store(false, Ordering::Release);
            r
        });
        let instance = match tokio::time::timeout(self.opts.timeout, create).await {
            Err(_) => {
                self.health.stuck.store(true, Ordering::Relaxed);
                return Err(format!("plugin create took longer than {:?}", self.opts.timeout));
            }
            Ok(Err(join)) => return Err(format!("plugin create failed: {join}")),
            Ok(Ok(Err(e))) => return Err(e.to_string()),
            Ok(Ok(Ok(i))) => Arc::new(i),
        };
        self.health.stuck.store(false, Ordering::Relaxed);
        tracing::info!(sink = %self.name, "sink plugin instance created");
        *self.instance.lock().unwrap_or_else(|e| e.into_inner()) = Some(instance.clone());
        Ok(instance)
    }

    /// The most events the next batch may hold.
    fn batch_limit(&self, cursor: u64) -> usize {
        if cursor < self.suspect_until.load(Ordering::Relaxed) {
            self.limit.load(Ordering::Relaxed).clamp(1, self.opts.batch_size.max(1))
        } else {
            self.opts.batch_size.max(1)
        }
    }

    /// A batch of `len` events ending at `last` was rejected: the next tries take half.
    fn narrow(&self, len: usize, last: u64) {
        self.limit.store((len / 2).max(1), Ordering::Relaxed);
        self.suspect_until.fetch_max(last, Ordering::Relaxed);
        self.widening.store(false, Ordering::Relaxed);
    }

    /// The events up to `last` are done with (delivered or dead-lettered).
    fn passed(&self, last: u64) {
        if last >= self.suspect_until.load(Ordering::Relaxed) {
            self.suspect_until.store(0, Ordering::Relaxed);
            self.limit.store(self.opts.batch_size.max(1), Ordering::Relaxed);
        } else if self.widening.load(Ordering::Relaxed) {
            let l = self.limit.load(Ordering::Relaxed);
            self.limit.store(l.saturating_mul(2).min(self.opts.batch_size.max(1)), Ordering::Relaxed);
        }
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

    /// Counts an error and keeps its text for `status` (messages are already scrubbed of
    /// the sink's secrets by the host).
    fn note_error(&self, msg: &str) {
        self.health.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut e) = self.health.last_error.lock() {
            *e = Some(msg.to_string());
        }
    }

    fn failed(&self, msg: String) -> Step {
        self.note_error(&msg);
        self.health.healthy.store(false, Ordering::Relaxed);
        tracing::warn!(sink = %self.name, error = %msg, "sink delivery failed");
        Step::Failed(msg)
    }

    async fn step(&self) -> Result<Step, StateError> {
        if self.in_flight.load(Ordering::Acquire) {
            return Ok(self.failed("still stuck in an earlier call".into()));
        }
        let inst = match self.instance().await {
            Ok(i) => i,
            Err(m) => return Ok(self.failed(m)),
        };
        let cursor = self.cursor()?;
        let limit = self.batch_limit(cursor);
        let ahead = self.ahead.lock().unwrap_or_else(|e| e.into_inner()).take();
        // A batch read ahead holds at most a full batch; in a suspect range (a split) the
        // limit is smaller and the outbox is read again.
        let batch = match ahead {
            Some(b) if b.after == cursor && b.len <= limit => b,
            _ => match Batch::read(&self.store, cursor, limit)? {
                Some(b) => b,
                None => return Ok(Step::Idle),
            },
        };
        let (first, last) = (batch.first, batch.last);
        // An event leaves the process only once it is durable (see state/store.rs).
        self.store.ensure_durable(last).await?;
        let flag = self.in_flight.clone();
        flag.store(true, Ordering::Release);
        let payload = batch.json.clone();
        let call = tokio::task::spawn_blocking(move || {
            let r = inst.deliver(&payload);
            flag.store(false, Ordering::Release);
            r
        });
        // While the plugin works: the batch that follows if this one passes. A read that
        // fails here is simply not kept; the next step reads again and reports it.
        if last >= self.suspect_until.load(Ordering::Relaxed) {
            if let Ok(next) = Batch::read(&self.store, last, self.batch_limit(last)) {
                *self.ahead.lock().unwrap_or_else(|e| e.into_inner()) = next;
            }
        }
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
                self.passed(last);
                self.health.delivered.fetch_add(batch.len as u64, Ordering::Relaxed);
                self.health.healthy.store(true, Ordering::Relaxed);
                Ok(Step::Delivered)
            }
            Call::Retry(m) => Ok(self.failed(m)),
            Call::Reject(m) if batch.len > 1 => {
                self.note_error(&m);
                self.narrow(batch.len, last);
                tracing::info!(sink = %self.name, events = batch.len, error = %m, "batch rejected; splitting it to find the events refused");
                Ok(Step::Split)
            }
            Call::Reject(m) => {
                let tries = self.rejections.fetch_add(1, Ordering::Relaxed) + 1;
                if tries < self.opts.reject_attempts {
                    self.note_error(&m);
                    return Ok(Step::Split);
                }
                let letter = DeadLetter {
                    sink: self.name.clone(),
                    first_pos: first,
                    last_pos: last,
                    events: batch.len as u64,
                    error: m.clone(),
                    at_ms: now_ms(),
                    batch: String::from_utf8_lossy(&batch.json).into_owned(),
                };
                self.store.dlq_put(&letter)?;
                self.store.set_sink_cursor(&self.name, last)?;
                self.rejections.store(0, Ordering::Relaxed);
                self.widening.store(true, Ordering::Relaxed);
                self.passed(last);
                self.health.dead_lettered.fetch_add(batch.len as u64, Ordering::Relaxed);
                self.note_error(&m);
                tracing::error!(sink = %self.name, pos = first, error = %m, "event moved to the dead-letter queue");
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
                Step::Split => {}
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
            if let Some(inst) = self.current() {
                if let Ok(Call::Retry(m) | Call::Reject(m)) =
                    tokio::task::spawn_blocking(move || inst.flush()).await
                {
                    error = Some(format!("flush: {m}"));
                }
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
                Ok(Step::Delivered | Step::Split) => {
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
        self.flush_unless_stuck().await;
    }

    /// Flushes the plugin on the way out, unless a call is still in hand: a stuck `deliver`
    /// holds the instance, and a flush would wait behind it for ever.
    async fn flush_unless_stuck(&self) {
        if self.in_flight.load(Ordering::Acquire) {
            tracing::warn!(sink = %self.name, "sink stops without a flush: its plugin is still in a call");
            return;
        }
        if let Some(inst) = self.current() {
            let flush = tokio::task::spawn_blocking(move || inst.flush());
            if tokio::time::timeout(self.opts.timeout, flush).await.is_err() {
                tracing::error!(sink = %self.name, timeout = ?self.opts.timeout, "sink plugin is stuck in flush");
            }
        }
    }

    fn current(&self) -> Option<Arc<Instance>> {
        self.instance.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-sends the sink's dead letters; returns (resent, still failing).
    pub async fn replay_dead_letters(&self) -> Result<(u64, u64), StateError> {
        let (mut ok, mut failed) = (0, 0);
        let inst = match self.instance().await {
            Ok(i) => i,
            Err(m) => {
                tracing::error!(sink = %self.name, error = %m, "cannot replay dead letters");
                let all = self.store.dlq(&self.name)?.iter().map(|l| l.events).sum();
                return Ok((0, all));
            }
        };
        for letter in self.store.dlq(&self.name)? {
            let (inst, batch) = (inst.clone(), letter.batch.clone().into_bytes());
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
