//! The simulator's own benchmark: how fast a catalogue is generated, how much memory it takes,
//! and how many list calls per second the gateway answers on loopback (rate limits and faults
//! off, every call signed and checked as usual). `sim1688 bench` prints the figures.

use crate::config::{Faults, Limits, Quirks};
use crate::server::GATEWAY_PATH;
use crate::sign::sign;
use crate::state::{Sim, SimSpec};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Report {
    pub items: usize,
    pub gen_seconds: f64,
    pub peak_rss_mib: f64,
    pub calls: u64,
    pub failed: u64,
    pub connections: usize,
    pub call_seconds: f64,
    pub items_returned: u64,
}

impl Report {
    pub fn print(&self) {
        println!("| measure | figure | target |");
        println!("|---|---|---|");
        println!(
            "| catalogue generated | {} items in {:.2} s | < 10 s for 1,000,000 |",
            self.items, self.gen_seconds
        );
        println!("| peak RSS after generation | {:.0} MiB | < 1536 MiB |", self.peak_rss_mib);
        println!(
            "| list calls (pageSize 40, signed, {} connections) | {:.0} calls/s ({} calls, {} failed, {:.0} items/s) | >= 5,000 calls/s |",
            self.connections,
            self.calls as f64 / self.call_seconds,
            self.calls,
            self.failed,
            self.items_returned as f64 / self.call_seconds
        );
    }
}

/// Peak resident set of this process (VmHWM), in MiB; 0 where /proc is not available.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

pub async fn run(items: usize, calls: u64, connections: usize) -> anyhow::Result<Report> {
    let t0 = Instant::now();
    let limits = Limits { rate_per_sec: 0, quota_commercial: u64::MAX / 4, ..Limits::default() };
    // No churn: every run measures the same catalogue (its other quirks stay on).
    let spec = SimSpec { seed: 7, shops: 1, items, limits, faults: Faults::none() };
    let sim = Sim::with_quirks(spec, Quirks::calm_catalogue());
    let gen_seconds = t0.elapsed().as_secs_f64();
    let peak_rss_mib = peak_rss_mib();

    let (member_id, windows) = {
        let cat = sim.catalogue();
        let shop = cat.shops.first().ok_or_else(|| anyhow::anyhow!("no shop generated"))?;
        // 30-day windows (wider ones would stall, as on the platform) over the newest year,
        // each with the number of full pages it holds below the depth cap, so that every
        // call returns a real page of 40.
        let newest = shop.online_items().last().map_or(0, |i| i.modified_ms) + 1;
        let day = 86_400_000;
        let windows: Vec<(i64, i64, u64)> = (0..12)
            .map(|k| {
                let (start, end) = (newest - (k + 1) * 30 * day, newest - k * 30 * day);
                let q = crate::catalogue::ListQuery {
                    offline: false,
                    cid: None,
                    start: Some(start),
                    end: Some(end),
                    sort: crate::catalogue::SortType::ModifiedAsc,
                };
                (start, end, (shop.count(&q) as u64 / 40).min(50))
            })
            .filter(|w| w.2 > 0)
            .collect();
        if windows.is_empty() {
            anyhow::bail!("the catalogue is too small for full pages; use more items");
        }
        (shop.member_id.clone(), windows)
    };
    let account = sim.accounts().into_iter().next().ok_or_else(|| anyhow::anyhow!("no account"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}{}", listener.local_addr()?, GATEWAY_PATH);
    let server = tokio::spawn(sim.clone().serve(listener));

    let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build()?;
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let returned = Arc::new(AtomicU64::new(0));
    let t1 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url, next, failed, returned) =
            (client.clone(), url.clone(), next.clone(), failed.clone(), returned.clone());
        let (member_id, windows, account) = (member_id.clone(), windows.clone(), account.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= calls {
                    break;
                }
                let (start, end, pages) = windows[(n as usize / 50) % windows.len()];
                let mut p: BTreeMap<String, String> = BTreeMap::new();
                for (k, v) in [
                    ("method", "alibaba.seller.items.list.get".to_string()),
                    ("app_key", account.app_key.clone()),
                    ("timestamp", crate::time::wall_ms().to_string()),
                    ("format", "json".into()),
                    ("v", "2.0".into()),
                    ("member_id", member_id.clone()),
                    ("pageSize", "40".into()),
                    ("pageNum", (n % pages + 1).to_string()),
                    ("start_time", start.to_string()),
                    ("end_time", end.to_string()),
                    (
                        "fields",
                        "title,cid,wholesalePrice,channelPrice,moq,sales,stock,skuIds,modified_time,status"
                            .into(),
                    ),
                ] {
                    p.insert(k.to_string(), v);
                }
                let s = sign(&p, &account.app_secret);
                p.insert("sign".into(), s);
                let res = client.post(&url).form(&p).timeout(Duration::from_secs(10)).send().await;
                match res {
                    Ok(r) if r.status().is_success() => match r.bytes().await {
                        Ok(b) if !b.starts_with(b"{\"error_response") => {
                            let n = b.windows(10).filter(|w| w == b"\"item_id\":").count();
                            returned.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let call_seconds = t1.elapsed().as_secs_f64();
    server.abort();
    Ok(Report {
        items,
        gen_seconds,
        peak_rss_mib,
        calls,
        failed: failed.load(Ordering::Relaxed),
        connections,
        call_seconds,
        items_returned: returned.load(Ordering::Relaxed),
    })
}
