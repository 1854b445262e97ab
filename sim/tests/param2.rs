//! The param2 face over loopback, as a client of the production platform meets it: the
//! authorize page and the token endpoint, each API with its shapes, every gateway error, the
//! business errors, the shared quota and rate window, the faults, and complete paging.

use serde_json::{json, Value};
use sim1688::admin::{Mutation, MutationOp, NewShop};
use sim1688::param2::sign::signature;
use sim1688::{Faults, Limits, Quirks, RunningSim, Sim, SimSpec};
use std::collections::{BTreeMap, BTreeSet};

const PRODUCT: (&str, &str) = ("com.alibaba.product", "alibaba.product.list.get");
const OFFERS: (&str, &str) = ("com.alibaba.fenxiao.crossborder", "product.search.querySellerOfferList");
const DETAIL: (&str, &str) = ("com.alibaba.fenxiao.crossborder", "product.search.queryProductDetail");
const POSTPONE: (&str, &str) = ("system.oauth2", "postponeToken");
const REDIRECT: &str = "https://erp.example/callback";

async fn start(items: usize, limits: Limits) -> RunningSim {
    let spec = SimSpec { seed: 21, shops: 2, items, limits, faults: Faults::none() };
    // No churn: these tests compare what they page through with the truth.
    Sim::start_with(spec, Quirks::calm_catalogue(), "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

fn no_rate_limit() -> Limits {
    Limits { rate_per_sec: 0, ..Limits::default() }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn form(p: &BTreeMap<String, String>) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(p).finish()
}

async fn post(url: &str, p: &BTreeMap<String, String>) -> (u16, String) {
    let res = http()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(p))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// A signed param2 call, as the official SDKs make it (form body, `_aop_timestamp`).
async fn call(
    sim: &RunningSim,
    (ns, api): (&str, &str),
    app_key: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let secret = sim.sim.account(app_key).map(|a| a.app_secret).unwrap_or_default();
    let mut p: BTreeMap<String, String> = BTreeMap::new();
    p.insert("_aop_timestamp".into(), sim1688::time::wall_ms().to_string());
    if let Some(t) = token {
        p.insert("access_token".into(), t.into());
    }
    for (k, v) in extra {
        p.insert(k.to_string(), v.to_string());
    }
    if !p.contains_key("_aop_signature") {
        let s = signature(&format!("param2/1/{ns}/{api}/{app_key}"), &p, &secret);
        p.insert("_aop_signature".into(), s);
    }
    let (status, body) = post(&sim.param2_url(ns, api, app_key), &p).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The code the authorize page hands back through the redirect.
async fn authorize(sim: &RunningSim, app_key: &str) -> String {
    let url =
        format!("{}?client_id={app_key}&site=1688&redirect_uri={REDIRECT}&state=s%201", sim.authorize_url());
    let res = http().get(url).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let to = res.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with(&format!("{REDIRECT}?code=")), "{to}");
    assert!(to.ends_with("&state=s+1"), "{to}");
    let query = to.split_once('?').unwrap().1;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "code").unwrap().1.into_owned()
}

async fn get_token(sim: &RunningSim, app_key: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let secret = sim.sim.account(app_key).unwrap().app_secret;
    let mut p: BTreeMap<String, String> = BTreeMap::new();
    p.insert("client_id".into(), app_key.into());
    p.insert("client_secret".into(), secret);
    for (k, v) in extra {
        p.insert(k.to_string(), v.to_string());
    }
    let (status, body) = post(&sim.token_url(app_key), &p).await;
    (status, serde_json::from_str(&body).unwrap())
}

/// The authorization-code grant's parameters.
fn grant<'a>(code: &'a str, redirect_uri: &'a str) -> [(&'static str, &'a str); 4] {
    [
        ("grant_type", "authorization_code"),
        ("need_refresh_token", "true"),
        ("redirect_uri", redirect_uri),
        ("code", code),
    ]
}

/// An access token (with its refresh token) of the member who authorized `app_key`.
async fn member_token(sim: &RunningSim, app_key: &str) -> (String, String) {
    let code = authorize(sim, app_key).await;
    let (status, v) = get_token(sim, app_key, &grant(&code, REDIRECT)).await;
    assert_eq!(status, 200, "{v}");
    (v["access_token"].as_str().unwrap().into(), v["refresh_token"].as_str().unwrap().into())
}

fn gw(v: &Value) -> &str {
    v["error_code"].as_str().unwrap_or("")
}

fn id_of(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::Number(n) => n.to_string(),
        other => other.as_str().unwrap_or_default().to_string(),
    }
}

fn compact_time(ms: i64) -> String {
    sim1688::param2::dates::compact(ms)
}

fn truth_ids(sim: &RunningSim, member: &str) -> BTreeSet<String> {
    let t = sim.sim.truth(member).unwrap();
    t["items"].as_array().unwrap().iter().map(|i| i["item_id"].as_str().unwrap().to_string()).collect()
}

/// Every product of `[start, end)` in the member's shop, splitting a window in halves
/// while it holds more than one query reaches (50 pages of 20).
async fn list_window(sim: &RunningSim, token: &str, start: i64, end: i64, out: &mut Vec<Value>) {
    // Both bounds are inclusive on the wire.
    let (s, e) = (compact_time(start), compact_time(end - 1));
    let mut page = 1;
    loop {
        let page_no = page.to_string();
        let q = [
            ("pageNo", page_no.as_str()),
            ("pageSize", "20"),
            ("startModifyTime", s.as_str()),
            ("endModifyTime", e.as_str()),
            ("statusList", r#"["published"]"#),
            ("orderByCondition", "MODIFY_DATE"),
            ("orderByType", "ASC"),
        ];
        let (status, v) = call(sim, PRODUCT, "10000001", Some(token), &q).await;
        assert_eq!(status, 200, "{v}");
        let pr = &v["result"]["pageResult"];
        if page == 1 && pr["totalRecords"].as_u64().unwrap() > 1_000 {
            let mid = start + (end - start) / 2;
            Box::pin(list_window(sim, token, start, mid, out)).await;
            Box::pin(list_window(sim, token, mid, end, out)).await;
            return;
        }
        let Some(list) = pr["resultList"].as_array() else { return };
        out.extend(list.iter().cloned());
        page += 1;
    }
}

#[tokio::test]
async fn tokens_from_the_authorize_page_refresh_and_postpone() {
    let sim = start(200, no_rate_limit()).await;
    let first = sim.sim.shop_infos()[0].member_id.clone();

    let code = authorize(&sim, "10000003").await;
    let g = grant(&code, REDIRECT);
    let (status, v) = get_token(&sim, "10000003", &g).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["expires_in"], "36000", "expires_in is a string");
    assert_eq!(v["memberId"], first.as_str(), "the first shop's member clicks allow by default");
    assert!(v["aliId"].as_str().unwrap().bytes().all(|b| b.is_ascii_digit()));
    assert!(v["resource_owner"].as_str().unwrap().starts_with("shop"));
    let timeout = v["refresh_token_timeout"].as_str().unwrap();
    assert!(timeout.len() == 22 && timeout.ends_with("+0800"), "{timeout}");
    let (access, refresh) = (v["access_token"].as_str().unwrap(), v["refresh_token"].as_str().unwrap());

    // A code works once.
    let (status, again) = get_token(&sim, "10000003", &grant(&code, REDIRECT)).await;
    assert_eq!((status, again["error"].as_str()), (400, Some("invalid_grant")));

    // The refresh grant: a new access token, no new refresh token.
    let (status, r) =
        get_token(&sim, "10000003", &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(status, 200, "{r}");
    assert_ne!(r["access_token"], access);
    assert!(r.get("refresh_token").is_none(), "{r}");
    assert_eq!(r["memberId"], first.as_str());
    let fresh = r["access_token"].as_str().unwrap();

    // postponeToken: signed, with the access and the refresh token.
    let (status, p) = call(&sim, POSTPONE, "10000003", Some(fresh), &[("refresh_token", refresh)]).await;
    assert_eq!(status, 200, "{p}");
    let postponed = p["refresh_token"].as_str().unwrap();
    assert_ne!(postponed, refresh);
    let (status, _) =
        get_token(&sim, "10000003", &[("grant_type", "refresh_token"), ("refresh_token", postponed)]).await;
    assert_eq!(status, 200);

    // Wrong secret, a redirect_uri that is not the authorized one, an expired code.
    let mut p = BTreeMap::from([
        ("client_id".to_string(), "10000003".to_string()),
        ("client_secret".to_string(), "nope".to_string()),
        ("grant_type".to_string(), "refresh_token".to_string()),
        ("refresh_token".to_string(), refresh.to_string()),
    ]);
    let (status, _) = post(&sim.token_url("10000003"), &p).await;
    assert_eq!(status, 401);
    p.insert("client_secret".into(), "sim-secret-3".into());
    let (status, _) = post(&sim.token_url("10000001"), &p).await;
    assert_eq!(status, 401, "the app key of the URL must be the client_id");
    let code = authorize(&sim, "10000003").await;
    let (status, _) = get_token(&sim, "10000003", &grant(&code, "https://elsewhere.example/")).await;
    assert_eq!(status, 400);
    let code = authorize(&sim, "10000003").await;
    let mut limits = sim.sim.limits();
    limits.clock_offset_ms = 121_000;
    sim.sim.set_limits(limits.clone());
    let (status, _) = get_token(&sim, "10000003", &grant(&code, REDIRECT)).await;
    assert_eq!(status, 400, "a code lives 2 minutes");
    limits.clock_offset_ms = 0;
    sim.sim.set_limits(limits);

    // Who authorizes is configurable per app key.
    let second = sim.sim.shop_infos()[1].member_id.clone();
    let res = http()
        .put(format!("{}/_sim/param2", sim.base_url()))
        .body(json!({"authorize_member": {"10000003": second}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (access, _) = member_token(&sim, "10000003").await;
    let (_, v) = call(&sim, PRODUCT, "10000003", Some(&access), &[("pageSize", "1")]).await;
    let listed = id_of(&v["result"]["pageResult"]["resultList"][0], "productID");
    assert!(truth_ids(&sim, &second).contains(&listed), "{listed} is the second shop's");
    assert_eq!(v["result"]["pageResult"]["totalRecords"], 200);
}

#[tokio::test]
async fn product_list_pages_every_item_once_when_calm() {
    let sim = start(3_000, no_rate_limit()).await;
    let member = sim.sim.shop_infos()[0].member_id.clone();
    let (token, _) = member_token(&sim, "10000001").await;
    let now = sim.sim.now_ms();
    let mut products = Vec::new();
    let mut start = now - 4 * 365 * 86_400_000;
    while start < now + 1 {
        let end = (start + 30 * 86_400_000).min(now + 1);
        list_window(&sim, &token, start, end, &mut products).await;
        start = end;
    }
    let ids: Vec<String> = products.iter().map(|p| id_of(p, "productID")).collect();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), unique.len(), "no product twice");
    assert_eq!(unique, truth_ids(&sim, &member), "every on-sale product once");
    let counters = sim.sim.counters();
    assert!(counters.list_pages_distinct > 150, "param2 pages are booked like seed pages");
    assert_eq!(counters.list_pages_repeated, 0);
    for p in &products {
        assert_eq!(p["status"], "published");
        let t = p["lastUpdateTime"].as_str().unwrap();
        assert!(t.len() == 22 && t.ends_with("+0800") && t[..17].bytes().all(|b| b.is_ascii_digit()), "{t}");
        assert!(p.get("skuInfos").is_none(), "no needDetail, no SKUs");
    }

    // Without statusList, the delisted come too, as "expired".
    let delisted = sim
        .sim
        .mutate(&member, &Mutation { op: MutationOp::Delist, count: Some(4), item_ids: None })
        .unwrap()
        .item_ids;
    let (s, e) = (compact_time(now - 86_400_000), compact_time(sim.sim.now_ms() + 1));
    let window = [("startModifyTime", s.as_str()), ("endModifyTime", e.as_str())];
    let (_, all) = call(&sim, PRODUCT, "10000001", Some(&token), &window).await;
    let mut published = window.to_vec();
    published.push(("statusList", r#"["published"]"#));
    let (_, on_sale) = call(&sim, PRODUCT, "10000001", Some(&token), &published).await;
    let total = |v: &Value| v["result"]["pageResult"]["totalRecords"].as_u64().unwrap();
    assert_eq!(total(&all), total(&on_sale) + 4);
    let mut expired = window.to_vec();
    expired.push(("statusList", r#"["expired"]"#));
    let (_, gone) = call(&sim, PRODUCT, "10000001", Some(&token), &expired).await;
    let gone: BTreeSet<String> = gone["result"]["pageResult"]["resultList"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|p| assert_eq!(p["status"], "expired"))
        .map(|p| id_of(p, "productID"))
        .collect();
    assert_eq!(gone, delisted.into_iter().collect());
}

#[tokio::test]
async fn product_list_rules_and_traps() {
    let sim = start(1_500, Limits { stall_ms: 50, ..no_rate_limit() }).await;
    let member = sim.sim.shop_infos()[0].member_id.clone();
    let (token, _) = member_token(&sim, "10000001").await;
    let list = |q: Vec<(&'static str, String)>| {
        let sim = &sim;
        let token = token.clone();
        async move {
            let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
            call(sim, PRODUCT, "10000001", Some(&token), &q).await
        }
    };
    let now = sim.sim.now_ms();
    let week = || {
        vec![
            ("startModifyTime", compact_time(now - 7 * 86_400_000)),
            ("endModifyTime", compact_time(now + 1)),
        ]
    };

    // More than 1,000 matches in a window wider than 30 days: a stall, then HTTP 503.
    let (status, v) = list(vec![
        ("statusList", r#"["published"]"#.into()),
        ("startModifyTime", compact_time(now - 7_300 * 86_400_000)),
        ("endModifyTime", compact_time(now + 1)),
    ])
    .await;
    assert_eq!((status, gw(&v)), (503, "gw.ServiceUnavailable"));
    // The plain listing, without any time bound, is answered (what every ERP calls).
    let (status, v) = list(vec![("statusList", r#"["published"]"#.into())]).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["result"]["pageResult"]["totalRecords"].as_u64().unwrap() > 1_000);

    // The depth cap: page 51 is empty, the total stays honest.
    let mut q = week();
    q.push(("pageNo", "51".into()));
    let (_, v) = list(q).await;
    assert!(v["result"]["pageResult"].get("resultList").is_none(), "{v}");
    assert!(v["result"]["pageResult"]["totalRecords"].as_u64().unwrap() > 0);

    // Page size, dates and orders are checked; failures are business errors in `result`.
    for bad in [
        ("pageSize", "21"),
        ("pageSize", "0"),
        ("startModifyTime", "2024-01-01 00:00:00"),
        ("startModifyTime", "20240101000000000+0000"),
        ("orderByCondition", "PRICE"),
        ("statusList", "published"),
    ] {
        let mut q = week();
        q.push((bad.0, bad.1.into()));
        let (status, v) = list(q).await;
        assert_eq!(status, 200);
        assert_eq!(v["result"]["success"], false, "{bad:?}: {v}");
        assert!(v["result"]["message"].as_str().unwrap().starts_with(bad.0), "{v}");
    }

    // ID order, needDetail, productIds and categoryId.
    let mut q = week();
    q.extend([
        ("orderByCondition", "ID".into()),
        ("orderByType", "desc".into()),
        ("needDetail", "true".into()),
    ]);
    let (_, v) = list(q).await;
    let page = v["result"]["pageResult"]["resultList"].as_array().unwrap().clone();
    let ids: Vec<u64> = page.iter().map(|p| id_of(p, "productID").parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert!(page.iter().all(|p| p["skuInfos"].is_array()));
    let pick = format!("[{},{}]", ids[0], ids[1]);
    let (_, v) = list(vec![("productIds", pick)]).await;
    assert_eq!(v["result"]["pageResult"]["totalRecords"], 2);
    let cid = page[0]["categoryID"].to_string();
    let mut q = week();
    q.push(("categoryId", cid.clone()));
    let (_, v) = list(q).await;
    let in_cat = v["result"]["pageResult"]["resultList"].as_array().unwrap();
    assert!(!in_cat.is_empty() && in_cat.iter().all(|p| p["categoryID"] == page[0]["categoryID"]));

    // Tiers as startQuantity thresholds, against the seed face's wholesalePrice.
    let truth = sim.sim.truth(&member).unwrap();
    for p in &page {
        let id = id_of(p, "productID");
        let t = truth["items"].as_array().unwrap().iter().find(|i| i["item_id"] == id.as_str()).unwrap();
        let wholesale = t["wholesalePrice"].as_str().unwrap();
        let ranges = p["saleInfo"]["priceRanges"].as_array().unwrap();
        if wholesale.contains(':') {
            let expected: Vec<(String, String)> = wholesale
                .split(';')
                .map(|tier| {
                    let (range, price) = tier.split_once(':').unwrap();
                    (range.split('-').next().unwrap().to_string(), price.to_string())
                })
                .collect();
            let served: Vec<(String, String)> = ranges
                .iter()
                .map(|r| (id_of(r, "startQuantity"), r["price"].as_str().unwrap().to_string()))
                .collect();
            assert_eq!(served, expected, "{id}");
            assert_eq!(p["saleInfo"]["quoteType"], 0);
        }
        assert_eq!(p["skuInfos"].as_array().unwrap().len(), t["skus"].as_array().unwrap().len());
    }

    // Shifting pages: an item of page 1 modified meanwhile moves to the end of the window,
    // and the first item of page 2 moves onto page 1, where a paging client never looks.
    let asc = || {
        let mut q = week();
        q.push(("statusList", r#"["published"]"#.into()));
        q
    };
    let (_, p1) = list(asc()).await;
    let first_page: Vec<String> = p1["result"]["pageResult"]["resultList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| id_of(p, "productID"))
        .collect();
    let mut q2 = asc();
    q2.push(("pageNo", "2".into()));
    let (_, before) = list(q2.clone()).await;
    let boundary = id_of(&before["result"]["pageResult"]["resultList"][0], "productID");
    sim.sim
        .mutate(
            &member,
            &Mutation { op: MutationOp::Update, count: None, item_ids: Some(vec![first_page[0].clone()]) },
        )
        .unwrap();
    let (_, after) = list(q2).await;
    let second_page: Vec<String> = after["result"]["pageResult"]["resultList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| id_of(p, "productID"))
        .collect();
    assert!(!first_page.contains(&boundary) && !second_page.contains(&boundary), "{boundary} slipped past");

    // Wrong types, as on the seed face.
    let mut quirks = sim.sim.quirks();
    quirks.wrong_types_share = 1.0;
    sim.sim.set_quirks(quirks);
    let (_, v) = list(week()).await;
    let p = &v["result"]["pageResult"]["resultList"][0];
    assert!(p["productID"].is_string() && p["saleInfo"]["amountOnSale"].is_string(), "{p}");
}

#[tokio::test]
async fn seller_offers_sweep_and_offer_details() {
    let sim = start(450, no_rate_limit()).await;
    let shop = &sim.sim.shop_infos()[1];
    let (member, open_id) = (shop.member_id.clone(), shop.seller_open_id.clone());
    assert!(open_id.starts_with("BBB") && !open_id.contains(&member));
    let shops: Value =
        http().get(format!("{}/_sim/shops", sim.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(shops[1]["seller_open_id"], open_id.as_str(), "the admin API shows it");

    let param = |page: u32, size: u32| {
        json!({"sellerOpenId": open_id, "beginPage": page, "pageSize": size, "country": "en"}).to_string()
    };
    let mut seen = Vec::new();
    for page in 1.. {
        let (status, v) =
            call(&sim, OFFERS, "10000001", None, &[("offerQueryParam", &param(page, 20))]).await;
        assert_eq!(status, 200, "{v}");
        let r = &v["result"]["result"];
        assert_eq!((r["totalRecords"].as_u64(), r["totalPage"].as_u64()), (Some(450), Some(23)), "{v}");
        assert_eq!((r["pageSize"].as_u64(), r["currentPage"].as_u64()), (Some(20), Some(u64::from(page))));
        let data = r["data"].as_array().unwrap();
        if data.is_empty() {
            break;
        }
        for o in data {
            let d = o["modifyDate"].as_str().unwrap();
            assert!(d.len() == 19 && &d[4..5] == "-" && &d[10..11] == " ", "{d}");
            assert!(o["createDate"].as_str().unwrap() <= d);
            assert!(o["priceInfo"]["price"].as_str().unwrap().contains('.'));
            seen.push(id_of(o, "offerId"));
        }
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), unique.len());
    assert_eq!(unique, truth_ids(&sim, &member));

    // The offer list's own errors: no country, too big a page, an unknown seller.
    let no_country = json!({"sellerOpenId": open_id, "beginPage": 1, "pageSize": 20}).to_string();
    let (_, v) = call(&sim, OFFERS, "10000001", None, &[("offerQueryParam", &no_country)]).await;
    assert_eq!((v["success"].as_bool(), v["code"].as_str()), (Some(false), Some("ParamMissing")), "{v}");
    let (_, v) = call(&sim, OFFERS, "10000001", None, &[("offerQueryParam", &param(1, 21))]).await;
    assert_eq!(v["success"], false);
    let stranger =
        json!({"sellerOpenId": "BBBnobody", "beginPage": 1, "pageSize": 20, "country": "en"}).to_string();
    let (status, v) = call(&sim, OFFERS, "10000001", None, &[("offerQueryParam", &stranger)]).await;
    assert_eq!((status, v), (200, json!({"code": 0, "message": "seller not found"})));
    let (status, v) = call(&sim, OFFERS, "10000001", None, &[]).await;
    assert_eq!((status, gw(&v)), (400, "gw.ParamMissing"));

    // Details: the seller's open id, SKUs and price ranges as the truth has them.
    let truth = sim.sim.truth(&member).unwrap();
    let with_skus = truth["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| !i["skus"].as_array().unwrap().is_empty())
        .unwrap();
    let id = with_skus["item_id"].as_str().unwrap();
    let detail_param = json!({"offerId": id.parse::<u64>().unwrap(), "country": "en"}).to_string();
    let (status, v) = call(&sim, DETAIL, "10000001", None, &[("offerDetailParam", &detail_param)]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["success"], true);
    let d = &v["result"]["result"];
    assert_eq!(d["sellerOpenId"], open_id.as_str());
    assert_eq!(id_of(d, "offerId"), id);
    let skus = d["productSkuInfos"].as_array().unwrap();
    assert_eq!(skus.len(), with_skus["skus"].as_array().unwrap().len());
    for (served, truth_sku) in skus.iter().zip(with_skus["skus"].as_array().unwrap()) {
        assert_eq!(id_of(served, "skuId"), truth_sku["sku_id"].as_str().unwrap());
        assert_eq!(served["price"], truth_sku["price"]);
        assert_eq!(served["specId"].as_str().unwrap().len(), 32);
        let spec = truth_sku["spec"].as_str().unwrap();
        let attrs: Vec<String> = served["skuAttributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{}:{}", a["attributeName"].as_str().unwrap(), a["value"].as_str().unwrap()))
            .collect();
        assert_eq!(attrs.join(";"), spec);
    }
    assert!(d["productSaleInfo"]["priceRangeList"].is_array());

    // An unknown offer and a delisted one fail in two different shapes.
    let unknown = json!({"offerId": 1, "country": "en"}).to_string();
    let (status, v) = call(&sim, DETAIL, "10000001", None, &[("offerDetailParam", &unknown)]).await;
    assert_eq!((status, &v["success"], v["errorCode"].is_string()), (200, &json!(false), true), "{v}");
    sim.sim
        .mutate(
            &member,
            &Mutation { op: MutationOp::Delist, count: None, item_ids: Some(vec![id.to_string()]) },
        )
        .unwrap();
    let (status, v) = call(&sim, DETAIL, "10000001", None, &[("offerDetailParam", &detail_param)]).await;
    assert_eq!(
        (status, &v["result"]["success"], v["result"]["code"].is_string()),
        (200, &json!(false), true)
    );
    let no_country = json!({"offerId": 1}).to_string();
    let (_, v) = call(&sim, DETAIL, "10000001", None, &[("offerDetailParam", &no_country)]).await;
    assert_eq!(v["code"], "ParamMissing");
}

#[tokio::test]
async fn gateway_errors() {
    let sim = start(100, no_rate_limit()).await;
    let detail = json!({"offerId": 1, "country": "en"}).to_string();
    let d = [("offerDetailParam", detail.as_str())];

    let (status, v) = call(&sim, DETAIL, "99999999", None, &d).await;
    assert_eq!((status, gw(&v)), (400, "gw.AppKeyNotFound"));
    assert!(v["error_message"].is_string() && v["request_id"].is_string() && v["exception"].is_string());

    let mut forged = d.to_vec();
    forged.push(("_aop_signature", "33E54F4F7B989E3E0E912D3FBD2F1A03CA7CCE88"));
    let (status, v) = call(&sim, DETAIL, "10000001", None, &forged).await;
    assert_eq!((status, gw(&v)), (400, "gw.SignatureInvalid"));

    // A signature over the keys sorted, not the joined strings: wrong as soon as one key is
    // a prefix of another.
    let secret = "sim-secret-1";
    let path = format!("param2/1/{}/{}/10000001", OFFERS.0, OFFERS.1);
    let ts = sim1688::time::wall_ms().to_string();
    // `page` + `z` sorts after `pageSize` + `20`, though the key `page` sorts first.
    let (page, page_size) = ("z", "20");
    let mut naive = format!("{path}_aop_timestamp{ts}");
    for (k, v) in [("offerQueryParam", "{}"), ("page", page), ("pageSize", page_size)] {
        naive.push_str(&format!("{k}{v}"));
    }
    let naive_sig = hex::encode_upper(sim1688::param2::sign::hmac_sha1(secret.as_bytes(), naive.as_bytes()));
    let p = BTreeMap::from([
        ("_aop_timestamp".to_string(), ts.clone()),
        ("offerQueryParam".to_string(), "{}".to_string()),
        ("page".to_string(), page.to_string()),
        ("pageSize".to_string(), page_size.to_string()),
        ("_aop_signature".to_string(), naive_sig),
    ]);
    let (status, body) = post(&sim.param2_url(OFFERS.0, OFFERS.1, "10000001"), &p).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("gw.SignatureInvalid"));

    let seconds = (sim1688::time::wall_ms() / 1000).to_string();
    let mut ten = d.to_vec();
    ten.push(("_aop_timestamp", &seconds));
    let (status, v) = call(&sim, DETAIL, "10000001", None, &ten).await;
    assert_eq!((status, gw(&v)), (400, "gw.ParamInvalid"), "10-digit timestamps are refused");

    let (status, v) =
        call(&sim, ("com.alibaba.product", "alibaba.product.nothing"), "10000001", None, &[]).await;
    assert_eq!((status, gw(&v)), (400, "gw.APIUnsupported"));

    // No permission: the seed face's no-permission account, and a test key on cross-border.
    let (status, v) = call(&sim, DETAIL, "10000006", None, &d).await;
    assert_eq!((status, gw(&v)), (400, "gw.APIACLDecline"));
    let (status, v) = call(&sim, DETAIL, "10000004", None, &d).await;
    assert_eq!((status, gw(&v)), (400, "gw.APIACLDecline"));
    let res = http()
        .put(format!("{}/_sim/param2", sim.base_url()))
        .body(r#"{"test_keys_cross_border": true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, v) = call(&sim, DETAIL, "10000004", None, &d).await;
    assert_eq!((status, v["success"].as_bool()), (200, Some(false)), "allowed now; the offer is unknown");

    // Tokens: list.get acts for a member; an OAuth account needs a token everywhere.
    let (status, v) = call(&sim, PRODUCT, "10000001", None, &[]).await;
    assert_eq!((status, v["error_code"].as_str()), (401, Some("401")));
    assert_eq!(v["exception"], "Request need user authorized");
    let (status, _) = call(&sim, DETAIL, "10000003", None, &d).await;
    assert_eq!(status, 401);
    let (token, _) = member_token(&sim, "10000003").await;
    let (status, _) = call(&sim, DETAIL, "10000003", Some(&token), &d).await;
    assert_eq!(status, 200);
    http().post(format!("{}/_sim/tokens/expire", sim.base_url())).send().await.unwrap();
    let (status, _) = call(&sim, DETAIL, "10000003", Some(&token), &d).await;
    assert_eq!(status, 401, "an expired token");
    let counters = sim.sim.counters();
    assert!(counters.methods.keys().any(|k| k.starts_with("param2:")), "{:?}", counters.methods.keys());
}

#[tokio::test]
async fn one_budget_per_app_key_whatever_the_face() {
    let sim = start(50, Limits::default()).await;
    let detail = json!({"offerId": 1, "country": "en"}).to_string();
    let d = [("offerDetailParam", detail.as_str())];

    // The rate window: 5 calls a second per key, counted across both faces.
    let seed = |sim: &RunningSim| {
        let mut p: BTreeMap<String, String> = BTreeMap::from([
            ("app_key".to_string(), "10000001".to_string()),
            ("method".to_string(), "alibaba.seller.cats.list.get".to_string()),
            ("member_id".to_string(), sim.sim.shop_infos()[0].member_id.clone()),
            ("timestamp".to_string(), sim1688::time::wall_ms().to_string()),
        ]);
        let s = sim1688::sign::sign(&p, "sim-secret-1");
        p.insert("sign".into(), s);
        let url = format!("{}?{}", sim.gateway_url(), form(&p));
        async move { http().get(url).send().await.unwrap().status().as_u16() }
    };
    for _ in 0..3 {
        assert_eq!(seed(&sim).await, 200);
    }
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (status, v) = call(&sim, DETAIL, "10000001", None, &d).await;
        statuses.push((status, gw(&v).to_string()));
    }
    let limited = statuses.iter().filter(|s| s.1 == "gw.QosAppFrequencyLimit").count();
    assert_eq!(limited, 2, "{statuses:?}");
    assert!(statuses.iter().all(|s| s.1.is_empty() || s.0 == 400));

    // The daily quota: failed calls count too, on either face.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let mut limits = sim.sim.limits();
    limits.rate_per_sec = 0;
    limits.quota_test = 3;
    sim.sim.set_limits(limits);
    sim.sim.traffic().reset_quota();
    let mut forged = d.to_vec();
    forged.push(("_aop_signature", "00"));
    for _ in 0..3 {
        let (_, v) = call(&sim, DETAIL, "10000004", None, &forged).await;
        assert_eq!(gw(&v), "gw.SignatureInvalid");
    }
    let (status, v) = call(&sim, DETAIL, "10000004", None, &d).await;
    assert_eq!((status, gw(&v)), (400, "gw.NoUsageLeftError"));
    assert_eq!(sim.sim.counters().accounts["10000004"].quota_used_today, 3);
}

#[tokio::test]
async fn faults_reach_the_param2_face() {
    let sim = start(50, no_rate_limit()).await;
    let detail = json!({"offerId": 1, "country": "en"}).to_string();
    let d = [("offerDetailParam", detail.as_str())];
    let set = |f: Faults| sim.sim.set_faults(f);

    set(Faults { html: 1.0, ..Faults::none() });
    let (status, v) = call(&sim, DETAIL, "10000001", None, &d).await;
    assert!(matches!(status, 502 | 503) && v.is_null(), "an HTML page");

    set(Faults { truncated: 1.0, ..Faults::none() });
    let secret = "sim-secret-1";
    let mut p = BTreeMap::from([
        ("_aop_timestamp".to_string(), sim1688::time::wall_ms().to_string()),
        ("offerDetailParam".to_string(), detail.clone()),
    ]);
    let s = signature(&format!("param2/1/{}/{}/10000001", DETAIL.0, DETAIL.1), &p, secret);
    p.insert("_aop_signature".into(), s);
    let (status, body) = post(&sim.param2_url(DETAIL.0, DETAIL.1, "10000001"), &p).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err(), "cut off: {body}");

    set(Faults { busy: 1.0, ..Faults::none() });
    let (status, v) = call(&sim, DETAIL, "10000001", None, &d).await;
    assert_eq!((status, gw(&v)), (503, "gw.ServiceUnavailable"));

    set(Faults { hang: 1.0, hang_ms: 300, ..Faults::none() });
    let started = std::time::Instant::now();
    let (status, _) = call(&sim, DETAIL, "10000001", None, &d).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
}

#[tokio::test]
async fn a_member_without_a_shop_lists_nothing() {
    let sim = start(20, no_rate_limit()).await;
    let shop = sim.sim.create_shop(&NewShop {
        items: 30,
        categories: None,
        tie: None,
        history_days: 10,
        skus: None,
    });
    let settings = json!({"authorize_member": {"10000002": "6999999999999999", "10000001": shop.member_id}});
    http().put(format!("{}/_sim/param2", sim.base_url())).body(settings.to_string()).send().await.unwrap();
    let (token, _) = member_token(&sim, "10000002").await;
    let (status, v) = call(&sim, PRODUCT, "10000002", Some(&token), &[]).await;
    assert_eq!((status, &v["result"]["pageResult"]["totalRecords"]), (200, &json!(0)));
    let (token, _) = member_token(&sim, "10000001").await;
    let (_, v) = call(&sim, PRODUCT, "10000001", Some(&token), &[]).await;
    assert_eq!(v["result"]["pageResult"]["totalRecords"], 30, "a shop created later");
}

#[tokio::test]
async fn the_binary_prints_the_param2_face_and_takes_who_authorizes() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Command::new(env!("CARGO_BIN_EXE_sim1688"))
        .args(["--listen", "127.0.0.1:0", "--shops", "1", "--items", "50", "--churn", "0"])
        .args(["--authorize-member", "10000002=6000000000000042"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("sim1688 starts");
    let mut child = Kill(child);
    let mut out = BufReader::new(child.0.stdout.take().expect("stdout"));
    let lines: Vec<String> = out.by_ref().lines().take(6).map_while(Result::ok).collect();
    // Keep reading: a closed pipe would fail the simulator's next line of output.
    std::thread::spawn(move || out.lines().map_while(Result::ok).for_each(drop));
    let base = lines[0].strip_prefix("listening ").expect("the address").to_string();
    assert!(lines.iter().any(|l| l.starts_with("param2 ") && l.contains("/openapi/param2/1/")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("shop ") && l.contains("seller_open_id=BBB")), "{lines:?}");
    let settings: Value =
        http().get(format!("{base}/_sim/param2")).send().await.unwrap().json().await.unwrap();
    assert_eq!(settings["authorize_member"]["10000002"], "6000000000000042");
    assert_eq!(settings["product_list_max_page_size"], 20);
}
