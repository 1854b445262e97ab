//! `shopsync` as a user runs it against a `sim1688` process: sync, status, events, export,
//! backfill, state reset, and config errors with line and column.

use shopsync_e2e::{text, Setup, SimProc};

fn config(sim: &SimProc, member: &str) -> String {
    format!(
        r#"
[daemon]
state_dir = "@DIR@/state"

[api]
base_url = "{gateway}"
read_timeout = "1s"
max_attempts = 20

[pacing]
success_interval = "0ms"
failure_interval = "20ms"
throttled_interval = "100ms"
max_calls_per_sec = 400

[[accounts]]
name = "main"
app_key = "10000001"
app_secret_file = "@DIR@/secret"

[[shops]]
member_id = "{member}"
"#,
        gateway = sim.gateway()
    )
}

#[test]
fn sync_status_events_export_and_backfill() {
    // Quirks on; the rate limit is scaled up with the client's own cap in the config.
    // No churn: the test counts events and items.
    let sim = SimProc::start(&[
        "--shops",
        "1",
        "--items",
        "1500",
        "--rate-limit",
        "500",
        "--hang-ms",
        "3000",
        "--churn",
        "0",
    ]);
    let shops = sim.admin_get("/_sim/shops");
    let member = shops[0]["member_id"].as_str().unwrap().to_string();
    let setup = Setup::new(&config(&sim, &member));
    std::fs::write(setup.path().join("secret"), "sim-secret-1\n").unwrap();

    let out = setup.shopsync(&["sync", "--config", "@CONFIG@"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("1500 created") && stdout.contains("complete"), "{stdout}");

    let out = setup.shopsync(&["status", "--config", "@CONFIG@", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shop = &status["shops"][0]["state"];
    assert_eq!(shop["item_count"], 1500);
    assert!(shop["watermark_ms"].as_i64().is_some());
    assert!(status["accounts"][0]["calls_today"].as_u64().unwrap() > 40, "calls are counted and persisted");

    let out = setup.shopsync(&["events", "--config", "@CONFIG@", "--shop", &member, "--after-seq", "1000"]);
    let lines: Vec<serde_json::Value> =
        text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 500);
    assert_eq!(lines[0]["seq"], 1001);
    assert!(lines[0]["item"]["wholesale_prices"][0]["price"].is_string(), "prices are decimal strings");

    let out = setup.shopsync(&["export", "--config", "@CONFIG@", "--shop", &member, "--format", "csv"]);
    let csv = text(&out.stdout);
    assert!(csv.starts_with("item_id,title,cid,status,moq,price_source,tiers"));
    assert!(csv.lines().count() > 1500, "one row per SKU");

    // Mutations, then an incremental pass, then a backfill that finds nothing new.
    sim.admin_post(&format!("/_sim/shops/{member}/mutate"), r#"{"op": "update", "count": 7}"#);
    let out = setup.shopsync(&["sync", "--config", "@CONFIG@"]);
    assert!(text(&out.stdout).contains("7 updated"), "{}", text(&out.stdout));
    let out = setup.shopsync(&["sync", "--config", "@CONFIG@", "--shop", &member, "--since", "2020-01-01"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("0 created, 0 updated, 0 deleted"), "{}", text(&out.stdout));

    let out = setup.shopsync(&["state", "reset", "--config", "@CONFIG@", "--shop", &member]);
    assert!(out.status.success());
    let out = setup.shopsync(&["sync", "--config", "@CONFIG@"]);
    assert!(
        text(&out.stdout).contains("Full pass"),
        "after a reset the next pass is full: {}",
        text(&out.stdout)
    );
}

#[test]
fn bad_config_and_bad_shops_get_clear_errors() {
    let setup =
        Setup::new("[daemon]\nstate_dir = \"@DIR@/state\"\n\n[pacing]\nsuccess_interval = \"soon\"\n");
    let out = setup.shopsync(&["check-config", &setup.config.display().to_string()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("line 5") && err.contains("column 20") && err.contains("not a duration"), "{err}");

    let setup = Setup::new("[[shops]]\nmember_id = \"123\"\n");
    let out = setup.shopsync(&["check-config", &setup.config.display().to_string()]);
    assert!(
        text(&out.stderr).contains("member id \"123\" is not 16 decimal digits"),
        "{}",
        text(&out.stderr)
    );

    let setup = Setup::new("[[shops]]\nurl = \"https://example.com/shop/1.html\"\n");
    let out = setup.shopsync(&["check-config", &setup.config.display().to_string()]);
    assert!(text(&out.stderr).contains("not on 1688.com"), "{}", text(&out.stderr));
}
