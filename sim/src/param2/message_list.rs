//! `cn.alibaba.open:push.cursor.messageList`: the pull fallback of change messages. Source:
//! the platform's API page of `cn.alibaba.open:push.cursor.messageList-1` and the generated
//! class `PushCursorMessageListResult`: "cursor-style retrieval of failed messages; retrieved
//! messages are automatically confirmed as consumed, so the next call with the same
//! conditions returns the rest, until the result is empty".
//!
//! No authorization: `access_token` is optional for every account and not looked at. The
//! answer is `{"pushMessageList": [...]}` with up to `quantity` of the calling app's kept
//! messages (those never acknowledged after all tries, see [`super::push`]), oldest first,
//! each the envelope as an object (`data` an object, not a string) with `topicGroup`,
//! `topicName` and `appKey` beside; what it returns leaves the kept list. Parameters, all
//! optional: `createStartTime` and `createEndTime` (`yyyyMMddHHmmssSSS+0800`, both
//! inclusive, on `gmtBorn`), `quantity` (20 to 200, default 20), `type` (the topic) and
//! `userInfo` (the member id). A `quantity` out of range or not a number, or an unreadable
//! time, is the business error `{"success": false, "errorCode": "400", "errorMsg": …}` with
//! HTTP 200.

use super::dates::parse_compact;
use super::gateway::Params;
use super::push::{PullFilter, PushMessage};
use super::reply::Reply;
use crate::state::Sim;
use serde_json::{json, Value};

/// `quantity` when none is given, and its bounds.
pub const DEFAULT_QUANTITY: usize = 20;
pub const MAX_QUANTITY: usize = 200;

/// The topic group of every message the simulator makes (their types all start with it).
const TOPIC_GROUP: &str = "PRODUCT";

/// A non-empty parameter.
fn given<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn quantity(p: &Params) -> Result<usize, Reply> {
    let Some(v) = given(p, "quantity") else { return Ok(DEFAULT_QUANTITY) };
    match v.parse::<usize>() {
        Ok(n) if (DEFAULT_QUANTITY..=MAX_QUANTITY).contains(&n) => Ok(n),
        _ => Err(Reply::error_code_msg("400", "quantity must be between 20 and 200")),
    }
}

fn time(p: &Params, name: &str) -> Result<Option<i64>, Reply> {
    match given(p, name) {
        None => Ok(None),
        Some(v) => parse_compact(v)
            .map(Some)
            .ok_or_else(|| Reply::error_code_msg("400", &format!("{name} must be yyyyMMddHHmmssSSS+0800"))),
    }
}

fn filter(p: &Params) -> Result<PullFilter, Reply> {
    Ok(PullFilter {
        start: time(p, "createStartTime")?,
        end: time(p, "createEndTime")?,
        topic: given(p, "type").map(str::to_string),
        member_id: given(p, "userInfo").map(str::to_string),
    })
}

/// One kept message as the pull returns it.
pub fn pulled_view(m: &PushMessage) -> Value {
    let data = serde_json::from_str::<Value>(&m.message)
        .ok()
        .and_then(|mut envelope| envelope.get_mut("data").map(Value::take))
        .unwrap_or(Value::Null);
    let topic_name = m.topic.strip_prefix("PRODUCT_").unwrap_or(&m.topic);
    json!({
        "msgId": m.msg_id,
        "gmtBorn": m.gmt_born,
        "type": m.topic,
        "userInfo": m.member_id,
        "data": data,
        "topicGroup": TOPIC_GROUP,
        "topicName": topic_name,
        "appKey": m.app_key,
    })
}

impl Sim {
    pub(crate) fn message_list(&self, p: &Params, app_key: &str) -> Reply {
        let (quantity, filter) = match quantity(p).and_then(|q| Ok((q, filter(p)?))) {
            Ok(v) => v,
            Err(r) => return r,
        };
        let pulled = self.push_book().pull(app_key, &filter, quantity);
        let list: Vec<Value> = pulled.iter().map(pulled_view).collect();
        Reply::ok(json!({"pushMessageList": list}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::MutationOp;
    use crate::param2::push::{INVENTORY_CHANGE, NEW_OR_MODIFY};
    use crate::SimSpec;

    const APP: &str = "10000003";
    const HOUR: i64 = 3_600_000;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn body(r: Reply) -> Value {
        match r {
            Reply::Json { body, .. } => body,
            other => panic!("a JSON answer, not {other:?}"),
        }
    }

    /// The `msgId`s of a pull's answer.
    fn ids(v: &Value) -> Vec<u64> {
        v["pushMessageList"].as_array().unwrap().iter().map(|m| m["msgId"].as_u64().unwrap()).collect()
    }

    /// A simulator that pushes every change to a callback nobody answers.
    fn sim() -> Sim {
        let sim = Sim::new(SimSpec { items: 10, ..Default::default() });
        let mut b = sim.push_book();
        b.settings.url = Some("http://127.0.0.1:9/cb".into());
        b.settings.only_followed = false;
        drop(b);
        sim
    }

    /// Makes `n` messages of `member` and gives up on them: they are kept.
    fn kept(sim: &Sim, member: &str, op: MutationOp, n: usize) {
        for i in 0..n {
            sim.push_change(member, op, &[(1000 + i).to_string()]);
        }
        sim.give_up_queued();
    }

    #[test]
    fn pulls_take_the_kept_messages_oldest_first_in_pages() {
        let sim = sim();
        kept(&sim, "m1", MutationOp::Update, 45);
        let all: Vec<u64> = {
            let mut v: Vec<u64> = sim.push_report().kept_messages.iter().map(|m| m.msg_id).collect();
            v.sort_unstable();
            v
        };
        let first = body(sim.message_list(&params(&[]), APP));
        assert_eq!(ids(&first), all[..20], "20 by default, oldest first");
        let second = body(sim.message_list(&params(&[("quantity", "20")]), APP));
        assert_eq!(ids(&second), all[20..40], "the pulled ones are confirmed: the next call goes on");
        let third = body(sim.message_list(&params(&[("quantity", "200")]), APP));
        assert_eq!(ids(&third), all[40..]);
        let empty = body(sim.message_list(&params(&[]), APP));
        assert_eq!(empty, json!({"pushMessageList": []}));
        let r = sim.push_report();
        assert_eq!((r.kept, r.pulled), (0, 45));
    }

    #[test]
    fn a_pulled_message_is_its_envelope_as_an_object() {
        let sim = sim();
        kept(&sim, "6000000000000001", MutationOp::Touch, 1);
        let m = &sim.push_report().kept_messages[0].clone();
        let v = body(sim.message_list(&params(&[]), APP));
        let got = &v["pushMessageList"][0];
        assert_eq!(got["msgId"], m.msg_id);
        assert_eq!(got["gmtBorn"], m.gmt_born);
        assert_eq!(got["type"], INVENTORY_CHANGE);
        assert_eq!(got["userInfo"], "6000000000000001");
        assert_eq!(got["data"]["OfferInventoryChangeList"][0]["offerId"], 1000, "data is an object");
        assert_eq!(got["topicGroup"], "PRODUCT");
        assert_eq!(got["topicName"], "PRODUCT_INVENTORY_CHANGE");
        assert_eq!(got["appKey"], APP);
    }

    #[test]
    fn pulls_filter_by_time_type_and_member() {
        let sim = sim();
        let now = sim.now_ms();
        // Messages born an hour apart (the clock moves between them): A, B, C.
        for (hours, member, op) in
            [(0, "m1", MutationOp::Update), (1, "m2", MutationOp::Touch), (2, "m1", MutationOp::Touch)]
        {
            let mut l = sim.limits();
            l.clock_offset_ms = hours * HOUR;
            sim.set_limits(l);
            kept(&sim, member, op, 1);
        }
        let born: Vec<i64> = {
            let mut v: Vec<i64> = sim.push_report().kept_messages.iter().map(|m| m.gmt_born).collect();
            v.sort_unstable();
            v
        };
        let at = |ms: i64| crate::param2::dates::compact(ms);
        let pull = |p: &[(&str, &str)]| body(sim.message_list(&params(p), APP));
        let borns = |v: &Value| -> Vec<i64> {
            v["pushMessageList"].as_array().unwrap().iter().map(|m| m["gmtBorn"].as_i64().unwrap()).collect()
        };

        assert_eq!(borns(&pull(&[("createEndTime", &at(now + HOUR / 2))])), [born[0]], "A alone");
        assert_eq!(pull(&[("type", NEW_OR_MODIFY)]), json!({"pushMessageList": []}), "A is gone");
        // B and C are both stock changes; only C is m1's.
        let c = pull(&[("type", INVENTORY_CHANGE), ("userInfo", "m1")]);
        assert_eq!(borns(&c), [born[2]]);
        assert_eq!(c["pushMessageList"][0]["userInfo"], "m1");
        let b = at(born[1]);
        assert_eq!(borns(&pull(&[("createStartTime", &b), ("createEndTime", &b)])), [born[1]], "inclusive");
        assert_eq!(sim.push_report().kept, 0);
    }

    #[test]
    fn quantity_is_20_to_200() {
        let sim = sim();
        kept(&sim, "m1", MutationOp::Update, 1);
        for bad in ["10", "19", "201", "300", "x", "-20"] {
            let r = sim.message_list(&params(&[("quantity", bad)]), APP);
            assert_eq!(r.outcome(), "business:400", "{bad}");
            assert_eq!(
                body(r),
                json!({"success": false, "errorCode": "400", "errorMsg": "quantity must be between 20 and 200"})
            );
        }
        let bad_time = sim.message_list(&params(&[("createStartTime", "2024-01-01 00:00:00")]), APP);
        assert_eq!(bad_time.outcome(), "business:400");
        assert_eq!(sim.push_report().kept, 1, "a refused pull takes nothing");
    }

    #[test]
    fn an_app_pulls_only_its_own_messages() {
        let sim = sim();
        kept(&sim, "m1", MutationOp::Update, 3);
        let other = body(sim.message_list(&params(&[]), "10000001"));
        assert_eq!(other, json!({"pushMessageList": []}));
        assert_eq!(sim.push_report().kept, 3);
        // Messages made while another app signs belong to it.
        sim.push_book().settings.app_key = "10000001".into();
        kept(&sim, "m1", MutationOp::Update, 2);
        assert_eq!(ids(&body(sim.message_list(&params(&[]), "10000001"))).len(), 2);
        assert_eq!(ids(&body(sim.message_list(&params(&[]), APP))).len(), 3);
    }
}
