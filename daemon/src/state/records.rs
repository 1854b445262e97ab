//! What is stored per item and per shop.

use crate::event::Item;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredItem {
    pub item: Item,
    pub md5: String,
    /// MD5 of the listing fields alone: when it is unchanged, the SKU details are too and
    /// need no `alibaba.item.sku.get`.
    pub listing_md5: String,
    /// The full pass that last saw this item on the platform (its `pass_id`), stamped by the
    /// store whenever the item is written while a full pass is open. Items of the shop that
    /// lack the open pass's mark when its windows are all read are the delete candidates:
    /// this keeps "what the pass has seen" in sled, however long the pass runs or however
    /// often it is interrupted, instead of in memory. Never part of events or exports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<u64>,
    /// The canonical form `md5` and `listing_md5` were taken in (0: before forms had
    /// versions). A stored hash of another version is recomputed from the stored item
    /// before it is compared, so a new form never turns the whole copy into updates.
    #[serde(default)]
    pub hash_v: u32,
    /// When the SKU details were last fetched (`None`: before this was kept). Full passes
    /// fetch them again once they are older than `[sync] sku_max_age`, so a SKU-only change
    /// (price or stock of a variant, the listing untouched) is caught even when
    /// `full_pass_skus = "changed"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skus_ms: Option<i64>,
}

impl StoredItem {
    pub fn new(item: Item, md5: String, listing_md5: String) -> StoredItem {
        StoredItem { item, md5, listing_md5, seen: None, hash_v: crate::event::HASH_VERSION, skus_ms: None }
    }

    /// With the time its SKU details were fetched.
    pub fn with_skus_ms(mut self, ms: Option<i64>) -> StoredItem {
        self.skus_ms = ms;
        self
    }

    /// The content hash in the current canonical form.
    pub fn current_md5(&self) -> String {
        if self.hash_v == crate::event::HASH_VERSION {
            self.md5.clone()
        } else {
            self.item.md5()
        }
    }

    /// The listing hash in the current canonical form.
    pub fn current_listing_md5(&self) -> String {
        if self.hash_v == crate::event::HASH_VERSION {
            self.listing_md5.clone()
        } else {
            self.item.listing_md5()
        }
    }
}

/// One window of an open full pass that is not read to its end yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowState {
    /// `start <= modified_time < end`
    pub start: i64,
    pub end: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    /// The first page not yet committed: a resumed pass reads on from here.
    pub next_page: u32,
    /// `total_results` of the window's first read: a later page with another total means
    /// the pages shifted under the read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_total: Option<u64>,
}

impl WindowState {
    pub fn new(start: i64, end: i64, cid: Option<String>) -> WindowState {
        WindowState { start, end, cid, next_page: 1, first_total: None }
    }

    pub fn same(&self, other: &WindowState) -> bool {
        self.start == other.start && self.end == other.end && self.cid == other.cid
    }
}

/// Where a page's commit leaves the open full pass: stored in the page's own transaction, so a
/// resumed pass never reads a committed page again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageMark {
    /// Where the page's window stands now (`None`: the commit moves no window, it only settles
    /// parked items, or it is a page of a millisecond's extra read, kept with its split).
    pub window: Option<WindowState>,
    /// Calls and wall time the pass spent since its previous mark (for the estimated finish;
    /// counted with the page, so a SIGKILL loses none of it).
    pub calls: u64,
    pub active_ms: i64,
    /// Items of the page still waiting for their SKU details: parked (the store's `parked` tree),
    /// so the page counts as read and a resumed pass fetches their details without listing
    /// the page again.
    pub park: Vec<Parked>,
    /// Parked items this commit writes: each takes one parked listing of its id out.
    pub unpark: Vec<String>,
    /// Items a read found delisted or gone that are not stored: every parked listing of
    /// them ends, or the next session would store what no longer is.
    pub forget: Vec<String>,
}

/// An item listed by an open full pass whose SKU details were not fetched yet: its listing,
/// as read (see [`PageMark::park`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parked {
    pub item: Item,
    pub listing_md5: String,
}

/// An open full pass: everything needed to resume it, on any account, after quota ran out,
/// a shutdown, a reload or a crash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FullProgress {
    /// Unique per shop (the start time in ms): the mark stamped on items it has seen.
    pub pass_id: u64,
    pub started_ms: i64,
    /// The pass reads `modified_time < t_end`; its watermark once done.
    pub t_end: i64,
    /// The official count, asked once per pass.
    #[serde(default)]
    pub official: Option<u64>,
    /// Windows not read to their end, oldest first.
    pub windows: Vec<WindowState>,
    pub windows_done: u64,
    /// Items stamped with this pass's mark.
    pub items_seen: u64,
    /// Calls spent on this pass so far, over all its sessions.
    pub calls: u64,
    /// Wall time spent in its sessions, for the estimated finish.
    pub active_ms: i64,
    /// How many times it was started or resumed.
    pub sessions: u32,
    /// Every window is read; the unseen items are being verified.
    pub verifying: bool,
    /// The earliest start of a window whose last read shifted: the pass's watermark stops
    /// there (an item may have slipped between two of its pages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_ms: Option<i64>,
    /// Milliseconds split by category whose parts are still being read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub splits: Vec<SplitMs>,
    /// How many items listed on committed pages still wait for their SKU details (a batch of
    /// 20 ids fills across pages): the next session fetches them first. The items themselves
    /// are in the store's `parked` tree, written in the page's transaction; this state is
    /// rewritten by every commit and stays small.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub parked_count: u64,
    /// Parked items as schema 1 kept them, inside this record: moved to the `parked` tree
    /// when the state is opened (see `Store::open`), never written.
    #[serde(default, rename = "parked", skip_serializing)]
    pub legacy_parked: Vec<Parked>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The parked listings of one item (see [`FullProgress::parked_count`]), keyed by shop and item in
/// the store's `parked` tree. An item listed twice in one read waits twice. Entries of
/// another pass than the open one are stale (a pass that was abandoned) and count as none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedSlot {
    pub pass_id: u64,
    pub listings: Vec<Parked>,
}

/// A millisecond of a full pass split by category (thousands of items on one millisecond),
/// while its parts are read: whether they add up is checked once all are done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitMs {
    pub at: i64,
    /// What the platform counts on that millisecond, all categories together.
    pub expected: u64,
    /// How many category parts it was split into.
    pub parts: usize,
    /// Per category read so far: its count, and how much of it lies past the depth cap.
    pub counts: std::collections::BTreeMap<String, (u64, u64)>,
    /// Categories read to their end.
    pub done: std::collections::BTreeSet<String>,
    /// The millisecond's extra reads (its own orders, a capped category by sales volume), by
    /// name: the next page to read, [`SplitMs::READ_DONE`] once read to its end. A check cut
    /// off by the quota or a kill goes on from there instead of reading those pages again.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub reads: std::collections::BTreeMap<String, u32>,
}

impl SplitMs {
    pub const READ_DONE: u32 = u32::MAX;
}

impl FullProgress {
    pub fn new(pass_id: u64, started_ms: i64, t_end: i64, first: WindowState) -> FullProgress {
        FullProgress {
            pass_id,
            started_ms,
            t_end,
            official: None,
            windows: vec![first],
            windows_done: 0,
            items_seen: 0,
            calls: 0,
            active_ms: 0,
            sessions: 0,
            verifying: false,
            held_ms: None,
            splits: Vec::new(),
            parked_count: 0,
            legacy_parked: Vec::new(),
        }
    }

    pub fn windows_total(&self) -> u64 {
        self.windows_done + self.windows.len() as u64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PassKind {
    Full,
    Incremental,
    Watch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassRecord {
    pub kind: PassKind,
    pub started_ms: i64,
    pub finished_ms: i64,
    pub ok: bool,
    pub calls: u64,
    pub items_seen: u64,
    pub events: u64,
    pub error: Option<String>,
}

/// The completeness check of a full pass (design doc, "Completeness").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completeness {
    pub fetched: u64,
    pub official: u64,
    /// Items of the official count that no query reaches (the shop's known gaps): a copy
    /// without them is as complete as the platform allows, and says so here.
    #[serde(default)]
    pub unreachable: u64,
    /// Of the items that list SKU ids, the share whose SKU details were fetched.
    pub sku_share: f64,
    /// The share of items with a price (tiers or the channel-price fallback).
    pub price_share: f64,
    pub complete: bool,
    pub checked_ms: i64,
}

impl Completeness {
    /// Complete: the fetched and unreachable items together within 5 of the official count,
    /// and at least 97% of the items with SKU details and with a price.
    pub fn judge(
        fetched: u64,
        official: u64,
        unreachable: u64,
        sku_share: f64,
        price_share: f64,
        checked_ms: i64,
    ) -> Completeness {
        let complete =
            (fetched + unreachable).abs_diff(official) <= 5 && sku_share >= 0.97 && price_share >= 0.97;
        Completeness { fetched, official, unreachable, sku_share, price_share, complete, checked_ms }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShopState {
    /// Every change with `modified_time` below this has been seen and stored with its event.
    pub watermark_ms: Option<i64>,
    /// While the shop's first full pass is open (no watermark yet): polls have stored every
    /// change from that pass's `t_end` up to here. The pass reads what lies before `t_end`;
    /// when it finishes, the watermark takes the later of the two (see `sync/full.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_watermark_ms: Option<i64>,
    /// The next event's `seq`.
    pub next_seq: u64,
    pub item_count: u64,
    pub last_full: Option<PassRecord>,
    pub last_incremental: Option<PassRecord>,
    pub completeness: Option<Completeness>,
    /// The full pass in progress, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<FullProgress>,
    /// What the budget planner has learned of the shop (its change rate, the cost of a poll).
    #[serde(default)]
    pub rate: ChangeRate,
    /// Known gaps no query reaches, by the millisecond they sit on: how many items the
    /// platform counts there that its category queries do not return (items whose category
    /// is not in the seller's list) or that lie past the depth cap of one category. A gap
    /// found again with the same size is the same known gap and no longer holds the
    /// watermark back (holding it cannot fetch the items, and would re-read everything
    /// since on every poll); a new or different gap does.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub unreachable: std::collections::BTreeMap<i64, Gap>,
    /// A seller shop's `sellerOpenId` as learned from the details of the offer the config
    /// names (`seller_offer_id`): (that offer, the open id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned_seller: Option<(String, String)>,
}

/// A millisecond whose category queries do not add up to its count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// What the category queries fell short by (their counts against the millisecond's,
    /// plus what lies past the depth cap of one category): the same figure again means the
    /// same known gap.
    pub found: u64,
    /// What no query reached, after the millisecond's own pages and its sales order were read.
    pub items: u64,
}

impl ShopState {
    /// While the first full pass is open: where an incremental read must start (`overlap_ms`
    /// before where polls stand, first the pass's `t_end`), so that what polls cover stays one
    /// span from the pass's start. `None` once the shop has a watermark, or with no pass open.
    pub fn first_copy_poll_from(&self, overlap_ms: i64) -> Option<i64> {
        match (self.watermark_ms, &self.full) {
            (None, Some(f)) => Some(self.poll_watermark_ms.unwrap_or(f.t_end) - overlap_ms),
            _ => None,
        }
    }

    /// Items in the known gaps, all together.
    pub fn unreachable_items(&self) -> u64 {
        self.unreachable.values().map(|g| g.items).sum()
    }
}

/// A shop's observed rhythm, learned from its own passes by the budget planner
/// (`schedule/rates.rs` reads and updates it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeRate {
    /// Changes incremental polls found (their events) ...
    pub events: f64,
    /// ... over this much polled time (ms).
    pub span_ms: f64,
    /// Changes only full passes caught (silent stock/sales edits, removals) ...
    pub silent: f64,
    /// ... over this much time between full passes (ms).
    pub silent_span_ms: f64,
    /// Calls an incremental poll costs, averaged.
    pub poll_calls: f64,
    pub polls: u64,
    /// Calls a poll that found nothing costs, averaged (0: none seen yet): what polling once
    /// more costs, whatever the change rate.
    #[serde(default)]
    pub empty_poll_calls: f64,
    /// Calls and changes of the polls that found something, averaged: with the empty poll's
    /// cost they give the calls each change costs to fetch, which are spent however often the
    /// shop is polled.
    #[serde(default)]
    pub busy_poll_calls: f64,
    #[serde(default)]
    pub busy_poll_events: f64,
    /// When the last incremental poll started: its view of the platform reaches there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_poll_ms: Option<i64>,
    /// When the last full pass finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_full_ms: Option<i64>,
    /// Calls the last complete full pass cost, all its sessions together.
    #[serde(default)]
    pub full_calls: u64,
    /// What the complete full passes that followed an earlier one (refreshes) cost, averaged:
    /// with SKU details fetched only for changed and old items, a fraction of a first copy.
    #[serde(default)]
    pub refresh_calls: u64,
}
