//! Targeted re-fetch: named items of a shop fetched again one by one (the way watched items
//! are), for the platform's change messages, which carry ids and nothing else.
//!
//! The items are diffed against the shop's own stored copies, so an event looks exactly as
//! if a pass had seen the change. An item the platform answers "not found" (deleted, or off
//! sale) is deleted only if the shop holds it: a message about an offer the copy never had
//! makes no event, and a message that says "deleted" about an offer still on sale makes an
//! update, not a delete: only the platform's answer counts.

use super::diff::{apply, diff};
use super::engine::{Engine, SyncError};
use super::normalize::{listing, with_skus};
use super::stats::{bump, PassStats};
use super::watch::quarantine;
use crate::api::ApiError;
use crate::clock::now_ms;
use crate::state::{PageMark, Write};

impl Engine {
    /// Fetches `ids` again and commits what changed under the shop `key` (its member id, as
    /// passes store it). The caller holds the shop's pass lock: a pass committing a page it
    /// read before this fetch would otherwise write an older state over a newer one.
    pub async fn refetch(&self, key: &str, ids: &[String], stats: &PassStats) -> Result<(), SyncError> {
        let concurrency = self.client.pacer().settings().concurrency.max(1);
        for chunk in ids.chunks(concurrency * 10) {
            let mut tasks = tokio::task::JoinSet::new();
            for id in chunk {
                let (client, id) = (self.client.clone(), id.clone());
                tasks.spawn(async move { (client.item_get(&id).await, id) });
            }
            let mut writes = Vec::new();
            let mut forget = Vec::new();
            while let Some(done) = tasks.join_next().await {
                let (res, id) = done.map_err(|e| SyncError::Task(e.to_string()))?;
                bump(&stats.item_calls, 1);
                let raw = match res {
                    Ok(raw) => raw,
                    Err(ApiError::Malformed(e)) => {
                        quarantine(&self.store, key, &id, &e, None, stats)?;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let Some(raw) = raw else {
                    match self.store.item(key, &id)? {
                        Some(last) => writes.push(Write::Delete { last }),
                        // Not stored: an open full pass may hold it parked, now out of date.
                        None => forget.push(id),
                    }
                    continue;
                };
                bump(&stats.items_seen, 1);
                let l = match listing(&raw) {
                    Ok(l) => l,
                    Err(e) => {
                        quarantine(&self.store, key, &id, &e, raw.modified_time, stats)?;
                        continue;
                    }
                };
                let item = with_skus(l.item, raw.skus.unwrap_or_default());
                if let Some(w) = diff(&self.store, key, item, l.listing_md5, Some(now_ms()), None)? {
                    writes.push(w);
                }
                self.store.release(key, &[id.as_str()])?;
            }
            let forget = (!forget.is_empty()).then(|| PageMark { forget, ..PageMark::default() });
            apply(&self.store, key, stats, &writes, None, forget.as_ref())?;
        }
        Ok(())
    }
}
