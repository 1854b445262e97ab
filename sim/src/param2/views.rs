//! The catalogue's items as the production platform shows them: `productInfo` in
//! `alibaba.product.list.get`, an offer in `querySellerOfferList`, an offer's detail in
//! `queryProductDetail`.
//!
//! Wholesale tiers become `startQuantity` thresholds: a tier runs from its threshold up to
//! the next one minus one, so `1-99:12.50;100-:11.80` is `[{1, "12.50"}, {100, "11.80"}]`.
//! An item whose seed form has no wholesale price (`wholesalePrice` `""`) is quoted per SKU
//! (`quoteType` 1) with no ranges; without SKUs it keeps one range at its channel price.
//! The garbled and wrong-typed items of the seed face are garbled and wrong-typed here too.

use super::dates::{compact, plain};
use super::ids::{seller_open_id, spec_id};
use crate::catalogue::{money, sku_id, Garble, Item, PriceForm, Sku, COLORS, SIZES};
use serde_json::{json, Value};

/// `quoteType`: 0 prices by quantity range (FIXED_PRICE), 1 prices per SKU (SKU_PRICE).
pub fn quote_type(item: &Item) -> u8 {
    match item.form {
        PriceForm::Empty => 1,
        PriceForm::Tiered | PriceForm::Single => 0,
    }
}

/// The `(startQuantity, price)` thresholds of an item, prices as decimal strings.
pub fn price_ranges(item: &Item) -> Vec<(u32, String)> {
    match item.form {
        PriceForm::Tiered | PriceForm::Single => {
            let mut out: Vec<(u32, String)> = item.tiers.iter().map(|t| (t.min, money(t.cents))).collect();
            if out.is_empty() {
                out.push((item.moq, money(item.channel_cents)));
            }
            if item.garble == Some(Garble::Tiers) {
                out[0].1 = "十二元".to_string();
            }
            out
        }
        PriceForm::Empty if item.skus.is_empty() => vec![(item.moq, money(item.channel_cents))],
        PriceForm::Empty => Vec::new(),
    }
}

/// The price an offer is listed at: its first threshold, or its cheapest SKU.
fn display_price(item: &Item) -> String {
    match price_ranges(item).into_iter().next() {
        Some((_, price)) => price,
        None => money(item.skus.iter().map(|s| s.cents).min().unwrap_or(item.channel_cents)),
    }
}

pub fn status(item: &Item) -> &'static str {
    if item.online {
        "published"
    } else {
        "expired"
    }
}

/// A number as the platform sends it; a string for the wrong-typed share of items.
fn num(n: u64, wrong: bool) -> Value {
    if wrong {
        Value::String(n.to_string())
    } else {
        Value::from(n)
    }
}

/// The modified time in the compact form, or the garbled text.
fn modified_compact(item: &Item) -> Value {
    match item.garble {
        Some(Garble::ModifiedTime) => Value::String("昨天 14:03".into()),
        _ => Value::String(compact(item.modified_ms)),
    }
}

fn moq(item: &Item, wrong: bool) -> Value {
    match item.garble {
        Some(Garble::Moq) => Value::String("两件".into()),
        _ => num(u64::from(item.moq), wrong),
    }
}

fn ranges_json(item: &Item, wrong: bool) -> Vec<Value> {
    price_ranges(item)
        .into_iter()
        .map(|(q, price)| json!({"startQuantity": num(u64::from(q), wrong), "price": price}))
        .collect()
}

fn sku_attributes(sku: &Sku) -> [(&'static str, &'static str); 2] {
    [("颜色", COLORS[sku.color as usize % COLORS.len()]), ("尺码", SIZES[sku.size as usize % SIZES.len()])]
}

/// One `productInfo` of `alibaba.product.list.get`; `skuInfos` only with `needDetail`.
pub fn product_info(item: &Item, need_detail: bool, wrong: bool) -> Value {
    let mut v = json!({
        "productID": if wrong { Value::String(item.item_id.to_string()) } else { Value::from(item.item_id) },
        "subject": &*item.title,
        "status": status(item),
        "categoryID": item.cid,
        "saleInfo": {
            "priceRanges": ranges_json(item, wrong),
            "minOrderQuantity": moq(item, wrong),
            "amountOnSale": num(u64::from(item.stock), wrong),
            "quoteType": quote_type(item),
        },
        "lastUpdateTime": modified_compact(item),
        "modifyDate": modified_compact(item),
    });
    if need_detail {
        let skus: Vec<Value> = item
            .skus
            .iter()
            .map(|s| {
                let id = sku_id(item.item_id, s.index as usize);
                let attrs: Vec<Value> = sku_attributes(s)
                    .iter()
                    .map(|(n, val)| json!({"attributeName": n, "attributeValue": val}))
                    .collect();
                json!({"skuId": id, "specId": spec_id(id), "price": money(s.cents),
                       "amountOnSale": num(u64::from(s.stock), wrong), "attributes": attrs})
            })
            .collect();
        v["skuInfos"] = Value::Array(skus);
    }
    v
}

/// When an offer was created: the catalogue does not track it, so it is derived from the id
/// (stable) and never after the last modification.
fn created_ms(item: &Item) -> i64 {
    const FROM: i64 = 1_609_430_400_000; // 2021-01-01 00:00 Shanghai
    let spread = (crate::state::splitmix(item.item_id) % (2 * 365 * 86_400)) as i64 * 1000;
    (FROM + spread).min(item.modified_ms)
}

/// One offer of `querySellerOfferList`.
pub fn offer_summary(item: &Item, wrong: bool) -> Value {
    let modify = match item.garble {
        Some(Garble::ModifiedTime) => "昨天 14:03".to_string(),
        _ => plain(item.modified_ms),
    };
    json!({
        "offerId": if wrong { Value::String(item.item_id.to_string()) } else { Value::from(item.item_id) },
        "subject": &*item.title,
        "imageUrl": format!("https://cbu01.alicdn.com/img/ibank/O1CN{}.jpg", item.item_id),
        "priceInfo": {"price": display_price(item), "consignPrice": money(item.channel_cents)},
        "createDate": plain(created_ms(item)),
        "modifyDate": modify,
        "monthSold": num(u64::from(item.sales), wrong),
    })
}

/// An offer's detail, `queryProductDetail`'s `result.result`.
pub fn offer_detail(item: &Item, member_id: &str, wrong: bool) -> Value {
    let skus: Vec<Value> = item
        .skus
        .iter()
        .map(|s| {
            let id = sku_id(item.item_id, s.index as usize);
            let attrs: Vec<Value> =
                sku_attributes(s).iter().map(|(n, val)| json!({"attributeName": n, "value": val})).collect();
            json!({"skuId": id, "specId": spec_id(id), "price": money(s.cents),
                   "consignPrice": money(s.cents + s.cents / 10),
                   "amountOnSale": num(u64::from(s.stock), wrong), "skuAttributes": attrs})
        })
        .collect();
    let ranges: Vec<Value> = ranges_json(item, wrong);
    json!({
        "offerId": if wrong { Value::String(item.item_id.to_string()) } else { Value::from(item.item_id) },
        "subject": &*item.title,
        "status": status(item),
        "sellerOpenId": seller_open_id(member_id),
        "categoryId": item.cid,
        "minOrderQuantity": moq(item, wrong),
        "monthSold": num(u64::from(item.sales), wrong),
        "productImage": {"images": [
            format!("https://cbu01.alicdn.com/img/ibank/O1CN{}_1.jpg", item.item_id),
            format!("https://cbu01.alicdn.com/img/ibank/O1CN{}_2.jpg", item.item_id),
        ]},
        "productSkuInfos": skus,
        "productSaleInfo": {
            "priceRangeList": ranges,
            "quoteType": quote_type(item),
            "amountOnSale": num(u64::from(item.stock), wrong),
            "consignPrice": money(item.channel_cents),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Tier;

    fn item(form: PriceForm, tiers: Vec<Tier>, skus: usize) -> Item {
        Item {
            item_id: 600_000_000_123,
            title: "夏季纯棉T恤 批发".into(),
            cid: 1_031_910,
            form,
            tiers,
            channel_cents: 1300,
            moq: 2,
            sales: 1530,
            stock: 8800,
            skus: (0..skus)
                .map(|i| Sku { index: i as u8, color: i as u8, size: 1, cents: 1250 + i as u32, stock: 120 })
                .collect(),
            modified_ms: 1_700_000_000_000,
            online: true,
            garble: None,
        }
    }

    fn tiers() -> Vec<Tier> {
        vec![
            Tier { min: 2, max: Some(99), cents: 1250 },
            Tier { min: 100, max: Some(499), cents: 1180 },
            Tier { min: 500, max: None, cents: 1090 },
        ]
    }

    #[test]
    fn tiers_become_start_quantity_thresholds() {
        let it = item(PriceForm::Tiered, tiers(), 0);
        assert_eq!(
            price_ranges(&it),
            vec![(2, "12.50".into()), (100, "11.80".into()), (500, "10.90".into())]
        );
        // Each threshold is where the previous tier's range ended, plus one.
        let t = tiers();
        for w in t.windows(2) {
            assert_eq!(w[0].max.map(|m| m + 1), Some(w[1].min));
        }
        let v = product_info(&it, false, false);
        assert_eq!(v["saleInfo"]["priceRanges"][1], json!({"startQuantity": 100, "price": "11.80"}));
        assert_eq!(v["saleInfo"]["quoteType"], 0);
        assert_eq!(v["lastUpdateTime"], "20231115061320000+0800");
        assert!(v.get("skuInfos").is_none(), "SKUs only with needDetail");
    }

    #[test]
    fn single_and_empty_prices() {
        let single = item(PriceForm::Single, vec![Tier { min: 2, max: None, cents: 999 }], 0);
        assert_eq!(price_ranges(&single), vec![(2, "9.99".into())]);
        let per_sku = item(PriceForm::Empty, vec![], 3);
        assert_eq!(quote_type(&per_sku), 1);
        assert!(price_ranges(&per_sku).is_empty());
        assert_eq!(offer_summary(&per_sku, false)["priceInfo"]["price"], "12.50");
        let bare = item(PriceForm::Empty, vec![], 0);
        assert_eq!(price_ranges(&bare), vec![(2, "13.00".into())]);
    }

    #[test]
    fn detail_and_summary_shapes() {
        let it = item(PriceForm::Tiered, tiers(), 2);
        let d = offer_detail(&it, "6000000000000001", false);
        assert_eq!(d["offerId"], 600_000_000_123u64);
        assert_eq!(
            d["productSkuInfos"][1]["skuAttributes"][0],
            json!({"attributeName": "颜色", "value": "黑色"})
        );
        assert_eq!(d["productSaleInfo"]["priceRangeList"][0], json!({"startQuantity": 2, "price": "12.50"}));
        assert_eq!(d["sellerOpenId"], seller_open_id("6000000000000001"));
        let s = offer_summary(&it, true);
        assert_eq!(s["offerId"], "600000000123", "wrong-typed ids come as strings");
        assert_eq!(s["modifyDate"], "2023-11-15 06:13:20");
        assert!(s["createDate"].as_str().unwrap_or("") <= s["modifyDate"].as_str().unwrap_or(""));
        let p = product_info(&it, true, false);
        assert_eq!(
            p["skuInfos"][0]["attributes"][1],
            json!({"attributeName": "尺码", "attributeValue": "M"})
        );
    }
}
