//! Watched items: single products synced through `alibaba.item.get` (SKUs come inline).
//!
//! They are stored under the pseudo-shop `watch:<name>`, since `alibaba.item.get` does not
//! say which shop an item belongs to; an item that comes back not found emits its `delete`
//! once and is then forgotten.

use super::diff::{apply, diff};
use super::engine::{Engine, SyncError};
use super::normalize::{listing, with_skus};
use super::stats::{bump, PassStats};
use crate::api::ApiError;
use crate::clock::now_ms;
use crate::state::{Store, Write};

/// Sets aside an item `alibaba.item.get` answered in a shape that cannot be read: logged,
/// counted, kept in the quarantine until a later read parses.
pub(super) fn quarantine(
    store: &Store,
    key: &str,
    item_id: &str,
    error: &str,
    modified_ms: Option<i64>,
    stats: &PassStats,
) -> Result<(), SyncError> {
    bump(&stats.quarantined, 1);
    let q = store.quarantine(key, item_id, error, modified_ms, now_ms())?;
    tracing::warn!(shop = key, item_id, error, times = q.times, "item unreadable; quarantined");
    Ok(())
}

impl Engine {
    /// Syncs the watch list `name`; returns the store key its items live under.
    pub async fn watch_pass(
        &self,
        name: &str,
        items: &[String],
        stats: &PassStats,
    ) -> Result<String, SyncError> {
        let key = format!("watch:{name}");
        let concurrency = self.client.pacer().settings().concurrency.max(1);
        for chunk in items.chunks(concurrency * 10) {
            let mut tasks = tokio::task::JoinSet::new();
            for id in chunk {
                let (client, id) = (self.client.clone(), id.clone());
                tasks.spawn(async move { (client.item_get(&id).await, id) });
            }
            let mut writes = Vec::new();
            while let Some(done) = tasks.join_next().await {
                let (res, id) = done.map_err(|e| SyncError::Task(e.to_string()))?;
                bump(&stats.item_calls, 1);
                let raw = match res {
                    Ok(raw) => raw,
                    Err(ApiError::Malformed(e)) => {
                        quarantine(&self.store, &key, &id, &e, None, stats)?;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                match raw {
                    Some(raw) => {
                        bump(&stats.items_seen, 1);
                        let l = match listing(&raw) {
                            Ok(l) => l,
                            Err(e) => {
                                quarantine(&self.store, &key, &id, &e, raw.modified_time, stats)?;
                                continue;
                            }
                        };
                        let item = with_skus(l.item, raw.skus.unwrap_or_default());
                        if let Some(w) = diff(&self.store, &key, item, l.listing_md5, Some(now_ms()), None)? {
                            writes.push(w);
                        }
                        self.store.release(&key, &[id.as_str()])?;
                    }
                    None => {
                        if let Some(last) = self.store.item(&key, &id)? {
                            writes.push(Write::Delete { last });
                        }
                    }
                }
            }
            apply(&self.store, &key, stats, &writes, None, None)?;
        }
        Ok(key)
    }
}
