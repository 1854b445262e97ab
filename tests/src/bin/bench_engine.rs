//! The sync engine's benchmark: a full pass of a 100,000-item shop and an incremental pass
//! after 1,000 changes, against a `sim1688` process on loopback with rate limits, faults and
//! pacing off. Prints a table of calls against their lower bounds, throughput, CPU time per
//! item and peak memory of this process (the simulator runs in its own, so its catalogue does
//! not count).
//!
//! `cargo run --release -p shopsync-e2e --bin bench-engine -- [FACE] [ITEMS] [CHANGES] [IN_FLIGHT]`
//! (`CACHE_MIB` sets the sled cache; default 16 as in the daemon). FACE is the seed gateway
//! when left out, or one of the production protocol's (`param2`) two sources:
//!
//! - `param2-own`: `source = "own"`, `alibaba.product.list.get` (20 a page) with the token the
//!   shop's owner gave by authorizing the app; lower bound ⌈N/20⌉ list calls for the full
//!   pass, ⌈CHANGES/20⌉ for the incremental one, and again for a second incremental after
//!   CHANGES more updates (with the watermark and the shop's known gaps after each pass).
//! - `param2-seller`: `source = "seller"`, a sweep of `querySellerOfferList` (20 a page) and
//!   `queryProductDetail` for the offers new or changed; lower bound ⌈N/20⌉ sweep calls + N
//!   details for the first copy, ⌈N/20⌉ + CHANGES for the sweep after CHANGES updates.
//!
//! The param2 tables count calls twice: as the engine's pass report has them, and as the
//! simulator served them (`GET /_sim/counters`).
//!
//! The simulator is the workspace's `sim1688` of the same profile (the scaffold builds the
//! workspace once first).

use serde_json::Value;
use shopsync::api::{
    AccountSettings, ApiSettings, Client, Hooks, MemoryTokenStore, Protocol, Token, TokenStore,
};
use shopsync::config::{SellerSource, SkuRefresh, SyncSettings};
use shopsync::pacing::PacingSettings;
use shopsync::secret::Secret;
use shopsync::state::Store;
use shopsync::sync::{Engine, PassReport, PassStats};
use shopsync_e2e::SimProc;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The app key every face uses: a commercial key, so the cross-border APIs are open to it.
const APP_KEY: &str = "10000001";
const APP_SECRET: &str = "sim-secret-1";
/// The account's name in the client (and the key of its token in the token store).
const ACCOUNT: &str = "bench";
/// The simulator's labels of the param2 APIs in `/_sim/counters`.
const PRODUCT_LIST: &str = "param2:com.alibaba.product:alibaba.product.list.get";
const SELLER_OFFERS: &str = "param2:com.alibaba.fenxiao.crossborder:product.search.querySellerOfferList";
const OFFER_DETAIL: &str = "param2:com.alibaba.fenxiao.crossborder:product.search.queryProductDetail";
/// param2's page size, both lists.
const PAGE: u64 = 20;

fn proc_status(key: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    stat_cpu("/proc/self/stat")
}

/// User + system CPU seconds in a `/proc/<pid>/stat`.
fn stat_cpu(path: &str) -> f64 {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the ")" of the command name: utime is the 12th, stime the 13th.
    let rest = s.rsplit_once(')').map_or("", |p| p.1);
    let f: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // Clock ticks are 100 per second on Linux.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

/// A running `sim1688` on a free loopback port (killed when dropped), and what the benchmark
/// asks of it.
struct Sim(SimProc);

impl Sim {
    fn start(args: &[&str]) -> Sim {
        Sim(SimProc::start(args))
    }

    /// `curl -sf ARGS <base><path>` as JSON (`Null` for an empty body); curl keeps the
    /// benchmarked process free of a second HTTP client.
    fn curl(&self, args: &[&str], path: &str) -> Value {
        let out = Command::new("curl")
            .arg("-sf")
            .args(args)
            .arg(format!("{}{path}", self.0.base))
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "{args:?} {path} failed");
        if out.stdout.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).expect("JSON")
    }

    fn get(&self, path: &str) -> Value {
        self.curl(&[], path)
    }

    fn send(&self, method: &str, path: &str, body: &str) -> Value {
        self.curl(&["-X", method, "-H", "content-type: application/json", "-d", body], path)
    }

    /// Calls the simulator answered for each `/_sim/counters` label, whatever their outcome
    /// ("truncated" is counted beside the outcome, so it is left out), and all the gateway
    /// calls it answered (both faces, every API).
    fn calls<const L: usize>(&self, labels: [&str; L]) -> ([u64; L], u64) {
        let c = self.get("/_sim/counters");
        let per = labels.map(|label| {
            c["methods"][label].as_object().map_or(0, |m| {
                m.iter().filter(|(k, _)| *k != "truncated").filter_map(|(_, v)| v.as_u64()).sum()
            })
        });
        (per, c["total"].as_u64().unwrap_or(0))
    }

    /// List pages of `alibaba.product.list.get` (and the seed list) answered again for a
    /// query already answered.
    fn repeated_pages(&self) -> u64 {
        self.get("/_sim/counters")["list_pages_repeated"].as_u64().unwrap_or(0)
    }

    /// User + system CPU seconds of the simulator so far.
    fn cpu(&self) -> f64 {
        stat_cpu(&format!("/proc/{}/stat", self.0.pid()))
    }

    /// The shop's owner authorizes the app, as `shopsync auth` has it done: the authorize page
    /// (who clicks "allow" set by `PUT /_sim/param2`) redirects with a code, the token
    /// endpoint exchanges it; the grant goes to the client's token store.
    fn authorize(&self, member: &str, tokens: &MemoryTokenStore) {
        self.send("PUT", "/_sim/param2", &format!(r#"{{"authorize_member": {{"{APP_KEY}": "{member}"}}}}"#));
        let redirect = "http://127.0.0.1:9/callback";
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{redirect_url}", "-G"])
            .args(["--data-urlencode", &format!("client_id={APP_KEY}"), "--data-urlencode", "site=1688"])
            .args(["--data-urlencode", &format!("redirect_uri={redirect}"), "--data-urlencode", "state=s"])
            .arg(format!("{}/oauth/authorize", self.0.base))
            .output()
            .expect("curl runs");
        let landing = String::from_utf8_lossy(&out.stdout).into_owned();
        let code = landing
            .split_once("code=")
            .and_then(|(_, c)| c.split('&').next())
            .unwrap_or_else(|| panic!("the simulator refused to authorize: {landing:?}"));
        let form: Vec<String> = [
            "grant_type=authorization_code".to_string(),
            "need_refresh_token=true".to_string(),
            format!("client_id={APP_KEY}"),
            format!("client_secret={APP_SECRET}"),
            format!("redirect_uri={redirect}"),
            format!("code={code}"),
        ]
        .into_iter()
        .flat_map(|p| ["--data-urlencode".to_string(), p])
        .collect();
        let form: Vec<&str> = form.iter().map(String::as_str).collect();
        let grant = self.curl(&form, &format!("/openapi/http/1/system.oauth2/getToken/{APP_KEY}"));
        let text = |k: &str| grant[k].as_str().map(str::to_string);
        let expires_in: i64 = text("expires_in").and_then(|s| s.parse().ok()).unwrap_or(3_600);
        let token = Token {
            access_token: Secret::new(text("access_token").expect("an access token")),
            expires_at_ms: shopsync::clock::now_ms() + expires_in * 1_000,
            refresh_token: text("refresh_token").map(Secret::new),
            refresh_expires_at_ms: None,
            resource_owner: text("resource_owner"),
            member_id: Some(member.to_string()),
        };
        tokens.save(ACCOUNT, &token);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Face {
    Seed,
    /// param2, `source = "own"`.
    Own,
    /// param2, `source = "seller"`.
    Seller,
}

fn main() {
    // As `shopsync` itself does, so the figures are the daemon's.
    shopsync::memory::limit_malloc_arenas(2);
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime").block_on(bench());
}

/// What every face shares: the simulator with one shop, and the engine's parts.
struct Rig {
    sim: Sim,
    member: String,
    /// Items on sale, as the simulator counts them.
    on_sale: u64,
    categories: u64,
    store: Store,
    concurrency: usize,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn account(&self, oauth: bool) -> AccountSettings {
        AccountSettings {
            name: ACCOUNT.into(),
            app_key: APP_KEY.into(),
            app_secret: Secret::new(APP_SECRET),
            daily_quota: u64::MAX,
            oauth,
            proxy: None,
            pacing: PacingSettings {
                concurrency: self.concurrency,
                success_interval: Duration::ZERO,
                failure_interval: Duration::ZERO,
                throttled_interval: Duration::ZERO,
                max_calls_per_sec: 0,
                rate_window: Duration::from_secs(1),
                quota_day: Default::default(),
            },
        }
    }

    fn sync(&self, page_size: u32) -> SyncSettings {
        SyncSettings {
            page_size,
            slice: Duration::from_secs(30 * 86_400),
            overlap: Duration::from_secs(300),
            full_pass_skus: SkuRefresh::Changed,
            sku_max_age: Duration::from_secs(14 * 86_400),
            sellers: Default::default(),
        }
    }

    fn mutate(&self, changes: usize) {
        self.sim.send(
            "POST",
            &format!("/_sim/shops/{}/mutate", self.member),
            &format!(r#"{{"op": "update", "count": {changes}}}"#),
        );
    }
}

async fn bench() {
    let words: Vec<String> = std::env::args().skip(1).filter(|a| a.parse::<usize>().is_err()).collect();
    let face = match words.first().map(String::as_str) {
        None => Face::Seed,
        Some("param2-own") => Face::Own,
        Some("param2-seller") => Face::Seller,
        Some(other) => {
            eprintln!("bench-engine [param2-own|param2-seller] [ITEMS] [CHANGES] [IN_FLIGHT]: unknown face {other:?}");
            std::process::exit(2);
        }
    };
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let items = args.first().copied().unwrap_or(100_000);
    let changes = args.get(1).copied().unwrap_or(1_000);
    let concurrency = args.get(2).copied().unwrap_or(16);
    // No churn: the benchmark makes its own changes and counts their events.
    let sim = Sim::start(&["--shops", "0", "--calm", "--quota-commercial", "1000000000", "--churn", "0"]);
    let shop = sim.send("POST", "/_sim/shops", &format!(r#"{{"items": {items}}}"#));
    let member = shop["member_id"].as_str().expect("member id").to_string();
    let categories = shop["categories"].as_u64().unwrap_or(0);
    let on_sale = shop["items"].as_u64().unwrap_or(items as u64);

    let dir = tempfile::tempdir().expect("temp dir");
    let cache_mib: u64 = std::env::var("CACHE_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(16);
    let store = Store::open(dir.path(), cache_mib << 20).expect("state opens");
    let rig = Rig { sim, member, on_sale, categories, store, concurrency, _dir: dir };
    match face {
        Face::Seed => seed(&rig, items, changes).await,
        Face::Own => own(&rig, items, changes).await,
        Face::Seller => seller(&rig, items, changes, shop["seller_open_id"].as_str()).await,
    }
}

async fn seed(rig: &Rig, items: usize, changes: usize) {
    let (sim, member, store, categories) = (&rig.sim, &rig.member, &rig.store, rig.categories);
    let concurrency = rig.concurrency;
    let api = ApiSettings {
        base_url: format!("{}/openapi/param2/2/portals.open/api/", sim.0.base),
        ..ApiSettings::default()
    };
    let client = Client::new(api, rig.account(false), Hooks::default()).expect("client");
    let engine = Engine::new(client, store.clone(), rig.sync(40));
    let member_id = member.parse().expect("member id");

    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let full = engine.pass(&member_id, true, None, Arc::new(PassStats::default())).await.expect("full pass");
    let (secs, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    let rss_full = proc_status("VmHWM:");
    // Every SKU id the shop lists was new to this first pass.
    let skus: u64 = store.items(member).filter_map(Result::ok).map(|s| s.item.sku_ids.len() as u64).sum();

    rig.mutate(changes);
    let inc =
        engine.pass(&member_id, false, None, Arc::new(PassStats::default())).await.expect("incremental pass");
    let rss = proc_status("VmHWM:");

    let pages = (items as u64).div_ceil(40);
    let list_bound = 1.10 * pages as f64 + categories as f64;
    let sku_bound = 1.05 * skus.div_ceil(20) as f64;
    let inc_calls = inc.list_calls + inc.count_calls + inc.other_calls + inc.item_calls;
    let inc_bound = (changes as u64).div_ceil(40) + 3;
    println!("engine benchmark: {items} items, {categories} categories, {skus} SKUs; sim1688 on loopback, limits and pacing off, {concurrency} calls in flight; {} cores", cores());
    println!("| measure | figure | target |");
    println!("|---|---|---|");
    println!("| full pass list calls | {} (lower bound ⌈N/40⌉ = {pages}; {:.3}× it) | ≤ {list_bound:.0} (1.10 × ⌈N/40⌉ + categories) |", full.list_calls, full.list_calls as f64 / pages as f64);
    println!(
        "| full pass count + category calls | {} + {} | (planning overhead) |",
        full.count_calls, full.other_calls
    );
    println!("| full pass SKU calls | {} (lower bound ⌈SKUs/20⌉ = {}; {:.3}× it) | ≤ {sku_bound:.0} (1.05 × ⌈SKUs/20⌉) |", full.sku_calls, skus.div_ceil(20), full.sku_calls as f64 / skus.div_ceil(20).max(1) as f64);
    println!("| full pass windows / splits | {} / {} | |", full.windows, full.splits);
    println!(
        "| full pass throughput (fetch → diff → sled) | {:.0} items/s ({secs:.1} s) | ≥ 10,000 items/s |",
        items as f64 / secs
    );
    println!(
        "| CPU time per item (shopsync process) | {:.1} µs ({cpu:.1} s user+sys) | |",
        cpu / items as f64 * 1e6
    );
    println!("| peak RSS, full pass | {rss_full:.0} MiB | ≤ 100 MiB |");
    println!("| incremental after {changes} changes: list+count+other calls | {inc_calls} ({} list) | ≤ {inc_bound} + SKU calls (⌈changes/40⌉ + 3) |", inc.list_calls);
    println!("| incremental SKU calls | {} | |", inc.sku_calls);
    println!("| incremental events | {} updates | {changes} |", inc.updates);
    println!("| peak RSS, whole run | {rss:.0} MiB | ≤ 100 MiB |");
    let ok = full.completeness.as_ref().is_some_and(|c| c.complete);
    println!("completeness after the full pass: {}", if ok { "complete" } else { "INCOMPLETE" });
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The param2 face's client settings: the gateway root that `param2/...` paths continue.
fn param2_api(sim: &Sim) -> ApiSettings {
    ApiSettings {
        base_url: format!("{}/openapi/", sim.0.base),
        protocol: Protocol::Param2,
        auth_url: format!("{}/auth/token", sim.0.base),
        ..ApiSettings::default()
    }
}

/// One pass, timed, and what the simulator served during it.
struct Timed<const L: usize> {
    report: PassReport,
    secs: f64,
    /// CPU seconds of this process (the engine) and of the simulator.
    cpu: f64,
    sim_cpu: f64,
    /// Calls served for each label asked for, and all gateway calls.
    served: [u64; L],
    all: u64,
    /// List pages the simulator served again for a query it had answered before.
    repeated: u64,
}

impl<const L: usize> Timed<L> {
    async fn pass(rig: &Rig, engine: &Engine, full: bool, labels: [&str; L]) -> Timed<L> {
        let (before, all_before) = rig.sim.calls(labels);
        let repeated_before = rig.sim.repeated_pages();
        let member_id = rig.member.parse().expect("member id");
        let (cpu0, sim0, t0) = (cpu_seconds(), rig.sim.cpu(), Instant::now());
        let report = engine.pass(&member_id, full, None, Arc::new(PassStats::default())).await.expect("pass");
        let (secs, cpu, sim_cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0, rig.sim.cpu() - sim0);
        let (mut served, all) = rig.sim.calls(labels);
        for (s, b) in served.iter_mut().zip(before) {
            *s -= b;
        }
        let repeated = rig.sim.repeated_pages() - repeated_before;
        Timed { report, secs, cpu, sim_cpu, served, all: all - all_before, repeated }
    }

    /// Items a second over the pass (`n` of them) and CPU per item, engine and simulator.
    fn speed(&self, n: u64) -> String {
        format!(
            "{:.0} items/s ({:.1} s); CPU per item {:.1} µs here, {:.1} µs in sim1688",
            n as f64 / self.secs,
            self.secs,
            self.cpu / n as f64 * 1e6,
            self.sim_cpu / n as f64 * 1e6
        )
    }
}

fn ratio(calls: u64, bound: u64) -> f64 {
    calls as f64 / bound.max(1) as f64
}

fn header(rig: &Rig, items: usize, source: &str, open_id: Option<&str>) {
    let n = rig.on_sale;
    let seller = open_id.map_or(String::new(), |o| format!(", sellerOpenId {o}"));
    println!(
        "engine benchmark, param2 face, source = \"{source}\": {items} items ({n} on sale), {} categories{seller}; sim1688 on loopback, limits and pacing off, page size 20, {} calls in flight; {} cores",
        rig.categories,
        rig.concurrency,
        cores()
    );
    println!("| measure | figure | lower bound |");
    println!("|---|---|---|");
}

fn footer(full: &PassReport) {
    println!("| peak RSS, whole run | {:.0} MiB | |", proc_status("VmHWM:"));
    let ok = full.completeness.as_ref().is_some_and(|c| c.complete);
    let c = full.completeness.as_ref();
    println!(
        "completeness after the first pass: {} ({} fetched of {} official; {} unreachable, {} quarantined)",
        if ok { "complete" } else { "INCOMPLETE" },
        c.map_or(0, |c| c.fetched),
        c.map_or(0, |c| c.official),
        full.unreachable,
        full.quarantined
    );
}

fn events(r: &PassReport) -> String {
    format!("{} creates, {} updates, {} deletes", r.creates, r.updates, r.deletes)
}

async fn own(rig: &Rig, items: usize, changes: usize) {
    let tokens = Arc::new(MemoryTokenStore::default());
    rig.sim.authorize(&rig.member, &tokens);
    let hooks = Hooks { tokens: tokens.clone(), ..Hooks::default() };
    let client = Client::new(param2_api(&rig.sim), rig.account(true), hooks).expect("client");
    let engine = Engine::new(client, rig.store.clone(), rig.sync(PAGE as u32));
    let labels = [PRODUCT_LIST];
    // The milliseconds no query fully reaches, as the shop's state keeps them.
    let gaps = || {
        let st = rig.store.shop(&rig.member).expect("shop state");
        let g: Vec<String> = st
            .unreachable
            .iter()
            .map(|(at, g)| format!("{at}: {} short, {} out of reach", g.found, g.items))
            .collect();
        if g.is_empty() {
            "none".to_string()
        } else {
            g.join("; ")
        }
    };

    let full = Timed::pass(rig, &engine, true, labels).await;
    let rss_full = proc_status("VmHWM:");
    let gaps_full = gaps();
    rig.mutate(changes);
    let inc = Timed::pass(rig, &engine, false, labels).await;
    let gaps_inc = gaps();
    // Once more: an incremental whose window no longer starts at the full pass's.
    rig.mutate(changes);
    let inc2 = Timed::pass(rig, &engine, false, labels).await;
    let gaps_inc2 = gaps();

    let n = rig.on_sale;
    let pages = n.div_ceil(PAGE);
    let inc_pages = (changes as u64).div_ceil(PAGE);
    let calls = |t: &Timed<1>| {
        let r = &t.report;
        format!(
            "{} ({} window pages + {} planning; the engine's report {}; {} calls in all)",
            t.served[0],
            r.list_calls,
            r.count_calls,
            r.list_calls + r.count_calls,
            t.all
        )
    };
    let shape = |t: &Timed<1>| {
        let r = &t.report;
        format!(
            "{} ({} pages' worth) / {} / {} / {}",
            r.items_seen,
            r.items_seen.div_ceil(PAGE),
            r.windows,
            r.splits,
            t.repeated
        )
    };
    let age = |r: &PassReport| {
        r.watermark_ms.map_or("none".to_string(), |w| {
            format!("{w} ({:.1} days before the pass began)", (r.started_ms - w) as f64 / 86_400_000.0)
        })
    };
    header(rig, items, "own", None);
    let (f, i, i2) = (&full.report, &inc.report, &inc2.report);
    println!(
        "| full pass alibaba.product.list.get calls | {} | ⌈N/20⌉ = {pages}; {:.3}× it |",
        calls(&full),
        ratio(full.served[0], pages)
    );
    println!("| full pass: items listed / windows / splits / list pages served twice | {} | |", shape(&full));
    println!("| full pass: SKU calls (the details come inside the list's skuInfos) | {} | 0 |", f.sku_calls);
    println!("| full pass throughput (fetch → diff → sled) | {} | |", full.speed(n));
    println!("| peak RSS, full pass | {rss_full:.0} MiB | |");
    println!("| full pass events | {} | N creates |", events(f));
    println!("| full pass: watermark / known gaps (ms: short, out of reach) | {} / {gaps_full} | |", age(f));
    println!(
        "| incremental after {changes} updates: alibaba.product.list.get calls | {} | ⌈CHANGES/20⌉ = {inc_pages}; {:.3}× it |",
        calls(&inc),
        ratio(inc.served[0], inc_pages)
    );
    println!(
        "| incremental: items listed / windows / splits / list pages served twice | {} | |",
        shape(&inc)
    );
    println!("| incremental: wall time | {:.2} s | |", inc.secs);
    println!("| incremental events | {} | {changes} updates |", events(i));
    println!("| incremental: watermark / known gaps | {} / {gaps_inc} | |", age(i));
    println!(
        "| second incremental, after {changes} more updates: alibaba.product.list.get calls | {} | ⌈CHANGES/20⌉ = {inc_pages}; {:.3}× it |",
        calls(&inc2),
        ratio(inc2.served[0], inc_pages)
    );
    println!(
        "| second incremental: items listed / windows / splits / list pages served twice | {} | |",
        shape(&inc2)
    );
    println!("| second incremental: wall time | {:.2} s | |", inc2.secs);
    println!("| second incremental events | {} | {changes} updates |", events(i2));
    println!("| second incremental: watermark / known gaps | {} / {gaps_inc2} | |", age(i2));
    footer(f);
}

async fn seller(rig: &Rig, items: usize, changes: usize, open_id: Option<&str>) {
    let open_id = open_id.expect("the simulator names the seller's open id").to_string();
    let client = Client::new(param2_api(&rig.sim), rig.account(false), Hooks::default()).expect("client");
    let source = SellerSource { open_id: Some(open_id.clone()), offer_id: None, country: "en".into() };
    let sync = SyncSettings { sellers: [(rig.member.clone(), source)].into(), ..rig.sync(PAGE as u32) };
    let engine = Engine::new(client, rig.store.clone(), sync);
    let labels = [SELLER_OFFERS, OFFER_DETAIL];

    let full = Timed::pass(rig, &engine, true, labels).await;
    let rss_full = proc_status("VmHWM:");
    rig.mutate(changes);
    let inc = Timed::pass(rig, &engine, false, labels).await;

    let n = rig.on_sale;
    let c = changes as u64;
    let pages = n.div_ceil(PAGE);
    header(rig, items, "seller", Some(&open_id));
    for (t, what, details) in
        [(&full, "first copy".to_string(), n), (&inc, format!("sweep after {changes} updates"), c)]
    {
        let r = &t.report;
        let [sweep, detail] = t.served;
        let bound = if details == n { "N" } else { "CHANGES" };
        println!(
            "| {what}: querySellerOfferList calls | {sweep} (the engine's report {}) | ⌈N/20⌉ = {pages}; {:.3}× it |",
            r.list_calls,
            ratio(sweep, pages)
        );
        println!(
            "| {what}: queryProductDetail calls | {detail} (the engine's report {}) | {bound} = {details}; {:.3}× it |",
            r.item_calls,
            ratio(detail, details)
        );
        println!(
            "| {what}: all calls sim1688 served | {} ({} offers listed) | {}; {:.3}× it |",
            t.all,
            r.items_seen,
            pages + details,
            ratio(t.all, pages + details)
        );
        println!("| {what}: throughput (sweep + details → diff → sled) | {} | |", t.speed(n));
        println!(
            "| {what}: events | {} | {} |",
            events(r),
            if details == n { "N creates".to_string() } else { format!("{changes} updates") }
        );
    }
    println!("| peak RSS, first copy | {rss_full:.0} MiB | |");
    footer(&full.report);
}
