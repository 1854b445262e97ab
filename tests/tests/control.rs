//! The control plane: with `shopsync run` up, the CLI's commands answer from another process
//! through the daemon's control socket (sled stays locked to the daemon), print what they
//! print once the daemon is gone, and the socket serves no other user.

use shopsync_e2e::{text, wait_for, Setup, SimProc};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

fn lines(p: &std::path::Path) -> usize {
    std::fs::read_to_string(p).map(|s| s.lines().count()).unwrap_or(0)
}

fn ok(out: &Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed: {}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// `status --json` without what only a running daemon knows (a sink's health).
fn comparable_status(mut v: serde_json::Value) -> serde_json::Value {
    for s in v["sinks"].as_array_mut().expect("sinks") {
        s["healthy"] = serde_json::Value::Null;
    }
    v
}

#[test]
fn cli_commands_answer_through_the_socket_beside_a_running_daemon() {
    let (sim, member) = SimProc::one_shop(300, &["--calm"]);
    // Crons that do not fire during the test: the only passes are the first one (a shop
    // never synced gets its full pass at start) and those asked for on the socket.
    let config = format!(
        "[daemon]\nstate_dir = \"@DIR@/state\"\nplugin_dir = \"@DIR@/plugins\"\nmetrics_listen = \"127.0.0.1:0\"\n\
         [api]\nbase_url = \"{}\"\n[pacing]\nsuccess_interval = \"0ms\"\nmax_calls_per_sec = 200\n\
         [[accounts]]\nname = \"main\"\napp_key = \"10000001\"\napp_secret_file = \"@DIR@/secret\"\n\
         [[shops]]\nmember_id = \"{member}\"\nincremental = \"0 0 4 1 1 *\"\nfull = \"0 0 3 1 1 *\"\n\
         [[sinks]]\nname = \"events\"\nplugin = \"jsonl\"\nstart = \"earliest\"\nconfig = {{ path = \"@DIR@/events.jsonl\" }}\n",
        sim.gateway()
    );
    let setup = Setup::new(&config);
    std::fs::write(setup.path().join("secret"), "sim-secret-1").unwrap();
    let mut daemon = setup.spawn_daemon();
    let events = setup.path().join("events.jsonl");
    let socket = setup.path().join("state/control.sock");
    wait_for("the first full pass to reach the sink", 60, || lines(&events) >= 300);
    assert!(socket.exists(), "the control socket is at <state_dir>/control.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the control socket's mode is {mode:o}");

    // status, both ways, from this process while the daemon holds the state.
    let table = ok(&setup.shopsync(&["status", "--config", "@CONFIG@"]), "status");
    for want in [member.as_str(), "watermark", "UTC", "ago)", "items             300", "healthy", "main"] {
        assert!(table.contains(want), "status lacks {want:?}:\n{table}");
    }
    assert!(!table.contains("sim-secret-1"));
    let st = setup.status_json().expect("status --json answers beside the daemon");
    assert_eq!(st["shops"][0]["state"]["item_count"], 300, "{st}");
    assert_eq!(st["sinks"][0]["healthy"], true, "{st}");

    let evs = ok(&setup.shopsync(&["events", "--config", "@CONFIG@"]), "events");
    assert_eq!(evs.lines().count(), 300);
    assert_eq!(setup.exported_md5s(&member).len(), 300);

    // sync --shop queues a pass in the daemon, which picks up the changes.
    sim.admin_post(&format!("/_sim/shops/{member}/mutate"), r#"{"op": "update", "count": 5}"#);
    let queued = ok(&setup.shopsync(&["sync", "--shop", &member, "--config", "@CONFIG@"]), "sync --shop");
    assert!(queued.contains("queued in the running daemon"), "{queued}");
    wait_for("the queued pass's updates to reach the sink", 30, || lines(&events) >= 305);
    wait_for("the queued pass to be recorded", 10, || {
        setup.status_json().is_some_and(|s| !s["shops"][0]["state"]["last_incremental"].is_null())
    });

    let replay =
        ok(&setup.shopsync(&["dlq", "replay", "--sink", "events", "--config", "@CONFIG@"]), "dlq replay");
    assert_eq!(replay.trim(), "sink events: 0 dead-lettered events re-sent, 0 still refused");
    let unknown = setup.shopsync(&["dlq", "replay", "--sink", "nope", "--config", "@CONFIG@"]);
    assert!(!unknown.status.success() && text(&unknown.stderr).contains("no sink named \"nope\""));

    let reset =
        ok(&setup.shopsync(&["state", "reset", "--shop", &member, "--config", "@CONFIG@"]), "state reset");
    assert_eq!(reset.trim(), format!("shop {member}: watermark forgotten; its next pass is full"));
    assert!(setup.status_json().unwrap()["shops"][0]["state"]["watermark_ms"].is_null());

    let reload = ok(&setup.shopsync(&["reload", "--config", "@CONFIG@"]), "reload");
    assert!(reload.starts_with("config reloaded: 1 shops"), "{reload}");

    // A daemon whose socket does not answer: one sentence, with its pid, no sled dump.
    let aside = setup.path().join("state/aside.sock");
    std::fs::rename(&socket, &aside).unwrap();
    let held = setup.shopsync(&["status", "--config", "@CONFIG@"]);
    let msg = text(&held.stderr);
    assert!(!held.status.success());
    assert!(
        msg.contains(&format!("is held by another shopsync process (pid {})", daemon.0.id()))
            && msg.contains("does not answer")
            && !msg.contains("Os {"),
        "{msg}"
    );
    std::fs::rename(&aside, &socket).unwrap();

    // What the daemon answered, against what the CLI reads from the state once it is gone.
    let with = (
        ok(&setup.shopsync(&["events", "--config", "@CONFIG@"]), "events"),
        ok(
            &setup.shopsync(&["export", "--format", "csv", "--shop", &member, "--config", "@CONFIG@"]),
            "export",
        ),
        comparable_status(setup.status_json().unwrap()),
    );
    let export_note = text(
        &setup.shopsync(&["export", "--format", "jsonl", "--shop", &member, "--config", "@CONFIG@"]).stderr,
    );
    shopsync_e2e::sh(&format!("kill -TERM {}", daemon.0.id()));
    assert!(daemon.0.wait().unwrap().success());
    assert!(!socket.exists(), "the socket file is removed at a clean shutdown");
    let without = (
        ok(&setup.shopsync(&["events", "--config", "@CONFIG@"]), "events"),
        ok(
            &setup.shopsync(&["export", "--format", "csv", "--shop", &member, "--config", "@CONFIG@"]),
            "export",
        ),
        comparable_status(setup.status_json().unwrap()),
    );
    assert_eq!(with.0, without.0, "events differ with and without the daemon");
    assert_eq!(with.1, without.1, "export differs with and without the daemon");
    assert_eq!(with.2, without.2, "status --json differs with and without the daemon");
    assert_eq!(
        export_note,
        text(
            &setup
                .shopsync(&["export", "--format", "jsonl", "--shop", &member, "--config", "@CONFIG@"])
                .stderr
        )
    );
    let table = ok(&setup.shopsync(&["status", "--config", "@CONFIG@"]), "status");
    assert!(table.contains("no daemon"), "{table}");
    let reload = setup.shopsync(&["reload", "--config", "@CONFIG@"]);
    assert!(!reload.status.success() && text(&reload.stderr).contains("nothing to reload"));
}

#[test]
fn the_control_socket_refuses_another_user() {
    if shopsync_e2e::sh("id -u") != "0" {
        println!("NOT RUN: running the client as another user needs root");
        return;
    }
    let setup = Setup::new(
        "[daemon]\nstate_dir = \"@DIR@/state\"\nplugin_dir = \"@DIR@/plugins\"\nmetrics_listen = \"127.0.0.1:0\"\n",
    );
    // The other user may read the config and reach the socket: only the socket stops it.
    std::fs::set_permissions(setup.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&setup.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _daemon = setup.spawn_daemon();
    let socket = setup.path().join("state/control.sock");
    wait_for("the control socket", 30, || socket.exists());
    std::fs::set_permissions(setup.path().join("state"), std::fs::Permissions::from_mode(0o755)).unwrap();
    // The other user runs its own copy of the client: the checkout (and its target dir) may
    // sit where only root can reach it, e.g. in a `mktemp -d` directory (mode 0700).
    let client = setup.path().join("shopsync-client");
    std::fs::copy(shopsync_e2e::bin("shopsync"), &client).expect("copy the client binary");
    std::fs::set_permissions(&client, std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = || {
        use std::os::unix::process::CommandExt;
        Command::new(&client)
            .args(["status", "--config"])
            .arg(&setup.config)
            .env("SHOPSYNC_LOG", "warn")
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap()
    };
    // Mode 0600 keeps it out...
    let out = as_nobody();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("refuses this user"), "{}", text(&out.stderr));
    // ...and were the mode opened, the daemon's uid check still would.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("serves only uid 0"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "nothing of the state reaches another user");
    // The owner is still served.
    assert!(setup.status_json().is_some());
}
