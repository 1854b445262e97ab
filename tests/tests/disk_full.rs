//! The state directory fills up mid-pass (a 6 MiB tmpfs): the daemon says so clearly and
//! exits non-zero (systemd's Restart=on-failure brings it back), `status` says the disk is
//! full rather than blaming another process, nothing committed is damaged, and once there
//! is room again the next run finishes the shop: every item equals the ground truth and every
//! numbered event reaches the sink. Mounting needs root (CI and the project's machines run
//! the tests as root); elsewhere the test says it did not run.

use shopsync_e2e::{
    bin, free_port, metric_sum, metrics_text, seqs_in_jsonl, sh, text, truth_md5s, Guard, Setup, SimProc,
};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Unmounts the tmpfs when the test ends, however it ends.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_a_clear_error_and_the_next_run_resumes() {
    if sh("id -u") != "0" {
        eprintln!("NOT RUN: mounting a small tmpfs needs root");
        return;
    }
    // No churn: the state is compared with the truth.
    let fast =
        ["--rate-limit", "400", "--hang-ms", "1500", "--quota-commercial", "100000000", "--churn", "0"];
    let (sim, member) = SimProc::one_shop(8000, &fast);
    let port = free_port();
    let setup = Setup::new(&format!(
        "[daemon]\nstate_dir = \"@DIR@/state\"\nplugin_dir = \"@DIR@/plugins\"\nmetrics_listen = \"127.0.0.1:{port}\"\n\
         [api]\nbase_url = \"{}\"\nread_timeout = \"1s\"\nmax_attempts = 30\n\
         [pacing]\nconcurrency = 8\nsuccess_interval = \"0ms\"\nfailure_interval = \"20ms\"\nmax_calls_per_sec = 300\n\
         [[accounts]]\nname = \"main\"\napp_key = \"10000001\"\napp_secret_file = \"@DIR@/secret\"\ndaily_quota = 100000000\n\
         [[shops]]\nmember_id = \"{member}\"\nincremental = \"*/2 * * * * *\"\n\
         [[sinks]]\nname = \"file\"\nplugin = \"jsonl\"\nstart = \"earliest\"\nconfig = {{ path = \"@DIR@/events.jsonl\" }}\n",
        sim.gateway()
    ));
    std::fs::write(setup.path().join("secret"), "sim-secret-1").unwrap();
    let state = setup.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    sh(&format!("mount -t tmpfs -o size=6m tmpfs {}", state.display()));
    let _mount = Mount(state.clone());

    // The first run fills the disk mid-pass and stops with a clear message.
    let log = setup.path().join("run1.log");
    let mut daemon = Guard(
        Command::new(bin("shopsync"))
            .args(["run", "--config"])
            .arg(&setup.config)
            .env("SHOPSYNC_LOG", "warn")
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the daemon kept running on a full disk");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "a state it cannot write is a failure exit, for Restart=on-failure");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.lines().any(|l| l.starts_with("shopsync: the state in")
            && l.contains("cannot be written")
            && l.contains("No space left on device")),
        "the exit message says what happened:\n{log}"
    );
    assert!(!log.contains("sim-secret-1"));

    // While the disk is full the state cannot even be opened, and the message says why.
    let out = setup.shopsync(&["status", "--config", "@CONFIG@"]);
    let err = text(&out.stderr);
    assert!(!out.status.success() && err.contains("No space left on device"), "{err}");
    assert!(!err.contains("another shopsync"), "a full disk is not blamed on a lock: {err}");

    // Room again: the state opens with what was committed, and the next run finishes.
    sh(&format!("mount -o remount,size=128m {}", state.display()));
    let st = setup.status_json().expect("sled opens after the full disk");
    let kept = st["shops"][0]["state"]["item_count"].as_u64().unwrap_or(0);
    assert!(kept > 0 && kept < 8000, "the first run committed part of the shop ({kept} items)");

    let mut daemon = setup.spawn_daemon();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let m = metrics_text(port);
        let full = metric_sum(&m, "shopsync_passes_total", &["kind=\"full\"", "result=\"ok\""]);
        if full >= 1.0 && m.contains("shopsync_sink_lag_events{sink=\"file\"} 0") {
            break;
        }
        assert!(Instant::now() < deadline, "the second run did not finish the shop");
        std::thread::sleep(Duration::from_millis(250));
    }
    sh(&format!("kill -TERM {}", daemon.0.id()));
    assert!(daemon.0.wait().unwrap().success());

    let truth = truth_md5s(&sim, &member);
    let held = setup.exported_md5s(&member);
    let want: std::collections::BTreeMap<String, String> =
        truth.into_iter().map(|(id, (md5, _))| (id, md5)).collect();
    assert_eq!(held, want, "the state equals the ground truth");

    let st = setup.status_json().expect("status --json");
    let next_seq = st["shops"][0]["state"]["next_seq"].as_u64().unwrap();
    let seqs = seqs_in_jsonl(&setup.path().join("events.jsonl"));
    let lost: Vec<u64> = (1..next_seq).filter(|s| !seqs.contains(s)).take(5).collect();
    assert!(next_seq > 8000 && lost.is_empty(), "every numbered event reached the sink; lost {lost:?}");
}
