//! Change messages end to end on the param2 face: the daemon follows the shop's offers
//! (`follow = true`; sim1688, like the platform, sends messages only for followed offers),
//! sim1688 POSTs a signed message for every followed item it changes to the daemon's
//! `[push]` receiver, and the daemon's copy follows within seconds with no pass running; a
//! mis-signed message is refused with 401 and changes nothing; a message sent twice (same
//! `msgId`) is acknowledged twice and applied once; an acknowledged message survives a
//! SIGKILL right after its 200. At scale: 1,000 changed offers reach the copy with at most one
//! fetch each, half of them pulled after the daemon was down while they were sent.

use shopsync::event::{Item, PriceSource};
use shopsync_e2e::truth::expected_item;
use shopsync_e2e::{bin, free_port, metric_sum, metrics_text, text, wait_for, Guard, Setup, SimProc};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

/// The OAuth account of sim1688, whose secret also signs its change messages.
const KEY: &str = "10000003";
const SECRET: &str = "sim-secret-3";
const PATH: &str = "/1688/push";
/// Passes are kept out of the test: the crons fire once a year, on 1 January.
const NEVER_SOON: (&str, &str) = ("0 0 3 1 1 *", "0 30 3 1 1 *");

fn config(sim: &SimProc, member: &str, metrics_port: u16, push_port: u16) -> String {
    format!(
        r#"
[daemon]
state_dir = "@DIR@/state"
metrics_listen = "127.0.0.1:{metrics_port}"

[api]
protocol = "param2"
param2_root = "{base}/openapi/"
param2_auth_url = "{base}/oauth/authorize"
read_timeout = "5s"

[pacing]
success_interval = "0ms"
failure_interval = "20ms"
throttled_interval = "50ms"
max_calls_per_sec = 0

[[accounts]]
name = "p2"
app_key = "{KEY}"
app_secret_file = "@DIR@/secret"
oauth = true
daily_quota = 1000000

[push]
listen = "127.0.0.1:{push_port}"
path = "{PATH}"

[[shops]]
member_id = "{member}"
incremental = "{inc}"
full = "{full}"
follow = true
"#,
        base = sim.base,
        inc = NEVER_SOON.0,
        full = NEVER_SOON.1,
    )
}

/// `shopsync auth` with the code pasted on stdin, as an operator would (see auth.rs).
fn authorize(setup: &Setup) {
    let mut child = Command::new(bin("shopsync"))
        .args(["auth", "--config"])
        .arg(&setup.config)
        .args(["--account", "p2", "--redirect-uri", "http://127.0.0.1:9/cb"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("shopsync auth starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut url = String::new();
    stdout.read_line(&mut url).expect("the URL line");
    let landing = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{redirect_url}", url.trim()])
        .output()
        .expect("curl");
    let landing = text(&landing.stdout);
    child.stdin.take().expect("stdin").write_all(format!("{}\n", landing.trim()).as_bytes()).expect("paste");
    let out = child.wait_with_output().expect("auth ends");
    assert!(out.status.success(), "auth: {}", text(&out.stderr));
}

/// POSTs a change message as the platform would; returns the HTTP status.
fn post(port: u16, message: &str, signature: &str) -> u16 {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--data-urlencode"])
        .arg(format!("message={message}"))
        .arg("--data-urlencode")
        .arg(format!("_aop_signature={signature}"))
        .arg(format!("http://127.0.0.1:{port}{PATH}"))
        .output()
        .expect("curl");
    text(&out.stdout).trim().parse().unwrap_or(0)
}

fn message(msg_id: &str, member: &str, item: &str) -> String {
    serde_json::json!({
        "msgId": msg_id,
        "gmtBorn": 1_700_000_000_000i64,
        "type": "PRODUCT_RELATION_VIEW_PRODUCT_NEW_OR_MODIFY",
        "userInfo": member,
        "data": {"productIds": item, "memberId": member, "status": "RELATION_VIEW_PRODUCT_MODIFY"},
        "extraInfo": null,
    })
    .to_string()
}

fn sign(message: &str) -> String {
    shopsync::push::sign(message, &shopsync::secret::Secret::new(SECRET))
}

/// An item as `alibaba.product.list.get` carries it: no sales figure, no picture (in
/// sim1688's product view), and no `channelPrice`: an item priced only by it is quoted per
/// SKU (no price ranges) when it has SKUs, else by one range at that price from its MOQ.
fn as_listed(mut item: Item) -> String {
    item.sales = None;
    item.pic_url = String::new();
    if item.price_source == PriceSource::ChannelPrice {
        if item.sku_ids.is_empty() {
            item.price_source = PriceSource::WholesalePrice;
        } else {
            item.wholesale_prices.clear();
            item.price_source = PriceSource::None;
        }
    }
    item.md5()
}

/// Item id → MD5 of what the platform holds, as listed.
fn truth(sim: &SimProc, member: &str) -> BTreeMap<String, String> {
    let truth = sim.admin_get(&format!("/_sim/shops/{member}/truth"));
    truth["items"]
        .as_array()
        .expect("truth items")
        .iter()
        .map(|v| expected_item(v).unwrap_or_else(|e| panic!("truth item {v} unreadable: {e}")))
        .map(|i| (i.item_id.clone(), as_listed(i)))
        .collect()
}

/// The ids on which two copies differ, for failure messages.
fn differing(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Item id → MD5 of what the daemon's copy holds, as listed.
fn copy(setup: &Setup, member: &str) -> BTreeMap<String, String> {
    let out = setup.shopsync(&["export", "--format", "jsonl", "--shop", member, "--config", "@CONFIG@"]);
    assert!(out.status.success(), "export: {}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Item>(l).expect("an exported item"))
        .map(|i| (i.item_id.clone(), as_listed(i)))
        .collect()
}

/// Offers the daemon has followed, by its metric.
fn followed(metrics_port: u16) -> f64 {
    metric_sum(&metrics_text(metrics_port), "shopsync_follow_calls_total", &["result=\"followed\""])
}

/// Calls the simulator served to `label` (`param2:<namespace>:<api>`), successful or not.
fn calls(sim: &SimProc, label: &str) -> u64 {
    let c = sim.admin_get("/_sim/counters");
    c["methods"][label].as_object().map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum())
}

/// `PUT /_sim/param2/push` with `body` (the simulator's push settings).
fn set_push(sim: &SimProc, body: &str) {
    let out = Command::new("curl")
        .args(["-sf", "-X", "PUT", "-d", body])
        .arg(format!("{}/_sim/param2/push", sim.base))
        .output()
        .expect("curl");
    assert!(out.status.success(), "PUT /_sim/param2/push failed");
}

/// A simulator with one shop of `items` offers (churn off: every change is the test's) that
/// pushes to the daemon's receiver, its settings changed by `push` (a JSON object) if given;
/// the daemon's setup, its account authorized, and the first copy made by a full pass in
/// the foreground, checked against the truth. Returns the ports too: (push, metrics).
fn first_copy(items: u64, push: Option<&str>) -> (SimProc, String, Setup, u16, u16) {
    let push_port = free_port();
    let metrics_port = free_port();
    let callback = format!("http://127.0.0.1:{push_port}{PATH}");
    let args = [
        "--calm",
        "--churn",
        "0",
        "--quota-commercial",
        "1000000",
        "--push-app-key",
        KEY,
        "--push-url",
        &callback,
    ];
    let (sim, member) = SimProc::one_shop(items, &args);
    if let Some(body) = push {
        set_push(&sim, body);
    }
    let setup = Setup::new(&config(&sim, &member, metrics_port, push_port));
    std::fs::write(setup.path().join("secret"), format!("{SECRET}\n")).expect("secret");
    authorize(&setup);
    let out = setup.shopsync(&["sync", "--config", "@CONFIG@", "--shop", &member, "--full"]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let (held, want) = (copy(&setup, &member), truth(&sim, &member));
    assert!(held == want, "the full pass copies the shop; differing: {:?}", differing(&held, &want));
    (sim, member, setup, push_port, metrics_port)
}

/// `shopsync run` on the setup's config, its log in `log` under the setup's dir, once its
/// metrics answer (the CLI reads the state itself until the daemon holds it).
fn run_daemon(setup: &Setup, log: &str, metrics_port: u16) -> Guard {
    let daemon = Guard(
        Command::new(bin("shopsync"))
            .args(["run", "--config"])
            .arg(&setup.config)
            .env("SHOPSYNC_LOG", "info")
            .stderr(std::fs::File::create(setup.path().join(log)).expect("log file"))
            .spawn()
            .expect("shopsync run starts"),
    );
    wait_for("the daemon's metrics", 20, || !metrics_text(metrics_port).is_empty());
    daemon
}

/// Changes `item` on the platform while no message goes out (the callback URL unset).
fn change_silently(sim: &SimProc, member: &str, item: &str) {
    set_push(sim, r#"{"url": null}"#);
    let body = format!(r#"{{"op": "update", "item_ids": ["{item}"]}}"#);
    sim.admin_post(&format!("/_sim/shops/{member}/mutate"), &body);
}

#[test]
fn pushed_changes_reach_the_copy_without_a_pass_and_forged_or_repeated_ones_do_not() {
    let (sim, member, setup, push_port, metrics_port) = first_copy(40, None);
    let log = setup.path().join("daemon.log");
    let mut daemon = run_daemon(&setup, "daemon.log", metrics_port);
    // Only followed offers produce messages: the daemon follows every stored offer first.
    wait_for("every offer followed", 30, || followed(metrics_port) == 40.0);
    assert_eq!(sim.admin_get("/_sim/param2/pushes")["followed"], 40);

    // Changes of every kind, each pushed by the simulator as it is made.
    let mut changed = Vec::new();
    for (op, count) in [("update", 3), ("touch", 2), ("sku", 1), ("delist", 1), ("remove", 1)] {
        let done = sim.admin_post(
            &format!("/_sim/shops/{member}/mutate"),
            &format!(r#"{{"op": "{op}", "count": {count}}}"#),
        );
        let ids = done["item_ids"].as_array().expect("ids");
        assert!(!ids.is_empty(), "{op} changed nothing");
        changed.extend(ids.iter().filter_map(|v| v.as_str().map(String::from)));
    }
    wait_for("the pushed changes in the copy", 15, || copy(&setup, &member) == truth(&sim, &member));
    let events = setup.shopsync(&["events", "--config", "@CONFIG@", "--shop", &member]);
    let ops: Vec<String> = text(&events.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| changed.iter().any(|id| e["item_id"] == id.as_str()))
        .filter_map(|e| e["op"].as_str().map(String::from))
        .collect();
    assert!(ops.iter().any(|o| o == "delete") && ops.iter().any(|o| o == "update"), "{ops:?}");
    // A new offer is not followed yet: no message (the next pass finds it).
    sim.admin_post(&format!("/_sim/shops/{member}/mutate"), r#"{"op": "create", "count": 2}"#);
    let pushes = sim.admin_get("/_sim/param2/pushes");
    assert!(pushes["unfollowed_changes"].as_u64() >= Some(2), "{pushes}");
    assert_eq!(pushes["acked"], pushes["messages"], "{pushes}");
    assert_eq!(pushes["kept"], 0, "{pushes}");
    let metrics = metrics_text(metrics_port);
    assert_eq!(metric_sum(&metrics, "shopsync_passes_total", &[]), 0.0, "no pass ran:\n{metrics}");
    assert!(metric_sum(&metrics, "shopsync_push_refetch_total", &[]) >= changed.len() as f64 - 2.0);
    assert_eq!(
        metric_sum(&metrics, "shopsync_push_messages_total", &["result=\"stored\""]),
        pushes["messages"].as_f64().expect("count")
    );

    // A message the platform did not sign changes nothing.
    let item = truth(&sim, &member).keys().next().expect("an item").clone();
    change_silently(&sim, &member, &item);
    let forged = message("e2e-forged", &member, &item);
    let wrong = shopsync::push::sign(&forged, &shopsync::secret::Secret::new("not-the-secret"));
    assert_eq!(post(push_port, &forged, &wrong), 401);
    assert_eq!(post(push_port, &forged, ""), 401);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_ne!(
        copy(&setup, &member).get(&item),
        truth(&sim, &member).get(&item),
        "a forged message was applied"
    );
    let metrics = metrics_text(metrics_port);
    assert_eq!(metric_sum(&metrics, "shopsync_push_messages_total", &["result=\"refused\""]), 2.0);

    // Signed, it is applied; sent again with the same msgId, it is acknowledged and not
    // applied a second time (the item changed meanwhile, so an application would show).
    let real = message("e2e-once", &member, &item);
    assert_eq!(post(push_port, &real, &sign(&real)), 200);
    wait_for("the signed message applied", 10, || {
        copy(&setup, &member).get(&item) == truth(&sim, &member).get(&item)
    });
    change_silently(&sim, &member, &item);
    assert_eq!(post(push_port, &real, &sign(&real)), 200);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_ne!(copy(&setup, &member).get(&item), truth(&sim, &member).get(&item), "a duplicate was applied");
    let metrics = metrics_text(metrics_port);
    assert_eq!(metric_sum(&metrics, "shopsync_push_messages_total", &["result=\"duplicate\""]), 1.0);
    // A new message about the same change goes through: the refusal above was the dedup.
    let next = message("e2e-twice", &member, &item);
    assert_eq!(post(push_port, &next, &sign(&next)), 200);
    wait_for("the second message applied", 10, || {
        copy(&setup, &member).get(&item) == truth(&sim, &member).get(&item)
    });

    // Acknowledged means on disk: killed the instant after the 200, the daemon still has it.
    let last = message("e2e-durable", &member, &item);
    assert_eq!(post(push_port, &last, &sign(&last)), 200);
    daemon.0.kill().expect("SIGKILL");
    let _ = daemon.0.wait();
    let store = shopsync::state::Store::open(&setup.path().join("state"), 8 << 20).expect("state");
    assert!(store.push_record("e2e-durable").expect("read").is_some(), "an acknowledged message was lost");
    drop(store);

    // Neither the secret nor a signature shows in the log.
    let logged = std::fs::read_to_string(&log).expect("daemon log");
    assert!(!logged.contains(SECRET) && !logged.contains(&sign(&real)), "a secret leaked into the log");
}

const LIST: &str = "param2:com.alibaba.product:alibaba.product.list.get";

/// Updates `count` offers; their ids.
fn update(sim: &SimProc, member: &str, count: usize) -> Vec<String> {
    let done = sim.admin_post(
        &format!("/_sim/shops/{member}/mutate"),
        &format!(r#"{{"op": "update", "count": {count}}}"#),
    );
    done["item_ids"].as_array().expect("ids").iter().filter_map(|v| v.as_str().map(String::from)).collect()
}

#[test]
fn a_thousand_changed_offers_arrive_by_push_and_by_pull_after_downtime_one_fetch_each() {
    // Undelivered messages are tried again after 50 and 100 ms, then kept for pulling.
    let (sim, member, setup, _, metrics_port) =
        first_copy(1_200, Some(r#"{"backoff_ms": 50, "attempts": 3}"#));
    let mut daemon = run_daemon(&setup, "daemon.log", metrics_port);
    let t = std::time::Instant::now();
    wait_for("every offer followed", 60, || followed(metrics_port) == 1_200.0);
    let status = setup.status_json().expect("status");
    assert_eq!(status["shops"][0]["followed_offers"], 1_200, "status shows the offers followed");
    println!("1,200 offers followed in {:.1} s", t.elapsed().as_secs_f64());
    let events_before = |setup: &Setup| {
        let out = setup.shopsync(&["events", "--config", "@CONFIG@", "--shop", &member]);
        text(&out.stdout).lines().count()
    };
    let outbox_start = events_before(&setup);

    // 500 offers change while the daemon runs: pushed, fetched once each.
    let lists = calls(&sim, LIST);
    let pushed = update(&sim, &member, 500);
    let t = std::time::Instant::now();
    wait_for("500 pushed changes in the copy", 60, || copy(&setup, &member) == truth(&sim, &member));
    println!("500 pushed changes in the copy after {:.1} s", t.elapsed().as_secs_f64());
    let fetched = calls(&sim, LIST) - lists;
    assert!(fetched <= pushed.len() as u64, "{fetched} fetches for {} changed offers", pushed.len());

    // 500 more change while the daemon is down: the platform gives up and keeps them...
    let _ = Command::new("kill").args(["-TERM", &daemon.0.id().to_string()]).status();
    let _ = daemon.0.wait();
    // One message per offer this time, so the pull takes several pages of 200.
    let missed: Vec<String> =
        truth(&sim, &member).into_keys().filter(|id| !pushed.contains(id)).take(500).collect();
    for id in &missed {
        sim.admin_post(
            &format!("/_sim/shops/{member}/mutate"),
            &format!(r#"{{"op": "update", "item_ids": ["{id}"]}}"#),
        );
    }
    wait_for("the undelivered messages kept", 30, || {
        let p = sim.admin_get("/_sim/param2/pushes");
        p["queued"] == 0 && p["kept"].as_u64() >= Some(500)
    });
    // ...and the restarted daemon pulls them, with no pass.
    let lists = calls(&sim, LIST);
    let t = std::time::Instant::now();
    let _daemon = run_daemon(&setup, "daemon2.log", metrics_port);
    wait_for("the pulled changes in the copy", 60, || copy(&setup, &member) == truth(&sim, &member));
    println!("500 pulled changes in the copy after {:.1} s", t.elapsed().as_secs_f64());
    let fetched = calls(&sim, LIST) - lists;
    assert!(fetched <= missed.len() as u64, "{fetched} fetches for {} missed offers", missed.len());
    let pushes = sim.admin_get("/_sim/param2/pushes");
    assert_eq!(pushes["kept"], 0, "{pushes}");
    assert!(pushes["pulled"].as_u64() >= Some(500), "{pushes}");
    let metrics = metrics_text(metrics_port);
    assert_eq!(metric_sum(&metrics, "shopsync_passes_total", &[]), 0.0, "no pass ran:\n{metrics}");
    assert!(metric_sum(&metrics, "shopsync_push_pulled_total", &[]) >= 500.0);
    // Every change is one update event in the outbox.
    let changed: std::collections::BTreeSet<&String> = pushed.iter().chain(&missed).collect();
    assert_eq!(changed.len(), 1_000, "distinct offers changed");
    assert_eq!(events_before(&setup) - outbox_start, pushed.len() + missed.len());
}
