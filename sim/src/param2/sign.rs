//! `_aop_signature`, the param2 signature (contract section 7), as the server checks it.
//!
//! Written apart from the client's signer on purpose, HMAC included: the simulator is the
//! reference the client is tested against, so the two must not share a bug.

use sha1::{Digest, Sha1};
use std::collections::BTreeMap;

/// The parameter that carries the signature; it is the one parameter left out of the message.
pub const SIGNATURE_PARAM: &str = "_aop_signature";

/// HMAC-SHA1 (RFC 2104) over SHA-1's 64-byte block.
pub fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let inner = Sha1::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha1::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// The signed message: the URL path from `param2/` on, then every other parameter as
/// `key + value`, those strings sorted. Sorting the joined strings rather than the keys
/// matters when one key is a prefix of another (`page=z` sorts after `pageSize=20` as
/// `pagez` > `pageSize20`, while the key `page` sorts first).
pub fn message(url_path: &str, params: &BTreeMap<String, String>) -> String {
    let mut pairs: Vec<String> =
        params.iter().filter(|(k, _)| *k != SIGNATURE_PARAM).map(|(k, v)| format!("{k}{v}")).collect();
    pairs.sort_unstable();
    let mut out = String::from(url_path);
    for p in pairs {
        out.push_str(&p);
    }
    out
}

/// `UPPER(HEX(HMAC-SHA1(secret, message)))`
pub fn signature(url_path: &str, params: &BTreeMap<String, String>, secret: &str) -> String {
    hex::encode_upper(hmac_sha1(secret.as_bytes(), message(url_path, params).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const PATH: &str = "param2/1/system/currentTime/1000000";

    #[test]
    fn official_vector() {
        let p = params(&[("b", "2"), ("a", "1")]);
        assert_eq!(message(PATH, &p), "param2/1/system/currentTime/1000000a1b2");
        assert_eq!(signature(PATH, &p, "test123"), "33E54F4F7B989E3E0E912D3FBD2F1A03CA7CCE88");
    }

    #[test]
    fn prefix_keys_sort_by_the_joined_string() {
        let p = params(&[("page", "z"), ("pageSize", "20")]);
        assert_eq!(message(PATH, &p), "param2/1/system/currentTime/1000000pageSize20pagez");
        assert_eq!(signature(PATH, &p, "test123"), "7CEC92131FB0F372DA045332B8B41A719BAD2BE8");
    }

    #[test]
    fn the_signature_itself_is_not_signed() {
        let mut p = params(&[("b", "2"), ("a", "1")]);
        p.insert(SIGNATURE_PARAM.into(), "whatever".into());
        assert_eq!(signature(PATH, &p, "test123"), "33E54F4F7B989E3E0E912D3FBD2F1A03CA7CCE88");
    }

    #[test]
    fn hmac_matches_rfc_2202() {
        // RFC 2202 test cases 2 and 6 (a key longer than the block is hashed first).
        assert_eq!(
            hex::encode(hmac_sha1(b"Jefe", b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex::encode(hmac_sha1(&[0xaa; 80], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
    }
}
