//! The daily call budget of one account.
//!
//! Every call sent is counted before it leaves (a call that fails still cost quota on the
//! platform). The count goes through a [`QuotaStore`] so the state store can persist it: a
//! restart must not hand the account a fresh day. The platform's code 15 is believed over
//! our own count: the account is then exhausted until 00:00 Asia/Shanghai.

use crate::clock::{next_shanghai_midnight, shanghai_day};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Where daily counts live between restarts.
pub trait QuotaStore: Send + Sync {
    /// Calls counted for `account` on Shanghai day `day`.
    fn load(&self, account: &str, day: i64) -> u64;
    /// Records the count. Called once per call; an implementation may batch its writes.
    fn save(&self, account: &str, day: i64, used: u64);
}

/// A store that forgets on restart (tests, `sync` without a state dir).
#[derive(Default)]
pub struct MemoryQuotaStore(Mutex<HashMap<(String, i64), u64>>);

impl QuotaStore for MemoryQuotaStore {
    fn load(&self, account: &str, day: i64) -> u64 {
        self.0.lock().map_or(0, |m| m.get(&(account.to_string(), day)).copied().unwrap_or(0))
    }
    fn save(&self, account: &str, day: i64, used: u64) {
        if let Ok(mut m) = self.0.lock() {
            m.insert((account.to_string(), day), used);
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
    account: String,
    limit: u64,
    store: Arc<dyn QuotaStore>,
    day: Mutex<Option<Day>>,
}

impl Quota {
    pub fn new(account: impl Into<String>, limit: u64, store: Arc<dyn QuotaStore>) -> Quota {
        Quota { account: account.into(), limit, store, day: Mutex::new(None) }
    }

    fn today(&self, now_ms: i64) -> MutexGuard<'_, Option<Day>> {
        let mut g = self.day.lock().unwrap_or_else(|e| e.into_inner());
        let day = shanghai_day(now_ms);
        if g.as_ref().is_none_or(|d| d.day != day) {
            *g = Some(Day { day, used: self.store.load(&self.account, day), exhausted: false });
        }
        g
    }

    /// Counts one call; `Err(until_ms)` when the day's budget is spent.
    pub fn spend(&self, now_ms: i64) -> Result<(), i64> {
        let mut g = self.today(now_ms);
        let Some(d) = g.as_mut() else { return Err(next_shanghai_midnight(now_ms)) };
        if d.exhausted || d.used >= self.limit {
            return Err(next_shanghai_midnight(now_ms));
        }
        d.used += 1;
        self.store.save(&self.account, d.day, d.used);
        Ok(())
    }

    /// The platform said the quota is gone (code 15): believe it until the reset.
    pub fn mark_exhausted(&self, now_ms: i64) -> i64 {
        if let Some(d) = self.today(now_ms).as_mut() {
            d.exhausted = true;
        }
        next_shanghai_midnight(now_ms)
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
    use crate::clock::DAY_MS;

    #[test]
    fn spends_up_to_the_limit_then_waits_for_shanghai_midnight() {
        let store = Arc::new(MemoryQuotaStore::default());
        let q = Quota::new("a", 2, store);
        let t = 1_700_000_000_000;
        assert!(q.spend(t).is_ok());
        assert!(q.spend(t).is_ok());
        assert_eq!(q.spend(t), Err(next_shanghai_midnight(t)));
        assert!(q.spend(next_shanghai_midnight(t)).is_ok());
    }

    #[test]
    fn a_restart_keeps_the_day_count() {
        let store: Arc<dyn QuotaStore> = Arc::new(MemoryQuotaStore::default());
        let t = 1_700_000_000_000;
        Quota::new("a", 3, store.clone()).spend(t).ok();
        let again = Quota::new("a", 3, store);
        assert_eq!(again.used(t), 1);
        assert_eq!(again.remaining(t), 2);
        assert_eq!(again.used(t + DAY_MS), 0);
    }

    #[test]
    fn platform_code_15_wins_over_our_count() {
        let q = Quota::new("a", 100, Arc::new(MemoryQuotaStore::default()));
        let t = 1_700_000_000_000;
        q.mark_exhausted(t);
        assert!(q.spend(t).is_err());
        assert_eq!(q.remaining(t), 0);
    }
}
