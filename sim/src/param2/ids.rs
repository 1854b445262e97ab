//! Identifiers the production platform has and the seed catalogue does not: a seller's
//! `sellerOpenId`, a SKU's `specId`, a member's `aliId`. Each is derived from an id the
//! catalogue has, so it is stable across restarts and needs no table.

use crate::state::splitmix;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn hash_str(s: &str, salt: u64) -> u64 {
    s.bytes().fold(splitmix(salt), |h, b| splitmix(h ^ u64::from(b)))
}

/// The opaque id the cross-border APIs know a seller by: `BBB` and 22 base-62 characters,
/// the look of the platform's own. Nothing about it gives the member id away, as on the
/// platform, where the only way from one to the other is an offer's detail.
pub fn seller_open_id(member_id: &str) -> String {
    let mut out = String::from("BBB");
    let mut h = hash_str(member_id, 0x5e11_e40e);
    for i in 0..22 {
        if i == 11 {
            h = splitmix(h ^ 0x0bad_cafe);
        }
        out.push(BASE62[(h % 62) as usize] as char);
        h /= 62;
    }
    out
}

/// A SKU's `specId`: 32 hex digits, as on the platform.
pub fn spec_id(sku_id: u64) -> String {
    let a = splitmix(sku_id ^ 0x5bec);
    format!("{a:016x}{:016x}", splitmix(a))
}

/// A member's numeric `aliId`, as the token endpoint reports it.
pub fn ali_id(member_id: &str) -> String {
    (2_200_000_000_000 + hash_str(member_id, 0xa11) % 100_000_000_000).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_ids_are_stable_opaque_and_distinct() {
        let a = seller_open_id("6000000000000001");
        assert_eq!(a, seller_open_id("6000000000000001"));
        assert_ne!(a, seller_open_id("6000000000000002"));
        assert_eq!(a.len(), 25);
        assert!(a.starts_with("BBB") && !a.contains("6000000000000001"));
        assert_eq!(spec_id(4_000_000_000_016).len(), 32);
    }
}
