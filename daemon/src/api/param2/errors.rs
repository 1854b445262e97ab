//! Every answer of the param2 gateway, classified into an [`ApiError`] with its retry rule, or
//! the JSON body when the call succeeded.
//!
//! Two layers can say "no":
//!
//! - the **gateway** (before the API runs): an `error_code` of the form `gw.*` with
//!   `error_message`, `exception` and `request_id`, on HTTP 400 (401 for a missing or expired
//!   token). The official Python SDK (`aop/api/base.py`) reads exactly these four keys from
//!   any non-2xx answer; open-source clients also meet them on HTTP 200, so the key decides,
//!   not the status;
//! - the **API** itself, in one of four shapes (open-source clients: `bububa/go1688`
//!   `response.go`, `wzhsh90/go1688` `models/response.go`, and the platform's doc samples):
//!   `{"success": false, "errorCode", "errorMsg"}`, `{"success", "code", "message"}`,
//!   `{"result": {"success", "code", "message", "result"}}`, `{"code": 0, "message"}`.
//!
//! What counts as success: `success` true (a boolean or the string `"true"`) wins over any
//! message beside it (the logistics API answers `{"errorMessage": "…", "success": true}` for
//! "nothing to show"); without `success`, a `code` of `0` (wzhsh90's `resp.Code == 0`),
//! `200` (the cross-border doc samples) or `success` is success and any other code an error;
//! a non-empty `errorCode` is an error (bububa's `IsError`).

use crate::api::ApiError;
use serde_json::{Map, Value};

/// Longest platform message kept in an error: enough to read, too short to carry a body.
const MAX_MSG: usize = 300;

/// Turns one HTTP answer to a call of `api` into its JSON body or the matching error.
pub fn classify(api: &str, status: u16, html: bool, body: &[u8]) -> Result<Value, ApiError> {
    if html || body.trim_ascii_start().starts_with(b"<") {
        return Err(ApiError::Html { status });
    }
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) if status == 401 => return Err(ApiError::Token { sub_code: "HTTP 401".into() }),
        Err(_) if status == 429 => return Err(ApiError::Throttled),
        Err(e) => return Err(ApiError::Truncated { status, len: body.len(), detail: e.to_string() }),
    };
    let Some(obj) = v.as_object() else {
        if status >= 400 {
            return Err(http_error(status, String::new()));
        }
        return Err(ApiError::Malformed(format!("{api}: the answer is JSON but not an object")));
    };
    if let Some(code) = text(obj, &["error_code"]).filter(|c| !c.is_empty()) {
        let msg = text(obj, &["error_message", "exception"]).unwrap_or_default();
        return Err(gateway(api, status, &code, clip(msg)));
    }
    if status == 401 {
        return Err(ApiError::Token { sub_code: "HTTP 401".into() });
    }
    if status == 429 {
        return Err(ApiError::Throttled);
    }
    if status >= 400 {
        return Err(http_error(status, clip(message(obj).unwrap_or_default())));
    }
    business(obj)?;
    if let Some(inner) = obj.get("result").and_then(Value::as_object) {
        business(inner)?;
    }
    Ok(v)
}

/// A gateway `error_code`.
fn gateway(api: &str, status: u16, code: &str, msg: String) -> ApiError {
    match code {
        "gw.QosAppFrequencyLimit" => ApiError::Throttled,
        // The account name and reset time are filled in by the client, which knows them.
        "gw.NoUsageLeftError" => ApiError::QuotaExhausted { account: String::new(), until_ms: 0 },
        "gw.APIACLDecline" => ApiError::ApiNotGranted { api: api.to_string() },
        "gw.SignatureInvalid" => ApiError::BadSignature,
        _ if status == 401 => ApiError::Token { sub_code: code.to_string() },
        // gw.APIUnsupported, gw.ParamMissing, gw.AppKeyNotFound and codes nobody has
        // documented: a bug or a setup problem, not something a retry fixes (an HTTP 5xx
        // excepted, see `ApiError::retry`).
        _ => ApiError::Platform { status, code: code.to_string(), msg },
    }
}

fn http_error(status: u16, msg: String) -> ApiError {
    let msg = if msg.is_empty() { "HTTP error without an error_code".to_string() } else { msg };
    ApiError::Platform { status, code: format!("HTTP {status}"), msg }
}

/// One level of a business answer: `Err` when it says the call failed.
fn business(obj: &Map<String, Value>) -> Result<(), ApiError> {
    let code = || text(obj, &["errorCode", "code", "error_code"]).unwrap_or_default();
    let fail = || ApiError::Business { code: code(), msg: clip(message(obj).unwrap_or_default()) };
    match obj.get("success") {
        Some(Value::Bool(true)) => return Ok(()),
        Some(Value::Bool(false)) => return Err(fail()),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => return Ok(()),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => return Err(fail()),
        _ => {}
    }
    if text(obj, &["errorCode"]).is_some_and(|c| !c.is_empty()) {
        return Err(fail());
    }
    match text(obj, &["code"]) {
        None => Ok(()),
        Some(c) if matches!(c.trim(), "0" | "200") || c.trim().eq_ignore_ascii_case("success") => Ok(()),
        Some(_) => Err(fail()),
    }
}

/// The first of `keys` that holds a string or a number, as text.
fn text(obj: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match obj.get(*k) {
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

fn message(obj: &Map<String, Value>) -> Option<String> {
    text(obj, &["errorMsg", "message", "errorMessage", "error_message", "msg"]).filter(|m| !m.is_empty())
}

fn clip(mut s: String) -> String {
    if s.len() > MAX_MSG {
        let mut end = MAX_MSG;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::fixtures as fx;
    use super::*;
    use crate::api::Retry;

    const API: &str = "alibaba.product.list.get";

    fn err(status: u16, body: &str) -> ApiError {
        match classify(API, status, false, body.as_bytes()) {
            Ok(v) => panic!("expected an error for {body}, got {v}"),
            Err(e) => e,
        }
    }

    #[test]
    fn gateway_rate_limit_is_throttled() {
        let e = err(400, fx::GW_QOS_LIMIT);
        assert_eq!((e.kind(), e.retry()), ("throttled", Retry::AfterThrottle));
        // Clients also meet it on HTTP 200.
        assert_eq!(err(200, fx::GW_QOS_LIMIT).kind(), "throttled");
    }

    #[test]
    fn gateway_no_usage_left_is_the_quota() {
        let e = err(400, fx::GW_NO_USAGE_LEFT);
        assert_eq!((e.kind(), e.retry()), ("quota", Retry::NextQuotaDay));
    }

    #[test]
    fn gateway_acl_decline_says_the_app_lacks_the_api() {
        let e = err(400, fx::GW_ACL_DECLINE);
        assert_eq!((e.kind(), e.retry()), ("permission", Retry::Never));
        let text = e.to_string();
        assert!(text.contains("not allowed to call alibaba.product.list.get"), "{text}");
        assert!(text.contains("gw.APIACLDecline"), "{text}");
    }

    #[test]
    fn gateway_signature_and_setup_errors_are_never_retried() {
        let e = err(
            400,
            r#"{"error_code":"gw.SignatureInvalid","error_message":"Invalid signature","request_id":"0bb3"}"#,
        );
        assert_eq!((e.kind(), e.retry()), ("bad_signature", Retry::Never));
        for code in ["gw.APIUnsupported", "gw.ParamMissing", "gw.AppKeyNotFound", "gw.SomethingNew"] {
            let body =
                format!(r#"{{"error_code":"{code}","error_message":"m","exception":"m","request_id":"1"}}"#);
            let e = err(400, &body);
            assert_eq!((e.kind(), e.retry()), ("platform", Retry::Never), "{code}");
            assert!(e.to_string().contains(code), "{e}");
        }
        // The same unknown code on a 5xx is the gateway's trouble: retried.
        assert_eq!(err(503, r#"{"error_code":"gw.Busy"}"#).retry(), Retry::AfterFailure);
    }

    #[test]
    fn http_401_is_a_token_to_refresh_once() {
        for body in [r#"{"error_code":"401","error_message":"Request need user authorized"}"#, "", "{}"] {
            let e = err(401, body);
            assert_eq!((e.kind(), e.retry()), ("token", Retry::RefreshToken), "{body:?}");
        }
    }

    #[test]
    fn html_and_cut_off_bodies_are_retried_as_on_the_seed_gateway() {
        assert_eq!(err(502, "<html><body>502 Bad Gateway</body></html>").kind(), "html");
        let e = err(200, &fx::PRODUCT_LIST_PAGE[..120]);
        assert_eq!((e.kind(), e.retry()), ("truncated", Retry::AfterFailure));
        assert_eq!(err(429, "").kind(), "throttled");
        assert_eq!(err(500, "{}").retry(), Retry::AfterFailure);
        assert_eq!(err(404, "{}").retry(), Retry::Never);
    }

    #[test]
    fn business_error_shapes() {
        // {"success": false, "errorCode", "errorMsg"}
        let e = err(200, r#"{"success":false,"errorCode":"ISV.PARAM_ERROR","errorMsg":"pageSize 超出范围"}"#);
        assert_eq!((e.kind(), e.retry()), ("business", Retry::Never));
        assert!(e.to_string().contains("ISV.PARAM_ERROR") && e.to_string().contains("pageSize"), "{e}");
        // {"success", "code", "message"}, success as a string
        let e = err(200, fx::BIZ_SUCCESS_FALSE_CODE);
        assert!(e.to_string().contains("500") && e.to_string().contains("不是自己的订单"), "{e}");
        assert_eq!(err(200, r#"{"success":"false","code":"E1","message":"m"}"#).kind(), "business");
        // {"result": {"success", "code", "message"}}
        let e = err(200, r#"{"result":{"success":false,"code":"500","message":"系统异常","result":null}}"#);
        assert!(e.to_string().contains("系统异常"), "{e}");
        // {"code": N, "message"} without success
        let e = err(200, r#"{"code":1001,"message":"商品不存在"}"#);
        assert!(e.to_string().contains("1001"), "{e}");
        // An errorCode alone
        assert_eq!(err(200, r#"{"errorCode":"X","errorMsg":"y"}"#).kind(), "business");
    }

    #[test]
    fn business_success_shapes() {
        let ok = |b: &str| classify(API, 200, false, b.as_bytes()).map_err(|e| e.to_string());
        assert!(ok(r#"{"code":0,"message":"成功"}"#).is_ok());
        assert!(ok(r#"{"code":"200","message":"成功","result":{}}"#).is_ok());
        assert!(ok(fx::BIZ_SUCCESS_WITH_ERROR_MESSAGE).is_ok());
        assert!(ok(fx::PRODUCT_LIST_PAGE).is_ok());
        assert!(ok(fx::SELLER_OFFERS_PAGE).is_ok());
        assert!(ok(fx::OFFER_DETAIL).is_ok());
        assert!(ok(r#"{"result":{"success":"true","code":"200","result":{}}}"#).is_ok());
        // Success outside, failure inside: the inner answer is the API's.
        assert!(ok(r#"{"success":true,"result":{"success":false,"code":"E","message":"m"}}"#).is_err());
    }

    #[test]
    fn only_unknown_json_is_malformed() {
        assert_eq!(err(200, "[1,2]").kind(), "malformed");
        assert_eq!(err(200, "\"text\"").kind(), "malformed");
    }

    #[test]
    fn long_messages_are_clipped() {
        let long = "错".repeat(400);
        let body = format!(r#"{{"success":false,"errorCode":"E","errorMsg":"{long}"}}"#);
        assert!(err(200, &body).to_string().len() < 400 * 3);
    }
}
