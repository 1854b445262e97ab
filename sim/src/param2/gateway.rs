//! The param2 gateway: one call from URL to reply, in the platform's order of checks.
//!
//! An unknown app key is refused before anything is counted; every other call, failed ones
//! included, costs the key a call of its daily quota and a place in its rate window, the
//! same budget the seed face spends (one budget per app key, whatever the protocol). Then
//! come the injected faults, the API, the system parameters, the signature, the token, the
//! permission, and last the API's own rules.

use super::reply::{Gw, Reply, Unauthorized};
use super::settings::CROSS_BORDER;
use super::sign::{signature, SIGNATURE_PARAM};
use crate::config::{Account, KeyKind};
use crate::gateway::Wire;
use crate::state::{Sim, Token};
use std::collections::BTreeMap;
use std::time::Duration;

pub type Params = BTreeMap<String, String>;

pub const PRODUCT_NS: &str = "com.alibaba.product";
pub const PRODUCT_LIST: &str = "alibaba.product.list.get";
pub const SELLER_OFFERS: &str = "product.search.querySellerOfferList";
pub const OFFER_DETAIL: &str = "product.search.queryProductDetail";
pub const FOLLOW: &str = "alibaba.product.follow";
pub const PUSH_NS: &str = "cn.alibaba.open";
pub const MESSAGE_LIST: &str = "push.cursor.messageList";
pub const OAUTH_NS: &str = "system.oauth2";
pub const POSTPONE: &str = "postponeToken";

/// The APIs this face serves, all at version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    ProductList,
    SellerOffers,
    OfferDetail,
    PostponeToken,
    Follow,
    MessageList,
}

impl Api {
    fn find(version: &str, namespace: &str, api: &str) -> Option<Api> {
        if version != "1" {
            return None;
        }
        match (namespace, api) {
            (PRODUCT_NS, PRODUCT_LIST) => Some(Api::ProductList),
            (CROSS_BORDER, SELLER_OFFERS) => Some(Api::SellerOffers),
            (CROSS_BORDER, OFFER_DETAIL) => Some(Api::OfferDetail),
            (OAUTH_NS, POSTPONE) => Some(Api::PostponeToken),
            (PRODUCT_NS, FOLLOW) => Some(Api::Follow),
            (PUSH_NS, MESSAGE_LIST) => Some(Api::MessageList),
            _ => None,
        }
    }

    /// The counters' label: `namespace:api`.
    fn label(self) -> String {
        let (ns, api) = match self {
            Api::ProductList => (PRODUCT_NS, PRODUCT_LIST),
            Api::SellerOffers => (CROSS_BORDER, SELLER_OFFERS),
            Api::OfferDetail => (CROSS_BORDER, OFFER_DETAIL),
            Api::PostponeToken => (OAUTH_NS, POSTPONE),
            Api::Follow => (PRODUCT_NS, FOLLOW),
            Api::MessageList => (PUSH_NS, MESSAGE_LIST),
        };
        format!("param2:{ns}:{api}")
    }

    /// APIs that act for a member (their own shop, their own token) need a user token
    /// whatever the account; the others only where the account uses OAuth.
    fn needs_member(self) -> bool {
        matches!(self, Api::ProductList | Api::PostponeToken)
    }

    /// APIs that need no authorization at all: `access_token` is optional whatever the
    /// account, and one given is not looked at.
    fn authorized(self) -> bool {
        !matches!(self, Api::MessageList)
    }
}

/// One param2 call as the router hands it over.
pub struct Call<'a> {
    /// The path from `param2/` on, exactly as requested: what the client signed.
    pub url_path: &'a str,
    pub version: &'a str,
    pub namespace: &'a str,
    pub api: &'a str,
    pub app_key: &'a str,
    pub params: Params,
}

/// What a handler learns from the checks: who calls, and for whom.
pub struct Caller {
    pub account: Account,
    /// The valid token the call carried, if any.
    pub token: Option<(String, Token)>,
}

impl Sim {
    /// Handles one param2 call end to end, faults included.
    pub async fn param2(&self, call: Call<'_>) -> Wire {
        let api = Api::find(call.version, call.namespace, call.api);
        let label = api.map_or_else(|| "param2:unknown".to_string(), Api::label);
        let reply = self.param2_reply(&call, api).await;
        let outcome = reply.outcome();
        let served_ok = outcome == "ok";
        let request_id = format!("{:x}", crate::time::wall_ms());
        let mut wire = reply.render(&request_id);
        let truncate = wire.status == 200 && self.roll(self.faults().truncated);
        let listed_member = (served_ok && !truncate && api == Some(Api::ProductList))
            .then(|| call.params.get("access_token").and_then(|t| self.tokens().get(t)?.member_id.clone()))
            .flatten();
        {
            let mut t = self.traffic();
            t.outcome(&label, &outcome);
            if truncate {
                t.outcome(&label, "truncated");
            }
            if let Some(member) = listed_member {
                t.list_page_served(&super::product_list::page_key(&member, &call.params));
            }
        }
        if truncate && wire.body.len() > 2 {
            // A body cut off mid-way: the connection dropped behind a proxy.
            let cut = 1 + self.dice(wire.body.len() - 2);
            wire.body.truncate(cut);
        }
        wire
    }

    async fn param2_reply(&self, call: &Call<'_>, api: Option<Api>) -> Reply {
        let limits = self.limits();
        let faults = self.faults();
        let Some(account) = self.account(call.app_key) else {
            return Reply::gw(Gw::AppKeyNotFound, format!("AppKey {} is not found", call.app_key));
        };
        let now = self.now_ms();
        if !self.traffic().spend_quota(call.app_key, now, self.quota_of(&account), limits.quota_day_ms) {
            return Reply::gw(Gw::NoUsageLeftError, "No usage left for this app today");
        }
        if !self.traffic().admit(call.app_key, now, limits.rate_per_sec) {
            return Reply::gw(Gw::QosAppFrequencyLimit, "App frequency limited");
        }
        if self.roll(faults.hang) {
            tokio::time::sleep(Duration::from_millis(faults.hang_ms)).await;
        }
        if self.roll(faults.html) {
            return Reply::Html(if self.roll(0.5) { 502 } else { 503 });
        }
        if self.roll(faults.throttle) {
            self.traffic().throttle_injected(call.app_key);
            return Reply::gw(Gw::QosAppFrequencyLimit, "App frequency limited");
        }
        if self.roll(faults.busy) {
            return Reply::gw(Gw::ServiceUnavailable, "Service unavailable, please try again later");
        }
        let Some(api) = api else {
            return Reply::gw(
                Gw::APIUnsupported,
                format!("API {}:{}-{} is not supported", call.namespace, call.api, call.version),
            );
        };
        let p = &call.params;
        if let Some(r) = self.check_param2_system(call, &account, now, limits.max_skew_ms) {
            return r;
        }
        let token = match self.check_param2_token(p, &account, api, now) {
            Ok(t) => t,
            Err(r) => return r,
        };
        let settings = self.param2_state().settings.clone();
        let cross_border_refused = call.namespace == CROSS_BORDER
            && account.kind == KeyKind::Test
            && !settings.test_keys_cross_border;
        if cross_border_refused || settings.denies(call.app_key, call.namespace, call.api) {
            return Reply::gw(
                Gw::APIACLDecline,
                format!("App {} has no permission for {}:{}", call.app_key, call.namespace, call.api),
            );
        }
        let caller = Caller { account, token };
        match api {
            Api::ProductList => self.product_list(p, &caller, &limits, &settings).await,
            Api::SellerOffers => self.seller_offers(p, &settings),
            Api::OfferDetail => self.offer_detail(p),
            Api::PostponeToken => self.postpone_token(p, &caller, now),
            Api::Follow => self.follow(p, call.app_key),
            Api::MessageList => self.message_list(p, call.app_key),
        }
    }

    /// `_aop_signature` and `_aop_timestamp`: `None` when both are right.
    fn check_param2_system(
        &self,
        call: &Call<'_>,
        account: &Account,
        now: i64,
        max_skew_ms: i64,
    ) -> Option<Reply> {
        let p = &call.params;
        let Some(sig) = p.get(SIGNATURE_PARAM) else {
            return Some(Reply::gw(Gw::ParamMissing, "Param _aop_signature is missing"));
        };
        let Some(ts) = p.get("_aop_timestamp") else {
            return Some(Reply::gw(Gw::ParamMissing, "Param _aop_timestamp is missing"));
        };
        // 13 digits, as on the seed face: a 10-digit (seconds) value is the classic mistake.
        let ts_ms =
            (ts.len() == 13 && ts.bytes().all(|b| b.is_ascii_digit())).then(|| ts.parse::<i64>().ok());
        match ts_ms.flatten() {
            None => {
                return Some(Reply::gw(
                    Gw::ParamInvalid,
                    "Param _aop_timestamp must be 13-digit milliseconds",
                ))
            }
            Some(t) if (t - now).abs() > max_skew_ms => {
                return Some(Reply::gw(
                    Gw::ParamInvalid,
                    "Param _aop_timestamp is too far from the server time",
                ))
            }
            Some(_) => {}
        }
        // Compared as text: a lowercase hex signature is refused, as the SDKs all send upper.
        if signature(call.url_path, p, &account.app_secret) != *sig {
            return Some(Reply::gw(Gw::SignatureInvalid, "Request signature is invalid"));
        }
        None
    }

    /// The token rules: OAuth accounts carry a valid token on every call but those of the
    /// APIs that need no authorization, and the APIs that act for a member need one that
    /// speaks for a member whatever the account.
    fn check_param2_token(
        &self,
        p: &Params,
        account: &Account,
        api: Api,
        now: i64,
    ) -> Result<Option<(String, Token)>, Reply> {
        if !api.authorized() {
            return Ok(None);
        }
        let needed = account.oauth || api.needs_member();
        let Some(given) = p.get("access_token") else {
            return if needed { Err(Reply::Unauthorized(Unauthorized::Missing)) } else { Ok(None) };
        };
        let known = self.tokens().get(given).cloned().filter(|t| t.app_key == account.app_key);
        match known {
            Some(t) if t.expires_ms <= now => Err(Reply::Unauthorized(Unauthorized::Expired)),
            Some(t) if api.needs_member() && t.member_id.is_none() => {
                Err(Reply::Unauthorized(Unauthorized::NoMember))
            }
            Some(t) => Ok(Some((given.clone(), t))),
            None if needed => Err(Reply::Unauthorized(Unauthorized::Missing)),
            // A stray token on a call that needs none is ignored, as the gateway does.
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::MutationOp;
    use crate::{Faults, SimSpec};
    use serde_json::{json, Value};

    /// A signed call of `ns:api` by `app_key`, as the SDKs make it.
    async fn call(sim: &Sim, ns: &str, api: &str, app_key: &str, extra: &[(&str, &str)]) -> (u16, Value) {
        let secret = sim.account(app_key).map(|a| a.app_secret).unwrap_or_default();
        let mut params: Params = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        params.insert("_aop_timestamp".into(), sim.now_ms().to_string());
        let url_path = format!("param2/1/{ns}/{api}/{app_key}");
        params.insert(SIGNATURE_PARAM.into(), signature(&url_path, &params, &secret));
        let call = Call { url_path: &url_path, version: "1", namespace: ns, api, app_key, params };
        let wire = sim.param2(call).await;
        (wire.status, serde_json::from_slice(&wire.body).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn follow_and_the_pull_are_routed_checked_and_counted() {
        let sim = Sim::new(SimSpec { items: 10, faults: Faults::none(), ..Default::default() });
        sim.push_book().settings.url = Some("http://127.0.0.1:9/cb".into());
        let (member, id) = {
            let cat = sim.catalogue();
            (cat.shops[0].member_id.clone(), cat.shops[0].online_id_at(0).unwrap().to_string())
        };
        // The push app (10000003) uses OAuth: following needs its token, as any call does.
        let (status, _) = call(&sim, PRODUCT_NS, FOLLOW, "10000003", &[("productId", &id)]).await;
        assert_eq!(status, 401);
        let token =
            Token { app_key: "10000003".into(), expires_ms: sim.now_ms() + 3_600_000, member_id: None };
        sim.tokens().insert("t".into(), token);
        let (status, v) =
            call(&sim, PRODUCT_NS, FOLLOW, "10000003", &[("productId", &id), ("access_token", "t")]).await;
        assert_eq!((status, v), (200, json!({"code": 0, "message": "success"})));
        // An account without OAuth needs no token, and no member token in any case.
        let (status, v) = call(&sim, PRODUCT_NS, FOLLOW, "10000001", &[("productId", "1")]).await;
        assert_eq!((status, v), (200, json!({"code": 1, "message": "product not exist"})));
        let (status, v) = call(&sim, PRODUCT_NS, FOLLOW, "10000001", &[]).await;
        assert_eq!((status, v["error_code"].as_str()), (400, Some("gw.ParamMissing")));

        sim.push_change(&member, MutationOp::Update, std::slice::from_ref(&id));
        sim.give_up_queued();
        // The pull needs no token, even from the OAuth account.
        let (status, v) = call(&sim, PUSH_NS, MESSAGE_LIST, "10000003", &[]).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["pushMessageList"].as_array().map(Vec::len), Some(1), "{v}");
        assert_eq!(v["pushMessageList"][0]["data"]["productIds"], id.as_str());
        let (status, v) = call(&sim, PUSH_NS, MESSAGE_LIST, "10000003", &[("quantity", "10")]).await;
        assert_eq!((status, v["errorCode"].as_str()), (200, Some("400")));

        let c = sim.counters();
        let count = |label: &str, outcome: &str| c.methods.get(label).and_then(|m| m.get(outcome)).copied();
        let follow = "param2:com.alibaba.product:alibaba.product.follow";
        assert_eq!(count(follow, "401"), Some(1));
        assert_eq!(count(follow, "ok"), Some(1));
        assert_eq!(count(follow, "business:1"), Some(1));
        assert_eq!(count(follow, "gw.ParamMissing"), Some(1));
        let pull = "param2:cn.alibaba.open:push.cursor.messageList";
        assert_eq!((count(pull, "ok"), count(pull, "business:400")), (Some(1), Some(1)));
        assert_eq!(c.accounts.get("10000003").map(|a| a.quota_used_today), Some(4), "each call costs quota");
    }
}
