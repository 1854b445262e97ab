//! The `shopsync` command: a thin layer over the library's modules.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use shopsync::api::{AccountSettings, ApiSettings, Client, Hooks, Protocol, SignMethod};
use shopsync::cli::{self, ExportFormat, Target};
use shopsync::config::Settings;
use shopsync::control::{self, Request};
use shopsync::pacing::PacingSettings;
use shopsync::secret::Secret;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "shopsync", version, about = "Keeps complete, current copies of 1688 shop catalogues")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The daemon: scheduled passes, sink delivery, metrics, reload on SIGHUP.
    Run {
        /// The config file (default: $SHOPSYNC_CONFIG).
        #[arg(long, env = "SHOPSYNC_CONFIG")]
        config: PathBuf,
    },
    /// The one-command first look: the built-in simulator, the daemon and a JSONL sink.
    Demo {
        /// Where the demo writes its config, state and events.
        #[arg(long, default_value = "shopsync-demo")]
        dir: PathBuf,
        #[arg(long, default_value_t = 3000)]
        items: usize,
        /// The demo stops after this many seconds at the latest.
        #[arg(long, default_value_t = 120)]
        seconds: u64,
    },
    /// One pass of the configured (or named) shops in the foreground, then exit (0 when
    /// every pass succeeded). With a daemon running, `--shop` queues the pass in the daemon.
    Sync {
        /// The config file (default: $SHOPSYNC_CONFIG).
        #[arg(long, env = "SHOPSYNC_CONFIG")]
        config: PathBuf,
        /// Only this shop: a member id or a shop URL (configured or not).
        #[arg(long)]
        shop: Option<String>,
        /// A full pass (with deletes and the completeness check) instead of an incremental one.
        #[arg(long)]
        full: bool,
        /// Re-read the shop from this date (YYYY-MM-DD, Asia/Shanghai) without touching the
        /// others; events only for what differs from the stored copy.
        #[arg(long, conflicts_with = "full", requires = "shop")]
        since: Option<String>,
    },
    /// Per shop: watermark, items, last passes, completeness; per account: calls today.
    Status {
        /// The config file (default: $SHOPSYNC_CONFIG).
        #[arg(long, env = "SHOPSYNC_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Validate a config file; print what is wrong with line and column.
    CheckConfig {
        /// The config file (or `--config`, or $SHOPSYNC_CONFIG).
        file: Option<PathBuf>,
        #[arg(long = "config", env = "SHOPSYNC_CONFIG", conflicts_with = "file")]
        config: Option<PathBuf>,
    },
    /// Print outbox events as JSONL.
    Events {
        /// The config file (default: $SHOPSYNC_CONFIG).
        #[arg(long, env = "SHOPSYNC_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        shop: Option<String>,
        #[arg(long, default_value_t = 0)]
        after_seq: u64,
    },
    /// Write a shop's current catalogue to stdout.
    Export {
        /// The config file (default: $SHOPSYNC_CONFIG).
        #[arg(long, env = "SHOPSYNC_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        shop: String,
        #[arg(long, value_enum)]
        format: ExportFormat,
    },
    /// Deliver the outbox to every configured sink once, then exit (0 when all drained).
    Deliver {
        /// The config file (default: $SHOPSYNC_CONFIG).
        #[arg(long, env = "SHOPSYNC_CONFIG")]
        config: PathBuf,
    },
    /// Make the running daemon reload its config (the same as SIGHUP), and say how it went.
    Reload {
        /// The config file (default: $SHOPSYNC_CONFIG).
        #[arg(long, env = "SHOPSYNC_CONFIG")]
        config: PathBuf,
    },
    /// Dead-letter queues.
    Dlq {
        #[command(subcommand)]
        cmd: DlqCmd,
    },
    /// State maintenance.
    State {
        #[command(subcommand)]
        cmd: StateCmd,
    },
    /// Authorize an OAuth account under `protocol = "param2"`: print the authorization URL,
    /// take the code (pasted, or from the redirect with --listen), store the token.
    Auth {
        /// The config file (default: $SHOPSYNC_CONFIG).
        #[arg(long, env = "SHOPSYNC_CONFIG")]
        config: PathBuf,
        /// The account (its `name` in the config) to authorize.
        #[arg(long)]
        account: String,
        /// Receive the browser's redirect on this loopback address (e.g. 127.0.0.1:8765)
        /// instead of reading a pasted code.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// The redirect URI registered for the app (default with --listen: http://LISTEN/).
        #[arg(long)]
        redirect_uri: Option<String>,
        /// How long --listen waits for the redirect.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Make one signed gateway call and print the response as JSON (for debugging an account).
    Api(ApiCall),
}

#[derive(Subcommand)]
enum DlqCmd {
    /// Re-send a sink's dead-lettered batches; those accepted leave the queue.
    Replay {
        /// The config file (default: $SHOPSYNC_CONFIG).
        #[arg(long, env = "SHOPSYNC_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        sink: String,
    },
}

#[derive(Subcommand)]
enum StateCmd {
    /// Forget a shop's watermark: its next pass is full.
    Reset {
        /// The config file (default: $SHOPSYNC_CONFIG).
        #[arg(long, env = "SHOPSYNC_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        shop: String,
    },
}

#[derive(clap::Args)]
struct ApiCall {
    /// The gateway URL.
    #[arg(long, default_value = "https://gw.open.1688.com/openapi/param2/2/portals.open/api/")]
    gateway: String,
    #[arg(long)]
    app_key: String,
    /// Environment variable holding the app secret (never pass secrets as arguments: they
    /// show in `ps`).
    #[arg(long, default_value = "SHOPSYNC_APP_SECRET")]
    app_secret_env: String,
    #[arg(long, value_enum, default_value = "md5")]
    sign_method: SignArg,
    /// The account uses OAuth; tokens come from `--auth-url`.
    #[arg(long)]
    oauth: bool,
    #[arg(long, default_value = "https://open.1688.com/auth/token")]
    auth_url: String,
    /// e.g. alibaba.seller.cats.list.get
    method: String,
    /// Business parameters as KEY=VALUE.
    params: Vec<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SignArg {
    Md5,
    Sha1,
}

async fn api_call(a: ApiCall) -> anyhow::Result<()> {
    let secret = std::env::var(&a.app_secret_env)
        .with_context(|| format!("the app secret is read from ${}, which is not set", a.app_secret_env))?;
    let mut params = Vec::new();
    for kv in &a.params {
        let Some((k, v)) = kv.split_once('=') else { bail!("parameter {kv:?} is not KEY=VALUE") };
        params.push((k.to_string(), v.to_string()));
    }
    let sign = match a.sign_method {
        SignArg::Md5 => SignMethod::Md5,
        SignArg::Sha1 => SignMethod::Sha1,
    };
    let api = ApiSettings {
        base_url: a.gateway,
        auth_url: a.auth_url,
        protocol: Protocol::Top(sign),
        ..Default::default()
    };
    let account = AccountSettings {
        name: "cli".into(),
        app_key: a.app_key,
        app_secret: Secret::new(secret),
        daily_quota: u64::MAX,
        oauth: a.oauth,
        proxy: None,
        pacing: PacingSettings::default(),
    };
    let client = Client::new(api, account, Hooks::default())?;
    let v = client.call(&a.method, &params).await.with_context(|| format!("{} failed", a.method))?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

async fn run(cmd: Cmd) -> anyhow::Result<bool> {
    match cmd {
        Cmd::Run { config } => shopsync::service::run(&config, std::future::pending()).await.map(|()| true),
        Cmd::Demo { dir, items, seconds } => cli::demo(&dir, items, seconds).await,
        Cmd::Sync { config, shop, full, since } => {
            let since_ms = match since.as_deref() {
                Some(d) => Some(
                    shopsync::clock::parse_shanghai_date(d)
                        .with_context(|| format!("--since {d:?} is not a date like 2026-01-01"))?,
                ),
                None => None,
            };
            match cli::target(&config)? {
                Target::Local(ctx) => cli::sync(&ctx, shop.as_deref(), full, since_ms).await,
                Target::Daemon(c) => match (shop, since_ms) {
                    (Some(shop), None) => cli::ask(c, &Request::Sync { shop, full }),
                    (None, _) => bail!(
                        "a daemon holds the state and syncs on its own schedule; queue one shop's pass in it with --shop"
                    ),
                    (Some(_), Some(_)) => {
                        bail!("--since needs the state to itself; it cannot run while a daemon holds it")
                    }
                },
            }
        }
        Cmd::Status { config, json } => match cli::target(&config)? {
            Target::Daemon(c) => cli::ask(c, &Request::Status { json }),
            Target::Local(ctx) => {
                print!("{}", cli::status(&ctx.status_input(), json)?);
                Ok(true)
            }
        },
        Cmd::CheckConfig { file, config } => {
            let Some(file) = file.or(config) else {
                anyhow::bail!(
                    "name the config file: shopsync check-config FILE (or --config FILE, or SHOPSYNC_CONFIG)"
                )
            };
            let s = Settings::load(&file)?;
            // The jobs the daemon would schedule, built as it builds them: a cron the
            // config's own check lets through must not pass here and then fail the start.
            shopsync::service::check_jobs(&s).await.with_context(|| format!("{}", file.display()))?;
            let demand = shopsync::schedule::demand::total_cron_demand(&s, shopsync::clock::now_ms(), |_| {
                Default::default()
            });
            if let Some(w) = shopsync::schedule::demand::over_budget(demand, &s) {
                eprintln!("warning: {w}");
            }
            println!(
                "{}: ok ({} accounts, {} shops, {} watch lists, {} sinks)",
                file.display(),
                s.accounts.len(),
                s.shops.len(),
                s.watches.len(),
                s.sinks.len()
            );
            Ok(true)
        }
        Cmd::Events { config, shop, after_seq } => match cli::target(&config)? {
            Target::Daemon(c) => cli::ask(c, &Request::Events { shop, after_seq }),
            Target::Local(ctx) => {
                cli::events(&ctx.store, shop.as_deref(), after_seq, &mut std::io::stdout().lock())?;
                Ok(true)
            }
        },
        Cmd::Export { config, shop, format } => match cli::target(&config)? {
            Target::Daemon(c) => cli::ask(c, &Request::Export { shop, format }),
            Target::Local(ctx) => {
                let member: shopsync::api::MemberId =
                    shop.parse().with_context(|| format!("--shop {shop:?}"))?;
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                let rows = cli::export(&ctx.store, member.as_str(), format, &mut out)?;
                std::io::Write::flush(&mut out)?;
                eprintln!("{rows} rows");
                Ok(true)
            }
        },
        Cmd::State { cmd: StateCmd::Reset { config, shop } } => match cli::target(&config)? {
            Target::Daemon(c) => cli::ask(c, &Request::StateReset { shop }),
            Target::Local(ctx) => {
                println!("{}", cli::state_reset(&ctx.store, &shop).await?);
                Ok(true)
            }
        },
        Cmd::Deliver { config } => match cli::target(&config)? {
            Target::Daemon(_) => {
                bail!("a daemon holds the state and delivers the outbox to its sinks itself")
            }
            Target::Local(ctx) => cli::deliver(&ctx).await,
        },
        Cmd::Dlq { cmd: DlqCmd::Replay { config, sink } } => match cli::target(&config)? {
            Target::Daemon(c) => cli::ask(c, &Request::DlqReplay { sink }),
            Target::Local(ctx) => cli::dlq_replay(&ctx, &sink).await,
        },
        Cmd::Reload { config } => {
            let s = Settings::load(&config)?;
            match control::Client::connect(&s.control_socket)? {
                Some(c) => cli::ask(c, &Request::Reload),
                None => {
                    bail!("no daemon answers on {}; there is nothing to reload", s.control_socket.display())
                }
            }
        }
        Cmd::Auth { config, account, listen, redirect_uri, timeout } => {
            cli::auth(&config, cli::AuthArgs { account, listen, redirect_uri, timeout }).await
        }
        Cmd::Api(a) => api_call(a).await.map(|()| true),
    }
}

fn init_logging() {
    // Dependencies' own INFO lines (the cron scheduler's "Uninited", "Job creator created")
    // say nothing an operator needs.
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHOPSYNC_LOG")
        .unwrap_or_else(|_| "info,tokio_cron_scheduler=warn".into());
    // Under systemd (stderr connected to the journal), events go to journald natively, with
    // their fields as journal fields (`journalctl -u shopsync SHOP=…` style queries, priority
    // from the level). If the journal socket cannot be opened, plain lines without a second
    // timestamp (the journal stamps every line).
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        use tracing_subscriber::prelude::*;
        match tracing_journald::layer() {
            Ok(journal) => {
                let journal = journal.with_syslog_identifier("shopsync".into()).with_field_prefix(None);
                tracing_subscriber::registry().with(filter).with(journal).init();
            }
            Err(_) => tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .without_time()
                .with_ansi(false)
                .init(),
        }
        return;
    }
    // Colour codes only for a terminal: a log redirected to a file stays plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}

fn main() -> ExitCode {
    shopsync::memory::limit_malloc_arenas(2);
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => {
            let code = rt.block_on(async_main());
            // Dropping a runtime waits for every blocking task, and a sink plugin stuck in a
            // call never ends its own: wait briefly, then exit past it (the sinks were
            // stopped and the state flushed already).
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
            code
        }
        Err(e) => {
            eprintln!("shopsync: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn async_main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    match run(cli.cmd).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("shopsync: {e:#}");
            ExitCode::FAILURE
        }
    }
}
