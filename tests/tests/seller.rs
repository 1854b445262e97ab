//! Any seller's shop (`source = "seller"`) under `protocol = "param2"`, synced by the daemon
//! on its crons through sim1688's cross-border face: the first sweep makes a copy equal to
//! the simulator's truth; after a few updates, creates, delistings and removals the next
//! sweep emits exactly their events, and the simulator's counters show `queryProductDetail`
//! asked only for those offers while `querySellerOfferList` was swept whole.
//!
//! Quirks stay on (wrong JSON types included). Churn is off (`--churn 0`) because the test
//! expects the events of its own changes and no others, and counts detail calls exactly.

use serde_json::Value;
use shopsync_e2e::{wait_for, Setup, SimProc};
use std::collections::{BTreeMap, BTreeSet};

const ITEMS: u64 = 300;
const LIST: &str = "param2:com.alibaba.fenxiao.crossborder:product.search.querySellerOfferList";
const DETAIL: &str = "param2:com.alibaba.fenxiao.crossborder:product.search.queryProductDetail";

fn config(sim: &SimProc, member: &str, open_id: &str) -> String {
    format!(
        r#"
[daemon]
state_dir = "@DIR@/state"

[api]
protocol = "param2"
param2_root = "{base}/openapi/"
read_timeout = "2s"
max_attempts = 20

[pacing]
success_interval = "0ms"
failure_interval = "20ms"
throttled_interval = "100ms"
max_calls_per_sec = 300

[[accounts]]
name = "main"
app_key = "10000001"
app_secret_file = "@DIR@/secret"

[[shops]]
member_id = "{member}"
source = "seller"
seller_open_id = "{open_id}"
incremental = "*/4 * * * * *"
full = "0 0 3 * * *"

[[sinks]]
name = "events"
plugin = "jsonl"
start = "earliest"
config = {{ path = "@DIR@/events.jsonl" }}
"#,
        base = sim.base
    )
}

/// What the cross-border APIs can tell of an item: id, title, MOQ, stock, `modifyDate` (to
/// the second) and its SKUs' ids, prices and stock.
type Seen = (String, Option<u64>, Option<i64>, i64, Vec<(String, Option<String>, Option<i64>)>);

fn truth(sim: &SimProc, member: &str) -> BTreeMap<String, Seen> {
    let truth = sim.admin_get(&format!("/_sim/shops/{member}/truth"));
    // Items garbled through the admin API no client can read (none here; as `truth_md5s`).
    // Items no time window reaches are in: a sweep has no windows.
    let garbled: BTreeSet<&str> = truth["garbled"]
        .as_array()
        .map_or_else(BTreeSet::new, |a| a.iter().filter_map(Value::as_str).collect());
    truth["items"]
        .as_array()
        .expect("truth items")
        .iter()
        .filter(|v| v["item_id"].as_str().is_none_or(|id| !garbled.contains(id)))
        .map(|v| {
            let it = shopsync_e2e::truth::expected_item(v).unwrap_or_else(|e| panic!("truth item {v}: {e}"));
            (it.item_id.clone(), seen(&it))
        })
        .collect()
}

fn seen(it: &shopsync::event::Item) -> Seen {
    let mut skus: Vec<_> = it
        .skus
        .iter()
        .map(|s| (s.sku_id.clone(), s.price.map(|p| p.normalize().to_string()), s.stock))
        .collect();
    skus.sort();
    (it.title.clone(), it.moq, it.stock, it.modified_ms / 1_000 * 1_000, skus)
}

fn exported(setup: &Setup, member: &str) -> BTreeMap<String, Seen> {
    let out = setup.shopsync(&["export", "--format", "jsonl", "--shop", member, "--config", "@CONFIG@"]);
    assert!(out.status.success(), "export: {}", shopsync_e2e::text(&out.stderr));
    shopsync_e2e::text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<shopsync::event::Item>(l).expect("an exported item"))
        .map(|i| (i.item_id.clone(), seen(&i)))
        .collect()
}

/// `(op, item_id)` of every event the sink holds.
fn events(setup: &Setup) -> Vec<(String, String)> {
    let body = std::fs::read_to_string(setup.path().join("events.jsonl")).unwrap_or_default();
    body.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|e| {
            (e["op"].as_str().unwrap_or("").to_string(), e["item_id"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

/// Calls of `method` the simulator answered with the offers or their "gone", once each: its
/// injected faults (busy, throttled, HTML, a body cut off) are retried by the client and are
/// not what the sweep asked for. A cut-off body is also booked as `ok`.
fn calls(sim: &SimProc, method: &str) -> u64 {
    let c = sim.admin_get("/_sim/counters");
    let outcomes = c["methods"][method].as_object().cloned().unwrap_or_default();
    let n = |k: &str| outcomes.get(k).and_then(Value::as_u64).unwrap_or(0);
    let gone: u64 = outcomes
        .iter()
        .filter(|(k, _)| k.starts_with("business:OFFER_"))
        .filter_map(|(_, v)| v.as_u64())
        .sum();
    (n("ok") + gone).saturating_sub(n("truncated"))
}

/// When the shop's last sweep (of either kind) finished, from `status --json`.
fn last_sweep(setup: &Setup) -> i64 {
    let Some(status) = setup.status_json() else { return 0 };
    let st = &status["shops"][0]["state"];
    ["last_full", "last_incremental"].iter().filter_map(|k| st[*k]["finished_ms"].as_i64()).max().unwrap_or(0)
}

fn mutate(sim: &SimProc, member: &str, op: &str, count: u64) -> BTreeSet<String> {
    let body = format!(r#"{{"op": "{op}", "count": {count}}}"#);
    let m = sim.admin_post(&format!("/_sim/shops/{member}/mutate"), &body);
    m["item_ids"].as_array().expect("item ids").iter().filter_map(|v| v.as_str().map(String::from)).collect()
}

#[test]
fn a_seller_shop_is_swept_and_only_changed_offers_are_read_in_full() {
    // Hung calls (a fault) end within the read timeout, so that each is answered once.
    let (sim, member) =
        SimProc::one_shop(ITEMS, &["--rate-limit", "500", "--hang-ms", "500", "--churn", "0"]);
    let open_id = sim.admin_get("/_sim/shops")[0]["seller_open_id"].as_str().expect("open id").to_string();
    let setup = Setup::new(&config(&sim, &member, &open_id));
    std::fs::write(setup.path().join("secret"), "sim-secret-1\n").expect("secret");
    let _daemon = setup.spawn_daemon();

    wait_for("the first sweep's creates to reach the sink", 90, || events(&setup).len() >= ITEMS as usize);
    let first = events(&setup);
    assert!(first.iter().all(|(op, _)| op == "create"), "a first copy is creates only");
    assert_eq!(first.iter().map(|e| &e.1).collect::<BTreeSet<_>>().len(), ITEMS as usize);
    let expected = truth(&sim, &member);
    assert_eq!(exported(&setup, &member), expected, "the copy equals the truth");
    let (pages, details) = (calls(&sim, LIST), calls(&sim, DETAIL));
    let all = sim.admin_get("/_sim/counters");
    assert_eq!(details, ITEMS, "the first copy reads every offer in full once: {}", all["methods"][DETAIL]);
    eprintln!("first sweep: {pages} list pages (so far), {details} detail calls for {ITEMS} offers");

    // Change the shop right after a sweep finished, so that the next one starts on the
    // changed shop and no sweep reads half of it.
    let done = last_sweep(&setup);
    wait_for("a sweep to finish", 30, || last_sweep(&setup) > done);
    let (pages0, details0) = (calls(&sim, LIST), calls(&sim, DETAIL));
    eprintln!("detail outcomes: {}", sim.admin_get("/_sim/counters")["methods"][DETAIL]);
    let created = mutate(&sim, &member, "create", 3);
    let updated = mutate(&sim, &member, "update", 4);
    let delisted = mutate(&sim, &member, "delist", 2);
    let removed = mutate(&sim, &member, "remove", 2);
    let updated: BTreeSet<_> = &(&updated - &delisted) - &removed;
    let delisted: BTreeSet<_> = &delisted - &removed;
    let changed = created.len() + updated.len() + delisted.len() + removed.len();

    let before = events(&setup).len();
    wait_for("the next sweep's events", 30, || events(&setup).len() >= before + changed);
    let done = last_sweep(&setup);
    wait_for("a sweep to finish", 30, || last_sweep(&setup) > done);
    let new: Vec<(String, String)> = events(&setup).split_off(before);
    let of = |op: &str| new.iter().filter(|e| e.0 == op).map(|e| e.1.clone()).collect::<BTreeSet<_>>();
    assert_eq!(of("create"), created);
    assert_eq!(of("update"), updated);
    assert_eq!(of("delete"), &delisted | &removed);
    assert_eq!(new.len(), changed, "exactly those events: {new:?}");
    assert_eq!(exported(&setup, &member), truth(&sim, &member), "the copy equals the truth again");

    let (pages1, details1) = (calls(&sim, LIST), calls(&sim, DETAIL));
    eprintln!("detail outcomes: {}", sim.admin_get("/_sim/counters")["methods"][DETAIL]);
    eprintln!(
        "after {changed} changes: {} list pages over the sweeps since, {} detail calls (offers: {})",
        pages1 - pages0,
        details1 - details0,
        ITEMS + created.len() as u64 - delisted.len() as u64 - removed.len() as u64
    );
    // `modifyDate` counts seconds: a new or updated offer whose detail was read within about
    // two seconds of its change is read once more by a later sweep (a second change in that
    // second would not have moved modifyDate), so those may add one call each.
    let d = details1 - details0;
    let once_more = (created.len() + updated.len()) as u64;
    assert!(
        (changed as u64..=changed as u64 + once_more).contains(&d),
        "details only for the new, updated and gone offers, not for the {ITEMS} unchanged: {d}"
    );
    assert!(pages1 - pages0 >= ITEMS.div_ceil(20), "a sweep reads every page");
}
