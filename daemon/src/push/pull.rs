//! The pull fallback: messages the platform could not deliver (the receiver was down, or
//! answered anything but 200 to every try) are kept by the platform for about three months
//! and fetched here with `push.cursor.messageList`, once at every start and then every
//! `[push] pull_every`.
//!
//! The platform counts what that call returns as consumed, so each page is stored and
//! flushed before the next is asked for; the same `msgId` deduplicates a message that was
//! also delivered. A page shorter than the most one call returns is the last: an empty call
//! is spent only when the last page was exactly full.

use super::receiver::accept;
use super::Directory;
use crate::api::param2::MESSAGE_PAGE;
use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::state::Store;
use std::sync::Arc;
use std::time::Duration;

pub(super) struct Puller {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub directory: Arc<dyn Directory>,
    pub wake: Arc<tokio::sync::Notify>,
    /// Zero: only the pull at start.
    pub every: Duration,
}

/// The wait before a failed pull is tried again, doubling up to `every` (or to an hour).
const FIRST_RETRY: Duration = Duration::from_secs(30);

impl Puller {
    pub async fn run(self) {
        let mut failures = 0u32;
        loop {
            let ok = self.pull_all().await;
            failures = if ok { 0 } else { failures + 1 };
            let cap = if self.every.is_zero() { Duration::from_secs(3_600) } else { self.every };
            let wait = match failures {
                // A pull that worked: the next in `every`, or none when only the start's is asked.
                0 if self.every.is_zero() => return,
                0 => self.every,
                n => FIRST_RETRY.saturating_mul(1 << (n - 1).min(10)).min(cap),
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Pulls until the platform has nothing left; false when a call failed or a page could
    /// not be stored (the pull then stops: the next page would be consumed too).
    async fn pull_all(&self) -> bool {
        let Some(client) = self.directory.puller() else { return true };
        let mut pulled = 0u64;
        loop {
            let page = match client.pull_messages().await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, kind = e.kind(), pulled, "pulling undelivered change messages failed; tried again later");
                    return false;
                }
            };
            let n = page.len();
            for raw in &page {
                // Consumed on the platform and not stored here: the shop's next pass still
                // sees the change; nothing else can bring the message back.
                if let Err(e) = accept(&self.store, &self.metrics, raw) {
                    tracing::error!(error = %e, kind = e.kind(), "a pulled change message cannot be stored; pulling stops");
                    return false;
                }
            }
            if let Err(e) = self.store.flush().await {
                tracing::error!(error = %e, kind = e.kind(), "pulled change messages cannot be flushed; pulling stops");
                return false;
            }
            pulled += n as u64;
            self.metrics.push_pulled.with_label_values::<&str>(&[]).inc_by(n as u64);
            if n > 0 {
                self.metrics.push_backlog.set(self.store.push_backlog() as i64);
                self.wake.notify_one();
            }
            if n < MESSAGE_PAGE as usize {
                break;
            }
        }
        if pulled > 0 {
            tracing::info!(
                messages = pulled,
                at_ms = now_ms(),
                "undelivered change messages pulled from the platform"
            );
        }
        true
    }
}
