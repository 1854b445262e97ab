//! `shopsync auth` as an operator meets it under `protocol = "param2"`, against sim1688's
//! authorize page and token endpoint: the code pasted on stdin with no daemon running, then
//! the redirect received on a loopback port while a daemon holds the state; `status` and the
//! metric say how long the authorization lasts; the daemon then calls the gateway with it;
//! and no token, code or secret shows in any output or log.

use shopsync_e2e::{bin, free_port, metrics_text, text, wait_for, Guard, Setup, SimProc};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};

const KEY: &str = "10000003";
const SECRET: &str = "sim-secret-3";
const SIM_FLAGS: [&str; 7] = ["--shops", "2", "--items", "40", "--calm", "--churn", "0"];

fn config(sim: &SimProc, metrics_port: u16) -> String {
    format!(
        r#"
[daemon]
state_dir = "@DIR@/state"
metrics_listen = "127.0.0.1:{metrics_port}"

[api]
protocol = "param2"
param2_root = "{base}/openapi/"
param2_auth_url = "{base}/oauth/authorize"
read_timeout = "5s"

[pacing]
success_interval = "0ms"
failure_interval = "20ms"
throttled_interval = "50ms"

[[accounts]]
name = "p2"
app_key = "{KEY}"
app_secret_file = "@DIR@/secret"
oauth = true

[[accounts]]
name = "plain"
app_key = "10000001"
app_secret_file = "@DIR@/secret1"
"#,
        base = sim.base
    )
}

/// `shopsync auth ARGS` with stdin, stdout and stderr piped.
fn spawn_auth(setup: &Setup, args: &[&str]) -> Child {
    Command::new(bin("shopsync"))
        .args(["auth", "--config"])
        .arg(&setup.config)
        .args(args)
        .env("SHOPSYNC_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("shopsync auth starts")
}

/// Reads the authorization URL (the first stdout line), then lets `finish` act as the user;
/// returns the whole output, the URL's line included.
fn run_auth(mut child: Child, finish: impl FnOnce(&str, &mut Child)) -> (String, Output) {
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut url = String::new();
    stdout.read_line(&mut url).expect("the URL line");
    let url = url.trim().to_string();
    finish(&url, &mut child);
    let mut out = child.wait_with_output().expect("auth ends");
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
    out.stdout = format!("{url}\n{rest}").into_bytes();
    (url, out)
}

/// Where the sim's authorize page sends the browser (curl does not follow it).
fn redirect_of(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{redirect_url}", url])
        .output()
        .expect("curl");
    text(&out.stdout).trim().to_string()
}

fn param(url: &str, key: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(String::from))
}

fn account<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["accounts"].as_array().and_then(|a| a.iter().find(|x| x["name"] == name)).expect("the account")
}

#[test]
fn an_operator_authorizes_a_param2_account_and_the_daemon_uses_it() {
    // The same seed gives the same shops: the first run only learns the member ids, so that
    // the authorizing member can be the second shop's (not the simulator's default).
    let members: Vec<String> = {
        let probe = SimProc::start(&SIM_FLAGS);
        let shops = probe.admin_get("/_sim/shops");
        shops
            .as_array()
            .expect("shops")
            .iter()
            .map(|s| s["member_id"].as_str().expect("id").to_string())
            .collect()
    };
    let member = members[1].clone();
    let mut flags = SIM_FLAGS.to_vec();
    let pair = format!("{KEY}={member}");
    flags.extend(["--authorize-member", &pair]);
    let sim = SimProc::start(&flags);
    let metrics_port = free_port();
    let setup = Setup::new(&config(&sim, metrics_port));
    std::fs::write(setup.path().join("secret"), format!("{SECRET}\n")).expect("secret");
    std::fs::write(setup.path().join("secret1"), "sim-secret-1\n").expect("secret");
    let mut shown = String::new();

    // Mistakes, one sentence each.
    let out = setup.shopsync(&[
        "auth",
        "--config",
        "@CONFIG@",
        "--account",
        "nosuch",
        "--redirect-uri",
        "http://x/",
    ]);
    assert!(
        !out.status.success() && text(&out.stderr).contains("has no account \"nosuch\""),
        "{}",
        text(&out.stderr)
    );
    let out = setup.shopsync(&[
        "auth",
        "--config",
        "@CONFIG@",
        "--account",
        "plain",
        "--redirect-uri",
        "http://x/",
    ]);
    assert!(text(&out.stderr).contains("does not use OAuth"), "{}", text(&out.stderr));

    // Before any authorization, status says what to run.
    let status = setup.status_json().expect("status");
    assert_eq!(account(&status, "p2")["authorization"]["authorized"], false);
    assert!(account(&status, "plain")["authorization"].is_null());

    // A wrong code is refused in one sentence.
    let child = spawn_auth(&setup, &["--account", "p2", "--redirect-uri", "http://127.0.0.1:9/cb"]);
    let (_, out) = run_auth(child, |_, c| {
        c.stdin.take().expect("stdin").write_all(b"not-the-code\n").expect("paste");
    });
    let err = text(&out.stderr);
    assert!(!out.status.success() && err.contains("refused the code"), "{err}");
    shown += &(text(&out.stdout) + &err);

    // The code pasted on stdin: the user copies the address the browser was sent to.
    let mut code = String::new();
    let child = spawn_auth(&setup, &["--account", "p2", "--redirect-uri", "http://127.0.0.1:9/cb"]);
    let (url, out) = run_auth(child, |url, c| {
        let landing = redirect_of(url);
        assert!(landing.starts_with("http://127.0.0.1:9/cb?code="), "{landing}");
        code = param(&landing, "code").expect("a code");
        c.stdin.take().expect("stdin").write_all(format!("{landing}\n").as_bytes()).expect("paste");
    });
    assert!(
        url.starts_with(&format!("{}/oauth/authorize?client_id={KEY}&site=1688&redirect_uri=", sim.base)),
        "{url}"
    );
    assert!(param(&url, "state").is_some_and(|s| s.len() == 32), "{url}");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("(member {member})"))
            && (stdout.contains("lasts 179d") || stdout.contains("lasts 180d")),
        "{stdout}"
    );
    shown += &(stdout + &text(&out.stderr));

    let status = setup.status_json().expect("status");
    let a = &account(&status, "p2")["authorization"];
    assert_eq!(a["authorized"], true, "{a}");
    assert_eq!(a["member_id"], member.as_str());
    let left = a["seconds_left"].as_i64().expect("seconds left");
    assert!((179 * 86_400..=180 * 86_400).contains(&left), "{left}");
    let table = setup.shopsync(&["status", "--config", "@CONFIG@"]);
    assert!(text(&table.stdout).contains("ends in 179d"), "{}", text(&table.stdout));

    // A daemon now holds the state: the second authorization goes through its socket, and
    // the test plays the browser, following the redirect to the CLI's loopback listener.
    let log = setup.path().join("daemon.log");
    let _daemon = Guard(
        Command::new(bin("shopsync"))
            .args(["run", "--config"])
            .arg(&setup.config)
            .env("SHOPSYNC_LOG", "debug")
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("shopsync run starts"),
    );
    wait_for("the daemon's metrics", 20, || !metrics_text(metrics_port).is_empty());
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let child = spawn_auth(&setup, &["--account", "p2", "--listen", &listen, "--timeout", "20s"]);
    let (url, out) = run_auth(child, |url, _| {
        let page = Command::new("curl").args(["-sL", url]).output().expect("curl");
        assert!(text(&page.stdout).contains("close this tab"), "{}", text(&page.stdout));
    });
    assert!(param(&url, "redirect_uri").is_some_and(|u| u.contains(&port)), "{url}");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("authorized by"), "{}", text(&out.stdout));
    shown += &(text(&out.stdout) + &text(&out.stderr));

    let status = setup.status_json().expect("status through the daemon");
    assert_eq!(account(&status, "p2")["authorization"]["authorized"], true);
    let metrics = metrics_text(metrics_port);
    let expiry = metrics
        .lines()
        .find(|l| l.starts_with("shopsync_account_authorization_expiry_timestamp_seconds{account=\"p2\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .expect("the expiry metric");
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();
    assert!(expiry - now > 179.0 * 86_400.0, "{expiry}");
    shown += &metrics;

    // The daemon calls the gateway with the stored authorization.
    let out = setup.shopsync(&["sync", "--config", "@CONFIG@", "--shop", &member]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    shown += &(text(&out.stdout) + &text(&out.stderr));
    // Through the daemon the pass is only queued: wait for what it stored.
    wait_for("the daemon's pass of the authorizing shop", 30, || {
        let status = setup.status_json().unwrap_or_default();
        status["shops"].as_array().is_some_and(|shops| {
            shops.iter().any(|s| s["shop"] == member.as_str() && s["state"]["item_count"].as_u64() > Some(0))
        })
    });
    let metrics = metrics_text(metrics_port);
    assert!(
        metrics.lines().any(|l| l.starts_with("shopsync_api_calls_total{account=\"p2\"") && l.contains("outcome=\"ok\"")),
        "no successful call of account p2"
    );
    shown += &metrics;
    drop(_daemon);

    // No secret anywhere an operator looks.
    let store = shopsync::state::Store::open(&setup.path().join("state"), 8 << 20).expect("state");
    let token = shopsync::api::TokenStore::load(&store, "p2").expect("a stored token");
    shown += &std::fs::read_to_string(&log).expect("daemon log");
    let secrets = [
        token.access_token.expose().to_string(),
        token.refresh_token.expect("refresh token").expose().to_string(),
        code,
        SECRET.to_string(),
    ];
    for s in &secrets {
        assert!(!s.is_empty() && !shown.contains(s.as_str()), "a secret leaked into the output or the log");
    }
}
