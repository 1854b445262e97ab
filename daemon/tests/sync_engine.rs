//! The sync engine against sim1688 over loopback, quirks on: ground truth after a full
//! pass, exactly the right events from incremental and full passes after mutations, the same
//! end state through a storm, and no false deletes while items change during a pass.
//! Pacing and the rate limit are scaled up together (1,000 calls/s) so the suite stays fast.
//!
//! The main tests run three times: against the seed gateway, and against the production
//! protocol's face with both sources: `param2` own (`alibaba.product.list.get` on a shop
//! whose owner authorized the app: 20 items a page, 1,000 a query, SKUs inside the list) and
//! `param2` seller (any seller's shop: sweeps of `querySellerOfferList`, details by
//! `queryProductDetail` only for new or changed offers, dates to the second).

use serde_json::Value;
use shopsync::api::{
    parse_wholesale, AccountSettings, ApiSettings, Client, Hooks, MemberId, MemoryTokenStore, Protocol,
    Token, TokenStore,
};
use shopsync::config::{SellerSource, SkuRefresh, SyncSettings};
use shopsync::event::{Event, Op, PriceSource};
use shopsync::pacing::PacingSettings;
use shopsync::secret::Secret;
use shopsync::state::Store;
use shopsync::sync::{Engine, PassReport, PassStats};
use sim1688::admin::{Mutation, MutationOp, NewShop};
use sim1688::{Faults, Limits, Quirks, RunningSim, Sim, SimSpec};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Which of the simulator's faces the engine talks to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Face {
    Seed,
    /// `param2`, the shop's owner having authorized the app (`source = "own"`).
    Param2Own,
    /// `param2`, any seller's shop through the cross-border APIs (`source = "seller"`).
    Param2Seller,
}

struct Rig {
    sim: RunningSim,
    store: Store,
    engine: Engine,
    /// What the engine was built from: a seller's shop is added to `sync.sellers` once it
    /// exists.
    client: Client,
    sync: SyncSettings,
    face: Face,
    tokens: Arc<MemoryTokenStore>,
    app_key: String,
    /// What `client` was built from (a test may build another client on them).
    api: ApiSettings,
    account: AccountSettings,
    _dir: tempfile::TempDir,
}

async fn rig(faults: Faults) -> Rig {
    rig_on(Face::Seed, faults).await
}

async fn rig_on(face: Face, faults: Faults) -> Rig {
    // No churn: each test makes its own changes and expects exactly their events. No items
    // out of reach either (a one-category bulk import, stray categories): these tests count
    // every item; `items_no_query_reaches_are_reported_and_do_not_hold_the_watermark_twice`
    // has them.
    rig_with(
        face,
        faults,
        Quirks { stray_cid_share: 0.0, one_category_tie_min_items: 0, ..Quirks::calm_catalogue() },
    )
    .await
}

async fn rig_with(face: Face, faults: Faults, quirks: Quirks) -> Rig {
    let limits =
        Limits { rate_per_sec: 1_000, stall_ms: 500, quota_commercial: 10_000_000, ..Limits::default() };
    let spec = SimSpec { seed: 21, shops: 0, items: 0, limits, faults };
    let sim = Sim::start_with(spec, quirks, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 16 << 20).unwrap();
    let acct = sim.sim.account("10000001").unwrap();
    let (protocol, base_url, page_size) = match face {
        Face::Seed => (ApiSettings::default().protocol, sim.gateway_url(), 40),
        Face::Param2Own | Face::Param2Seller => {
            (Protocol::Param2, format!("{}/openapi/", sim.base_url()), 20)
        }
    };
    let api = ApiSettings {
        base_url,
        protocol,
        auth_url: sim.auth_url(),
        read_timeout: Duration::from_millis(1_000),
        max_attempts: 30,
        ..ApiSettings::default()
    };
    let app_key = acct.app_key.clone();
    let account = AccountSettings {
        name: "main".into(),
        app_key: acct.app_key,
        app_secret: Secret::new(acct.app_secret),
        daily_quota: 10_000_000,
        // param2 calls for a shop's own products carry the token its owner's authorization gave.
        oauth: face == Face::Param2Own,
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
    let tokens = Arc::new(MemoryTokenStore::default());
    let hooks = Hooks { tokens: tokens.clone(), ..Hooks::default() };
    let client = Client::new(api.clone(), account.clone(), hooks).unwrap();
    let sync = SyncSettings {
        page_size,
        slice: Duration::from_secs(30 * 86_400),
        overlap: Duration::from_secs(300),
        full_pass_skus: SkuRefresh::Changed,
        // A seller's offer list carries no stock: only the details of a full sweep see a
        // silent stock change, and only once they are older than this; here, at once.
        sku_max_age: if face == Face::Param2Seller {
            Duration::ZERO
        } else {
            Duration::from_secs(14 * 86_400)
        },
        sellers: Default::default(),
    };
    let engine = Engine::new(client.clone(), store.clone(), sync.clone());
    Rig { sim, store, engine, client, sync, face, tokens, app_key, api, account, _dir: dir }
}

impl Rig {
    fn shop(&mut self, spec: NewShop) -> MemberId {
        let member: MemberId = self.sim.sim.create_shop(&spec).member_id.parse().unwrap();
        match self.face {
            Face::Seed => {}
            Face::Param2Own => self.authorize(&member),
            Face::Param2Seller => {
                let seller = SellerSource {
                    open_id: Some(sim1688::param2::seller_open_id(member.as_str())),
                    offer_id: None,
                    country: "en".into(),
                };
                self.sync.sellers.insert(member.to_string(), seller);
                self.engine = Engine::new(self.client.clone(), self.store.clone(), self.sync.clone());
            }
        }
        member
    }

    /// The shop's owner authorizes the app (the simulator's authorize page and token
    /// endpoint, as `shopsync auth` uses them); the refresh token is stored for the client.
    fn authorize(&self, member: &MemberId) {
        let redirect = "http://127.0.0.1:9/callback".to_string();
        self.sim
            .sim
            .param2_state()
            .settings
            .authorize_member
            .insert(self.app_key.clone(), member.to_string());
        let p = BTreeMap::from([
            ("client_id".to_string(), self.app_key.clone()),
            ("site".to_string(), "1688".to_string()),
            ("redirect_uri".to_string(), redirect.clone()),
            ("state".to_string(), "s".to_string()),
        ]);
        let sim1688::param2::Authorize::Redirect(to) = self.sim.sim.param2_authorize(&p) else {
            panic!("the simulator refused to authorize");
        };
        let code = to.split("code=").nth(1).unwrap().split('&').next().unwrap().to_string();
        let secret = self.sim.sim.account(&self.app_key).unwrap().app_secret;
        let p = BTreeMap::from([
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("need_refresh_token".to_string(), "true".to_string()),
            ("client_id".to_string(), self.app_key.clone()),
            ("client_secret".to_string(), secret),
            ("redirect_uri".to_string(), redirect),
            ("code".to_string(), code),
        ]);
        let (status, grant) = self.sim.sim.param2_get_token(&self.app_key, &p);
        assert_eq!(status, 200, "{grant}");
        let token = Token {
            access_token: Secret::new(grant["access_token"].as_str().unwrap().to_string()),
            expires_at_ms: shopsync::clock::now_ms() + 3_600_000,
            refresh_token: Some(Secret::new(grant["refresh_token"].as_str().unwrap().to_string())),
            refresh_expires_at_ms: None,
            resource_owner: None,
            member_id: Some(member.to_string()),
        };
        self.tokens.save("main", &token);
    }

    async fn pass(&self, shop: &MemberId, full: bool) -> (PassReport, Vec<Event>) {
        let before = self.store.events_after(0).count() as u64;
        let report = self.engine.pass(shop, full, None, Arc::new(PassStats::default())).await.unwrap();
        let events: Vec<Event> = self.store.events_after(before).map(|e| e.unwrap().1).collect();
        (report, events)
    }

    fn mutate(&self, shop: &MemberId, op: MutationOp, count: usize) -> BTreeSet<String> {
        let m = Mutation { op, count: Some(count), item_ids: None };
        self.sim.sim.mutate(shop.as_str(), &m).unwrap().item_ids.into_iter().collect()
    }

    /// The stored catalogue equals the simulator's ground truth: ids, tiers, MOQ, SKUs,
    /// stock and sales.
    fn assert_matches_truth(&self, shop: &MemberId) {
        let truth = self.sim.sim.truth(shop.as_str()).unwrap();
        let truth: BTreeMap<String, &Value> = truth["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["item_id"].as_str().unwrap().to_string(), i))
            .collect();
        let stored: BTreeMap<String, shopsync::state::StoredItem> = self
            .store
            .items(shop.as_str())
            .map(|s| s.unwrap())
            .map(|s| (s.item.item_id.clone(), s))
            .collect();
        let missing: Vec<_> = truth.keys().filter(|k| !stored.contains_key(*k)).take(5).collect();
        let extra: Vec<_> = stored.keys().filter(|k| !truth.contains_key(*k)).take(5).collect();
        assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}, extra {extra:?}");
        assert_eq!(truth.len(), stored.len());
        for (id, t) in &truth {
            let s = &stored[id].item;
            let moq = t["moq"].as_u64().unwrap();
            assert_eq!(s.moq, Some(moq), "{id} moq");
            let wp = t["wholesalePrice"].as_str().unwrap();
            let no_skus = t["skus"].as_array().is_none_or(|k| k.is_empty());
            match (wp.is_empty(), self.face) {
                (true, Face::Seed) => {
                    assert_eq!(s.price_source, PriceSource::ChannelPrice, "{id}");
                    assert_eq!(s.wholesale_prices[0].price.to_string(), t["channelPrice"].as_str().unwrap());
                }
                // param2 has no channel price: an item priced per SKU (`quoteType` 1) has no
                // ranges, one without SKUs a single range at that price.
                (true, Face::Param2Own | Face::Param2Seller) if no_skus => {
                    assert_eq!(s.wholesale_prices[0].price.to_string(), t["channelPrice"].as_str().unwrap());
                }
                (true, _) => assert!(s.wholesale_prices.is_empty(), "{id} priced per SKU"),
                (false, _) => assert_eq!(s.wholesale_prices, parse_wholesale(wp, moq).unwrap(), "{id} tiers"),
            }
            assert_eq!(s.stock, t["stock"].as_i64(), "{id} stock");
            if self.face == Face::Seed {
                // param2's product list carries no sales figure.
                assert_eq!(s.sales, t["sales"].as_i64(), "{id} sales");
            }
            let modified = t["modified_time"].as_i64().unwrap();
            // A seller's list gives `modifyDate` to the second.
            let modified = if self.face == Face::Param2Seller { modified / 1_000 * 1_000 } else { modified };
            assert_eq!(s.modified_ms, modified, "{id} modified");
            let tskus: Vec<(String, String, String, i64)> = t["skus"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| {
                    (
                        k["sku_id"].as_str().unwrap().into(),
                        k["spec"].as_str().unwrap().into(),
                        k["price"].as_str().unwrap().into(),
                        k["stock"].as_i64().unwrap(),
                    )
                })
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let sskus: Vec<(String, String, String, i64)> = s
                .skus
                .iter()
                .map(|k| (k.sku_id.clone(), k.spec.clone(), k.price.unwrap().to_string(), k.stock.unwrap()))
                .collect();
            assert_eq!(sskus, tskus, "{id} skus");
        }
    }
}

fn ids(events: &[Event], op: Op) -> BTreeSet<String> {
    events.iter().filter(|e| e.op == op).map(|e| e.item_id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_pass_equals_ground_truth_and_passes_emit_exactly_the_changes() {
    full_pass_and_changes(Face::Seed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn param2_own_shop_full_pass_equals_ground_truth_and_passes_emit_exactly_the_changes() {
    full_pass_and_changes(Face::Param2Own).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn param2_seller_shop_full_pass_equals_ground_truth_and_passes_emit_exactly_the_changes() {
    full_pass_and_changes(Face::Param2Seller).await;
}

async fn full_pass_and_changes(face: Face) {
    let mut r = rig_on(face, Faults { hang_ms: 3_000, ..Faults::default() }).await;
    // A seller's shop costs a detail call per offer: a smaller one keeps the suite fast.
    let n = if face == Face::Param2Seller { 6_000 } else { 30_000 };
    let shop =
        r.shop(NewShop { items: n, categories: Some(12), tie: Some(3_000), history_days: 400, skus: None });

    let (full, events) = r.pass(&shop, true).await;
    assert_eq!(events.len(), n, "one create per item");
    assert!(events.iter().all(|e| e.op == Op::Create));
    let c = full.completeness.clone().unwrap();
    assert!(c.complete, "{c:?}");
    assert_eq!((c.fetched, c.official), (n as u64, n as u64));
    if face != Face::Param2Seller {
        assert!(full.splits > 0, "the tie and the dense windows needed splitting");
    }
    r.assert_matches_truth(&shop);

    // 1% of the shop changes: creates, updates that move modified_time, stock-only changes
    // that do not, delistings and removals.
    let created = r.mutate(&shop, MutationOp::Create, n / 500);
    let updated = r.mutate(&shop, MutationOp::Update, n / 333);
    let touched = r.mutate(&shop, MutationOp::Touch, n / 500);
    let delisted = r.mutate(&shop, MutationOp::Delist, n / 666);
    let removed = r.mutate(&shop, MutationOp::Remove, n / 666);
    let touched: BTreeSet<_> = touched.difference(&updated).cloned().collect();
    let touched: BTreeSet<_> = touched.difference(&delisted).cloned().collect();
    let touched: BTreeSet<_> = touched.difference(&removed).cloned().collect();
    let updated: BTreeSet<_> = updated.difference(&delisted).cloned().collect();
    let updated: BTreeSet<_> = updated.difference(&removed).cloned().collect();
    let delisted: BTreeSet<_> = delisted.difference(&removed).cloned().collect();

    let (inc, events) = r.pass(&shop, false).await;
    assert_eq!(inc.kind, shopsync::state::PassKind::Incremental);
    assert_eq!(ids(&events, Op::Create), created);
    assert_eq!(ids(&events, Op::Update), updated, "one update per item whose modified_time moved");
    // A seller's sweep reads the whole list, so it misses removed offers at once; a window
    // of modification times only sees what moved.
    let gone_now = if face == Face::Param2Seller { &delisted | &removed } else { delisted.clone() };
    assert_eq!(ids(&events, Op::Delete), gone_now, "delistings move modified_time too");
    assert_eq!(events.len(), created.len() + updated.len() + gone_now.len(), "no duplicates");

    let (_, again) = r.pass(&shop, false).await;
    assert!(again.is_empty(), "a repeated incremental pass emits nothing: {:?}", again.len());

    let (full2, events) = r.pass(&shop, true).await;
    assert_eq!(ids(&events, Op::Update), touched, "the full pass sees the silent stock changes");
    assert!(events.iter().filter(|e| e.op == Op::Update).all(|e| e.changed.contains(&"stock".to_string())));
    let gone_now = if face == Face::Param2Seller { BTreeSet::new() } else { removed.clone() };
    assert_eq!(ids(&events, Op::Delete), gone_now);
    assert_eq!(events.len(), touched.len() + gone_now.len());
    assert!(full2.completeness.unwrap().complete);
    r.assert_matches_truth(&shop);

    let (_, again) = r.pass(&shop, true).await;
    assert!(again.is_empty(), "a repeated full pass emits nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_reaches_the_same_end_state() {
    storm(Face::Seed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn param2_a_storm_reaches_the_same_end_state() {
    storm(Face::Param2Own).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn param2_seller_a_storm_reaches_the_same_end_state() {
    storm(Face::Param2Seller).await;
}

async fn storm(face: Face) {
    let storm = Faults { busy: 0.2, html: 0.05, truncated: 0.05, hang: 0.01, throttle: 0.05, hang_ms: 3_000 };
    let mut r = rig_on(face, storm).await;
    let shop = r.shop(NewShop {
        items: 5_000,
        categories: Some(8),
        tie: Some(2_200),
        history_days: 200,
        skus: None,
    });
    let (full, _) = r.pass(&shop, true).await;
    assert!(full.completeness.unwrap().complete);
    r.assert_matches_truth(&shop);
    r.mutate(&shop, MutationOp::Update, 50);
    r.mutate(&shop, MutationOp::Delist, 20);
    r.pass(&shop, false).await;
    r.assert_matches_truth(&shop);
    let counters = r.sim.sim.counters();
    let (method, busy) = match face {
        Face::Seed => ("alibaba.seller.items.list.get", "5002"),
        Face::Param2Own => ("param2:com.alibaba.product:alibaba.product.list.get", "gw.ServiceUnavailable"),
        Face::Param2Seller => (
            "param2:com.alibaba.fenxiao.crossborder:product.search.querySellerOfferList",
            "gw.ServiceUnavailable",
        ),
    };
    let list = &counters.methods[method];
    assert!(list.get(busy).copied().unwrap_or(0) > 10, "it stormed: {list:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_changing_during_a_full_pass_are_never_deleted() {
    no_false_deletes(Face::Seed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn param2_items_changing_during_a_full_pass_are_never_deleted() {
    no_false_deletes(Face::Param2Own).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn param2_seller_offers_changing_during_a_sweep_are_never_deleted() {
    no_false_deletes(Face::Param2Seller).await;
}

async fn no_false_deletes(face: Face) {
    let mut r = rig_on(face, Faults::none()).await;
    let shop =
        r.shop(NewShop { items: 8_000, categories: Some(10), tie: None, history_days: 120, skus: None });
    r.pass(&shop, true).await;

    // Another task keeps moving items' modified_time while the next full pass pages through.
    let sim = r.sim.sim.clone();
    let member = shop.to_string();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let churn = tokio::spawn(async move {
        let mut moved = 0;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            let m = Mutation { op: MutationOp::Update, count: Some(3), item_ids: None };
            moved += sim.mutate(&member, &m).map(|d| d.item_ids.len()).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        moved
    });
    let (_, events) = r.pass(&shop, true).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let moved = churn.await.unwrap();
    assert!(moved > 30, "items were modified during the pass ({moved})");
    let alive: BTreeSet<String> = r.sim.sim.truth(shop.as_str()).unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap().to_string())
        .collect();
    let wrongly = ids(&events, Op::Delete).intersection(&alive).count();
    assert_eq!(wrongly, 0, "deleted items that still exist");
    r.pass(&shop, false).await;
    r.assert_matches_truth(&shop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_items_emit_changes_and_one_delete() {
    let mut r = rig(Faults::default()).await;
    let shop = r.shop(NewShop { items: 200, categories: Some(5), tie: None, history_days: 30, skus: None });
    let truth = r.sim.sim.truth(shop.as_str()).unwrap();
    let watched: Vec<String> = truth["items"]
        .as_array()
        .unwrap()
        .iter()
        .take(12)
        .map(|i| i["item_id"].as_str().unwrap().to_string())
        .collect();
    let stats = PassStats::default();
    let key = r.engine.watch_pass("rivals", &watched, &stats).await.unwrap();
    assert_eq!(key, "watch:rivals");
    assert_eq!(stats.events(), 12, "a create per watched item");
    let stored = r.store.item(&key, &watched[0]).unwrap().unwrap();
    let t0 = &truth["items"][0];
    assert_eq!(stored.item.skus.len(), t0["skus"].as_array().unwrap().len(), "SKUs come inline");

    let m = |op, id: &str| Mutation { op, count: None, item_ids: Some(vec![id.to_string()]) };
    r.sim.sim.mutate(shop.as_str(), &m(MutationOp::Update, &watched[1])).unwrap();
    r.sim.sim.mutate(shop.as_str(), &m(MutationOp::Delist, &watched[2])).unwrap();
    let before = r.store.events_after(0).count() as u64;
    let stats = PassStats::default();
    r.engine.watch_pass("rivals", &watched, &stats).await.unwrap();
    let events: Vec<Event> = r.store.events_after(before).map(|e| e.unwrap().1).collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(ids(&events, Op::Update), BTreeSet::from([watched[1].clone()]));
    assert_eq!(ids(&events, Op::Delete), BTreeSet::from([watched[2].clone()]));
    let before = r.store.events_after(0).count() as u64;
    r.engine.watch_pass("rivals", &watched, &PassStats::default()).await.unwrap();
    assert_eq!(r.store.events_after(before).count(), 0, "the delete is emitted once");
}

/// A 12,000-item shop whose simulator hides items no query reaches (a one-category bulk
/// import and stray categories), with the ids it hides, from the simulator's own truth. Seed
/// only: the production protocol has no seller category list to split by.
async fn shop_with_gaps() -> (Rig, MemberId, BTreeSet<String>) {
    let quirks =
        Quirks { stray_cid_share: 0.01, one_category_tie_min_items: 12_000, ..Quirks::calm_catalogue() };
    let mut r = rig_with(Face::Seed, Faults::none(), quirks).await;
    let shop = r.shop(NewShop {
        items: 12_000,
        categories: Some(12),
        tie: None,
        history_days: 365,
        skus: Some([0, 2]),
    });
    let hidden = r.sim.sim.unreachable(shop.as_str()).unwrap();
    let hidden =
        hidden["item_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    (r, shop, hidden)
}

/// The simulator hides items no query of the contract reaches: a bulk import of more than
/// 2,000 items on one millisecond in one category, and items on a saturated millisecond whose
/// category the seller does not list. The full pass reads everything else, reports exactly
/// those as unreachable (its report, the shop's known gaps) and does not loop on them; a new
/// gap that a second count of its millisecond confirms does not hold the watermark, and the
/// next pass, finding the same gap or a smaller one, moves on too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_no_query_reaches_are_reported_and_do_not_hold_the_watermark_twice() {
    let (r, shop, hidden) = shop_with_gaps().await;
    assert!(hidden.len() > 2, "the simulator hides some items: {}", hidden.len());

    let (report, _) = r.pass(&shop, true).await;
    assert!(report.ok, "{:?}", report.error);
    assert_eq!(report.unreachable, hidden.len() as u64, "exactly the hidden items are reported");
    let truth = r.sim.sim.truth(shop.as_str()).unwrap();
    let reachable: BTreeSet<String> = truth["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().map(String::from).unwrap_or_else(|| i["item_id"].to_string()))
        .filter(|id| !hidden.contains(id))
        .collect();
    let stored: BTreeSet<String> = r.store.items(shop.as_str()).map(|s| s.unwrap().item.item_id).collect();
    assert_eq!(stored, reachable, "every reachable item, nothing else");
    let state = r.store.shop(shop.as_str()).unwrap();
    assert_eq!(state.unreachable_items(), hidden.len() as u64);
    let first_mark = state.watermark_ms.unwrap();
    let gap_at = *state.unreachable.keys().next().unwrap();
    assert!(first_mark > gap_at, "a new gap that a second count confirms does not hold the watermark");

    // Items leave a gap's millisecond before the next pass (changed, they move to now), so
    // that gap shrank: still the known gap.
    let (&shrunk_at, _) = state.unreachable.iter().max_by_key(|(_, g)| g.items).unwrap();
    let hidden_there: Vec<String> = r.sim.sim.truth(shop.as_str()).unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["modified_time"].as_i64() == Some(shrunk_at))
        .filter_map(|i| i["item_id"].as_str().map(String::from))
        .filter(|id| hidden.contains(id))
        .collect();
    assert!(hidden_there.len() >= 2, "a gap of several items: {}", hidden_there.len());
    let left: Vec<String> = hidden_there[..hidden_there.len() / 2].to_vec();
    let m = Mutation { op: MutationOp::Update, count: None, item_ids: Some(left.clone()) };
    r.sim.sim.mutate(shop.as_str(), &m).unwrap();

    // An incremental pass from there meets the same gaps, known now (one of them smaller):
    // the watermark moves on, and the items that left are read where they went.
    let (report, events) = r.pass(&shop, false).await;
    assert!(report.ok, "{:?}", report.error);
    let state = r.store.shop(shop.as_str()).unwrap();
    assert!(state.watermark_ms.unwrap() > gap_at, "a known gap, or one that shrank, does not hold it again");
    assert!(state.watermark_ms.unwrap() > shrunk_at);
    let seen: BTreeSet<String> = events.iter().map(|e| e.item_id.clone()).collect();
    assert!(left.iter().all(|id| seen.contains(id)), "the items that left are read at their new times");
}

/// The other side of the gap rule: when items leave a crowded millisecond between its first
/// count and the second (the read raced with changes), the gap may be a miscount, so the
/// watermark stays before that millisecond; the next pass reads from there, finds the items
/// that left at their new times, meets the gap again no larger and moves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_whose_millisecond_changes_while_read_holds_the_watermark() {
    let (r, shop, hidden) = shop_with_gaps().await;
    // The millisecond that hides the most items, from the simulator's own truth.
    let mut by_ms: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for i in r.sim.sim.truth(shop.as_str()).unwrap()["items"].as_array().unwrap() {
        let id = i["item_id"].as_str().map(String::from).unwrap_or_else(|| i["item_id"].to_string());
        if hidden.contains(&id) {
            by_ms.entry(i["modified_time"].as_i64().unwrap()).or_default().push(id);
        }
    }
    let (&gap_at, there) = by_ms.iter().max_by_key(|(_, ids)| ids.len()).unwrap();
    assert!(there.len() >= 2, "a gap of several items: {}", there.len());
    // Two of its items change once the pass reads the millisecond's categories: after the
    // count that split it, before the count that checks the gap.
    let moved: Vec<String> = there[..2].to_vec();
    let m = Mutation { op: MutationOp::Update, count: None, item_ids: Some(moved.clone()) };
    r.sim.sim.mutate_when_split(shop.as_str(), gap_at, m);

    let (report, _) = r.pass(&shop, true).await;
    assert!(report.ok, "{:?}", report.error);
    let state = r.store.shop(shop.as_str()).unwrap();
    assert!(state.unreachable.contains_key(&gap_at), "the gap is reported");
    let mark = state.watermark_ms.unwrap();
    assert!(mark <= gap_at, "a gap whose count changed while read holds the watermark ({mark} > {gap_at})");

    let (report, events) = r.pass(&shop, false).await;
    assert!(report.ok, "{:?}", report.error);
    let seen: BTreeSet<String> = events.iter().map(|e| e.item_id.clone()).collect();
    assert!(moved.iter().all(|id| seen.contains(id)), "the items that left are read at their new times");
    let state = r.store.shop(shop.as_str()).unwrap();
    assert!(state.watermark_ms.unwrap() > gap_at, "met again no larger, the gap no longer holds it");
}

/// The first copy of a big shop takes days under a quota, and the planner polls the shop
/// meanwhile. A poll while the first full pass is open reads what changed since that pass
/// started and hands it over at once, without giving the shop a watermark (nothing before
/// the pass's start is known complete yet); the pass, resumed, never deletes what the poll
/// wrote, and ends with the watermark past the poll and a copy equal to the truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_is_polled_while_its_first_full_pass_is_open() {
    let mut r = rig(Faults::none()).await;
    let shop =
        r.shop(NewShop { items: 3_000, categories: Some(10), tie: None, history_days: 120, skus: None });
    // A first session given 15 calls: it stops after the page in hand, its progress kept.
    let stats = Arc::new(PassStats::default());
    stats.budget.store(15, std::sync::atomic::Ordering::Relaxed);
    let stopped = r.engine.pass(&shop, true, None, stats).await;
    assert!(stopped.is_err(), "the session stops at its cap");
    let open = r.store.shop(shop.as_str()).unwrap();
    let t_end = open.full.as_ref().expect("the pass stays open").t_end;
    assert!(open.watermark_ms.is_none());

    // Items change and appear after the pass started.
    let mut changed = r.mutate(&shop, MutationOp::Update, 25);
    changed.extend(r.mutate(&shop, MutationOp::Create, 5));
    // What the poll must find, from the simulator's truth: every item modified after `t_end`,
    // and it may hand over those in the overlap before it (new to the store, or not).
    let truth = r.sim.sim.truth(shop.as_str()).unwrap();
    let modified_after = |t: i64| -> BTreeSet<String> {
        truth["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["modified_time"].as_i64().unwrap() > t)
            .map(|i| i["item_id"].as_str().unwrap().to_string())
            .collect()
    };
    let expected = modified_after(t_end);
    let in_overlap = modified_after(t_end - r.sync.overlap.as_millis() as i64);
    assert_eq!(expected, changed, "the truth agrees with what the test changed");

    let before = r.store.events_after(0).count() as u64;
    let report = r.engine.poll(&shop, Arc::new(PassStats::default())).await.unwrap();
    assert!(report.ok);
    let events: Vec<Event> = r.store.events_after(before).map(|e| e.unwrap().1).collect();
    let polled: BTreeSet<String> = events.iter().map(|e| e.item_id.clone()).collect();
    assert!(polled.is_superset(&expected), "the poll hands over all that changed since the pass started");
    assert!(polled.is_subset(&in_overlap), "and nothing older than its overlap");
    let st = r.store.shop(shop.as_str()).unwrap();
    assert!(st.watermark_ms.is_none(), "no watermark before the first copy is done");
    assert!(st.poll_watermark_ms.expect("the poll's own progress is kept") > t_end);

    // A backfill asked to start later than the polls stand starts where they stand: what
    // changed in between is read, and the polls' watermark never jumps a hole.
    let late = r.mutate(&shop, MutationOp::Update, 1);
    let since = shopsync::clock::now_ms() + 3_600_000;
    let before = r.store.events_after(0).count() as u64;
    r.engine.pass(&shop, false, Some(since), Arc::new(PassStats::default())).await.unwrap();
    let read: BTreeSet<String> = r.store.events_after(before).map(|e| e.unwrap().1.item_id).collect();
    assert!(read.is_superset(&late), "the backfill read from where the polls stood");
    let polled_to = r.store.shop(shop.as_str()).unwrap().poll_watermark_ms.unwrap();

    let (report, events) = r.pass(&shop, true).await;
    assert!(report.ok, "{:?}", report.error);
    assert!(ids(&events, Op::Delete).is_empty(), "nothing the poll wrote is deleted");
    let st = r.store.shop(shop.as_str()).unwrap();
    assert!(st.watermark_ms.unwrap() >= polled_to, "the watermark goes on from the poll");
    assert!(st.poll_watermark_ms.is_none() && st.full.is_none());
    r.assert_matches_truth(&shop);
    let (_, events) = r.pass(&shop, false).await;
    assert!(events.is_empty(), "the next poll finds nothing new: {}", events.len());
}

/// A full pass cut off by the quota over and over, where few items need SKU details (a refresh
/// of a copy missing one item in forty): each page commits as soon as it is read and the items
/// waiting for a batch of 20 ids are parked (the store's `parked` tree), so a stop costs no page
/// read again unless it fell on a SKU call (then the page in hand). Before parking, one
/// waiting item held every page read after it, and each stop cost them all. A parked item
/// that a poll finds delisted meanwhile is not brought back by the next session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pass_cut_off_by_the_quota_lists_no_page_again() {
    let mut r = rig(Faults::none()).await;
    let shop = r.shop(NewShop {
        items: 2_400,
        categories: Some(10),
        tie: None,
        history_days: 120,
        skus: Some([1, 3]),
    });
    let (report, _) = r.pass(&shop, true).await;
    assert!(report.ok, "{:?}", report.error);
    // One stored item in forty forgotten: the refresh finds them new and fetches their details.
    let forgotten: Vec<_> = r.store.items(shop.as_str()).map(|i| i.unwrap()).step_by(40).collect();
    let writes: Vec<_> = forgotten.into_iter().map(|last| shopsync::state::Write::Delete { last }).collect();
    r.store.commit_page(shop.as_str(), &writes, None, 0, None).unwrap();

    let day = Duration::from_millis(300);
    let account = AccountSettings {
        daily_quota: 6,
        pacing: PacingSettings { quota_day: shopsync::clock::QuotaDay::new(day), ..r.account.pacing.clone() },
        ..r.account.clone()
    };
    let tight = Client::new(r.api.clone(), account, Hooks::default()).unwrap();
    let engine = Engine::new(tight, r.store.clone(), r.sync.clone());
    r.sim.sim.traffic().reset_counters();
    let (mut stops, mut parked_seen, mut delisted) = (0, 0, None);
    loop {
        match engine.pass(&shop, true, None, Arc::new(PassStats::default())).await {
            Ok(report) => {
                assert!(report.ok, "{:?}", report.error);
                break;
            }
            Err(e) => assert!(e.is_quota(), "only the quota stops it: {e}"),
        }
        stops += 1;
        assert!(stops < 200, "the pass ends");
        // The pass returns once every window has stopped (the first to meet the quota stops
        // the others after their page in hand): nothing writes while this reads.
        let full = r.store.shop(shop.as_str()).unwrap().full.expect("the pass stays open");
        let parked = r.store.parked_items(shop.as_str(), full.pass_id).unwrap();
        assert_eq!(full.parked_count, parked.len() as u64, "the count follows the parked tree");
        parked_seen += parked.len();
        if let (None, Some(p)) = (&delisted, parked.first()) {
            let id = p.item.item_id.clone();
            let m = Mutation { op: MutationOp::Delist, count: None, item_ids: Some(vec![id.clone()]) };
            assert_eq!(r.sim.sim.mutate(shop.as_str(), &m).unwrap().item_ids, std::slice::from_ref(&id));
            // A poll reads up to the millisecond it starts (exclusive): not the one the
            // delisting happened in.
            tokio::time::sleep(Duration::from_millis(5)).await;
            // The shop's poll, on the account with quota: it lists what changed since the
            // watermark, the delisting among it.
            let report = r.engine.poll(&shop, Arc::new(PassStats::default())).await.unwrap();
            assert!(report.ok);
            let parked = r.store.parked_items(shop.as_str(), full.pass_id).unwrap();
            assert!(
                !parked.iter().any(|p| p.item.item_id == id),
                "the poll's delisting ends its parked entry"
            );
            delisted = Some(id);
        }
        tokio::time::sleep(day).await;
    }
    let repeated = r.sim.sim.traffic().repeated_pages(100);
    let again: u32 = repeated.iter().map(|(_, n)| n - 1).sum();
    eprintln!(
        "{stops} stops, {parked_seen} items parked at them, {again} list pages answered again: {repeated:?}"
    );
    assert!(stops >= 8, "the quota cut the pass {stops} times");
    assert!(parked_seen > 0, "some stop left items parked");
    // At most the page in hand when a stop fell on a SKU call, and the page behind the
    // delisting (it left its window while the pass read it: a shift repair).
    assert!(again <= stops, "{again} list pages answered again over {stops} stops: {repeated:?}");
    assert!(r.store.shop(shop.as_str()).unwrap().full.is_none(), "the pass closed");
    let id = delisted.expect("a stop left an item parked");
    assert!(r.store.item(shop.as_str(), &id).unwrap().is_none(), "the delisted item stays out");
    r.assert_matches_truth(&shop);
}

/// On param2 a SKU ask is answered from the list the client holds in memory, so an item
/// parked by an earlier session (an older build, or the seed gateway's account) cannot get
/// its details that way after a restart: the pass fetches it again whole, one call an item,
/// and stores it with its SKUs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn param2_items_parked_by_an_earlier_session_are_fetched_again_whole() {
    use shopsync::state::{PageMark, Parked, Write};
    let mut r = rig_on(Face::Param2Own, Faults::none()).await;
    let shop = r.shop(NewShop { items: 400, categories: Some(4), tie: None, history_days: 60, skus: None });
    let (first, _) = r.pass(&shop, true).await;
    assert!(first.ok);
    // A second full pass, stopped after its first page: it stays open.
    let stats = Arc::new(PassStats::default());
    stats.budget.store(1, std::sync::atomic::Ordering::Relaxed);
    assert!(r.engine.pass(&shop, true, None, stats).await.is_err(), "the session stops at its cap");
    let full = r.store.shop(shop.as_str()).unwrap().full.expect("the pass stays open");
    // Two items as an earlier session left them: listed, parked without details, not stored.
    let two: Vec<_> =
        r.store.items(shop.as_str()).map(|i| i.unwrap()).skip(100).step_by(150).take(2).collect();
    assert_eq!(two.len(), 2);
    assert!(two.iter().all(|s| !s.item.skus.is_empty()), "items with SKUs");
    let park = two
        .iter()
        .map(|s| {
            let mut item = s.item.clone();
            item.skus.clear();
            Parked { item, listing_md5: s.listing_md5.clone() }
        })
        .collect();
    let writes: Vec<_> = two.iter().map(|s| Write::Delete { last: s.clone() }).collect();
    let mark = PageMark { park, ..PageMark::default() };
    r.store.commit_page(shop.as_str(), &writes, None, 0, Some(&mark)).unwrap();
    assert_eq!(r.store.parked_items(shop.as_str(), full.pass_id).unwrap().len(), 2);

    // A restarted daemon: a new client, whose memory of the list is empty.
    let hooks = Hooks { tokens: r.tokens.clone(), ..Hooks::default() };
    let client = Client::new(r.api.clone(), r.account.clone(), hooks).unwrap();
    let engine = Engine::new(client, r.store.clone(), r.sync.clone());
    let report = engine.pass(&shop, true, None, Arc::new(PassStats::default())).await.unwrap();
    assert!(report.ok, "{:?}", report.error);
    assert_eq!(report.item_calls, 2, "one call for each parked item");
    assert!(r.store.parked_items(shop.as_str(), full.pass_id).unwrap().is_empty());
    r.assert_matches_truth(&shop);
}
