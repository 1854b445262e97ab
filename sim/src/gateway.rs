//! The platform's gateway: system parameters, signatures, limits, faults, and the methods of
//! contract section 4, each with its parameter rules and quirks.

use crate::catalogue::{sku_owner, FieldSet, ListQuery, SortType};
use crate::config::Account;
use crate::sign::{md5_sign, sha1_sign};
use crate::state::Sim;
use crate::time::parse_shanghai;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

pub const METHODS: &[&str] = &[
    "alibaba.shop.get",
    "alibaba.seller.cats.list.get",
    "alibaba.seller.items.count.get",
    "alibaba.seller.items.list.get",
    "alibaba.item.sku.get",
    "alibaba.item.get",
];

/// What the gateway answers, before it is put on the wire.
#[derive(Debug)]
pub enum Reply {
    /// `{"<name>_response": body}`
    Ok {
        name: String,
        body: Vec<u8>,
    },
    Error {
        http: u16,
        code: i64,
        msg: String,
        sub_code: Option<String>,
    },
    /// An HTML error page from the gateway's front (502 or 503).
    Html(u16),
}

/// The bytes that go on the wire.
pub struct Wire {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

fn err(code: i64, msg: &str, sub_code: &str) -> Reply {
    Reply::Error { http: 200, code, msg: msg.to_string(), sub_code: Some(sub_code.to_string()) }
}

fn invalid(param: &str) -> Reply {
    err(1001, "Invalid parameter", &format!("isv.invalid-parameter:{param}"))
}

fn ok<T: Serialize>(method: &str, body: &T) -> Reply {
    let name = method.trim_start_matches("alibaba.").replace('.', "_");
    Reply::Ok { name, body: serde_json::to_vec(body).unwrap_or_default() }
}

type Params = BTreeMap<String, String>;

impl Sim {
    /// Handles one gateway call end to end, faults included.
    pub async fn gateway(&self, params: Params) -> Wire {
        let method = params.get("method").cloned().unwrap_or_default();
        let label = if METHODS.contains(&method.as_str()) { method.as_str() } else { "unknown" };
        let faults = self.faults();
        let reply = self.gateway_reply(&params, label).await;
        let outcome = match &reply {
            Reply::Ok { .. } => "ok".to_string(),
            Reply::Error { code, .. } => code.to_string(),
            Reply::Html(status) => format!("html_{status}"),
        };
        let served_ok = matches!(reply, Reply::Ok { .. });
        let mut wire = render(reply);
        let truncate = wire.status == 200 && self.roll(faults.truncated);
        {
            let mut t = self.traffic();
            t.outcome(label, &outcome);
            if truncate {
                t.outcome(label, "truncated");
            }
            if served_ok && !truncate && label == "alibaba.seller.items.list.get" {
                t.list_page_served(&params);
            }
        }
        if truncate && wire.body.len() > 2 {
            // A body cut off mid-way: the connection dropped behind a proxy.
            let cut = 1 + self.dice(wire.body.len() - 2);
            wire.body.truncate(cut);
        }
        wire
    }

    async fn gateway_reply(&self, p: &Params, method: &str) -> Reply {
        let limits = self.limits();
        let faults = self.faults();
        let app_key = p.get("app_key").map(String::as_str).unwrap_or("");
        let Some(account) = self.account(app_key) else {
            return err(10002, "Invalid signature", "isv.invalid-app-key");
        };
        let now = self.now_ms();
        // Every call that reaches a known key costs quota, failed ones (5002, HTML, 429)
        // included, as on the platform.
        if !self.traffic().spend_quota(app_key, now, self.quota_of(&account), limits.quota_day_ms) {
            return err(15, "Remote service error", "isv.quota-exceeded");
        }
        if !self.traffic().admit(app_key, now, limits.rate_per_sec) {
            return Reply::Error {
                http: 429,
                code: 7,
                msg: "App call limited".into(),
                sub_code: Some("accesscontrol.limited-by-app-access-count".into()),
            };
        }
        if self.roll(faults.hang) {
            tokio::time::sleep(Duration::from_millis(faults.hang_ms)).await;
        }
        if self.roll(faults.html) {
            return Reply::Html(if self.roll(0.5) { 502 } else { 503 });
        }
        if self.roll(faults.throttle) {
            self.traffic().throttle_injected(app_key);
            return Reply::Error {
                http: 429,
                code: 7,
                msg: "App call limited".into(),
                sub_code: Some("accesscontrol.limited-by-flow-control".into()),
            };
        }
        if self.roll(faults.busy) {
            return err(5002, "System busy", "isp.system-busy");
        }
        if let Some(r) = self.check_system(p, &account, now, &limits) {
            return r;
        }
        if account.denied_methods.iter().any(|m| m == method) {
            return err(11, "Insufficient isv permissions", "isv.permission-api-package-limit");
        }
        match method {
            "alibaba.shop.get" => self.shop_get(p),
            "alibaba.seller.cats.list.get" => self.cats_list(p),
            "alibaba.seller.items.count.get" => self.items_count(p),
            "alibaba.seller.items.list.get" => self.items_list(p, &account, &limits).await,
            "alibaba.item.sku.get" => self.sku_get(p, &limits),
            "alibaba.item.get" => self.item_get(p, &account),
            _ => invalid("method"),
        }
    }

    /// Timestamp, format, version, signature and token: `None` when all is well.
    fn check_system(
        &self,
        p: &Params,
        account: &Account,
        now: i64,
        limits: &crate::config::Limits,
    ) -> Option<Reply> {
        let ts = p.get("timestamp").map(String::as_str).unwrap_or("");
        let ts_ms = if ts.len() == 13 && ts.bytes().all(|b| b.is_ascii_digit()) {
            ts.parse::<i64>().ok()
        } else {
            // A 10-digit (seconds) value is the classic mistake, and is rejected.
            parse_shanghai(ts)
        };
        match ts_ms {
            None => return Some(invalid("timestamp")),
            Some(t) if (t - now).abs() > limits.max_skew_ms => {
                return Some(err(
                    1001,
                    "Invalid timestamp: clock skew too large",
                    "isv.invalid-parameter:timestamp",
                ))
            }
            Some(_) => {}
        }
        if p.get("format").is_some_and(|f| f != "json") {
            return Some(invalid("format"));
        }
        if p.get("v").is_some_and(|v| v != "2.0") {
            return Some(invalid("v"));
        }
        let expected = match p.get("sign_method").map(String::as_str) {
            None | Some("md5") => md5_sign(p, &account.app_secret),
            Some("sha1") => sha1_sign(p, &account.app_secret),
            Some(_) => return Some(invalid("sign_method")),
        };
        if p.get("sign") != Some(&expected) {
            return Some(err(10002, "Invalid signature", "isv.invalid-signature"));
        }
        if account.oauth {
            let valid = p.get("access_token").and_then(|t| self.tokens().get(t).cloned());
            match valid {
                Some(t) if t.app_key == account.app_key && t.expires_ms > now => {}
                Some(_) => return Some(err(27, "Invalid session", "isv.access-token-expired")),
                None => return Some(err(27, "Invalid session", "isv.access-token-missing")),
            }
        }
        None
    }

    fn shop_get(&self, p: &Params) -> Reply {
        let Some(url) = p.get("shop_url") else { return invalid("shop_url") };
        let cat = self.catalogue();
        let idx = resolve_url(url, |m| cat.by_member.get(m).copied(), |l| cat.by_login.get(l).copied());
        match idx {
            Some(i) => {
                let s = &cat.shops[i];
                ok(
                    "alibaba.shop.get",
                    &serde_json::json!({"shop": {"member_id": s.member_id, "shop_name": s.name, "shop_url": s.shop_url()}}),
                )
            }
            None => err(1001, "Shop not found", "isv.shop-not-found"),
        }
    }

    fn cats_list(&self, p: &Params) -> Reply {
        let cat = self.catalogue();
        let shop = match member(p, &cat) {
            Ok(s) => s,
            Err(r) => return r,
        };
        ok(
            "alibaba.seller.cats.list.get",
            &serde_json::json!({"seller_cats": {"seller_cat": shop.categories}}),
        )
    }

    fn items_count(&self, p: &Params) -> Reply {
        let cat = self.catalogue();
        let shop = match member(p, &cat) {
            Ok(s) => s,
            Err(r) => return r,
        };
        match list_query(p) {
            Ok(q) => {
                ok("alibaba.seller.items.count.get", &serde_json::json!({"total_count": shop.count(&q)}))
            }
            Err(r) => r,
        }
    }

    async fn items_list(&self, p: &Params, account: &Account, limits: &crate::config::Limits) -> Reply {
        let page_num = match p.get("pageNum").map(|v| v.parse::<u32>()) {
            None => 1,
            Some(Ok(n)) if n >= 1 => n,
            Some(_) => return invalid("pageNum"),
        };
        let page_size = match p.get("pageSize").map(|v| v.parse::<u32>()) {
            None => 20,
            Some(Ok(n)) if (1..=limits.max_page_size).contains(&n) => n,
            Some(_) => return invalid("pageSize"),
        };
        let q = match list_query(p) {
            Ok(q) => q,
            Err(r) => return r,
        };
        self.fire_armed(p.get("member_id").map(String::as_str).unwrap_or(""), &q);
        let fields = p.get("fields").map_or_else(FieldSet::default_set, |f| FieldSet::parse(f));
        let (total, stalls, body) = {
            let cat = self.catalogue();
            let shop = match member(p, &cat) {
                Ok(s) => s,
                Err(r) => return r,
            };
            let total = shop.count(&q);
            let window_ok = match (q.start, q.end) {
                (Some(s), Some(e)) => e - s <= i64::from(limits.window_days) * 86_400_000,
                _ => false,
            };
            let reach = (limits.depth_cap * limits.max_page_size) as usize;
            let stalls = !window_ok && total > reach;
            // The depth cap: past it the page is empty while total_results stays honest.
            let items: Vec<_> = if stalls || page_num > limits.depth_cap {
                Vec::new()
            } else {
                let offset = (page_num - 1) as usize * page_size as usize;
                shop.page(&q, offset, page_size as usize)
                    .into_iter()
                    .map(|i| i.view(&fields, account.b2b, self.wrong_types(i.item_id)))
                    .collect()
            };
            (total, stalls, items)
        };
        if stalls {
            // The window-width quirk: a wide saturated query stalls, then fails as "busy".
            tokio::time::sleep(Duration::from_millis(limits.stall_ms)).await;
            return err(5002, "System busy", "isp.system-busy");
        }
        let items = if body.is_empty() { serde_json::json!({}) } else { serde_json::json!({ "item": body }) };
        ok("alibaba.seller.items.list.get", &serde_json::json!({"total_results": total, "items": items}))
    }

    fn sku_get(&self, p: &Params, limits: &crate::config::Limits) -> Reply {
        let raw = match (p.get("sku_ids"), p.get("sku_id")) {
            (Some(ids), _) => ids.as_str(),
            (None, Some(id)) => id.as_str(),
            (None, None) => return invalid("sku_ids"),
        };
        let ids: Vec<&str> = raw.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        if ids.is_empty() || ids.len() > limits.max_sku_ids {
            return invalid("sku_ids");
        }
        let cat = self.catalogue();
        let mut skus = Vec::new();
        for id in ids {
            let Ok(sku_id) = id.parse::<u64>() else { return invalid("sku_ids") };
            let Some((item_id, k)) = sku_owner(sku_id) else { continue };
            let item = cat.item_shop.get(&item_id).and_then(|&s| cat.shops[s].get(item_id));
            if let Some(item) = item {
                if let Some(sku) = item.skus.iter().find(|s| s.index as usize == k) {
                    skus.push(item.sku_view(sku));
                }
            }
        }
        ok("alibaba.item.sku.get", &serde_json::json!({"skus": {"sku": skus}}))
    }

    fn item_get(&self, p: &Params, account: &Account) -> Reply {
        let Some(item_id) = p.get("item_id").and_then(|v| v.parse::<u64>().ok()) else {
            return invalid("item_id");
        };
        let cat = self.catalogue();
        let item = cat.item_shop.get(&item_id).and_then(|&s| cat.shops[s].get(item_id));
        match item {
            Some(item) if item.online => {
                let wrong = self.wrong_types(item_id);
                let mut v = item.full_view(account.b2b, wrong);
                if let Some(f) = p.get("fields") {
                    // `fields` narrows the scalar fields; SKUs and images always come inline.
                    let narrowed = item.view(&FieldSet::parse(f), account.b2b, wrong);
                    v = crate::catalogue::ItemView { skus: v.skus, images: v.images, ..narrowed };
                }
                ok("alibaba.item.get", &serde_json::json!({ "item": v }))
            }
            _ => err(1001, "Item not found", "isv.item-not-found"),
        }
    }
}

fn render(reply: Reply) -> Wire {
    match reply {
        Reply::Ok { name, body } => {
            let mut out = Vec::with_capacity(body.len() + name.len() + 16);
            out.extend_from_slice(b"{\"");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"_response\":");
            out.extend_from_slice(&body);
            out.push(b'}');
            Wire { status: 200, content_type: "application/json;charset=UTF-8", body: out }
        }
        Reply::Error { http, code, msg, sub_code } => {
            let request_id = format!("{:x}", crate::time::wall_ms());
            let body = serde_json::json!({"error_response": {"code": code, "msg": msg, "sub_code": sub_code, "request_id": request_id}});
            Wire { status: http, content_type: "application/json;charset=UTF-8", body: body.to_string().into_bytes() }
        }
        Reply::Html(status) => Wire {
            status,
            content_type: "text/html",
            body: format!(
                "<html><head><title>{status} Bad Gateway</title></head><body><center><h1>{status}</h1></center><hr><center>Tengine</center></body></html>"
            )
            .into_bytes(),
        },
    }
}

/// The shop a `member_id` names; 16 digits or it is an invalid parameter.
fn member<'a>(p: &Params, cat: &'a crate::state::Catalogue) -> Result<&'a crate::catalogue::Shop, Reply> {
    let id = p.get("member_id").map(String::as_str).unwrap_or("");
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("member_id"));
    }
    cat.shop(id).ok_or_else(|| err(1001, "Shop not found", "isv.shop-not-found"))
}

fn list_query(p: &Params) -> Result<ListQuery, Reply> {
    let ms = |name: &str| -> Result<Option<i64>, Reply> {
        match p.get(name) {
            None => Ok(None),
            Some(v) if v.len() == 13 && v.bytes().all(|b| b.is_ascii_digit()) => Ok(v.parse().ok()),
            Some(_) => Err(invalid(name)),
        }
    };
    let offline = match p.get("offline").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(invalid("offline")),
    };
    let cid = match p.get("cid") {
        None => None,
        Some(c) => Some(c.parse::<u64>().map_err(|_| invalid("cid"))?),
    };
    let sort = match p.get("sortType").map(String::as_str) {
        None | Some("modified_asc") => SortType::ModifiedAsc,
        Some("modified_desc") => SortType::ModifiedDesc,
        Some("volume_desc") => SortType::VolumeDesc,
        Some(_) => return Err(invalid("sortType")),
    };
    Ok(ListQuery { offline, cid, start: ms("start_time")?, end: ms("end_time")?, sort })
}

/// Which shop a URL names, by the contract's three shapes: a `memberId=` parameter, a
/// `/shop/<id>.html` path, or a `<login>.1688.com` host.
pub fn resolve_url(
    url: &str,
    by_member: impl Fn(&str) -> Option<usize>,
    by_login: impl Fn(&str) -> Option<usize>,
) -> Option<usize> {
    if let Some(pos) = url.find("memberId=") {
        let id: String = url[pos + 9..].chars().take_while(|c| c.is_ascii_digit()).collect();
        return by_member(&id);
    }
    if let Some(pos) = url.find("/shop/") {
        let id: String = url[pos + 6..].chars().take_while(|c| *c != '.' && *c != '/').collect();
        return by_member(&id);
    }
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host = rest.split(['/', '?', '#', ':']).next().unwrap_or("");
    let login = host.strip_suffix(".1688.com")?;
    by_login(login)
}
