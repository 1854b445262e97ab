//! The daemon as operators run it: `shopsync demo`, and `shopsync run` against a `sim1688`
//! process with second-level crons, metrics, a refused reload and a clean SIGTERM.

use shopsync_e2e::{bin, sh, text, wait_for, Setup, SimProc};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn lines(p: &std::path::Path) -> usize {
    std::fs::read_to_string(p).map(|s| s.lines().count()).unwrap_or(0)
}

#[test]
fn demo_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin("shopsync"))
        .args(["demo", "--items", "600", "--seconds", "90", "--dir"])
        .arg(dir.path())
        .env("SHOPSYNC_LOG", "warn")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    // The demo's simulator has every quirk on, background churn included (it cannot be told
    // otherwise from here): 600 creates and the demo's 18 changes, plus whatever the churn did.
    let summary: usize = stdout
        .split("summary: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a summary line: {stdout}"));
    assert!(summary >= 618, "{stdout}");
    assert_eq!(lines(&dir.path().join("events.jsonl")), summary);
}

#[test]
fn run_schedules_passes_serves_metrics_refuses_a_bad_reload_and_stops_cleanly() {
    // No churn: the test waits for exact event counts.
    let sim = SimProc::start(&[
        "--shops",
        "1",
        "--items",
        "400",
        "--rate-limit",
        "300",
        "--hang-ms",
        "2000",
        "--churn",
        "0",
    ]);
    let member = sim.admin_get("/_sim/shops")[0]["member_id"].as_str().unwrap().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        r#"
[daemon]
state_dir = "@DIR@/state"
plugin_dir = "@DIR@/plugins"
metrics_listen = "127.0.0.1:{port}"
[api]
base_url = "{gw}"
read_timeout = "1s"
[pacing]
success_interval = "0ms"
failure_interval = "20ms"
max_calls_per_sec = 250
[[accounts]]
name = "main"
app_key = "10000001"
app_secret_file = "@DIR@/secret"
[[shops]]
member_id = "{member}"
incremental = "*/2 * * * * *"
full = "0 0 3 * * *"
[[sinks]]
name = "events"
plugin = "jsonl"
start = "earliest"
config = {{ path = "@DIR@/events.jsonl" }}
"#,
        gw = sim.gateway()
    );
    let setup = Setup::new(&config);
    std::fs::write(setup.path().join("secret"), "sim-secret-1").unwrap();
    let mut daemon = setup.spawn_daemon();
    let events = setup.path().join("events.jsonl");
    wait_for("the first full pass to reach the sink", 60, || lines(&events) >= 400);

    sim.admin_post(&format!("/_sim/shops/{member}/mutate"), r#"{"op": "update", "count": 4}"#);
    wait_for("the cron's incremental pass to deliver the updates", 30, || lines(&events) >= 404);

    let metrics = sh(&format!("curl -sf http://127.0.0.1:{port}/metrics"));
    for name in [
        "shopsync_build_info",
        "shopsync_api_calls_total",
        "shopsync_passes_total",
        "shopsync_events_total",
        "shopsync_sink_delivered_events_total",
        "shopsync_quota_used_calls",
        "shopsync_shop_watermark_timestamp_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    assert!(!metrics.contains("sim-secret-1"), "secrets never reach metrics");
    // promtool's lint of the live output (names, units, _total on counters).
    let mut lint = Command::new(shopsync_e2e::promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (tests/run.sh provides it)");
    // (`sh` trimmed the final newline the text format ends with.)
    std::io::Write::write_all(&mut lint.stdin.take().unwrap(), format!("{metrics}\n").as_bytes()).unwrap();
    let lint = lint.wait_with_output().unwrap();
    assert!(lint.status.success(), "promtool check metrics: {}{}", text(&lint.stdout), text(&lint.stderr));
    // Every query of the shipped dashboard uses only metrics the daemon exports.
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/grafana-dashboard.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut used = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            used.extend(shopsync_e2e::metric_names(t["expr"].as_str().unwrap()));
        }
    }
    assert!(used.len() > 15);
    for name in used {
        assert!(
            metrics.contains(&format!("# TYPE {name} ")),
            "the dashboard queries {name}, which /metrics does not export"
        );
    }
    assert_eq!(
        sh(&format!("curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{port}/readyz")),
        "200"
    );

    // An invalid config is refused on SIGHUP; the daemon keeps running and counts it.
    let good = std::fs::read_to_string(&setup.config).unwrap();
    std::fs::write(&setup.config, good.replace("[pacing]", "[pacing]\nbogus = 1")).unwrap();
    sh(&format!("kill -HUP {}", daemon.0.id()));
    wait_for("the refused reload to be counted", 10, || {
        sh(&format!("curl -sf http://127.0.0.1:{port}/metrics"))
            .contains("shopsync_config_reloads_total{result=\"invalid\"}")
    });
    assert!(daemon.0.try_wait().unwrap().is_none(), "still running");

    sh(&format!("kill -TERM {}", daemon.0.id()));
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "did not stop within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "SIGTERM exits 0: {status:?}");
}

#[test]
fn a_changed_config_file_adds_and_removes_shops_and_sinks_while_a_pass_runs() {
    // Two shops; the first is large enough that its full pass is still running at the reload.
    // No churn: the test counts each shop's events.
    let sim =
        SimProc::start(&["--shops", "2", "--items", "2500", "--rate-limit", "300", "--calm", "--churn", "0"]);
    let shops = sim.admin_get("/_sim/shops");
    let (a, b) = (
        shops[0]["member_id"].as_str().unwrap().to_string(),
        shops[1]["member_id"].as_str().unwrap().to_string(),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let head = format!(
        "[daemon]\nstate_dir = \"@DIR@/state\"\nplugin_dir = \"@DIR@/plugins\"\nmetrics_listen = \"127.0.0.1:{port}\"\n\
         [api]\nbase_url = \"{}\"\n[pacing]\nsuccess_interval = \"0ms\"\nmax_calls_per_sec = 120\n\
         [[accounts]]\nname = \"main\"\napp_key = \"10000001\"\napp_secret_file = \"@DIR@/secret\"\n",
        sim.gateway()
    );
    // Crons for both kinds: a shop whose full passes run on a cron gets its first pass at
    // start, so shop A's pass is under way before any of its events can be collected.
    let shop = |m: &str| {
        format!("[[shops]]\nmember_id = \"{m}\"\nincremental = \"*/3 * * * * *\"\nfull = \"0 0 3 * * *\"\n")
    };
    let sink = |n: &str| {
        format!("[[sinks]]\nname = \"{n}\"\nplugin = \"jsonl\"\nstart = \"earliest\"\nconfig = {{ path = \"@DIR@/{n}.jsonl\" }}\n")
    };
    let setup = Setup::new(&(head.clone() + &shop(&a) + &sink("first")));
    std::fs::write(setup.path().join("secret"), "sim-secret-1").unwrap();
    let mut daemon = setup.spawn_daemon();
    let metrics = || sh(&format!("curl -sf http://127.0.0.1:{port}/metrics || true"));
    wait_for("shop A's full pass to be under way", 30, || metrics().contains("shopsync_api_calls_total"));
    // The editor way: write a new file, rename it over the old one.
    let new = (head + &shop(&b) + &sink("first") + &sink("second"))
        .replace("@DIR@", &setup.path().display().to_string());
    let tmp = setup.path().join(".shopsync.toml.new");
    std::fs::write(&tmp, new).unwrap();
    std::fs::rename(&tmp, &setup.config).unwrap();
    wait_for("the reload", 20, || metrics().contains("shopsync_config_reloads_total{result=\"ok\"} 1"));
    let first = setup.path().join("first.jsonl");
    let second = setup.path().join("second.jsonl");
    // A (removed) stops after its page in hand; B (added) gets its first pass; the new sink
    // starts at the oldest event and ends up with exactly what the old one has.
    let count = |p: &std::path::Path, shop: &str| {
        std::fs::read_to_string(p).unwrap_or_default().matches(&format!("\"shop\":\"{shop}\"")).count()
    };
    wait_for("shop B in both sinks, and the sinks level", 90, || {
        count(&first, &b) >= 2_500 && count(&second, &b) >= 2_500 && lines(&first) == lines(&second)
    });
    assert_eq!(
        count(&first, &a),
        count(&second, &a),
        "the new sink got shop A's events from before the reload too"
    );
    sh(&format!("kill -TERM {}", daemon.0.id()));
    assert!(daemon.0.wait().unwrap().success());
}

#[test]
fn a_shop_moves_to_another_account_when_its_quota_runs_out() {
    // The first account is a test key: 30 calls a day on the platform.
    // No churn: the test counts the shop's events.
    let sim =
        SimProc::start(&["--shops", "1", "--items", "800", "--rate-limit", "300", "--calm", "--churn", "0"]);
    let member = sim.admin_get("/_sim/shops")[0]["member_id"].as_str().unwrap().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "[daemon]\nstate_dir = \"@DIR@/state\"\nplugin_dir = \"@DIR@/plugins\"\nmetrics_listen = \"127.0.0.1:{port}\"\n\
         [api]\nbase_url = \"{}\"\n[pacing]\nsuccess_interval = \"0ms\"\nmax_calls_per_sec = 120\n\
         [[accounts]]\nname = \"test-key\"\napp_key = \"10000004\"\napp_secret_file = \"@DIR@/secret4\"\n\
         [[accounts]]\nname = \"main\"\napp_key = \"10000001\"\napp_secret_file = \"@DIR@/secret1\"\n\
         [[shops]]\nmember_id = \"{member}\"\nincremental = \"0 0 4 1 1 *\"\nfull = \"0 0 3 * * *\"\n\
         [[sinks]]\nname = \"events\"\nplugin = \"jsonl\"\nstart = \"earliest\"\nconfig = {{ path = \"@DIR@/events.jsonl\" }}\n",
        sim.gateway()
    );
    // Crons, not "auto": a pass started by a cron moves to the next account when the quota
    // runs out mid-pass (the planner instead caps its sessions to what each account holds).
    let setup = Setup::new(&config);
    std::fs::write(setup.path().join("secret4"), "sim-secret-4").unwrap();
    std::fs::write(setup.path().join("secret1"), "sim-secret-1").unwrap();
    let mut daemon = setup.spawn_daemon();
    let events = setup.path().join("events.jsonl");
    wait_for("every item through the second account", 90, || lines(&events) >= 800);
    let metrics = sh(&format!("curl -sf http://127.0.0.1:{port}/metrics"));
    assert!(metrics.contains("reason=\"quota_moved\""), "the move is counted");
    assert!(
        metrics.contains("shopsync_quota_remaining_calls{account=\"test-key\"} 0"),
        "the test key is spent"
    );
    sh(&format!("kill -TERM {}", daemon.0.id()));
    assert!(daemon.0.wait().unwrap().success());
}

#[test]
fn a_full_cron_firing_with_a_poll_waits_for_it_instead_of_being_skipped() {
    // Every full-pass second is also a poll second: both crons fire at once and the poll
    // often takes the shop first. The full pass must wait for it, every time. (A calm
    // platform: the test counts passes, not their content.)
    let (sim, member) = SimProc::one_shop(300, &["--rate-limit", "300", "--calm", "--churn", "0"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "[daemon]\nstate_dir = \"@DIR@/state\"\nplugin_dir = \"@DIR@/plugins\"\nmetrics_listen = \"127.0.0.1:{port}\"\n\
         [api]\nbase_url = \"{}\"\n[pacing]\nsuccess_interval = \"0ms\"\nmax_calls_per_sec = 120\n\
         [[accounts]]\nname = \"main\"\napp_key = \"10000001\"\napp_secret_file = \"@DIR@/secret1\"\n\
         [[shops]]\nmember_id = \"{member}\"\nincremental = \"* * * * * *\"\nfull = \"*/4 * * * * *\"\n",
        sim.gateway()
    );
    let setup = Setup::new(&config);
    std::fs::write(setup.path().join("secret1"), "sim-secret-1").unwrap();
    let mut daemon = setup.spawn_daemon();
    let full_ok = || {
        shopsync_e2e::metric_sum(
            &shopsync_e2e::metrics_text(port),
            "shopsync_passes_total",
            &["kind=\"full\"", "result=\"ok\""],
        )
    };
    // Three full-cron seconds after the first copy: three more full passes.
    wait_for("a first full pass", 60, || full_ok() >= 1.0);
    wait_for("three more full passes, one per full-cron second", 30, || full_ok() >= 4.0);
    sh(&format!("kill -TERM {}", daemon.0.id()));
    assert!(daemon.0.wait().unwrap().success());
}

#[test]
fn sigterm_mid_pass_loses_nothing() {
    // No churn: the test wants exactly one event per item.
    let sim =
        SimProc::start(&["--shops", "1", "--items", "3000", "--rate-limit", "200", "--calm", "--churn", "0"]);
    let member = sim.admin_get("/_sim/shops")[0]["member_id"].as_str().unwrap().to_string();
    let config = format!(
        "[daemon]\nstate_dir = \"@DIR@/state\"\nplugin_dir = \"@DIR@/plugins\"\nmetrics_listen = \"127.0.0.1:0\"\n\
         [api]\nbase_url = \"{}\"\n[pacing]\nsuccess_interval = \"0ms\"\nmax_calls_per_sec = 60\n\
         [[accounts]]\nname = \"main\"\napp_key = \"10000001\"\napp_secret_file = \"@DIR@/secret\"\n\
         [[shops]]\nmember_id = \"{member}\"\nincremental = \"*/2 * * * * *\"\n\
         [[sinks]]\nname = \"events\"\nplugin = \"jsonl\"\nstart = \"earliest\"\nconfig = {{ path = \"@DIR@/events.jsonl\" }}\n",
        sim.gateway()
    );
    let setup = Setup::new(&config);
    std::fs::write(setup.path().join("secret"), "sim-secret-1").unwrap();
    let start = || setup.spawn_daemon();
    let events = setup.path().join("events.jsonl");
    let mut daemon = start();
    wait_for("the first pages to arrive", 60, || lines(&events) > 0);
    assert!(lines(&events) < 3000, "stopped mid-pass");
    sh(&format!("kill -TERM {}", daemon.0.id()));
    assert!(daemon.0.wait().unwrap().success(), "SIGTERM mid-pass exits 0");
    // The next run picks up where the watermark-less shop left off (a full pass again) and
    // every item arrives; diffing keeps repeats out of the events.
    let _again = start();
    wait_for("every item after the restart", 120, || lines(&events) >= 3000);
    let body = std::fs::read_to_string(&events).unwrap();
    let items: std::collections::BTreeSet<String> = body
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["item_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(items.len(), 3000, "every item has its event");
    assert_eq!(lines(&events), 3000, "and none twice");
}
