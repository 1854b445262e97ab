//! The platform's change message: the envelope `{"msgId", "gmtBorn", "type", "userInfo",
//! "data", "extraInfo"}` and what shopsync reads from it, the member and the offer ids.
//!
//! Read leniently: the SDKs and the recorded messages disagree on types (`msgId` a number or
//! a string, `data` an object or a JSON string of one, `productIds` a comma-separated string
//! or a list), and a message whose shape is odd but whose signature is right is the
//! platform's, so it is kept rather than refused (a refusal only brings it back, three
//! times, then for pulling).

use crate::state::{PushRecord, PushStatus};
use md5::Digest as _;
use serde_json::Value;

/// Product topics: `data = {"productIds": "id1,id2", "memberId", "status", "msgSendTime"}`.
pub const PRODUCT_TOPICS: [&str; 5] = [
    "PRODUCT_RELATION_VIEW_PRODUCT_NEW_OR_MODIFY",
    "PRODUCT_RELATION_VIEW_PRODUCT_REPOST",
    "PRODUCT_RELATION_VIEW_PRODUCT_EXPIRE",
    "PRODUCT_RELATION_VIEW_PRODUCT_DELETE",
    "PRODUCT_RELATION_VIEW_PRODUCT_AUDIT",
];

/// Stock changes: `data = {"OfferInventoryChangeList": [{"offerId", "offerOnSale", "skuId",
/// "skuOnSale", "quantity", "bizTime"}]}` (`quantity` is a delta, so the offer is fetched
/// again rather than patched).
pub const INVENTORY_TOPIC: &str = "PRODUCT_PRODUCT_INVENTORY_CHANGE";

/// Whether shopsync acts on messages of this topic.
pub fn acted_on(topic: &str) -> bool {
    topic == INVENTORY_TOPIC || PRODUCT_TOPICS.contains(&topic)
}

/// A number or a numeric string, as text; nothing for anything else.
fn id_text(v: &Value) -> Option<String> {
    let s = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

/// An object, or a JSON string holding one.
fn object(v: Option<&Value>) -> Option<Value> {
    match v? {
        Value::String(s) => serde_json::from_str::<Value>(s).ok().filter(Value::is_object),
        o @ Value::Object(_) => Some(o.clone()),
        _ => None,
    }
}

/// A list, or a JSON string holding one.
fn list(v: Option<&Value>) -> Vec<Value> {
    match v {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::String(s)) => serde_json::from_str::<Vec<Value>>(s).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// `productIds`: `"1,2"`, `[1, "2"]` or a single id.
fn product_ids(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) if s.trim_start().starts_with('[') => {
            list(v).iter().filter_map(id_text).collect()
        }
        Some(Value::String(s)) => {
            s.split([',', ';', ' ']).filter_map(|p| id_text(&Value::String(p.into()))).collect()
        }
        Some(Value::Array(a)) => a.iter().filter_map(id_text).collect(),
        Some(n @ Value::Number(_)) => id_text(n).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// `userInfo` is the member id itself on the platform; an object carrying `memberId` is
/// read too.
fn member_of(user_info: Option<&Value>, data: Option<&Value>) -> Option<String> {
    let from_user = match user_info {
        Some(Value::Object(o)) => o.get("memberId").and_then(id_text),
        Some(v) => id_text(v),
        None => None,
    };
    from_user.or_else(|| data.and_then(|d| d.get("memberId")).and_then(id_text))
}

/// What a signed message says, as it is stored. Never fails: what cannot be read is kept as
/// an ignored message (its id then the MD5 of its text, so a redelivery is still a
/// duplicate).
pub fn read(raw: &str, received_ms: i64) -> PushRecord {
    let env: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
    let msg_id = env
        .get("msgId")
        .and_then(|v| match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| format!("md5:{:x}", md5::Md5::digest(raw.as_bytes())));
    let topic = env.get("type").and_then(Value::as_str).unwrap_or("").trim().to_string();
    let data = object(env.get("data"));
    let born_ms = env.get("gmtBorn").and_then(|v| id_text(v)?.parse().ok());
    let member = member_of(env.get("userInfo"), data.as_ref());
    let mut offer_ids = Vec::new();
    if let Some(d) = &data {
        if PRODUCT_TOPICS.contains(&topic.as_str()) {
            offer_ids = product_ids(d.get("productIds"));
        } else if topic == INVENTORY_TOPIC {
            offer_ids = list(d.get("OfferInventoryChangeList"))
                .iter()
                .filter_map(|c| c.get("offerId").and_then(id_text))
                .collect();
        }
    }
    offer_ids.sort();
    offer_ids.dedup();
    let status = if acted_on(&topic) { PushStatus::Pending } else { PushStatus::Ignored };
    PushRecord {
        msg_id,
        topic,
        member,
        offer_ids,
        born_ms,
        received_ms,
        status,
        attempts: 0,
        next_ms: 0,
        message: raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_product_message_names_its_member_and_offers() {
        let raw = r#"{"msgId":123456789,"gmtBorn":1700000000000,"type":"PRODUCT_RELATION_VIEW_PRODUCT_NEW_OR_MODIFY","userInfo":"6000000000000001","data":{"productIds":"601,602, 601","memberId":"6000000000000001","status":"MODIFY","msgSendTime":"2023-11-15 06:13:20"},"extraInfo":null}"#;
        let r = read(raw, 5);
        assert_eq!(r.msg_id, "123456789");
        assert_eq!(r.born_ms, Some(1_700_000_000_000));
        assert_eq!(r.member.as_deref(), Some("6000000000000001"));
        assert_eq!(r.offer_ids, ["601", "602"]);
        assert_eq!(r.status, PushStatus::Pending);
        assert_eq!(r.message, raw);
    }

    #[test]
    fn types_are_read_leniently() {
        // msgId as a string, data as a JSON string, productIds as a list, the member only in
        // the data.
        let raw = r#"{"msgId":"m-1","type":"PRODUCT_RELATION_VIEW_PRODUCT_DELETE","data":"{\"productIds\":[601,\"602\"],\"memberId\":6000000000000002}"}"#;
        let r = read(raw, 0);
        assert_eq!((r.msg_id.as_str(), r.member.as_deref()), ("m-1", Some("6000000000000002")));
        assert_eq!(r.offer_ids, ["601", "602"]);
    }

    #[test]
    fn an_inventory_change_names_each_offer_once() {
        let raw = r#"{"msgId":7,"type":"PRODUCT_PRODUCT_INVENTORY_CHANGE","userInfo":"6000000000000001","data":{"OfferInventoryChangeList":[{"offerId":601,"offerOnSale":10,"skuId":1,"skuOnSale":3,"quantity":-2,"bizTime":"x"},{"offerId":"601","skuId":2},{"offerId":603}]}}"#;
        assert_eq!(read(raw, 0).offer_ids, ["601", "603"]);
    }

    #[test]
    fn other_topics_and_unreadable_text_are_ignored_but_keep_an_id() {
        let r = read(r#"{"msgId":8,"type":"ORDER_BUYER_VIEW_ORDER_PAY","data":{}}"#, 0);
        assert_eq!((r.status, r.msg_id.as_str()), (PushStatus::Ignored, "8"));
        let a = read("not json", 0);
        let b = read("not json", 1);
        assert_eq!(a.status, PushStatus::Ignored);
        assert!(a.msg_id.starts_with("md5:") && a.msg_id == b.msg_id, "{}", a.msg_id);
    }
}
