//! `sim1688`: the simulated 1688 platform as a standalone server, and its benchmark.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use sim1688::{Faults, Limits, Quirks, Sim, SimSpec};
use std::io::Write;
use std::net::SocketAddr;

#[derive(Parser)]
#[command(name = "sim1688", version, about = "A simulated 1688 Open Platform gateway, quirks and all")]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    serve: Serve,
}

#[derive(Subcommand)]
enum Cmd {
    /// Measure catalogue generation and list-call throughput, print a table.
    Bench {
        #[arg(long, default_value_t = 1_000_000)]
        items: usize,
        #[arg(long, default_value_t = 30_000)]
        calls: u64,
        #[arg(long, default_value_t = 16)]
        connections: usize,
    },
}

#[derive(Args)]
struct Serve {
    /// Address to serve on (port 0 picks a free one; the first line printed names it).
    #[arg(long, default_value = "127.0.0.1:8688")]
    listen: SocketAddr,
    #[arg(long, default_value_t = 3)]
    shops: usize,
    /// On-sale items per shop.
    #[arg(long, default_value_t = 20_000)]
    items: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// No faults and no rate limit: a calm platform.
    #[arg(long)]
    calm: bool,
    /// Calls per second per app key (0: no limit).
    #[arg(long)]
    rate_limit: Option<u32>,
    #[arg(long)]
    max_page_size: Option<u32>,
    #[arg(long)]
    depth_cap: Option<u32>,
    #[arg(long)]
    window_days: Option<u32>,
    /// How long a too-wide saturated query stalls before its 5002.
    #[arg(long)]
    stall_ms: Option<u64>,
    #[arg(long)]
    max_skew_ms: Option<i64>,
    #[arg(long)]
    quota_commercial: Option<u64>,
    #[arg(long)]
    quota_test: Option<u64>,
    /// Length of a quota day: "24h" (the default) starts days at 00:00 Asia/Shanghai; a
    /// shorter one ("20s") at multiples of it since the Unix epoch, so tests run many days.
    #[arg(long, value_parser = humantime::parse_duration)]
    quota_day: Option<std::time::Duration>,
    #[arg(long)]
    token_ttl_s: Option<u64>,
    /// Probability of code 5002 per call.
    #[arg(long)]
    busy: Option<f64>,
    /// Probability of an HTML 502/503 page per call.
    #[arg(long)]
    html: Option<f64>,
    /// Probability of a truncated body per call.
    #[arg(long)]
    truncated: Option<f64>,
    /// Probability of a hanging call.
    #[arg(long)]
    hang: Option<f64>,
    #[arg(long)]
    hang_ms: Option<u64>,
    /// Probability of an injected 429 per call.
    #[arg(long)]
    throttle: Option<f64>,
    /// Background changes per minute per shop while serving (updates, silent stock touches,
    /// SKU-only changes, creates, delistings); 0 for a catalogue that holds still. Default 6.
    #[arg(long, value_name = "PER_MIN")]
    churn: Option<f64>,
    /// Share of churn delistings that leave modified_time alone. Default 0.25.
    #[arg(long)]
    silent_delist_share: Option<f64>,
    /// Share of items served with wrong but readable JSON types ("12" for 12, a numeric
    /// item_id). Default 0.03.
    #[arg(long)]
    wrong_types_share: Option<f64>,
    /// Share of items whose cid is not in the seller's category list (at least one in shops
    /// of 1,000 items or more). Default 0.005.
    #[arg(long)]
    stray_cid_share: Option<f64>,
    /// Shops of at least this many items get a bulk import of over 2,000 items on one
    /// millisecond of ONE category, partly out of any query's reach; 0 never. Default 20000.
    #[arg(long)]
    one_category_tie_min_items: Option<usize>,
    /// Who clicks "allow" at the param2 authorize page (`/oauth/authorize`) for an app key,
    /// as APP_KEY=MEMBER_ID; repeatable. Other keys are authorized by the first shop's member.
    /// Also `PUT /_sim/param2 {"authorize_member": {...}}`.
    #[arg(long, value_name = "APP_KEY=MEMBER_ID")]
    authorize_member: Vec<String>,
    /// The app's callback URL: every change of an item the app follows (mutate endpoint,
    /// churn) is POSTed there as a signed change message. Also
    /// `PUT /_sim/param2/push {"url": ...}`.
    #[arg(long, value_name = "URL")]
    push_url: Option<String>,
    /// The app whose secret signs the change messages. Default 10000003 (the OAuth account).
    #[arg(long, value_name = "APP_KEY")]
    push_app_key: Option<String>,
    /// Push every change of every shop, followed or not: turns off the platform's quirk that
    /// only offers the app follows (alibaba.product.follow) make change messages, for tests
    /// that want every change pushed. Also `PUT /_sim/param2/push {"only_followed": false}`.
    #[arg(long)]
    push_unfollowed: bool,
}

impl Serve {
    fn spec(&self) -> SimSpec {
        let mut limits = Limits::default();
        let mut faults = if self.calm { Faults::none() } else { Faults::default() };
        if self.calm {
            limits.rate_per_sec = 0;
        }
        macro_rules! set {
            ($dst:expr, $($f:ident),*) => { $( if let Some(v) = self.$f { $dst.$f = v; } )* };
        }
        set!(
            limits,
            max_page_size,
            depth_cap,
            window_days,
            stall_ms,
            max_skew_ms,
            quota_commercial,
            quota_test,
            token_ttl_s
        );
        if let Some(d) = self.quota_day {
            limits.quota_day_ms = d.as_millis().max(1) as i64;
        }
        if let Some(v) = self.rate_limit {
            limits.rate_per_sec = v;
        }
        set!(faults, busy, html, truncated, hang, hang_ms, throttle);
        SimSpec { seed: self.seed, shops: self.shops, items: self.items, limits, faults }
    }

    /// The catalogue quirks: all on unless a flag says otherwise (`--calm` is about the
    /// gateway, not the catalogue: churn needs its own `--churn 0`).
    fn quirks(&self) -> Quirks {
        let mut q = Quirks::default();
        if let Some(v) = self.churn {
            q.churn_per_min = v.max(0.0);
        }
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { q.$f = v; } )* };
        }
        set!(silent_delist_share, wrong_types_share, stray_cid_share, one_category_tie_min_items);
        q
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Cmd::Bench { items, calls, connections }) = cli.cmd {
        println!(
            "sim1688 bench on {} cores (server and load generator share them)",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        sim1688::bench::run(items, calls, connections).await?.print();
        return Ok(());
    }
    let sim = Sim::with_quirks(cli.serve.spec(), cli.serve.quirks());
    for pair in &cli.serve.authorize_member {
        let (app_key, member_id) = pair
            .split_once('=')
            .with_context(|| format!("--authorize-member {pair:?}: expected APP_KEY=MEMBER_ID"))?;
        sim.param2_state().settings.authorize_member.insert(app_key.to_string(), member_id.to_string());
    }
    {
        let mut push = sim.push_book();
        push.settings.url = cli.serve.push_url.clone();
        if let Some(k) = &cli.serve.push_app_key {
            push.settings.app_key = k.clone();
        }
        if cli.serve.push_unfollowed {
            push.settings.only_followed = false;
        }
    }
    let listener = tokio::net::TcpListener::bind(cli.serve.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.serve.listen))?;
    let addr = listener.local_addr()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening http://{addr}")?;
    writeln!(out, "gateway   http://{addr}{}", sim1688::GATEWAY_PATH)?;
    writeln!(out, "oauth     http://{addr}{}", sim1688::AUTH_PATH)?;
    writeln!(
        out,
        "param2    http://{addr}{}<namespace>/<api>/<appKey>  token http://{addr}{}<appKey>  authorize http://{addr}{}",
        sim1688::PARAM2_PREFIX,
        sim1688::TOKEN_PREFIX,
        sim1688::AUTHORIZE_PATH
    )?;
    writeln!(
        out,
        "admin     http://{addr}/_sim/shops  /_sim/accounts  /_sim/counters  /_sim/faults  /_sim/limits  /_sim/quirks  /_sim/churn  /_sim/param2  /_sim/param2/pushes"
    )?;
    for s in sim.shop_infos() {
        writeln!(
            out,
            "shop      member_id={} url={} items={} categories={} seller_open_id={}",
            s.member_id, s.shop_url, s.items, s.categories, s.seller_open_id
        )?;
    }
    for a in sim.accounts() {
        writeln!(
            out,
            "account   app_key={} app_secret={} kind={:?} b2b={} oauth={}",
            a.app_key, a.app_secret, a.kind, a.b2b, a.oauth
        )?;
    }
    out.flush()?;
    drop(out);
    sim.serve(listener).await.context("server failed")
}
