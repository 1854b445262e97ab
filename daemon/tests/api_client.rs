//! The API client against a real sim1688 over loopback HTTP, quirks on unless a test says
//! otherwise. Intervals and limits are scaled down through settings, never slept through.

use serde_json::Value;
use shopsync::api::{
    AccountSettings, ApiError, ApiSettings, Client, Hooks, ItemFilter, MemoryTokenStore, Protocol, ShopRef,
    SignMethod, SortType, TokenStore,
};
use shopsync::pacing::PacingSettings;
use shopsync::secret::Secret;
use sim1688::{Faults, Limits, Quirks, RunningSim, SimSpec};
use std::sync::Arc;
use std::time::Duration;

/// Pacing scaled down ~100x, and a per-second guard in step with the simulator's limit.
fn fast_pacing(max_per_sec: u32) -> PacingSettings {
    PacingSettings {
        concurrency: 4,
        success_interval: Duration::from_millis(2),
        failure_interval: Duration::from_millis(20),
        throttled_interval: Duration::from_millis(100),
        max_calls_per_sec: max_per_sec,
        rate_window: Duration::from_millis(1_050),
        quota_day: Default::default(),
    }
}

fn api(sim: &RunningSim) -> ApiSettings {
    ApiSettings {
        base_url: sim.gateway_url(),
        auth_url: sim.auth_url(),
        read_timeout: Duration::from_millis(800),
        ..ApiSettings::default()
    }
}

fn account(sim: &RunningSim, app_key: &str, pacing: PacingSettings) -> AccountSettings {
    let a = sim.sim.accounts().into_iter().find(|a| a.app_key == app_key).expect("account exists");
    AccountSettings {
        name: format!("acct-{app_key}"),
        app_key: a.app_key,
        app_secret: Secret::new(a.app_secret),
        daily_quota: 100_000,
        oauth: a.oauth,
        proxy: None,
        pacing,
    }
}

/// A simulator with default quirks, except a rate limit raised to 100/s so functional tests
/// run quickly (the storm test keeps the real 5/s).
async fn sim(items: usize) -> RunningSim {
    let limits = Limits { rate_per_sec: 100, stall_ms: 300, ..Limits::default() };
    let faults = Faults { hang_ms: 5_000, ..Faults::default() };
    let spec = SimSpec { seed: 11, shops: 1, items, limits, faults };
    // No churn: the tests compare answers with the truth read before or after them.
    sim1688::Sim::start_with(spec, Quirks::calm_catalogue(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("sim starts")
}

fn client(sim: &RunningSim, app_key: &str) -> Client {
    Client::new(api(sim), account(sim, app_key, fast_pacing(90)), Hooks::default()).expect("client")
}

fn truth(sim: &RunningSim, member: &str) -> Vec<Value> {
    let t = sim.sim.truth(member).expect("shop exists");
    t["items"].as_array().cloned().unwrap_or_default()
}

fn member_of(sim: &RunningSim) -> (String, String) {
    let s = sim.sim.shop_infos().remove(0);
    (s.member_id, s.shop_url)
}

#[tokio::test]
async fn every_method_answers_over_loopback() {
    let sim = sim(3_000).await;
    let c = client(&sim, "10000001");
    let (member, url) = member_of(&sim);

    // Shape 3 needs alibaba.shop.get; the subdomain is not the member id.
    let shop_ref: ShopRef = url.parse().unwrap();
    assert!(matches!(shop_ref, ShopRef::Url(_)));
    let resolved = c.resolve(&shop_ref).await.unwrap();
    assert_eq!(resolved.as_str(), member);

    let cats = c.seller_cats(&resolved).await.unwrap();
    assert!((5..=40).contains(&cats.len()), "{} categories", cats.len());

    let truth = truth(&sim, &member);
    let count = c.items_count(&resolved, &ItemFilter::default()).await.unwrap();
    assert_eq!(count as usize, truth.len());

    // Truth is in modified order; a 30-day window around the newest items holds a full page.
    let newest = truth.last().and_then(|i| i["modified_time"].as_i64()).unwrap();
    let filter = ItemFilter {
        start_ms: Some(newest - 30 * 86_400_000 + 1),
        end_ms: Some(newest + 1),
        ..Default::default()
    };
    let page = c.items_list(&resolved, &filter, 1, 40, SortType::ModifiedDesc).await.unwrap();
    assert!(page.total_results >= 40);
    assert_eq!(page.items.len(), 40);
    let first = &page.items[0];
    assert_eq!(first.modified_time, Some(newest));
    assert!(first.wholesale_price.is_some() && first.moq.is_some() && first.sku_ids.is_some());

    let with_skus = page.items.iter().find(|i| i.sku_id_list().len() >= 2).expect("an item with SKUs");
    let ids = with_skus.sku_id_list();
    let skus = c.sku_get(&ids).await.unwrap();
    assert_eq!(skus.len(), ids.len());
    assert!(skus.iter().all(|s| s.item_id.as_deref() == Some(with_skus.item_id.as_str())));
    assert!(skus[0].spec.contains("颜色"));

    let full = c.item_get(&with_skus.item_id).await.unwrap().expect("item exists");
    assert_eq!(full.skus.as_ref().map(Vec::len), Some(ids.len()));
    assert_eq!(c.item_get("600000000000").await.unwrap(), None, "unknown item is None, not an error");

    // The depth cap: in a 30-day window holding 2,500 items, page 50 is full and page 51
    // is empty while total_results stays honest.
    let recent = sim.sim.create_shop(&sim1688::admin::NewShop {
        items: 2_500,
        categories: None,
        tie: None,
        history_days: 20,
        skus: None,
    });
    let recent_id = recent.member_id.parse().unwrap();
    let now = shopsync::clock::now_ms();
    let month = ItemFilter {
        start_ms: Some(now - 29 * 86_400_000),
        end_ms: Some(now + 60_000),
        ..Default::default()
    };
    let last = c.items_list(&recent_id, &month, 50, 40, SortType::ModifiedAsc).await.unwrap();
    assert_eq!(last.items.len(), 40);
    let deep = c.items_list(&recent_id, &month, 51, 40, SortType::ModifiedAsc).await.unwrap();
    assert!(deep.items.is_empty());
    assert_eq!(deep.total_results, 2_500);
}

#[tokio::test]
async fn chinese_commas_and_spaces_sign_with_md5_and_sha1() {
    let sim = sim(200).await;
    let (member, url) = member_of(&sim);
    let odd = format!("{url}/page/店铺 首页,新品:2026.html");
    for method in [SignMethod::Md5, SignMethod::Sha1] {
        let settings = ApiSettings { protocol: Protocol::Top(method), ..api(&sim) };
        let c = Client::new(settings, account(&sim, "10000001", fast_pacing(90)), Hooks::default()).unwrap();
        let info = c.shop_get(&odd).await.unwrap_or_else(|e| panic!("{method:?}: {e}"));
        assert_eq!(info.member_id, member);
    }
}

#[tokio::test]
async fn platform_error_codes_map_to_typed_errors() {
    let sim = sim(200).await;
    let (member, _) = member_of(&sim);
    let c = client(&sim, "10000001");
    let raw = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];

    // 1001, never retried.
    let e = c.call("alibaba.seller.cats.list.get", &raw("member_id", "b2b-12345")).await.unwrap_err();
    assert!(
        matches!(&e, ApiError::InvalidParam { sub_code, .. } if sub_code == "isv.invalid-parameter:member_id"),
        "{e}"
    );
    let mut big_page = raw("member_id", &member);
    big_page.push(("pageSize".into(), "41".into()));
    let e = c.call("alibaba.seller.items.list.get", &big_page).await.unwrap_err();
    assert_eq!(e.sub_code(), Some("isv.invalid-parameter:pageSize"));

    // 11: a key without permission for the method.
    let e = client(&sim, "10000006").item_get("600000000001").await.unwrap_err();
    assert!(matches!(e, ApiError::Permission { .. }), "{e}");

    // 10002: a wrong secret; the message never holds it.
    let mut bad = account(&sim, "10000001", fast_pacing(90));
    bad.app_secret = Secret::new("wrong-secret-XYZ");
    let e = Client::new(api(&sim), bad, Hooks::default())
        .unwrap()
        .seller_cats(&member.parse().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::BadSignature), "{e}");
    assert!(!format!("{e} {e:?}").contains("wrong-secret-XYZ"));

    // B2B: a key without the permission silently gets no wholesale fields.
    let no_b2b = client(&sim, "10000005");
    let page = no_b2b
        .items_list(&member.parse().unwrap(), &ItemFilter::default(), 1, 10, SortType::ModifiedDesc)
        .await;
    let page = page.unwrap();
    assert!(page
        .items
        .iter()
        .all(|i| i.wholesale_price.is_none() && i.moq.is_none() && i.channel_price.is_none()));
}

#[tokio::test]
async fn transient_failures_are_retried_then_surface_typed() {
    let sim = sim(200).await;
    let (member, _) = member_of(&sim);
    let m = member.parse().unwrap();
    let few = |sim: &RunningSim, attempts| {
        let settings =
            ApiSettings { max_attempts: attempts, read_timeout: Duration::from_millis(300), ..api(sim) };
        Client::new(settings, account(sim, "10000001", fast_pacing(90)), Hooks::default()).unwrap()
    };
    let cases: [(Faults, &str); 5] = [
        (Faults { busy: 1.0, ..Faults::none() }, "busy"),
        (Faults { html: 1.0, ..Faults::none() }, "html"),
        (Faults { truncated: 1.0, ..Faults::none() }, "truncated"),
        (Faults { hang: 1.0, hang_ms: 3_000, ..Faults::none() }, "timeout"),
        (Faults { throttle: 1.0, ..Faults::none() }, "throttled"),
    ];
    for (faults, kind) in cases {
        sim.sim.set_faults(faults);
        let before = sim.sim.counters().total;
        let e = few(&sim, 3).seller_cats(&m).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert_eq!(sim.sim.counters().total - before, 3, "{kind}: three attempts, no more");
    }
    // Half the calls fail: every call still gets its answer.
    sim.sim.set_faults(Faults { busy: 0.25, html: 0.25, ..Faults::none() });
    let c = few(&sim, 12);
    for _ in 0..10 {
        assert!(!c.seller_cats(&m).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn wide_saturated_window_stalls_then_fails_busy() {
    let sim = sim(2_500).await;
    sim.calm();
    let (member, _) = member_of(&sim);
    let settings = ApiSettings { max_attempts: 2, ..api(&sim) };
    let c = Client::new(settings, account(&sim, "10000001", fast_pacing(90)), Hooks::default()).unwrap();
    let t0 = std::time::Instant::now();
    let e =
        c.items_list(&member.parse().unwrap(), &ItemFilter::default(), 1, 40, SortType::ModifiedAsc).await;
    let e = e.unwrap_err();
    assert!(matches!(e, ApiError::Busy), "{e}");
    assert!(t0.elapsed() >= Duration::from_millis(600), "two stalls of 300 ms");
}

#[tokio::test]
async fn quota_code_15_stops_the_account_until_shanghai_midnight() {
    let sim = sim(100).await;
    sim.calm();
    sim.sim.set_limits(Limits { quota_test: 3, rate_per_sec: 0, ..sim.sim.limits() });
    let (member, _) = member_of(&sim);
    let m = member.parse().unwrap();
    // Our own budget is larger than the platform's: the platform's code 15 must win.
    let c = client(&sim, "10000004");
    for _ in 0..3 {
        c.seller_cats(&m).await.unwrap();
    }
    let e = c.seller_cats(&m).await.unwrap_err();
    let ApiError::QuotaExhausted { until_ms, .. } = e else { panic!("{e}") };
    assert_eq!(until_ms, shopsync::clock::next_shanghai_midnight(shopsync::clock::now_ms()));
    let sent = sim.sim.counters().total;
    assert!(c.seller_cats(&m).await.is_err());
    assert_eq!(sim.sim.counters().total, sent, "an exhausted account makes no more calls");
    assert_eq!(c.quota().remaining(shopsync::clock::now_ms()), 0);

    // Our own budget, persisted through the hook, is enforced before any call.
    sim.sim.traffic().reset_quota();
    let hooks = Hooks::default();
    let mut small = account(&sim, "10000001", fast_pacing(90));
    small.daily_quota = 2;
    let a = Client::new(api(&sim), small.clone(), hooks.clone()).unwrap();
    a.seller_cats(&m).await.unwrap();
    let restarted = Client::new(api(&sim), small, hooks).unwrap();
    restarted.seller_cats(&m).await.unwrap();
    assert!(matches!(restarted.seller_cats(&m).await, Err(ApiError::QuotaExhausted { .. })));
}

#[tokio::test]
async fn oauth_token_is_fetched_lazily_refreshed_on_27_and_persisted() {
    let sim = sim(100).await;
    sim.calm();
    let (member, _) = member_of(&sim);
    let m = member.parse().unwrap();
    let tokens: Arc<MemoryTokenStore> = Arc::new(MemoryTokenStore::default());
    let hooks = Hooks { tokens: tokens.clone(), ..Hooks::default() };
    let acct = account(&sim, "10000003", fast_pacing(90));
    let c = Client::new(api(&sim), acct.clone(), hooks.clone()).unwrap();
    assert!(tokens.load(&acct.name).is_none(), "no token before the first call");
    c.seller_cats(&m).await.unwrap();
    let first = tokens.load(&acct.name).expect("token persisted");

    // The platform expires every token: code 27, one refresh, then success.
    shopsync_expire(&sim).await;
    c.seller_cats(&m).await.unwrap();
    let second = tokens.load(&acct.name).unwrap();
    assert_ne!(first.access_token, second.access_token);
    assert_eq!(sim.sim.counters().methods["alibaba.seller.cats.list.get"].get("27"), Some(&1));

    // A restarted client re-uses the stored token instead of authorizing again.
    let again = Client::new(api(&sim), acct, hooks).unwrap();
    again.seller_cats(&m).await.unwrap();
    assert_eq!(tokens.load("acct-10000003").unwrap(), second);
    assert!(!format!("{second:?}").contains(second.access_token.expose()), "tokens never print");
}

async fn shopsync_expire(sim: &RunningSim) {
    let url = format!("{}/_sim/tokens/expire", sim.base_url());
    reqwest::Client::new().post(url).send().await.unwrap().error_for_status().unwrap();
}

#[tokio::test]
async fn per_account_proxy_carries_the_traffic_and_its_credentials_stay_secret() {
    let sim = sim(100).await;
    sim.calm();
    let (member, _) = member_of(&sim);
    // The gateway host does not resolve; only a proxy can reach it. sim1688 routes the
    // absolute-form request a proxy receives by its path, so it serves as the proxy here.
    let settings =
        ApiSettings { base_url: format!("http://gateway.invalid{}", sim1688::GATEWAY_PATH), ..api(&sim) };
    let mut acct = account(&sim, "10000001", fast_pacing(90));
    acct.proxy = Some(Secret::new(format!("http://user:proxy-pass-123@{}", sim.addr)));
    let c = Client::new(settings.clone(), acct.clone(), Hooks::default()).unwrap();
    assert!(!c.seller_cats(&member.parse().unwrap()).await.unwrap().is_empty());

    acct.proxy = Some(Secret::new("http://user:proxy-pass-123@[bad"));
    let e = Client::new(settings, acct, Hooks::default()).err().expect("bad proxy refused");
    assert!(!e.to_string().contains("proxy-pass-123"), "{e}");
}

/// The storm of the issue: 20% busy, 5% HTML, 5% truncated, 2% hangs, injected 429s, the
/// real 5 calls/s limit. Every call gets the right answer or the right error, and the client
/// never sends more than 5 calls in any second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_every_call_gets_the_right_answer_and_never_exceeds_5_per_second() {
    let limits = Limits { rate_per_sec: 5, ..Limits::default() };
    let faults =
        Faults { busy: 0.2, html: 0.05, truncated: 0.05, hang: 0.02, throttle: 0.05, hang_ms: 3_000 };
    let spec = SimSpec { seed: 5, shops: 1, items: 1_500, limits, faults };
    // No churn: every answer is checked against the truth read once before the storm.
    let sim = sim1688::Sim::start_with(spec, Quirks::calm_catalogue(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (member, _) = member_of(&sim);
    let truth = truth(&sim, &member);
    let settings = ApiSettings { read_timeout: Duration::from_millis(500), max_attempts: 30, ..api(&sim) };
    let c = Client::new(settings, account(&sim, "10000002", fast_pacing(5)), Hooks::default()).unwrap();

    let mut tasks = Vec::new();
    for page in 1..=24u32 {
        let (c, member) = (c.clone(), member.clone());
        tasks.push(tokio::spawn(async move {
            let m = member.parse().unwrap();
            // Without a window the query would stall if it matched more than 2,000 items;
            // 1,500 do not, so pages of the whole shop are fine here.
            c.items_list(&m, &ItemFilter::default(), page, 40, SortType::ModifiedAsc).await
        }));
    }
    let bad = {
        let c = c.clone();
        tokio::spawn(async move {
            c.call("alibaba.seller.cats.list.get", &[("member_id".into(), "42".into())]).await
        })
    };
    for (i, t) in tasks.into_iter().enumerate() {
        let page = t.await.unwrap().unwrap_or_else(|e| panic!("page {}: {e}", i + 1));
        let want: Vec<&str> =
            truth.iter().skip(i * 40).take(40).filter_map(|v| v["item_id"].as_str()).collect();
        let got: Vec<&str> = page.items.iter().map(|it| it.item_id.as_str()).collect();
        assert_eq!(got, want, "page {}", i + 1);
        assert_eq!(page.total_results as usize, truth.len());
    }
    let e = bad.await.unwrap().unwrap_err();
    assert!(
        matches!(e, ApiError::InvalidParam { .. }),
        "a bad parameter stays an error through the storm: {e}"
    );

    let counters = sim.sim.counters();
    let stats = &counters.accounts["10000002"];
    assert!(stats.max_calls_per_second <= 5, "{} calls within one second", stats.max_calls_per_second);
    assert_eq!(stats.rate_limited, 0, "the client never ran into the platform's limit");
    let list = &counters.methods["alibaba.seller.items.list.get"];
    for kind in ["5002", "html_502", "html_503", "truncated", "7"] {
        let seen = list.get(kind).copied().unwrap_or(0);
        eprintln!("storm: {kind}: {seen}");
    }
    assert!(list.get("5002").copied().unwrap_or(0) > 0, "the storm really stormed: {list:?}");
}
