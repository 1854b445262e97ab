//! The simulator's knobs: the platform's limits, the fault rates, the catalogue's quirks, and
//! the accounts it accepts.
//!
//! Every quirk of the contract is on by default. A test that wants a calm platform turns
//! things off explicitly (`Faults::none()`, `rate_per_sec = 0`, `Quirks::calm_catalogue()`)
//! so that the reader sees it.

use serde::{Deserialize, Serialize};

fn yes() -> bool {
    true
}

/// The platform's limits. Defaults are the contract's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Calls per app key over any sliding second before code 7 / HTTP 429; 0 turns it off.
    pub rate_per_sec: u32,
    /// Largest accepted `pageSize`.
    pub max_page_size: u32,
    /// Pages past this come back empty (with an honest `total_results`).
    pub depth_cap: u32,
    /// Widest window a saturated list query may span without stalling.
    pub window_days: u32,
    /// How long a too-wide saturated query stalls before failing with 5002.
    pub stall_ms: u64,
    /// Largest accepted clock skew of `timestamp`.
    pub max_skew_ms: i64,
    /// Daily calls for a commercial key.
    pub quota_commercial: u64,
    /// Daily calls for a test key.
    pub quota_test: u64,
    /// Length of a quota day in ms: 86,400,000 (days from 00:00 Asia/Shanghai, the
    /// platform's rule); shorter days start at multiples of their length since the epoch.
    pub quota_day_ms: i64,
    /// Lifetime of an OAuth access token.
    pub token_ttl_s: u64,
    /// Most ids in one `alibaba.item.sku.get`.
    pub max_sku_ids: usize,
    /// Shifts the simulator's clock (quota days, timestamp checks, new modified times).
    pub clock_offset_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            rate_per_sec: 5,
            max_page_size: 40,
            depth_cap: 50,
            window_days: 30,
            stall_ms: 30_000,
            max_skew_ms: 600_000,
            quota_commercial: 3_000,
            quota_test: 30,
            quota_day_ms: 86_400_000,
            token_ttl_s: 36_000,
            max_sku_ids: 20,
            clock_offset_ms: 0,
        }
    }
}

/// Transient gateway failures, each a probability per call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Code 5002, system busy.
    pub busy: f64,
    /// An HTML error page with HTTP 502 or 503.
    pub html: f64,
    /// A body cut off mid-way (HTTP 200).
    pub truncated: f64,
    /// A request that hangs for `hang_ms` before it answers.
    pub hang: f64,
    /// Code 7 with HTTP 429 although the rate limit was not reached (bursts elsewhere).
    pub throttle: f64,
    pub hang_ms: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults { busy: 0.02, html: 0.01, truncated: 0.01, hang: 0.002, throttle: 0.0, hang_ms: 120_000 }
    }
}

impl Faults {
    /// A calm platform: no injected failures at all.
    pub fn none() -> Self {
        Faults { busy: 0.0, html: 0.0, truncated: 0.0, hang: 0.0, throttle: 0.0, hang_ms: 0 }
    }
}

/// How the catalogues misbehave: they change on their own, and some of their data cannot be
/// reached or read the way the contract promises. Defaults are on; see `GET /_sim/quirks`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quirks {
    /// Background churn: changes per minute per shop, made while the simulator serves, as on a
    /// live platform where sellers edit, restock, list and delist at any hour (updates, silent
    /// stock and sales touches, SKU-only changes, creates, delistings); 0 turns it off.
    /// A client that compares its copy with the truth must stop churn first.
    pub churn_per_min: f64,
    /// Share of churn delistings that leave `modified_time` where it was: the item just drops
    /// out of the on-sale lists, and only a full pass notices.
    pub silent_delist_share: f64,
    /// Share of items served with wrong but readable JSON types: `moq`, `stock` and `sales` as
    /// strings (`"12"`), `item_id` as a number. Which items is fixed by their id and the seed.
    pub wrong_types_share: f64,
    /// Share of a generated shop's items whose `cid` is not in the seller's category list (at
    /// least one in shops of 1,000 items or more, some of them on the bulk-import millisecond,
    /// where only per-category queries reach items: those are unreachable).
    pub stray_cid_share: f64,
    /// Generated shops of at least this many items also get a bulk import of more than 2,000
    /// items on one millisecond all in ONE category, which no query of the contract can reach
    /// past its first 2,000; 0 never.
    pub one_category_tie_min_items: usize,
}

fn default_churn_per_min() -> f64 {
    6.0
}
fn default_silent_delist_share() -> f64 {
    0.25
}
fn default_wrong_types_share() -> f64 {
    0.03
}
fn default_stray_cid_share() -> f64 {
    0.005
}
fn default_one_category_tie_min_items() -> usize {
    20_000
}

impl Default for Quirks {
    fn default() -> Self {
        Quirks {
            churn_per_min: default_churn_per_min(),
            silent_delist_share: default_silent_delist_share(),
            wrong_types_share: default_wrong_types_share(),
            stray_cid_share: default_stray_cid_share(),
            one_category_tie_min_items: default_one_category_tie_min_items(),
        }
    }
}

impl Quirks {
    /// Every catalogue quirk on, but no background churn: a catalogue that holds still so a
    /// copy can be compared with the truth.
    pub fn calm_catalogue() -> Self {
        Quirks { churn_per_min: 0.0, ..Quirks::default() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Commercial,
    Test,
}

/// An app key the gateway accepts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub app_key: String,
    pub app_secret: String,
    pub kind: KeyKind,
    /// Has the B2B data permission (wholesale prices, channel price, MOQ).
    #[serde(default = "yes")]
    pub b2b: bool,
    /// Calls must carry an OAuth `access_token`.
    #[serde(default)]
    pub oauth: bool,
    /// Methods this key has no permission for (code 11).
    #[serde(default)]
    pub denied_methods: Vec<String>,
}

/// The accounts every simulator starts with.
pub fn default_accounts() -> Vec<Account> {
    let acct = |n: u32, kind, b2b, oauth, denied: &[&str]| Account {
        app_key: format!("1000000{n}"),
        app_secret: format!("sim-secret-{n}"),
        kind,
        b2b,
        oauth,
        denied_methods: denied.iter().map(|s| s.to_string()).collect(),
    };
    vec![
        acct(1, KeyKind::Commercial, true, false, &[]),
        acct(2, KeyKind::Commercial, true, false, &[]),
        acct(3, KeyKind::Commercial, true, true, &[]),
        acct(4, KeyKind::Test, true, false, &[]),
        acct(5, KeyKind::Commercial, false, false, &[]),
        acct(6, KeyKind::Commercial, true, false, &["alibaba.item.get"]),
    ]
}
