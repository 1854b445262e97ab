//! Any seller's shop (`source = "seller"`), read through the cross-border APIs: a sweep of
//! `querySellerOfferList` by the seller's `sellerOpenId`, then `queryProductDetail` for the
//! offers that need it.
//!
//! The list has no time filter, so there are no windows and no watermark to move page by
//! page: every pass, full or incremental, reads the whole list. An offer's list entry carries
//! no SKUs and no stock, only `modifyDate`, the title and one price; its detail carries the
//! rest but no `modifyDate`. So an offer is fetched in full only when it is new, when its
//! `modifyDate` or title differs from the stored copy's, or (full passes) when its details
//! are older than `sync.sku_max_age`: stock and sales move without `modifyDate` moving, and
//! only that refresh sees them. Every other offer seen is stamped as seen without a call.
//!
//! The list is cut by offset, newest modification first: an offer modified during the sweep
//! jumps to the front (a later page repeats one), one delisted pulls every later offer up a
//! place (the offer at the next page boundary is skipped). A skipped offer is not stamped, so
//! like any offer not seen it is only deleted after `queryProductDetail` says it is gone; and
//! a sweep that did not read every page, or saw fewer offers than the count minus what
//! moved, deletes nothing and leaves the pass open: the next sweep goes on with the same
//! mark, and what this one stamped stays stamped.
//!
//! The sweep runs as the shop's open full pass ([`super::full::open`]), so the store stamps
//! what it writes with the pass's mark, resumes it after a kill, and the status shows it.
//! After a complete sweep the pass is closed with the sweep's start as the watermark: it
//! says nothing about time order here, but it is how the planner and the status tell a shop
//! that holds a complete copy.

use super::diff::{apply, diff};
use super::engine::{Engine, PassReport, SyncError};
use super::full;
use super::normalize::{listing, with_skus};
use super::stats::bump;
use super::stats::PassStats;
use super::verify;
use super::watch::quarantine;
use super::window::Ctx;
use crate::api::{ApiError, MemberId, RawItem};
use crate::clock::now_ms;
use crate::config::SellerSource;
use crate::state::{Completeness, FullProgress, PassKind, StoredItem, Write};
use std::collections::HashSet;
use std::sync::Arc;

/// `querySellerOfferList`'s page size. The platform documents no maximum; the simulator
/// takes 20 as the safe reading, and a larger page the platform silently cut would skip
/// offers, as `alibaba.product.list.get` does past 20.
pub const OFFER_PAGE_SIZE: u32 = 20;

/// What the sweep saw of the list.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    pages_read: u32,
    /// The count of the last page read (it moves while offers change).
    total: u64,
    first_total: Option<u64>,
    /// Distinct offers seen, readable or not.
    seen: u64,
    /// Offers listed twice (they moved to the front while the sweep read on).
    repeated: u64,
}

impl Tally {
    fn pages(&self, size: u32) -> u32 {
        u32::try_from(self.total.div_ceil(u64::from(size.max(1)))).unwrap_or(u32::MAX)
    }

    /// Every page read, and no more offers missing than moved: a shrinking count and offers
    /// listed twice are what pulls an offer past a page boundary.
    fn complete(&self, size: u32) -> bool {
        let shrank = self.first_total.unwrap_or(self.total).saturating_sub(self.total);
        self.pages_read >= self.pages(size) && self.seen + self.repeated + shrank >= self.total
    }
}

/// `modifyDate` counts whole seconds: a detail read within the second of the offer's last
/// change (and a little after, for the clocks' skew) may predate a second change in that same
/// second, which leaves `modifyDate` where it was. Such a copy is read again by the next
/// sweep; one later than this is sure to hold every change its `modifyDate` stands for.
const SAME_SECOND_MS: i64 = 2_000;

/// Whether an offer's list entry asks for its detail: new, `modifyDate` or title moved, its
/// details read too close to its `modifyDate` to be sure of it, or its details older than
/// `stale_before`.
fn needs_detail(offer: &RawItem, stored: Option<&StoredItem>, stale_before: Option<i64>) -> bool {
    let Some(s) = stored else { return true };
    offer.modified_time != Some(s.item.modified_ms)
        || offer.title.as_deref().is_some_and(|t| t != s.item.title)
        || s.skus_ms.is_some_and(|t| t < s.item.modified_ms + SAME_SECOND_MS)
        || stale_before.is_some_and(|before| s.skus_ms.is_none_or(|t| t < before))
}

/// An offer to read in full, with the `modifyDate` its list entry gave (the detail has none).
struct Ask {
    id: String,
    modified_ms: Option<i64>,
}

impl Engine {
    /// One pass of a seller's shop: a sweep, whether the pass was asked full or incremental.
    /// A full one (or the shop's first) also reads in full the offers whose details are older
    /// than `sync.sku_max_age`.
    pub(super) async fn sweep_pass(
        &self,
        shop: &MemberId,
        full: bool,
        seller: &SellerSource,
        stats: Arc<PassStats>,
    ) -> Result<PassReport, SyncError> {
        let open_id = self.seller_open_id(shop, seller).await?;
        let seller = &SellerSource { open_id: Some(open_id), ..seller.clone() };
        let kind = if full { PassKind::Full } else { PassKind::Incremental };
        let stale_before = full.then(|| now_ms() - self.sync.sku_max_age.as_millis() as i64);
        let mut ctx = Ctx::new(self.clone(), shop.clone(), stats.clone(), false);
        let started_ms = now_ms();
        let result = match full::open(&ctx) {
            Ok(progress) => {
                tracing::info!(shop = %shop, kind = ?kind, session = progress.sessions, "sweep started");
                ctx.mark = Some(progress.pass_id);
                let ctx = Arc::new(ctx);
                let r = run(&ctx, seller, progress, stale_before).await;
                if r.is_err() {
                    let (calls, ms) = ctx.unaccounted();
                    full::account_session(&ctx, calls, ms)?;
                }
                r
            }
            Err(e) => Err(e),
        };
        let total_calls = result.as_ref().ok().and_then(|(c, calls)| c.as_ref().map(|_| *calls));
        let mut report = self.finish(shop, kind, started_ms, &stats, result.map(|(c, _)| c)).await?;
        report.full_pass_calls = total_calls;
        Ok(report)
    }
}

impl Engine {
    /// The seller's `sellerOpenId`: as configured; else as learned before from the same
    /// offer; else learned now from the configured offer's `queryProductDetail` (one call)
    /// and kept in the shop's state.
    async fn seller_open_id(&self, shop: &MemberId, seller: &SellerSource) -> Result<String, SyncError> {
        if let Some(o) = &seller.open_id {
            return Ok(o.clone());
        }
        let Some(offer) = &seller.offer_id else {
            return Err(
                ApiError::Argument("a seller shop needs seller_open_id or seller_offer_id".into()).into()
            );
        };
        let key = shop.as_str();
        if let Some((from, open_id)) = self.store.shop(key)?.learned_seller {
            if &from == offer {
                return Ok(open_id);
            }
        }
        let detail = self.client.offer_detail(offer, &seller.country).await?;
        let Some(open_id) = detail.and_then(|d| d.seller_open_id).filter(|o| !o.trim().is_empty()) else {
            return Err(ApiError::Argument(format!(
                "seller_offer_id {offer}: the platform has no such offer on sale, or its details name no sellerOpenId; give seller_open_id or another offer"
            ))
            .into());
        };
        self.store.update_shop(key, |s| s.learned_seller = Some((offer.clone(), open_id.clone())))?;
        tracing::info!(shop = %key, offer = %offer, seller_open_id = %open_id, "the seller's open id learned from one of its offers");
        Ok(open_id)
    }
}

/// The open id a sweep reads by (resolved before the sweep starts).
fn open_id(seller: &SellerSource) -> &str {
    seller.open_id.as_deref().unwrap_or_default()
}

/// Runs (or goes on with) the sweep that is the shop's open full pass. Returns the
/// completeness when the sweep was complete (the pass is then closed), `None` when it was
/// not (the pass stays open), and what the pass has cost so far.
pub(super) async fn run(
    ctx: &Arc<Ctx>,
    seller: &SellerSource,
    progress: FullProgress,
    stale_before: Option<i64>,
) -> Result<(Option<Completeness>, u64), SyncError> {
    let e = &ctx.engine;
    let store = &e.store;
    let pass_id = progress.pass_id;
    let size = e.sync.page_size.clamp(1, OFFER_PAGE_SIZE);
    let mut tally = Tally::default();
    let mut ids: HashSet<String> = HashSet::new();
    let mut page = 1u32;
    while tally.pages_read == 0 || page <= tally.pages(size) {
        let p = e.client.seller_offers(open_id(seller), page, size, &seller.country).await?;
        bump(&ctx.stats.list_calls, 1);
        tally.pages_read += 1;
        tally.total = p.total_results;
        tally.first_total.get_or_insert(p.total_results);
        let mut writes = Vec::new();
        let mut asks = Vec::new();
        for b in &p.bad {
            let Some(id) = &b.item_id else { continue };
            tally.seen += u64::from(ids.insert(id.clone()));
            // Listed, so there, but unreadable: quarantined, and its stored copy (if any)
            // stamped so that it is not a delete candidate.
            quarantine(store, ctx.shop(), id, &b.error, b.modified_ms, &ctx.stats)?;
            if let Some(s) = store.item(ctx.shop(), id)?.filter(|s| s.seen != Some(pass_id)) {
                writes.push(Write::Upsert { stored: s, event: None });
            }
        }
        for offer in &p.items {
            if !ids.insert(offer.item_id.clone()) {
                tally.repeated += 1;
                continue;
            }
            tally.seen += 1;
            let stored = store.item(ctx.shop(), &offer.item_id)?;
            if needs_detail(offer, stored.as_ref(), stale_before) {
                asks.push(Ask { id: offer.item_id.clone(), modified_ms: offer.modified_time });
            } else if let Some(s) = stored.filter(|s| s.seen != Some(pass_id)) {
                writes.push(Write::Upsert { stored: s, event: None });
            }
        }
        bump(&ctx.stats.items_seen, (p.items.len() + p.bad.len()) as u64);
        apply(store, ctx.shop(), &ctx.stats, &writes, None, None)?;
        details(ctx, seller, asks, pass_id).await?;
        if p.items.is_empty() && p.bad.is_empty() {
            break;
        }
        if ctx.stats.stopping() {
            return Err(SyncError::Stopped);
        }
        page += 1;
    }
    let shifted = tally.repeated > 0 || tally.first_total != Some(tally.total);
    if shifted {
        tracing::info!(
            shop = %ctx.shop, repeated = tally.repeated, first_total = ?tally.first_total, total = tally.total,
            "offers moved in the list while the sweep read it"
        );
    }
    if !tally.complete(size) {
        tracing::warn!(
            shop = %ctx.shop, pages = tally.pages_read, seen = tally.seen, total = tally.total,
            "sweep incomplete; nothing deleted, the next sweep goes on with this one's marks"
        );
        let (calls, ms) = ctx.unaccounted();
        full::account_session(ctx, calls, ms)?;
        return Ok((None, 0));
    }
    store.update_shop(ctx.shop(), |st| {
        if let Some(f) = st.full.as_mut() {
            f.verifying = true;
            f.official = Some(tally.total);
        }
    })?;
    verify_unseen(ctx, seller, pass_id).await?;
    let c = verify::completeness(ctx, pass_id, tally.total)?;
    let open = store.shop(ctx.shop())?.full;
    let total_calls = open.as_ref().map_or(0, |f| f.calls) + ctx.unaccounted().0;
    store.finish_full(ctx.shop(), pass_id, progress.t_end)?;
    Ok((Some(c), total_calls))
}

/// Stored offers the complete sweep did not see, each asked for by id: only an offer
/// `queryProductDetail` says is gone (unknown or not on sale) gets its `delete`.
async fn verify_unseen(ctx: &Arc<Ctx>, seller: &SellerSource, pass_id: u64) -> Result<(), SyncError> {
    let store = &ctx.engine.store;
    let mut after: Option<String> = None;
    loop {
        let chunk = store.unseen_items(ctx.shop(), pass_id, after.as_deref(), OFFER_PAGE_SIZE as usize)?;
        let Some(last) = chunk.last().cloned() else { break };
        let mut asks = Vec::new();
        for id in chunk {
            // Listed by this sweep but unreadable: it is there, and asking costs a call.
            if store.quarantined_item(ctx.shop(), &id)?.is_some_and(|q| q.last_seen_ms >= pass_id as i64) {
                continue;
            }
            let modified_ms = store.item(ctx.shop(), &id)?.map(|s| s.item.modified_ms);
            asks.push(Ask { id, modified_ms });
        }
        details(ctx, seller, asks, pass_id).await?;
        if ctx.stats.stopping() {
            return Err(SyncError::Stopped);
        }
        after = Some(last);
    }
    Ok(())
}

/// Reads offers in full, `concurrency` calls at a time, and commits what differs through the
/// one diff: an offer read is stored (and stamped), one the platform says is gone is deleted
/// if stored, one that cannot be read is quarantined.
async fn details(
    ctx: &Arc<Ctx>,
    seller: &SellerSource,
    asks: Vec<Ask>,
    pass_id: u64,
) -> Result<(), SyncError> {
    let store = &ctx.engine.store;
    let concurrency = ctx.engine.client.pacer().settings().concurrency.max(1);
    let mut asks = asks.into_iter().peekable();
    while asks.peek().is_some() {
        let mut tasks = tokio::task::JoinSet::new();
        for ask in asks.by_ref().take(concurrency * 10) {
            let (client, country) = (ctx.engine.client.clone(), seller.country.clone());
            tasks.spawn(async move { (client.offer_detail(&ask.id, &country).await, ask) });
        }
        let mut writes = Vec::new();
        let mut failed = None;
        while let Some(done) = tasks.join_next().await {
            let (res, ask) = done.map_err(|e| SyncError::Task(e.to_string()))?;
            bump(&ctx.stats.item_calls, 1);
            match res {
                Ok(Some(d)) => {
                    if d.seller_open_id.as_deref().is_some_and(|o| o != open_id(seller)) {
                        tracing::warn!(shop = %ctx.shop, item_id = %ask.id, seller = ?d.seller_open_id, "offer belongs to another seller; stored as listed");
                    }
                    let mut raw = d.item;
                    raw.modified_time = raw.modified_time.or(ask.modified_ms);
                    match listing(&raw) {
                        Ok(l) => {
                            let item = with_skus(l.item, raw.skus.unwrap_or_default());
                            if let Some(w) =
                                diff(store, ctx.shop(), item, l.listing_md5, Some(now_ms()), Some(pass_id))?
                            {
                                writes.push(w);
                            }
                            store.release(ctx.shop(), &[ask.id.as_str()])?;
                        }
                        Err(e) => quarantine(store, ctx.shop(), &ask.id, &e, raw.modified_time, &ctx.stats)?,
                    }
                }
                Ok(None) => {
                    if let Some(last) = store.item(ctx.shop(), &ask.id)? {
                        writes.push(Write::Delete { last });
                    }
                }
                Err(ApiError::Malformed(e)) => quarantine(store, ctx.shop(), &ask.id, &e, None, &ctx.stats)?,
                // Keep what the other calls found: they cost quota too.
                Err(e) => failed = Some(e),
            }
        }
        apply(store, ctx.shop(), &ctx.stats, &writes, None, None)?;
        if let Some(e) = failed {
            return Err(e.into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AccountSettings, ApiSettings, Client, Hooks, Protocol};
    use crate::config::{SkuRefresh, SyncSettings};
    use crate::event::{Event, Op};
    use crate::pacing::PacingSettings;
    use crate::secret::Secret;
    use crate::state::Store;
    use sim1688::admin::{Mutation, MutationOp, NewShop};
    use sim1688::{Faults, Limits, Quirks, RunningSim, Sim, SimSpec};
    use std::collections::BTreeSet;
    use std::time::Duration;

    fn offer(id: &str, modified: i64, title: &str) -> RawItem {
        RawItem {
            item_id: id.into(),
            modified_time: Some(modified),
            title: Some(title.into()),
            ..Default::default()
        }
    }

    fn stored(modified: i64, title: &str, skus_ms: Option<i64>) -> StoredItem {
        let raw = offer("1", modified, title);
        let item = listing(&raw).expect("readable").item;
        let md5 = item.md5();
        StoredItem::new(item, md5, String::new()).with_skus_ms(skus_ms)
    }

    #[test]
    fn details_only_for_new_changed_or_stale_offers() {
        let s = stored(1_000, "杯", Some(5_000));
        assert!(needs_detail(&offer("1", 1_000, "杯"), None, None), "new");
        assert!(!needs_detail(&offer("1", 1_000, "杯"), Some(&s), None), "unchanged");
        assert!(needs_detail(&offer("1", 2_000, "杯"), Some(&s), None), "modifyDate moved");
        assert!(needs_detail(&offer("1", 1_000, "碗"), Some(&s), None), "title moved");
        assert!(needs_detail(&offer("1", 1_000, "杯"), Some(&s), Some(6_000)), "details stale");
        assert!(!needs_detail(&offer("1", 1_000, "杯"), Some(&s), Some(4_000)), "details fresh");
        // Details read in the second of the change: a second change in that second would not
        // move modifyDate, so the copy is read once more.
        let early = stored(1_000, "杯", Some(1_500));
        assert!(needs_detail(&offer("1", 1_000, "杯"), Some(&early), None), "read within the second");
    }

    #[test]
    fn a_sweep_is_complete_when_every_page_is_read_and_only_moved_offers_are_missing() {
        let t = |pages_read, total, first, seen, repeated| Tally {
            pages_read,
            total,
            first_total: Some(first),
            seen,
            repeated,
        };
        assert!(t(3, 45, 45, 45, 0).complete(20));
        assert!(!t(2, 45, 45, 40, 0).complete(20), "a page not read");
        assert!(!t(3, 45, 45, 44, 0).complete(20), "an offer missing that nothing explains");
        assert!(t(3, 45, 45, 44, 1).complete(20), "one offer moved to the front: one slipped");
        assert!(t(3, 44, 45, 44, 0).complete(20), "one delisted while read");
        assert!(t(1, 0, 0, 0, 0).complete(20), "an empty shop");
    }

    struct Rig {
        sim: RunningSim,
        store: Store,
        engine: Engine,
        member: MemberId,
        _dir: tempfile::TempDir,
    }

    async fn rig(items: usize) -> Rig {
        let limits =
            Limits { rate_per_sec: 1_000, stall_ms: 500, quota_commercial: 10_000_000, ..Limits::default() };
        let spec = SimSpec { seed: 13, shops: 0, items: 0, limits, faults: Faults::default() };
        let sim = Sim::start_with(spec, Quirks::calm_catalogue(), "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("sim starts");
        let shop = NewShop { items, categories: Some(4), tie: None, history_days: 200, skus: None };
        let member: MemberId = sim.sim.create_shop(&shop).member_id.parse().expect("member id");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 16 << 20).expect("store");
        let acct = sim.sim.account("10000001").expect("account");
        let api = ApiSettings {
            base_url: format!("{}/openapi/", sim.base_url()),
            protocol: Protocol::Param2,
            auth_url: sim.auth_url(),
            read_timeout: Duration::from_millis(2_000),
            max_attempts: 10,
            ..ApiSettings::default()
        };
        let account = AccountSettings {
            name: "main".into(),
            app_key: acct.app_key,
            app_secret: Secret::new(acct.app_secret),
            daily_quota: 10_000_000,
            oauth: false,
            proxy: None,
            pacing: PacingSettings {
                concurrency: 4,
                success_interval: Duration::ZERO,
                failure_interval: Duration::from_millis(10),
                throttled_interval: Duration::from_millis(50),
                max_calls_per_sec: 900,
                rate_window: Duration::from_millis(1_050),
                quota_day: Default::default(),
            },
        };
        let client = Client::new(api, account, Hooks::default()).expect("client");
        let seller = SellerSource {
            open_id: Some(sim1688::param2::ids::seller_open_id(member.as_str())),
            offer_id: None,
            country: "en".into(),
        };
        let sync = SyncSettings {
            page_size: 20,
            slice: Duration::from_secs(30 * 86_400),
            overlap: Duration::from_secs(300),
            full_pass_skus: SkuRefresh::Changed,
            sku_max_age: Duration::from_secs(14 * 86_400),
            sellers: [(member.to_string(), seller)].into(),
        };
        let engine = Engine::new(client, store.clone(), sync);
        Rig { sim, store, engine, member, _dir: dir }
    }

    impl Rig {
        async fn sweep(&self, full: bool) -> (PassReport, Vec<Event>) {
            let before = self.store.events_after(0).count() as u64;
            let stats = Arc::new(PassStats::default());
            let report = self.engine.pass(&self.member, full, None, stats).await.expect("sweep");
            let events = self.store.events_after(before).map(|e| e.expect("event").1).collect();
            (report, events)
        }

        fn mutate(&self, op: MutationOp, count: usize) -> BTreeSet<String> {
            let m = Mutation { op, count: Some(count), item_ids: None };
            self.sim.sim.mutate(self.member.as_str(), &m).expect("mutate").item_ids.into_iter().collect()
        }

        /// Ids and modification times on sale, as `querySellerOfferList` can tell them.
        fn truth(&self) -> BTreeSet<(String, i64)> {
            let t = self.sim.sim.truth(self.member.as_str()).expect("truth");
            t["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| {
                    let id = i["item_id"].as_str().expect("id").to_string();
                    // `modifyDate` is written to the second.
                    (id, i["modified_time"].as_i64().expect("modified") / 1_000 * 1_000)
                })
                .collect()
        }

        fn stored(&self) -> BTreeSet<(String, i64)> {
            self.store
                .items(self.member.as_str())
                .map(|s| s.expect("item"))
                .map(|s| (s.item.item_id, s.item.modified_ms))
                .collect()
        }
    }

    fn ids(events: &[Event], op: Op) -> BTreeSet<String> {
        events.iter().filter(|e| e.op == op).map(|e| e.item_id.clone()).collect()
    }

    /// The sweep's whole cycle against the simulator's cross-border face: a first copy, then
    /// exactly the changes, with details asked only for the offers that changed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sweeps_copy_the_shop_then_fetch_details_only_for_changed_offers() {
        let r = rig(130).await;
        let (first, events) = r.sweep(false).await;
        assert_eq!(first.kind, PassKind::Full, "the first sweep makes the first copy");
        assert_eq!(ids(&events, Op::Create).len(), 130);
        assert_eq!(events.len(), 130);
        assert_eq!((first.list_calls, first.item_calls), (7, 130), "7 pages of 20, one detail per offer");
        assert!(first.watermark_ms.is_some(), "a complete sweep makes the shop synced");
        assert!(!first.resumable);
        assert_eq!(r.stored(), r.truth());

        let created = r.mutate(MutationOp::Create, 4);
        let updated = r.mutate(MutationOp::Update, 5);
        let delisted = r.mutate(MutationOp::Delist, 3);
        let removed = r.mutate(MutationOp::Remove, 2);
        let updated: BTreeSet<_> = &(&updated - &delisted) - &removed;
        let delisted: BTreeSet<_> = &delisted - &removed;
        let (next, events) = r.sweep(false).await;
        assert_eq!(next.kind, PassKind::Incremental);
        assert_eq!(ids(&events, Op::Create), created);
        assert_eq!(ids(&events, Op::Update), updated);
        assert_eq!(ids(&events, Op::Delete), &delisted | &removed);
        assert_eq!(events.len(), created.len() + updated.len() + delisted.len() + removed.len());
        assert_eq!(
            next.item_calls,
            (created.len() + updated.len() + delisted.len() + removed.len()) as u64,
            "details for the new and changed offers and the checks of the ones gone, nothing else"
        );
        assert_eq!(r.stored(), r.truth());

        // The new and updated offers' details were read within the second of their change
        // (`modifyDate` counts seconds): once that second is well past, the next sweep reads
        // them once more, and finds them unchanged.
        tokio::time::sleep(Duration::from_millis(SAME_SECOND_MS as u64 + 100)).await;
        let (again, events) = r.sweep(true).await;
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(again.item_calls, (created.len() + updated.len()) as u64);
        // Nothing changed, nothing stale, every copy sure: no detail.
        let (last, events) = r.sweep(true).await;
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(last.item_calls, 0, "nothing changed, nothing stale: no detail");
    }

    /// Given only one of its offers, the seller's open id is learned from that offer's
    /// details once, kept, and not asked for again; an offer that does not exist says so.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_open_id_is_learned_once_from_one_offer() {
        let mut r = rig(30).await;
        let member = r.member.to_string();
        let offer = r.truth().into_iter().next().expect("an offer").0;
        let by_offer = |offer: &str| SellerSource {
            open_id: None,
            offer_id: Some(offer.to_string()),
            country: "en".into(),
        };
        r.engine = Engine::new(
            r.engine.client.clone(),
            r.store.clone(),
            SyncSettings { sellers: [(member.clone(), by_offer(&offer))].into(), ..r.engine.sync.clone() },
        );
        let (first, events) = r.sweep(false).await;
        assert_eq!(events.len(), 30);
        assert_eq!(first.item_calls, 30, "the learning call is not an offer detail of the pass");
        let learned = r.store.shop(&member).expect("state").learned_seller.expect("learned");
        assert_eq!(learned, (offer.clone(), sim1688::param2::ids::seller_open_id(&member)));
        let details = |r: &Rig| {
            let c = r.sim.sim.counters();
            c.methods
                .get("param2:com.alibaba.fenxiao.crossborder:product.search.queryProductDetail")
                .map_or(0, |m| m.values().sum::<u64>())
        };
        let before = details(&r);
        let (_, events) = r.sweep(false).await;
        assert!(events.is_empty());
        assert_eq!(details(&r), before, "learned once: no detail call on the next sweep");

        r.engine = Engine::new(
            r.engine.client.clone(),
            r.store.clone(),
            SyncSettings { sellers: [(member.clone(), by_offer("1"))].into(), ..r.engine.sync.clone() },
        );
        let stats = Arc::new(PassStats::default());
        let e = r.engine.pass(&r.member, false, None, stats).await.expect_err("no such offer");
        assert!(e.to_string().contains("seller_offer_id 1"), "{e}");
    }
}
