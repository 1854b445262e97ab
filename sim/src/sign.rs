//! The gateway's signature rules (contract section 2), as the server checks them.
//!
//! This is a separate implementation from the client's on purpose: the simulator is the
//! reference the client is tested against, so the two must not share a bug.

use md5::{Digest, Md5};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha1::Sha1;
use std::collections::BTreeMap;

/// Everything but `A-Z a-z 0-9 - _ . ~` is percent-encoded, with uppercase hex.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The md5 method's joined string: `k=ENC(v)` sorted by key, joined with `&`, `sign` left out.
pub fn md5_joined(params: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (k, v) in params.iter().filter(|(k, _)| *k != "sign") {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.extend(utf8_percent_encode(v, ENCODE));
    }
    out
}

/// `UPPER(HEX(MD5(secret + joined + secret)))`
pub fn md5_sign(params: &BTreeMap<String, String>, secret: &str) -> String {
    let mut h = Md5::new();
    h.update(secret.as_bytes());
    h.update(md5_joined(params).as_bytes());
    h.update(secret.as_bytes());
    hex::encode_upper(h.finalize())
}

/// `UPPER(HEX(SHA1(secret + k1 + v1 + ... + secret)))`, raw values.
pub fn sha1_sign(params: &BTreeMap<String, String>, secret: &str) -> String {
    let mut h = Sha1::new();
    h.update(secret.as_bytes());
    for (k, v) in params.iter().filter(|(k, _)| *k != "sign") {
        h.update(k.as_bytes());
        h.update(v.as_bytes());
    }
    h.update(secret.as_bytes());
    hex::encode_upper(h.finalize())
}

/// Signs `params` the way a correct client would (used by the benchmark's load generator).
pub fn sign(params: &BTreeMap<String, String>, secret: &str) -> String {
    match params.get("sign_method").map(String::as_str) {
        Some("sha1") => sha1_sign(params, secret),
        _ => md5_sign(params, secret),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector() -> BTreeMap<String, String> {
        [
            ("app_key", "12345"),
            ("method", "alibaba.shop.get"),
            ("timestamp", "1700000000000"),
            ("format", "json"),
            ("v", "2.0"),
            ("shop_url", "https://shop12345678.1688.com/page/店铺.html"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn md5_matches_contract_vector() {
        let p = vector();
        assert_eq!(
            md5_joined(&p),
            "app_key=12345&format=json&method=alibaba.shop.get&shop_url=https%3A%2F%2Fshop12345678.1688.com%2Fpage%2F%E5%BA%97%E9%93%BA.html&timestamp=1700000000000&v=2.0"
        );
        assert_eq!(md5_sign(&p, "s3cr3t"), "0215BAD94052E1358ADC677DC57F66CD");
    }

    #[test]
    fn sha1_matches_contract_vector() {
        let mut p = vector();
        p.insert("sign_method".into(), "sha1".into());
        assert_eq!(sha1_sign(&p, "s3cr3t"), "F63AE4101105E55AD0327D9A944FE11D92487198");
    }
}
