//! The budget benchmark: many shops of heavy-tailed sizes and change rates, three accounts of
//! 3,000 calls a quota day, quota days scaled down to seconds, and two daemons side by side
//! on identical simulators: one on the budget planner (`"auto"`), one on the fixed crons
//! operators used before it (incremental every 15 minutes, full nightly, scaled the same).
//!
//! A driver changes both simulators identically on Poisson clocks (one rate per shop, from
//! one change a week to hundreds a day, silent stock/sales edits included) and records when
//! each change was made. Afterwards every change is matched with the first event of its
//! item committed after it; the delay is its staleness.

use crate::{free_port, metrics_text, plugin_dir, Guard, Rng, Setup, SimProc};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct BudgetConfig {
    pub shops: usize,
    pub days: u32,
    /// Length of a quota day, in seconds of wall time.
    pub day_secs: u64,
    pub seed: u64,
    /// The sum of the shops' full-pass lower bounds, in days of the whole budget.
    pub backlog_days: f64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig { shops: 300, days: 12, day_secs: 60, seed: 7, backlog_days: 4.0 }
    }
}

const ACCOUNTS: u64 = 3;
const QUOTA: u64 = 3_000;

/// One daemon's figures.
#[derive(Debug, Clone, Default)]
pub struct ModeFigures {
    pub name: String,
    /// Quota days until every shop had a complete copy (`None`: not within the run).
    pub days_to_complete: Option<f64>,
    pub changes: u64,
    pub detected: u64,
    /// In scaled hours (a quota day is 24 of them); undetected changes count until the end.
    pub mean_staleness_h: f64,
    pub p95_staleness_h: f64,
    pub within_hour: f64,
    /// The same for the changes made to a shop after both daemons had its first complete
    /// copy: the part a policy controls (before that, a change waits for the first copy
    /// whatever the policy, and the budget decides when that is).
    pub steady_changes: u64,
    pub steady_mean_staleness_h: f64,
    pub steady_p95_staleness_h: f64,
    pub steady_within_hour: f64,
    /// Of the changes after the first copy: mean staleness of those an incremental poll can
    /// see (edits, creations, delistings: the listing's modified time moves) and of the
    /// silent ones only a full pass finds (stock and sales edits, removals).
    pub steady_visible_mean_h: f64,
    pub steady_silent_mean_h: f64,
    pub calls_used: u64,
    pub calls_available: u64,
    pub list_pages_distinct: u64,
    pub list_pages_repeated: u64,
    /// Of those, the daemon's own count of pages read again because the window shifted
    /// under the read (the driver's changes move items out of windows being read).
    pub list_pages_shift_rereads: u64,
}

#[derive(Debug, Clone, Default)]
pub struct BudgetReport {
    pub shops: usize,
    pub items: u64,
    pub largest: u64,
    pub lower_bound_calls: u64,
    pub target_days: u64,
    /// The least mean staleness after the first copies any policy could reach, in scaled
    /// hours (see [`staleness_bound_days`]).
    pub steady_bound_h: f64,
    pub modes: Vec<ModeFigures>,
}

/// Lower bound of a full pass: list calls and SKU calls at full pages.
fn lower_bound(items: u64, skus: u64) -> u64 {
    items.div_ceil(40) + skus.div_ceil(20)
}

/// The driver's mix of changes: (operation, share). `touch` (a stock/sales edit that leaves
/// the listing's modified time alone) and `remove` are silent: only a full pass finds them.
const OPS: [(&str, f64); 5] =
    [("update", 0.60), ("touch", 0.20), ("create", 0.08), ("delist", 0.07), ("remove", 0.05)];

fn pick_op(u: f64) -> &'static str {
    let mut acc = 0.0;
    for (op, share) in OPS {
        acc += share;
        if u < acc {
            return op;
        }
    }
    OPS[OPS.len() - 1].0
}

fn is_silent(op: &str) -> bool {
    op == "touch" || op == "remove"
}

/// The share of the driver's changes that are silent.
fn silent_share() -> f64 {
    OPS.iter().filter(|(op, _)| is_silent(op)).map(|(_, s)| s).sum()
}

/// The least mean staleness (in days) any policy can reach over the changes made after the
/// first copies, from the truth the driver knows and no daemon does: each shop's change
/// rate `λᵢ` (a day), silent share `σ`, full-pass lower bound `Cᵢ` calls, and the whole
/// budget `B` calls a day. A change waits half its shop's poll (or full-pass) interval on
/// average; polls cost at least one call; the fetching of changes is left out (it only adds).
/// Minimising `Σ (1−σ)λᵢ Iᵢ/2 + Σ σλᵢ Jᵢ/2` under `Σ 1/Iᵢ + Σ Cᵢ/Jᵢ = B` gives every
/// interval by the square-root rule and the total `(P + F)² / 2B`, with
/// `P = Σ √((1−σ)λᵢ)` and `F = Σ √(σλᵢCᵢ)`; the mean divides it by `Σ λᵢ`. A bound, not a
/// plan: it ignores the reserve, pacing, the poll bounds and the days the first copies take.
pub fn staleness_bound_days(rates_per_day: &[f64], full_costs: &[u64], budget_per_day: f64) -> f64 {
    let (p, f) = square_root_sums(rates_per_day, full_costs);
    let total: f64 = rates_per_day.iter().sum();
    if total <= 0.0 || budget_per_day <= 0.0 {
        return 0.0;
    }
    (p + f).powi(2) / (2.0 * budget_per_day) / total
}

/// `(P, F)` of [`staleness_bound_days`]; at the optimum polls get `P / (P + F)` of the calls.
fn square_root_sums(rates_per_day: &[f64], full_costs: &[u64]) -> (f64, f64) {
    let silent = silent_share();
    let p: f64 = rates_per_day.iter().map(|l| ((1.0 - silent) * l).sqrt()).sum();
    let f: f64 = rates_per_day.iter().zip(full_costs).map(|(l, &c)| (silent * l * c as f64).sqrt()).sum();
    (p, f)
}

/// Heavy-tailed sizes (Pareto, α = 1.1) from 100 to 100,000 items, scaled so that the sum of
/// their expected lower bounds is `target` calls (SKUs 0 to 3 an item, 1.5 on average).
fn sizes(rng: &mut Rng, n: usize, target: f64) -> Vec<u64> {
    let raw: Vec<f64> = (0..n).map(|_| 100.0 / rng.unit().powf(1.0 / 1.1)).collect();
    let mut scale = 1.0;
    let expected = |s: f64| -> f64 {
        raw.iter().map(|r| (r * s).clamp(100.0, 100_000.0)).map(|i| i / 40.0 + i * 1.5 / 20.0).sum()
    };
    for _ in 0..60 {
        scale *= target / expected(scale);
    }
    raw.iter().map(|r| (r * scale).clamp(100.0, 100_000.0) as u64).collect()
}

fn post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    body: &serde_json::Value,
) -> Option<serde_json::Value> {
    let rt = tokio::runtime::Handle::current();
    let url = format!("{base}{path}");
    let (client, body) = (client.clone(), body.clone());
    tokio::task::block_in_place(|| {
        rt.block_on(async move { client.post(url).json(&body).send().await.ok()?.json().await.ok() })
    })
}

fn config(sim: &SimProc, members: &[String], port: u16, auto: bool, day_secs: u64) -> String {
    let scaled =
        |real_secs: f64| format!("{}ms", (real_secs * day_secs as f64 * 1000.0 / 86_400.0).max(1.0) as u64);
    let mut c = format!(
        r#"
[daemon]
state_dir = "@DIR@/state"
plugin_dir = "@DIR@/plugins"
metrics_listen = "127.0.0.1:{port}"
plan_every = "200ms"
max_passes = 8
[api]
base_url = "{gw}"
auth_url = "{base}/auth/token"
read_timeout = "2s"
overlap = "{overlap}"
[pacing]
success_interval = "0ms"
failure_interval = "20ms"
throttled_interval = "100ms"
max_calls_per_sec = 0
quota_day = "{day_secs}s"
[budget]
full_every = "{full_every}"
min_poll = "{min_poll}"
max_poll = "{max_poll}"
[[accounts]]
name = "a1"
app_key = "10000001"
app_secret_file = "@DIR@/secret1"
[[accounts]]
name = "a2"
app_key = "10000002"
app_secret_file = "@DIR@/secret2"
[[accounts]]
name = "a3"
app_key = "10000003"
app_secret_file = "@DIR@/secret3"
oauth = true
[[sinks]]
name = "events"
plugin = "jsonl"
start = "earliest"
config = {{ path = "@DIR@/events.jsonl", max_bytes = 100000000000 }}
"#,
        gw = sim.gateway(),
        base = sim.base,
        full_every = scaled(7.0 * 86_400.0),
        min_poll = scaled(300.0),
        max_poll = scaled(86_400.0),
        // The default 5 minutes scaled like every other interval: unscaled it would be five
        // quota days, and every poll would read five days of changes again.
        overlap = scaled(300.0),
    );
    for m in members {
        c += &format!("[[shops]]\nmember_id = \"{m}\"\n");
        if !auto {
            // Every 15 minutes is under a second at this scale: every second (24 scaled
            // minutes) is as close as a cron gets; "nightly" at a fixed second of each day.
            c += "incremental = \"* * * * * *\"\nfull = \"9 * * * * *\"\n";
        }
    }
    c
}

/// Prints (to stderr) what the list pages answered twice were: by sort order, window width
/// and whether it was a window's first page, so that re-reads can be traced to their cause.
fn describe_repeats(mode: &str, repeated: &serde_json::Value) {
    let mut groups: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for p in repeated["pages"].as_array().into_iter().flatten() {
        let (Some(key), Some(served)) = (p["key"].as_str(), p["served"].as_u64()) else { continue };
        let f: Vec<&str> = key.split('|').collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<i64>().ok());
        let width = match (num(2), num(3)) {
            (Some(a), Some(b)) if b - a <= 1 => "one millisecond".to_string(),
            (Some(a), Some(b)) if b - a <= 3_600_000 => "up to an hour".to_string(),
            (Some(a), Some(b)) if b - a <= 86_400_000 => "up to a day".to_string(),
            (Some(_), Some(_)) => "wider".to_string(),
            _ => "unbounded".to_string(),
        };
        let group = format!(
            "sort {} | {} | {} | {}",
            f.first().copied().filter(|s| !s.is_empty()).unwrap_or("default"),
            width,
            if f.get(4).is_some_and(|c| !c.is_empty()) { "one category" } else { "all categories" },
            if num(5) == Some(1) { "page 1" } else { "later page" },
        );
        let g = groups.entry(group).or_default();
        g.0 += 1;
        g.1 += served - 1;
    }
    eprintln!("{mode}: list pages answered again (first 2,000 queries), by kind: queries / repeats");
    for (group, (queries, repeats)) in groups {
        eprintln!("  {group}: {queries} / {repeats}");
    }
}

/// Prints (to stderr), for shops grouped by change rate, what each daemon did with them:
/// polls and full passes run, the poll interval it aimed at, and the mean staleness of the
/// visible changes after the first copy, so that a staleness figure can be traced to a policy;
/// then, grouped by size, the full sessions and the staleness of the silent changes (which
/// only full passes see, and a full pass costs in proportion to the size).
fn describe_shops(
    mode: &str,
    members: &[String],
    rates: &[f64],
    sizes: &[u64],
    per_shop: &[[(f64, u64); 2]],
    metrics: &str,
    day_ms: i64,
) {
    let hour = day_ms as f64 / 24.0;
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by(|&a, &b| rates[a].total_cmp(&rates[b]));
    eprintln!(
        "{mode}: by change rate (fifths of the shops): changes/day | items | polls ok | polls failed | full sessions | aimed interval (h) | visible staleness (h)"
    );
    for part in order.chunks(order.len().div_ceil(5).max(1)) {
        let n = part.len() as f64;
        let mean = |f: &dyn Fn(usize) -> f64| part.iter().map(|&i| f(i)).sum::<f64>() / n;
        let shop = |i: usize| format!("shop=\"{}\"", members[i]);
        let sum = |name: &str, i: usize, extra: &[&str]| {
            let s = shop(i);
            let mut labels = vec![s.as_str()];
            labels.extend_from_slice(extra);
            crate::metric_sum(metrics, name, &labels)
        };
        let (st, cnt) =
            part.iter().fold((0.0, 0u64), |a, &i| (a.0 + per_shop[i][0].0, a.1 + per_shop[i][0].1));
        let polls_ok = mean(&|i| sum("shopsync_passes_total", i, &["kind=\"incremental\"", "result=\"ok\""]));
        let polls = mean(&|i| sum("shopsync_passes_total", i, &["kind=\"incremental\""]));
        eprintln!(
            "  {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1}",
            mean(&|i| rates[i] * day_ms as f64),
            mean(&|i| sizes[i] as f64),
            polls_ok,
            polls - polls_ok,
            mean(&|i| sum("shopsync_passes_total", i, &["kind=\"full\""])),
            mean(&|i| sum("shopsync_shop_poll_interval_seconds", i, &[]) * 1000.0 / hour),
            st / cnt.max(1) as f64 / hour,
        );
    }
    order.sort_by_key(|&i| sizes[i]);
    eprintln!(
        "{mode}: by size (fifths of the shops): items | changes/day | full sessions | silent changes after the first copy | their staleness (h)"
    );
    for part in order.chunks(order.len().div_ceil(5).max(1)) {
        let n = part.len() as f64;
        let mean = |f: &dyn Fn(usize) -> f64| part.iter().map(|&i| f(i)).sum::<f64>() / n;
        let fulls = |i: usize| {
            let s = format!("shop=\"{}\"", members[i]);
            crate::metric_sum(metrics, "shopsync_passes_total", &[s.as_str(), "kind=\"full\""])
        };
        let (st, cnt) =
            part.iter().fold((0.0, 0u64), |a, &i| (a.0 + per_shop[i][1].0, a.1 + per_shop[i][1].1));
        eprintln!(
            "  {:.0} | {:.1} | {:.1} | {cnt} | {:.1}",
            mean(&|i| sizes[i] as f64),
            mean(&|i| rates[i] * day_ms as f64),
            mean(&fulls),
            st / cnt.max(1) as f64 / hour,
        );
    }
}

/// One recorded change.
struct Change {
    shop: usize,
    item: String,
    at_ms: i64,
    /// Only a full pass can see it (a stock/sales edit or a removal).
    silent: bool,
}

/// Runs the benchmark and returns its figures.
pub fn run(cfg: &BudgetConfig) -> BudgetReport {
    let day_ms = cfg.day_secs as i64 * 1000;
    let mut rng = Rng(cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let target = cfg.backlog_days * (ACCOUNTS * QUOTA) as f64;
    let sizes = sizes(&mut rng, cfg.shops, target);
    let args: Vec<String> = vec![
        "--shops".into(),
        "0".into(),
        "--seed".into(),
        cfg.seed.to_string(),
        "--quota-day".into(),
        format!("{}s", cfg.day_secs),
        // The platform's 5 calls a second, scaled to days of seconds, is no limit at all.
        "--rate-limit".into(),
        "1000".into(),
        "--hang-ms".into(),
        "1500".into(),
        // No churn: the two simulators must stay identical for the comparison to be fair.
        "--churn".into(),
        "0".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sims = [SimProc::start(&args), SimProc::start(&args)];
    let mut members = Vec::new();
    for &n in &sizes {
        let body = format!(r#"{{"items": {n}, "skus": [0, 3], "history_days": 365}}"#);
        let a = sims[0].admin_post("/_sim/shops", &body);
        let b = sims[1].admin_post("/_sim/shops", &body);
        assert_eq!(a["member_id"], b["member_id"], "both simulators hold the same shops");
        members.push(a["member_id"].as_str().expect("member id").to_string());
    }
    // Online item ids per shop (the driver picks from them) and the exact lower bound.
    let mut online: Vec<Vec<String>> = Vec::new();
    let (mut items, mut lb, mut largest) = (0u64, 0u64, 0u64);
    let mut full_costs = Vec::new();
    for m in &members {
        let t = sims[0].admin_get(&format!("/_sim/shops/{m}/truth"));
        let list = t["items"].as_array().cloned().unwrap_or_default();
        let skus: u64 = list.iter().map(|i| i["skus"].as_array().map_or(0, |s| s.len() as u64)).sum();
        let n = list.len() as u64;
        items += n;
        largest = largest.max(n);
        lb += lower_bound(n, skus);
        full_costs.push(lower_bound(n, skus));
        online.push(list.iter().filter_map(|i| i["item_id"].as_str().map(String::from)).collect());
    }
    let daily = ACCOUNTS * QUOTA;
    let target_days = lb.div_ceil(daily) + 1;
    eprintln!(
        "{} shops, {items} items (largest {largest}), full-pass lower bounds {lb} calls = {:.1} days of {daily}",
        members.len(),
        lb as f64 / daily as f64
    );
    // Change rates: log-uniform from one a week to 300 a day.
    let rates: Vec<f64> = (0..members.len())
        .map(|_| {
            let (lo, hi) = ((1.0f64 / 7.0).ln(), 300f64.ln());
            (lo + (hi - lo) * rng.unit()).exp() / day_ms as f64
        })
        .collect();
    let per_day: Vec<f64> = rates.iter().map(|r| r * day_ms as f64).collect();
    let steady_bound_h = staleness_bound_days(&per_day, &full_costs, daily as f64) * 24.0;
    let (p, f) = square_root_sums(&per_day, &full_costs);
    eprintln!(
        "after the first copies, no policy can keep the mean staleness under {steady_bound_h:.1} h \
         (at that optimum polls get {:.0}% of the calls, full passes the rest)",
        p * 100.0 / (p + f)
    );

    let setups: Vec<(Setup, u16)> = [true, false]
        .iter()
        .enumerate()
        .map(|(k, &auto)| {
            let port = free_port();
            let s = Setup::new(&config(&sims[k], &members, port, auto, cfg.day_secs));
            for n in 1..=3 {
                std::fs::write(s.path().join(format!("secret{n}")), format!("sim-secret-{n}"))
                    .expect("secret");
            }
            plugin_dir(&s.path().join("plugins"));
            (s, port)
        })
        .collect();
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let _enter = rt.enter();
    let client = reqwest::Client::new();

    // Start on a quota-day boundary, so the run holds whole days and the calls available are
    // exactly `days` days of every account.
    let now = shopsync::clock::now_ms();
    let next_day = (now / day_ms + 1) * day_ms;
    std::thread::sleep(Duration::from_millis((next_day - now) as u64));
    let start = Instant::now();
    let start_ms = shopsync::clock::now_ms();
    let mut daemons: Vec<Guard> = setups.iter().map(|(s, _)| s.spawn_daemon_logged()).collect();
    let run_for = Duration::from_secs(cfg.days as u64 * cfg.day_secs);
    let tick = Duration::from_millis(250);
    let mut changes: Vec<Change> = Vec::new();
    let mut complete_at: [Option<i64>; 2] = [None, None];
    // When each daemon first held a complete copy of each shop (its watermark appeared).
    let mut synced_at: [HashMap<String, i64>; 2] = [HashMap::new(), HashMap::new()];
    let mut last_probe = Instant::now() - Duration::from_secs(10);
    // The planner's overdue polls (auto only), summed over the once-a-second probes, per reason.
    const OVERDUE: [&str; 3] = ["running", "allowance", "slots"];
    let (mut overdue, mut probes) = ([0.0f64; 3], 0u64);
    // The planner's spending (auto only), read at each quota day's end: calls by polls, calls
    // by full sessions, polls that finished (running totals).
    let mut day_totals: Vec<[f64; 3]> = Vec::new();
    while start.elapsed() < run_for {
        let t0 = Instant::now();
        for (i, m) in members.iter().enumerate() {
            let n = rng.poisson(rates[i] * tick.as_millis() as f64);
            if n == 0 {
                continue;
            }
            let mut by_op: HashMap<&str, Vec<String>> = HashMap::new();
            let mut creates = 0;
            for _ in 0..n {
                let op = pick_op(rng.unit());
                if op == "create" {
                    creates += 1;
                    continue;
                }
                if online[i].is_empty() {
                    continue;
                }
                let k = rng.below(online[i].len() as u64) as usize;
                let id = if op == "delist" || op == "remove" {
                    online[i].swap_remove(k)
                } else {
                    online[i][k].clone()
                };
                by_op.entry(op).or_default().push(id);
            }
            let path = format!("/_sim/shops/{m}/mutate");
            if creates > 0 {
                let body = serde_json::json!({"op": "create", "count": creates});
                let a = post(&client, &sims[0].base, &path, &body);
                let _ = post(&client, &sims[1].base, &path, &body);
                let at_ms = shopsync::clock::now_ms();
                for id in a.and_then(|v| v["item_ids"].as_array().cloned()).unwrap_or_default() {
                    if let Some(id) = id.as_str() {
                        online[i].push(id.to_string());
                        changes.push(Change { shop: i, item: id.to_string(), at_ms, silent: false });
                    }
                }
            }
            for (op, ids) in by_op {
                let body = serde_json::json!({"op": op, "item_ids": ids});
                let _ = post(&client, &sims[0].base, &path, &body);
                let _ = post(&client, &sims[1].base, &path, &body);
                let at_ms = shopsync::clock::now_ms();
                let silent = is_silent(op);
                for id in ids {
                    changes.push(Change { shop: i, item: id, at_ms, silent });
                }
            }
        }
        if last_probe.elapsed() >= Duration::from_secs(1) {
            last_probe = Instant::now();
            let m = metrics_text(setups[0].1);
            for (sum, reason) in overdue.iter_mut().zip(OVERDUE) {
                let label = format!("reason=\"{reason}\"");
                *sum += crate::metric_sum(&m, "shopsync_planner_polls_overdue", &[label.as_str()]);
            }
            probes += 1;
            let day = ((shopsync::clock::now_ms() - start_ms) / day_ms) as usize;
            if day > day_totals.len() {
                day_totals.push([
                    crate::metric_sum(&m, "shopsync_planner_calls_total", &["kind=\"poll\""]),
                    crate::metric_sum(&m, "shopsync_planner_calls_total", &["kind=\"full\""]),
                    crate::metric_sum(
                        &m,
                        "shopsync_passes_total",
                        &["kind=\"incremental\"", "result=\"ok\""],
                    ),
                ]);
            }
            for (k, (_, port)) in setups.iter().enumerate() {
                if complete_at[k].is_none() {
                    let m = metrics_text(*port);
                    let now = shopsync::clock::now_ms();
                    for l in m.lines() {
                        let Some(rest) = l.strip_prefix("shopsync_shop_watermark_timestamp_seconds{shop=\"")
                        else {
                            continue;
                        };
                        if let Some(shop) = rest.split('"').next() {
                            synced_at[k].entry(shop.to_string()).or_insert(now);
                        }
                    }
                    if synced_at[k].len() >= members.len() {
                        complete_at[k] = Some(now);
                    }
                }
            }
        }
        if let Some(rest) = tick.checked_sub(t0.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    let end_ms = shopsync::clock::now_ms();
    let final_metrics: Vec<String> = setups.iter().map(|(_, port)| metrics_text(*port)).collect();
    let shift_rereads: Vec<u64> = setups
        .iter()
        .map(|(_, port)| {
            crate::metric_sum(&metrics_text(*port), "shopsync_sync_list_pages_reread_total", &[]) as u64
        })
        .collect();
    for (k, d) in daemons.iter_mut().enumerate() {
        // A daemon that died on the way makes its figures meaningless: say so, with its last words.
        if let Ok(Some(status)) = d.0.try_wait() {
            let log = std::fs::read_to_string(setups[k].0.path().join("daemon.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("daemon {k} exited before the end ({status}); its last log lines, newest first:");
            for l in tail {
                eprintln!("  {l}");
            }
        }
    }
    for mut d in daemons {
        let _ = std::process::Command::new("kill").args(["-TERM", &d.0.id().to_string()]).status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) && matches!(d.0.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    let hour = day_ms as f64 / 24.0;
    let mut modes = Vec::new();
    for (k, name) in ["auto (budget planner)", "fixed crons (15 min / nightly)"].iter().enumerate() {
        let (setup, _) = &setups[k];
        // Item → commit times of its events.
        let mut seen: HashMap<(String, String), Vec<i64>> = HashMap::new();
        let body = std::fs::read_to_string(setup.path().join("events.jsonl")).unwrap_or_default();
        for l in body.lines() {
            let Ok(e) = serde_json::from_str::<serde_json::Value>(l) else { continue };
            let (Some(shop), Some(item), Some(at)) =
                (e["shop"].as_str(), e["item_id"].as_str(), e["observed_ms"].as_i64())
            else {
                continue;
            };
            seen.entry((shop.to_string(), item.to_string())).or_default().push(at);
        }
        for v in seen.values_mut() {
            v.sort_unstable();
        }
        let mut delays: Vec<f64> = Vec::with_capacity(changes.len());
        let mut steady: Vec<f64> = Vec::new();
        // (sum, count): visible, silent
        let mut steady_by_kind = [(0.0f64, 0u64); 2];
        // After the first copy, changes never seen: (count, their part of the summed delay).
        let mut steady_unseen = [(0u64, 0.0f64); 2];
        let mut before_by_kind = [(0.0f64, 0u64); 2]; // the same, before the first copies
        let mut detected = 0u64;
        // Per shop, after its first copy: (sum, count) of the staleness of visible changes,
        // then of silent ones.
        let mut per_shop = vec![[(0.0f64, 0u64); 2]; members.len()];
        for c in &changes {
            let key = (members[c.shop].clone(), c.item.clone());
            let first = seen.get(&key).and_then(|v| v.iter().find(|&&t| t >= c.at_ms).copied());
            let delay = match first {
                Some(t) => {
                    detected += 1;
                    (t - c.at_ms) as f64
                }
                None => (end_ms - c.at_ms) as f64,
            };
            delays.push(delay);
            let copied =
                synced_at.iter().map(|s| s.get(&members[c.shop]).copied()).collect::<Option<Vec<_>>>();
            if copied.and_then(|v| v.into_iter().max()).is_some_and(|t| c.at_ms >= t) {
                steady.push(delay);
                if first.is_none() {
                    let u = &mut steady_unseen[usize::from(c.silent)];
                    u.0 += 1;
                    u.1 += delay;
                }
                let k = &mut steady_by_kind[usize::from(c.silent)];
                k.0 += delay;
                k.1 += 1;
                let p = &mut per_shop[c.shop][usize::from(c.silent)];
                p.0 += delay;
                p.1 += 1;
            } else {
                let k = &mut before_by_kind[usize::from(c.silent)];
                k.0 += delay;
                k.1 += 1;
            }
        }
        delays.sort_by(f64::total_cmp);
        steady.sort_by(f64::total_cmp);
        let n = delays.len().max(1) as f64;
        let ns = steady.len().max(1) as f64;
        let counters = sims[k].admin_get("/_sim/counters");
        describe_repeats(name, &sims[k].admin_get("/_sim/counters/repeated_pages"));
        describe_shops(name, &members, &rates, &sizes, &per_shop, &final_metrics[k], day_ms);
        // The last copies to complete set the day every shop is complete: which ones they were.
        let mut last: Vec<(i64, usize)> =
            (0..members.len()).filter_map(|i| synced_at[k].get(&members[i]).map(|&t| (t, i))).collect();
        last.sort_unstable();
        let last: Vec<String> = last
            .iter()
            .rev()
            .take(5)
            .map(|&(t, i)| format!("{} items on day {:.1}", sizes[i], (t - start_ms) as f64 / day_ms as f64))
            .collect();
        eprintln!(
            "{name}: the last first copies completed: {} ({} shops never completed one)",
            last.join(", "),
            members.len() - synced_at[k].len()
        );
        if k == 0 {
            let per_day: Vec<String> = day_totals
                .iter()
                .enumerate()
                .map(|(d, t)| {
                    let prev = if d == 0 { [0.0; 3] } else { day_totals[d - 1] };
                    let (pc, fc, n) = (t[0] - prev[0], t[1] - prev[1], t[2] - prev[2]);
                    format!(
                        "day {}: polls {n:.0} costing {pc:.0} ({:.1} a poll), full {fc:.0}",
                        d + 1,
                        pc / n.max(1.0)
                    )
                })
                .collect();
            eprintln!("{name}: what the planner's passes spent, by quota day:\n  {}", per_day.join("\n  "));
            let mean = |i: usize| overdue[i] / probes.max(1) as f64;
            eprintln!(
                "{name}: shops whose poll was due but waited, mean over the run: running {:.1} | allowance {:.1} | slots {:.1} (of {} shops)",
                mean(0),
                mean(1),
                mean(2),
                members.len()
            );
        }
        let mean_h = |k: (f64, u64)| k.0 / k.1.max(1) as f64 / hour;
        eprintln!(
            "{name}: before the shop's first copies: {} visible changes waited {:.1} h on average, {} silent ones {:.1} h",
            before_by_kind[0].1,
            mean_h(before_by_kind[0]),
            before_by_kind[1].1,
            mean_h(before_by_kind[1])
        );
        // A change never seen counts until the end of the run: how much of the means above
        // those changes are (they are not all late; some are changes no event can show).
        for (kind, (u, all)) in ["visible", "silent"].iter().zip(steady_unseen.iter().zip(steady_by_kind)) {
            eprintln!(
                "{name}: after the first copy, {kind} changes never seen: {} of {} (their delays make {:.1} h of the {:.1} h mean)",
                u.0,
                all.1,
                u.1 / all.1.max(1) as f64 / hour,
                mean_h(all)
            );
        }
        eprintln!("{name}: calls by method: {}", counters["methods"]);
        modes.push(ModeFigures {
            name: name.to_string(),
            days_to_complete: complete_at[k].map(|t| (t - start_ms) as f64 / day_ms as f64),
            changes: changes.len() as u64,
            detected,
            mean_staleness_h: delays.iter().sum::<f64>() / n / hour,
            p95_staleness_h: delays.get((delays.len() as f64 * 0.95) as usize).copied().unwrap_or(0.0) / hour,
            within_hour: delays.iter().filter(|&&d| d <= hour).count() as f64 / n,
            steady_changes: steady.len() as u64,
            steady_mean_staleness_h: steady.iter().sum::<f64>() / ns / hour,
            steady_p95_staleness_h: steady.get((steady.len() as f64 * 0.95) as usize).copied().unwrap_or(0.0)
                / hour,
            steady_within_hour: steady.iter().filter(|&&d| d <= hour).count() as f64 / ns,
            steady_visible_mean_h: steady_by_kind[0].0 / steady_by_kind[0].1.max(1) as f64 / hour,
            steady_silent_mean_h: steady_by_kind[1].0 / steady_by_kind[1].1.max(1) as f64 / hour,
            // Every call that reached a key costs quota, except those refused for want of it.
            calls_used: counters["total"].as_u64().unwrap_or(0).saturating_sub(
                counters["methods"]
                    .as_object()
                    .map_or(0, |m| m.values().map(|o| o["15"].as_u64().unwrap_or(0)).sum()),
            ),
            calls_available: daily * cfg.days as u64,
            list_pages_distinct: counters["list_pages_distinct"].as_u64().unwrap_or(0),
            list_pages_repeated: counters["list_pages_repeated"].as_u64().unwrap_or(0),
            list_pages_shift_rereads: shift_rereads[k],
        });
    }
    BudgetReport {
        shops: members.len(),
        items,
        largest,
        lower_bound_calls: lb,
        target_days,
        steady_bound_h,
        modes,
    }
}

impl BudgetReport {
    /// The figures as rows for [`crate::print_figures`].
    pub fn rows(&self) -> Vec<(String, String)> {
        let mut rows = vec![
            ("shops".into(), self.shops.to_string()),
            ("items (largest shop)".into(), format!("{} ({})", self.items, self.largest)),
            ("sum of full-pass lower bounds".into(), format!("{} calls", self.lower_bound_calls)),
            ("target: every shop complete by day".into(), self.target_days.to_string()),
            (
                "after the first copies, the least mean staleness any policy can reach (square-root optimum over the whole budget, 1-call polls, full passes at their lower bound)".into(),
                format!("{:.1} h", self.steady_bound_h),
            ),
        ];
        for m in &self.modes {
            let p = &m.name;
            rows.push((
                format!("{p}: days until every shop is complete"),
                m.days_to_complete.map_or("not within the run".into(), |d| format!("{d:.1}")),
            ));
            rows.push((format!("{p}: changes made / seen"), format!("{} / {}", m.changes, m.detected)));
            rows.push((
                format!("{p}: staleness mean / p95 (scaled hours)"),
                format!("{:.1} / {:.1}", m.mean_staleness_h, m.p95_staleness_h),
            ));
            rows.push((
                format!("{p}: changes seen within an hour"),
                format!("{:.1}%", m.within_hour * 100.0),
            ));
            rows.push((
                format!("{p}: after the shop's first copy: changes / staleness mean / p95 / within an hour"),
                format!(
                    "{} / {:.1} h / {:.1} h / {:.1}%",
                    m.steady_changes,
                    m.steady_mean_staleness_h,
                    m.steady_p95_staleness_h,
                    m.steady_within_hour * 100.0
                ),
            ));
            rows.push((
                format!(
                    "{p}: after the first copy: mean staleness of changes polls see / only full passes see"
                ),
                format!("{:.1} h / {:.1} h", m.steady_visible_mean_h, m.steady_silent_mean_h),
            ));
            rows.push((
                format!("{p}: calls used / available"),
                format!(
                    "{} / {} ({:.0}%)",
                    m.calls_used,
                    m.calls_available,
                    m.calls_used as f64 * 100.0 / m.calls_available.max(1) as f64
                ),
            ));
            rows.push((
                format!("{p}: list pages answered again / distinct"),
                format!("{} / {}", m.list_pages_repeated, m.list_pages_distinct),
            ));
            rows.push((
                format!("{p}: of those, re-read to repair shifted pages / anything else"),
                format!(
                    "{} / {}",
                    m.list_pages_shift_rereads,
                    m.list_pages_repeated.saturating_sub(m.list_pages_shift_rereads)
                ),
            ));
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed form against a search over every split of the budget and of the poll
    /// share between two unlike shops.
    #[test]
    fn the_staleness_bound_is_the_best_split_of_the_budget() {
        let (rates, costs, budget) = ([2.0, 30.0], [5u64, 40], 60.0);
        let silent = silent_share();
        let mut best = f64::MAX;
        let steps = 200;
        // Calls a day: a to shop 0's polls, b to shop 1's polls, c to shop 0's full passes,
        // the rest to shop 1's.
        for a in 1..steps {
            for b in 1..steps - a {
                for c in 1..steps - a - b {
                    let d = steps - a - b - c;
                    let calls = |k: usize| budget * k as f64 / steps as f64;
                    // A change waits half the interval; the interval is cost / calls.
                    let wait = (1.0 - silent) * rates[0] / calls(a) / 2.0
                        + (1.0 - silent) * rates[1] / calls(b) / 2.0
                        + silent * rates[0] * costs[0] as f64 / calls(c) / 2.0
                        + silent * rates[1] * costs[1] as f64 / calls(d) / 2.0;
                    best = best.min(wait / (rates[0] + rates[1]));
                }
            }
        }
        let bound = staleness_bound_days(&rates, &costs, budget);
        assert!(bound <= best + 1e-12, "no split does better than the bound ({bound} vs {best})");
        assert!(best - bound < best * 0.01, "the best split on the grid comes within 1% ({bound} vs {best})");
    }

    #[test]
    fn the_op_mix_adds_up_and_every_op_is_picked() {
        assert!((OPS.iter().map(|(_, s)| s).sum::<f64>() - 1.0).abs() < 1e-9);
        assert_eq!(pick_op(0.0), "update");
        assert_eq!(pick_op(0.7), "touch");
        assert_eq!(pick_op(0.85), "create");
        assert_eq!(pick_op(0.9), "delist");
        assert_eq!(pick_op(0.99), "remove");
    }
}
