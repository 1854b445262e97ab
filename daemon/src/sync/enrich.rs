//! SKU details, fetched 20 ids a call.
//!
//! The list call has no SKU details, so they come from `alibaba.item.sku.get`, at most 20
//! ids a call. Batching per page would leave a half-empty call behind every page (~5% more
//! calls); the batcher instead carries ids across the pages of a window, so only a window's
//! very last call is partial. Batches are fetched one at a time and every item whose SKUs
//! are in is committed at once, so a pass cut short (quota, SIGKILL) loses at most the
//! details of the few items still waiting. Details are dropped once every item that asked
//! for them has taken them, so a window holds only the SKUs of its items still waiting
//! (holding a whole window's was ~22 MiB of a 100,000-item pass's peak heap).

use super::stats::{bump, PassStats};
use crate::api::{ApiError, Client, RawSku, MAX_SKU_IDS};
use std::collections::{HashMap, HashSet};

#[derive(Default)]
pub(super) struct SkuBatcher {
    queue: Vec<String>,
    queued: HashSet<String>,
    /// Fetched ids: found ones with their details, unknown ones (left out by the platform)
    /// with none.
    fetched: HashMap<String, Option<RawSku>>,
    /// Per id, how many staged items asked for it and have not taken it yet.
    wanted: HashMap<String, u32>,
}

impl SkuBatcher {
    /// Asks for these ids' details, for one staged item; pair it with one `take`.
    pub fn want(&mut self, ids: &[String]) {
        for id in ids {
            *self.wanted.entry(id.clone()).or_insert(0) += 1;
            if !self.fetched.contains_key(id) && self.queued.insert(id.clone()) {
                self.queue.push(id.clone());
            }
        }
    }

    /// True when every id has been fetched.
    pub fn ready(&self, ids: &[String]) -> bool {
        ids.iter().all(|id| self.fetched.contains_key(id))
    }

    /// The details of these ids, for the item that asked with `want`. An item listed twice
    /// in one read (pages shift) asked twice, so both copies get the details; they are
    /// dropped when the last asker has taken them. A copy that asks only after that is
    /// fetched again (one more call, for a rare shift) rather than stored without SKUs.
    pub fn take(&mut self, ids: &[String]) -> Vec<RawSku> {
        let skus = ids.iter().filter_map(|id| self.fetched.get(id).cloned().flatten()).collect();
        for id in ids {
            if let Some(n) = self.wanted.get_mut(id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.wanted.remove(id);
                    self.fetched.remove(id);
                }
            }
        }
        skus
    }

    /// Whether a batch is due: a full one of 20, or with `all` the partial rest.
    pub fn due(&self, all: bool) -> bool {
        self.queue.len() >= MAX_SKU_IDS || (all && !self.queue.is_empty())
    }

    /// Fetches one batch (a full one, or the partial rest when that is all there is).
    pub async fn fetch_one(&mut self, client: &Client, stats: &PassStats) -> Result<(), ApiError> {
        let n = self.queue.len().min(MAX_SKU_IDS);
        if n == 0 {
            return Ok(());
        }
        let batch: Vec<String> = self.queue.drain(..n).collect();
        if !client.is_param2() {
            // On param2 the list brought the details: answering costs no call.
            bump(&stats.sku_calls, 1);
        }
        let skus = client.sku_get(&batch).await?;
        bump(&stats.skus_fetched, skus.len() as u64);
        for id in &batch {
            self.queued.remove(id);
            self.fetched.insert(id.clone(), None);
        }
        for s in skus {
            self.fetched.insert(s.sku_id.clone(), Some(s));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: an item listed twice in one read (pages shift) was committed twice, and
    /// the second copy found its SKU details already handed over: it was stored without SKUs.
    #[test]
    fn an_item_listed_twice_keeps_its_skus() {
        let mut b = SkuBatcher::default();
        let ids = vec!["1".to_string(), "2".to_string()];
        b.want(&ids);
        b.want(&ids);
        assert_eq!(b.queue.len(), 2, "asked once");
        let batch: Vec<String> = b.queue.drain(..).collect();
        for id in &batch {
            b.queued.remove(id);
            b.fetched.insert(id.clone(), None);
        }
        let sku =
            RawSku { sku_id: "1".into(), item_id: None, spec: "红".into(), price: None, stock: Some(1) };
        b.fetched.insert("1".into(), Some(sku));
        assert!(b.ready(&ids));
        assert_eq!(b.take(&ids).len(), 1);
        assert!(b.ready(&ids), "the second copy asked too: the details stay for it");
        assert_eq!(b.take(&ids).len(), 1, "the second copy gets the same details");
        assert!(b.fetched.is_empty() && b.wanted.is_empty(), "taken by every asker, the details are dropped");
        b.want(&ids);
        assert!(!b.ready(&ids) && b.due(true), "a copy asking after that is fetched again, not stored bare");
    }
}
