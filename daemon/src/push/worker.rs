//! Drains the stored messages: per shop, the offers its pending messages name are fetched
//! again in one go, under the shop's pass lock, and the messages are marked done once the
//! result is committed.

use super::{Directory, Route};
use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::state::{PushRecord, PushStatus, StateError, Store};
use crate::sync::{Engine, PassStats};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Messages read from the backlog at a time.
const BATCH: usize = 500;
/// Failed re-fetches of a message before it is given up (the shop's passes catch the change).
const MAX_ATTEMPTS: u32 = 12;
/// How long a message waits when its shop's pass lock is taken.
const BUSY_WAIT_MS: i64 = 1_000;
/// Finished messages are kept this long (their `msgId` still deduplicates a redelivery): the
/// platform keeps a message about three months for pulling, so nothing older comes again.
const KEEP_MS: i64 = 100 * 86_400_000;
/// How often finished messages past `KEEP_MS` are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);

pub(super) struct Worker {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub directory: Arc<dyn Directory>,
}

/// Wait before the next try after `attempts` failures: 2 s, 4 s, … up to 5 minutes.
fn backoff_ms(attempts: u32) -> i64 {
    (1_000i64 << attempts.min(9)).min(300_000)
}

impl Worker {
    pub async fn run(self, wake: Arc<tokio::sync::Notify>) {
        let mut pruned_at: Option<std::time::Instant> = None;
        loop {
            if pruned_at.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                pruned_at = Some(std::time::Instant::now());
                match self.store.prune_push(now_ms() - KEEP_MS) {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(messages = n, "finished change messages older than 100 days forgotten")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, kind = e.kind(), "old change messages cannot be pruned")
                    }
                }
            }
            let worked = match self.round().await {
                Ok(worked) => worked,
                Err(e) => {
                    tracing::warn!(error = %e, kind = e.kind(), "change messages cannot be read from the state");
                    false
                }
            };
            self.metrics.push_backlog.set(self.store.push_backlog() as i64);
            if !worked {
                // New messages wake the worker; deferred ones are looked at every second.
                let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
            }
        }
    }

    /// Handles the messages due now; true when any was finished.
    async fn round(&self) -> Result<bool, StateError> {
        let due = self.store.push_due(now_ms(), BATCH)?;
        let mut by_member: BTreeMap<String, Vec<PushRecord>> = BTreeMap::new();
        let mut worked = false;
        for rec in due {
            match rec.member.clone() {
                Some(m) if !rec.offer_ids.is_empty() => by_member.entry(m).or_default().push(rec),
                member => {
                    let result = if member.is_none() { "unknown_shop" } else { "ignored" };
                    self.metrics.push_messages.with_label_values(&[result]).inc();
                    tracing::warn!(msg_id = %rec.msg_id, topic = %rec.topic, "change message names no member or no offer; dropped");
                    self.store.update_push(&[rec.msg_id], |r| r.status = PushStatus::Dropped)?;
                    worked = true;
                }
            }
        }
        for (member, recs) in by_member {
            worked |= self.shop(&member, recs).await?;
        }
        Ok(worked)
    }

    /// Applies the messages of one member; true when they were finished (done or dropped).
    async fn shop(&self, member: &str, recs: Vec<PushRecord>) -> Result<bool, StateError> {
        let ids: Vec<String> = recs.iter().map(|r| r.msg_id.clone()).collect();
        let Some(Route { key, client, lock, sync }) = self.directory.route(member) else {
            self.metrics.push_messages.with_label_values(&["unknown_shop"]).inc_by(ids.len() as u64);
            tracing::warn!(
                member,
                messages = ids.len(),
                "change messages for a member no configured shop has; dropped"
            );
            self.store.update_push(&ids, |r| r.status = PushStatus::Dropped)?;
            return Ok(true);
        };
        let Ok(_guard) = lock.try_lock() else {
            // A pass of the shop runs: it may commit a page read before this fetch, which
            // would put an older state over the newer one. Wait for it to end.
            tracing::debug!(shop = %key, messages = ids.len(), "a pass of the shop runs; change messages wait");
            let later = now_ms() + BUSY_WAIT_MS;
            self.store.update_push(&ids, |r| r.next_ms = later)?;
            return Ok(false);
        };
        let offers: Vec<String> = recs
            .iter()
            .flat_map(|r| r.offer_ids.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let stats = PassStats::default();
        let engine = Engine::new(client, self.store.clone(), sync);
        let result = engine.refetch(&key, &offers, &stats).await;
        let m = &self.metrics;
        m.push_refetch.with_label_values::<&str>(&[]).inc_by(PassStats::get(&stats.item_calls));
        let (creates, updates, deletes) =
            (PassStats::get(&stats.creates), PassStats::get(&stats.updates), PassStats::get(&stats.deletes));
        m.events.with_label_values(&["create"]).inc_by(creates);
        m.events.with_label_values(&["update"]).inc_by(updates);
        m.events.with_label_values(&["delete"]).inc_by(deletes);
        match result {
            Ok(()) => {
                self.store.update_push(&ids, |r| r.status = PushStatus::Done)?;
                tracing::info!(shop = %key, messages = ids.len(), offers = offers.len(), creates, updates, deletes, "change messages applied");
                Ok(true)
            }
            Err(e) => {
                let now = now_ms();
                self.store.update_push(&ids, |r| {
                    r.attempts += 1;
                    r.next_ms = now + backoff_ms(r.attempts);
                    if r.attempts >= MAX_ATTEMPTS {
                        r.status = PushStatus::Failed;
                    }
                })?;
                let given_up = recs.iter().filter(|r| r.attempts + 1 >= MAX_ATTEMPTS).count();
                tracing::warn!(shop = %key, messages = ids.len(), given_up, error = %e, kind = e.kind(), "re-fetch for change messages failed; retried later");
                Ok(given_up > 0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_ms(1), 2_000);
        assert_eq!(backoff_ms(2), 4_000);
        assert_eq!(backoff_ms(30), 300_000);
    }
}
