//! Sink benchmark: events per second from the outbox through the JSONL, PostgreSQL and
//! MariaDB plugins (the last two when their servers answer on 127.0.0.1), next to what the
//! disk can fsync. PostgreSQL runs twice: as configured by default (a loopback connection is
//! not encrypted) and with `sslmode = "require"`, to show what TLS costs. Prints a table.
//!
//! `cargo run --release -p shopsync-e2e --bin bench-sinks -- [EVENTS]`

use shopsync::config::{SinkSettings, SinkStart};
use shopsync::sinks::{DeliveryOptions, SinkRunner};
use shopsync::state::Store;
use std::io::Write as _;
use std::time::{Duration, Instant};

/// fdatasyncs per second of 4 KiB appends in `dir`, over about a second.
fn fsync_rate(dir: &std::path::Path) -> f64 {
    let mut f = std::fs::File::create(dir.join("fsync-probe")).expect("probe file");
    let block = [7u8; 4096];
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < Duration::from_secs(1) {
        let _ = f.write_all(&block);
        let _ = f.sync_data();
        n += 1;
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

fn answers(cmd: &str) -> bool {
    std::process::Command::new("sh").args(["-c", cmd]).output().map(|o| o.status.success()).unwrap_or(false)
}

#[tokio::main]
async fn main() {
    let events: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("state"), 64 << 20).expect("state");
    let shop = "6000000000000001";
    let t0 = Instant::now();
    shopsync_e2e::fill_outbox(&store, shop, 0, events);
    store.flush().await.expect("flush");
    let fill = t0.elapsed().as_secs_f64();
    let plugins = dir.path().join("plugins");
    shopsync_e2e::plugin_dir(&plugins);
    let fsyncs = fsync_rate(dir.path());

    let db = format!("shopsync_bench_{}", std::process::id());
    let pg = answers(&format!("psql -h 127.0.0.1 -U postgres -d postgres -c 'CREATE DATABASE {db}'"));
    let my = answers(&format!("mysql -h 127.0.0.1 -u root -e 'CREATE DATABASE {db} CHARACTER SET utf8mb4'"));
    // (name, plugin, config, target)
    let mut sinks = vec![(
        "jsonl",
        "jsonl",
        serde_json::json!({"path": dir.path().join("out/events.jsonl")}),
        "≥ 200,000",
    )];
    if pg {
        let url = format!("host=127.0.0.1 user=postgres dbname={db}");
        sinks.push(("postgres", "postgres", serde_json::json!({ "url": url }), "≥ 50,000"));
        sinks.push((
            "postgres, sslmode = require",
            "postgres",
            serde_json::json!({"url": url, "sslmode": "require", "items_table": "tls_items", "changes_table": "tls_changes"}),
            "",
        ));
    }
    if my {
        let url = format!("mysql://root@127.0.0.1:3306/{db}");
        sinks.push(("mysql", "mysql", serde_json::json!({ "url": url }), "≥ 20,000"));
    }
    println!(
        "sink benchmark: {events} events ({} bytes of JSON each), batches of 1000; {} cores",
        serde_json::to_vec(&shopsync_e2e::sample_item(1)).map_or(0, |v| v.len()),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| measure | figure | target |");
    println!("|---|---|---|");
    println!(
        "| outbox fill (diff-free commits to sled, 500 per transaction) | {:.0} events/s | |",
        events as f64 / fill
    );
    println!("| disk fdatasync rate (4 KiB appends) | {fsyncs:.0} fsyncs/s → at most {:.0} events/s for a sink that fsyncs every 1000-event batch | |", fsyncs * 1000.0);
    for (name, plugin, config, target) in sinks {
        let s = SinkSettings {
            name: name.into(),
            plugin: plugin.into(),
            start: SinkStart::Earliest,
            delivery: DeliveryOptions { batch_size: 1_000, ..Default::default() },
            config,
        };
        let runner = SinkRunner::new(&s, &plugins, store.clone(), s.delivery.clone()).expect("sink loads");
        let t = Instant::now();
        let rep = runner.drain(5).await.expect("drain");
        let secs = t.elapsed().as_secs_f64();
        let target = if target.is_empty() { String::new() } else { format!("{target} events/s") };
        println!(
            "| {name} | {:.0} events/s ({} events in {secs:.2} s{}) | {target} |",
            rep.delivered as f64 / secs,
            rep.delivered,
            rep.error.map(|e| format!(", error: {e}")).unwrap_or_default()
        );
    }
    if pg {
        answers(&format!("psql -h 127.0.0.1 -U postgres -d postgres -c 'DROP DATABASE {db}'"));
    }
    if my {
        answers(&format!("mysql -h 127.0.0.1 -u root -e 'DROP DATABASE {db}'"));
    }
}
