//! The platform's data as it arrives, parsed tolerantly: absent keys are `None`, an empty page
//! is an empty list, ids may come as strings or numbers. Prices stay decimal strings until
//! they are parsed into [`Decimal`], never floats.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use std::str::FromStr;
use thiserror::Error;

/// Ids and millisecond times arrive as strings or numbers depending on the method.
fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        S(String),
        N(u64),
    }
    Ok(match Either::deserialize(d)? {
        Either::S(s) => s,
        Either::N(n) => n.to_string(),
    })
}

fn opt_id_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        S(String),
        N(u64),
    }
    Ok(Option::<Either>::deserialize(d)?.map(|e| match e {
        Either::S(s) => s,
        Either::N(n) => n.to_string(),
    }))
}

fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        S(String),
        N(i64),
    }
    match Option::<Either>::deserialize(d)? {
        None => Ok(None),
        Some(Either::N(n)) => Ok(Some(n)),
        Some(Either::S(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a whole number"))),
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct ShopInfo {
    #[serde(deserialize_with = "id_string")]
    pub member_id: String,
    #[serde(default)]
    pub shop_name: String,
    #[serde(default)]
    pub shop_url: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Category {
    #[serde(deserialize_with = "id_string")]
    pub cid: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "opt_id_string")]
    pub parent_cid: Option<String>,
}

/// One SKU, from `alibaba.item.sku.get` or inline in `alibaba.item.get`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct RawSku {
    #[serde(deserialize_with = "id_string")]
    pub sku_id: String,
    #[serde(default, deserialize_with = "opt_id_string")]
    pub item_id: Option<String>,
    #[serde(default)]
    pub spec: String,
    #[serde(default)]
    pub price: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    pub stock: Option<i64>,
}

/// One item as the list call (or `alibaba.item.get`) returns it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct RawItem {
    #[serde(deserialize_with = "id_string")]
    pub item_id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "opt_id_string")]
    pub cid: Option<String>,
    #[serde(default, rename = "wholesalePrice")]
    pub wholesale_price: Option<String>,
    #[serde(default, rename = "channelPrice")]
    pub channel_price: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    pub moq: Option<i64>,
    #[serde(default, deserialize_with = "opt_i64")]
    pub sales: Option<i64>,
    #[serde(default, deserialize_with = "opt_i64")]
    pub stock: Option<i64>,
    #[serde(default, rename = "skuIds")]
    pub sku_ids: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    pub modified_time: Option<i64>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub pic_url: Option<String>,
    #[serde(default)]
    pub detail_url: Option<String>,
    /// Only from `alibaba.item.get`.
    #[serde(default)]
    pub skus: Option<Vec<RawSku>>,
    #[serde(default)]
    pub images: Option<Vec<String>>,
}

impl RawItem {
    /// The SKU ids in `skuIds` (`""` for items without variants).
    pub fn sku_id_list(&self) -> Vec<String> {
        self.sku_ids
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// One page of `alibaba.seller.items.list.get`.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// How many items match the whole query (not this page).
    pub total_results: u64,
    pub items: Vec<RawItem>,
    /// Items of the page that could not be read (a string where a number belongs that is no
    /// number, a tier nobody can parse…), in page order among themselves. One bad item must
    /// not cost the page: the engine commits the rest and quarantines these.
    pub bad: Vec<BadItem>,
}

/// An item the parser rejected, with what could still be read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadItem {
    /// The id, when one could be read (a number is still an id).
    pub item_id: Option<String>,
    /// Its `modified_time`, when readable: the watermark must stay behind it.
    pub modified_ms: Option<i64>,
    /// What the parser said, for the log and `status`.
    pub error: String,
}

impl BadItem {
    /// Reads what it can of an item the parser rejected.
    pub fn from_value(v: &serde_json::Value, error: String) -> BadItem {
        let num = |k: &str| {
            v.get(k).and_then(|x| x.as_i64().or_else(|| x.as_str().and_then(|s| s.trim().parse().ok())))
        };
        let item_id = v.get("item_id").and_then(|x| match x {
            serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        BadItem { item_id, modified_ms: num("modified_time"), error }
    }
}

/// A wholesale price tier: `min_qty` pieces up to `max_qty` (open-ended when `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub min_qty: u64,
    pub max_qty: Option<u64>,
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PriceError {
    #[error("price {0:?} is not a decimal number")]
    Price(String),
    #[error("tier {0:?} is not of the form MIN-MAX:PRICE or MIN-:PRICE")]
    Tier(String),
    #[error("tier {0:?} has a maximum below its minimum")]
    Range(String),
}

/// A price string (`"12.50"`), as a decimal; negative prices are garbage.
pub fn parse_price(s: &str) -> Result<Decimal, PriceError> {
    let d = Decimal::from_str(s.trim()).map_err(|_| PriceError::Price(s.to_string()))?;
    if d.is_sign_negative() {
        return Err(PriceError::Price(s.to_string()));
    }
    Ok(d)
}

/// Parses `wholesalePrice`: tiers `1-99:12.50;100-499:11.80;500-:10.90`, a single price
/// `12.50` (one open tier from `moq`), or `""` (no tiers: `channelPrice` holds the price).
pub fn parse_wholesale(s: &str, moq: u64) -> Result<Vec<Tier>, PriceError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Vec::new());
    }
    if !s.contains([':', ';', '-']) {
        return Ok(vec![Tier { min_qty: moq.max(1), max_qty: None, price: parse_price(s)? }]);
    }
    let mut tiers = Vec::new();
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || PriceError::Tier(part.to_string());
        let (range, price) = part.split_once(':').ok_or_else(bad)?;
        let (min, max) = range.split_once('-').ok_or_else(bad)?;
        let min_qty: u64 = min.trim().parse().map_err(|_| bad())?;
        let max_qty = match max.trim() {
            "" => None,
            m => Some(m.parse::<u64>().map_err(|_| bad())?),
        };
        if max_qty.is_some_and(|m| m < min_qty) {
            return Err(PriceError::Range(part.to_string()));
        }
        tiers.push(Tier { min_qty, max_qty, price: parse_price(price)? });
    }
    Ok(tiers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn tiers_parse_with_open_last_tier() {
        let t = parse_wholesale("1-99:12.50;100-499:11.80;500-:10.90", 1).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[0], Tier { min_qty: 1, max_qty: Some(99), price: d("12.50") });
        assert_eq!(t[2], Tier { min_qty: 500, max_qty: None, price: d("10.90") });
        assert_eq!(t[1].price.to_string(), "11.80", "two decimal places survive");
    }

    #[test]
    fn single_price_and_empty() {
        assert_eq!(
            parse_wholesale("12.50", 3).unwrap(),
            vec![Tier { min_qty: 3, max_qty: None, price: d("12.50") }]
        );
        assert!(parse_wholesale("", 1).unwrap().is_empty());
    }

    #[test]
    fn garbage_is_a_clear_error() {
        assert_eq!(parse_wholesale("1-99:abc", 1), Err(PriceError::Price("abc".into())));
        assert_eq!(parse_wholesale("1-99=12", 1), Err(PriceError::Tier("1-99=12".into())));
        assert_eq!(parse_wholesale("99-1:12", 1), Err(PriceError::Range("99-1:12".into())));
        assert!(parse_wholesale("-5", 1).is_err());
        assert!(parse_wholesale("x-:1", 1).is_err());
    }

    #[test]
    fn items_parse_with_absent_keys_and_numeric_ids() {
        let i: RawItem =
            serde_json::from_str(r#"{"item_id": 601234567890, "modified_time": "1700000000000"}"#).unwrap();
        assert_eq!(i.item_id, "601234567890");
        assert_eq!(i.modified_time, Some(1_700_000_000_000));
        assert!(i.wholesale_price.is_none() && i.sku_id_list().is_empty());
    }
}
