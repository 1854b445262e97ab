//! The API storm suite: `shopsync run` syncs a shop through a platform that fails a third
//! or more of its calls (busy, HTML pages, truncated JSON, hangs, injected 429s), enforces
//! its real per-key rate limit below what the daemon is allowed to send (429 bursts), is told
//! to expire every OAuth token twice mid-pass (code 27), and whose daily quota runs out
//! mid-pass. The end state, after a full pass and after an incremental pass over mutations,
//! must equal the ground truth, and every numbered event must reach the sink.

use crate::{free_port, metric_sum, metrics_text, seqs_in_jsonl, sh, truth_md5s, Setup, SimProc};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub struct StormOptions {
    pub items: u64,
    /// Calls a day per commercial key on the platform.
    pub quota: u64,
}

#[derive(Debug, Default)]
pub struct StormReport {
    pub calls: u64,
    /// Platform outcomes summed over methods: `ok`, `5002`, `7`, `15`, `27`, `html_502`, ...
    pub outcomes: BTreeMap<String, u64>,
    pub tokens_expired_by_hand: u64,
    pub quota_moves: u64,
    pub passes: BTreeMap<String, u64>,
    pub truth_items: u64,
    pub wrong_after_full: u64,
    pub wrong_after_incremental: u64,
    pub expected_events: u64,
    pub lost_events: u64,
    pub wall: Duration,
}

impl StormReport {
    pub fn ok(&self) -> bool {
        self.wrong_after_full == 0
            && self.wrong_after_incremental == 0
            && self.lost_events == 0
            && self.quota_moves >= 1
            && self.outcomes.get("15").copied().unwrap_or(0) >= 1
            && self.outcomes.get("27").copied().unwrap_or(0) >= 1
            && self.truth_items > 0
    }

    pub fn lines(&self) -> Vec<(String, String)> {
        let failed: u64 = self.outcomes.iter().filter(|(k, _)| *k != "ok").map(|(_, v)| v).sum();
        let mut out = vec![
            ("gateway calls".into(), self.calls.to_string()),
            (
                "calls that failed (share)".into(),
                format!("{failed} ({:.0}%)", 100.0 * failed as f64 / self.calls.max(1) as f64),
            ),
        ];
        for (k, v) in &self.outcomes {
            let what = match k.as_str() {
                "ok" => "answered".to_string(),
                "5002" => "code 5002 (busy)".to_string(),
                "7" => "code 7 (429: rate limit and injected)".to_string(),
                "15" => "code 15 (daily quota spent)".to_string(),
                "27" => "code 27 (token expired)".to_string(),
                "truncated" => "truncated JSON".to_string(),
                other => other.replace('_', " "),
            };
            out.push((format!("  {what}"), v.to_string()));
        }
        out.extend([
            ("times every OAuth token was expired mid-pass".into(), self.tokens_expired_by_hand.to_string()),
            ("shops moved to another account mid-pass (quota)".into(), self.quota_moves.to_string()),
        ]);
        for (k, v) in &self.passes {
            out.push((format!("passes {k}"), v.to_string()));
        }
        out.extend([
            ("items on sale".into(), self.truth_items.to_string()),
            ("items wrong after the full pass".into(), self.wrong_after_full.to_string()),
            ("items wrong after the incremental pass".into(), self.wrong_after_incremental.to_string()),
            ("events numbered / lost".into(), format!("{} / {}", self.expected_events, self.lost_events)),
            ("wall time".into(), format!("{:.1} s", self.wall.as_secs_f64())),
        ]);
        out
    }
}

pub fn run(opts: &StormOptions) -> StormReport {
    let started = Instant::now();
    let quota = opts.quota.to_string();
    let storm = ["--seed", "11", "--busy", "0.3", "--html", "0.04", "--truncated", "0.04", "--hang", "0.01"];
    // No churn: the copy is compared with the truth after each pass.
    let calm = ["--churn", "0"];
    let limits = ["--hang-ms", "1500", "--throttle", "0.04", "--rate-limit", "60", "--token-ttl-s", "400"];
    let (sim, member) = SimProc::one_shop(
        opts.items,
        &[&storm[..], &limits, &calm, &["--quota-commercial", quota.as_str()]].concat(),
    );
    let port = free_port();
    // The daemon may send 90 calls/s per key while the platform takes 60: 429 bursts.
    let config = format!(
        "[daemon]\nstate_dir = \"@DIR@/state\"\nplugin_dir = \"@DIR@/plugins\"\nmetrics_listen = \"127.0.0.1:{port}\"\n\
         [api]\nbase_url = \"{gw}\"\nauth_url = \"{base}/auth/token\"\nread_timeout = \"1s\"\nmax_attempts = 40\n\
         [pacing]\nconcurrency = 8\nsuccess_interval = \"0ms\"\nfailure_interval = \"20ms\"\nthrottled_interval = \"300ms\"\nmax_calls_per_sec = 90\n\
         [[accounts]]\nname = \"oauth\"\napp_key = \"10000003\"\napp_secret_file = \"@DIR@/secret3\"\noauth = true\ndaily_quota = 100000000\n\
         [[accounts]]\nname = \"main\"\napp_key = \"10000001\"\napp_secret_file = \"@DIR@/secret1\"\ndaily_quota = 100000000\n\
         [[accounts]]\nname = \"spare\"\napp_key = \"10000002\"\napp_secret_file = \"@DIR@/secret2\"\ndaily_quota = 100000000\n\
         [[shops]]\nmember_id = \"{member}\"\nincremental = \"*/3 * * * * *\"\nfull = \"0 0 0 1 1 *\"\n\
         [[sinks]]\nname = \"file\"\nplugin = \"jsonl\"\nstart = \"earliest\"\nconfig = {{ path = \"@DIR@/events.jsonl\" }}\n",
        gw = sim.gateway(),
        base = sim.base,
    );
    let setup = Setup::new(&config);
    for k in 1..=3 {
        std::fs::write(setup.path().join(format!("secret{k}")), format!("sim-secret-{k}")).expect("secret");
    }
    let mut report = StormReport::default();
    let mut daemon = setup.spawn_daemon();
    let metrics = || metrics_text(port);
    let wait = |what: &str, secs: u64, f: &mut dyn FnMut(&str) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let m = metrics();
            if f(&m) {
                return;
            }
            assert!(Instant::now() < deadline, "storm: {what} did not happen in {secs} s");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    // Expire every token twice while the first full pass runs.
    for _ in 0..2 {
        wait("calls in flight", 60, &mut |m| {
            metric_sum(m, "shopsync_api_calls_total", &["account=\"oauth\""]) >= 100.0
                || metric_sum(m, "shopsync_passes_total", &["kind=\"full\""]) >= 1.0
        });
        sim.admin_post("/_sim/tokens/expire", "{}");
        report.tokens_expired_by_hand += 1;
        std::thread::sleep(Duration::from_millis(1_500));
    }
    let lag_zero = |m: &str| m.contains("shopsync_sink_lag_events{sink=\"file\"} 0");
    wait("a complete full pass, delivered", 600, &mut |m| {
        metric_sum(m, "shopsync_passes_total", &["kind=\"full\"", "result=\"ok\""]) >= 1.0 && lag_zero(m)
    });
    let first = metrics();
    report.quota_moves =
        metric_sum(&first, "shopsync_passes_skipped_total", &["reason=\"quota_moved\""]) as u64;
    passes(&first, "first run", &mut report.passes);
    sh(&format!("kill -TERM {}", daemon.0.id()));
    let _ = daemon.0.wait();
    let truth = truth_md5s(&sim, &member);
    report.wrong_after_full = wrong(&setup, &member, &truth);

    for op in [
        r#"{"op": "update", "count": 40}"#,
        r#"{"op": "create", "count": 20}"#,
        r#"{"op": "delist", "count": 10}"#,
    ] {
        sim.admin_post(&format!("/_sim/shops/{member}/mutate"), op);
    }
    // The spent quota is remembered across the restart; a new day gives the first account
    // back its calls.
    sim.admin_post("/_sim/quota/reset", "{}");
    let mut daemon = setup.spawn_daemon();
    let events_file = setup.path().join("events.jsonl");
    wait("an incremental pass, delivered", 300, &mut |m| {
        metric_sum(m, "shopsync_passes_total", &["kind=\"incremental\"", "result=\"ok\""]) >= 1.0
            && lag_zero(m)
    });
    let m = metrics();
    sh(&format!("kill -TERM {}", daemon.0.id()));
    let _ = daemon.0.wait();
    let truth = truth_md5s(&sim, &member);
    report.truth_items = truth.len() as u64;
    report.wrong_after_incremental = wrong(&setup, &member, &truth);

    // Every numbered event reached the sink.
    let st = setup.status_json().expect("status --json");
    let next_seq = st["shops"][0]["state"]["next_seq"].as_u64().unwrap_or(1);
    let seqs = seqs_in_jsonl(&events_file);
    report.expected_events = next_seq - 1;
    report.lost_events = (1..next_seq).filter(|s| !seqs.contains(s)).count() as u64;

    let counters = sim.admin_get("/_sim/counters");
    report.calls = counters["total"].as_u64().unwrap_or(0);
    for (_, outcomes) in counters["methods"].as_object().into_iter().flatten() {
        for (k, v) in outcomes.as_object().into_iter().flatten() {
            *report.outcomes.entry(k.clone()).or_default() += v.as_u64().unwrap_or(0);
        }
    }
    passes(&m, "second run", &mut report.passes);
    report.wall = started.elapsed();
    report
}

fn label<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}=\""))? + name.len() + 2;
    let end = line[start..].find('"')? + start;
    Some(&line[start..end])
}

/// Pass counts by kind and result from one run's metrics.
fn passes(metrics: &str, run: &str, into: &mut BTreeMap<String, u64>) {
    for line in metrics.lines().filter(|l| l.starts_with("shopsync_passes_total{")) {
        let v = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if let (Some(kind), Some(result), Some(v)) = (label(line, "kind"), label(line, "result"), v) {
            *into.entry(format!("{kind} {result} ({run})")).or_default() += v as u64;
        }
    }
}

/// Items whose stored state differs from the truth, plus items stored that the platform no
/// longer sells.
fn wrong(setup: &Setup, member: &str, truth: &BTreeMap<String, (String, i64)>) -> u64 {
    let held = setup.exported_md5s(member);
    let mut n = truth.iter().filter(|(id, (md5, _))| held.get(*id) != Some(md5)).count() as u64;
    n += held.keys().filter(|id| !truth.contains_key(*id)).count() as u64;
    n
}
