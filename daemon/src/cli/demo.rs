//! `shopsync demo`: the one-command first look. It starts the built-in simulator on a free
//! loopback port with a demo shop (quirks on), runs the daemon against it with the JSONL sink
//! for a bounded time (a full pass, then mutations and an incremental pass), and prints where
//! everything is.

use crate::clock::now_ms;
use sim1688::admin::{Mutation, MutationOp};
use sim1688::{Faults, Limits, Sim, SimSpec};
use std::path::Path;
use std::time::Duration;

pub async fn demo(dir: &Path, items: usize, seconds: u64) -> anyhow::Result<bool> {
    std::fs::create_dir_all(dir)?;
    let limits = Limits { rate_per_sec: 300, ..Limits::default() };
    let faults = Faults { hang_ms: 3_000, ..Faults::default() };
    let sim =
        Sim::start(SimSpec { seed: 7, shops: 1, items, limits, faults }, "127.0.0.1:0".parse()?).await?;
    let shop = sim.sim.shop_infos().remove(0);
    let metrics_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let events = dir.join("events.jsonl");
    let _ = std::fs::remove_file(&events);
    let state = dir.join("state");
    let _ = std::fs::remove_dir_all(&state);
    let config = dir.join("shopsync.toml");
    std::fs::write(dir.join("secret"), "sim-secret-1")?;
    std::fs::write(
        &config,
        format!(
            r#"# Written by `shopsync demo`: the daemon against the built-in simulator.
[daemon]
state_dir = "{state}"
plugin_dir = "{plugins}"
metrics_listen = "127.0.0.1:{metrics_port}"

[api]
base_url = "{gateway}"
read_timeout = "1s"

[pacing]
# Scaled for the demo: the real platform wants 800ms and at most 5 calls/s.
success_interval = "0ms"
failure_interval = "50ms"
throttled_interval = "200ms"
max_calls_per_sec = 250

[[accounts]]
name = "demo"
app_key = "10000001"
app_secret_file = "secret"

[[shops]]
url = "{url}"
incremental = "*/5 * * * * *"
full = "0 0 3 * * *"

[[sinks]]
name = "events"
plugin = "jsonl"
start = "earliest"
config = {{ path = "{events}" }}
"#,
            state = state.display(),
            plugins = dir.join("plugins").display(),
            gateway = sim.gateway_url(),
            url = shop.shop_url,
            events = events.display(),
        ),
    )?;
    println!("shopsync demo");
    println!(
        "  simulator     {} (shop {} at {}, {} items, every quirk on)",
        sim.base_url(),
        shop.member_id,
        shop.shop_url,
        shop.items
    );
    println!("  config        {}", config.display());
    println!("  metrics       http://127.0.0.1:{metrics_port}/metrics  (while the demo runs)");
    println!("  events        {}", events.display());
    let sim2 = sim.sim.clone();
    let member = shop.member_id.clone();
    let deadline = now_ms() + seconds as i64 * 1000;
    let events2 = events.clone();
    let stop = async move {
        let count = || std::fs::read_to_string(&events2).map(|s| s.lines().count()).unwrap_or(0);
        // Wait for the first full pass to reach the sink, then change the shop.
        while count() < items && now_ms() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let after_full = count();
        println!("  full pass     {after_full} create events delivered; now changing the shop (10 updates, 5 new, 3 delisted)");
        for (op, n) in [(MutationOp::Update, 10), (MutationOp::Create, 5), (MutationOp::Delist, 3)] {
            let _ = sim2.mutate(&member, &Mutation { op, count: Some(n), item_ids: None });
        }
        while count() < after_full + 18 && now_ms() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        println!("  incremental   {} more events delivered", count() - after_full);
    };
    crate::service::run(&config, stop).await?;
    let body = std::fs::read_to_string(&events).unwrap_or_default();
    let mut ops = std::collections::BTreeMap::new();
    for l in body.lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(l) {
            *ops.entry(v["op"].as_str().unwrap_or("?").to_string()).or_insert(0u64) += 1;
        }
    }
    println!("summary: {} events in {} ({ops:?})", body.lines().count(), events.display());
    println!("look further: shopsync status --config {}", config.display());
    Ok(body.lines().count() >= items)
}
