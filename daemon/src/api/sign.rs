//! The one seam where requests are shaped and signed.
//!
//! Two protocols live behind [`Protocol`]: the TOP-style gateway of the contract (a `method`
//! parameter, md5 or sha1 signatures over every parameter) that sim1688 speaks, and the real
//! platform's `param2` (the API in the URL path, HMAC-SHA1 `_aop_signature`). Switching is a
//! config value, not a rewrite.

use crate::secret::Secret;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha1::Sha1;

/// The contract's encoding: everything but `A-Z a-z 0-9 - _ . ~` is percent-encoded with
/// uppercase hex. A client that uses `+` for space, or leaves `,` or `:` alone, signs ASCII
/// requests correctly and fails with 10002 the first time a value holds Chinese text.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignMethod {
    #[default]
    Md5,
    Sha1,
}

/// How requests are addressed and signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// The contract's gateway: one URL, `method` as a parameter.
    Top(SignMethod),
    /// The real platform: `.../param2/<version>/<namespace>/<api>/<appKey>`.
    Param2 { version: String, namespace: String },
}

/// Who signs: the account's key, secret and (for OAuth accounts) access token.
pub struct Credentials<'a> {
    pub app_key: &'a str,
    pub secret: &'a Secret,
    pub access_token: Option<&'a Secret>,
}

/// A request ready to send: where, and the form body (signature included).
#[derive(Debug)]
pub struct Prepared {
    pub url: String,
    pub form: Vec<(String, String)>,
}

impl Protocol {
    /// Builds the signed request for `method` with its business parameters. Parameters
    /// whose value is absent are simply not in `params`; an empty string is present and signed.
    pub fn prepare(
        &self,
        base_url: &str,
        method: &str,
        params: &[(String, String)],
        creds: &Credentials<'_>,
        now_ms: i64,
    ) -> Prepared {
        match self {
            Protocol::Top(sign_method) => {
                let mut form: Vec<(String, String)> = params.to_vec();
                let system = [
                    ("method", method.to_string()),
                    ("app_key", creds.app_key.to_string()),
                    // 13 digits: a 10-digit (seconds) value is rejected with 1001.
                    ("timestamp", now_ms.to_string()),
                    ("format", "json".to_string()),
                    ("v", "2.0".to_string()),
                ];
                form.extend(system.into_iter().map(|(k, v)| (k.to_string(), v)));
                if *sign_method == SignMethod::Sha1 {
                    form.push(("sign_method".into(), "sha1".into()));
                }
                if let Some(t) = creds.access_token {
                    form.push(("access_token".into(), t.expose().to_string()));
                }
                let sign = match sign_method {
                    SignMethod::Md5 => top_md5(&form, creds.secret),
                    SignMethod::Sha1 => top_sha1(&form, creds.secret),
                };
                form.push(("sign".into(), sign));
                Prepared { url: base_url.to_string(), form }
            }
            Protocol::Param2 { version, namespace } => {
                let path = format!("param2/{version}/{namespace}/{method}/{}", creds.app_key);
                let mut form: Vec<(String, String)> = params.to_vec();
                form.push(("_aop_timestamp".into(), now_ms.to_string()));
                if let Some(t) = creds.access_token {
                    form.push(("access_token".into(), t.expose().to_string()));
                }
                let sig = param2_signature(&path, &form, creds.secret);
                form.push(("_aop_signature".into(), sig));
                let root = base_url.split("param2/").next().unwrap_or(base_url);
                let root = if root.ends_with('/') { root.to_string() } else { format!("{root}/") };
                Prepared { url: format!("{root}{path}"), form }
            }
        }
    }
}

fn sorted(params: &[(String, String)]) -> Vec<&(String, String)> {
    let mut v: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "sign").collect();
    v.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    v
}

/// The md5 method's signed string: `k=ENC(v)` in key byte order, joined with `&`.
pub fn top_md5_joined(params: &[(String, String)]) -> String {
    let parts: Vec<String> =
        sorted(params).iter().map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, ENCODE))).collect();
    parts.join("&")
}

/// `UPPER(HEX(MD5(secret + joined + secret)))`
pub fn top_md5(params: &[(String, String)], secret: &Secret) -> String {
    let mut h = Md5::new();
    h.update(secret.expose());
    h.update(top_md5_joined(params));
    h.update(secret.expose());
    hex::encode_upper(h.finalize())
}

/// `UPPER(HEX(SHA1(secret + k1 + v1 + ... + secret)))`, raw values, no separators.
pub fn top_sha1(params: &[(String, String)], secret: &Secret) -> String {
    let mut h = Sha1::new();
    h.update(secret.expose());
    for (k, v) in sorted(params) {
        h.update(k);
        h.update(v);
    }
    h.update(secret.expose());
    hex::encode_upper(h.finalize())
}

/// `param2`: `UPPER(HEX(HMAC-SHA1(secret, path + concat)))`, where `concat` is every
/// `key + value` string **sorted as strings**, not by key: with `page=z` and `pageSize=20`
/// the key order would put `page` first, the string order puts `pageSize20` before `pagez`.
pub fn param2_signature(path: &str, params: &[(String, String)], secret: &Secret) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn contract_vector() -> Vec<(String, String)> {
        pairs(&[
            ("app_key", "12345"),
            ("method", "alibaba.shop.get"),
            ("timestamp", "1700000000000"),
            ("format", "json"),
            ("v", "2.0"),
            ("shop_url", "https://shop12345678.1688.com/page/店铺.html"),
        ])
    }

    #[test]
    fn md5_contract_vector() {
        let p = contract_vector();
        assert_eq!(
            top_md5_joined(&p),
            "app_key=12345&format=json&method=alibaba.shop.get&shop_url=https%3A%2F%2Fshop12345678.1688.com%2Fpage%2F%E5%BA%97%E9%93%BA.html&timestamp=1700000000000&v=2.0"
        );
        assert_eq!(top_md5(&p, &Secret::new("s3cr3t")), "0215BAD94052E1358ADC677DC57F66CD");
    }

    #[test]
    fn sha1_contract_vector() {
        let mut p = contract_vector();
        p.push(("sign_method".into(), "sha1".into()));
        assert_eq!(top_sha1(&p, &Secret::new("s3cr3t")), "F63AE4101105E55AD0327D9A944FE11D92487198");
    }

    #[test]
    fn encoding_uses_percent_twenty_not_plus() {
        let p = pairs(&[("q", "a b,c:d~e")]);
        assert_eq!(top_md5_joined(&p), "q=a%20b%2Cc%3Ad~e");
    }

    #[test]
    fn param2_official_vector() {
        let s = Secret::new("test123");
        let path = "param2/1/system/currentTime/1000000";
        assert_eq!(
            param2_signature(path, &pairs(&[("b", "2"), ("a", "1")]), &s),
            "33E54F4F7B989E3E0E912D3FBD2F1A03CA7CCE88"
        );
    }

    #[test]
    fn param2_sorts_strings_not_keys() {
        let s = Secret::new("test123");
        let path = "param2/1/system/currentTime/1000000";
        assert_eq!(
            param2_signature(path, &pairs(&[("page", "z"), ("pageSize", "20")]), &s),
            "7CEC92131FB0F372DA045332B8B41A719BAD2BE8"
        );
    }

    #[test]
    fn top_request_carries_system_params_and_signs_the_token() {
        let secret = Secret::new("s");
        let token = Secret::new("tok");
        let creds = Credentials { app_key: "k", secret: &secret, access_token: Some(&token) };
        let prep =
            Protocol::Top(SignMethod::Md5).prepare("http://gw/", "m.x", &[], &creds, 1_700_000_000_000);
        let get = |k: &str| prep.form.iter().find(|p| p.0 == k).map(|p| p.1.clone());
        assert_eq!(get("timestamp").map(|t| t.len()), Some(13));
        assert_eq!(get("access_token").as_deref(), Some("tok"));
        let unsigned: Vec<_> = prep.form.iter().filter(|p| p.0 != "sign").cloned().collect();
        assert_eq!(get("sign"), Some(top_md5(&unsigned, &secret)));
    }

    #[test]
    fn param2_request_puts_api_in_path() {
        let secret = Secret::new("s");
        let creds = Credentials { app_key: "1000000", secret: &secret, access_token: None };
        let proto = Protocol::Param2 { version: "1".into(), namespace: "com.alibaba.product".into() };
        let prep =
            proto.prepare("https://gw.open.1688.com/openapi/", "alibaba.product.list.get", &[], &creds, 1);
        assert_eq!(
            prep.url,
            "https://gw.open.1688.com/openapi/param2/1/com.alibaba.product/alibaba.product.list.get/1000000"
        );
        assert!(prep.form.iter().any(|p| p.0 == "_aop_signature"));
    }
}
