//! Test scaffolding for end-to-end tests: finds (or builds) the real binaries, starts
//! `sim1688` on a free loopback port, gives each test its own state dir and config, and runs
//! `shopsync` as a user would.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;

pub mod budget;
pub mod crash;
pub mod storm;
pub mod truth;

/// `target/<profile>/`, where cargo puts the workspace's binaries.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    let dir = exe.parent().expect("executable dir");
    // Tests live in target/<profile>/deps, binaries in target/<profile>.
    if dir.ends_with("deps") {
        dir.parent().expect("profile dir").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// Builds the whole workspace (binaries and plugins) once per process, in one cargo call:
/// building packages one by one unifies dependency features differently each time, and the
/// binaries would be rebuilt back and forth.
fn build_workspace() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let mut cmd = Command::new(env!("CARGO"));
        // From the workspace, wherever the binary was started (a benchmark run from /tmp).
        cmd.args(["build", "-q", "--workspace"]).current_dir(env!("CARGO_MANIFEST_DIR"));
        if bin_dir().ends_with("release") {
            cmd.arg("--release");
        }
        assert!(cmd.status().map(|s| s.success()).unwrap_or(false), "building the workspace failed");
    });
}

/// Path of a workspace binary, built once if this test run did not build it yet.
pub fn bin(name: &str) -> PathBuf {
    build_workspace();
    bin_dir().join(name)
}

/// A running `sim1688`; killed when dropped.
pub struct SimProc {
    child: Child,
    pub base: String,
}

impl SimProc {
    /// Starts `sim1688` with these extra flags on a free port.
    pub fn start(args: &[&str]) -> SimProc {
        let mut child = Command::new(bin("sim1688"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("sim1688 starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok).expect("sim1688 prints its address");
        let base = first.strip_prefix("listening ").expect("listening line").to_string();
        // Keep draining stdout so the simulator never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        SimProc { child, base }
    }

    /// The simulator's process id (its CPU time is in `/proc/<pid>/stat`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `sim1688` with one shop of `items` items and these extra flags; returns it with
    /// the shop's member id.
    pub fn one_shop(items: u64, args: &[&str]) -> (SimProc, String) {
        let items = items.to_string();
        let mut all = vec!["--shops", "1", "--items", &items];
        all.extend_from_slice(args);
        let sim = SimProc::start(&all);
        let member = sim.admin_get("/_sim/shops")[0]["member_id"].as_str().expect("member id").to_string();
        (sim, member)
    }

    pub fn gateway(&self) -> String {
        format!("{}/openapi/param2/2/portals.open/api/", self.base)
    }

    /// `GET /_sim/...` as JSON (curl keeps this crate free of an HTTP client).
    pub fn admin_get(&self, path: &str) -> serde_json::Value {
        let out =
            Command::new("curl").args(["-sf", &format!("{}{path}", self.base)]).output().expect("curl runs");
        assert!(out.status.success(), "GET {path} failed");
        serde_json::from_slice(&out.stdout).expect("JSON")
    }

    pub fn admin_post(&self, path: &str, body: &str) -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-sf", "-X", "POST", "-H", "content-type: application/json", "-d", body])
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "POST {path} failed");
        if out.stdout.is_empty() {
            return serde_json::Value::Null; // 204 No Content
        }
        serde_json::from_slice(&out.stdout).expect("JSON")
    }
}

impl Drop for SimProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test's own folder with a config file.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Setup {
    pub fn new(config_text: &str) -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("shopsync.toml");
        std::fs::write(&config, config_text.replace("@DIR@", &dir.path().display().to_string()))
            .expect("write config");
        Setup { dir, config }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// [`Setup::spawn_daemon`], its warnings and errors written to `daemon.log` in the
    /// setup's directory (for long runs whose daemon may die on the way).
    pub fn spawn_daemon_logged(&self) -> Guard {
        let log = std::fs::File::create(self.path().join("daemon.log")).expect("daemon log");
        self.spawn_daemon_to(Stdio::from(log))
    }

    /// Starts `shopsync run` on this setup's config; killed when the guard drops.
    pub fn spawn_daemon(&self) -> Guard {
        self.spawn_daemon_to(Stdio::null())
    }

    fn spawn_daemon_to(&self, stderr: Stdio) -> Guard {
        let child = Command::new(bin("shopsync"))
            .args(["run", "--config"])
            .arg(&self.config)
            .env("SHOPSYNC_LOG", "warn")
            .stderr(stderr)
            .spawn()
            .expect("shopsync run starts");
        Guard(child)
    }

    /// `shopsync status --json`, or `None` (with the reason on stderr) when the state does
    /// not open.
    pub fn status_json(&self) -> Option<serde_json::Value> {
        let out = self.shopsync(&["status", "--json", "--config", "@CONFIG@"]);
        if !out.status.success() {
            eprintln!("status failed: {}", text(&out.stderr));
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Item id → MD5 of every item `shopsync export` holds for `member`.
    pub fn exported_md5s(&self, member: &str) -> std::collections::BTreeMap<String, String> {
        let out = self.shopsync(&["export", "--format", "jsonl", "--shop", member, "--config", "@CONFIG@"]);
        assert!(out.status.success(), "export: {}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<shopsync::event::Item>(l).expect("an exported item"))
            .map(|i| (i.item_id.clone(), i.md5()))
            .collect()
    }

    /// Runs `shopsync ARGS` (with `--config` appended where `@CONFIG@` stands).
    pub fn shopsync(&self, args: &[&str]) -> Output {
        let config = self.config.display().to_string();
        let args: Vec<String> = args.iter().map(|a| a.replace("@CONFIG@", &config)).collect();
        Command::new(bin("shopsync")).args(&args).env("SHOPSYNC_LOG", "warn").output().expect("shopsync runs")
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Fills `dest` with the workspace's sink plugins and the C example (built for this ABI, and
/// once more claiming ABI version 2), with the permissions the host demands.
pub fn plugin_dir(dest: &Path) {
    use std::os::unix::fs::PermissionsExt;
    build_workspace();
    std::fs::create_dir_all(dest).expect("plugin dir");
    for p in ["jsonl", "testkit", "postgres", "mysql", "webhook"] {
        let lib = format!("libshopsync_sink_{p}.so");
        std::fs::copy(bin_dir().join(&lib), dest.join(&lib)).expect("copy plugin");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let src = root.join("plugins/c-example/sink.c");
    let include = root.join("plugins/abi/include");
    for (out, extra) in [
        ("libshopsync_sink_c_example.so", None),
        ("libshopsync_sink_c_v2.so", Some("-DABI_VERSION_OVERRIDE=2")),
    ] {
        let mut cc = Command::new("cc");
        cc.args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-I"])
            .arg(&include)
            .arg("-o")
            .arg(dest.join(out))
            .arg(&src);
        if let Some(x) = extra {
            cc.arg(x);
        }
        assert!(cc.status().map(|s| s.success()).unwrap_or(false), "compiling the C plugin failed");
    }
    for entry in std::fs::read_dir(dest).expect("read plugin dir").flatten() {
        std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
}

/// Runs a shell command, returning its trimmed stdout; panics with its stderr on failure.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().expect("sh runs");
    assert!(out.status.success(), "{cmd}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// A realistic normalized item (three tiers, four SKUs, a Chinese title), numbered `n`.
pub fn sample_item(n: u64) -> shopsync::event::Item {
    use rust_decimal::Decimal;
    use shopsync::api::Tier;
    use shopsync::event::{Item, PriceSource, Sku};
    Item {
        item_id: format!("{}", 600_000_000_000 + n),
        title: format!("夏季纯棉T恤 批发 {n}"),
        cid: "1031910".into(),
        wholesale_prices: vec![
            Tier { min_qty: 1, max_qty: Some(99), price: Decimal::new(1250, 2) },
            Tier { min_qty: 100, max_qty: Some(499), price: Decimal::new(1180, 2) },
            Tier { min_qty: 500, max_qty: None, price: Decimal::new(1090, 2) },
        ],
        price_source: PriceSource::WholesalePrice,
        moq: Some(2),
        sales: Some(1530),
        stock: Some(8800),
        status: "online".into(),
        modified_ms: 1_700_000_000_000 + n as i64,
        sku_ids: (0..4).map(|k| format!("{}", 4_000_000_000_000 + n * 16 + k)).collect(),
        skus: (0..4)
            .map(|k| Sku {
                sku_id: format!("{}", 4_000_000_000_000 + n * 16 + k),
                spec: "颜色:红色;尺码:XL".into(),
                price: Some(Decimal::new(1250, 2)),
                stock: Some(120),
            })
            .collect(),
        pic_url: "https://cbu01.alicdn.com/img/ibank/O1CN01.jpg".into(),
        detail_url: format!("https://detail.1688.com/offer/{}.html", 600_000_000_000 + n),
    }
}

/// Commits `n` create events for items `from..from + n` of `shop`, 500 per transaction.
pub fn fill_outbox(store: &shopsync::state::Store, shop: &str, from: u64, n: u64) {
    use shopsync::state::{StoredItem, Write};
    let mut i = from;
    while i < from + n {
        let writes: Vec<Write> = (i..(i + 500).min(from + n))
            .map(|k| {
                let it = sample_item(k);
                Write::Upsert {
                    stored: StoredItem::new(it.clone(), it.md5(), String::new()),
                    event: Some((shopsync::event::Op::Create, vec![])),
                }
            })
            .collect();
        i += writes.len() as u64;
        store.commit(shop, &writes, None, 1_700_000_000_000).expect("commit");
    }
}

/// The promtool binary: `$PROMTOOL` (tests/run.sh provides it), else `promtool` on the PATH.
pub fn promtool() -> String {
    std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into())
}

/// Metric names a PromQL text uses (`shopsync_*`, histogram suffixes removed).
pub fn metric_names(promql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = promql;
    while let Some(i) = rest.find("shopsync_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        out.push(base.to_string());
        rest = &tail[end..];
    }
    out
}

/// A child process killed when the test ends, even by a panic (a daemon left running would
/// hold the test runner's output pipe open).
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Event ids in a file of JSON arrays, one delivered batch per line.
pub fn ids_in_batches(path: &Path) -> Vec<String> {
    let body = std::fs::read_to_string(path).unwrap_or_default();
    body.lines()
        .flat_map(|l| serde_json::from_str::<Vec<serde_json::Value>>(l).expect("a batch is a JSON array"))
        .filter_map(|e| e["id"].as_str().map(String::from))
        .collect()
}

/// A fresh PostgreSQL database on 127.0.0.1 for one run (`shopsync_<what>_<pid>`), dropped
/// first if an earlier run left it behind.
pub fn pg_db(what: &str) -> String {
    let db = format!("shopsync_{what}_{}", std::process::id());
    sh(&format!(
        "psql -h 127.0.0.1 -U postgres -d postgres -c 'DROP DATABASE IF EXISTS {db}' -c 'CREATE DATABASE {db}'"
    ));
    db
}

/// The MD5 shopsync should hold for each item on sale, from the simulator's ground truth
/// read by the suites' own parser ([`truth::expected_item`]), with its `modified_time`.
///
/// Left out: the items no query of the contract can reach (more than 50 pages of one
/// category on one millisecond, or a category the seller does not list on a saturated
/// millisecond; see [`unreachable_ids`]): no client can hold them, so a copy without them is
/// complete. Also left out: items garbled through the admin API (`"op": "garble"`), which no
/// client can read, so no copy of them is right or wrong.
pub fn truth_md5s(sim: &SimProc, member: &str) -> std::collections::BTreeMap<String, (String, i64)> {
    let truth = sim.admin_get(&format!("/_sim/shops/{member}/truth"));
    let ids = |key: &str| -> std::collections::BTreeSet<String> {
        truth[key].as_array().map_or_else(Default::default, |a| {
            a.iter().filter_map(|v| v.as_str().map(String::from)).collect()
        })
    };
    let skip: std::collections::BTreeSet<String> = &ids("unreachable") | &ids("garbled");
    truth["items"]
        .as_array()
        .expect("truth items")
        .iter()
        .filter(|v| v["item_id"].as_str().is_none_or(|id| !skip.contains(id)))
        .map(|v| {
            let item = truth::expected_item(v).unwrap_or_else(|e| panic!("truth item {v} unreadable: {e}"));
            (item.item_id.clone(), (item.md5(), item.modified_ms))
        })
        .collect()
}

/// The ids of a shop's items on sale that no query of the contract can reach
/// (`GET /_sim/shops/{member}/unreachable`); [`truth_md5s`] leaves them out.
pub fn unreachable_ids(sim: &SimProc, member: &str) -> std::collections::BTreeSet<String> {
    let u = sim.admin_get(&format!("/_sim/shops/{member}/unreachable"));
    u["item_ids"]
        .as_array()
        .expect("unreachable ids")
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}

/// Stops the simulator's background churn, so that the catalogue holds still for a final
/// comparison with the truth; returns how many changes the churn made.
pub fn stop_churn(sim: &SimProc) -> u64 {
    sim.admin_post("/_sim/churn", r#"{"per_minute": 0}"#)["changes"].as_u64().unwrap_or(0)
}

/// The sum of a metric's samples whose line holds every one of `labels`.
pub fn metric_sum(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Prints a suite's figures: aligned text, or with `markdown` a section for BENCHMARKS.md.
pub fn print_figures(markdown: bool, heading: &str, intro: &str, rows: &[(String, String)]) {
    if markdown {
        println!("### {heading}\n\n{intro}\n\n| figure | value |\n|---|---|");
        for (k, v) in rows {
            println!("| {} | {v} |", k.trim_start());
        }
        println!();
    } else {
        println!("{heading}");
        for (k, v) in rows {
            println!("  {k:<52} {v}");
        }
    }
}

/// xorshift64*: a small deterministic generator, so kill instants, mutations and benchmark
/// workloads follow from a seed alone (and the suites need no RNG crate).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in (0, 1].
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Poisson with mean `m` (Knuth's method; the means used are small).
    pub fn poisson(&mut self, m: f64) -> u64 {
        let l = (-m).exp();
        let (mut k, mut p) = (0, 1.0);
        loop {
            p *= self.unit();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }
}

/// Polls `f` every 200 ms until it holds; panics after `secs` seconds naming `what`.
pub fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < std::time::Duration::from_secs(secs) {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("timed out after {secs} s waiting for {what}");
}

/// A free TCP port on 127.0.0.1 (for a daemon's metrics listener).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// The daemon's `/metrics` text, or "" while it does not answer.
pub fn metrics_text(port: u16) -> String {
    Command::new("curl")
        .args(["-sf", &format!("http://127.0.0.1:{port}/metrics")])
        .output()
        .map(|o| text(&o.stdout))
        .unwrap_or_default()
}

/// The `seq` of every event in a JSONL events file (a line per event).
pub fn seqs_in_jsonl(path: &Path) -> std::collections::BTreeSet<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["seq"].as_u64())
        .collect()
}
