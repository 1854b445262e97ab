//! What shopsync keeps of an item, and the change events every sink receives
//! (design doc, "Change event"). Prices are decimals serialized as strings.

use crate::api::Tier;
use md5::{Digest, Md5};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Where an item's tiers came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PriceSource {
    #[serde(rename = "wholesalePrice")]
    WholesalePrice,
    /// `wholesalePrice` was `""`: the single tier is the channel price.
    #[serde(rename = "channelPrice")]
    ChannelPrice,
    /// No price at all (e.g. a key without the B2B permission).
    #[serde(rename = "none")]
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sku {
    pub sku_id: String,
    pub spec: String,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub price: Option<Decimal>,
    pub stock: Option<i64>,
}

/// A normalized item. Field order is the canonical order its MD5 is taken in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub item_id: String,
    pub title: String,
    pub cid: String,
    pub wholesale_prices: Vec<Tier>,
    pub price_source: PriceSource,
    pub moq: Option<u64>,
    pub sales: Option<i64>,
    pub stock: Option<i64>,
    pub status: String,
    pub modified_ms: i64,
    /// The ids listed in `skuIds`; `skus` holds the details that could be fetched.
    pub sku_ids: Vec<String>,
    /// Sorted by `sku_id`.
    pub skus: Vec<Sku>,
    pub pic_url: String,
    pub detail_url: String,
}

impl Item {
    /// MD5 of the canonical JSON form, as lowercase hex.
    pub fn md5(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Md5::digest(&bytes))
    }

    /// The names of the fields that differ from `old`.
    pub fn changed_fields(&self, old: &Item) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |name: &str, differs: bool| {
            if differs {
                out.push(name.to_string());
            }
        };
        check("title", self.title != old.title);
        check("cid", self.cid != old.cid);
        check("wholesale_prices", self.wholesale_prices != old.wholesale_prices);
        check("price_source", self.price_source != old.price_source);
        check("moq", self.moq != old.moq);
        check("sales", self.sales != old.sales);
        check("stock", self.stock != old.stock);
        check("status", self.status != old.status);
        check("modified_ms", self.modified_ms != old.modified_ms);
        check("skus", self.skus != old.skus || self.sku_ids != old.sku_ids);
        check("pic_url", self.pic_url != old.pic_url);
        check("detail_url", self.detail_url != old.detail_url);
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Create,
    Update,
    Delete,
}

impl Op {
    pub fn as_str(&self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// One change, as every sink receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `shop:item_id:seq`, stable across redeliveries.
    pub id: String,
    /// Increases per shop.
    pub seq: u64,
    pub shop: String,
    pub item_id: String,
    pub op: Op,
    pub changed: Vec<String>,
    pub md5: String,
    pub modified_ms: i64,
    pub observed_ms: i64,
    /// For `delete`, the last known state.
    pub item: Item,
}
