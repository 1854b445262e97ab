//! The webhook sink against local receivers that fail, hang and reject: every event arrives
//! signed, a receiver that throttles (429, 408, `Retry-After`) is waited for rather than
//! refused, a refused batch goes to the dead-letter queue with a clear error.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use shopsync_e2e::{plugin_dir, text, Setup, SimProc};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Seen {
    ids: BTreeSet<String>,
    requests: usize,
    bad_signatures: usize,
    /// When each request arrived.
    at: Vec<std::time::Instant>,
}

/// A receiver answering the n-th request with `script[n]` ("500", "hang", "400", "408", or
/// "429" which asks to wait a second with `Retry-After`; "200" past
/// the end of the script, or always `fallback`).
fn receiver(script: Vec<&'static str>, fallback: &'static str) -> (String, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut len, mut sig) = (0usize, String::new());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                let l = line.to_ascii_lowercase();
                if let Some(v) = l.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if let Some(v) = line
                    .strip_prefix("X-Shopsync-Signature:")
                    .or_else(|| line.strip_prefix("x-shopsync-signature:"))
                {
                    sig = v.trim().to_string();
                }
                line.clear();
            }
            let mut body = vec![0u8; len];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let n = {
                let mut s = s2.lock().unwrap();
                s.requests += 1;
                s.at.push(std::time::Instant::now());
                s.requests - 1
            };
            let act = script.get(n).copied().unwrap_or(fallback);
            let mut out = stream;
            match act {
                "hang" => {
                    std::thread::sleep(Duration::from_millis(1_500));
                    continue;
                }
                "429" => {
                    let _ = write!(
                        out,
                        "HTTP/1.1 429 X\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                }
                "500" | "400" | "408" => {
                    let _ = write!(out, "HTTP/1.1 {act} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                }
                _ => {
                    let mut mac = Hmac::<Sha256>::new_from_slice(b"hook-key").unwrap();
                    mac.update(&body);
                    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                    let mut s = s2.lock().unwrap();
                    if want != sig {
                        s.bad_signatures += 1;
                    }
                    let events: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
                    s.ids.extend(events.iter().map(|e| e["id"].as_str().unwrap().to_string()));
                    let _ = write!(out, "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                }
            }
        }
    });
    (url, seen)
}

#[test]
fn webhook_survives_failures_and_dead_letters_refusals() {
    // No churn: the test counts the events delivered.
    let sim = SimProc::start(&["--shops", "1", "--items", "300", "--calm", "--churn", "0"]);
    let member = sim.admin_get("/_sim/shops")[0]["member_id"].as_str().unwrap().to_string();
    // Five failures in a row: the plugin's own retries run out once, the host retries later.
    let (flaky_url, flaky) = receiver(vec!["500", "hang", "500", "500", "hang"], "200");
    let (strict_url, strict) = receiver(vec![], "400");
    let (slow_url, slow) = receiver(vec!["429", "408", "429"], "200");
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
name = "hook"
plugin = "webhook"
start = "earliest"
batch_size = 100
config = {{ url = "{flaky_url}", secret_file = "@DIR@/hook-key", timeout_ms = 300, retries = 2 }}
[[sinks]]
name = "strict"
plugin = "webhook"
start = "earliest"
batch_size = 100
reject_attempts = 2
config = {{ url = "{strict_url}", secret_file = "@DIR@/hook-key", timeout_ms = 300 }}
[[sinks]]
name = "throttled"
plugin = "webhook"
start = "earliest"
batch_size = 100
reject_attempts = 1
config = {{ url = "{slow_url}", secret_file = "@DIR@/hook-key", timeout_ms = 300, retries = 3 }}
"#,
        gw = sim.gateway()
    );
    let setup = Setup::new(&config);
    std::fs::write(setup.path().join("hook-key"), "hook-key\n").unwrap();
    plugin_dir(&setup.path().join("plugins"));
    std::env::set_var("SHOPSYNC_E2E_SECRET", "sim-secret-1");
    let out = setup.shopsync(&["sync", "--config", "@CONFIG@"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = setup.shopsync(&["deliver", "--config", "@CONFIG@"]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("sink hook: 300 events delivered"), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("sink strict: 0 events delivered, 300 dead-lettered"), "{stdout}");
    let f = flaky.lock().unwrap();
    assert_eq!(f.ids.len(), 300, "every event arrived");
    assert_eq!(f.bad_signatures, 0, "every batch carried a valid HMAC-SHA256 signature");
    assert!(f.requests >= 8, "failures were retried ({} requests)", f.requests);
    assert!(strict.lock().unwrap().ids.is_empty());
    assert!(stdout.contains("sink throttled: 300 events delivered, 0 dead-lettered"), "{stdout}");
    let t = slow.lock().unwrap();
    assert_eq!(t.ids.len(), 300, "a throttling receiver gets every event");
    assert!(
        t.at[1] - t.at[0] >= Duration::from_millis(950) && t.at[3] - t.at[2] >= Duration::from_millis(950),
        "Retry-After was honoured: {:?}",
        t.at.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
    );
    let status = setup.status_json().expect("status --json");
    let strict = status["sinks"].as_array().and_then(|a| a.iter().find(|s| s["name"] == "strict")).cloned();
    // A receiver that refuses everything refuses each event: the host splits the batches
    // down to single events, each its own dead letter.
    let strict = strict.expect("the strict sink in status");
    assert_eq!(
        (strict["dead_letter_events"].as_u64(), strict["dead_letter_batches"].as_u64()),
        (Some(300), Some(300)),
        "status shows the dead letters: {strict}"
    );
}
