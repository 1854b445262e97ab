//! The configuration file as written. Durations are strings like `"800ms"`, `"4s"`, `"5m"`.

use serde::{Deserialize, Deserializer};
use std::path::PathBuf;
use std::time::Duration;

/// A duration written as `"800ms"`, `"4s"`, `"5m"`; a bad one is a parse error with a location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map(Dur).map_err(|e| {
            serde::de::Error::custom(format!("{s:?} is not a duration like \"800ms\" or \"5m\": {e}"))
        })
    }
}

fn ms(n: u64) -> Dur {
    Dur(Duration::from_millis(n))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub daemon: RawDaemon,
    #[serde(default)]
    pub api: RawApi,
    #[serde(default)]
    pub pacing: RawPacing,
    #[serde(default)]
    pub sync: RawSync,
    #[serde(default)]
    pub budget: RawBudget,
    #[serde(default)]
    pub accounts: Vec<RawAccount>,
    #[serde(default)]
    pub shops: Vec<RawShop>,
    #[serde(default)]
    pub watch: Vec<RawWatch>,
    #[serde(default)]
    pub sinks: Vec<RawSink>,
    /// The receiver of the platform's change messages; off when the section is absent.
    #[serde(default)]
    pub push: Option<RawPush>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    /// Where sled keeps items, watermarks, the outbox and counters.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// The only folder sink plugins are loaded from.
    #[serde(default = "default_plugin_dir")]
    pub plugin_dir: PathBuf,
    /// The metrics and health listener.
    #[serde(default = "default_metrics_listen")]
    pub metrics_listen: String,
    /// sled's page cache in MiB (sled's own default of 1 GiB is far too much for a daemon).
    #[serde(default = "default_cache_mib")]
    pub cache_mib: u64,
    /// How long a sink removed from the config keeps its cursor (and the outbox its events),
    /// so re-adding it resumes where it stopped.
    #[serde(default = "default_sink_retention")]
    pub sink_retention: Dur,
    /// Passes that run at once; the rest wait their turn. One pass can keep an account's call
    /// slots busy by itself, so more passes than accounts × 2 only cost memory.
    #[serde(default = "default_max_passes")]
    pub max_passes: usize,
    /// The time zone cron strings are read in (an IANA name). The platform's day, and so
    /// its quota, starts at 00:00 Asia/Shanghai.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// How often the daemon looks for work the schedules do not start by themselves: full
    /// passes left unfinished (quota, shutdown, a crash) resume at the next look that finds
    /// an account with quota left.
    #[serde(default = "default_plan_every")]
    pub plan_every: Dur,
    /// The control socket the CLI talks to the running daemon through (status, events,
    /// export, state reset, queued passes, DLQ replay, reload). Default:
    /// `$RUNTIME_DIRECTORY/control.sock` when systemd sets RUNTIME_DIRECTORY (the unit's
    /// `RuntimeDirectory=shopsync`, i.e. `/run/shopsync/control.sock`), else
    /// `<state_dir>/control.sock`. A CLI started outside the unit does not see
    /// RUNTIME_DIRECTORY, so under systemd write the path here for both to agree.
    #[serde(default)]
    pub control_socket: Option<PathBuf>,
}

fn default_timezone() -> String {
    "Asia/Shanghai".into()
}

fn default_plan_every() -> Dur {
    ms(60_000)
}

fn default_max_passes() -> usize {
    4
}

fn default_sink_retention() -> Dur {
    ms(7 * 86_400_000)
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/shopsync")
}
fn default_plugin_dir() -> PathBuf {
    PathBuf::from("/usr/lib/shopsync/plugins")
}
fn default_metrics_listen() -> String {
    "127.0.0.1:9188".into()
}
fn default_cache_mib() -> u64 {
    16
}

impl Default for RawDaemon {
    fn default() -> Self {
        RawDaemon {
            state_dir: default_state_dir(),
            plugin_dir: default_plugin_dir(),
            metrics_listen: default_metrics_listen(),
            cache_mib: default_cache_mib(),
            sink_retention: default_sink_retention(),
            max_passes: default_max_passes(),
            timezone: default_timezone(),
            plan_every: default_plan_every(),
            control_socket: None,
        }
    }
}

/// Which protocol the gateway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawProtocol {
    /// The TOP-style gateway of sim1688 (and the demo): `base_url`, `sign_method`.
    #[default]
    Seed,
    /// The production 1688 Open Platform: `param2_root`, HMAC-SHA1, 20 items a page.
    Param2,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    /// `"seed"` (default) or `"param2"`.
    #[serde(default)]
    pub protocol: RawProtocol,
    /// The seed gateway's URL (`protocol = "seed"`).
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The production gateway's root, under which `param2/1/<namespace>/<api>/<appKey>` and
    /// the token endpoint `http/1/system.oauth2/getToken/<appKey>` live
    /// (`protocol = "param2"`).
    #[serde(default = "default_param2_root")]
    pub param2_root: String,
    /// The OAuth token endpoint (accounts with `oauth = true`).
    #[serde(default = "default_auth_url")]
    pub auth_url: String,
    /// The page where a shop owner authorizes the app (`protocol = "param2"`,
    /// `shopsync auth`).
    #[serde(default = "default_param2_auth_url")]
    pub param2_auth_url: String,
    /// Postpone an authorization (`system.oauth2/postponeToken`) once its refresh token has
    /// less than this left (`protocol = "param2"`; the platform allows the last 30 days).
    #[serde(default = "default_postpone_within")]
    pub postpone_within: Dur,
    /// `md5` or `sha1` (seed only; param2 always signs with HMAC-SHA1).
    #[serde(default)]
    pub sign_method: crate::api::SignMethod,
    /// Items per list call: 1 to 40 on the seed gateway (default 40), 1 to 20 on param2
    /// (default 20).
    #[serde(default)]
    pub page_size: Option<u32>,
    /// Widest time window of one query, in days: 1 to 30 (wider saturated windows stall).
    #[serde(default = "default_slice_days")]
    pub slice_days: u32,
    /// Incremental passes start this far before the watermark (clock skew, ties).
    #[serde(default = "default_overlap")]
    pub overlap: Dur,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Dur,
    /// How long a whole response may take.
    #[serde(default = "default_read_timeout")]
    pub read_timeout: Dur,
    /// Tries per call for transient failures, the first included.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

fn default_base_url() -> String {
    "https://gw.open.1688.com/openapi/param2/2/portals.open/api/".into()
}
fn default_auth_url() -> String {
    "https://open.1688.com/auth/token".into()
}
fn default_param2_auth_url() -> String {
    crate::api::DEFAULT_AUTHORIZE_URL.into()
}
fn default_postpone_within() -> Dur {
    Dur(crate::api::DEFAULT_POSTPONE_WITHIN)
}
fn default_param2_root() -> String {
    crate::api::param2::DEFAULT_ROOT.into()
}
fn default_slice_days() -> u32 {
    30
}
fn default_overlap() -> Dur {
    ms(300_000)
}
fn default_connect_timeout() -> Dur {
    ms(5_000)
}
fn default_read_timeout() -> Dur {
    ms(20_000)
}
fn default_max_attempts() -> u32 {
    8
}

impl Default for RawApi {
    fn default() -> Self {
        RawApi {
            protocol: Default::default(),
            base_url: default_base_url(),
            param2_root: default_param2_root(),
            auth_url: default_auth_url(),
            param2_auth_url: default_param2_auth_url(),
            postpone_within: default_postpone_within(),
            sign_method: Default::default(),
            page_size: None,
            slice_days: default_slice_days(),
            overlap: default_overlap(),
            connect_timeout: default_connect_timeout(),
            read_timeout: default_read_timeout(),
            max_attempts: default_max_attempts(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPacing {
    /// Calls in flight per account.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// A worker's rest after a successful call.
    #[serde(default = "default_success_interval")]
    pub success_interval: Dur,
    /// A worker's rest after a failed call.
    #[serde(default = "default_failure_interval")]
    pub failure_interval: Dur,
    /// Every worker's rest after the account was throttled.
    #[serde(default = "default_throttled_interval")]
    pub throttled_interval: Dur,
    /// Hard cap on call starts per second per account (0: off).
    #[serde(default = "default_max_calls_per_sec")]
    pub max_calls_per_sec: u32,
    /// Length of a quota day: `"24h"` (the platform's, from 00:00 Asia/Shanghai). Shorter
    /// days, starting at multiples of their length since the Unix epoch, are for simulations
    /// against a sim1688 started with the same `--quota-day`.
    #[serde(default = "default_quota_day")]
    pub quota_day: Dur,
}

fn default_quota_day() -> Dur {
    ms(86_400_000)
}

fn default_concurrency() -> usize {
    4
}
fn default_success_interval() -> Dur {
    ms(800)
}
fn default_failure_interval() -> Dur {
    ms(4_000)
}
fn default_throttled_interval() -> Dur {
    ms(10_000)
}
fn default_max_calls_per_sec() -> u32 {
    5
}

impl Default for RawPacing {
    fn default() -> Self {
        RawPacing {
            concurrency: default_concurrency(),
            success_interval: default_success_interval(),
            failure_interval: default_failure_interval(),
            throttled_interval: default_throttled_interval(),
            max_calls_per_sec: default_max_calls_per_sec(),
            quota_day: default_quota_day(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSync {
    /// `changed` (default): SKU details only for new items, items whose listing changed and
    /// items whose details are older than `sku_max_age`; `all`: a full pass refreshes every
    /// item's SKUs.
    #[serde(default)]
    pub full_pass_skus: super::SkuRefresh,
    /// With `changed`, a full pass still fetches the SKU details of items whose details are
    /// older than this: a variant's price or stock can change with the listing untouched,
    /// and nothing else would ever show it.
    #[serde(default = "default_sku_max_age")]
    pub sku_max_age: Dur,
}

impl Default for RawSync {
    fn default() -> Self {
        RawSync { full_pass_skus: Default::default(), sku_max_age: default_sku_max_age() }
    }
}

fn default_sku_max_age() -> Dur {
    ms(14 * 86_400_000)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    /// Used in logs, metrics and `shops.account`; never the key.
    pub name: String,
    pub app_key: String,
    /// File holding the app secret (e.g. a systemd credential).
    #[serde(default)]
    pub app_secret_file: Option<PathBuf>,
    /// Environment variable holding the app secret.
    #[serde(default)]
    pub app_secret_env: Option<String>,
    /// Calls per day (3,000 for a commercial key, 30 for a test key).
    #[serde(default = "default_daily_quota")]
    pub daily_quota: u64,
    /// Calls carry an OAuth access token.
    #[serde(default)]
    pub oauth: bool,
    /// Environment variable holding this account's egress proxy URL (it may hold credentials).
    #[serde(default)]
    pub proxy_env: Option<String>,
}

fn default_daily_quota() -> u64 {
    3_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShop {
    /// A shop URL of any of the three shapes...
    #[serde(default)]
    pub url: Option<String>,
    /// ...or its 16-digit member id.
    #[serde(default)]
    pub member_id: Option<String>,
    /// Pin the shop to this account.
    #[serde(default)]
    pub account: Option<String>,
    /// `"auto"` (the default): the budget planner polls the shop as often as its change
    /// rate is worth under the daily quota; or a cron (with seconds) of incremental passes.
    #[serde(default = "default_auto")]
    pub incremental: String,
    /// `"auto"` (the default): full passes as often as the budget leaves room for, at least
    /// every `budget.full_every`; or a cron (with seconds) of full passes.
    #[serde(default = "default_auto")]
    pub full: String,
    /// How the shop is read under `protocol = "param2"`: `"own"` (the default: its owner
    /// authorized the app, `alibaba.product.list.get` by time windows) or `"seller"` (any
    /// seller, by `seller_open_id`, with the cross-border APIs: sweeps of the whole list).
    #[serde(default)]
    pub source: RawSource,
    /// The seller's masked id for `querySellerOfferList` (`source = "seller"`, required;
    /// `queryProductDetail` of any of its offers names it as `sellerOpenId`).
    #[serde(default)]
    pub seller_open_id: Option<String>,
    /// Instead of `seller_open_id`: any one offer of the shop; its `queryProductDetail`
    /// names the seller's `sellerOpenId`, which is learned once and kept in the state.
    #[serde(default)]
    pub seller_offer_id: Option<String>,
    /// The answer language the cross-border APIs require (`country`), `source = "seller"`.
    #[serde(default = "default_country")]
    pub country: String,
    /// Follow the shop's offers on the platform (`alibaba.product.follow`, one call per
    /// offer, a few a day within the budget's watch share) so that their changes come as
    /// change messages to `[push]`.
    #[serde(default)]
    pub follow: bool,
}

/// Which API family reads a shop (`[[shops]] source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawSource {
    /// The shop's owner authorized the app.
    #[default]
    Own,
    /// Any seller's shop, by its `sellerOpenId`.
    Seller,
}

fn default_auto() -> String {
    "auto".into()
}

fn default_country() -> String {
    "en".into()
}

/// How each account's quota day is split. The four shares add up to at most 1; what a
/// share does not use (no watch lists, no shop to poll) goes to full passes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    /// `"auto"`: polls and full passes share the planned calls as the shops' change rates
    /// and costs make worth it; `"shares"`: in the ratio `incremental` : `full`.
    #[serde(default)]
    pub split: super::settings::BudgetSplit,
    /// Share for full-pass progress (first copies, resumed and periodic full passes).
    #[serde(default = "default_full_share")]
    pub full: f64,
    /// Share for incremental polls of shops on `incremental = "auto"`.
    #[serde(default = "default_incremental_share")]
    pub incremental: f64,
    /// Share held for `[[watch]]` lists (their crons) and for following the offers of shops
    /// with `follow = true`.
    #[serde(default = "default_watch_share")]
    pub watch: f64,
    /// Share never planned: room for crons, `shopsync sync` by hand and retries.
    #[serde(default = "default_reserve_share")]
    pub reserve: f64,
    /// A shop on `full = "auto"` gets a full pass at least this often (silent stock and
    /// sales changes and removals are only seen by full passes).
    #[serde(default = "default_full_every")]
    pub full_every: Dur,
    /// No shop is polled more often than this.
    #[serde(default = "default_min_poll")]
    pub min_poll: Dur,
    /// Every shop is polled at least this often, however quiet.
    #[serde(default = "default_max_poll")]
    pub max_poll: Dur,
}

fn default_full_share() -> f64 {
    0.45
}
fn default_incremental_share() -> f64 {
    0.35
}
fn default_watch_share() -> f64 {
    0.1
}
fn default_reserve_share() -> f64 {
    0.1
}
fn default_full_every() -> Dur {
    ms(7 * 86_400_000)
}
fn default_min_poll() -> Dur {
    ms(300_000)
}
fn default_max_poll() -> Dur {
    ms(86_400_000)
}

impl Default for RawBudget {
    fn default() -> Self {
        RawBudget {
            split: Default::default(),
            full: default_full_share(),
            incremental: default_incremental_share(),
            watch: default_watch_share(),
            reserve: default_reserve_share(),
            full_every: default_full_every(),
            min_poll: default_min_poll(),
            max_poll: default_max_poll(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWatch {
    pub name: String,
    /// Item ids to sync one by one through `alibaba.item.get`.
    pub items: Vec<String>,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default = "default_watch_schedule")]
    pub schedule: String,
}

fn default_watch_schedule() -> String {
    "0 */30 * * * *".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSink {
    pub name: String,
    /// Plugin name: `jsonl`, `webhook`, `postgres`, `mysql`, or a library in `plugin_dir`.
    pub plugin: String,
    /// Where a new sink starts reading the outbox.
    #[serde(default)]
    pub start: super::SinkStart,
    /// Events per batch handed to the plugin.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// A plugin call taking longer marks the sink stuck.
    #[serde(default = "default_sink_timeout")]
    pub timeout: Dur,
    /// Tries of a batch the plugin rejects before it goes to the dead-letter queue.
    #[serde(default = "default_reject_attempts")]
    pub reject_attempts: u32,
    /// Longest wait between retries of a failing sink.
    #[serde(default = "default_backoff_max")]
    pub backoff_max: Dur,
    /// Handed to the plugin as JSON.
    #[serde(default)]
    pub config: toml::Table,
}

fn default_batch_size() -> usize {
    500
}
fn default_sink_timeout() -> Dur {
    ms(30_000)
}
fn default_reject_attempts() -> u32 {
    3
}
fn default_backoff_max() -> Dur {
    ms(60_000)
}

/// `[push]`: where the platform's change messages (pushes) are received, and whose secret
/// signs them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPush {
    /// The receiver's address. It needs to be reachable by the platform (behind a reverse
    /// proxy that terminates TLS, typically); the default keeps it on loopback.
    #[serde(default = "default_push_listen")]
    pub listen: String,
    /// The URL path messages are POSTed to (the app's callback URL ends with it).
    #[serde(default = "default_push_path")]
    pub path: String,
    /// The account whose app secret signs the messages; default the first account. It is
    /// also the account that pulls the messages the platform could not deliver.
    #[serde(default)]
    pub account: Option<String>,
    /// How often the messages the platform could not deliver are pulled
    /// (`push.cursor.messageList`), besides once at every start; `"0s"`: only at start.
    #[serde(default = "default_pull_every")]
    pub pull_every: Dur,
}

fn default_pull_every() -> Dur {
    Dur(Duration::from_secs(3_600))
}

fn default_push_listen() -> String {
    "127.0.0.1:9189".into()
}
fn default_push_path() -> String {
    "/1688/push".into()
}
