//! What every scheduled job shares.

use crate::api::Client;
use crate::clock::now_ms;
use crate::config::{Settings, ShopSettings};
use crate::metrics::Metrics;
use crate::state::Store;
use crate::sync::PassStats;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Passes in flight: each shop's member id (or label, before it is resolved) with its pass's
/// live counters.
pub(super) type ActivePasses = Arc<std::sync::Mutex<Vec<(String, std::sync::Weak<PassStats>)>>>;

pub(super) struct Shared {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub clients: Vec<Client>,
    pub settings: Settings,
    /// One lock per shop, keyed by member id: two passes of one shop never run at once,
    /// even when the config names it twice (by URL and by id).
    pub locks: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Shops a full pass holds or waits for (see [`Shared::claim_full`]).
    pub full_claims: FullClaims,
    /// Passes in flight, so shutdown (or a reload that removes their shop) can ask them to
    /// stop after their page in hand.
    pub active: ActivePasses,
    /// `daemon.max_passes` permits: passes beyond it wait (holding their shop's lock, so the
    /// shop's next cron run is skipped as still running rather than queued twice).
    pub passes: Arc<tokio::sync::Semaphore>,
    /// Per shop: not before this time may an open full pass be resumed again by the
    /// resume loop (set after a session that failed for another reason than quota).
    pub resume_after: std::sync::Mutex<HashMap<String, i64>>,
    /// Per account (by app key): what planned passes spent on the current quota day.
    pub ledger: std::sync::Mutex<HashMap<String, Ledger>>,
    /// Calls a quota day the explicit crons are expected to need, per client (same order).
    pub cron_demand: Vec<u64>,
    /// Per shop (config order): the interval of its incremental cron, in ms, if it has one.
    pub cron_intervals: Vec<Option<f64>>,
    /// Per member id: how often the shop is meant to be polled, in seconds (the planner's
    /// target, or its cron's interval), for the staleness alert.
    pub poll_intervals: std::sync::Mutex<HashMap<String, f64>>,
    /// Woken when a pass ends, so the planner fills its slot at once.
    pub replan: Arc<tokio::sync::Notify>,
}

/// Member ids a full pass runs on or waits for.
pub(super) type FullClaims = Arc<std::sync::Mutex<std::collections::HashSet<String>>>;

/// A shop claimed for one full pass; the claim ends when this is dropped.
pub(super) struct FullClaim {
    claims: FullClaims,
    key: String,
}

impl Drop for FullClaim {
    fn drop(&mut self) {
        self.claims.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.key);
    }
}

/// One account's planned spending on one quota day.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub day: i64,
    pub full: u64,
    pub polls: u64,
    /// Planned full sessions running on the account now.
    pub full_sessions: usize,
}

/// What a planned pass is, for the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlannedKind {
    Full,
    Poll,
}

/// A pass the planner started: on which account, with how many calls at most.
#[derive(Debug, Clone, Copy)]
pub struct Planned {
    pub account: usize,
    pub kind: PlannedKind,
    pub cap: u64,
}

impl Shared {
    /// The ledger of `client` for today (a new day starts empty; sessions carry over).
    pub fn ledger_of(&self, client: &Client, now: i64) -> Ledger {
        let day = client.quota().days().index(now);
        let mut l = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        let e = l.entry(client.settings().app_key.clone()).or_default();
        if e.day != day {
            *e = Ledger { day, full_sessions: e.full_sessions, ..Ledger::default() };
        }
        e.clone()
    }

    /// Changes the ledger of `client` for today.
    pub fn with_ledger(&self, client: &Client, now: i64, f: impl FnOnce(&mut Ledger)) {
        self.ledger_of(client, now);
        let mut l = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = l.get_mut(&client.settings().app_key) {
            f(e);
        }
    }

    /// Claims `key` for a full pass: `None` when another full pass runs on it or already
    /// waits for its turn. A full pass that finds its shop busy with an incremental poll
    /// waits for it (a full cron firing at the same second as the poll would otherwise lose
    /// the shop's lock every time); a second full pass has nothing to add and is skipped.
    pub fn claim_full(&self, key: &str) -> Option<FullClaim> {
        let mut c = self.full_claims.lock().unwrap_or_else(|e| e.into_inner());
        c.insert(key.to_string())
            .then(|| FullClaim { claims: self.full_claims.clone(), key: key.to_string() })
    }

    pub fn lock_for(&self, key: &str) -> Arc<Mutex<()>> {
        let mut m = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key.to_string()).or_default().clone()
    }

    /// The accounts a shop may use, in order: its pinned one, or all of them starting at the
    /// shop's position (so shops spread over the accounts), leaving out those whose quota is
    /// spent until the reset.
    pub fn candidates(&self, shop: &ShopSettings, index: usize) -> Vec<&Client> {
        let now = now_ms();
        let n = self.clients.len();
        let order: Vec<&Client> = match &shop.account {
            Some(name) => self.clients.iter().filter(|c| c.account() == name).collect(),
            None => (0..n).map(|k| &self.clients[(index + k) % n]).collect(),
        };
        order.into_iter().filter(|c| c.quota().remaining(now) > 0).collect()
    }

    /// The member id of a configured shop without calling the platform: given, or a URL
    /// resolved before (a URL's member id does not change, so an old answer is good enough
    /// to find the shop's state at start).
    pub fn known_member(&self, shop: &ShopSettings) -> Option<String> {
        match &shop.shop {
            crate::api::ShopRef::Member(m) => Some(m.as_str().to_string()),
            crate::api::ShopRef::Url(u) => self.store.known_url(u),
        }
    }
}
