//! The scale benchmark: one `shopsync run` with 1,000 shops of 1,000 items each against a
//! `sim1688` process (contract quirks and injected faults on; rate limit off and pacing
//! scaled down so that the run takes minutes), delivering to a JSONL sink. It reports how
//! long the first full passes of all shops take, whether every shop's incremental schedule
//! fired, the daemon's peak RSS, and how fast `/metrics` answers while the daemon syncs:
//! sampled once every 250 ms throughout, and under load from wrk (installed from Debian's
//! packages when missing).
//!
//! `cargo build --release --workspace && target/release/bench-scale [SHOPS] [ITEMS] [--markdown]`

use shopsync_e2e::{bin, metric_sum, print_figures, sh, Guard, Setup, SimProc};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn rss_mib(pid: u32, key: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// One `GET /metrics` over a fresh connection: (seconds, body bytes).
fn get_metrics(port: u16) -> Option<(f64, String)> {
    let t = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some((t.elapsed().as_secs_f64(), body))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// wrk on the PATH, installed from Debian's packages if need be.
fn wrk() -> Option<String> {
    let found = |s: &str| Command::new(s).arg("--version").output().is_ok();
    if found("wrk") {
        return Some("wrk".into());
    }
    eprintln!("installing wrk from Debian's packages");
    let ok = Command::new("sh")
        .args(["-c", "apt-get install -y -q wrk >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk >/dev/null 2>&1)"])
        .status()
        .is_ok_and(|s| s.success());
    (ok && found("wrk")).then(|| "wrk".into())
}

/// Shops with at least one pass of `kind` ending `ok`.
fn shops_done(metrics: &str, kind: &str) -> usize {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("shopsync_passes_total{")
                && l.contains(&format!("kind=\"{kind}\""))
                && l.contains("result=\"ok\"")
        })
        .count()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let markdown = args.iter().any(|a| a == "--markdown");
    let nums: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let shops = nums.first().copied().unwrap_or(1_000);
    let items = nums.get(1).copied().unwrap_or(1_000);
    let wrk = wrk();

    let t_sim = Instant::now();
    let sim = SimProc::start(&[
        "--shops",
        &shops.to_string(),
        "--items",
        &items.to_string(),
        "--rate-limit",
        "0",
        "--hang-ms",
        "1500",
        "--quota-commercial",
        "1000000000000",
        // No churn: 6 changes a minute in each of 1,000 shops would be a different benchmark.
        "--churn",
        "0",
    ]);
    let members: Vec<String> = sim
        .admin_get("/_sim/shops")
        .as_array()
        .expect("shops")
        .iter()
        .filter_map(|s| s["member_id"].as_str().map(String::from))
        .collect();
    eprintln!("sim1688 up with {} shops in {:.1} s", members.len(), t_sim.elapsed().as_secs_f64());
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let mut config = format!(
        "[daemon]\nstate_dir = \"@DIR@/state\"\nplugin_dir = \"@DIR@/plugins\"\nmetrics_listen = \"127.0.0.1:{port}\"\n\
         [api]\nbase_url = \"{}\"\nread_timeout = \"1s\"\nmax_attempts = 30\n\
         [pacing]\nconcurrency = 8\nsuccess_interval = \"0ms\"\nfailure_interval = \"20ms\"\nthrottled_interval = \"200ms\"\nmax_calls_per_sec = 0\n",
        sim.gateway()
    );
    for k in 1..=2 {
        config += &format!(
            "[[accounts]]\nname = \"a{k}\"\napp_key = \"1000000{k}\"\napp_secret_file = \"@DIR@/secret{k}\"\ndaily_quota = 1000000000000\n"
        );
    }
    for m in &members {
        config += &format!(
            "[[shops]]\nmember_id = \"{m}\"\nincremental = \"*/20 * * * * *\"\nfull = \"0 0 4 * * *\"\n"
        );
    }
    config += "[[sinks]]\nname = \"file\"\nplugin = \"jsonl\"\nconfig = { path = \"@DIR@/events.jsonl\" }\n";
    let setup = Setup::new(&config);
    for k in 1..=2 {
        std::fs::write(setup.path().join(format!("secret{k}")), format!("sim-secret-{k}")).expect("secret");
    }

    let t0 = Instant::now();
    let mut daemon = Guard(
        Command::new(bin("shopsync"))
            .args(["run", "--config"])
            .arg(&setup.config)
            .env("SHOPSYNC_LOG", "warn")
            .stderr(Stdio::null())
            .spawn()
            .expect("shopsync run starts"),
    );
    let pid = daemon.0.id();

    // Sampler: RSS and one /metrics request every 250 ms for the whole run.
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::<f64>::new()));
    let peak_rss = Arc::new(Mutex::new(0f64));
    let sampler = {
        let (stop, samples, peak_rss) = (stop.clone(), samples.clone(), peak_rss.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let rss = rss_mib(pid, "VmRSS:");
                if let Ok(mut p) = peak_rss.lock() {
                    *p = p.max(rss);
                }
                if let Some((secs, _)) = get_metrics(port) {
                    if let Ok(mut s) = samples.lock() {
                        s.push(secs);
                    }
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };

    let metrics = || get_metrics(port).map(|(_, b)| b).unwrap_or_default();
    let wait = |what: &str, limit: Duration, f: &dyn Fn(&str) -> bool| -> Duration {
        loop {
            let m = metrics();
            if f(&m) {
                return t0.elapsed();
            }
            assert!(t0.elapsed() < limit, "{what} did not happen in {limit:?}");
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    // Load /metrics with wrk once a tenth of the shops are through their first pass, while
    // the rest still sync.
    wait("a tenth of the first passes", Duration::from_secs(1_800), &|m| shops_done(m, "full") >= shops / 10);
    let wrk_out =
        wrk.as_ref().map(|w| sh(&format!("{w} -t2 -c8 -d15s --latency http://127.0.0.1:{port}/metrics")));
    let synced_during_wrk = shops_done(&metrics(), "full");
    let all_full =
        wait("every shop's first full pass", Duration::from_secs(3_600), &|m| shops_done(m, "full") >= shops);
    let all_incr = wait("every shop's incremental schedule", all_full + Duration::from_secs(600), &|m| {
        shops_done(m, "incremental") >= shops
    });
    let m = metrics();
    let metrics_bytes = m.len();
    let stored = metric_sum(&m, "shopsync_shop_items", &[]);
    let skipped = metric_sum(&m, "shopsync_passes_skipped_total", &[]);
    let calls = metric_sum(&m, "shopsync_api_calls_total", &[]);
    let hwm = rss_mib(pid, "VmHWM:");
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    sh(&format!("kill -TERM {pid}"));
    let clean = daemon.0.wait().is_ok_and(|s| s.success());

    let mut lat = samples.lock().map(|s| s.clone()).unwrap_or_default();
    lat.sort_by(f64::total_cmp);
    let ms = |s: f64| format!("{:.1} ms", s * 1000.0);
    let mut rows: Vec<(String, String)> = vec![
        ("shops × items".into(), format!("{shops} × {items}")),
        ("items stored".into(), format!("{stored:.0}")),
        ("API calls".into(), format!("{calls:.0}")),
        (
            "all first full passes done after".into(),
            format!(
                "{:.1} s ({:.0} items/s)",
                all_full.as_secs_f64(),
                (shops * items) as f64 / all_full.as_secs_f64()
            ),
        ),
        (
            "every shop's incremental schedule fired by".into(),
            format!(
                "{:.1} s (cron */20 s; {} of {shops} shops)",
                all_incr.as_secs_f64(),
                shops_done(&m, "incremental")
            ),
        ),
        ("late runs skipped (a pass still running)".into(), format!("{skipped:.0}")),
        ("peak RSS of the daemon (VmHWM)".into(), format!("{hwm:.0} MiB (target ≤ 256 MiB)")),
        (
            "peak RSS sampled every 250 ms".into(),
            format!("{:.0} MiB", peak_rss.lock().map(|p| *p).unwrap_or(0.0)),
        ),
        ("/metrics size".into(), format!("{:.0} KiB", metrics_bytes as f64 / 1024.0)),
        (
            "/metrics every 250 ms while syncing: p50 / p99 / max".into(),
            format!(
                "{} / {} / {} ({} samples; target < 50 ms)",
                ms(percentile(&lat, 0.5)),
                ms(percentile(&lat, 0.99)),
                ms(lat.last().copied().unwrap_or(0.0)),
                lat.len()
            ),
        ),
    ];
    match wrk_out {
        Some(out) => {
            let pick = |label: &str| {
                out.lines()
                    .find(|l| l.trim_start().starts_with(label))
                    .and_then(|l| l.split_whitespace().nth(1).map(String::from))
                    .unwrap_or_default()
            };
            rows.push((
                "/metrics under wrk -t2 -c8 -d15s while syncing: p50 / p99".into(),
                format!("{} / {} (target < 50 ms)", pick("50%"), pick("99%")),
            ));
            rows.push(("  wrk requests/s".into(), pick("Requests/sec:")));
            rows.push((
                "  shops through their first pass when wrk ended".into(),
                synced_during_wrk.to_string(),
            ));
        }
        None => rows.push(("/metrics under wrk".into(), "wrk could not be installed; not measured".into())),
    }
    rows.push(("SIGTERM exit".into(), if clean { "0".into() } else { "FAILED".into() }));
    let intro = format!(
        "`bench-scale {shops} {items}`: one `shopsync run`, {shops} shops of {items} items on sim1688 \
         (quirks and injected faults on, rate limit off), two accounts of 8 calls in flight, \
         pacing 0 ms, a JSONL sink, every shop's incremental cron every 20 s."
    );
    print_figures(markdown, "Scale: 1,000 shops on one daemon", &intro, &rows);
}
