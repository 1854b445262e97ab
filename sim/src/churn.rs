//! Background churn: shops that change on their own while the simulator serves, as live
//! shops do at every hour. Sellers edit items (`modified_time` moves), stock and sales tick
//! (it does not), a single SKU's price or stock moves (nothing of the listing does), new
//! items appear and old ones are delisted, a share of them silently. A copy is never "done":
//! it is only as fresh as its last pass, and every change is logged here with its time and
//! item so that benchmarks can measure how stale a copy was.
//!
//! The picks (which shop, which kind of change, which item, when) come from a generator
//! seeded by the simulator's seed, so a run's sequence of changes follows from the seed; only
//! their spacing in wall time depends on the machine.

use crate::admin::{change, create, MutationOp};
use crate::state::Sim;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Churn entries kept for `GET /_sim/churn` (older ones are dropped; the totals keep counting).
pub const LOG_CAP: usize = 20_000;

/// How the kinds of change are mixed, in parts of 100; silent delistings are drawn from the
/// delistings by `Quirks::silent_delist_share`. Creates and delistings balance roughly, so a
/// shop keeps its size.
const MIX: [(ChurnKind, u32); 5] = [
    (ChurnKind::Update, 35),
    (ChurnKind::Touch, 25),
    (ChurnKind::Sku, 15),
    (ChurnKind::Create, 12),
    (ChurnKind::Delist, 13),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChurnKind {
    Update,
    Touch,
    Sku,
    Create,
    Delist,
    DelistSilent,
}

impl ChurnKind {
    fn op(self) -> MutationOp {
        match self {
            ChurnKind::Update => MutationOp::Update,
            ChurnKind::Touch => MutationOp::Touch,
            ChurnKind::Sku => MutationOp::Sku,
            ChurnKind::Create => MutationOp::Create,
            ChurnKind::Delist => MutationOp::Delist,
            ChurnKind::DelistSilent => MutationOp::DelistSilent,
        }
    }
}

/// One change the churn made.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnEntry {
    /// 1, 2, …: `GET /_sim/churn?after=N` returns the entries after the N-th.
    pub seq: u64,
    /// When it was made, in the simulator's clock (the new `modified_time` when it moved).
    pub at_ms: i64,
    pub member_id: String,
    pub item_id: String,
    pub kind: ChurnKind,
}

/// The churn's generator, totals and recent log.
pub struct ChurnBook {
    rng: SmallRng,
    total: u64,
    by_kind: BTreeMap<ChurnKind, u64>,
    log: VecDeque<ChurnEntry>,
}

/// `GET /_sim/churn`.
#[derive(Debug, Serialize)]
pub struct ChurnReport {
    pub per_minute: f64,
    pub silent_delist_share: f64,
    /// Changes made since the start.
    pub changes: u64,
    pub by_kind: BTreeMap<ChurnKind, u64>,
    /// The logged entries after `after` (at most [`LOG_CAP`] of the latest are kept).
    pub log: Vec<ChurnEntry>,
}

impl ChurnBook {
    pub fn new(seed: u64) -> Self {
        ChurnBook {
            rng: SmallRng::seed_from_u64(seed ^ 0xc4_0e_11),
            total: 0,
            by_kind: BTreeMap::new(),
            log: VecDeque::new(),
        }
    }

    fn record(&mut self, at_ms: i64, member_id: &str, item_id: u64, kind: ChurnKind) {
        self.total += 1;
        *self.by_kind.entry(kind).or_default() += 1;
        if self.log.len() == LOG_CAP {
            self.log.pop_front();
        }
        self.log.push_back(ChurnEntry {
            seq: self.total,
            at_ms,
            member_id: member_id.to_string(),
            item_id: item_id.to_string(),
            kind,
        });
    }
}

impl Sim {
    /// The churn's rate and totals, with the log entries after the `after`-th.
    pub fn churn_report(&self, after: u64) -> ChurnReport {
        let q = self.quirks();
        let book = self.churn_book();
        ChurnReport {
            per_minute: q.churn_per_min,
            silent_delist_share: q.silent_delist_share,
            changes: book.total,
            by_kind: book.by_kind.clone(),
            log: book.log.iter().filter(|e| e.seq > after).cloned().collect(),
        }
    }

    /// Sets the churn rate (changes per minute per shop; 0 stops it) at once.
    pub fn set_churn(&self, per_minute: f64) {
        let mut q = self.quirks();
        q.churn_per_min = per_minute.max(0.0);
        self.set_quirks(q);
    }

    /// Makes changes at the configured rate for as long as it runs: a Poisson process over
    /// all shops together, restarted whenever the rate changes.
    pub(crate) async fn churn(self) {
        loop {
            let per_min = self.quirks().churn_per_min;
            let shops = self.catalogue().shops.len();
            let per_ms = per_min.max(0.0) * shops as f64 / 60_000.0;
            if !per_ms.is_finite() || per_ms <= 0.0 {
                // Off, or no shop yet: wait for a new rate (shops created later are picked
                // up at the next change of rate or within a second).
                let _ = tokio::time::timeout(Duration::from_secs(1), self.inner.churn_wake.notified()).await;
                continue;
            }
            let gap_ms = {
                let u: f64 = self.churn_book().rng.gen_range(f64::EPSILON..1.0);
                (-u.ln() / per_ms).min(3_600_000.0)
            };
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(gap_ms / 1000.0)) => self.churn_step(true),
                _ = self.inner.churn_wake.notified() => {}
            }
        }
    }

    /// Makes one change to a random shop, and logs it, whatever the rate (for tests and
    /// scripts that want churn step by step).
    pub fn churn_once(&self) {
        self.churn_step(false);
    }

    /// One change; with `only_if_on`, none when the rate has meanwhile been set to 0.
    fn churn_step(&self, only_if_on: bool) {
        let now = self.now_ms();
        let mut guard = self.catalogue_mut();
        let cat = &mut *guard;
        let mut book = self.churn_book();
        let quirks = self.quirks();
        if cat.shops.is_empty() || (only_if_on && quirks.churn_per_min <= 0.0) {
            return;
        }
        let silent_share = quirks.silent_delist_share;
        let idx = book.rng.gen_range(0..cat.shops.len());
        let mut roll = book.rng.gen_range(0..MIX.iter().map(|m| m.1).sum::<u32>());
        let mut kind = ChurnKind::Update;
        for (k, weight) in MIX {
            if roll < weight {
                kind = k;
                break;
            }
            roll -= weight;
        }
        let silent_share = if silent_share.is_nan() { 0.0 } else { silent_share.clamp(0.0, 1.0) };
        if kind == ChurnKind::Delist && book.rng.gen_bool(silent_share) {
            kind = ChurnKind::DelistSilent;
        }
        let item_id = if kind == ChurnKind::Create {
            Some(create(cat, idx, now))
        } else {
            let shop = &cat.shops[idx];
            let wanted = |id: u64| {
                shop.get(id).is_some_and(|i| i.online && (kind != ChurnKind::Sku || !i.skus.is_empty()))
            };
            // Probe random ids in the shop's id range rather than take the k-th item of the
            // time index: that order depends on which changes shared a millisecond, and the
            // picks would no longer follow from the seed alone.
            let (lo, hi) = shop.id_range();
            let mut pick = (0..400).map(|_| book.rng.gen_range(lo..=hi)).find(|&id| wanted(id));
            if pick.is_none() {
                let n = shop.online_count();
                let from = book.rng.gen_range(0..n.max(1));
                pick = (0..n).filter_map(|k| shop.online_id_at((from + k) % n)).find(|&id| wanted(id));
            }
            if pick.is_none() && kind == ChurnKind::Sku {
                // No item with SKUs at all: stock and sales tick instead.
                kind = ChurnKind::Touch;
                pick = shop.online_id_at(book.rng.gen_range(0..shop.online_count().max(1)));
            }
            pick.filter(|&id| change(cat, idx, kind.op(), id, now))
        };
        if let Some(id) = item_id {
            let member = cat.shops[idx].member_id.clone();
            book.record(now, &member, id, kind);
        }
    }
}
