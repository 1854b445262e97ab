//! param2 product answers into the seed model (`RawItem`, `RawSku`, `ListPage`) that the sync
//! engine and its normalizer already read, so that nothing after the client knows which
//! protocol spoke.
//!
//! Field names come from the generated parameter classes of `alibaba.product.list.get` /
//! `alibaba.product.get` (`productID`, `categoryID`, `saleInfo.{priceRanges,
//! minOrderQuantity, amountOnSale}`, `skuInfos[].{skuId, specId, price, amountOnSale,
//! attributes[]}`, `image.images`, `modifyTime`, `lastUpdateTime`), the models of
//! `wzhsh90/go1688` (`models/product/{product,sku}.go`: `attributeName`, `attributeValue`) and
//! the platform's doc pages for the cross-border APIs (`offerId`, `priceInfo`, `modifyDate`,
//! `productSkuInfos[].skuAttributes[].{attributeName, value}`, `productSaleInfo.priceRangeList`).
//!
//! As in `parse_list_page`, each offer is read on its own: one that cannot be read becomes a
//! [`BadItem`] with whatever id and time could be read, and the rest of the page stands.

use super::read::{at, first, id, int, price, text};
use super::{tiers, time};
use crate::api::{ApiError, BadItem, ListPage, RawItem, RawSku};
use serde_json::Value;

/// Relative image paths (`img/ibank/…`) hang off this host (`wzhsh90/go1688`,
/// `consts/sys.go`, `IMG_BASE`).
const IMG_BASE: &str = "https://cbu01.alicdn.com/";

/// One page of `alibaba.product.list.get`: `result.pageResult.{totalRecords, resultList[]}`.
pub fn parse_product_list(v: &Value) -> Result<ListPage, ApiError> {
    const M: &str = "alibaba.product.list.get";
    let page = first(v, &["result/pageResult", "pageResult"])
        .ok_or_else(|| ApiError::Malformed(format!("{M}: no result.pageResult")))?;
    let total = total(page, "totalRecords").map_err(|e| ApiError::Malformed(format!("{M}: {e}")))?;
    let list = list(page, "resultList").map_err(|e| ApiError::Malformed(format!("{M}: {e}")))?;
    Ok(page_of(total, list, product))
}

/// One page of `product.search.querySellerOfferList`: `result.result.{totalRecords, data[]}`.
pub fn parse_seller_offers(v: &Value) -> Result<ListPage, ApiError> {
    const M: &str = "product.search.querySellerOfferList";
    let page = first(v, &["result/result", "result"])
        .ok_or_else(|| ApiError::Malformed(format!("{M}: no result.result")))?;
    let total = total(page, "totalRecords").map_err(|e| ApiError::Malformed(format!("{M}: {e}")))?;
    let list = list(page, "data").map_err(|e| ApiError::Malformed(format!("{M}: {e}")))?;
    Ok(page_of(total, list, offer))
}

/// One offer in full, from `product.search.queryProductDetail` (`result.result`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferDetail {
    pub item: RawItem,
    /// The seller's masked id, the only way to learn a shop's `sellerOpenId` for
    /// `querySellerOfferList`.
    pub seller_open_id: Option<String>,
}

/// `Ok(None)` when the answer holds no offer (the API says "success" with an empty result).
pub fn parse_offer_detail(v: &Value) -> Result<Option<OfferDetail>, ApiError> {
    const M: &str = "product.search.queryProductDetail";
    let Some(d) = first(v, &["result/result"]).filter(|d| d.as_object().is_some_and(|o| !o.is_empty()))
    else {
        return Ok(None);
    };
    let item = detail(d).map_err(|e| ApiError::Malformed(format!("{M}: {e}")))?;
    Ok(Some(OfferDetail { item, seller_open_id: id(d.get("sellerOpenId")) }))
}

fn total(page: &Value, key: &str) -> Result<u64, String> {
    match int(page.get(key), key)? {
        Some(n) => u64::try_from(n).map_err(|_| format!("{key} {n} is negative")),
        None => Err(format!("no {key}")),
    }
}

fn list<'a>(page: &'a Value, key: &str) -> Result<&'a [Value], String> {
    match page.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(l)) => Ok(l),
        Some(other) => Err(format!("{key}: expected a list, got {other}")),
    }
}

fn page_of(total_results: u64, list: &[Value], read: fn(&Value) -> Result<RawItem, String>) -> ListPage {
    let mut items = Vec::with_capacity(list.len());
    let mut bad = Vec::new();
    for v in list {
        match read(v) {
            Ok(item) => items.push(item),
            Err(error) => bad.push(BadItem {
                item_id: id(first(v, &["productID", "offerId", "productId"])),
                modified_ms: modified(v).ok().flatten(),
                error,
            }),
        }
    }
    ListPage { total_results, items, bad }
}

/// `modifyTime` (what `startModifyTime`/`endModifyTime` filter on), else `lastUpdateTime`,
/// else the cross-border `modifyDate`.
fn modified(v: &Value) -> Result<Option<i64>, String> {
    time::parse_value(first(v, &["modifyTime", "lastUpdateTime", "modifyDate"]))
}

/// `published` is the platform's "on sale", the seed model's `online`; every other status
/// (`expired`, `member expired`, `deleted`, `TBD`, `auditing`, …) passes through, and the
/// engine treats anything but `online` as gone from the shop.
fn status(v: Option<&Value>) -> Option<String> {
    text(v).map(|s| if s.trim() == "published" { "online".to_string() } else { s.trim().to_string() })
}

fn image_url(s: &str) -> String {
    let s = s.trim();
    if s.starts_with("http://") || s.starts_with("https://") || s.is_empty() {
        s.to_string()
    } else {
        format!("{IMG_BASE}{}", s.trim_start_matches('/'))
    }
}

fn images(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(l)) => {
            l.iter().filter_map(Value::as_str).map(image_url).filter(|s| !s.is_empty()).collect()
        }
        _ => Vec::new(),
    }
}

fn detail_url(item_id: &str) -> String {
    format!("https://detail.1688.com/offer/{item_id}.html")
}

/// The SKUs of an offer and the ids in the seed's `skuIds` form.
fn skus(v: Option<&Value>, item_id: &str) -> Result<(Vec<RawSku>, String), String> {
    let list = match v {
        None | Some(Value::Null) => return Ok((Vec::new(), String::new())),
        Some(Value::Array(l)) => l,
        Some(other) => return Err(format!("skuInfos: expected a list, got {other}")),
    };
    let mut out = Vec::with_capacity(list.len());
    for s in list {
        // Offers without variants still list one entry on some APIs, keyed by `specId` only.
        let sku_id = id(s.get("skuId"))
            .or_else(|| id(s.get("specId")))
            .ok_or_else(|| "skuInfos: an entry without skuId or specId".to_string())?;
        let attrs = match first(s, &["attributes", "skuAttributes"]) {
            Some(Value::Array(a)) => a.as_slice(),
            _ => &[],
        };
        let spec: Vec<String> = attrs
            .iter()
            .filter_map(|a| {
                let name = text(first(a, &["attributeName", "attributeDisplayName"]))?;
                let value = text(first(a, &["attributeValue", "value"]))?;
                Some(format!("{}:{}", name.trim(), value.trim()))
            })
            .collect();
        // An unreadable SKU price is kept as text: the normalizer logs it and stores the SKU
        // without a price, as it does for the seed gateway.
        let price = text(s.get("price")).map(|p| p.trim().to_string()).filter(|p| !p.is_empty());
        out.push(RawSku {
            sku_id,
            item_id: Some(item_id.to_string()),
            spec: spec.join(";"),
            price,
            stock: int(s.get("amountOnSale"), "skuInfos.amountOnSale")?,
        });
    }
    let ids = out.iter().map(|s| s.sku_id.as_str()).collect::<Vec<_>>().join(",");
    Ok((out, ids))
}

/// An entry of `alibaba.product.list.get` (the same model as `alibaba.product.get`'s
/// `productInfo`).
pub fn product(v: &Value) -> Result<RawItem, String> {
    let item_id = id(v.get("productID")).ok_or("no productID")?;
    let (skus, sku_ids) = skus(v.get("skuInfos"), &item_id)?;
    let images = images(at(v, "image/images"));
    Ok(RawItem {
        title: text(v.get("subject")),
        cid: id(v.get("categoryID")),
        wholesale_price: tiers::from_ranges(at(v, "saleInfo/priceRanges"), "saleInfo.priceRanges")?,
        channel_price: None,
        moq: int(at(v, "saleInfo/minOrderQuantity"), "saleInfo.minOrderQuantity")?,
        sales: None,
        stock: int(at(v, "saleInfo/amountOnSale"), "saleInfo.amountOnSale")?,
        sku_ids: Some(sku_ids),
        modified_time: modified(v)?,
        status: status(v.get("status")),
        pic_url: images.first().cloned(),
        detail_url: Some(detail_url(&item_id)),
        skus: Some(skus),
        images: Some(images),
        item_id,
    })
}

/// An entry of `querySellerOfferList`: no SKUs, no stock, one price.
pub fn offer(v: &Value) -> Result<RawItem, String> {
    let item_id = id(v.get("offerId")).ok_or("no offerId")?;
    Ok(RawItem {
        title: text(v.get("subject")),
        cid: id(v.get("categoryId")),
        // A single price is the seed model's "one open tier from the MOQ".
        wholesale_price: price(at(v, "priceInfo/price"), "priceInfo.price")?,
        modified_time: modified(v)?,
        status: status(v.get("status")),
        pic_url: text(v.get("imageUrl")).map(|s| image_url(&s)).filter(|s| !s.is_empty()),
        detail_url: Some(detail_url(&item_id)),
        item_id,
        ..Default::default()
    })
}

/// The offer of `queryProductDetail`.
pub fn detail(v: &Value) -> Result<RawItem, String> {
    let item_id = id(v.get("offerId")).ok_or("no offerId")?;
    let (skus, sku_ids) = skus(v.get("productSkuInfos"), &item_id)?;
    let images = images(at(v, "productImage/images"));
    Ok(RawItem {
        title: text(v.get("subject")),
        cid: id(v.get("categoryId")),
        wholesale_price: tiers::from_ranges(
            at(v, "productSaleInfo/priceRangeList"),
            "productSaleInfo.priceRangeList",
        )?,
        channel_price: None,
        moq: int(v.get("minOrderQuantity"), "minOrderQuantity")?,
        sales: int(v.get("soldOut"), "soldOut")?,
        stock: int(at(v, "productSaleInfo/amountOnSale"), "productSaleInfo.amountOnSale")?,
        sku_ids: Some(sku_ids),
        modified_time: modified(v)?,
        status: status(v.get("status")),
        pic_url: images.first().cloned(),
        detail_url: Some(detail_url(&item_id)),
        skus: Some(skus),
        images: Some(images),
        item_id,
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures as fx;
    use super::*;
    use serde_json::json;

    fn parsed(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn product_list_golden() {
        let page = parse_product_list(&parsed(fx::PRODUCT_LIST_PAGE)).unwrap();
        assert_eq!(page.total_results, 2);
        assert!(page.bad.is_empty(), "{:?}", page.bad);
        assert_eq!(page.items.len(), 1);
        let i = &page.items[0];
        assert_eq!(i.item_id, "PRODUCT-REAL");
        assert_eq!(i.title.as_deref(), Some("测试商品"));
        assert_eq!(i.status.as_deref(), Some("online"));
        // 2026-09-02 12:00:00 +08:00 = 2026-09-02 04:00:00 UTC = 1788321600 s.
        assert_eq!(i.modified_time, Some(1_788_321_600_000));
        assert_eq!(i.wholesale_price.as_deref(), Some("2-:11.00"));
        assert_eq!(i.sku_ids.as_deref(), Some("SKU-REAL"));
        assert_eq!(
            i.skus.as_deref(),
            Some(
                &[RawSku {
                    sku_id: "SKU-REAL".into(),
                    item_id: Some("PRODUCT-REAL".into()),
                    spec: String::new(),
                    price: Some("12.50".into()),
                    stock: None,
                }][..]
            )
        );
        assert_eq!(i.detail_url.as_deref(), Some("https://detail.1688.com/offer/PRODUCT-REAL.html"));
    }

    #[test]
    fn product_info_golden() {
        let i = product(&parsed(fx::PRODUCT_INFO)).unwrap();
        assert_eq!(i.item_id, "PRODUCT-DETAIL");
        assert_eq!(i.stock, Some(8));
        assert_eq!(i.wholesale_price.as_deref(), Some("2-:88.00"));
        // 2026-09-03 12:10:00 +08:00 = 04:10:00 UTC = 1788408600 s.
        assert_eq!(i.modified_time, Some(1_788_408_600_000));
        let skus = i.skus.unwrap();
        assert_eq!(
            (skus[0].sku_id.as_str(), skus[0].stock, skus[0].price.as_deref()),
            ("SKU-DETAIL", Some(8), None)
        );
    }

    #[test]
    fn seller_offers_golden() {
        let page = parse_seller_offers(&parsed(fx::SELLER_OFFERS_PAGE)).unwrap();
        assert_eq!(page.total_results, 123);
        assert!(page.bad.is_empty(), "{:?}", page.bad);
        let i = &page.items[0];
        assert_eq!(i.item_id, "2");
        assert_eq!(i.title.as_deref(), Some("中文标题"));
        assert_eq!(i.wholesale_price.as_deref(), Some("10"));
        // 2021-04-08 08:00:00 Shanghai = 00:00:00 UTC = 1617840000 s.
        assert_eq!(i.modified_time, Some(1_617_840_000_000));
        assert_eq!(i.status, None, "the list holds offers on sale; the normalizer reads None as online");
        assert!(i.skus.is_none() && i.sku_ids.is_none());
    }

    #[test]
    fn offer_detail_golden() {
        let d = parse_offer_detail(&parsed(fx::OFFER_DETAIL)).unwrap().unwrap();
        assert_eq!(d.seller_open_id.as_deref(), Some("23tsdvcdsjngp3oj4j3i5"));
        let i = d.item;
        assert_eq!(i.item_id, "34513534353434");
        assert_eq!(i.cid.as_deref(), Some("32"));
        assert_eq!(i.moq, Some(1));
        assert_eq!(i.stock, Some(99999));
        assert_eq!(i.sales, Some(12342));
        assert_eq!(i.status.as_deref(), Some("online"));
        assert_eq!(i.wholesale_price.as_deref(), Some("10-:10"));
        assert_eq!(i.modified_time, None, "the detail has createDate only");
        assert_eq!(i.sku_ids.as_deref(), Some("123"));
        assert_eq!(
            i.skus.unwrap(),
            vec![RawSku {
                sku_id: "123".into(),
                item_id: Some("34513534353434".into()),
                spec: "1:1".into(),
                // The doc's placeholder: kept as text, the normalizer drops it with a warning.
                price: Some("价格".into()),
                stock: Some(123),
            }]
        );
        assert_eq!(i.pic_url.as_deref(), Some("https://cbu01.alicdn.com/图片"));
        assert_eq!(parse_offer_detail(&json!({"result": {"success": true, "result": {}}})).unwrap(), None);
    }

    #[test]
    fn strings_for_numbers_and_numbers_for_strings() {
        let v = json!({"result": {"pageResult": {"totalRecords": "3", "resultList": [{
            "productID": 601234567890u64,
            "subject": "夏季纯棉T恤",
            "categoryID": "1031910",
            "status": "published",
            "modifyTime": "20231115061320000+0800",
            "image": {"images": ["img/ibank/2019/a.jpg"]},
            "saleInfo": {"minOrderQuantity": "2", "amountOnSale": 8800.0,
                         "priceRanges": [{"startQuantity": "1", "price": 12.5}, {"startQuantity": 100, "price": "11.80"}]},
            "skuInfos": [{"skuId": 4012345678901u64, "price": 12.5, "amountOnSale": "120",
                          "attributes": [{"attributeName": "颜色", "attributeValue": "红色"},
                                         {"attributeDisplayName": "尺码", "attributeValue": "XL"}]}]
        }]}}});
        let page = parse_product_list(&v).unwrap();
        assert_eq!(page.total_results, 3);
        let i = &page.items[0];
        assert_eq!(i.item_id, "601234567890");
        assert_eq!(i.cid.as_deref(), Some("1031910"));
        assert_eq!((i.moq, i.stock), (Some(2), Some(8800)));
        assert_eq!(i.wholesale_price.as_deref(), Some("1-99:12.5;100-:11.80"));
        assert_eq!(i.modified_time, Some(1_700_000_000_000));
        assert_eq!(i.pic_url.as_deref(), Some("https://cbu01.alicdn.com/img/ibank/2019/a.jpg"));
        let s = &i.skus.as_ref().unwrap()[0];
        assert_eq!(
            (s.sku_id.as_str(), s.spec.as_str(), s.price.as_deref(), s.stock),
            ("4012345678901", "颜色:红色;尺码:XL", Some("12.5"), Some(120))
        );
    }

    #[test]
    fn missing_fields_are_none_not_errors() {
        let v = json!({"result": {"pageResult": {"totalRecords": 1, "resultList": [{"productID": "7"}]}}});
        let page = parse_product_list(&v).unwrap();
        let i = &page.items[0];
        assert_eq!(i.item_id, "7");
        assert!(
            i.title.is_none() && i.wholesale_price.is_none() && i.moq.is_none() && i.modified_time.is_none()
        );
        assert_eq!(i.sku_ids.as_deref(), Some(""));
        // An empty page may have no resultList at all.
        let empty = json!({"result": {"pageResult": {"totalRecords": 0}}});
        assert!(parse_product_list(&empty).unwrap().items.is_empty());
        // But no count is not a page.
        assert_eq!(parse_product_list(&json!({"result": {}})).unwrap_err().kind(), "malformed");
        assert_eq!(
            parse_product_list(&json!({"result": {"pageResult": {"resultList": []}}})).unwrap_err().kind(),
            "malformed"
        );
    }

    #[test]
    fn one_bad_offer_does_not_cost_the_page() {
        let v = json!({"result": {"pageResult": {"totalRecords": 4, "resultList": [
            {"productID": "1", "modifyTime": "20231115061320000+0800"},
            {"productID": "2", "modifyTime": "20231115061320000+0800", "saleInfo": {"minOrderQuantity": "两件"}},
            {"subject": "no id", "modifyTime": "20231115061320000+0800"},
            {"productID": "4", "modifyTime": "昨天"},
            {"productID": "5", "saleInfo": {"priceRanges": [{"startQuantity": 1, "price": "abc"}]}}
        ]}}});
        let page = parse_product_list(&v).unwrap();
        assert_eq!(page.items.iter().map(|i| i.item_id.as_str()).collect::<Vec<_>>(), vec!["1"]);
        assert_eq!(page.bad.len(), 4);
        assert_eq!(page.bad[0].item_id.as_deref(), Some("2"));
        assert_eq!(page.bad[0].modified_ms, Some(1_700_000_000_000), "the watermark can stay behind it");
        assert!(page.bad[0].error.contains("minOrderQuantity"), "{}", page.bad[0].error);
        assert_eq!(page.bad[1].item_id, None);
        assert_eq!((page.bad[2].item_id.as_deref(), page.bad[2].modified_ms), (Some("4"), None));
        assert!(page.bad[3].error.contains("price"), "{}", page.bad[3].error);
        // The same for the cross-border list.
        let v = json!({"result": {"result": {"totalRecords": 2, "data": [
            {"offerId": 1, "priceInfo": {"price": "x"}}, {"offerId": 2, "modifyDate": "2021-04-08 08:00:00"}
        ]}}});
        let page = parse_seller_offers(&v).unwrap();
        assert_eq!((page.items.len(), page.bad.len()), (1, 1));
        assert_eq!(page.bad[0].item_id.as_deref(), Some("1"));
    }

    #[test]
    fn status_other_than_published_passes_through() {
        let i = product(&json!({"productID": "1", "status": "member expired"})).unwrap();
        assert_eq!(i.status.as_deref(), Some("member expired"));
    }
}
