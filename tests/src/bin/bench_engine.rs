//! The sync engine's benchmark: a full pass of a 100,000-item shop and an incremental pass
//! after 1,000 changes, against a `sim1688` process on loopback with rate limits, faults and
//! pacing off. Prints a table of calls against their lower bounds, throughput, CPU time per
//! item and peak memory of this process (the simulator runs in its own, so its catalogue does
//! not count).
//!
//! `cargo run --release -p shopsync-e2e --bin bench-engine -- [ITEMS] [CHANGES] [IN_FLIGHT]`
//! (`CACHE_MIB` sets the sled cache; default 64 as in the daemon)

use shopsync::api::{AccountSettings, ApiSettings, Client, Hooks};
use shopsync::config::{SkuRefresh, SyncSettings};
use shopsync::pacing::PacingSettings;
use shopsync::secret::Secret;
use shopsync::state::Store;
use shopsync::sync::{Engine, PassStats};
use shopsync_e2e::SimProc;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn proc_status(key: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" of the command name: utime is the 12th, stime the 13th.
    let rest = s.rsplit_once(')').map_or("", |p| p.1);
    let f: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // Clock ticks are 100 per second on Linux.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn main() {
    // As `shopsync` itself does, so the figures are the daemon's.
    shopsync::memory::limit_malloc_arenas(2);
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime").block_on(bench());
}

async fn bench() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let items = args.first().copied().unwrap_or(100_000);
    let changes = args.get(1).copied().unwrap_or(1_000);
    let concurrency = args.get(2).copied().unwrap_or(16);
    // No churn: the benchmark makes its own changes and counts their events.
    let sim = SimProc::start(&["--shops", "0", "--calm", "--quota-commercial", "1000000000", "--churn", "0"]);
    let shop = sim.admin_post("/_sim/shops", &format!(r#"{{"items": {items}}}"#));
    let member = shop["member_id"].as_str().expect("member id").to_string();
    let categories = shop["categories"].as_u64().unwrap_or(0);

    let dir = tempfile::tempdir().expect("temp dir");
    let cache_mib: u64 = std::env::var("CACHE_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let store = Store::open(dir.path(), cache_mib << 20).expect("state opens");
    let api = ApiSettings { base_url: sim.gateway(), ..ApiSettings::default() };
    let account = AccountSettings {
        name: "bench".into(),
        app_key: "10000001".into(),
        app_secret: Secret::new("sim-secret-1"),
        daily_quota: u64::MAX,
        oauth: false,
        proxy: None,
        pacing: PacingSettings {
            concurrency,
            success_interval: Duration::ZERO,
            failure_interval: Duration::ZERO,
            throttled_interval: Duration::ZERO,
            max_calls_per_sec: 0,
            rate_window: Duration::from_secs(1),
            quota_day: Default::default(),
        },
    };
    let client = Client::new(api, account, Hooks::default()).expect("client");
    let sync = SyncSettings {
        page_size: 40,
        slice: Duration::from_secs(30 * 86_400),
        overlap: Duration::from_secs(300),
        full_pass_skus: SkuRefresh::Changed,
        sku_max_age: Duration::from_secs(14 * 86_400),
        sellers: Default::default(),
    };
    let engine = Engine::new(client, store.clone(), sync);
    let member_id = member.parse().expect("member id");

    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let full = engine.pass(&member_id, true, None, Arc::new(PassStats::default())).await.expect("full pass");
    let (secs, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    let rss_full = proc_status("VmHWM:");
    // Every SKU id the shop lists was new to this first pass.
    let skus: u64 = store.items(&member).filter_map(Result::ok).map(|s| s.item.sku_ids.len() as u64).sum();

    sim.admin_post(
        &format!("/_sim/shops/{member}/mutate"),
        &format!(r#"{{"op": "update", "count": {changes}}}"#),
    );
    let inc =
        engine.pass(&member_id, false, None, Arc::new(PassStats::default())).await.expect("incremental pass");
    let rss = proc_status("VmHWM:");

    let pages = (items as u64).div_ceil(40);
    let list_bound = 1.10 * pages as f64 + categories as f64;
    let sku_bound = 1.05 * skus.div_ceil(20) as f64;
    let inc_calls = inc.list_calls + inc.count_calls + inc.other_calls + inc.item_calls;
    let inc_bound = (changes as u64).div_ceil(40) + 3;
    println!("engine benchmark: {items} items, {categories} categories, {skus} SKUs; sim1688 on loopback, limits and pacing off, {concurrency} calls in flight; {} cores", std::thread::available_parallelism().map_or(1, |n| n.get()));
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
