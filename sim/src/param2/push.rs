//! Change messages (contract section 8.4): when an item changes (the mutate endpoint, the
//! background churn), the platform POSTs a signed message to the app's callback URL.
//!
//! The form has `message` (the JSON envelope `{"msgId", "gmtBorn", "type", "userInfo",
//! "data", "extraInfo"}`) and `_aop_signature` = `UPPER(HEX(HMAC-SHA1(appSecret, "message" +
//! message)))`, signed with the secret of the app the callback belongs to (`app_key`).
//! HTTP 200 acknowledges; anything else, or no answer, is tried again a few times with a
//! short backoff, and what is never acknowledged is kept (the platform keeps it for
//! pulling). `GET /_sim/param2/pushes` shows the counts, `PUT /_sim/param2/push` the
//! settings.
//!
//! Not simulated: that only offers the app follows produce messages; here every change of
//! every shop does.

use super::sign::{hmac_sha1, SIGNATURE_PARAM};
use crate::admin::MutationOp;
use crate::churn::ChurnKind;
use crate::state::Sim;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

pub const NEW_OR_MODIFY: &str = "PRODUCT_RELATION_VIEW_PRODUCT_NEW_OR_MODIFY";
pub const EXPIRE: &str = "PRODUCT_RELATION_VIEW_PRODUCT_EXPIRE";
pub const DELETE: &str = "PRODUCT_RELATION_VIEW_PRODUCT_DELETE";
pub const INVENTORY_CHANGE: &str = "PRODUCT_PRODUCT_INVENTORY_CHANGE";

/// Messages never acknowledged that are kept (the oldest go first past this).
pub const KEPT_CAP: usize = 100_000;

/// What `PUT /_sim/param2/push` sets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushSettings {
    /// The app's callback URL; no messages are made while it is unset.
    pub url: Option<String>,
    /// The app whose secret signs the messages (the OAuth account by default).
    pub app_key: String,
    /// Deliveries of one message before it is kept for pulling: the first and 3 retries.
    pub attempts: u32,
    /// The wait before the first retry; it doubles for each further one.
    pub backoff_ms: u64,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings { url: None, app_key: "10000003".into(), attempts: 4, backoff_ms: 200 }
    }
}

/// One message as sent.
#[derive(Debug, Clone, Serialize)]
pub struct PushMessage {
    pub msg_id: u64,
    pub topic: String,
    pub member_id: String,
    /// The envelope, exactly as signed.
    pub message: String,
}

/// The push book: settings, the queue, counts and the kept messages.
#[derive(Debug)]
pub struct PushBook {
    pub settings: PushSettings,
    next_id: u64,
    queue: VecDeque<PushMessage>,
    /// Messages made.
    messages: u64,
    /// POSTs tried.
    deliveries: u64,
    acked: u64,
    /// Answers other than 200.
    refused: u64,
    /// POSTs without an answer (connection refused, timeout).
    unanswered: u64,
    kept: VecDeque<PushMessage>,
}

impl Default for PushBook {
    fn default() -> Self {
        // Ids start from the wall clock, so a restarted simulator never repeats the ids of
        // the last one (a receiver would take the new messages for duplicates).
        PushBook {
            settings: PushSettings::default(),
            next_id: (crate::time::wall_ms().max(0) as u64) * 1000,
            queue: VecDeque::new(),
            messages: 0,
            deliveries: 0,
            acked: 0,
            refused: 0,
            unanswered: 0,
            kept: VecDeque::new(),
        }
    }
}

/// `GET /_sim/param2/pushes`.
#[derive(Debug, Serialize)]
pub struct PushReport {
    pub settings: PushSettings,
    pub messages: u64,
    pub queued: usize,
    pub deliveries: u64,
    pub acked: u64,
    pub refused: u64,
    pub unanswered: u64,
    /// Messages never acknowledged, kept for pulling.
    pub kept: usize,
    pub kept_messages: Vec<PushMessage>,
}

/// `UPPER(HEX(HMAC-SHA1(secret, "message" + message)))`.
pub fn signature(message: &str, secret: &str) -> String {
    hex::encode_upper(hmac_sha1(secret.as_bytes(), format!("message{message}").as_bytes()))
}

/// The topic of a change, and the data of its message.
fn topic_and_data(
    op: MutationOp,
    member_id: &str,
    item_ids: &[String],
    now_ms: i64,
) -> (&'static str, Value) {
    let product = |topic, status| {
        let data = json!({
            "productIds": item_ids.join(","),
            "memberId": member_id,
            "status": status,
            "msgSendTime": super::dates::plain(now_ms),
        });
        (topic, data)
    };
    match op {
        MutationOp::Create => product(NEW_OR_MODIFY, "RELATION_VIEW_PRODUCT_NEW"),
        MutationOp::Update | MutationOp::Garble => product(NEW_OR_MODIFY, "RELATION_VIEW_PRODUCT_MODIFY"),
        MutationOp::Delist | MutationOp::DelistSilent => product(EXPIRE, "RELATION_VIEW_PRODUCT_EXPIRE"),
        MutationOp::Remove => product(DELETE, "RELATION_VIEW_PRODUCT_DELETE"),
        MutationOp::Touch | MutationOp::Sku => {
            let list: Vec<Value> = item_ids
                .iter()
                .map(|id| {
                    json!({"offerId": id.parse::<u64>().unwrap_or(0), "offerOnSale": 1, "skuId": 0,
                           "skuOnSale": 1, "quantity": 1, "bizTime": super::dates::plain(now_ms)})
                })
                .collect();
            (INVENTORY_CHANGE, json!({"OfferInventoryChangeList": list}))
        }
    }
}

/// The mutation a churn change is.
fn churn_op(kind: ChurnKind) -> MutationOp {
    match kind {
        ChurnKind::Update => MutationOp::Update,
        ChurnKind::Touch => MutationOp::Touch,
        ChurnKind::Sku => MutationOp::Sku,
        ChurnKind::Create => MutationOp::Create,
        ChurnKind::Delist => MutationOp::Delist,
        ChurnKind::DelistSilent => MutationOp::DelistSilent,
    }
}

impl Sim {
    pub fn push_book(&self) -> MutexGuard<'_, PushBook> {
        self.inner.push.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push_report(&self) -> PushReport {
        let b = self.push_book();
        PushReport {
            settings: b.settings.clone(),
            messages: b.messages,
            queued: b.queue.len(),
            deliveries: b.deliveries,
            acked: b.acked,
            refused: b.refused,
            unanswered: b.unanswered,
            kept: b.kept.len(),
            kept_messages: b.kept.iter().cloned().collect(),
        }
    }

    /// Queues the message for a change of `item_ids` of `member_id` (none while no
    /// callback URL is set).
    pub fn push_change(&self, member_id: &str, op: MutationOp, item_ids: &[String]) {
        if item_ids.is_empty() {
            return;
        }
        let now = self.now_ms();
        let (topic, data) = topic_and_data(op, member_id, item_ids, now);
        let mut b = self.push_book();
        if b.settings.url.is_none() {
            return;
        }
        b.next_id += 1;
        let msg_id = b.next_id;
        let envelope = json!({
            "msgId": msg_id,
            "gmtBorn": now,
            "type": topic,
            "userInfo": member_id,
            "data": data,
            "extraInfo": null,
        });
        b.messages += 1;
        b.queue.push_back(PushMessage {
            msg_id,
            topic: topic.to_string(),
            member_id: member_id.to_string(),
            message: envelope.to_string(),
        });
        drop(b);
        self.inner.push_wake.notify_one();
    }

    /// Sends queued messages for as long as the server runs, several at once.
    pub(crate) async fn push_sender(self) {
        let Ok(http) = reqwest::Client::builder().timeout(Duration::from_secs(5)).build() else {
            return;
        };
        let slots = Arc::new(tokio::sync::Semaphore::new(16));
        loop {
            let next = self.push_book().queue.pop_front();
            let Some(msg) = next else {
                let _ = tokio::time::timeout(Duration::from_secs(1), self.inner.push_wake.notified()).await;
                continue;
            };
            let Ok(slot) = slots.clone().acquire_owned().await else { return };
            let (sim, http) = (self.clone(), http.clone());
            tokio::spawn(async move {
                sim.deliver(&http, msg).await;
                drop(slot);
            });
        }
    }

    /// Tries one message until it is acknowledged or its tries are spent; then keeps it.
    async fn deliver(&self, http: &reqwest::Client, msg: PushMessage) {
        let settings = self.push_book().settings.clone();
        let (Some(url), Some(app)) = (settings.url.clone(), self.account(&settings.app_key)) else {
            self.keep(msg);
            return;
        };
        let sig = signature(&msg.message, &app.app_secret);
        let form = [("message", msg.message.as_str()), (SIGNATURE_PARAM, sig.as_str())];
        for attempt in 0..settings.attempts.max(1) {
            if attempt > 0 {
                let wait = settings.backoff_ms.saturating_mul(1 << (attempt - 1).min(10));
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            self.push_book().deliveries += 1;
            match http.post(&url).form(&form).send().await {
                Ok(r) if r.status().as_u16() == 200 => {
                    self.push_book().acked += 1;
                    return;
                }
                Ok(_) => self.push_book().refused += 1,
                Err(_) => self.push_book().unanswered += 1,
            }
        }
        self.keep(msg);
    }

    fn keep(&self, msg: PushMessage) {
        let mut b = self.push_book();
        if b.kept.len() == KEPT_CAP {
            b.kept.pop_front();
        }
        b.kept.push_back(msg);
    }

    /// Follows the churn log and pushes each change as it is made.
    pub(crate) async fn push_churn(self) {
        let mut seen = self.churn_report(u64::MAX).changes;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let report = self.churn_report(seen);
            seen = report.changes.max(seen);
            for e in report.log {
                self.push_change(&e.member_id, churn_op(e.kind), &[e.item_id]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_the_field_name_and_the_message() {
        // HMAC-SHA1("test123", "message" + message), computed with Python's hmac module.
        assert_eq!(signature(r#"{"msgId":1}"#, "test123"), "7D08922D49D4C72384EDD35DAC3DAD398109936B");
        assert_ne!(signature("{}", "test123"), signature("{} ", "test123"));
    }

    #[test]
    fn changes_map_to_their_topics() {
        let ids = vec!["601".to_string(), "602".to_string()];
        let (t, d) = topic_and_data(MutationOp::Update, "6000000000000001", &ids, 0);
        assert_eq!((t, d["productIds"].as_str()), (NEW_OR_MODIFY, Some("601,602")));
        assert_eq!(topic_and_data(MutationOp::DelistSilent, "m", &ids, 0).0, EXPIRE);
        assert_eq!(topic_and_data(MutationOp::Remove, "m", &ids, 0).0, DELETE);
        let (t, d) = topic_and_data(MutationOp::Touch, "m", &ids, 0);
        assert_eq!(t, INVENTORY_CHANGE);
        assert_eq!(d["OfferInventoryChangeList"][1]["offerId"], 602);
    }

    #[test]
    fn no_message_without_a_callback() {
        let sim = Sim::new(crate::SimSpec { items: 10, ..Default::default() });
        sim.push_change("6000000000000001", MutationOp::Update, &["1".into()]);
        assert_eq!(sim.push_report().messages, 0);
        sim.push_book().settings.url = Some("http://127.0.0.1:9/cb".into());
        sim.push_change("6000000000000001", MutationOp::Update, &["1".into()]);
        sim.push_change("6000000000000001", MutationOp::Update, &["2".into()]);
        let r = sim.push_report();
        assert_eq!((r.messages, r.queued), (2, 2));
        let b = sim.push_book();
        assert_eq!(b.queue[1].msg_id, b.queue[0].msg_id + 1, "ids grow");
    }

    /// Waits up to 10 s for `f` to hold.
    async fn eventually(what: &str, f: impl Fn() -> bool) {
        for _ in 0..200 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}");
    }

    #[tokio::test]
    async fn unacknowledged_messages_are_retried_then_kept_and_signed_ones_acknowledged() {
        let sim = Sim::new(crate::SimSpec { items: 10, ..Default::default() });
        let _sender = tokio::spawn(sim.clone().push_sender());
        // Nobody listens here: the first try and three retries, then the message is kept.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        sim.push_book().settings.url = Some(format!("http://{closed}/cb"));
        sim.push_book().settings.backoff_ms = 10;
        sim.push_change("6000000000000001", MutationOp::Remove, &["1".into()]);
        eventually("the message kept", || sim.push_report().kept == 1).await;
        let r = sim.push_report();
        assert_eq!((r.deliveries, r.unanswered, r.acked), (4, 4, 0));
        assert_eq!(r.kept_messages[0].topic, DELETE);

        // A receiver that checks the signature as a client must, and answers 200 only then.
        let secret = sim.account("10000003").unwrap().app_secret;
        let got = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen = got.clone();
        let app = axum::Router::new().route(
            "/cb",
            axum::routing::post(
                move |axum::Form(f): axum::Form<std::collections::HashMap<String, String>>| {
                    let (seen, secret) = (seen.clone(), secret.clone());
                    async move {
                        let msg = f.get("message").cloned().unwrap_or_default();
                        if f.get(SIGNATURE_PARAM) != Some(&signature(&msg, &secret)) {
                            return axum::http::StatusCode::UNAUTHORIZED;
                        }
                        seen.lock().unwrap().push(msg);
                        axum::http::StatusCode::OK
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        sim.push_book().settings.url = Some(format!("http://{addr}/cb"));
        sim.push_change("6000000000000001", MutationOp::Touch, &["7".into()]);
        eventually("the message acknowledged", || sim.push_report().acked == 1).await;
        let msg: Value = serde_json::from_str(&got.lock().unwrap()[0]).unwrap();
        assert_eq!(msg["type"], INVENTORY_CHANGE);
        assert_eq!(msg["userInfo"], "6000000000000001");
        assert_eq!(msg["data"]["OfferInventoryChangeList"][0]["offerId"], 7);
        assert_eq!(sim.push_report().kept, 1, "the acknowledged one is not kept");
    }
}
