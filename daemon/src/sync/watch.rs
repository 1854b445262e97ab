//! Watched items: single products synced through `alibaba.item.get` (SKUs come inline).
//!
//! They are stored under the pseudo-shop `watch:<name>`, since `alibaba.item.get` does not
//! say which shop an item belongs to; an item that comes back not found emits its `delete`
//! once and is then forgotten.

use super::engine::{Engine, SyncError};
use super::stats::{bump, PassStats};
use crate::clock::now_ms;
use crate::state::Store;

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
        // The same fetch, diff and commit as a change message's re-fetch of named offers.
        self.refetch(&key, items, stats).await?;
        Ok(key)
    }
}
