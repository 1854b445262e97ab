//! What shopsync should hold, computed from the simulator's raw ground truth by a parser of
//! the suites' own, so a bug in shopsync's normalizer cannot sit on both sides of a
//! comparison. It reads the wire shapes the contract allows (ids and counts as numbers or
//! strings, tiers `MIN-MAX:PRICE;…`, a single price, or `""` with the price in
//! `channelPrice`) and nothing more.

use rust_decimal::Decimal;
use serde_json::Value;
use shopsync::api::Tier;
use shopsync::event::{Item, PriceSource, Sku};
use std::str::FromStr;

fn text(v: &Value, k: &str) -> Option<String> {
    match v.get(k)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn int(v: &Value, k: &str) -> Result<Option<i64>, String> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| format!("{k}: {n}")),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| format!("{k}: {s:?}")),
        Some(other) => Err(format!("{k}: {other}")),
    }
}

fn price(s: &str) -> Result<Decimal, String> {
    Decimal::from_str(s.trim()).map_err(|_| format!("price {s:?}"))
}

/// The normalized item shopsync should store for one raw truth item (with its SKUs), or why
/// the item cannot be read (shopsync must then quarantine it rather than store it).
pub fn expected_item(v: &Value) -> Result<Item, String> {
    let item_id = text(v, "item_id").ok_or("no item_id")?;
    let moq = int(v, "moq")?.map(|m| u64::try_from(m).map_err(|_| format!("moq {m}"))).transpose()?;
    let modified_ms = int(v, "modified_time")?.ok_or("no modified_time")?;
    let wholesale = text(v, "wholesalePrice").unwrap_or_default();
    let mut tiers = Vec::new();
    if !wholesale.trim().is_empty() {
        if wholesale.contains([':', ';', '-']) {
            for part in wholesale.split(';').filter(|p| !p.trim().is_empty()) {
                let (range, p) = part.split_once(':').ok_or(format!("tier {part:?}"))?;
                let (min, max) = range.split_once('-').ok_or(format!("tier {part:?}"))?;
                let min_qty = min.trim().parse().map_err(|_| format!("tier {part:?}"))?;
                let max_qty = match max.trim() {
                    "" => None,
                    m => Some(m.parse().map_err(|_| format!("tier {part:?}"))?),
                };
                tiers.push(Tier { min_qty, max_qty, price: price(p)? });
            }
        } else {
            tiers.push(Tier { min_qty: moq.unwrap_or(1).max(1), max_qty: None, price: price(&wholesale)? });
        }
    }
    let (wholesale_prices, price_source) = if !tiers.is_empty() {
        (tiers, PriceSource::WholesalePrice)
    } else {
        match text(v, "channelPrice").filter(|s| !s.trim().is_empty()) {
            Some(c) => (
                vec![Tier { min_qty: moq.unwrap_or(1).max(1), max_qty: None, price: price(&c)? }],
                PriceSource::ChannelPrice,
            ),
            None => (Vec::new(), PriceSource::None),
        }
    };
    let sku_ids: Vec<String> = text(v, "skuIds")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let mut skus = Vec::new();
    for s in v.get("skus").and_then(Value::as_array).into_iter().flatten() {
        skus.push(Sku {
            sku_id: text(s, "sku_id").ok_or("a SKU without sku_id")?,
            spec: text(s, "spec").unwrap_or_default(),
            price: text(s, "price").map(|p| price(&p)).transpose()?,
            stock: int(s, "stock")?,
        });
    }
    skus.sort_by(|a, b| a.sku_id.cmp(&b.sku_id));
    Ok(Item {
        item_id,
        title: text(v, "title").unwrap_or_default(),
        cid: text(v, "cid").unwrap_or_default(),
        wholesale_prices,
        price_source,
        moq,
        sales: int(v, "sales")?,
        stock: int(v, "stock")?,
        status: text(v, "status").unwrap_or_else(|| "online".into()),
        modified_ms,
        sku_ids,
        skus,
        pic_url: text(v, "pic_url").unwrap_or_default(),
        detail_url: text(v, "detail_url").unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_wire_shapes_and_refuses_garbage() {
        let v = json!({"item_id": 601, "moq": "3", "modified_time": "1700000000000", "wholesalePrice": "",
                       "channelPrice": "13.00", "skuIds": "2,1",
                       "skus": [{"sku_id": "2", "spec": "b", "price": "1.50", "stock": 4},
                                {"sku_id": 1, "spec": "a", "price": "1.00", "stock": "5"}]});
        let it = expected_item(&v).expect("readable");
        assert_eq!(it.item_id, "601");
        assert_eq!(it.price_source, PriceSource::ChannelPrice);
        assert_eq!(it.wholesale_prices[0].min_qty, 3);
        assert_eq!(it.skus.iter().map(|s| s.sku_id.as_str()).collect::<Vec<_>>(), ["1", "2"]);
        let bad = json!({"item_id": "602", "moq": "两件", "modified_time": 1});
        assert!(expected_item(&bad).is_err());
    }
}
