//! How a param2 request looks on the wire: which namespace and version each API lives under,
//! the URL, the system parameters, how structured parameters are written, and the signature.
//!
//! Sources (see `docs/platform.md`, "The production platform (param2)"): the official Python
//! SDK `aop/api/base.py` (URL shape, `_aop_timestamp`, `access_token`, `_aop_signature`, POST
//! form), the platform's signature page as quoted by that SDK (the test vectors), and the
//! generated parameter classes of each API (namespace, version, parameter names).

use crate::secret::Secret;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The production gateway's root; every param2 URL continues from here.
pub const DEFAULT_ROOT: &str = "https://gw.open.1688.com/openapi/";

/// One API of the platform: `<namespace>:<name>:<version>` in the platform's own notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRef {
    pub namespace: &'static str,
    pub name: &'static str,
    pub version: u32,
}

/// `com.alibaba.product:alibaba.product.list.get:1`: one's own (or an authorizing seller's)
/// products, filtered by modification time.
pub const PRODUCT_LIST: ApiRef =
    ApiRef { namespace: "com.alibaba.product", name: "alibaba.product.list.get", version: 1 };
/// `com.alibaba.fenxiao.crossborder:product.search.querySellerOfferList:1`: any seller's
/// offers, by `sellerOpenId`, without a time filter (cross-border solution permission).
pub const SELLER_OFFERS: ApiRef = ApiRef {
    namespace: "com.alibaba.fenxiao.crossborder",
    name: "product.search.querySellerOfferList",
    version: 1,
};
/// `com.alibaba.fenxiao.crossborder:product.search.queryProductDetail:1`: one offer in full.
pub const OFFER_DETAIL: ApiRef = ApiRef {
    namespace: "com.alibaba.fenxiao.crossborder",
    name: "product.search.queryProductDetail",
    version: 1,
};

/// `com.alibaba.product:alibaba.product.follow:1`: the app follows one offer (`productId`),
/// so that its changes produce messages (bububa/go1688 `product/follow.go`; the answer is
/// `{"code": 0, "message"}`, code 0 meaning success).
pub const FOLLOW: ApiRef =
    ApiRef { namespace: "com.alibaba.product", name: "alibaba.product.follow", version: 1 };
/// `cn.alibaba.open:push.cursor.messageList:1`: the messages the platform could not deliver,
/// oldest first; what it returns counts as consumed (the API's doc page; the generated Java
/// class `PushCursorMessageListResult` gives the answer's one field, `pushMessageList`).
pub const MESSAGE_LIST: ApiRef =
    ApiRef { namespace: "cn.alibaba.open", name: "push.cursor.messageList", version: 1 };

/// Every API this client calls through [`Client::call`](crate::api::Client::call) under
/// param2. A name not in this table has no param2 request shape here, and the client refuses
/// it before spending quota.
pub const APIS: &[ApiRef] = &[PRODUCT_LIST, SELLER_OFFERS, OFFER_DETAIL, FOLLOW, MESSAGE_LIST];

/// The API named `name`, given either bare (`alibaba.product.list.get`) or with its namespace
/// (`com.alibaba.product:alibaba.product.list.get`).
pub fn lookup(name: &str) -> Option<ApiRef> {
    match name.split_once(':') {
        Some((ns, n)) => APIS.iter().find(|a| a.namespace == ns && a.name == n).copied(),
        None => APIS.iter().find(|a| a.name == name).copied(),
    }
}

/// The gateway root from a configured URL: the part before `param2/`, with a trailing slash,
/// so that a URL copied from a request (or the seed gateway's default) still works as root.
pub fn root(configured: &str) -> String {
    let root = configured.split("param2/").next().unwrap_or(configured);
    if root.ends_with('/') {
        root.to_string()
    } else {
        format!("{root}/")
    }
}

/// The signed part of the URL: `param2/<version>/<namespace>/<name>/<appKey>`.
pub fn url_path(api: &ApiRef, app_key: &str) -> String {
    format!("param2/{}/{}/{}/{app_key}", api.version, api.namespace, api.name)
}

/// The token endpoint, `<root>http/1/system.oauth2/getToken/<appKey>`: under `http/`, not
/// `param2/`, and unsigned.
pub fn token_url(configured_root: &str, app_key: &str) -> String {
    format!("{}http/1/system.oauth2/getToken/{app_key}", root(configured_root))
}

/// A signed request: the URL and its POST form body.
pub struct Request {
    pub url: String,
    pub form: Vec<(String, String)>,
}

/// The form with the values of `access_token` and any secret-looking key replaced: a request
/// can be logged or shown in a test failure without the token.
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let form: Vec<(&str, &str)> = self
            .form
            .iter()
            .map(|(k, v)| (k.as_str(), if is_secret_key(k) { "***" } else { v.as_str() }))
            .collect();
        f.debug_struct("Request").field("url", &self.url).field("form", &form).finish()
    }
}

pub(crate) fn is_secret_key(k: &str) -> bool {
    matches!(k, "access_token" | "refresh_token" | "client_secret")
}

/// Builds the signed request. Empty business values are left out, as the official SDK leaves
/// out every empty parameter before signing: the gateway would otherwise see a parameter the
/// signature does or does not cover depending on the client.
pub fn request(
    root_url: &str,
    api: &ApiRef,
    app_key: &str,
    params: &[(String, String)],
    secret: &Secret,
    access_token: Option<&Secret>,
    now_ms: i64,
) -> Request {
    let path = url_path(api, app_key);
    let mut form: Vec<(String, String)> = params.iter().filter(|(_, v)| !v.is_empty()).cloned().collect();
    // 13 digits, milliseconds, like the SDK's `int(time.time() * 1000)`.
    form.push(("_aop_timestamp".into(), now_ms.to_string()));
    if let Some(t) = access_token {
        form.push(("access_token".into(), t.expose().to_string()));
    }
    let sig = signature(&path, &form, secret);
    form.push(("_aop_signature".into(), sig));
    Request { url: format!("{}{path}", root(root_url)), form }
}

/// `UPPER(HEX(HMAC-SHA1(secret, path + concat)))`, where `concat` is every `key + value`
/// string **sorted as strings**, not by key: with `page=z` and `pageSize=20` the key order
/// would put `page` first, the string order puts `pageSize20` before `pagez`.
pub fn signature(path: &str, params: &[(String, String)], secret: &Secret) -> String {
    let mut pieces: Vec<String> =
        params.iter().filter(|(k, _)| k != "_aop_signature").map(|(k, v)| format!("{k}{v}")).collect();
    pieces.sort();
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty signature
    // (which the gateway rejects) rather than panic.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.expose().as_bytes()) else {
        return String::new();
    };
    mac.update(path.as_bytes());
    for p in &pieces {
        mac.update(p.as_bytes());
    }
    hex::encode_upper(mac.finalize().into_bytes())
}

/// A list parameter (`statusList`, `productIds`) is sent as a JSON array in one form value.
pub fn json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// An object parameter (`offerQueryParam`, `offerDetailParam`) is sent as a JSON object in
/// one form value.
pub fn json_object(v: &serde_json::Value) -> String {
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    // The official vectors, from the platform's signature page (open.1688.com
    // `api/sysSignature.htm`, referenced by `aop/api/base.py`).
    #[test]
    fn official_vector() {
        let s = Secret::new("test123");
        let path = "param2/1/system/currentTime/1000000";
        assert_eq!(
            signature(path, &pairs(&[("b", "2"), ("a", "1")]), &s),
            "33E54F4F7B989E3E0E912D3FBD2F1A03CA7CCE88"
        );
    }

    #[test]
    fn sorts_strings_not_keys() {
        let s = Secret::new("test123");
        let path = "param2/1/system/currentTime/1000000";
        assert_eq!(
            signature(path, &pairs(&[("page", "z"), ("pageSize", "20")]), &s),
            "7CEC92131FB0F372DA045332B8B41A719BAD2BE8"
        );
    }

    #[test]
    fn url_puts_namespace_api_and_key_in_the_path() {
        let secret = Secret::new("s");
        let r = request(DEFAULT_ROOT, &PRODUCT_LIST, "1000000", &[], &secret, None, 1_700_000_000_000);
        assert_eq!(
            r.url,
            "https://gw.open.1688.com/openapi/param2/1/com.alibaba.product/alibaba.product.list.get/1000000"
        );
        let r = request("http://127.0.0.1:8688/openapi", &SELLER_OFFERS, "k", &[], &secret, None, 1);
        assert_eq!(
            r.url,
            "http://127.0.0.1:8688/openapi/param2/1/com.alibaba.fenxiao.crossborder/product.search.querySellerOfferList/k"
        );
        // The seed gateway's default URL still yields the right root.
        assert_eq!(
            root("https://gw.open.1688.com/openapi/param2/2/portals.open/api/"),
            "https://gw.open.1688.com/openapi/"
        );
        assert_eq!(
            token_url(DEFAULT_ROOT, "1000000"),
            "https://gw.open.1688.com/openapi/http/1/system.oauth2/getToken/1000000"
        );
    }

    #[test]
    fn request_signs_timestamp_and_token_and_drops_empty_values() {
        let secret = Secret::new("s");
        let token = Secret::new("tok-123");
        let params = pairs(&[("pageNo", "1"), ("categoryId", "")]);
        let r = request(DEFAULT_ROOT, &PRODUCT_LIST, "k", &params, &secret, Some(&token), 1_700_000_000_000);
        let get = |k: &str| r.form.iter().find(|p| p.0 == k).map(|p| p.1.clone());
        assert_eq!(get("_aop_timestamp").as_deref(), Some("1700000000000"));
        assert_eq!(get("access_token").as_deref(), Some("tok-123"));
        assert_eq!(get("categoryId"), None);
        let unsigned: Vec<_> = r.form.iter().filter(|p| p.0 != "_aop_signature").cloned().collect();
        let path = "param2/1/com.alibaba.product/alibaba.product.list.get/k";
        assert_eq!(get("_aop_signature"), Some(signature(path, &unsigned, &secret)));
        let shown = format!("{r:?}");
        assert!(!shown.contains("tok-123") && shown.contains("***"), "{shown}");
    }

    #[test]
    fn lookup_takes_bare_or_namespaced_names() {
        assert_eq!(lookup("alibaba.product.list.get"), Some(PRODUCT_LIST));
        assert_eq!(
            lookup("com.alibaba.fenxiao.crossborder:product.search.queryProductDetail"),
            Some(OFFER_DETAIL)
        );
        assert_eq!(lookup("com.alibaba.trade:alibaba.product.list.get"), None);
        assert_eq!(lookup("alibaba.seller.cats.list.get"), None);
        assert_eq!(json_list(&["published"]), r#"["published"]"#);
        assert_eq!(json_list(&[601u64, 602]), "[601,602]");
    }
}
