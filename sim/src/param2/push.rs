//! Change messages (contract section 8.4): when an item changes (the mutate endpoint, the
//! background churn), the platform POSTs a signed message to the app's callback URL.
//!
//! The form has `message` (the JSON envelope `{"msgId", "gmtBorn", "type", "userInfo",
//! "data", "extraInfo"}`) and `_aop_signature` = `UPPER(HEX(HMAC-SHA1(appSecret, "message" +
//! message)))`, signed with the secret of the app the callback belongs to (`app_key`).
//! HTTP 200 acknowledges; anything else, or no answer, is tried again a few times with a
//! short backoff, and what is never acknowledged is kept for pulling
//! (`push.cursor.messageList`, see [`super::message_list`], takes them out oldest first).
//! `GET /_sim/param2/pushes` shows the counts, `PUT /_sim/param2/push` the settings.
//!
//! Only offers the app follows produce messages, as on the platform: an app follows an
//! offer with `alibaba.product.follow` ([`super::follow`]), and a change of an offer the
//! signing app (`app_key`) does not follow makes no message (its id is dropped from the
//! message, and no message is made when no id is left; `unfollowed_changes` counts them).
//! A newly created offer is followed by nobody, so it makes no message. `only_followed`
//! false (`--push-unfollowed`) turns this off: every change of every shop makes a message.

use super::sign::{hmac_sha1, SIGNATURE_PARAM};
use crate::admin::MutationOp;
use crate::churn::ChurnKind;
use crate::state::Sim;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet, VecDeque};
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
    /// Only offers `app_key` follows produce messages (the platform's rule, default true);
    /// false: every change of every shop does.
    pub only_followed: bool,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            url: None,
            app_key: "10000003".into(),
            attempts: 4,
            backoff_ms: 200,
            only_followed: true,
        }
    }
}

/// One message as sent.
#[derive(Debug, Clone, Serialize)]
pub struct PushMessage {
    pub msg_id: u64,
    /// When it was made (epoch ms): the envelope's `gmtBorn`.
    pub gmt_born: i64,
    pub topic: String,
    pub member_id: String,
    /// The app it is for, whose secret signs it: `settings.app_key` when it was made.
    pub app_key: String,
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
    /// App key → the offers it follows.
    followed: HashMap<String, HashSet<u64>>,
    /// Item changes that made no message: the offer was not followed.
    unfollowed_changes: u64,
    /// Kept messages taken out by `push.cursor.messageList`.
    pulled: u64,
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
            followed: HashMap::new(),
            unfollowed_changes: 0,
            pulled: 0,
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
    /// Offers the push app (`settings.app_key`) follows.
    pub followed: usize,
    /// Item changes that made no message because the push app did not follow the offer.
    pub unfollowed_changes: u64,
    /// Kept messages taken out by `push.cursor.messageList`.
    pub pulled: u64,
}

/// Which kept messages a pull asks for, beside the app key; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct PullFilter {
    /// `gmtBorn` at or after this (epoch ms).
    pub start: Option<i64>,
    /// `gmtBorn` at or before this (epoch ms).
    pub end: Option<i64>,
    pub topic: Option<String>,
    pub member_id: Option<String>,
}

impl PullFilter {
    fn matches(&self, m: &PushMessage) -> bool {
        self.start.is_none_or(|s| m.gmt_born >= s)
            && self.end.is_none_or(|e| m.gmt_born <= e)
            && self.topic.as_ref().is_none_or(|t| *t == m.topic)
            && self.member_id.as_ref().is_none_or(|u| *u == m.member_id)
    }
}

impl PushBook {
    /// Records that `app_key` follows `offer_id` (again is the same).
    pub fn follow(&mut self, app_key: &str, offer_id: u64) {
        self.followed.entry(app_key.to_string()).or_default().insert(offer_id);
    }

    pub fn follows(&self, app_key: &str, offer_id: u64) -> bool {
        self.followed.get(app_key).is_some_and(|f| f.contains(&offer_id))
    }

    /// The ids of a change that make a message: those the push app follows, or all of them
    /// when `only_followed` is off. The others are counted as unfollowed changes.
    fn pushable(&mut self, item_ids: &[String]) -> Vec<String> {
        if !self.settings.only_followed {
            return item_ids.to_vec();
        }
        let app = self.settings.app_key.clone();
        let (keep, dropped): (Vec<String>, Vec<String>) =
            item_ids.iter().cloned().partition(|id| id.parse::<u64>().is_ok_and(|n| self.follows(&app, n)));
        self.unfollowed_changes += dropped.len() as u64;
        keep
    }

    /// Takes up to `quantity` kept messages of `app_key` that match `filter` out of the
    /// kept list, oldest first: the pull confirms them as consumed.
    pub fn pull(&mut self, app_key: &str, filter: &PullFilter, quantity: usize) -> Vec<PushMessage> {
        // Ids grow with time, so the smallest are the oldest (the kept list is in the order
        // deliveries gave up, which concurrent deliveries shuffle).
        let mut ids: Vec<u64> = self
            .kept
            .iter()
            .filter(|m| m.app_key == app_key && filter.matches(m))
            .map(|m| m.msg_id)
            .collect();
        ids.sort_unstable();
        ids.truncate(quantity);
        if ids.is_empty() {
            return Vec::new();
        }
        let chosen: HashSet<u64> = ids.into_iter().collect();
        let mut taken = Vec::with_capacity(chosen.len());
        for m in std::mem::take(&mut self.kept) {
            if chosen.contains(&m.msg_id) {
                taken.push(m);
            } else {
                self.kept.push_back(m);
            }
        }
        taken.sort_unstable_by_key(|m| m.msg_id);
        self.pulled += taken.len() as u64;
        taken
    }
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
            followed: b.followed.get(&b.settings.app_key).map_or(0, HashSet::len),
            unfollowed_changes: b.unfollowed_changes,
            pulled: b.pulled,
        }
    }

    /// Queues the message for a change of `item_ids` of `member_id`, with the ids the push
    /// app follows (none while no callback URL is set, none when it follows none of them).
    pub fn push_change(&self, member_id: &str, op: MutationOp, item_ids: &[String]) {
        if item_ids.is_empty() {
            return;
        }
        let now = self.now_ms();
        let mut b = self.push_book();
        if b.settings.url.is_none() {
            return;
        }
        let ids = b.pushable(item_ids);
        if ids.is_empty() {
            return;
        }
        let (topic, data) = topic_and_data(op, member_id, &ids, now);
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
        let app_key = b.settings.app_key.clone();
        b.queue.push_back(PushMessage {
            msg_id,
            gmt_born: now,
            topic: topic.to_string(),
            member_id: member_id.to_string(),
            app_key,
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
        let (Some(url), Some(app)) = (settings.url.clone(), self.account(&msg.app_key)) else {
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

    /// Gives up on every queued message at once, as if all its tries had failed.
    #[cfg(test)]
    pub(crate) fn give_up_queued(&self) {
        let queued: Vec<PushMessage> = self.push_book().queue.drain(..).collect();
        for m in queued {
            self.keep(m);
        }
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
        sim.push_book().settings.only_followed = false;
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

    /// A simulator with a callback URL (nobody listens: messages only queue), its first
    /// shop's member and two of its offers.
    fn with_callback() -> (Sim, String, String, String) {
        let sim = Sim::new(crate::SimSpec { items: 10, ..Default::default() });
        sim.push_book().settings.url = Some("http://127.0.0.1:9/cb".into());
        let cat = sim.catalogue();
        let shop = &cat.shops[0];
        let id = |k| shop.online_id_at(k).map(|i| i.to_string()).unwrap_or_default();
        let (member, a, b) = (shop.member_id.clone(), id(0), id(1));
        drop(cat);
        (sim, member, a, b)
    }

    #[test]
    fn only_offers_the_push_app_follows_make_messages() {
        let (sim, member, a, b) = with_callback();
        assert!(PushSettings::default().only_followed, "the quirk is on by default");
        sim.push_book().follow("10000003", a.parse().unwrap());
        // Another app following `b` does not make the push app's messages.
        sim.push_book().follow("10000001", b.parse().unwrap());
        sim.push_change(&member, MutationOp::Update, &[a.clone(), b.clone()]);
        let r = sim.push_report();
        assert_eq!((r.messages, r.unfollowed_changes, r.followed), (1, 1, 1));
        let msg: Value = serde_json::from_str(&sim.push_book().queue[0].message).unwrap();
        assert_eq!(msg["data"]["productIds"], a, "the unfollowed id is dropped from the message");
        assert_eq!(sim.push_book().queue[0].app_key, "10000003");

        sim.push_change(&member, MutationOp::Touch, std::slice::from_ref(&b));
        let r = sim.push_report();
        assert_eq!((r.messages, r.unfollowed_changes), (1, 2), "no message for an unfollowed offer");
    }

    #[test]
    fn a_created_offer_is_followed_by_nobody() {
        let (sim, member, _, _) = with_callback();
        let m = crate::admin::Mutation { op: MutationOp::Create, count: Some(2), item_ids: None };
        let done = sim.mutate(&member, &m).unwrap();
        sim.push_change(&member, done.op, &done.item_ids);
        let r = sim.push_report();
        assert_eq!((r.messages, r.unfollowed_changes), (0, 2));
    }

    #[test]
    fn every_change_makes_a_message_without_the_quirk() {
        let (sim, member, a, b) = with_callback();
        let off: PushSettings = serde_json::from_str(r#"{"only_followed": false}"#).unwrap();
        assert_eq!((off.attempts, off.app_key.as_str()), (4, "10000003"), "the rest stays default");
        let url = sim.push_book().settings.url.clone();
        sim.push_book().settings = PushSettings { url, ..off };
        sim.push_change(&member, MutationOp::Update, &[a.clone(), b.clone()]);
        sim.push_change(&member, MutationOp::Create, &["1".into()]);
        let r = sim.push_report();
        assert_eq!((r.messages, r.unfollowed_changes, r.followed), (2, 0, 0));
        let msg: Value = serde_json::from_str(&sim.push_book().queue[0].message).unwrap();
        assert_eq!(msg["data"]["productIds"], format!("{a},{b}"));
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
        sim.push_book().settings.only_followed = false;
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
