//! Sink plugins loaded at run time by the real binary: JSONL, the C plugin, and plugins that
//! panic, fail, hang, reject or speak the wrong ABI. The good sinks get every event; the bad
//! ones never take shopsync down and lose nothing once they recover.

use shopsync_e2e::{ids_in_batches, plugin_dir, text, Setup, SimProc};
use std::collections::BTreeSet;

fn ids_in_jsonl(path: &std::path::Path) -> Vec<String> {
    let body = std::fs::read_to_string(path).unwrap_or_default();
    body.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_sink_gets_every_event_and_bad_plugins_never_take_shopsync_down() {
    // No churn: every sink must get exactly the events of the passes below.
    let sim = SimProc::start(&["--shops", "1", "--items", "600", "--calm", "--churn", "0"]);
    let member = sim.admin_get("/_sim/shops")[0]["member_id"].as_str().unwrap().to_string();
    let config = format!(
        r#"
[daemon]
state_dir = "@DIR@/state"
plugin_dir = "@DIR@/plugins"
[api]
base_url = "{gw}"
[pacing]
success_interval = "0ms"
max_calls_per_sec = 0
[[accounts]]
name = "main"
app_key = "10000001"
app_secret_env = "SHOPSYNC_E2E_SECRET"
[[shops]]
member_id = "{member}"

[[sinks]]
name = "archive"
plugin = "jsonl"
start = "earliest"
batch_size = 100
config = {{ path = "@DIR@/out/events.jsonl" }}

[[sinks]]
name = "c"
plugin = "c-example"
start = "earliest"
config = {{ path = "@DIR@/out/c.jsonl" }}

[[sinks]]
name = "panicky"
plugin = "testkit"
start = "earliest"
config = {{ mode = "panic", times = 2, path = "@DIR@/out/panicky.jsonl" }}

[[sinks]]
name = "flaky"
plugin = "testkit"
start = "earliest"
config = {{ mode = "error", times = 3, path = "@DIR@/out/flaky.jsonl" }}

[[sinks]]
name = "hung"
plugin = "testkit"
start = "earliest"
timeout = "300ms"
config = {{ mode = "hang", hang_ms = 1500, times = 1, path = "@DIR@/out/hung.jsonl" }}

[[sinks]]
name = "picky"
plugin = "testkit"
start = "earliest"
reject_attempts = 2
batch_size = 200
config = {{ mode = "reject", times = 1000000, path = "@DIR@/out/picky.jsonl" }}

[[sinks]]
name = "future"
plugin = "c_v2"
start = "earliest"
config = {{ path = "@DIR@/out/never.jsonl" }}
"#,
        gw = sim.gateway()
    );
    let setup = Setup::new(&config);
    plugin_dir(&setup.path().join("plugins"));
    std::env::set_var("SHOPSYNC_E2E_SECRET", "sim-secret-1");

    let out = setup.shopsync(&["sync", "--config", "@CONFIG@"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = setup.shopsync(&["deliver", "--config", "@CONFIG@"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "a sink that cannot load makes the run fail");
    assert!(stderr.contains("speaks ABI version 2, this shopsync speaks 1"), "{stderr}");

    let outdir = setup.path().join("out");
    let all: BTreeSet<String> = ids_in_jsonl(&outdir.join("events.jsonl")).into_iter().collect();
    assert_eq!(all.len(), 600, "{stdout}");
    assert_eq!(
        ids_in_batches(&outdir.join("c.jsonl")).into_iter().collect::<BTreeSet<_>>(),
        all,
        "the C plugin got every event"
    );
    for sink in ["panicky", "flaky", "hung"] {
        let got: BTreeSet<String> =
            ids_in_batches(&outdir.join(format!("{sink}.jsonl"))).into_iter().collect();
        assert_eq!(got, all, "{sink} recovered and lost nothing: {stdout}");
    }
    assert!(stdout.contains("sink picky: 0 events delivered, 600 dead-lettered"), "{stdout}");

    // The dead letters go out again once the sink accepts them.
    let fixed = std::fs::read_to_string(&setup.config)
        .unwrap()
        .replace("mode = \"reject\", times = 1000000", "mode = \"ok\"");
    std::fs::write(&setup.config, fixed).unwrap();
    let out = setup.shopsync(&["dlq", "replay", "--config", "@CONFIG@", "--sink", "picky"]);
    assert!(
        text(&out.stdout).contains("600 dead-lettered events re-sent, 0 still refused"),
        "{}",
        text(&out.stdout)
    );
    let got: BTreeSet<String> = ids_in_batches(&outdir.join("picky.jsonl")).into_iter().collect();
    assert_eq!(got, all);

    // A world-writable plugin is refused, naming the file.
    use std::os::unix::fs::PermissionsExt;
    let lib = setup.path().join("plugins/libshopsync_sink_jsonl.so");
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = setup.shopsync(&["deliver", "--config", "@CONFIG@"]);
    assert!(text(&out.stderr).contains("is group- or world-writable"), "{}", text(&out.stderr));
}
