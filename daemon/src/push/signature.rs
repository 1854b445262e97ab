//! A change message's signature: `_aop_signature` = `UPPER(HEX(HMAC-SHA1(appSecret,
//! "message" + message)))`, the form field's name and its raw value. That is the request
//! signature of the gateway with an empty path and one parameter, so the gateway's signer
//! computes it.

use crate::api::param2_signature;
use crate::secret::Secret;

/// The name of the form field that carries the message (and the one signed parameter).
pub const MESSAGE_FIELD: &str = "message";
/// The name of the form field that carries the signature.
pub const SIGNATURE_FIELD: &str = "_aop_signature";

/// The signature the platform puts on `message`.
pub fn sign(message: &str, secret: &Secret) -> String {
    param2_signature("", &[(MESSAGE_FIELD.to_string(), message.to_string())], secret)
}

/// Whether `given` is the signature of `message`. Compared in constant time, so that how
/// long a refusal takes says nothing about how much of a forged signature was right; hex
/// case is not part of the secret, so lower case is accepted too.
pub fn verify(message: &str, given: &str, secret: &Secret) -> bool {
    let want = sign(message, secret);
    let given = given.trim().to_ascii_uppercase();
    if want.is_empty() || want.len() != given.len() {
        return false;
    }
    want.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_the_field_name_and_the_raw_message() {
        use hmac::{Hmac, Mac};
        let secret = Secret::new("test123");
        let msg = r#"{"msgId":1,"type":"PRODUCT_RELATION_VIEW_PRODUCT_NEW_OR_MODIFY"}"#;
        // Computed apart from the gateway signer, from the definition.
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"test123").unwrap();
        mac.update(format!("message{msg}").as_bytes());
        let want = hex::encode_upper(mac.finalize().into_bytes());
        assert_eq!(sign(msg, &secret), want);
        assert!(verify(msg, &want, &secret));
        assert!(verify(msg, &want.to_ascii_lowercase(), &secret));
        // A vector computed with Python's hmac module (sim1688's test holds the same one).
        assert_eq!(sign(r#"{"msgId":1}"#, &secret), "7D08922D49D4C72384EDD35DAC3DAD398109936B");
    }

    #[test]
    fn anything_else_is_refused() {
        let secret = Secret::new("test123");
        let msg = r#"{"msgId":1}"#;
        let good = sign(msg, &secret);
        assert!(!verify(r#"{"msgId":2}"#, &good, &secret), "another message");
        assert!(!verify(msg, &good, &Secret::new("other")), "another secret");
        assert!(!verify(msg, "", &secret));
        assert!(!verify(msg, &good[..39], &secret));
        let mut flipped = good.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        assert!(!verify(msg, &String::from_utf8(flipped).unwrap(), &secret));
    }
}
