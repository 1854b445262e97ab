//! The typed calls of `api/methods.rs` as param2 requests, for a shop whose owner authorized
//! the app (the access token says which shop; the member id is not sent), and the two
//! cross-border calls for other sellers' shops.
//!
//! | typed call | param2 |
//! |---|---|
//! | `items_list` | `alibaba.product.list.get`, at most [`MAX_PAGE_SIZE`] a page |
//! | `items_count` | `totalRecords` of a one-row `alibaba.product.list.get` |
//! | `item_get` | `alibaba.product.list.get` with `productIds=[id]` |
//! | `sku_get` | no call: the SKUs the last listings delivered (`skus.rs`) |
//! | `seller_cats`, `shop_get`, `resolve` of a URL | none: [`ApiError::Unsupported`] |
//! | `seller_offers`, `offer_detail` | `querySellerOfferList`, `queryProductDetail` |

use super::products::{self, OfferDetail};
use super::{time, wire};
use crate::api::{ApiError, Client, ItemFilter, ListPage, RawItem, RawSku, SortType};
use serde_json::json;

/// `pageSize` above 20 is not refused: the platform silently answers 20 (the generated
/// parameter class: "目前最大值为20，超过20时以20为准"). A caller paging by 40 would then
/// skip every second 20 items, so the client refuses larger pages itself.
pub const MAX_PAGE_SIZE: u32 = 20;

fn p(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// Whether `startModifyTime` and `endModifyTime` both include their bound, as the
/// platform's Java services usually compare (`>= start`, `<= end`). No source states it; this
/// is the one place to change if production shows otherwise.
///
/// Why not ask for a wider range and cut the answer to the window instead: bulk imports put
/// thousands of items on one millisecond, so one extra millisecond at either edge can
/// multiply a window's `totalRecords` (the engine would split or give up on a window that is
/// not full), and a page made only of such edge items would come back empty after the cut,
/// which the engine reads as the end of the window.
const BOUNDS_INCLUSIVE: bool = true;

/// The business parameters of one `alibaba.product.list.get` page. The engine's window is
/// `start <= t < end`; with inclusive bounds that is `start ..= end - 1 ms`.
pub fn list_params(
    filter: &ItemFilter,
    page: u32,
    page_size: u32,
    sort: SortType,
    detail: bool,
) -> Vec<(String, String)> {
    let mut out = vec![p("pageNo", page), p("pageSize", page_size)];
    if !filter.offline {
        out.push(p("statusList", wire::json_list(&["published"])));
    }
    if let Some(c) = &filter.cid {
        out.push(p("categoryId", c));
    }
    if let Some(s) = filter.start_ms {
        let first = if BOUNDS_INCLUSIVE { s } else { s.saturating_sub(1) };
        out.push(p("startModifyTime", time::format_compact(first)));
    }
    if let Some(e) = filter.end_ms {
        let last = if BOUNDS_INCLUSIVE { e.saturating_sub(1) } else { e };
        out.push(p("endModifyTime", time::format_compact(last)));
    }
    let (by, order) = match sort {
        SortType::ModifiedAsc => ("MODIFY_DATE", "ASC"),
        SortType::ModifiedDesc => ("MODIFY_DATE", "DESC"),
        // SALE_QUANTITY is one of the generated class's orderByCondition values.
        SortType::VolumeDesc => ("SALE_QUANTITY", "DESC"),
    };
    out.push(p("orderByCondition", by));
    out.push(p("orderByType", order));
    out.push(p("needDetail", detail));
    out
}

/// Whether an item's time lies in the filter's half-open window (an unknown time is kept:
/// the normalizer sets such an item aside with its reason). With the bounds right this
/// removes nothing; it keeps a wrong guess about them from putting items into the wrong
/// window.
pub fn in_window(filter: &ItemFilter, item: &RawItem) -> bool {
    match item.modified_time {
        None => true,
        Some(t) => filter.start_ms.is_none_or(|s| t >= s) && filter.end_ms.is_none_or(|e| t < e),
    }
}

/// `queryProductDetail`'s business codes for an offer that does not exist or is not on sale
/// (the simulator's, after the shapes open-source clients meet; no document lists them). Only
/// these make `offer_detail` answer "gone", on which the sweep deletes: any other refusal is
/// an error and deletes nothing.
const OFFER_GONE: [&str; 2] = ["OFFER_NOT_FOUND", "OFFER_NOT_ONLINE"];

/// The `querySellerOfferList` parameter object.
pub fn seller_offers_params(
    seller_open_id: &str,
    page: u32,
    page_size: u32,
    country: &str,
) -> Vec<(String, String)> {
    let q =
        json!({"sellerOpenId": seller_open_id, "beginPage": page, "pageSize": page_size, "country": country});
    vec![p("offerQueryParam", wire::json_object(&q))]
}

impl Client {
    pub(crate) async fn param2_items_list(
        &self,
        filter: &ItemFilter,
        page: u32,
        page_size: u32,
        sort: SortType,
    ) -> Result<ListPage, ApiError> {
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) || page == 0 {
            return Err(ApiError::Argument(format!(
                "page {page} of size {page_size}: on param2 the size must be 1 to {MAX_PAGE_SIZE} (Client::max_page_size)"
            )));
        }
        let v = self.call(wire::PRODUCT_LIST.name, &list_params(filter, page, page_size, sort, true)).await?;
        let mut page = products::parse_product_list(&v)?;
        page.items.retain(|i| in_window(filter, i));
        self.param2_skus().put(page.items.iter().flat_map(|i| i.skus.iter().flatten().cloned()));
        Ok(page)
    }

    pub(crate) async fn param2_items_count(&self, filter: &ItemFilter) -> Result<u64, ApiError> {
        let v = self
            .call(wire::PRODUCT_LIST.name, &list_params(filter, 1, 1, SortType::ModifiedAsc, false))
            .await?;
        Ok(products::parse_product_list(&v)?.total_results)
    }

    /// `None` when the product is unknown or not on sale, as `alibaba.item.get` answers
    /// `isv.item-not-found` for a delisted item. The list call with `productIds` is used
    /// rather than `alibaba.product.get` because its "not found" is an empty list, while
    /// what `alibaba.product.get` answers for a deleted product is documented nowhere.
    pub(crate) async fn param2_item_get(&self, item_id: &str) -> Result<Option<RawItem>, ApiError> {
        let Ok(numeric) = item_id.trim().parse::<u64>() else {
            return Err(ApiError::Argument(format!(
                "item id {item_id:?} is not a number (productIds are Long)"
            )));
        };
        let params = vec![
            p("pageNo", 1),
            p("pageSize", 1),
            p("productIds", wire::json_list(&[numeric])),
            p("needDetail", true),
        ];
        let v = self.call(wire::PRODUCT_LIST.name, &params).await?;
        let page = products::parse_product_list(&v)?;
        if let Some(b) =
            page.bad.into_iter().find(|b| b.item_id.as_deref().is_none_or(|i| i == item_id.trim()))
        {
            return Err(ApiError::Malformed(format!(
                "{}: product {item_id}: {}",
                wire::PRODUCT_LIST.name,
                b.error
            )));
        }
        let item = page.items.into_iter().find(|i| i.item_id == item_id.trim());
        Ok(item.filter(|i| i.status.as_deref().is_none_or(|s| s == "online")))
    }

    pub(crate) fn param2_sku_get(&self, sku_ids: &[String]) -> Vec<RawSku> {
        let (found, missing) = self.param2_skus().get(sku_ids);
        if missing > 0 {
            tracing::warn!(account = %self.account(), missing, asked = sku_ids.len(), "SKU details no longer held since their listing; left out");
        }
        found
    }

    /// `product.search.querySellerOfferList`: one page of any seller's offers (cross-border
    /// solution permission). `country` is the answer's language (`"en"`, `"ja"`…), required
    /// by the API. There is no time filter: a sync sweeps the list and compares `modifyDate`.
    pub async fn seller_offers(
        &self,
        seller_open_id: &str,
        page: u32,
        page_size: u32,
        country: &str,
    ) -> Result<ListPage, ApiError> {
        if !self.is_param2() {
            return Err(ApiError::Unsupported { call: "seller_offers".into(), protocol: "seed" });
        }
        let v = self
            .call(wire::SELLER_OFFERS.name, &seller_offers_params(seller_open_id, page, page_size, country))
            .await?;
        products::parse_seller_offers(&v)
    }

    /// `product.search.queryProductDetail`: one offer in full, with its seller's open id;
    /// `None` when the platform says it does not exist or is not on sale.
    pub async fn offer_detail(&self, offer_id: &str, country: &str) -> Result<Option<OfferDetail>, ApiError> {
        if !self.is_param2() {
            return Err(ApiError::Unsupported { call: "offer_detail".into(), protocol: "seed" });
        }
        let Ok(numeric) = offer_id.trim().parse::<u64>() else {
            return Err(ApiError::Argument(format!("offer id {offer_id:?} is not a number")));
        };
        let q = json!({"offerId": numeric, "country": country});
        let v =
            match self.call(wire::OFFER_DETAIL.name, &[p("offerDetailParam", wire::json_object(&q))]).await {
                Err(ApiError::Business { code, .. }) if OFFER_GONE.contains(&code.trim()) => return Ok(None),
                r => r?,
            };
        let detail = products::parse_offer_detail(&v)?;
        if let Some(d) = &detail {
            self.param2_skus().put(d.item.skus.iter().flatten().cloned());
        }
        Ok(detail)
    }
}

/// What `alibaba.product.follow` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follow {
    Followed,
    /// The platform refused this offer (it no longer exists, say): following it again would
    /// only be refused again.
    Refused {
        code: String,
    },
}

/// Most messages one `push.cursor.messageList` call returns (`quantity` is 20 to 200).
pub const MESSAGE_PAGE: u32 = 200;

impl Client {
    /// `alibaba.product.follow`: the app follows `offer_id`, so that its changes come as
    /// messages. Following an offer already followed is no error.
    pub async fn follow(&self, offer_id: &str) -> Result<Follow, ApiError> {
        if !self.is_param2() {
            return Err(ApiError::Unsupported { call: "follow".into(), protocol: "seed" });
        }
        let Ok(numeric) = offer_id.trim().parse::<u64>() else {
            return Err(ApiError::Argument(format!("offer id {offer_id:?} is not a number")));
        };
        match self.call(wire::FOLLOW.name, &[p("productId", numeric)]).await {
            Ok(_) => Ok(Follow::Followed),
            Err(ApiError::Business { code, .. }) => Ok(Follow::Refused { code }),
            Err(e) => Err(e),
        }
    }

    /// `push.cursor.messageList`: up to [`MESSAGE_PAGE`] of the messages the platform could
    /// not deliver, each as its JSON text (the envelope a push carries). The platform counts
    /// what it returns as consumed: the caller stores them before anything else.
    pub async fn pull_messages(&self) -> Result<Vec<String>, ApiError> {
        if !self.is_param2() {
            return Err(ApiError::Unsupported { call: "pull_messages".into(), protocol: "seed" });
        }
        let v = self.call(wire::MESSAGE_LIST.name, &[p("quantity", MESSAGE_PAGE)]).await?;
        let list =
            v.get("pushMessageList").or_else(|| v.get("result").and_then(|r| r.get("pushMessageList")));
        match list {
            Some(serde_json::Value::Array(a)) => Ok(a
                .iter()
                .map(|m| match m {
                    // An element sent as the envelope's JSON text, as a push carries it.
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .collect()),
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(_) => Err(ApiError::Malformed(format!(
                "{}: pushMessageList is not a list",
                wire::MESSAGE_LIST.name
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(params: &'a [(String, String)], k: &str) -> Option<&'a str> {
        params.iter().find(|p| p.0 == k).map(|p| p.1.as_str())
    }

    #[test]
    fn list_params_carry_the_filter() {
        let f = ItemFilter {
            offline: false,
            cid: Some("1031910".into()),
            // 2023-11-15 06:13:20 Shanghai, and one day later.
            start_ms: Some(1_700_000_000_000),
            end_ms: Some(1_700_086_400_000),
        };
        let params = list_params(&f, 3, 20, SortType::ModifiedAsc, true);
        assert_eq!(get(&params, "pageNo"), Some("3"));
        assert_eq!(get(&params, "pageSize"), Some("20"));
        assert_eq!(get(&params, "statusList"), Some(r#"["published"]"#));
        assert_eq!(get(&params, "categoryId"), Some("1031910"));
        assert_eq!(get(&params, "startModifyTime"), Some("20231115061320000+0800"));
        assert_eq!(get(&params, "endModifyTime"), Some("20231116061319999+0800"));
        assert_eq!(get(&params, "orderByCondition"), Some("MODIFY_DATE"));
        assert_eq!(get(&params, "orderByType"), Some("ASC"));
        assert_eq!(get(&params, "needDetail"), Some("true"));
        let all = list_params(
            &ItemFilter { offline: true, ..Default::default() },
            1,
            1,
            SortType::VolumeDesc,
            false,
        );
        assert_eq!(get(&all, "statusList"), None, "offline: every status");
        assert_eq!(get(&all, "startModifyTime"), None);
        assert_eq!(
            (get(&all, "orderByCondition"), get(&all, "orderByType")),
            (Some("SALE_QUANTITY"), Some("DESC"))
        );
    }

    #[test]
    fn the_window_is_half_open() {
        let f = ItemFilter { start_ms: Some(100), end_ms: Some(200), ..Default::default() };
        let at = |t| RawItem { item_id: "1".into(), modified_time: t, ..Default::default() };
        assert!(!in_window(&f, &at(Some(99))));
        assert!(in_window(&f, &at(Some(100))));
        assert!(in_window(&f, &at(Some(199))));
        assert!(!in_window(&f, &at(Some(200))));
        assert!(in_window(&f, &at(None)));
    }

    #[test]
    fn seller_offers_param_is_one_json_object() {
        let params = seller_offers_params("23tsdvcdsjngp3oj4j3i5", 2, 50, "en");
        let v: serde_json::Value = serde_json::from_str(get(&params, "offerQueryParam").unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"sellerOpenId": "23tsdvcdsjngp3oj4j3i5", "beginPage": 2, "pageSize": 50, "country": "en"})
        );
    }
}
