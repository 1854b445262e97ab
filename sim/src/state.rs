//! The simulator's shared state: catalogues, accounts, limits, faults, tokens and the traffic
//! book (rate windows, daily quotas, call counters).

use crate::catalogue::{GenSpec, Generator, Shop};
use crate::churn::ChurnBook;
use crate::config::{default_accounts, Account, Faults, KeyKind, Limits, Quirks};
use crate::time::{quota_day, wall_ms};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// All shops, and where each item lives.
pub struct Catalogue {
    pub shops: Vec<Shop>,
    pub by_member: HashMap<String, usize>,
    pub by_login: HashMap<String, usize>,
    pub item_shop: HashMap<u64, usize>,
    pub gen: Generator,
}

impl Catalogue {
    pub fn shop(&self, member_id: &str) -> Option<&Shop> {
        self.by_member.get(member_id).map(|&i| &self.shops[i])
    }

    /// Adds a generated shop; returns its index.
    pub fn add_shop(&mut self, spec: &GenSpec) -> usize {
        let mut shop = self.gen.shop(spec);
        while self.by_member.contains_key(&shop.member_id) || self.by_login.contains_key(&shop.login) {
            shop = self.gen.shop(spec);
        }
        let idx = self.shops.len();
        for id in shop.online_ids() {
            self.item_shop.insert(id, idx);
        }
        self.by_member.insert(shop.member_id.clone(), idx);
        self.by_login.insert(shop.login.clone(), idx);
        self.shops.push(shop);
        idx
    }
}

/// Per app key: the sliding second, the daily count and what was seen.
#[derive(Default)]
struct KeyTraffic {
    /// Every arrival in the last second, admitted or not (what the limit counts).
    arrivals: VecDeque<i64>,
    stats: KeyStats,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct KeyStats {
    /// Requests that reached the gateway.
    pub calls: u64,
    /// The most requests seen within any one sliding second.
    pub max_calls_per_second: u64,
    /// Code 7 answers because the key went over the limit.
    pub rate_limited: u64,
    /// Code 7 answers injected as faults.
    pub throttle_injected: u64,
    /// Calls counted against today's quota.
    pub quota_used_today: u64,
}

#[derive(Default)]
pub struct Traffic {
    keys: HashMap<String, KeyTraffic>,
    /// (app key, Shanghai day) → calls counted against that day's quota.
    quota: HashMap<(String, i64), u64>,
    /// method → outcome → count.
    methods: BTreeMap<String, BTreeMap<String, u64>>,
    total: u64,
    /// Every list page answered whole, by its query (shop, window, category, page, size,
    /// offline) → times served: a client that lists a page it already had shows up here.
    list_pages: HashMap<String, u32>,
}

/// Snapshot of the counters, as `GET /_sim/counters` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Counters {
    pub total: u64,
    /// List pages answered whole (distinct queries).
    pub list_pages_distinct: u64,
    /// List pages answered whole again, for a query already answered before.
    pub list_pages_repeated: u64,
    pub methods: BTreeMap<String, BTreeMap<String, u64>>,
    pub accounts: BTreeMap<String, KeyStats>,
}

impl Traffic {
    /// Records an arrival; false when the key is over its per-second limit.
    pub fn admit(&mut self, app_key: &str, now: i64, limit: u32) -> bool {
        self.total += 1;
        let t = self.keys.entry(app_key.to_string()).or_default();
        t.stats.calls += 1;
        while t.arrivals.front().is_some_and(|&a| a <= now - 1000) {
            t.arrivals.pop_front();
        }
        t.arrivals.push_back(now);
        t.stats.max_calls_per_second = t.stats.max_calls_per_second.max(t.arrivals.len() as u64);
        // Rejected calls count in the window too: a client that keeps hammering stays limited.
        if limit > 0 && t.arrivals.len() > limit as usize {
            t.stats.rate_limited += 1;
            return false;
        }
        true
    }

    pub fn throttle_injected(&mut self, app_key: &str) {
        self.keys.entry(app_key.to_string()).or_default().stats.throttle_injected += 1;
    }

    /// Counts one call against today's quota; false when the quota is already spent.
    pub fn spend_quota(&mut self, app_key: &str, now: i64, quota: u64, day_ms: i64) -> bool {
        let used = self.quota.entry((app_key.to_string(), quota_day(now, day_ms))).or_default();
        if *used >= quota {
            return false;
        }
        *used += 1;
        true
    }

    pub fn outcome(&mut self, method: &str, outcome: &str) {
        *self.methods.entry(method.to_string()).or_default().entry(outcome.to_string()).or_default() += 1;
    }

    pub fn counters(&self, now: i64, day_ms: i64) -> Counters {
        let day = quota_day(now, day_ms);
        let mut accounts: BTreeMap<String, KeyStats> =
            self.keys.iter().map(|(k, t)| (k.clone(), t.stats.clone())).collect();
        for ((key, d), used) in &self.quota {
            if *d == day {
                accounts.entry(key.clone()).or_default().quota_used_today = *used;
            }
        }
        let distinct = self.list_pages.len() as u64;
        let repeated = self.list_pages.values().map(|&n| u64::from(n.saturating_sub(1))).sum();
        Counters {
            total: self.total,
            list_pages_distinct: distinct,
            list_pages_repeated: repeated,
            methods: self.methods.clone(),
            accounts,
        }
    }

    /// Records a list page answered whole.
    pub fn list_page_served(&mut self, p: &BTreeMap<String, String>) {
        let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
        // The order is part of the page: the same filter sorted by sales volume is another
        // page, read on purpose (a millisecond's items past the depth cap).
        let key = format!(
            "{}|{}|{}|{}|{}|{}|{}|{}",
            get("sortType"),
            get("member_id"),
            get("start_time"),
            get("end_time"),
            get("cid"),
            get("pageNum"),
            get("pageSize"),
            get("offline")
        );
        *self.list_pages.entry(key).or_default() += 1;
    }

    /// The list pages answered more than once, most repeated first (at most `limit`): the
    /// key is `sortType|member|start|end|cid|page|size|offline`, with how often it was served.
    pub fn repeated_pages(&self, limit: usize) -> Vec<(String, u32)> {
        let mut out: Vec<(String, u32)> =
            self.list_pages.iter().filter(|(_, &n)| n > 1).map(|(k, &n)| (k.clone(), n)).collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out.truncate(limit);
        out
    }

    /// Forgets the counters (not the quota spent).
    pub fn reset_counters(&mut self) {
        self.list_pages.clear();
        self.methods.clear();
        self.total = 0;
        for t in self.keys.values_mut() {
            t.stats = KeyStats::default();
        }
    }

    pub fn reset_quota(&mut self) {
        self.quota.clear();
    }
}

/// An OAuth token the simulator issued.
#[derive(Debug, Clone)]
pub struct Token {
    pub app_key: String,
    pub expires_ms: i64,
    /// The member who authorized the app (param2's authorization-code grant); `None` for the
    /// seed face's client-credentials tokens, which speak for the app alone.
    pub member_id: Option<String>,
}

pub struct Inner {
    pub seed: u64,
    pub catalogue: RwLock<Catalogue>,
    pub accounts: RwLock<Vec<Account>>,
    pub limits: RwLock<Limits>,
    pub faults: RwLock<Faults>,
    pub quirks: RwLock<Quirks>,
    pub churn: Mutex<ChurnBook>,
    /// Wakes the churn task when its rate changes.
    pub churn_wake: tokio::sync::Notify,
    pub traffic: Mutex<Traffic>,
    pub tokens: Mutex<HashMap<String, Token>>,
    pub refresh_tokens: Mutex<HashMap<String, Token>>,
    /// The param2 face's own settings and pending authorization codes.
    pub param2: Mutex<crate::param2::Param2State>,
    /// Change messages to the app's callback URL, and their counts.
    pub push: Mutex<crate::param2::push::PushBook>,
    /// Wakes the sender when a message is queued.
    pub push_wake: tokio::sync::Notify,
    pub dice: Mutex<SmallRng>,
    /// Mutations held back until a list query reaches their point (see `Sim::mutate_when_split`).
    pub armed: Mutex<Vec<crate::admin::Armed>>,
}

/// The simulated platform. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Sim {
    pub(crate) inner: Arc<Inner>,
}

/// How to build a [`Sim`].
#[derive(Debug, Clone)]
pub struct SimSpec {
    pub seed: u64,
    pub shops: usize,
    pub items: usize,
    pub limits: Limits,
    pub faults: Faults,
}

impl Default for SimSpec {
    fn default() -> Self {
        SimSpec { seed: 7, shops: 1, items: 1_000, limits: Limits::default(), faults: Faults::default() }
    }
}

// A poisoned lock only means a handler panicked mid-request; the data stays usable for a
// simulator, so recover the guard instead of taking the whole server down.
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}
fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}
fn lock<T>(l: &Mutex<T>) -> MutexGuard<'_, T> {
    l.lock().unwrap_or_else(|e| e.into_inner())
}

/// SplitMix64's finalizer: a well-mixed hash of a number.
pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Sim {
    /// A simulator with every catalogue quirk at its default (background churn included).
    pub fn new(spec: SimSpec) -> Sim {
        Sim::with_quirks(spec, Quirks::default())
    }

    /// A simulator with these catalogue quirks.
    pub fn with_quirks(spec: SimSpec, quirks: Quirks) -> Sim {
        let mut catalogue = Catalogue {
            shops: Vec::new(),
            by_member: HashMap::new(),
            by_login: HashMap::new(),
            item_shop: HashMap::new(),
            gen: Generator::new(spec.seed),
        };
        let now = wall_ms() + spec.limits.clock_offset_ms;
        for _ in 0..spec.shops {
            catalogue.add_shop(&GenSpec {
                items: spec.items,
                categories: None,
                tie: None,
                history_days: 3 * 365,
                now_ms: now,
                skus: None,
                stray_cid_share: quirks.stray_cid_share,
                one_category_tie_min_items: quirks.one_category_tie_min_items,
            });
        }
        Sim {
            inner: Arc::new(Inner {
                seed: spec.seed,
                catalogue: RwLock::new(catalogue),
                accounts: RwLock::new(default_accounts()),
                limits: RwLock::new(spec.limits),
                faults: RwLock::new(spec.faults),
                quirks: RwLock::new(quirks),
                churn: Mutex::new(ChurnBook::new(spec.seed)),
                churn_wake: tokio::sync::Notify::new(),
                traffic: Mutex::new(Traffic::default()),
                tokens: Mutex::new(HashMap::new()),
                refresh_tokens: Mutex::new(HashMap::new()),
                param2: Mutex::new(crate::param2::Param2State::default()),
                push: Mutex::new(Default::default()),
                push_wake: tokio::sync::Notify::new(),
                dice: Mutex::new(SmallRng::seed_from_u64(spec.seed ^ 0x5eed_fa17)),
                armed: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn catalogue(&self) -> RwLockReadGuard<'_, Catalogue> {
        read(&self.inner.catalogue)
    }
    pub fn catalogue_mut(&self) -> RwLockWriteGuard<'_, Catalogue> {
        write(&self.inner.catalogue)
    }
    pub fn limits(&self) -> Limits {
        read(&self.inner.limits).clone()
    }
    pub fn set_limits(&self, l: Limits) {
        *write(&self.inner.limits) = l;
    }
    pub fn faults(&self) -> Faults {
        read(&self.inner.faults).clone()
    }
    pub fn set_faults(&self, f: Faults) {
        *write(&self.inner.faults) = f;
    }
    pub fn quirks(&self) -> Quirks {
        read(&self.inner.quirks).clone()
    }
    /// Replaces the catalogue quirks; a new churn rate takes effect at once.
    pub fn set_quirks(&self, q: Quirks) {
        // Under the churn book's lock, which a churn change holds while it checks the rate:
        // once this returns, a stopped churn makes no further change.
        let _book = self.churn_book();
        *write(&self.inner.quirks) = q;
        self.inner.churn_wake.notify_one();
    }
    pub fn churn_book(&self) -> MutexGuard<'_, ChurnBook> {
        lock(&self.inner.churn)
    }
    /// Whether an item is served with wrong JSON types: a fixed share of ids, by a hash of
    /// the id and the seed, so the same items misbehave on every call.
    pub fn wrong_types(&self, item_id: u64) -> bool {
        let share = read(&self.inner.quirks).wrong_types_share;
        share > 0.0 && (splitmix(item_id ^ self.inner.seed) % 1_000_000) < (share * 1_000_000.0) as u64
    }
    pub fn accounts(&self) -> Vec<Account> {
        read(&self.inner.accounts).clone()
    }
    pub fn account(&self, app_key: &str) -> Option<Account> {
        read(&self.inner.accounts).iter().find(|a| a.app_key == app_key).cloned()
    }
    pub fn add_account(&self, a: Account) {
        let mut accounts = write(&self.inner.accounts);
        accounts.retain(|x| x.app_key != a.app_key);
        accounts.push(a);
    }
    pub fn traffic(&self) -> MutexGuard<'_, Traffic> {
        lock(&self.inner.traffic)
    }
    pub fn tokens(&self) -> MutexGuard<'_, HashMap<String, Token>> {
        lock(&self.inner.tokens)
    }
    pub fn refresh_tokens(&self) -> MutexGuard<'_, HashMap<String, Token>> {
        lock(&self.inner.refresh_tokens)
    }
    pub fn param2_state(&self) -> MutexGuard<'_, crate::param2::Param2State> {
        lock(&self.inner.param2)
    }

    /// The simulator's "now": wall time plus the configured offset.
    pub fn now_ms(&self) -> i64 {
        wall_ms() + read(&self.inner.limits).clock_offset_ms
    }

    /// True with probability `p`.
    pub fn roll(&self, p: f64) -> bool {
        p > 0.0 && lock(&self.inner.dice).gen_bool(p.min(1.0))
    }

    /// A uniform number in `0..n`.
    pub fn dice(&self, n: usize) -> usize {
        lock(&self.inner.dice).gen_range(0..n.max(1))
    }

    pub fn quota_of(&self, a: &Account) -> u64 {
        let l = read(&self.inner.limits);
        match a.kind {
            KeyKind::Commercial => l.quota_commercial,
            KeyKind::Test => l.quota_test,
        }
    }

    pub fn counters(&self) -> Counters {
        let now = self.now_ms();
        let day_ms = read(&self.inner.limits).quota_day_ms;
        self.traffic().counters(now, day_ms)
    }
}
