//! `com.alibaba.product:alibaba.product.list.get`: one page of the authorized member's own
//! shop, with the seed face's traps at param2's sizes.
//!
//! Pages are cut by offset from a fresh sort at every call (they shift under churn), ties on
//! one millisecond are broken by id, page `depth_cap` + 1 and later come back empty while
//! `totalRecords` stays honest, and a query that matches more than `depth_cap` × 20 items
//! without a window of at most `window_days` stalls and then fails: with 20 a page, one
//! query reaches 1,000 items, half what a seed query reaches.
//!
//! Both bounds are inclusive: `startModifyTime <= modified <= endModifyTime`. No source says
//! which the platform does; shopsync's client assumes the same (`BOUNDS_INCLUSIVE` in
//! `daemon/src/api/param2/calls.rs`), and a difference found in production is one edit on
//! each side. `orderByCondition` takes `MODIFY_DATE`, `ID` and `SALE_QUANTITY` (a value of
//! the generated parameter class: by sales, the order that reaches other items of a tie).
//! Without `statusList` both on-sale (`published`) and delisted (`expired`) products come.
//! `skuInfos` come only with `needDetail=true`. A page with no products has no `resultList`.

use super::dates::parse_compact;
use super::gateway::{Caller, Params};
use super::reply::{Gw, Reply, Unauthorized};
use super::settings::Param2Settings;
use super::views::product_info;
use crate::catalogue::{Item, ListQuery, Shop, SortType};
use crate::config::Limits;
use crate::state::Sim;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// `orderByCondition` × `orderByType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    ModifiedAsc,
    ModifiedDesc,
    IdAsc,
    IdDesc,
    /// `SALE_QUANTITY`, most sold first (descending only, like the seed face's volume order).
    VolumeDesc,
}

/// Which statuses a `statusList` asks for.
#[derive(Debug, Clone, Copy)]
struct Statuses {
    published: bool,
    expired: bool,
}

/// A validated `alibaba.product.list.get` query.
struct Query {
    page_no: u32,
    page_size: u32,
    start: Option<i64>,
    end: Option<i64>,
    cid: Option<u64>,
    order: Order,
    statuses: Statuses,
    ids: Option<HashSet<u64>>,
    need_detail: bool,
}

fn invalid(name: &str, why: &str) -> Reply {
    Reply::result_failure("InvalidParameter", &format!("{name}: {why}"))
}

/// A JSON list parameter (`["a","b"]`, `[1,2]`) as strings; the SDKs send lists as JSON.
fn json_list(p: &Params, name: &str) -> Result<Option<Vec<String>>, Reply> {
    let Some(raw) = p.get(name) else { return Ok(None) };
    let parsed: Vec<Value> =
        serde_json::from_str(raw).map_err(|_| invalid(name, "expected a JSON list, e.g. [\"published\"]"))?;
    let items = parsed.iter().map(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    items.collect::<Option<Vec<_>>>().map(Some).ok_or_else(|| invalid(name, "expected strings or numbers"))
}

fn parse(p: &Params, max_page_size: u32) -> Result<Query, Reply> {
    let int = |name: &str, default: u32| -> Result<u32, Reply> {
        match p.get(name).map(|v| v.parse::<u32>()) {
            None => Ok(default),
            Some(Ok(n)) if n >= 1 => Ok(n),
            Some(_) => Err(invalid(name, "expected a positive integer")),
        }
    };
    let page_no = int("pageNo", 1)?;
    let page_size = int("pageSize", max_page_size)?;
    if page_size > max_page_size {
        return Err(invalid("pageSize", &format!("at most {max_page_size}")));
    }
    let time = |name: &str| -> Result<Option<i64>, Reply> {
        match p.get(name) {
            None => Ok(None),
            Some(v) => {
                parse_compact(v).map(Some).ok_or_else(|| invalid(name, "expected yyyyMMddHHmmssSSS+0800"))
            }
        }
    };
    // Inclusive on the wire, half-open inside (as the catalogue's queries are).
    let (start, end) = (time("startModifyTime")?, time("endModifyTime")?.map(|e| e + 1));
    let cid = match p.get("categoryId") {
        None => None,
        Some(c) => Some(c.parse::<u64>().map_err(|_| invalid("categoryId", "expected a number"))?),
    };
    let desc = match p.get("orderByType").map(|s| s.to_ascii_uppercase()).as_deref() {
        None | Some("ASC") => false,
        Some("DESC") => true,
        Some(_) => return Err(invalid("orderByType", "ASC or DESC")),
    };
    let order = match (p.get("orderByCondition").map(String::as_str), desc) {
        (None | Some("MODIFY_DATE"), false) => Order::ModifiedAsc,
        (None | Some("MODIFY_DATE"), true) => Order::ModifiedDesc,
        (Some("ID"), false) => Order::IdAsc,
        (Some("ID"), true) => Order::IdDesc,
        (Some("SALE_QUANTITY"), true) => Order::VolumeDesc,
        (Some(_), _) => {
            return Err(invalid("orderByCondition", "MODIFY_DATE, ID or SALE_QUANTITY (DESC) expected"))
        }
    };
    let statuses = match json_list(p, "statusList")? {
        None => Statuses { published: true, expired: true },
        Some(list) => {
            let has = |s: &str| list.iter().any(|x| x.eq_ignore_ascii_case(s));
            Statuses { published: has("published"), expired: has("expired") }
        }
    };
    let ids = match json_list(p, "productIds")? {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|s| s.parse::<u64>())
                .collect::<Result<HashSet<u64>, _>>()
                .map_err(|_| invalid("productIds", "expected product ids"))?,
        ),
    };
    let need_detail = p.get("needDetail").is_some_and(|v| v == "true");
    Ok(Query { page_no, page_size, start, end, cid, order, statuses, ids, need_detail })
}

/// Every match of `q` in its order. Only the slow paths need this (an id order, the
/// delisted alone, a list of ids); the common query pages straight off the time index.
fn all_matches<'a>(shop: &'a Shop, q: &Query, lq: &ListQuery) -> Vec<&'a Item> {
    let n = shop.count(lq);
    let mut items: Vec<&Item> = shop
        .page(lq, 0, n)
        .into_iter()
        .filter(|i| (i.online && q.statuses.published) || (!i.online && q.statuses.expired))
        .filter(|i| match &q.ids {
            Some(ids) => ids.contains(&i.item_id),
            None => true,
        })
        .collect();
    match q.order {
        Order::IdAsc => items.sort_unstable_by_key(|i| i.item_id),
        Order::IdDesc => items.sort_unstable_by_key(|i| std::cmp::Reverse(i.item_id)),
        Order::ModifiedAsc | Order::ModifiedDesc | Order::VolumeDesc => {}
    }
    items
}

/// The query as the counters key a list page (`list_pages_distinct` / `_repeated`), under
/// the member whose shop it lists.
pub fn page_key(member_id: &str, p: &Params) -> BTreeMap<String, String> {
    let get = |k: &str| p.get(k).cloned().unwrap_or_default();
    BTreeMap::from([
        ("member_id".to_string(), format!("param2:{member_id}")),
        ("start_time".to_string(), get("startModifyTime")),
        ("end_time".to_string(), get("endModifyTime")),
        ("cid".to_string(), get("categoryId")),
        ("pageNum".to_string(), get("pageNo")),
        ("pageSize".to_string(), get("pageSize")),
        ("offline".to_string(), get("statusList")),
    ])
}

impl Sim {
    pub(crate) async fn product_list(
        &self,
        p: &Params,
        caller: &Caller,
        limits: &Limits,
        settings: &Param2Settings,
    ) -> Reply {
        let Some(member) = caller.token.as_ref().and_then(|(_, t)| t.member_id.clone()) else {
            return Reply::Unauthorized(Unauthorized::NoMember);
        };
        let q = match parse(p, settings.product_list_max_page_size) {
            Ok(q) => q,
            Err(r) => return r,
        };
        let lq = ListQuery {
            offline: q.statuses.expired,
            cid: q.cid,
            start: q.start,
            end: q.end,
            sort: match q.order {
                Order::ModifiedDesc => SortType::ModifiedDesc,
                Order::VolumeDesc => SortType::VolumeDesc,
                _ => SortType::ModifiedAsc,
            },
        };
        let (total, stalls, list) = {
            let cat = self.catalogue();
            let Some(shop) = cat.shop(&member) else {
                // The member authorized the app but sells nothing here: an empty shop.
                return Reply::ok(json!({"result": {"success": true, "pageResult":
                    {"sizePerPage": q.page_size, "totalRecords": 0}}}));
            };
            let fast = q.ids.is_none()
                && q.statuses.published
                && matches!(q.order, Order::ModifiedAsc | Order::ModifiedDesc | Order::VolumeDesc);
            let slow = (!fast).then(|| all_matches(shop, &q, &lq));
            let total = match (&slow, q.statuses.published || q.statuses.expired) {
                (_, false) => 0,
                (Some(all), _) => all.len(),
                (None, _) => shop.count(&lq),
            };
            // The seed face's stall, for windows: a saturated query over more than 30 days
            // stalls. The plain listing without any time bound is answered: it is the call
            // every ERP makes to list a shop, so the platform must serve it (an assumption;
            // no source describes param2's limits).
            let window_ok = match (q.start, q.end) {
                (Some(s), Some(e)) => e - s <= i64::from(limits.window_days) * 86_400_000,
                (None, None) => true,
                _ => false,
            };
            let reach = limits.depth_cap as usize * settings.product_list_max_page_size as usize;
            let stalls = !window_ok && total > reach;
            let offset = (q.page_no - 1) as usize * q.page_size as usize;
            let size = q.page_size as usize;
            // The depth cap: past it the page is empty while totalRecords stays honest.
            let page: Vec<&Item> = if stalls || q.page_no > limits.depth_cap || total == 0 {
                Vec::new()
            } else if let Some(all) = slow {
                all.into_iter().skip(offset).take(size).collect()
            } else {
                shop.page(&lq, offset, size)
            };
            let list: Vec<Value> = page
                .into_iter()
                .map(|i| product_info(i, q.need_detail, self.wrong_types(i.item_id)))
                .collect();
            (total, stalls, list)
        };
        if stalls {
            // The window-width quirk: a wide saturated query stalls, then the gateway gives up.
            tokio::time::sleep(Duration::from_millis(limits.stall_ms)).await;
            return Reply::gw(Gw::ServiceUnavailable, "Service unavailable, please try again later");
        }
        let mut page_result = json!({"sizePerPage": q.page_size, "totalRecords": total});
        if !list.is_empty() {
            page_result["resultList"] = Value::Array(list);
        }
        Reply::ok(json!({"result": {"success": true, "pageResult": page_result}}))
    }
}
