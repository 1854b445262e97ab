//! The one seam where requests are shaped and signed.
//!
//! Two protocols live behind [`Protocol`]: the TOP-style gateway of the contract (a `method`
//! parameter, md5 or sha1 signatures over every parameter) that sim1688 speaks, and the real
//! platform's `param2` (the API in the URL path, HMAC-SHA1 `_aop_signature`), whose wire
//! details all live in `api/param2/`. Switching is a config value, not a rewrite.

use super::error::ApiError;
use super::param2;
use crate::secret::Secret;
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
    /// The contract's gateway ("seed"): one URL, `method` as a parameter.
    Top(SignMethod),
    /// The production platform: `<root>param2/<version>/<namespace>/<api>/<appKey>`, the
    /// namespace and version of each API from the table in `api/param2/wire.rs`.
    Param2,
}

/// Who signs: the account's key, secret and (for OAuth accounts) access token.
pub struct Credentials<'a> {
    pub app_key: &'a str,
    pub secret: &'a Secret,
    pub access_token: Option<&'a Secret>,
}

/// A request ready to send: where, and the form body (signature included).
pub struct Prepared {
    pub url: String,
    pub form: Vec<(String, String)>,
}

/// The access token is a secret: shown as `***`.
impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let form: Vec<(&str, &str)> = self
            .form
            .iter()
            .map(|(k, v)| (k.as_str(), if param2::is_secret_key(k) { "***" } else { v.as_str() }))
            .collect();
        f.debug_struct("Prepared").field("url", &self.url).field("form", &form).finish()
    }
}

impl Protocol {
    /// The name used in config and messages.
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::Top(_) => "seed",
            Protocol::Param2 => "param2",
        }
    }

    /// Whether this protocol has a request shape for `method`; the client refuses the rest
    /// before spending quota on them.
    pub fn supports(&self, method: &str) -> bool {
        match self {
            Protocol::Top(_) => true,
            Protocol::Param2 => param2::lookup(method).is_some(),
        }
    }

    /// Builds the signed request for `method` with its business parameters. Parameters
    /// whose value is absent are simply not in `params`; on the seed gateway an empty string
    /// is present and signed (param2 leaves empty values out, see `param2::request`).
    pub fn prepare(
        &self,
        base_url: &str,
        method: &str,
        params: &[(String, String)],
        creds: &Credentials<'_>,
        now_ms: i64,
    ) -> Result<Prepared, ApiError> {
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
                Ok(Prepared { url: base_url.to_string(), form })
            }
            Protocol::Param2 => {
                let api = param2::lookup(method)
                    .ok_or_else(|| ApiError::Unsupported { call: method.to_string(), protocol: "param2" })?;
                let r = param2::request(
                    base_url,
                    &api,
                    creds.app_key,
                    params,
                    creds.secret,
                    creds.access_token,
                    now_ms,
                );
                Ok(Prepared { url: r.url, form: r.form })
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

/// `param2`'s `_aop_signature` (kept under this name for callers of the seam).
pub use param2::signature as param2_signature;

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
    fn param2_official_vector_through_the_seam() {
        // The vectors themselves are tested in `param2/wire.rs`; this checks the re-export.
        let s = Secret::new("test123");
        let p = pairs(&[("b", "2"), ("a", "1")]);
        assert_eq!(
            param2_signature("param2/1/system/currentTime/1000000", &p, &s),
            "33E54F4F7B989E3E0E912D3FBD2F1A03CA7CCE88"
        );
    }

    #[test]
    fn top_request_carries_system_params_and_signs_the_token() {
        let secret = Secret::new("s");
        let token = Secret::new("tok");
        let creds = Credentials { app_key: "k", secret: &secret, access_token: Some(&token) };
        let prep = Protocol::Top(SignMethod::Md5)
            .prepare("http://gw/", "m.x", &[], &creds, 1_700_000_000_000)
            .expect("the seed gateway takes any method");
        let get = |k: &str| prep.form.iter().find(|p| p.0 == k).map(|p| p.1.clone());
        assert_eq!(get("timestamp").map(|t| t.len()), Some(13));
        assert_eq!(get("access_token").as_deref(), Some("tok"));
        let unsigned: Vec<_> = prep.form.iter().filter(|p| p.0 != "sign").cloned().collect();
        assert_eq!(get("sign"), Some(top_md5(&unsigned, &secret)));
    }

    #[test]
    fn param2_request_puts_api_in_path_and_hides_the_token() {
        let secret = Secret::new("s");
        let token = Secret::new("tok-xyz");
        let creds = Credentials { app_key: "1000000", secret: &secret, access_token: Some(&token) };
        let prep = Protocol::Param2
            .prepare("https://gw.open.1688.com/openapi/", "alibaba.product.list.get", &[], &creds, 1)
            .expect("a known API");
        assert_eq!(
            prep.url,
            "https://gw.open.1688.com/openapi/param2/1/com.alibaba.product/alibaba.product.list.get/1000000"
        );
        assert!(prep.form.iter().any(|p| p.0 == "_aop_signature"));
        assert!(!format!("{prep:?}").contains("tok-xyz"));
        let err = Protocol::Param2.prepare("https://gw/", "alibaba.seller.cats.list.get", &[], &creds, 1);
        assert_eq!(err.map(|_| ()).map_err(|e| e.kind()), Err("unsupported"));
        assert!(!Protocol::Param2.supports("alibaba.shop.get"));
    }
}
