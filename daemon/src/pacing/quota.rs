//! The daily call budget of one account.
//!
//! Every call sent is counted before it leaves (a call that fails still cost quota on the
//! platform). The count goes through a [`QuotaStore`] so the state store can persist it: a
//! restart must not hand the account a fresh day. The platform's code 15 is believed over
//! our own count: the account is then exhausted until the next quota day (00:00
//! Asia/Shanghai on the platform), and that is persisted too, so a restart does not spend
//! calls only to hear code 15 again.
//!
//! A call counted just before the reset can reach the platform just after it, and be counted
//! there on the next day, where we did not count it: a call whose answer comes back on a
//! later quota day than it was counted on is counted on that day too ([`Quota::settle`]).
//! Without that, a day spent to its last call ends with one refused (seen under load with
//! scaled quota days). Only calls in flight across a reset are counted twice.
//!
//! Counts are kept per app key, not per account name: renaming an account in the config
//! must not hand it a fresh day.

use crate::clock::QuotaDay;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Where daily counts live between restarts.
pub trait QuotaStore: Send + Sync {
    /// Calls counted for `account` on Shanghai day `day`.
    fn load(&self, account: &str, day: i64) -> u64;
    /// Records the count. Called once per call; an implementation may batch its writes.
    fn save(&self, account: &str, day: i64, used: u64);
    /// Whether the platform said code 15 for `account` on `day`.
    fn load_exhausted(&self, _account: &str, _day: i64) -> bool {
        false
    }
    /// Records the platform's code 15 for the rest of `day`.
    fn save_exhausted(&self, _account: &str, _day: i64) {}
}

/// A store that forgets on restart (tests, `sync` without a state dir).
#[derive(Default)]
pub struct MemoryQuotaStore(Mutex<HashMap<(String, i64), (u64, bool)>>);

impl QuotaStore for MemoryQuotaStore {
    fn load(&self, account: &str, day: i64) -> u64 {
        self.0.lock().map_or(0, |m| m.get(&(account.to_string(), day)).map_or(0, |d| d.0))
    }
    fn save(&self, account: &str, day: i64, used: u64) {
        if let Ok(mut m) = self.0.lock() {
            m.entry((account.to_string(), day)).or_default().0 = used;
        }
    }
    fn load_exhausted(&self, account: &str, day: i64) -> bool {
        self.0.lock().is_ok_and(|m| m.get(&(account.to_string(), day)).is_some_and(|d| d.1))
    }
    fn save_exhausted(&self, account: &str, day: i64) {
        if let Ok(mut m) = self.0.lock() {
            m.entry((account.to_string(), day)).or_default().1 = true;
        }
    }
}

struct Day {
    day: i64,
    used: u64,
    /// The platform said code 15 on this day.
    exhausted: bool,
}

pub struct Quota {
    /// The app key: what the platform counts by.
    key: String,
    limit: u64,
    days: QuotaDay,
    store: Arc<dyn QuotaStore>,
    day: Mutex<Option<Day>>,
}

impl Quota {
    pub fn new(key: impl Into<String>, limit: u64, days: QuotaDay, store: Arc<dyn QuotaStore>) -> Quota {
        Quota { key: key.into(), limit, days, store, day: Mutex::new(None) }
    }

    fn today(&self, now_ms: i64) -> MutexGuard<'_, Option<Day>> {
        let mut g = self.day.lock().unwrap_or_else(|e| e.into_inner());
        let day = self.days.index(now_ms);
        if g.as_ref().is_none_or(|d| d.day != day) {
            *g = Some(Day {
                day,
                used: self.store.load(&self.key, day),
                exhausted: self.store.load_exhausted(&self.key, day),
            });
        }
        g
    }

    /// When the current quota day ends.
    pub fn resets_at(&self, now_ms: i64) -> i64 {
        self.days.next_reset(now_ms)
    }

    pub fn days(&self) -> QuotaDay {
        self.days
    }

    /// Counts one call; `Err(until_ms)` when the day's budget is spent.
    pub fn spend(&self, now_ms: i64) -> Result<(), i64> {
        let mut g = self.today(now_ms);
        let Some(d) = g.as_mut() else { return Err(self.resets_at(now_ms)) };
        if d.exhausted || d.used >= self.limit {
            return Err(self.resets_at(now_ms));
        }
        d.used += 1;
        self.store.save(&self.key, d.day, d.used);
        Ok(())
    }

    /// A call counted at `spent_ms` has come back at `now_ms`: if a reset came between, the
    /// platform may have counted it on the new day, so it is counted there too.
    pub fn settle(&self, spent_ms: i64, now_ms: i64) {
        if self.days.index(spent_ms) >= self.days.index(now_ms) {
            return;
        }
        if let Some(d) = self.today(now_ms).as_mut() {
            d.used += 1;
            self.store.save(&self.key, d.day, d.used);
        }
    }

    /// The platform said the quota is gone (code 15): believe it until the reset.
    pub fn mark_exhausted(&self, now_ms: i64) -> i64 {
        if let Some(d) = self.today(now_ms).as_mut() {
            if !d.exhausted {
                d.exhausted = true;
                self.store.save_exhausted(&self.key, d.day);
            }
        }
        self.resets_at(now_ms)
    }

    pub fn used(&self, now_ms: i64) -> u64 {
        self.today(now_ms).as_ref().map_or(0, |d| d.used)
    }

    /// Calls left today (0 once the platform said the quota is gone).
    pub fn remaining(&self, now_ms: i64) -> u64 {
        self.today(now_ms)
            .as_ref()
            .map_or(0, |d| if d.exhausted { 0 } else { self.limit.saturating_sub(d.used) })
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{next_shanghai_midnight, DAY_MS};

    #[test]
    fn spends_up_to_the_limit_then_waits_for_shanghai_midnight() {
        let store = Arc::new(MemoryQuotaStore::default());
        let q = Quota::new("a", 2, QuotaDay::default(), store);
        let t = 1_700_000_000_000;
        assert!(q.spend(t).is_ok());
        assert!(q.spend(t).is_ok());
        assert_eq!(q.spend(t), Err(next_shanghai_midnight(t)));
        assert!(q.spend(next_shanghai_midnight(t)).is_ok());
    }

    #[test]
    fn a_call_in_flight_across_the_reset_counts_on_both_days() {
        let store = Arc::new(MemoryQuotaStore::default());
        let q = Quota::new("a", 10, QuotaDay::default(), store);
        let reset = next_shanghai_midnight(1_700_000_000_000);
        // Counted 5 ms before the reset, answered 20 ms after it.
        assert!(q.spend(reset - 5).is_ok());
        q.settle(reset - 5, reset + 20);
        assert_eq!(q.used(reset + 20), 1, "the new day counts it too");
        // A call counted and answered on the same day is counted once.
        assert!(q.spend(reset + 30).is_ok());
        q.settle(reset + 30, reset + 60);
        assert_eq!(q.used(reset + 60), 2);
        assert_eq!(q.remaining(reset + 60), 8);
    }

    #[test]
    fn a_restart_keeps_the_day_count() {
        let store: Arc<dyn QuotaStore> = Arc::new(MemoryQuotaStore::default());
        let t = 1_700_000_000_000;
        Quota::new("a", 3, QuotaDay::default(), store.clone()).spend(t).ok();
        let again = Quota::new("a", 3, QuotaDay::default(), store);
        assert_eq!(again.used(t), 1);
        assert_eq!(again.remaining(t), 2);
        assert_eq!(again.used(t + DAY_MS), 0);
    }

    #[test]
    fn platform_code_15_wins_over_our_count() {
        let store: Arc<dyn QuotaStore> = Arc::new(MemoryQuotaStore::default());
        let q = Quota::new("a", 100, QuotaDay::default(), store.clone());
        let t = 1_700_000_000_000;
        q.mark_exhausted(t);
        assert!(q.spend(t).is_err());
        assert_eq!(q.remaining(t), 0);
        // ... and a restart still believes it until the reset.
        let again = Quota::new("a", 100, QuotaDay::default(), store);
        assert_eq!(again.remaining(t), 0);
        assert_eq!(again.remaining(next_shanghai_midnight(t)), 100);
    }
}
