//! Worker slots with adaptive intervals.
//!
//! An account has `concurrency` worker slots. A call takes a free slot, waits until that
//! slot's interval has passed, and after the call the slot rests for an interval chosen by
//! the outcome: short after a success, longer after a failure, longest after being
//! throttled. Throttling is a verdict on the whole key, so it rests every slot.
//!
//! The field figure "4 workers, 0.8 s apart, stays under 5 calls/s" assumes real network
//! latency; on a fast link four workers can start eight calls within one second. A sliding
//! window over call starts (`max_calls_per_sec`) is therefore the hard guarantee, and the
//! intervals are the politeness on top.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// Pacing settings of one account (validated config).
#[derive(Debug, Clone, PartialEq)]
pub struct PacingSettings {
    /// Calls in flight at most.
    pub concurrency: usize,
    pub success_interval: Duration,
    pub failure_interval: Duration,
    pub throttled_interval: Duration,
    /// Call starts allowed within any `rate_window`; 0 turns the guard off.
    pub max_calls_per_sec: u32,
    /// The sliding window of the guard: a second plus a margin for jitter on the wire.
    pub rate_window: Duration,
    /// How the daily quota is cut into days.
    pub quota_day: crate::clock::QuotaDay,
}

impl Default for PacingSettings {
    fn default() -> Self {
        PacingSettings {
            concurrency: 4,
            success_interval: Duration::from_millis(800),
            failure_interval: Duration::from_secs(4),
            throttled_interval: Duration::from_secs(10),
            max_calls_per_sec: 5,
            rate_window: Duration::from_millis(1_050),
            quota_day: Default::default(),
        }
    }
}

/// How a call ended, for choosing the next interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Throttled,
}

struct State {
    /// Per slot: busy, and when it may start its next call.
    slots: Vec<(bool, Instant)>,
    /// Starts within the last `rate_window`.
    recent: VecDeque<Instant>,
    /// The interval most recently set (for metrics and progress display).
    last_interval: Duration,
}

pub struct Pacer {
    settings: PacingSettings,
    slots: Semaphore,
    state: Mutex<State>,
}

/// The right to make one call; report how it went with [`Permit::done`]. Dropped without
/// `done` (the call was cancelled), the slot rests for the failure interval.
pub struct Permit<'a> {
    pacer: &'a Pacer,
    slot: usize,
    finished: bool,
    _permit: SemaphorePermit<'a>,
}

impl Pacer {
    pub fn new(settings: PacingSettings) -> Pacer {
        let n = settings.concurrency.max(1);
        let now = Instant::now();
        Pacer {
            slots: Semaphore::new(n),
            state: Mutex::new(State {
                slots: vec![(false, now); n],
                recent: VecDeque::new(),
                last_interval: Duration::ZERO,
            }),
            settings,
        }
    }

    pub fn settings(&self) -> &PacingSettings {
        &self.settings
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is a handful of instants; a panic elsewhere cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The interval most recently chosen (0 before the first call).
    pub fn current_interval(&self) -> Duration {
        self.state().last_interval
    }

    /// Waits for a free slot whose rest is over and for room in the per-second window.
    pub async fn acquire(&self) -> Permit<'_> {
        // The semaphore is never closed, so acquire cannot fail; if it ever did, pacing
        // would silently stop, so wait forever instead of calling without a slot.
        let permit = match self.slots.acquire().await {
            Ok(p) => p,
            Err(_) => std::future::pending().await,
        };
        let (slot, ready_at) = {
            let mut st = self.state();
            let (slot, ready_at) = st
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.0)
                .min_by_key(|(_, s)| s.1)
                .map(|(i, s)| (i, s.1))
                .unwrap_or((0, Instant::now()));
            st.slots[slot].0 = true;
            (slot, ready_at)
        };
        let mut permit = Permit { pacer: self, slot, finished: false, _permit: permit };
        tokio::time::sleep_until(ready_at).await;
        loop {
            // Throttling may have pushed this slot's rest further while we slept.
            let wait_until = {
                let mut st = self.state();
                let now = Instant::now();
                let rest = st.slots[slot].1;
                if rest > now {
                    Some(rest)
                } else if self.settings.max_calls_per_sec == 0 {
                    None
                } else {
                    let window = self.settings.rate_window;
                    while st.recent.front().is_some_and(|&t| now.duration_since(t) >= window) {
                        st.recent.pop_front();
                    }
                    if st.recent.len() < self.settings.max_calls_per_sec as usize {
                        st.recent.push_back(now);
                        None
                    } else {
                        st.recent.front().map(|&t| t + window)
                    }
                }
            };
            match wait_until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => break,
            }
        }
        permit.finished = false;
        permit
    }

    fn release(&self, slot: usize, outcome: Outcome) {
        let interval = match outcome {
            Outcome::Success => self.settings.success_interval,
            Outcome::Failure => self.settings.failure_interval,
            Outcome::Throttled => self.settings.throttled_interval,
        };
        let now = Instant::now();
        let mut st = self.state();
        st.last_interval = interval;
        st.slots[slot] = (false, now + interval);
        if outcome == Outcome::Throttled {
            for s in st.slots.iter_mut() {
                s.1 = s.1.max(now + interval);
            }
        }
    }
}

impl Permit<'_> {
    pub fn done(mut self, outcome: Outcome) {
        self.finished = true;
        self.pacer.release(self.slot, outcome);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.pacer.release(self.slot, Outcome::Failure);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(concurrency: usize, max_per_sec: u32) -> PacingSettings {
        PacingSettings {
            concurrency,
            success_interval: Duration::from_millis(10),
            failure_interval: Duration::from_millis(40),
            throttled_interval: Duration::from_millis(100),
            max_calls_per_sec: max_per_sec,
            rate_window: Duration::from_millis(1_000),
            quota_day: Default::default(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn intervals_follow_the_outcome() {
        let p = Pacer::new(fast(1, 0));
        let t0 = Instant::now();
        p.acquire().await.done(Outcome::Success);
        p.acquire().await.done(Outcome::Failure);
        assert_eq!(t0.elapsed(), Duration::from_millis(10));
        p.acquire().await.done(Outcome::Throttled);
        assert_eq!(t0.elapsed(), Duration::from_millis(50));
        p.acquire().await.done(Outcome::Success);
        assert_eq!(t0.elapsed(), Duration::from_millis(150));
        assert_eq!(p.current_interval(), Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_rests_every_slot() {
        let p = Pacer::new(fast(4, 0));
        let t0 = Instant::now();
        p.acquire().await.done(Outcome::Throttled);
        p.acquire().await.done(Outcome::Success);
        assert_eq!(t0.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_caps_calls_in_flight() {
        let p = std::sync::Arc::new(Pacer::new(fast(2, 0)));
        let a = p.acquire().await;
        let b = p.acquire().await;
        let p2 = p.clone();
        let third = tokio::spawn(async move {
            p2.acquire().await.done(Outcome::Success);
            Instant::now()
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!third.is_finished(), "a third call started with two in flight");
        a.done(Outcome::Success);
        let started = third.await.unwrap_or_else(|_| Instant::now());
        b.done(Outcome::Success);
        assert!(started >= Instant::now() - Duration::from_millis(20));
    }

    #[tokio::test(start_paused = true)]
    async fn sliding_window_caps_calls_per_second() {
        let p = Pacer::new(fast(4, 5));
        let mut starts = Vec::new();
        for _ in 0..20 {
            let permit = p.acquire().await;
            starts.push(Instant::now());
            permit.done(Outcome::Success);
        }
        for (i, t) in starts.iter().enumerate() {
            let in_window =
                starts[i..].iter().filter(|s| s.duration_since(*t) < Duration::from_secs(1)).count();
            assert!(in_window <= 5, "{in_window} starts within one second");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_call_rests_for_the_failure_interval() {
        let p = Pacer::new(fast(1, 0));
        let t0 = Instant::now();
        drop(p.acquire().await);
        p.acquire().await.done(Outcome::Success);
        assert_eq!(t0.elapsed(), Duration::from_millis(40));
    }
}
