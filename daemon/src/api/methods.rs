//! The platform's methods (contract section 4) as typed calls.
//!
//! Under `protocol = "param2"` each call goes to its production-platform equivalent
//! (`api/param2/calls.rs`), or fails with [`ApiError::Unsupported`] where there is none, so
//! the sync engine calls the same methods either way. Two things differ for the caller:
//! pages hold at most [`Client::max_page_size`] items (20 on param2), and the member id is
//! not sent on param2 (the access token names the shop).

use super::client::Client;
use super::error::ApiError;
use super::model::{BadItem, Category, ListPage, RawItem, RawSku, ShopInfo};
use super::shop_ref::{MemberId, ShopRef};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Most SKU ids one `alibaba.item.sku.get` takes.
pub const MAX_SKU_IDS: usize = 20;
/// Largest `pageSize` the seed gateway accepts (param2: `param2::MAX_PAGE_SIZE`, 20; ask
/// [`Client::max_page_size`]).
pub const MAX_PAGE_SIZE: u32 = 40;

/// Item fields a sync asks for: without `skuIds`, `wholesalePrice` and `moq` named here,
/// the platform leaves them out.
pub const ITEM_FIELDS: &str =
    "item_id,title,cid,wholesalePrice,channelPrice,moq,sales,stock,skuIds,modified_time,status,pic_url,detail_url";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortType {
    ModifiedAsc,
    ModifiedDesc,
    VolumeDesc,
}

/// The filter shared by the list and count calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemFilter {
    /// Include delisted items.
    pub offline: bool,
    pub cid: Option<String>,
    /// `start_ms <= modified_time`
    pub start_ms: Option<i64>,
    /// `modified_time < end_ms`
    pub end_ms: Option<i64>,
}

impl ItemFilter {
    fn params(&self, member: &MemberId, out: &mut Vec<(String, String)>) {
        out.push(("member_id".into(), member.to_string()));
        out.push(("offline".into(), self.offline.to_string()));
        if let Some(c) = &self.cid {
            out.push(("cid".into(), c.clone()));
        }
        if let Some(s) = self.start_ms {
            out.push(("start_time".into(), s.to_string()));
        }
        if let Some(e) = self.end_ms {
            out.push(("end_time".into(), e.to_string()));
        }
    }
}

fn parse<T: DeserializeOwned>(method: &str, what: &str, v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::Malformed(format!("{method}: {what}: {e}")))
}

/// The inner value of a `alibaba.seller.items.list.get` answer (after [`classify`]) as a page.
///
/// [`classify`]: super::client::classify
pub fn parse_list_page(mut v: Value) -> Result<ListPage, ApiError> {
    const M: &str = "alibaba.seller.items.list.get";
    let total_results = v
        .get("total_results")
        .and_then(|c| c.as_u64().or_else(|| c.as_str().and_then(|s| s.parse().ok())))
        .ok_or_else(|| ApiError::Malformed(format!("{M}: no total_results")))?;
    // An empty page has `"items": {}` with no `item` key at all.
    let list = match v.pointer_mut("/items/item").map(Value::take) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(ApiError::Malformed(format!("{M}: items: expected a list, got {}", kind_of(&other))))
        }
    };
    // Each item on its own: one the parser rejects is set aside with what can be read of it
    // (its id, its time), and the rest of the page stands.
    let mut items = Vec::with_capacity(list.len());
    let mut bad = Vec::new();
    for v in list {
        match serde_json::from_value::<RawItem>(v.clone()) {
            Ok(item) => items.push(item),
            Err(e) => bad.push(BadItem::from_value(&v, e.to_string())),
        }
    }
    Ok(ListPage { total_results, items, bad })
}

/// The inner value of a `alibaba.item.sku.get` answer as SKUs.
pub fn parse_skus(mut v: Value) -> Result<Vec<RawSku>, ApiError> {
    match v.pointer_mut("/skus/sku").map(Value::take) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(list) => parse("alibaba.item.sku.get", "skus", list),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn p(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

impl Client {
    fn seed_only(&self, call: &str) -> Result<(), ApiError> {
        if self.is_param2() {
            return Err(ApiError::Unsupported { call: call.to_string(), protocol: "param2" });
        }
        Ok(())
    }

    /// Resolves a shop reference to its member id; only the URL shape 3 costs a call.
    pub async fn resolve(&self, shop: &ShopRef) -> Result<MemberId, ApiError> {
        match shop {
            ShopRef::Member(m) => Ok(m.clone()),
            ShopRef::Url(url) => {
                let info = self.shop_get(url).await?;
                info.member_id.parse().map_err(|e| ApiError::Malformed(format!("alibaba.shop.get: {e}")))
            }
        }
    }

    /// `alibaba.shop.get`. param2 has no URL resolution: a shop is configured by member id
    /// there (and the access token names it).
    pub async fn shop_get(&self, shop_url: &str) -> Result<ShopInfo, ApiError> {
        const M: &str = "alibaba.shop.get";
        self.seed_only(M)?;
        let mut v = self.call(M, &[p("shop_url", shop_url)]).await?;
        parse(M, "shop", v.get_mut("shop").map(Value::take).unwrap_or(Value::Null))
    }

    /// `alibaba.seller.cats.list.get`. param2 has no list of a seller's categories.
    pub async fn seller_cats(&self, member: &MemberId) -> Result<Vec<Category>, ApiError> {
        const M: &str = "alibaba.seller.cats.list.get";
        self.seed_only(M)?;
        let v = self.call(M, &[p("member_id", member)]).await?;
        let list = v.pointer("/seller_cats/seller_cat").cloned().unwrap_or(Value::Array(vec![]));
        parse(M, "seller_cat", list)
    }

    /// `alibaba.seller.items.count.get`: the official count.
    pub async fn items_count(&self, member: &MemberId, filter: &ItemFilter) -> Result<u64, ApiError> {
        const M: &str = "alibaba.seller.items.count.get";
        if self.is_param2() {
            return self.param2_items_count(filter).await;
        }
        let mut params = Vec::new();
        filter.params(member, &mut params);
        let v = self.call(M, &params).await?;
        v.get("total_count")
            .and_then(|c| c.as_u64().or_else(|| c.as_str().and_then(|s| s.parse().ok())))
            .ok_or_else(|| ApiError::Malformed(format!("{M}: no total_count")))
    }

    /// `alibaba.seller.items.list.get`: one page (1-based) of at most `page_size` items.
    pub async fn items_list(
        &self,
        member: &MemberId,
        filter: &ItemFilter,
        page: u32,
        page_size: u32,
        sort: SortType,
    ) -> Result<ListPage, ApiError> {
        const M: &str = "alibaba.seller.items.list.get";
        if self.is_param2() {
            return self.param2_items_list(filter, page, page_size, sort).await;
        }
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) || page == 0 {
            return Err(ApiError::Argument(format!("page {page} of size {page_size}: size must be 1 to 40")));
        }
        let mut params = Vec::new();
        filter.params(member, &mut params);
        params.push(p("pageNum", page));
        params.push(p("pageSize", page_size));
        params.push(p("fields", ITEM_FIELDS));
        let sort = match sort {
            SortType::ModifiedAsc => "modified_asc",
            SortType::ModifiedDesc => "modified_desc",
            SortType::VolumeDesc => "volume_desc",
        };
        params.push(p("sortType", sort));
        parse_list_page(self.call(M, &params).await?)
    }

    /// `alibaba.item.sku.get` for at most 20 ids; unknown ids are left out of the answer.
    /// On param2 the SKUs came with the list, and this answers from them without a call.
    pub async fn sku_get(&self, sku_ids: &[String]) -> Result<Vec<RawSku>, ApiError> {
        const M: &str = "alibaba.item.sku.get";
        if sku_ids.is_empty() {
            return Ok(Vec::new());
        }
        if self.is_param2() {
            return Ok(self.param2_sku_get(sku_ids));
        }
        if sku_ids.len() > MAX_SKU_IDS {
            return Err(ApiError::Argument(format!(
                "{} SKU ids in one call; at most {MAX_SKU_IDS}",
                sku_ids.len()
            )));
        }
        parse_skus(self.call(M, &[p("sku_ids", sku_ids.join(","))]).await?)
    }

    /// `alibaba.item.get`: one item in full with its SKUs; `None` when it is delisted or
    /// unknown (`isv.item-not-found`).
    pub async fn item_get(&self, item_id: &str) -> Result<Option<RawItem>, ApiError> {
        const M: &str = "alibaba.item.get";
        if self.is_param2() {
            return self.param2_item_get(item_id).await;
        }
        match self.call(M, &[p("item_id", item_id), p("fields", ITEM_FIELDS)]).await {
            Ok(mut v) => {
                parse(M, "item", v.get_mut("item").map(Value::take).unwrap_or(Value::Null)).map(Some)
            }
            Err(e) if e.sub_code() == Some("isv.item-not-found") => Ok(None),
            Err(e) => Err(e),
        }
    }
}
