//! What is stored per item and per shop.

use crate::event::Item;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredItem {
    pub item: Item,
    pub md5: String,
    /// MD5 of the listing fields alone: when it is unchanged, the SKU details are too and
    /// need no `alibaba.item.sku.get`.
    pub listing_md5: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PassKind {
    Full,
    Incremental,
    Watch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassRecord {
    pub kind: PassKind,
    pub started_ms: i64,
    pub finished_ms: i64,
    pub ok: bool,
    pub calls: u64,
    pub items_seen: u64,
    pub events: u64,
    pub error: Option<String>,
}

/// The completeness check of a full pass (design doc, "Completeness").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completeness {
    pub fetched: u64,
    pub official: u64,
    /// Of the items that list SKU ids, the share whose SKU details were fetched.
    pub sku_share: f64,
    /// The share of items with a price (tiers or the channel-price fallback).
    pub price_share: f64,
    pub complete: bool,
    pub checked_ms: i64,
}

impl Completeness {
    pub fn judge(
        fetched: u64,
        official: u64,
        sku_share: f64,
        price_share: f64,
        checked_ms: i64,
    ) -> Completeness {
        let complete = fetched.abs_diff(official) <= 5 && sku_share >= 0.97 && price_share >= 0.97;
        Completeness { fetched, official, sku_share, price_share, complete, checked_ms }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShopState {
    /// Every change with `modified_time` below this has been seen and stored with its event.
    pub watermark_ms: Option<i64>,
    /// The next event's `seq`.
    pub next_seq: u64,
    pub item_count: u64,
    pub last_full: Option<PassRecord>,
    pub last_incremental: Option<PassRecord>,
    pub completeness: Option<Completeness>,
}
