//! Full and incremental passes over one shop.
//!
//! A full pass reads every window from 2000 to the pass's start, then verifies the items it
//! did not see before deleting any, then checks completeness, and only then moves the
//! watermark. An incremental pass reads from the watermark (minus the overlap) to now in
//! windows of at most 30 days, oldest first, moving the watermark with every page in the same
//! transaction as the page's items and events.

use super::enrich::SkuBatcher;
use super::normalize::{listing, with_skus, NormalizedListing};
use super::plan::{slices, split_category, split_time, Window, DEPTH_CAP, PLATFORM_EPOCH_MS};
use super::stats::{bump, PassStats};
use super::verify;
use crate::api::{ApiError, Client, ItemFilter, MemberId, RawItem, ShopRef, SortType};
use crate::clock::now_ms;
use crate::config::{SkuRefresh, SyncSettings};
use crate::event::{Item, Op};
use crate::state::{Completeness, PassKind, PassRecord, StateError, Store, StoredItem, Write};
use serde::Serialize;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SyncError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("a window task failed: {0}")]
    Task(String),
    #[error("stopped by shutdown after the page in hand")]
    Stopped,
}

impl SyncError {
    pub fn kind(&self) -> &'static str {
        match self {
            SyncError::Api(e) => e.kind(),
            SyncError::State(e) => e.kind(),
            SyncError::Task(_) => "task",
            SyncError::Stopped => "stopped",
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Serialize)]
pub struct PassReport {
    pub shop: String,
    pub kind: PassKind,
    pub started_ms: i64,
    pub finished_ms: i64,
    pub ok: bool,
    pub error: Option<String>,
    pub list_calls: u64,
    pub count_calls: u64,
    pub sku_calls: u64,
    pub item_calls: u64,
    pub other_calls: u64,
    pub items_seen: u64,
    pub creates: u64,
    pub updates: u64,
    pub deletes: u64,
    pub windows: u64,
    pub splits: u64,
    pub unreachable: u64,
    pub completeness: Option<Completeness>,
    pub watermark_ms: Option<i64>,
}

/// Syncs shops through one account's client into the store.
#[derive(Clone)]
pub struct Engine {
    pub(super) client: Client,
    pub(super) store: Store,
    pub(super) sync: SyncSettings,
}

/// Everything the windows of one pass share.
pub(super) struct Ctx {
    pub engine: Engine,
    pub shop: MemberId,
    pub stats: Arc<PassStats>,
    pub seen: Mutex<HashSet<String>>,
    pub cats: tokio::sync::OnceCell<Vec<String>>,
    pub refresh_all_skus: bool,
    pub incremental: bool,
}

impl Ctx {
    pub fn mark_seen(&self, id: &str) -> bool {
        self.seen.lock().map(|mut s| s.insert(id.to_string())).unwrap_or(false)
    }

    pub fn seen_count(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub fn shop(&self) -> &str {
        self.shop.as_str()
    }
}

/// One fetched page waiting for its SKU details before it is committed.
struct StagedPage {
    items: Vec<(NormalizedListing, Option<StoredItem>, bool)>,
    /// Items the page shows delisted (incremental passes ask for those too).
    gone: Vec<String>,
    watermark: Option<i64>,
}

impl Engine {
    pub fn new(client: Client, store: Store, sync: SyncSettings) -> Engine {
        Engine { client, store, sync }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A shop's member id; URLs of shape 3 are resolved once a day at most.
    pub async fn resolve(&self, shop: &ShopRef) -> Result<MemberId, SyncError> {
        if let ShopRef::Url(url) = shop {
            if let Some(m) = self.store.resolved_url(url, now_ms()).and_then(|m| m.parse().ok()) {
                return Ok(m);
            }
            let m = self.client.resolve(shop).await?;
            self.store.remember_url(url, m.as_str(), now_ms());
            return Ok(m);
        }
        Ok(self.client.resolve(shop).await?)
    }

    /// One pass of a shop: full when asked, or when the shop has no watermark yet;
    /// otherwise incremental from `since` (a backfill) or from the watermark.
    pub async fn pass(
        &self,
        shop: &MemberId,
        full: bool,
        since_ms: Option<i64>,
        stats: Arc<PassStats>,
    ) -> Result<PassReport, SyncError> {
        let state = self.store.shop(shop.as_str())?;
        let from = since_ms.or(state.watermark_ms.map(|w| w - self.sync.overlap.as_millis() as i64));
        let kind = match from {
            Some(_) if !full => PassKind::Incremental,
            _ => PassKind::Full,
        };
        let ctx = Arc::new(Ctx {
            engine: self.clone(),
            shop: shop.clone(),
            stats: stats.clone(),
            seen: Mutex::new(HashSet::new()),
            cats: tokio::sync::OnceCell::new(),
            refresh_all_skus: kind == PassKind::Full && self.sync.full_pass_skus == SkuRefresh::All,
            incremental: kind == PassKind::Incremental,
        });
        let started_ms = now_ms();
        tracing::info!(shop = %shop, kind = ?kind, "pass started");
        let result = match (kind, from) {
            (PassKind::Incremental, Some(from)) => incremental(&ctx, from, started_ms).await.map(|()| None),
            _ => full_pass(&ctx, started_ms).await.map(Some),
        };
        let finished_ms = now_ms();
        let s = &*stats;
        let record = PassRecord {
            kind,
            started_ms,
            finished_ms,
            ok: result.is_ok(),
            calls: s.calls(),
            items_seen: PassStats::get(&s.items_seen),
            events: s.events(),
            error: result.as_ref().err().map(|e| e.to_string()),
        };
        let completeness = result.as_ref().ok().cloned().flatten();
        let state = self.store.update_shop(shop.as_str(), |st| {
            match kind {
                PassKind::Full => st.last_full = Some(record.clone()),
                _ => st.last_incremental = Some(record.clone()),
            }
            if let Some(c) = &completeness {
                st.completeness = Some(c.clone());
            }
        })?;
        self.store.flush().await?;
        let report = PassReport {
            shop: shop.to_string(),
            kind,
            started_ms,
            finished_ms,
            ok: record.ok,
            error: record.error.clone(),
            list_calls: PassStats::get(&s.list_calls),
            count_calls: PassStats::get(&s.count_calls),
            sku_calls: PassStats::get(&s.sku_calls),
            item_calls: PassStats::get(&s.item_calls),
            other_calls: PassStats::get(&s.other_calls),
            items_seen: record.items_seen,
            creates: PassStats::get(&s.creates),
            updates: PassStats::get(&s.updates),
            deletes: PassStats::get(&s.deletes),
            windows: PassStats::get(&s.windows_done),
            splits: PassStats::get(&s.splits),
            unreachable: PassStats::get(&s.unreachable),
            completeness,
            watermark_ms: state.watermark_ms,
        };
        match &result {
            Ok(_) => tracing::info!(
                shop = %shop, kind = ?kind, calls = s.calls(), items = report.items_seen,
                creates = report.creates, updates = report.updates, deletes = report.deletes,
                ms = finished_ms - started_ms, "pass finished"
            ),
            Err(e) => {
                tracing::warn!(shop = %shop, kind = ?kind, error = %e, "pass failed; nothing deleted, watermark kept")
            }
        }
        result.map(|_| report)
    }
}

async fn full_pass(ctx: &Arc<Ctx>, t_end: i64) -> Result<Completeness, SyncError> {
    let e = &ctx.engine;
    bump(&ctx.stats.count_calls, 1);
    let official = e.client.items_count(&ctx.shop, &ItemFilter::default()).await?;
    let concurrency = e.client.pacer().settings().concurrency.max(1);
    run_windows(ctx, vec![Window::time(PLATFORM_EPOCH_MS, t_end)], concurrency).await?;
    // Every window was reached: now, and only now, items not seen may be gone.
    verify::deletes(ctx).await?;
    let c = verify::completeness(ctx, official)?;
    if !c.complete {
        tracing::warn!(
            shop = %ctx.shop, fetched = c.fetched, official = c.official, sku_share = c.sku_share,
            price_share = c.price_share, "full pass incomplete"
        );
    }
    e.store.commit(ctx.shop(), &[], Some(t_end), now_ms())?;
    Ok(c)
}

async fn incremental(ctx: &Arc<Ctx>, from: i64, t_end: i64) -> Result<(), SyncError> {
    let slice = ctx.engine.sync.slice.as_millis() as i64;
    // Oldest first, one window at a time: the watermark may only move over what is done.
    run_windows(ctx, slices(from, t_end, slice), 1).await
}

/// Reads windows, `concurrency` at a time; a saturated window is replaced by its parts,
/// read next (so a sequential run stays in time order).
async fn run_windows(ctx: &Arc<Ctx>, windows: Vec<Window>, concurrency: usize) -> Result<(), SyncError> {
    let mut queue: VecDeque<Window> = windows.into();
    let mut running = tokio::task::JoinSet::new();
    let stats = &ctx.stats;
    loop {
        while running.len() < concurrency {
            let Some(w) = queue.pop_front() else { break };
            let ctx = ctx.clone();
            running.spawn(async move { read_window(&ctx, &w).await });
        }
        stats.windows_left.store((queue.len() + running.len()) as u64, std::sync::atomic::Ordering::Relaxed);
        let Some(done) = running.join_next().await else { break };
        match done {
            Ok(Ok(None)) => bump(&stats.windows_done, 1),
            Ok(Ok(Some(parts))) => {
                bump(&stats.splits, 1);
                for p in parts.into_iter().rev() {
                    queue.push_front(p);
                }
            }
            Ok(Err(e)) => {
                running.abort_all();
                return Err(e);
            }
            Err(join) => {
                running.abort_all();
                return Err(SyncError::Task(join.to_string()));
            }
        }
    }
    stats.windows_left.store(0, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Reads one window to the end, or returns the windows it must be split into.
async fn read_window(ctx: &Arc<Ctx>, w: &Window) -> Result<Option<Vec<Window>>, SyncError> {
    let e = &ctx.engine;
    let size = e.sync.page_size;
    let reach = DEPTH_CAP * u64::from(size);
    // Incremental passes include delisted items: a delisting moves `modified_time`, so the
    // window that holds it says so at once instead of waiting for the next full pass.
    let filter = ItemFilter {
        offline: ctx.incremental,
        cid: w.cid.clone(),
        start_ms: Some(w.start),
        end_ms: Some(w.end),
    };
    if w.width() > e.sync.slice.as_millis() as i64 {
        // Too wide to list safely (a saturated wide list call stalls 30 s and fails):
        // count first, which never stalls.
        bump(&ctx.stats.count_calls, 1);
        let c = e.client.items_count(&ctx.shop, &filter).await?;
        if c == 0 {
            return Ok(None);
        }
        if c > reach {
            return Ok(Some(split_time(w, 2, 1)));
        }
    }
    // Pages shift when items change during the read (contract, "shifting pages"): when
    // total_results moves between pages, read the window again; diffing makes the re-read
    // free of duplicate events.
    for attempt in 0..3 {
        let mut batcher = SkuBatcher::default();
        let mut staged: VecDeque<StagedPage> = VecDeque::new();
        let mut first_total = None;
        let mut shifted = false;
        let mut page = 1u32;
        loop {
            bump(&ctx.stats.list_calls, 1);
            let p = e.client.items_list(&ctx.shop, &filter, page, size, SortType::ModifiedAsc).await?;
            match first_total {
                None => {
                    if p.total_results > reach && (w.width() > 1 || w.cid.is_none()) {
                        return Ok(Some(split_saturated(ctx, w, p.total_results).await?));
                    }
                    if p.total_results > reach {
                        // One category, one millisecond, past the cap: nothing reaches the
                        // rest. Read the 50 pages there are; completeness shows the gap.
                        let lost = p.total_results - reach;
                        if attempt == 0 {
                            bump(&ctx.stats.unreachable, lost);
                        }
                        tracing::warn!(shop = %ctx.shop, cid = ?w.cid, at_ms = w.start, lost, "more items on one millisecond of one category than 50 pages reach");
                    }
                    first_total = Some(p.total_results.min(reach));
                }
                Some(t) if t != p.total_results.min(reach) => shifted = true,
                Some(_) => {}
            }
            let last = page as u64 * u64::from(size) >= first_total.unwrap_or(0) || p.items.is_empty();
            let watermark = if ctx.incremental && w.page_marks {
                p.items.last().and_then(|i| i.modified_time)
            } else {
                None
            };
            staged.push_back(stage(ctx, p.items, watermark, &mut batcher)?);
            batcher.fetch(&e.client, &ctx.stats, last).await?;
            while staged
                .front()
                .is_some_and(|s| s.items.iter().all(|i| !i.2 || batcher.ready(&i.0.item.sku_ids)))
            {
                if let Some(s) = staged.pop_front() {
                    commit(ctx, s, &mut batcher)?;
                }
            }
            if last {
                break;
            }
            if ctx.stats.stopping() {
                // Pages staged but waiting for SKUs are not committed: the next pass reads
                // them again.
                return Err(SyncError::Stopped);
            }
            page += 1;
        }
        batcher.fetch(&e.client, &ctx.stats, true).await?;
        while let Some(s) = staged.pop_front() {
            commit(ctx, s, &mut batcher)?;
        }
        if !shifted {
            break;
        }
        tracing::debug!(shop = %ctx.shop, start = w.start, end = w.end, attempt, "window shifted while read; reading again");
    }
    if ctx.incremental {
        if let Some(mark) = w.mark_on_done {
            e.store.commit(ctx.shop(), &[], Some(mark), now_ms())?;
        }
    }
    Ok(None)
}

/// A window whose first page said it holds more than 50 pages reach.
async fn split_saturated(ctx: &Arc<Ctx>, w: &Window, total: u64) -> Result<Vec<Window>, SyncError> {
    let reach = DEPTH_CAP * u64::from(ctx.engine.sync.page_size);
    if w.width() > 1 {
        // Aim at 80% of the reach so that most parts need no further split.
        return Ok(split_time(w, total, reach * 4 / 5));
    }
    if w.cid.is_none() {
        // Thousands of items on one millisecond (a bulk import): only categories reach them.
        let cats = ctx
            .cats
            .get_or_try_init(|| async {
                bump(&ctx.stats.other_calls, 1);
                let cats = ctx.engine.client.seller_cats(&ctx.shop).await?;
                Ok::<_, ApiError>(cats.into_iter().map(|c| c.cid).collect::<Vec<_>>())
            })
            .await?;
        return Ok(split_category(w, cats));
    }
    Ok(split_time(w, total, reach))
}

fn stage(
    ctx: &Ctx,
    raw: Vec<RawItem>,
    watermark: Option<i64>,
    batcher: &mut SkuBatcher,
) -> Result<StagedPage, SyncError> {
    let mut items = Vec::with_capacity(raw.len());
    let mut gone = Vec::new();
    for r in raw {
        if r.status.as_deref().is_some_and(|s| s != "online") {
            gone.push(r.item_id);
            continue;
        }
        let l = listing(&r);
        ctx.mark_seen(&l.item.item_id);
        bump(&ctx.stats.items_seen, 1);
        let stored = ctx.engine.store.item(ctx.shop(), &l.item.item_id)?;
        let need = ctx.refresh_all_skus || stored.as_ref().is_none_or(|s| s.listing_md5 != l.listing_md5);
        let need = need && !l.item.sku_ids.is_empty();
        if need {
            batcher.want(&l.item.sku_ids);
        }
        items.push((l, stored, need));
    }
    Ok(StagedPage { items, gone, watermark })
}

fn commit(ctx: &Ctx, page: StagedPage, batcher: &mut SkuBatcher) -> Result<(), SyncError> {
    let mut writes = Vec::with_capacity(page.items.len());
    for id in &page.gone {
        if let Some(last) = ctx.engine.store.item(ctx.shop(), id)? {
            writes.push(Write::Delete { last });
        }
    }
    for (l, stored, need) in page.items {
        let item = if need {
            let skus = batcher.take(&l.item.sku_ids);
            with_skus(l.item, skus)
        } else if l.item.sku_ids.is_empty() {
            // The variants are gone (or never were): no details to keep.
            l.item
        } else {
            // Same listing (SKU ids included) as stored: the stored details still hold.
            let mut item = l.item;
            item.skus = stored.as_ref().map(|s| s.item.skus.clone()).unwrap_or_default();
            item
        };
        if let Some(w) = diff(&ctx.engine.store, ctx.shop(), item, l.listing_md5)? {
            writes.push(w);
        }
    }
    apply(&ctx.engine.store, ctx.shop(), &ctx.stats, &writes, page.watermark)
}

/// The write (with its event) that brings the copy stored under `key` to `item`, if
/// anything differs.
pub(super) fn diff(
    store: &Store,
    key: &str,
    item: Item,
    listing_md5: String,
) -> Result<Option<Write>, SyncError> {
    // Read at commit time, not when staged: the same item may have been stored by another
    // page of this pass in between (pages shift), and its event must not repeat.
    let stored = store.item(key, &item.item_id)?;
    let md5 = item.md5();
    let event = match &stored {
        None => Some((Op::Create, Vec::new())),
        Some(s) if s.md5 != md5 => Some((Op::Update, item.changed_fields(&s.item))),
        Some(s) if s.listing_md5 != listing_md5 => None,
        Some(_) => return Ok(None),
    };
    Ok(Some(Write::Upsert { stored: StoredItem { item, md5, listing_md5 }, event }))
}

/// Commits writes (and a watermark) under `key`, counting the events.
pub(super) fn apply(
    store: &Store,
    key: &str,
    stats: &PassStats,
    writes: &[Write],
    watermark: Option<i64>,
) -> Result<(), SyncError> {
    if writes.is_empty() && watermark.is_none() {
        return Ok(());
    }
    let events = store.commit(key, writes, watermark, now_ms())?;
    for ev in &events {
        let c = match ev.op {
            Op::Create => &stats.creates,
            Op::Update => &stats.updates,
            Op::Delete => &stats.deletes,
        };
        bump(c, 1);
    }
    Ok(())
}
