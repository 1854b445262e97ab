//! The `shopsync` command: a thin layer over the library's modules.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use shopsync::api::{AccountSettings, ApiSettings, Client, Hooks, Protocol, SignMethod};
use shopsync::pacing::PacingSettings;
use shopsync::secret::Secret;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "shopsync", version, about = "Keeps complete, current copies of 1688 shop catalogues")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Make one signed gateway call and print the response as JSON (for debugging an account).
    Api(ApiCall),
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

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHOPSYNC_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Api(a) => api_call(a).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shopsync: {e:#}");
            ExitCode::FAILURE
        }
    }
}
