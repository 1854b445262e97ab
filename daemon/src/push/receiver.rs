//! The HTTP side: one POST route that verifies, stores, flushes and then acknowledges.

use super::follow::Follower;
use super::message::read;
use super::pull::Puller;
use super::signature::{verify, MESSAGE_FIELD, SIGNATURE_FIELD};
use super::worker::Worker;
use super::Directory;
use crate::clock::now_ms;
use crate::config::PushSettings;
use crate::metrics::Metrics;
use crate::state::{PushStatus, StateError, Store};
use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;

struct Receiver {
    store: Store,
    metrics: Arc<Metrics>,
    directory: Arc<dyn Directory>,
    wake: Arc<tokio::sync::Notify>,
}

/// The receiver and its worker while they run; both stop when this is dropped.
pub struct PushHandle {
    pub addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for PushHandle {
    fn drop(&mut self) {
        // A re-fetch cut short commits nothing half (its page is one transaction) and its
        // messages stay pending for the next start.
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds `[push] listen` and starts the receiver and the worker.
pub async fn start(
    settings: &PushSettings,
    store: Store,
    metrics: Arc<Metrics>,
    directory: Arc<dyn Directory>,
) -> anyhow::Result<PushHandle> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {} (push.listen)", settings.listen))?;
    let addr = listener.local_addr()?;
    let wake = Arc::new(tokio::sync::Notify::new());
    let worker = Worker { store: store.clone(), metrics: metrics.clone(), directory: directory.clone() };
    let receiver = Arc::new(Receiver { store, metrics, directory, wake: wake.clone() });
    let app = Router::new().route(&settings.path, post(receive)).with_state(receiver.clone());
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the change-message receiver stopped");
        }
    });
    let puller = Puller {
        store: receiver.store.clone(),
        metrics: receiver.metrics.clone(),
        directory: receiver.directory.clone(),
        wake: wake.clone(),
        every: settings.pull_every,
    };
    let follower = Follower {
        store: receiver.store.clone(),
        metrics: receiver.metrics.clone(),
        directory: receiver.directory.clone(),
    };
    let worker = tokio::spawn(worker.run(wake));
    let (puller, follower) = (tokio::spawn(puller.run()), tokio::spawn(follower.run()));
    tracing::info!(%addr, path = %settings.path, "change messages received on http://{addr}{}", settings.path);
    Ok(PushHandle { addr, tasks: vec![server, worker, puller, follower] })
}

/// The form's fields (`application/x-www-form-urlencoded`, whatever the header says).
fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &[u8]| {
        let spaced: Vec<u8> = s.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
        percent_encoding::percent_decode(&spaced).decode_utf8_lossy().into_owned()
    };
    body.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (decode(&p[..i]), decode(&p[i + 1..])),
            None => (decode(p), String::new()),
        })
        .collect()
}

async fn receive(State(r): State<Arc<Receiver>>, body: Bytes) -> (StatusCode, &'static str) {
    let fields = form_fields(&body);
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let Some(secret) = r.directory.secret() else {
        tracing::warn!(
            "change message not taken: [push] is no longer configured (restart to stop the receiver)"
        );
        return (StatusCode::SERVICE_UNAVAILABLE, "not receiving\n");
    };
    let (Some(message), Some(signature)) = (field(MESSAGE_FIELD), field(SIGNATURE_FIELD)) else {
        refuse(&r, "unsigned");
        return (StatusCode::UNAUTHORIZED, "unsigned\n");
    };
    if !verify(message, signature, &secret) {
        refuse(&r, "signature does not match");
        return (StatusCode::UNAUTHORIZED, "bad signature\n");
    }
    let result = match accept(&r.store, &r.metrics, message) {
        Ok(result) => result,
        Err(e) => {
            // Not acknowledged: the platform sends it again.
            tracing::error!(error = %e, kind = e.kind(), "cannot store a change message");
            return (StatusCode::INTERNAL_SERVER_ERROR, "not stored\n");
        }
    };
    // Durable before the acknowledgement: the platform forgets what it sees acknowledged.
    if let Err(e) = r.store.flush().await {
        tracing::error!(error = %e, kind = e.kind(), "cannot flush a change message");
        return (StatusCode::INTERNAL_SERVER_ERROR, "not stored\n");
    }
    if result == "stored" {
        r.metrics.push_backlog.set(r.store.push_backlog() as i64);
        r.wake.notify_one();
    }
    (StatusCode::OK, "success\n")
}

/// Stores one message (delivered or pulled) unless its `msgId` is stored already, and counts
/// it: `stored` (waiting for the worker), `duplicate` or `ignored` (a topic not acted on).
/// Not durable until the caller flushes.
pub(super) fn accept(store: &Store, metrics: &Metrics, message: &str) -> Result<&'static str, StateError> {
    let rec = read(message, now_ms());
    let result = match (store.store_push(&rec)?, rec.status) {
        (false, _) => "duplicate",
        (true, PushStatus::Pending) => "stored",
        (true, _) => "ignored",
    };
    metrics.push_messages.with_label_values(&[result]).inc();
    tracing::debug!(msg_id = %rec.msg_id, topic = %rec.topic, offers = rec.offer_ids.len(), result, "change message taken");
    Ok(result)
}

/// One place logs and counts a refusal; neither the signature nor the secret is shown.
fn refuse(r: &Receiver, why: &'static str) {
    r.metrics.push_messages.with_label_values(&["refused"]).inc();
    tracing::warn!(why, "change message refused");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_are_decoded() {
        let f = form_fields(b"message=%7B%22a%22%3A1%7D+x&_aop_signature=AB&empty");
        assert_eq!(
            f,
            vec![
                ("message".to_string(), "{\"a\":1} x".to_string()),
                ("_aop_signature".to_string(), "AB".to_string()),
                ("empty".to_string(), String::new())
            ]
        );
    }

    struct NoShops;

    impl Directory for NoShops {
        fn secret(&self) -> Option<crate::secret::Secret> {
            Some(crate::secret::Secret::new("s3cr3t"))
        }
        fn route(&self, _member: &str) -> Option<super::super::Route> {
            None
        }
        fn puller(&self) -> Option<crate::api::Client> {
            None
        }
        fn follows(&self) -> Vec<super::super::FollowTarget> {
            Vec::new()
        }
    }

    async fn post(addr: SocketAddr, form: &[(&str, &str)]) -> u16 {
        let url = format!("http://{addr}/cb");
        reqwest::Client::new().post(url).form(form).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
    }

    #[tokio::test]
    async fn only_signed_messages_are_stored_once_and_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let metrics = Arc::new(Metrics::new());
        let settings = PushSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            path: "/cb".into(),
            account: "a".into(),
            pull_every: std::time::Duration::ZERO,
        };
        let h = start(&settings, store.clone(), metrics.clone(), Arc::new(NoShops)).await.unwrap();
        let msg = r#"{"msgId":42,"type":"PRODUCT_RELATION_VIEW_PRODUCT_NEW_OR_MODIFY","userInfo":"6000000000000009","data":{"productIds":"601"}}"#;
        let good = super::super::sign(msg, &crate::secret::Secret::new("s3cr3t"));
        let bad = super::super::sign(msg, &crate::secret::Secret::new("other"));
        assert_eq!(post(h.addr, &[("message", msg)]).await, 401, "unsigned");
        assert_eq!(post(h.addr, &[("message", msg), ("_aop_signature", &bad)]).await, 401);
        assert!(store.push_record("42").unwrap().is_none(), "a refused message is not stored");
        assert_eq!(post(h.addr, &[("message", msg), ("_aop_signature", &good)]).await, 200);
        assert_eq!(post(h.addr, &[("message", msg), ("_aop_signature", &good)]).await, 200);
        let other = r#"{"msgId":"43","type":"ORDER_BUYER_VIEW_ORDER_PAY"}"#;
        let signed = super::super::sign(other, &crate::secret::Secret::new("s3cr3t"));
        assert_eq!(post(h.addr, &[("message", other), ("_aop_signature", &signed)]).await, 200);
        let count = |r: &str| metrics.push_messages.with_label_values(&[r]).get();
        assert_eq!((count("refused"), count("stored"), count("duplicate"), count("ignored")), (2, 1, 1, 1));
        assert_eq!(store.push_record("43").unwrap().unwrap().status, PushStatus::Ignored);
        // The worker finds no shop of member …09: counted and dropped, not retried.
        for _ in 0..50 {
            if store.push_record("42").unwrap().is_some_and(|r| r.status == PushStatus::Dropped) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(store.push_record("42").unwrap().unwrap().status, PushStatus::Dropped);
        assert_eq!(count("unknown_shop"), 1);
        assert_eq!(store.push_backlog(), 0);
    }
}
