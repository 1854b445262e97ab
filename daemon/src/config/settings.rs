//! Validation of the raw file into typed settings, once.

use super::raw::{RawConfig, RawProtocol, RawSource};
use crate::api::{AccountSettings, ApiSettings, MemberId, Protocol, ShopRef};
use crate::pacing::PacingSettings;
use crate::secret::Secret;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The TOML parser's message names the line and column.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SkuRefresh {
    #[default]
    Changed,
    All,
}

/// How the planned calls of a day are divided between polls and full passes
/// (`budget.split`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetSplit {
    /// By the shops' learned change rates and costs, to minimise the mean staleness of all
    /// changes (see `schedule/planner.rs`); the shares `full` and `incremental` together
    /// only size the pool.
    #[default]
    Auto,
    /// In the ratio of the shares `incremental` : `full`.
    Shares,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkStart {
    #[default]
    Latest,
    Earliest,
}

#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub page_size: u32,
    /// Widest window of one list query.
    pub slice: Duration,
    pub overlap: Duration,
    pub full_pass_skus: SkuRefresh,
    /// Full passes fetch SKU details older than this again (see `[sync] sku_max_age`).
    pub sku_max_age: Duration,
    /// Shops read as any seller's (`source = "seller"`), by member id: every pass of such a
    /// shop is a sweep of `querySellerOfferList` (`sync/sweep.rs`). Here rather than in
    /// [`ShopSettings`] because the engine, which only gets these settings, decides.
    pub sellers: std::collections::BTreeMap<String, SellerSource>,
}

/// A shop read through the cross-border APIs (`source = "seller"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SellerSource {
    /// `querySellerOfferList`'s `sellerOpenId`, when the config gives it...
    pub open_id: Option<String>,
    /// ...else one offer of the shop, whose `queryProductDetail` names it (learned once and
    /// kept in the shop's state).
    pub offer_id: Option<String>,
    /// The answer language both cross-border APIs require.
    pub country: String,
}

/// When a kind of pass runs: chosen by the budget planner, or on a cron.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cadence {
    Auto,
    Cron(String),
}

impl Cadence {
    fn parse(s: &str) -> Cadence {
        if s.trim().eq_ignore_ascii_case("auto") {
            Cadence::Auto
        } else {
            Cadence::Cron(s.to_string())
        }
    }

    pub fn cron(&self) -> Option<&str> {
        match self {
            Cadence::Auto => None,
            Cadence::Cron(c) => Some(c),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopSettings {
    pub shop: ShopRef,
    /// As written, for messages.
    pub label: String,
    pub account: Option<String>,
    pub incremental: Cadence,
    pub full: Cadence,
    /// Follow the shop's offers so that they produce change messages.
    pub follow: bool,
}

/// The budget planner's settings (`[budget]`), validated.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetSettings {
    pub split: BudgetSplit,
    pub full: f64,
    pub incremental: f64,
    pub watch: f64,
    pub reserve: f64,
    pub full_every: Duration,
    pub min_poll: Duration,
    pub max_poll: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSettings {
    pub name: String,
    pub items: Vec<String>,
    pub account: Option<String>,
    pub schedule: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SinkSettings {
    pub name: String,
    pub plugin: String,
    pub start: SinkStart,
    pub delivery: crate::sinks::DeliveryOptions,
    pub config: serde_json::Value,
}

/// `[push]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSettings {
    pub listen: SocketAddr,
    /// Starts with `/`.
    pub path: String,
    /// The account whose app secret signs the messages (it exists in `accounts`); it also
    /// pulls what the platform could not deliver.
    pub account: String,
    /// Pulls besides the one at start; zero: only at start.
    pub pull_every: Duration,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub path: PathBuf,
    pub state_dir: PathBuf,
    pub plugin_dir: PathBuf,
    pub metrics_listen: SocketAddr,
    /// Where the control socket is (`daemon.control_socket`, resolved).
    pub control_socket: PathBuf,
    pub cache_bytes: u64,
    pub sink_retention: Duration,
    pub max_passes: usize,
    /// Cron strings are read in this zone.
    pub timezone: chrono_tz::Tz,
    pub plan_every: Duration,
    pub budget: BudgetSettings,
    pub api: ApiSettings,
    pub sync: SyncSettings,
    pub accounts: Vec<AccountSettings>,
    pub shops: Vec<ShopSettings>,
    pub watches: Vec<WatchSettings>,
    pub sinks: Vec<SinkSettings>,
    /// The change-message receiver, when configured.
    pub push: Option<PushSettings>,
}

/// A cron string the daemon can schedule: six fields (seconds first), and values the
/// scheduler accepts, checked by building the job the daemon would build.
fn check_cron(expr: &str, tz: chrono_tz::Tz) -> Result<(), String> {
    let n = expr.split_whitespace().count();
    if n != 6 && n != 7 {
        return Err(format!("cron {expr:?} has {n} fields; write six: sec min hour day month weekday"));
    }
    crate::schedule::check(&crate::schedule::jittered(expr, "check"), tz)
}

/// The cross-border source of a `[[shops]]` entry with `source = "seller"`, checked: it needs
/// `protocol = "param2"` and a `seller_open_id`.
fn seller_source(
    s: &super::raw::RawShop,
    protocol: &Protocol,
    at: &str,
) -> Result<Option<SellerSource>, String> {
    if s.source == RawSource::Own {
        let key = if s.seller_open_id.is_some() { "seller_open_id" } else { "seller_offer_id" };
        if s.seller_open_id.is_some() || s.seller_offer_id.is_some() {
            return Err(format!("{at}: {key}: only read with source = \"seller\""));
        }
        return Ok(None);
    }
    if *protocol != Protocol::Param2 {
        return Err(format!(
            "{at}: source: \"seller\" needs [api] protocol = \"param2\" (the cross-border APIs exist only there)"
        ));
    }
    let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(String::from);
    let (open_id, offer_id) = (given(&s.seller_open_id), given(&s.seller_offer_id));
    if open_id.is_some() && offer_id.is_some() {
        return Err(format!(
            "{at}: seller_offer_id: give seller_open_id or seller_offer_id, not both (the offer's seller could differ)"
        ));
    }
    if open_id.is_none() && offer_id.is_none() {
        return Err(format!(
            "{at}: source: \"seller\" needs seller_open_id, or seller_offer_id (any one offer of the shop: its details name the seller)"
        ));
    }
    if offer_id.as_deref().is_some_and(|o| !o.bytes().all(|b| b.is_ascii_digit())) {
        return Err(format!(
            "{at}: seller_offer_id: {:?} is not an offer id (digits)",
            offer_id.unwrap_or_default()
        ));
    }
    let country = s.country.trim();
    if country.is_empty() {
        return Err(format!("{at}: country: must not be empty (the cross-border APIs require it)"));
    }
    Ok(Some(SellerSource { open_id, offer_id, country: country.to_string() }))
}

/// Where the subject of a validation message is written, as (line, column), both from 1:
/// `shops[2] (…)` is the third `[[shops]]` header (or the line of a key of that entry the
/// message names, such as `incremental:`), `api.page_size` is that key under `[api]`.
/// `None` when the file writes the entry another way (inline tables): the message still
/// names the entry.
fn locate(text: &str, message: &str) -> Option<(usize, usize)> {
    let name_len = message.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    let (name, rest) = message.split_at(name_len);
    let lines: Vec<&str> = text.lines().collect();
    let key_of = |line: &str| -> Option<String> {
        let (k, _) = line.split_once('=')?;
        let k = k.trim();
        (!k.is_empty() && !k.starts_with('[') && !k.starts_with('#')).then(|| k.to_string())
    };
    let column = |line: &str| line.len() - line.trim_start().len() + 1;
    // The lines of one table: from its header up to the next header.
    let body = |start: usize| {
        lines[start + 1..]
            .iter()
            .take_while(|l| !l.trim_start().starts_with('['))
            .enumerate()
            .map(move |(i, l)| (start + 1 + i, *l))
    };
    if let Some(index) = rest.strip_prefix('[') {
        let n: usize = index[..index.find(']')?].parse().ok()?;
        let header = format!("[[{name}]]");
        let start = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with(&header))
            .nth(n)
            .map(|(i, _)| i)?;
        let after_label = rest.find("): ").map(|i| &rest[i + 3..]).unwrap_or(rest);
        let named = body(start).find(|(_, l)| {
            key_of(l).is_some_and(|k| {
                after_label.starts_with(&format!("{k}:")) || after_label.contains(&format!(" {k} "))
            })
        });
        return Some(match named {
            Some((i, l)) => (i + 1, column(l)),
            None => (start + 1, column(lines[start])),
        });
    }
    let key: String =
        rest.strip_prefix('.')?.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    let header = format!("[{name}]");
    let start =
        lines.iter().position(|l| l.trim() == header || l.trim_start().starts_with(&format!("{header} ")))?;
    body(start).find(|(_, l)| key_of(l).as_deref() == Some(key.as_str())).map(|(i, l)| (i + 1, column(l)))
}

impl Settings {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Settings::parse(path, &text)
    }

    /// Validates config text; `path` is only for messages and relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Settings, ConfigError> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string() })?;
        Settings::validate(path, raw).map_err(|message| {
            let message = match locate(text, &message) {
                Some((line, column)) => format!("line {line}, column {column}: {message}"),
                None => message,
            };
            ConfigError::Invalid { path: path.into(), message }
        })
    }

    fn validate(path: &Path, raw: RawConfig) -> Result<Settings, String> {
        let a = &raw.api;
        let (protocol, base_url, max_page) = match a.protocol {
            RawProtocol::Seed => {
                (Protocol::Top(a.sign_method), a.base_url.clone(), crate::api::MAX_PAGE_SIZE)
            }
            RawProtocol::Param2 => {
                let root = &a.param2_root;
                if reqwest::Url::parse(root).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
                    return Err(format!("api.param2_root = {root:?} is not an http(s) URL"));
                }
                let auth = &a.param2_auth_url;
                if reqwest::Url::parse(auth).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
                    return Err(format!("api.param2_auth_url = {auth:?} is not an http(s) URL"));
                }
                (Protocol::Param2, crate::api::param2::root(root), crate::api::param2::MAX_PAGE_SIZE)
            }
        };
        let page_size = a.page_size.unwrap_or(max_page);
        if !(1..=max_page).contains(&page_size) {
            return Err(match a.protocol {
                RawProtocol::Seed => format!("api.page_size = {page_size} must be 1 to 40 (the platform refuses more)"),
                RawProtocol::Param2 => format!(
                    "api.page_size = {page_size} must be 1 to 20 with protocol = \"param2\" (the platform silently cuts pages to 20, which would skip items)"
                ),
            });
        }
        if !(1..=30).contains(&a.slice_days) {
            return Err(format!(
                "api.slice_days = {} must be 1 to 30 (wider saturated windows stall)",
                a.slice_days
            ));
        }
        if a.max_attempts == 0 {
            return Err("api.max_attempts must be at least 1".into());
        }
        let metrics_listen: SocketAddr = raw.daemon.metrics_listen.parse().map_err(|_| {
            format!("daemon.metrics_listen = {:?} is not an address:port", raw.daemon.metrics_listen)
        })?;
        if raw.daemon.max_passes == 0 {
            return Err("daemon.max_passes must be at least 1".into());
        }
        let p = &raw.pacing;
        if p.concurrency == 0 {
            return Err("pacing.concurrency must be at least 1".into());
        }
        if p.quota_day.0 < Duration::from_secs(1) || p.quota_day.0 > Duration::from_secs(86_400) {
            return Err("pacing.quota_day must be 1s to 24h (\"24h\" is the platform's day)".into());
        }
        let timezone: chrono_tz::Tz = raw.daemon.timezone.parse().map_err(|_| {
            format!(
                "daemon.timezone = {:?} is not an IANA time zone like \"Asia/Shanghai\"",
                raw.daemon.timezone
            )
        })?;
        if raw.daemon.plan_every.0 < Duration::from_millis(100) {
            return Err("daemon.plan_every must be at least 100ms".into());
        }
        let b = &raw.budget;
        let shares =
            [("full", b.full), ("incremental", b.incremental), ("watch", b.watch), ("reserve", b.reserve)];
        if let Some((name, v)) = shares.iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
            return Err(format!("budget.{name} = {v} must be a share from 0 to 1"));
        }
        let sum: f64 = shares.iter().map(|(_, v)| v).sum();
        if sum > 1.000_001 {
            return Err(format!(
                "budget.full = {} (the shares full, incremental, watch and reserve add up to {sum:.2}; at most 1)",
                b.full
            ));
        }
        if b.min_poll.0 > b.max_poll.0 {
            return Err("budget.min_poll must not be longer than budget.max_poll".into());
        }
        let budget = BudgetSettings {
            split: b.split,
            full: b.full,
            incremental: b.incremental,
            watch: b.watch,
            reserve: b.reserve,
            full_every: b.full_every.0,
            min_poll: b.min_poll.0,
            max_poll: b.max_poll.0,
        };
        let pacing = PacingSettings {
            concurrency: p.concurrency,
            success_interval: p.success_interval.0,
            failure_interval: p.failure_interval.0,
            throttled_interval: p.throttled_interval.0,
            max_calls_per_sec: p.max_calls_per_sec,
            rate_window: Duration::from_millis(1_050),
            quota_day: crate::clock::QuotaDay::new(p.quota_day.0),
        };
        let mut accounts: Vec<AccountSettings> = Vec::new();
        for (i, acc) in raw.accounts.iter().enumerate() {
            let at = format!("accounts[{i}] ({})", acc.name);
            if accounts.iter().any(|x| x.name == acc.name) {
                return Err(format!("{at}: a second account with this name"));
            }
            let secret = match (&acc.app_secret_file, &acc.app_secret_env) {
                (Some(f), None) => {
                    let f = if f.is_relative() {
                        path.parent().unwrap_or(Path::new(".")).join(f)
                    } else {
                        f.clone()
                    };
                    std::fs::read_to_string(&f)
                        .map_err(|e| format!("{at}: cannot read app_secret_file {}: {e}", f.display()))?
                        .trim()
                        .to_string()
                }
                (None, Some(var)) => std::env::var(var)
                    .map_err(|_| format!("{at}: environment variable {var} (app_secret_env) is not set"))?,
                _ => return Err(format!("{at}: give exactly one of app_secret_file and app_secret_env")),
            };
            if secret.is_empty() {
                return Err(format!("{at}: the app secret is empty"));
            }
            let proxy = match &acc.proxy_env {
                Some(var) => Some(Secret::new(
                    std::env::var(var)
                        .map_err(|_| format!("{at}: environment variable {var} (proxy_env) is not set"))?,
                )),
                None => None,
            };
            accounts.push(AccountSettings {
                name: acc.name.clone(),
                app_key: acc.app_key.clone(),
                app_secret: Secret::new(secret),
                daily_quota: acc.daily_quota,
                oauth: acc.oauth,
                proxy,
                pacing: pacing.clone(),
            });
        }
        let known = |name: &Option<String>, at: &str| -> Result<(), String> {
            match name {
                Some(n) if !accounts.iter().any(|a| &a.name == n) => {
                    Err(format!("{at}: no account named {n:?}"))
                }
                _ => Ok(()),
            }
        };
        let mut shops: Vec<ShopSettings> = Vec::new();
        let mut sellers = std::collections::BTreeMap::new();
        for (i, s) in raw.shops.iter().enumerate() {
            let (shop, label) = match (&s.url, &s.member_id) {
                (Some(u), None) => (u.parse::<ShopRef>(), u.clone()),
                (None, Some(m)) => (m.parse::<MemberId>().map(ShopRef::Member), m.clone()),
                _ => return Err(format!("shops[{i}]: give exactly one of url and member_id")),
            };
            let at = format!("shops[{i}] ({label})");
            let shop = shop.map_err(|e| format!("{at}: {e}"))?;
            if shops.iter().any(|x| x.shop == shop) {
                return Err(format!("{at}: the same shop is configured twice"));
            }
            known(&s.account, &at)?;
            let (incremental, full) = (Cadence::parse(&s.incremental), Cadence::parse(&s.full));
            if let Some(c) = incremental.cron() {
                check_cron(c, timezone).map_err(|e| format!("{at}: incremental: {e}"))?;
            }
            if let Some(c) = full.cron() {
                check_cron(c, timezone).map_err(|e| format!("{at}: full: {e}"))?;
            }
            if let Some(seller) = seller_source(s, &protocol, &at)? {
                let ShopRef::Member(m) = &shop else {
                    return Err(format!(
                        "{at}: source: a seller's shop is keyed by its member_id (no call resolves a URL under param2)"
                    ));
                };
                sellers.insert(m.to_string(), seller);
            }
            if s.follow && (protocol != Protocol::Param2 || raw.push.is_none()) {
                return Err(format!(
                    "{at}: follow: following offers needs [api] protocol = \"param2\" and a [push] receiver for their messages"
                ));
            }
            shops.push(ShopSettings {
                shop,
                label,
                account: s.account.clone(),
                incremental,
                full,
                follow: s.follow,
            });
        }
        let mut watches = Vec::new();
        for (i, w) in raw.watch.iter().enumerate() {
            let at = format!("watch[{i}] ({})", w.name);
            if let Some(bad) =
                w.items.iter().find(|id| id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(format!("{at}: item id {bad:?} is not a decimal number"));
            }
            known(&w.account, &at)?;
            check_cron(&w.schedule, timezone).map_err(|e| format!("{at}: schedule: {e}"))?;
            watches.push(WatchSettings {
                name: w.name.clone(),
                items: w.items.clone(),
                account: w.account.clone(),
                schedule: w.schedule.clone(),
            });
        }
        let mut sinks: Vec<SinkSettings> = Vec::new();
        for (i, s) in raw.sinks.iter().enumerate() {
            if sinks.iter().any(|x| x.name == s.name) {
                return Err(format!("sinks[{i}] ({}): a second sink with this name", s.name));
            }
            let at = format!("sinks[{i}] ({})", s.name);
            let config = serde_json::to_value(&s.config).map_err(|e| format!("{at}: {e}"))?;
            if s.batch_size == 0 || s.reject_attempts == 0 {
                return Err(format!("{at}: batch_size and reject_attempts must be at least 1"));
            }
            let delivery = crate::sinks::DeliveryOptions {
                batch_size: s.batch_size,
                timeout: s.timeout.0,
                reject_attempts: s.reject_attempts,
                backoff_max: s.backoff_max.0,
                ..Default::default()
            };
            sinks.push(SinkSettings {
                name: s.name.clone(),
                plugin: s.plugin.clone(),
                start: s.start,
                delivery,
                config,
            });
        }
        if (!shops.is_empty() || !watches.is_empty()) && accounts.is_empty() {
            return Err("shops are configured but no [[accounts]]".into());
        }
        let push = match &raw.push {
            None => None,
            Some(p) => {
                let listen: SocketAddr = p
                    .listen
                    .parse()
                    .map_err(|_| format!("push.listen = {:?} is not an address:port", p.listen))?;
                if !p.path.starts_with('/') {
                    return Err(format!("push.path = {:?} must start with /", p.path));
                }
                let account = match &p.account {
                    Some(name) if accounts.iter().any(|a| &a.name == name) => name.clone(),
                    Some(name) => return Err(format!("push.account = {name:?}: no account of that name")),
                    None => match accounts.first() {
                        Some(a) => a.name.clone(),
                        None => {
                            return Err("push.listen: the receiver needs an [[accounts]] entry whose app secret signs the messages".into())
                        }
                    },
                };
                Some(PushSettings { listen, path: p.path.clone(), account, pull_every: p.pull_every.0 })
            }
        };
        let control_socket = match (raw.daemon.control_socket, std::env::var_os("RUNTIME_DIRECTORY")) {
            (Some(p), _) => p,
            // systemd may list several runtime directories, separated by colons; ours is first.
            (None, Some(run)) if !run.is_empty() => {
                let first = run.to_string_lossy().split(':').next().unwrap_or_default().to_string();
                PathBuf::from(first).join("control.sock")
            }
            (None, _) => raw.daemon.state_dir.join("control.sock"),
        };
        Ok(Settings {
            path: path.to_path_buf(),
            control_socket,
            state_dir: raw.daemon.state_dir,
            plugin_dir: raw.daemon.plugin_dir,
            metrics_listen,
            cache_bytes: raw.daemon.cache_mib.max(1) * 1024 * 1024,
            sink_retention: raw.daemon.sink_retention.0,
            max_passes: raw.daemon.max_passes,
            timezone,
            plan_every: raw.daemon.plan_every.0,
            budget,
            api: ApiSettings {
                base_url,
                auth_url: a.auth_url.clone(),
                protocol,
                connect_timeout: a.connect_timeout.0,
                read_timeout: a.read_timeout.0,
                max_attempts: a.max_attempts,
                token_refresh_margin: Duration::from_secs(300),
                authorize_url: a.param2_auth_url.clone(),
                postpone_within: a.postpone_within.0,
            },
            sync: SyncSettings {
                page_size,
                slice: Duration::from_secs(u64::from(a.slice_days) * 86_400),
                overlap: a.overlap.0,
                full_pass_skus: raw.sync.full_pass_skus,
                sku_max_age: raw.sync.sku_max_age.0,
                sellers,
            },
            accounts,
            shops,
            watches,
            sinks,
            push,
        })
    }

    pub fn account(&self, name: &str) -> Option<&AccountSettings> {
        self.accounts.iter().find(|a| a.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, ConfigError> {
        std::env::set_var("SHOPSYNC_TEST_SECRET", "s3cr3t");
        Settings::parse(Path::new("test.toml"), text)
    }

    const GOOD: &str = r#"
[daemon]
state_dir = "/tmp/x"
[pacing]
success_interval = "10ms"
[[accounts]]
name = "main"
app_key = "10000001"
app_secret_env = "SHOPSYNC_TEST_SECRET"
[[shops]]
url = "https://shop12345678.1688.com"
[[shops]]
member_id = "6000000000000001"
account = "main"
[[sinks]]
name = "archive"
plugin = "jsonl"
[sinks.config]
path = "/tmp/events.jsonl"
"#;

    #[test]
    fn a_good_file_validates_with_defaults() {
        let s = parse(GOOD).unwrap();
        assert_eq!(s.accounts[0].pacing.success_interval, Duration::from_millis(10));
        assert_eq!(s.accounts[0].pacing.failure_interval, Duration::from_secs(4));
        assert_eq!(s.accounts[0].app_secret.expose(), "s3cr3t");
        assert_eq!(s.shops.len(), 2);
        assert!(matches!(s.shops[0].shop, ShopRef::Url(_)));
        assert_eq!(s.sync.overlap, Duration::from_secs(300));
        assert_eq!(s.sinks[0].config["path"], "/tmp/events.jsonl");
        assert_eq!(s.cache_bytes, 16 * 1024 * 1024);
        assert_eq!(s.budget.split, BudgetSplit::Auto);
        let shares = parse(&format!("{GOOD}\n[budget]\nsplit = \"shares\"\n")).unwrap();
        assert_eq!(shares.budget.split, BudgetSplit::Shares);
        let e = parse(&format!("{GOOD}\n[budget]\nsplit = \"half\"\n")).unwrap_err().to_string();
        assert!(e.contains("split") && e.contains("auto") && e.contains("shares"), "{e}");
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = parse("[daemon]\nstate_dir = \"/x\"\ncolour = 3\n").unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("column 1") && e.contains("colour"), "{e}");
        let e = parse("[pacing]\nsuccess_interval = \"fast\"\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("not a duration"), "{e}");
        let e = parse("[api]\npage_size = \"40\"\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn semantic_errors_name_the_entry() {
        let bad_id = GOOD.replace("6000000000000001", "12345");
        assert!(parse(&bad_id)
            .unwrap_err()
            .to_string()
            .contains("shops[1] (12345): member id \"12345\" is not 16"));
        let bad_url = GOOD.replace("https://shop12345678.1688.com", "https://example.com/shop");
        assert!(parse(&bad_url).unwrap_err().to_string().contains("not on 1688.com"));
        let bad_acct = GOOD.replace("account = \"main\"", "account = \"other\"");
        assert!(parse(&bad_acct).unwrap_err().to_string().contains("no account named \"other\""));
        let page = GOOD.replace("[daemon]", "[api]\npage_size = 41\n[daemon]");
        assert!(parse(&page).unwrap_err().to_string().contains("page_size = 41"));
        let page = GOOD.replace("[daemon]", "[api]\nprotocol = \"param2\"\npage_size = 40\n[daemon]");
        let e = parse(&page).unwrap_err().to_string();
        assert!(e.contains("line 4") && e.contains("page_size = 40 must be 1 to 20"), "{e}");
        let secret = GOOD.replace("SHOPSYNC_TEST_SECRET", "SHOPSYNC_UNSET_VAR_XYZ");
        let e = parse(&secret).unwrap_err().to_string();
        assert!(e.contains("SHOPSYNC_UNSET_VAR_XYZ") && !e.contains("s3cr3t"), "{e}");
    }
}

#[cfg(test)]
mod protocol {
    use super::*;

    fn parse(text: &str) -> Result<Settings, ConfigError> {
        Settings::parse(Path::new("test.toml"), text)
    }

    #[test]
    fn seed_is_the_default() {
        let s = parse("").unwrap();
        assert_eq!(s.api.protocol, Protocol::Top(crate::api::SignMethod::Md5));
        assert_eq!(s.sync.page_size, 40);
        assert_eq!(s.api.base_url, "https://gw.open.1688.com/openapi/param2/2/portals.open/api/");
    }

    #[test]
    fn param2_takes_its_root_and_pages_of_20() {
        let s = parse("[api]\nprotocol = \"param2\"\n").unwrap();
        assert_eq!(s.api.protocol, Protocol::Param2);
        assert_eq!(s.api.base_url, "https://gw.open.1688.com/openapi/");
        assert_eq!(s.sync.page_size, 20);
        let s = parse(
            "[api]\nprotocol = \"param2\"\nparam2_root = \"http://127.0.0.1:8688/openapi\"\npage_size = 10\n",
        )
        .unwrap();
        assert_eq!(s.api.base_url, "http://127.0.0.1:8688/openapi/");
        assert_eq!(s.sync.page_size, 10);
    }

    #[test]
    fn a_bad_protocol_names_line_and_column() {
        let e = parse("[api]\nslice_days = 7\nprotocol = \"http\"\n").unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("column") && e.contains("param2"), "{e}");
        let e = parse("[api]\nprotocol = \"param2\"\nparam2_root = \"gw.open.1688.com\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("param2_root"), "{e}");
    }

    const SELLER: &str = "[api]\nprotocol = \"param2\"\n[[accounts]]\nname = \"main\"\napp_key = \"1\"\napp_secret_env = \"SHOPSYNC_SELLER_TEST_SECRET\"\n[[shops]]\nmember_id = \"6000000000000001\"\nsource = \"seller\"\nseller_open_id = \"BBBabc\"\n";

    #[test]
    fn a_seller_shop_is_keyed_by_member_id_with_its_open_id() {
        std::env::set_var("SHOPSYNC_SELLER_TEST_SECRET", "s");
        let s = parse(SELLER).unwrap();
        let seller = &s.sync.sellers["6000000000000001"];
        assert_eq!((seller.open_id.as_deref(), seller.country.as_str()), (Some("BBBabc"), "en"));
        let by_offer =
            parse(&SELLER.replace("seller_open_id = \"BBBabc\"", "seller_offer_id = \"601\"")).unwrap();
        let seller = &by_offer.sync.sellers["6000000000000001"];
        assert_eq!((seller.open_id.as_deref(), seller.offer_id.as_deref()), (None, Some("601")));
        let s = parse(&format!("{SELLER}country = \"ja\"\n")).unwrap();
        assert_eq!(s.sync.sellers["6000000000000001"].country, "ja");
        let own = parse(&SELLER.replace("source = \"seller\"\nseller_open_id = \"BBBabc\"\n", "")).unwrap();
        assert!(own.sync.sellers.is_empty(), "source = \"own\" is the default");
    }

    #[test]
    fn a_seller_shop_needs_param2_and_an_open_id_named_by_line() {
        std::env::set_var("SHOPSYNC_SELLER_TEST_SECRET", "s");
        let e =
            parse(&SELLER.replace("protocol = \"param2\"", "protocol = \"seed\"")).unwrap_err().to_string();
        assert!(e.contains("line 9") && e.contains("needs [api] protocol = \"param2\""), "{e}");
        let e = parse(&SELLER.replace("seller_open_id = \"BBBabc\"\n", "")).unwrap_err().to_string();
        assert!(e.contains("line 9") && e.contains("needs seller_open_id, or seller_offer_id"), "{e}");
        let e = parse(&SELLER.replace("seller_open_id = \"BBBabc\"", "seller_offer_id = \"x1\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 10") && e.contains("is not an offer id"), "{e}");
        let e = parse(&format!("{SELLER}seller_offer_id = \"601\"\n")).unwrap_err().to_string();
        assert!((e.contains("line 10") || e.contains("line 11")) && e.contains("not both"), "{e}");
        let e = parse(&SELLER.replace("source = \"seller\"\n", "")).unwrap_err().to_string();
        assert!(e.contains("line 9") && e.contains("only read with source = \"seller\""), "{e}");
        let e = parse(&SELLER.replace("\"seller\"", "\"buyer\"")).unwrap_err().to_string();
        assert!(e.contains("line 9") && e.contains("own") && e.contains("seller"), "{e}");
        let url =
            SELLER.replace("member_id = \"6000000000000001\"", "url = \"https://shop12345678.1688.com\"");
        let e = parse(&url).unwrap_err().to_string();
        assert!(e.contains("keyed by its member_id"), "{e}");
    }
}

#[cfg(test)]
mod push {
    use super::*;

    fn parse(text: &str) -> Result<Settings, ConfigError> {
        std::env::set_var("SHOPSYNC_TEST_PUSH_SECRET", "x");
        Settings::parse(Path::new("test.toml"), text)
    }

    const ACCOUNTS: &str = r#"
[[accounts]]
name = "a"
app_key = "1"
app_secret_env = "SHOPSYNC_TEST_PUSH_SECRET"
[[accounts]]
name = "b"
app_key = "2"
app_secret_env = "SHOPSYNC_TEST_PUSH_SECRET"
"#;

    #[test]
    fn off_without_the_section_and_defaults_with_it() {
        assert_eq!(parse(ACCOUNTS).unwrap().push, None);
        let s = parse(&format!("[push]\n{ACCOUNTS}")).unwrap();
        assert_eq!(
            s.push,
            Some(PushSettings {
                listen: "127.0.0.1:9189".parse().unwrap(),
                path: "/1688/push".into(),
                account: "a".into(),
                pull_every: Duration::from_secs(3_600),
            })
        );
        let s = parse(&format!("[push]\naccount = \"b\"\npath = \"/cb\"\n{ACCOUNTS}")).unwrap();
        let p = s.push.unwrap();
        assert_eq!((p.account.as_str(), p.path.as_str()), ("b", "/cb"));
    }

    #[test]
    fn mistakes_name_line_and_column() {
        let e =
            parse(&format!("[push]\npath = \"/x\"\naccount = \"zz\"\n{ACCOUNTS}")).unwrap_err().to_string();
        assert!(e.contains("line 3, column 1") && e.contains("no account"), "{e}");
        let e = parse(&format!("[push]\nlisten = \"here\"\n{ACCOUNTS}")).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("push.listen"), "{e}");
        let e = parse(&format!("[push]\nlisten = \"127.0.0.1:1\"\npath = \"cb\"\n{ACCOUNTS}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("must start with /"), "{e}");
        let e = parse("[push]\nlisten = \"127.0.0.1:1\"\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("[[accounts]]"), "{e}");
        let e = parse("[push]\nport = 1\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("port"), "{e}");
    }
}

#[cfg(test)]
mod example {
    use super::*;

    /// The shipped example must always validate (with its secret supplied).
    #[test]
    fn example_config_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/shopsync.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("main");
        std::fs::write(&secret, "x").unwrap();
        let text = text.replace("/run/credentials/shopsync.service/main", &secret.display().to_string());
        let s = Settings::parse(&path, &text).unwrap();
        assert_eq!((s.accounts.len(), s.shops.len(), s.watches.len(), s.sinks.len()), (1, 1, 1, 1));
    }
}
