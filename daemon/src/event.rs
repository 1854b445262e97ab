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

/// The version of the canonical form items are hashed in; stored hashes carry it, so a
/// change of form is recognized (and the stored copy re-hashed) instead of turning every
/// stored item into an update.
///
/// Version 1: the item as a JSON object with keys sorted (serde_json's map is a BTreeMap, so
/// the struct's field order does not matter), `null` fields left out (so a new optional field
/// that is absent changes no hash), prefixed with `shopsync-item-v1\n`.
pub const HASH_VERSION: u32 = 1;

fn canonical_md5(item: &impl Serialize) -> String {
    fn strip_nulls(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|_, x| !x.is_null());
                m.values_mut().for_each(strip_nulls);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip_nulls),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(item).unwrap_or_default();
    strip_nulls(&mut v);
    let mut h = Md5::new();
    h.update(format!("shopsync-item-v{HASH_VERSION}\n"));
    h.update(v.to_string());
    hex::encode(h.finalize())
}

/// A normalized item.
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
    /// MD5 of the canonical form ([`HASH_VERSION`]), as lowercase hex.
    pub fn md5(&self) -> String {
        canonical_md5(self)
    }

    /// MD5 of the listing fields alone (the item without its SKU details): when it is
    /// unchanged, the SKU details need no `alibaba.item.sku.get`.
    pub fn listing_md5(&self) -> String {
        if self.skus.is_empty() {
            return canonical_md5(self);
        }
        let mut listing = self.clone();
        listing.skus.clear();
        canonical_md5(&listing)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> Item {
        Item {
            item_id: "601234567890".into(),
            title: "保温杯, 500ml".into(),
            cid: "1031910".into(),
            wholesale_prices: vec![Tier {
                min_qty: 2,
                max_qty: None,
                price: "12.50".parse().expect("decimal"),
            }],
            price_source: PriceSource::WholesalePrice,
            moq: Some(2),
            sales: None,
            stock: Some(8800),
            status: "online".into(),
            modified_ms: 1_700_000_000_000,
            sku_ids: vec!["1".into()],
            skus: vec![Sku { sku_id: "1".into(), spec: "颜色:红".into(), price: None, stock: Some(3) }],
            pic_url: String::new(),
            detail_url: String::new(),
        }
    }

    /// The hash is taken over sorted keys without nulls: neither the struct's field order
    /// nor a new optional field that is absent may turn every stored item into an update.
    #[test]
    fn the_hash_depends_on_content_not_on_field_order_or_absent_fields() {
        /// `Item` as a later version might declare it: fields in another order, one more.
        #[derive(Serialize)]
        struct Reordered {
            detail_url: String,
            pic_url: String,
            skus: Vec<Sku>,
            sku_ids: Vec<String>,
            a_new_optional_field: Option<u64>,
            modified_ms: i64,
            status: String,
            stock: Option<i64>,
            sales: Option<i64>,
            moq: Option<u64>,
            price_source: PriceSource,
            wholesale_prices: Vec<Tier>,
            cid: String,
            title: String,
            item_id: String,
        }
        let it = item();
        let r = Reordered {
            detail_url: it.detail_url.clone(),
            pic_url: it.pic_url.clone(),
            skus: it.skus.clone(),
            sku_ids: it.sku_ids.clone(),
            a_new_optional_field: None,
            modified_ms: it.modified_ms,
            status: it.status.clone(),
            stock: it.stock,
            sales: it.sales,
            moq: it.moq,
            price_source: it.price_source,
            wholesale_prices: it.wholesale_prices.clone(),
            cid: it.cid.clone(),
            title: it.title.clone(),
            item_id: it.item_id.clone(),
        };
        assert_eq!(canonical_md5(&r), it.md5());
        let mut other = it.clone();
        other.stock = Some(8799);
        assert_ne!(other.md5(), it.md5());
        // Pinned: a change of this value is a change of the canonical form, which needs a
        // new HASH_VERSION (stored hashes of the old version are then recomputed).
        assert_eq!(it.md5(), "2a85d0350509e872fdfaa718a76fb5ee");
    }

    #[test]
    fn the_listing_hash_ignores_sku_details() {
        let it = item();
        let mut bare = it.clone();
        bare.skus.clear();
        assert_eq!(it.listing_md5(), bare.md5());
        assert_ne!(it.md5(), bare.md5());
    }
}
