//! Reload applies every section of the config, and nothing stalls it: an `[api]` change moves
//! the calls, added accounts and removed shops show in `/metrics` at once, a sink stuck in a
//! plugin call blocks neither the reload, nor SIGTERM, nor the scheduler's heartbeat; and
//! `check-config` refuses the crons the daemon would refuse.

use shopsync_e2e::{free_port, metric_sum, metrics_text, plugin_dir, text, wait_for, Setup, SimProc};
use std::time::{Duration, Instant};

/// The head of a config: state, metrics on `port`, one account `main`, the gateway `gw`.
fn head(port: u16, gw: &str) -> String {
    format!(
        "[daemon]\nstate_dir = \"@DIR@/state\"\nplugin_dir = \"@DIR@/plugins\"\nmetrics_listen = \"127.0.0.1:{port}\"\n\
         control_socket = \"@DIR@/control.sock\"\n\
         [api]\nbase_url = \"{gw}\"\n[pacing]\nsuccess_interval = \"0ms\"\nmax_calls_per_sec = 120\n\
         [[accounts]]\nname = \"main\"\napp_key = \"10000001\"\napp_secret_file = \"@DIR@/secret\"\n"
    )
}

fn shop(member: &str) -> String {
    format!("[[shops]]\nmember_id = \"{member}\"\nincremental = \"*/2 * * * * *\"\nfull = \"0 0 3 * * *\"\n")
}

/// Writes `config` over the setup's file the way an editor does (a new file renamed over the
/// old), then asks the daemon to reload through the control socket; returns its answer.
fn reload(setup: &Setup, config: &str) -> std::process::Output {
    let body = config.replace("@DIR@", &setup.path().display().to_string());
    let tmp = setup.path().join(".shopsync.toml.new");
    std::fs::write(&tmp, body).unwrap();
    std::fs::rename(&tmp, &setup.config).unwrap();
    setup.shopsync(&["reload", "--config", "@CONFIG@"])
}

fn calls(sim: &SimProc) -> u64 {
    sim.admin_get("/_sim/counters")["total"].as_u64().unwrap_or(0)
}

#[test]
fn an_api_base_url_change_moves_the_next_calls_to_the_new_gateway() {
    // The same seed and flags: both simulators serve the same shop under the same member id.
    // No churn: the counts must only move with the daemon's calls.
    let args = ["--calm", "--churn", "0"];
    let (first, member) = SimProc::one_shop(200, &args);
    let (second, member2) = SimProc::one_shop(200, &args);
    assert_eq!(member, member2);
    let port = free_port();
    let setup = Setup::new(&(head(port, &first.gateway()) + &shop(&member)));
    std::fs::write(setup.path().join("secret"), "sim-secret-1").unwrap();
    let _daemon = setup.spawn_daemon();
    wait_for("the first pass on the first gateway", 60, || {
        metrics_text(port).contains(&format!("shopsync_shop_items{{shop=\"{member}\"}} 200"))
    });
    assert_eq!(calls(&second), 0);

    let out = reload(&setup, &(head(port, &second.gateway()) + &shop(&member)));
    assert!(out.status.success(), "reload: {}{}", text(&out.stdout), text(&out.stderr));
    // A pass in flight at the reload finishes on the client it started with.
    std::thread::sleep(Duration::from_secs(3));
    let before = calls(&first);
    wait_for("the incremental passes to call the second gateway", 30, || calls(&second) >= 3);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(calls(&first), before, "no call reaches the first gateway after the reload");
}

#[test]
fn a_reload_shows_an_added_account_and_drops_a_removed_shops_series() {
    let sim = SimProc::start(&["--shops", "2", "--items", "100", "--calm", "--churn", "0"]);
    let shops = sim.admin_get("/_sim/shops");
    let (a, b) = (shops[0]["member_id"].as_str().unwrap(), shops[1]["member_id"].as_str().unwrap());
    let port = free_port();
    let start = head(port, &sim.gateway()) + &shop(a) + &shop(b);
    let setup = Setup::new(&start);
    std::fs::write(setup.path().join("secret"), "sim-secret-1").unwrap();
    std::fs::write(setup.path().join("secret2"), "sim-secret-2").unwrap();
    let _daemon = setup.spawn_daemon();
    let watermark = |m: &str| format!("shopsync_shop_watermark_timestamp_seconds{{shop=\"{m}\"}}");
    wait_for("both shops' first passes", 90, || {
        let t = metrics_text(port);
        t.contains(&watermark(a))
            && t.contains(&watermark(b))
            && t.contains(&format!("shopsync_passes_total{{kind=\"full\",result=\"ok\",shop=\"{b}\"}}"))
    });
    eprintln!("first passes done");

    let second =
        "[[accounts]]\nname = \"second\"\napp_key = \"10000002\"\napp_secret_file = \"@DIR@/secret2\"\n";
    let out = reload(&setup, &(head(port, &sim.gateway()) + second + &shop(a)));
    assert!(out.status.success(), "reload: {}{}", text(&out.stdout), text(&out.stderr));
    let t = metrics_text(port);
    assert!(
        t.contains("shopsync_quota_remaining_calls{account=\"second\"}"),
        "the added account's quota: {t}"
    );
    assert!(t.contains("shopsync_pacing_interval_seconds{account=\"second\"}"), "{t}");
    assert!(!t.contains(&format!("shop=\"{b}\"")), "the removed shop keeps no series: {t}");
    assert!(t.contains(&watermark(a)), "the kept shop keeps its own");
    // Nor does it come back at a later scrape (its state is still in the store).
    std::thread::sleep(Duration::from_secs(3));
    assert!(!metrics_text(port).contains(&format!("shop=\"{b}\"")));
}

#[test]
fn a_sink_stuck_in_deliver_blocks_neither_reload_nor_sigterm_nor_the_heartbeat() {
    let (sim, member) = SimProc::one_shop(50, &["--calm", "--churn", "0"]);
    let port = free_port();
    // A deliver that hangs for ten minutes, longer than anything here waits.
    let sink = |note: &str| {
        format!(
            "[[sinks]]\nname = \"stuck\"\nplugin = \"testkit\"\nstart = \"earliest\"\ntimeout = \"2s\"\n\
             config = {{ mode = \"hang\", hang_ms = 600000, note = \"{note}\" }}\n"
        )
    };
    let base = head(port, &sim.gateway()) + &shop(&member);
    let setup = Setup::new(&(base.clone() + &sink("one")));
    std::fs::write(setup.path().join("secret"), "sim-secret-1").unwrap();
    plugin_dir(&setup.path().join("plugins"));
    let mut daemon = setup.spawn_daemon();
    wait_for("the sink to be stuck", 60, || {
        let t = metrics_text(port);
        t.contains(&format!("shopsync_shop_items{{shop=\"{member}\"}} 50"))
            && t.contains("shopsync_sink_healthy{sink=\"stuck\"} 0")
    });

    // The reload restarts the stuck sink (its config changed): the old one is left behind
    // in its call, and the reload is answered.
    let t0 = Instant::now();
    let out = reload(&setup, &(base + &sink("two")));
    assert!(out.status.success(), "reload: {}{}", text(&out.stdout), text(&out.stderr));
    assert!(t0.elapsed() < Duration::from_secs(20), "the reload took {:?}", t0.elapsed());
    let t = metrics_text(port);
    assert_eq!(metric_sum(&t, "shopsync_config_reloads_total", &["result=\"ok\""]), 1.0, "{t}");

    // The scheduler's heartbeat goes on.
    let tick = || metric_sum(&metrics_text(port), "shopsync_scheduler_last_tick_timestamp_seconds", &[]);
    let first = tick();
    wait_for("the heartbeat to advance", 10, || tick() >= first + 2.0);

    // SIGTERM ends the process within the unit's stop timeout.
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/shopsync.service"),
    )
    .unwrap();
    let stop_secs: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.trim().trim_end_matches('s').parse().ok())
        .expect("TimeoutStopSec in seconds");
    shopsync_e2e::sh(&format!("kill -TERM {}", daemon.0.id()));
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(stop_secs), "still running {stop_secs} s after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "SIGTERM exits 0: {status:?}");
}

#[test]
fn check_config_refuses_a_cron_the_daemon_cannot_build() {
    let port = free_port();
    let config = head(port, "http://127.0.0.1:9/")
        + "[[shops]]\nmember_id = \"1234567890123456\"\nincremental = \"0 0 0 30 2 *\"\nfull = \"0 0 3 * * *\"\n";
    let setup = Setup::new(&config);
    std::fs::write(setup.path().join("secret"), "sim-secret-1").unwrap();
    let out = setup.shopsync(&["check-config", "@CONFIG@"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "accepted: {}", text(&out.stdout));
    assert!(err.contains("0 0 0 30 2 *"), "names the cron: {err}");
}
