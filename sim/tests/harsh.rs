//! The harsher catalogue (issue 11): background churn, SKU-only changes, silent delistings,
//! the bulk import in one category and stray categories out of reach, wrong JSON types and
//! garbled items, each checked over loopback with raw signed requests.

use serde_json::{json, Value};
use sim1688::admin::{Mutation, MutationOp, NewShop};
use sim1688::sign::sign;
use sim1688::{Faults, Limits, Quirks, RunningSim, Sim, SimSpec};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn spec(items: usize) -> SimSpec {
    SimSpec {
        seed: 13,
        shops: 1,
        items,
        limits: Limits { rate_per_sec: 0, ..Limits::default() },
        faults: Faults::none(),
    }
}

async fn start(items: usize, quirks: Quirks) -> RunningSim {
    Sim::start_with(spec(items), quirks, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

fn member(sim: &RunningSim) -> String {
    sim.sim.shop_infos()[0].member_id.clone()
}

async fn call(sim: &RunningSim, extra: &[(&str, &str)]) -> Value {
    let secret = sim.sim.account("10000001").unwrap().app_secret;
    let mut p: BTreeMap<String, String> = BTreeMap::new();
    p.insert("app_key".into(), "10000001".into());
    p.insert("timestamp".into(), sim1688::time::wall_ms().to_string());
    for (k, v) in extra {
        p.insert(k.to_string(), v.to_string());
    }
    let s = sign(&p, &secret);
    p.insert("sign".into(), s);
    let res = reqwest::Client::new().get(sim.gateway_url()).query(&p).send().await.unwrap();
    res.json().await.unwrap_or(Value::Null)
}

async fn admin(sim: &RunningSim, method: &str, path: &str, body: Option<Value>) -> Value {
    let http = reqwest::Client::new();
    let url = format!("{}{path}", sim.base_url());
    let req = match method {
        "POST" => http.post(url).json(&body.unwrap_or(json!({}))),
        "PUT" => http.put(url).json(&body.unwrap_or(json!({}))),
        _ => http.get(url),
    };
    let res = req.send().await.unwrap();
    assert!(res.status().is_success(), "{method} {path}: {}", res.status());
    res.json().await.unwrap_or(Value::Null)
}

const FIELDS: &str =
    "title,cid,wholesalePrice,channelPrice,moq,sales,stock,skuIds,modified_time,status,pic_url,detail_url";

/// Every page of a shop's on-sale (or all) items in one window, as the list call serves them.
async fn list_all(sim: &RunningSim, member: &str, start: i64, end: i64, offline: bool) -> Vec<Value> {
    let (s, e) = (start.to_string(), end.to_string());
    let mut out = Vec::new();
    for page in 1..=50 {
        let page = page.to_string();
        let v = call(
            sim,
            &[
                ("method", "alibaba.seller.items.list.get"),
                ("member_id", member),
                ("start_time", &s),
                ("end_time", &e),
                ("pageSize", "40"),
                ("pageNum", &page),
                ("fields", FIELDS),
                ("offline", if offline { "true" } else { "false" }),
            ],
        )
        .await;
        let items =
            v["seller_items_list_get_response"]["items"]["item"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            break;
        }
        out.extend(items);
    }
    out
}

fn id_of(v: &Value) -> String {
    match &v["item_id"] {
        Value::Number(n) => n.to_string(),
        other => other.as_str().unwrap_or_default().to_string(),
    }
}

fn truth(sim: &RunningSim, member: &str) -> Value {
    sim.sim.truth(member).unwrap()
}

fn truth_item(t: &Value, id: &str) -> Option<Value> {
    t["items"].as_array().unwrap().iter().find(|i| i["item_id"] == id).cloned()
}

fn mutate(sim: &RunningSim, member: &str, op: MutationOp, ids: &[String]) -> Vec<String> {
    sim.sim.mutate(member, &Mutation { op, count: None, item_ids: Some(ids.to_vec()) }).unwrap().item_ids
}

#[tokio::test]
async fn churn_runs_by_default_logs_every_change_and_stops_on_request() {
    assert!(Quirks::default().churn_per_min > 0.0, "churn is on by default");
    // A fast churn so the test needs under a second of it.
    let sim = start(500, Quirks { churn_per_min: 6_000.0, ..Quirks::default() }).await;
    let m = member(&sim);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let report = admin(&sim, "GET", "/_sim/churn", None).await;
    let made = report["changes"].as_u64().unwrap();
    assert!(made >= 20, "{made} churn changes in 0.8 s at 100/s");
    let log = report["log"].as_array().unwrap();
    assert_eq!(log.len() as u64, made);
    for e in log {
        assert_eq!(e["member_id"], m.as_str());
        assert!(e["at_ms"].as_i64().unwrap() > 1_600_000_000_000);
        assert!(e["item_id"].as_str().unwrap().parse::<u64>().is_ok());
    }
    // An update's item carries the logged time as its modified_time (unless changed since).
    let t = truth(&sim, &m);
    let last_update = log.iter().rev().find(|e| e["kind"] == "update").expect("an update in the mix");
    let later = log.iter().filter(|e| {
        e["item_id"] == last_update["item_id"] && e["seq"].as_u64() > last_update["seq"].as_u64()
    });
    if later.count() == 0 {
        let item = truth_item(&t, last_update["item_id"].as_str().unwrap()).expect("updated item on sale");
        assert_eq!(item["modified_time"], last_update["at_ms"]);
    }
    // `after` returns only the newer entries.
    let after = admin(&sim, "GET", &format!("/_sim/churn?after={}", made - 3), None).await;
    assert!(after["log"].as_array().unwrap().iter().all(|e| e["seq"].as_u64().unwrap() > made - 3));

    let stopped = admin(&sim, "POST", "/_sim/churn", Some(json!({"per_minute": 0}))).await;
    assert_eq!(stopped["per_minute"], 0.0);
    let n0 = stopped["changes"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let n1 = admin(&sim, "GET", "/_sim/churn", None).await["changes"].as_u64().unwrap();
    assert_eq!(n0, n1, "no change after the churn was stopped");
    assert_eq!(sim.sim.truth(&m), sim.sim.truth(&m));
    let bad = reqwest::Client::new()
        .post(format!("{}/_sim/churn", sim.base_url()))
        .json(&json!({"per_minute": -1}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn churn_follows_the_seed_and_mixes_every_kind() {
    let run = || {
        let sim =
            Sim::with_quirks(spec(2_000), Quirks { silent_delist_share: 0.5, ..Quirks::calm_catalogue() });
        for _ in 0..400 {
            sim.churn_once();
        }
        let r = sim.churn_report(0);
        (r.log.iter().map(|e| (e.item_id.clone(), e.kind)).collect::<Vec<_>>(), r.by_kind)
    };
    let (a, kinds) = run();
    let (b, _) = run();
    assert_eq!(a, b, "the same seed makes the same changes");
    let names: BTreeSet<String> = kinds.keys().map(|k| format!("{k:?}")).collect();
    for k in ["Update", "Touch", "Sku", "Create", "Delist", "DelistSilent"] {
        assert!(names.contains(k), "{k} missing from {names:?}");
    }
}

#[tokio::test]
async fn sku_only_change_leaves_every_list_field_alone() {
    let sim = start(300, Quirks::calm_catalogue()).await;
    let m = member(&sim);
    let (now, month) = (sim1688::time::wall_ms() + 60_000, 29 * 86_400_000);
    let before = list_all(&sim, &m, now - month, now, false).await;
    let done = sim.sim.mutate(&m, &Mutation { op: MutationOp::Sku, count: Some(5), item_ids: None }).unwrap();
    assert_eq!(done.item_ids.len(), 5);
    let after = list_all(&sim, &m, now - month, now, false).await;
    assert_eq!(before, after, "the list call shows nothing of a SKU change");
    let old = truth(&sim, &m);
    for id in &done.item_ids {
        let v = call(&sim, &[("method", "alibaba.item.get"), ("item_id", id)]).await;
        assert!(v["item_get_response"]["item"]["skus"].as_array().is_some_and(|s| !s.is_empty()));
    }
    // Against the truth before: exactly one SKU of each item differs.
    let more = sim
        .sim
        .mutate(&m, &Mutation { op: MutationOp::Sku, count: None, item_ids: Some(done.item_ids.clone()) });
    let new = truth(&sim, &m);
    assert_eq!(more.unwrap().item_ids, done.item_ids);
    for id in &done.item_ids {
        let (a, b) = (truth_item(&old, id).unwrap(), truth_item(&new, id).unwrap());
        let diff =
            a["skus"].as_array().unwrap().iter().zip(b["skus"].as_array().unwrap()).filter(|(x, y)| x != y);
        assert_eq!(diff.count(), 1, "item {id}");
        assert_eq!(a["modified_time"], b["modified_time"]);
    }
    // An item without SKUs is skipped.
    let bare =
        old["items"].as_array().unwrap().iter().find(|i| i["skus"].as_array().is_some_and(Vec::is_empty));
    if let Some(bare) = bare {
        assert!(mutate(&sim, &m, MutationOp::Sku, &[id_of(bare)]).is_empty());
    }
}

#[tokio::test]
async fn silent_delisting_keeps_modified_time() {
    let sim = start(200, Quirks::calm_catalogue()).await;
    let m = member(&sim);
    let t = truth(&sim, &m);
    let items = t["items"].as_array().unwrap();
    let (quiet, loud) = (id_of(&items[10]), id_of(&items[20]));
    let quiet_ms = items[10]["modified_time"].as_i64().unwrap();
    assert_eq!(mutate(&sim, &m, MutationOp::DelistSilent, std::slice::from_ref(&quiet)), vec![quiet.clone()]);
    assert_eq!(mutate(&sim, &m, MutationOp::Delist, std::slice::from_ref(&loud)), vec![loud.clone()]);
    let t = truth(&sim, &m);
    assert!(truth_item(&t, &quiet).is_none() && truth_item(&t, &loud).is_none());
    // With offline=true the silent one is where it was, the plain one moved to now.
    let now = sim1688::time::wall_ms() + 60_000;
    let all = list_all(&sim, &m, quiet_ms, quiet_ms + 1, true).await;
    let q = all.iter().find(|i| id_of(i) == quiet).expect("silently delisted item in its old place");
    assert_eq!(q["status"], "offline");
    let recent = list_all(&sim, &m, now - 120_000, now, true).await;
    assert!(recent.iter().any(|i| id_of(i) == loud), "a plain delisting moves modified_time");

    // Churn delistings: the share decides; 1.0 makes them all silent.
    let s = Sim::with_quirks(spec(1_000), Quirks { silent_delist_share: 1.0, ..Quirks::calm_catalogue() });
    for _ in 0..300 {
        s.churn_once();
    }
    let kinds = s.churn_report(0).by_kind;
    assert!(kinds.keys().all(|k| format!("{k:?}") != "Delist"), "{kinds:?}");
    assert!(kinds.keys().any(|k| format!("{k:?}") == "DelistSilent"), "{kinds:?}");
}

#[tokio::test]
async fn a_bulk_import_in_one_category_and_stray_categories_are_out_of_reach() {
    let sim = start(10, Quirks::calm_catalogue()).await;
    let shop = sim.sim.create_shop(&NewShop {
        items: 20_000,
        categories: Some(12),
        tie: None,
        history_days: 400,
        skus: Some([0, 1]),
    });
    let m = shop.member_id;
    let t = truth(&sim, &m);
    let items = t["items"].as_array().unwrap();
    let cats: BTreeSet<String> = {
        let v = call(&sim, &[("method", "alibaba.seller.cats.list.get"), ("member_id", &m)]).await;
        v["seller_cats_list_get_response"]["seller_cats"]["seller_cat"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["cid"].as_str().unwrap().to_string())
            .collect()
    };
    // More than 2,000 items on one millisecond of one category.
    let mut groups: BTreeMap<(i64, String), Vec<String>> = BTreeMap::new();
    for i in items {
        groups
            .entry((i["modified_time"].as_i64().unwrap(), i["cid"].as_str().unwrap().into()))
            .or_default()
            .push(id_of(i));
    }
    let ((ms, cid), big) = groups.iter().find(|(_, v)| v.len() > 2_000).expect("a one-category bulk import");
    assert!(cats.contains(cid));
    // Stray categories: a few items (0.5%) under cids the seller does not list.
    let stray = items.iter().filter(|i| !cats.contains(i["cid"].as_str().unwrap())).count();
    assert!((50..=100).contains(&stray), "{stray} items under unlisted categories");

    let u = admin(&sim, "GET", &format!("/_sim/shops/{m}/unreachable"), None).await;
    assert_eq!(u["reach"], 2_000);
    let lost: BTreeSet<String> =
        u["item_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(u["count"].as_u64(), Some(lost.len() as u64));
    assert_eq!(t["unreachable"].as_array().unwrap().len(), lost.len(), "the truth says the same");
    assert!(lost.iter().any(|id| big.contains(id)), "some of the one-category import is lost");
    assert!(
        lost.iter().any(|id| items
            .iter()
            .any(|i| i["item_id"] == id.as_str() && !cats.contains(i["cid"].as_str().unwrap()))),
        "some stray-category items on the other bulk import are lost"
    );
    // The one-category window's 50 pages and its volume sort miss exactly the lost ones.
    let (s, e) = (ms.to_string(), (ms + 1).to_string());
    let mut seen = BTreeSet::new();
    for sort in ["modified_asc", "volume_desc"] {
        for page in 1..=51 {
            let page = page.to_string();
            let v = call(
                &sim,
                &[
                    ("method", "alibaba.seller.items.list.get"),
                    ("member_id", &m),
                    ("start_time", &s),
                    ("end_time", &e),
                    ("cid", cid),
                    ("pageSize", "40"),
                    ("pageNum", &page),
                    ("sortType", sort),
                ],
            )
            .await;
            let r = &v["seller_items_list_get_response"];
            assert_eq!(r["total_results"].as_u64(), Some(big.len() as u64));
            seen.extend(r["items"]["item"].as_array().cloned().unwrap_or_default().iter().map(id_of));
        }
    }
    let missed: BTreeSet<String> = big.iter().filter(|id| !seen.contains(*id)).cloned().collect();
    assert!(!missed.is_empty());
    assert!(
        missed.iter().all(|id| lost.contains(id)),
        "every item the queries miss is listed as unreachable"
    );
    assert!(
        lost.iter().filter(|id| big.contains(*id)).all(|id| missed.contains(id)),
        "and nothing else of it"
    );

    // Below 20,000 items there is no one-category import.
    let small = sim.sim.create_shop(&NewShop {
        items: 12_000,
        categories: Some(12),
        tie: None,
        history_days: 400,
        skus: Some([0, 1]),
    });
    let st = truth(&sim, &small.member_id);
    let mut per: BTreeMap<(i64, String), usize> = BTreeMap::new();
    for i in st["items"].as_array().unwrap() {
        *per.entry((i["modified_time"].as_i64().unwrap(), i["cid"].as_str().unwrap().into())).or_default() +=
            1;
    }
    assert!(per.values().all(|&n| n <= 2_000));
}

#[tokio::test]
async fn some_items_come_with_wrong_but_readable_types() {
    let sim = start(2_000, Quirks::calm_catalogue()).await;
    let m = member(&sim);
    let t = truth(&sim, &m);
    let wrong: BTreeSet<String> =
        t["wrong_types"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert!((20..=110).contains(&wrong.len()), "{} of 2,000 items with wrong types", wrong.len());
    let now = sim1688::time::wall_ms() + 60_000;
    let mut served = 0;
    let mut end = now;
    // Walk back in 30-day windows far enough to see a few hundred items.
    while served < 400 {
        for i in list_all(&sim, &m, end - 29 * 86_400_000, end, false).await {
            served += 1;
            let id = id_of(&i);
            if wrong.contains(&id) {
                assert!(i["item_id"].is_u64(), "{i}");
                for f in ["moq", "stock", "sales"] {
                    let s = i[f].as_str().unwrap_or_else(|| panic!("{f} of {id} is a string: {i}"));
                    let right = truth_item(&t, &id).unwrap()[f].clone();
                    assert_eq!(s.parse::<u64>().ok(), right.as_u64(), "{f} of {id} reads right");
                }
            } else {
                assert!(i["item_id"].is_string() && i["moq"].is_u64() && i["stock"].is_u64(), "{i}");
            }
        }
        end -= 29 * 86_400_000;
    }
    // The truth shows the right types for every item.
    assert!(t["items"].as_array().unwrap().iter().all(|i| i["item_id"].is_string() && i["stock"].is_u64()));
    admin(&sim, "PUT", "/_sim/quirks", Some(json!({"wrong_types_share": 0.0}))).await;
    assert!(truth(&sim, &m)["wrong_types"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn garbled_items_are_unreadable_until_updated() {
    let sim = start(300, Quirks { wrong_types_share: 0.0, ..Quirks::calm_catalogue() }).await;
    let m = member(&sim);
    let done =
        admin(&sim, "POST", &format!("/_sim/shops/{m}/mutate"), Some(json!({"op": "garble", "count": 30})))
            .await;
    let ids: Vec<String> =
        done["item_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 30);
    let t = truth(&sim, &m);
    let garbled: BTreeSet<String> =
        t["garbled"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(garbled, ids.iter().cloned().collect());
    // Each garbled item has one unreadable field, in the truth and on the wire alike.
    let unreadable = |i: &Value| {
        i["moq"].is_string()
            || i["modified_time"].is_string()
            || i["wholesalePrice"].as_str().is_some_and(|p| p.contains('元'))
    };
    let mut forms = BTreeSet::new();
    for id in &ids {
        let ti = truth_item(&t, id).unwrap();
        assert!(unreadable(&ti), "{ti}");
        forms.insert(if ti["moq"].is_string() {
            "moq"
        } else if ti["modified_time"].is_string() {
            "time"
        } else {
            "tiers"
        });
        let v = call(&sim, &[("method", "alibaba.item.get"), ("item_id", id)]).await;
        assert!(unreadable(&v["item_get_response"]["item"]), "{v}");
    }
    assert_eq!(forms.len(), 3, "all three forms among 30 items: {forms:?}");
    // The list call serves them garbled too, in their place by the real time.
    let now = sim1688::time::wall_ms() + 60_000;
    let listed = list_all(&sim, &m, now - 120_000, now, false).await;
    assert_eq!(listed.iter().filter(|i| unreadable(i)).count(), 30);
    // An update makes an item readable again; a touch does not.
    assert_eq!(mutate(&sim, &m, MutationOp::Update, &ids[..10]).len(), 10);
    assert_eq!(mutate(&sim, &m, MutationOp::Touch, &ids[10..]).len(), 20);
    let t = truth(&sim, &m);
    assert_eq!(t["garbled"].as_array().unwrap().len(), 20);
    assert!(ids[..10].iter().all(|id| !unreadable(&truth_item(&t, id).unwrap())));
}

#[tokio::test]
async fn failed_calls_count_against_the_quota() {
    let sim = start(50, Quirks::calm_catalogue()).await;
    sim.sim.set_faults(Faults { busy: 1.0, ..Faults::none() });
    let m = member(&sim);
    for _ in 0..3 {
        let v = call(&sim, &[("method", "alibaba.seller.cats.list.get"), ("member_id", &m)]).await;
        assert_eq!(v["error_response"]["code"], 5002);
    }
    let c = sim.sim.counters();
    assert_eq!(c.accounts["10000001"].quota_used_today, 3, "5002 answers cost quota");
}
