//! The engine's handle and its outcome types: which account's client syncs into which
//! store, what can go wrong, and what one pass reports.

use crate::api::{ApiError, Client, MemberId, ShopRef};
use crate::clock::now_ms;
use crate::config::SyncSettings;
use crate::state::{Completeness, PassKind, StateError, Store};
use serde::Serialize;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SyncError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("a window task failed: {0}")]
    Task(String),
    #[error("stopped after the page in hand (shutdown, or the session's call budget is spent)")]
    Stopped,
}

impl SyncError {
    pub fn kind(&self) -> &'static str {
        match self {
            SyncError::Api(e) => e.kind(),
            SyncError::State(e) => e.kind(),
            SyncError::Task(_) => "task",
            SyncError::Stopped => "stopped",
        }
    }

    /// The account's daily quota ran out: the pass can go on on another account, or
    /// tomorrow, from where it stopped.
    pub fn is_quota(&self) -> bool {
        matches!(self, SyncError::Api(ApiError::QuotaExhausted { .. }))
    }
}

/// What one pass (or one session of a full pass that spans several) did.
#[derive(Debug, Clone, Serialize)]
pub struct PassReport {
    pub shop: String,
    pub kind: PassKind,
    pub started_ms: i64,
    pub finished_ms: i64,
    pub ok: bool,
    pub error: Option<String>,
    pub list_calls: u64,
    pub count_calls: u64,
    pub sku_calls: u64,
    pub item_calls: u64,
    pub other_calls: u64,
    pub items_seen: u64,
    pub creates: u64,
    pub updates: u64,
    pub deletes: u64,
    pub windows: u64,
    pub splits: u64,
    pub unreachable: u64,
    /// Items set aside because they could not be read (see `state::Quarantined`).
    pub quarantined: u64,
    pub completeness: Option<Completeness>,
    pub watermark_ms: Option<i64>,
    /// A full pass that did not finish in this session and resumes in the next.
    pub resumable: bool,
    /// For a full pass this session completed: what the whole pass cost, all sessions.
    pub full_pass_calls: Option<u64>,
}

/// Syncs shops through one account's client into the store.
#[derive(Clone)]
pub struct Engine {
    pub(super) client: Client,
    pub(super) store: Store,
    pub(super) sync: SyncSettings,
}

impl Engine {
    pub fn new(client: Client, store: Store, sync: SyncSettings) -> Engine {
        Engine { client, store, sync }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A shop's member id; URLs of shape 3 are resolved once a day at most.
    pub async fn resolve(&self, shop: &ShopRef) -> Result<MemberId, SyncError> {
        if let ShopRef::Url(url) = shop {
            if let Some(m) = self.store.resolved_url(url, now_ms()).and_then(|m| m.parse().ok()) {
                return Ok(m);
            }
            let m = self.client.resolve(shop).await?;
            self.store.remember_url(url, m.as_str(), now_ms());
            return Ok(m);
        }
        Ok(self.client.resolve(shop).await?)
    }
}
