//! `com.alibaba.fenxiao.crossborder:product.search.querySellerOfferList`: any seller's
//! on-sale offers, by the seller's `sellerOpenId`.
//!
//! There is no time filter: a sync is a sweep of the whole list. Offers come newest
//! modification first (ties by id), cut by offset at every call, so an offer modified or
//! created during a sweep moves to the front (later pages repeat one) and one delisted
//! during it pulls every later offer up a place (the offer at the next page boundary is
//! skipped). `monthSold` moves without `modifyDate` moving, as stock and sales do.

use super::gateway::Params;
use super::ids::seller_open_id;
use super::object_param::{integer, object, string};
use super::reply::Reply;
use super::settings::Param2Settings;
use super::views::offer_summary;
use crate::catalogue::{ListQuery, SortType};
use crate::state::Sim;
use serde_json::{json, Value};

impl Sim {
    pub(crate) fn seller_offers(&self, p: &Params, settings: &Param2Settings) -> Reply {
        let m = match object(p, "offerQueryParam") {
            Ok(m) => m,
            Err(r) => return r,
        };
        if string(&m, "country").is_none() {
            return Reply::flat_failure("ParamMissing", "offerQueryParam.country is required");
        }
        let Some(open_id) = string(&m, "sellerOpenId") else {
            return Reply::flat_failure("ParamMissing", "offerQueryParam.sellerOpenId is required");
        };
        let max = settings.offer_list_max_page_size;
        let page = match integer(&m, "beginPage") {
            Ok(None) => 1,
            Ok(Some(n)) if n >= 1 => n,
            _ => {
                return Reply::flat_failure("InvalidParameter", "offerQueryParam.beginPage must be 1 or more")
            }
        };
        let size = match integer(&m, "pageSize") {
            Ok(None) => u64::from(max),
            Ok(Some(n)) if (1..=u64::from(max)).contains(&n) => n,
            _ => {
                return Reply::flat_failure(
                    "InvalidParameter",
                    &format!("offerQueryParam.pageSize must be 1 to {max}"),
                )
            }
        };
        let cat = self.catalogue();
        let Some(shop) = cat.shops.iter().find(|s| seller_open_id(&s.member_id) == open_id) else {
            // No `success` key at all and a code of 0: a client that reads this as an empty
            // shop deletes every offer it holds for the seller.
            return Reply::zero_code("seller not found");
        };
        let q = ListQuery { offline: false, cid: None, start: None, end: None, sort: SortType::ModifiedDesc };
        let total = shop.count(&q) as u64;
        let capped = settings.offer_list_depth_cap > 0 && page > u64::from(settings.offer_list_depth_cap);
        let data: Vec<Value> = if capped {
            Vec::new()
        } else {
            let offset = usize::try_from((page - 1).saturating_mul(size)).unwrap_or(usize::MAX);
            shop.page(&q, offset, size as usize)
                .into_iter()
                .map(|i| offer_summary(i, self.wrong_types(i.item_id)))
                .collect()
        };
        Reply::ok(json!({"result": {"success": true, "code": "200", "result": {
            "totalRecords": total,
            "totalPage": total.div_ceil(size),
            "pageSize": size,
            "currentPage": page,
            "data": data,
        }}}))
    }
}
