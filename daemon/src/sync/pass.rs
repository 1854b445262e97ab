//! One pass of a shop: full (or the next session of an open full pass) when asked, when the
//! shop has no watermark yet, or when its first full pass is still open; otherwise
//! incremental, from the watermark (minus the overlap) to now in windows of at most 30 days,
//! oldest first, the watermark moving with every page in the same transaction as the page's
//! items and events. A seller's shop (`source = "seller"`) is swept instead (`sweep.rs`).

use super::engine::{Engine, PassReport, SyncError};
use super::full;
use super::plan::slices;
use super::stats::PassStats;
use super::window::{run_windows, Ctx, Task};
use crate::api::MemberId;
use crate::clock::now_ms;
use crate::config::SkuRefresh;
use crate::state::{PassKind, PassRecord};
use std::sync::Arc;

impl Engine {
    /// One pass of a shop: full when asked, or when the shop has no watermark yet;
    /// otherwise incremental from `since` (a backfill) or from the watermark. A full pass
    /// that is open (stopped by quota, shutdown or a crash) is resumed, never restarted.
    pub async fn pass(
        &self,
        shop: &MemberId,
        full: bool,
        since_ms: Option<i64>,
        stats: Arc<PassStats>,
    ) -> Result<PassReport, SyncError> {
        if let Some(seller) = self.sync.sellers.get(shop.as_str()) {
            let first = self.store.shop(shop.as_str())?.watermark_ms.is_none();
            return self.sweep_pass(shop, full || first, seller, stats).await;
        }
        let state = self.store.shop(shop.as_str())?;
        let overlap = self.sync.overlap.as_millis() as i64;
        let mut from = since_ms.or(state.watermark_ms.map(|w| w - overlap));
        if let (Some(f), Some(poll_from)) = (from, state.first_copy_poll_from(overlap)) {
            // A backfill of a shop still on its first copy moves the polls' watermark (see
            // `Store::commit_page`): it starts no later than they stand, leaving no hole.
            from = Some(f.min(poll_from));
        }
        let kind = match from {
            Some(_) if !full => PassKind::Incremental,
            _ => PassKind::Full,
        };
        let mut ctx = Ctx::new(self.clone(), shop.clone(), stats.clone(), kind == PassKind::Incremental);
        ctx.refresh_all_skus = kind == PassKind::Full && self.sync.full_pass_skus == SkuRefresh::All;
        if kind == PassKind::Full {
            ctx.skus_stale_before = Some(now_ms() - self.sync.sku_max_age.as_millis() as i64);
        }
        // Items an incremental pass writes while a full pass is open count as seen by it.
        ctx.mark = state.full.as_ref().map(|f| f.pass_id);
        let started_ms = now_ms();
        let result = match (kind, from) {
            (PassKind::Incremental, Some(from)) => {
                tracing::info!(shop = %shop, kind = ?kind, "pass started");
                let ctx = Arc::new(ctx);
                let slice = self.sync.slice.as_millis() as i64;
                // Oldest first, one window at a time: the watermark may only move over what
                // is done.
                let tasks = slices(from, started_ms, slice).into_iter().map(Task::fresh).collect();
                run_windows(&ctx, tasks, 1).await.map(|()| None)
            }
            _ => match full::open(&ctx) {
                Ok(progress) => {
                    tracing::info!(shop = %shop, kind = ?kind, session = progress.sessions, "pass started");
                    ctx.mark = Some(progress.pass_id);
                    ctx.persist_windows = true;
                    let ctx = Arc::new(ctx);
                    let r = full::run(&ctx, progress).await.map(Some);
                    if r.is_err() {
                        let (calls, ms) = ctx.unaccounted();
                        full::account_session(&ctx, calls, ms)?;
                    }
                    r
                }
                Err(e) => Err(e),
            },
        };
        let total_calls = result.as_ref().ok().and_then(|r| r.as_ref().map(|(_, calls)| *calls));
        let result = result.map(|r| r.map(|(c, _)| c));
        let mut report = self.finish(shop, kind, started_ms, &stats, result).await?;
        report.full_pass_calls = total_calls;
        Ok(report)
    }

    /// A poll the budget planner asked for: an incremental pass from the watermark; or, while
    /// the shop's first full pass is open, from where the polls since that pass's start
    /// stand (`poll_watermark_ms`, first the pass's `t_end`). The first copy of a big shop
    /// takes days; polling it meanwhile hands over what changes in those days as it
    /// happens, where otherwise every such change would wait for the copy's end. Items it
    /// writes carry the open pass's mark, so the pass counts them as seen and never deletes
    /// them. A shop with neither (or a seller's, swept whole) gets no poll: a full pass
    /// launched as a poll would spend calls nobody planned for.
    pub async fn poll(&self, shop: &MemberId, stats: Arc<PassStats>) -> Result<PassReport, SyncError> {
        let state = self.store.shop(shop.as_str())?;
        let first_copy = state.first_copy_poll_from(self.sync.overlap.as_millis() as i64);
        match (state.watermark_ms, first_copy) {
            (Some(_), _) => self.pass(shop, false, None, stats).await,
            (None, Some(from)) if !self.sync.sellers.contains_key(shop.as_str()) => {
                self.pass(shop, false, Some(from), stats).await
            }
            _ => Err(SyncError::Task(
                "nothing to poll from: the shop's first full pass has not started".into(),
            )),
        }
    }

    /// Records the pass in the shop's state and makes the report.
    pub(super) async fn finish(
        &self,
        shop: &MemberId,
        kind: PassKind,
        started_ms: i64,
        s: &PassStats,
        result: Result<Option<crate::state::Completeness>, SyncError>,
    ) -> Result<PassReport, SyncError> {
        let finished_ms = now_ms();
        let record = PassRecord {
            kind,
            started_ms,
            finished_ms,
            ok: result.is_ok(),
            calls: s.calls(),
            items_seen: PassStats::get(&s.items_seen),
            events: s.events(),
            error: result.as_ref().err().map(|e| e.to_string()),
        };
        let completeness = result.as_ref().ok().cloned().flatten();
        let state = self.store.update_shop(shop.as_str(), |st| {
            match kind {
                PassKind::Full => st.last_full = Some(record.clone()),
                _ => st.last_incremental = Some(record.clone()),
            }
            if let Some(c) = &completeness {
                st.completeness = Some(c.clone());
            }
        })?;
        self.store.flush().await?;
        let report = PassReport {
            shop: shop.to_string(),
            kind,
            started_ms,
            finished_ms,
            ok: record.ok,
            error: record.error.clone(),
            list_calls: PassStats::get(&s.list_calls),
            count_calls: PassStats::get(&s.count_calls),
            sku_calls: PassStats::get(&s.sku_calls),
            item_calls: PassStats::get(&s.item_calls),
            other_calls: PassStats::get(&s.other_calls),
            items_seen: record.items_seen,
            creates: PassStats::get(&s.creates),
            updates: PassStats::get(&s.updates),
            deletes: PassStats::get(&s.deletes),
            windows: PassStats::get(&s.windows_done),
            splits: PassStats::get(&s.splits),
            unreachable: PassStats::get(&s.unreachable),
            quarantined: PassStats::get(&s.quarantined),
            completeness,
            watermark_ms: state.watermark_ms,
            resumable: state.full.is_some(),
            full_pass_calls: None,
        };
        match &result {
            Ok(_) => tracing::info!(
                shop = %shop, kind = ?kind, calls = s.calls(), items = report.items_seen,
                creates = report.creates, updates = report.updates, deletes = report.deletes,
                ms = finished_ms - started_ms, "pass finished"
            ),
            Err(e) if report.resumable => tracing::warn!(
                shop = %shop, kind = ?kind, error = %e,
                "pass stopped; it resumes where it stopped at its next session"
            ),
            Err(e) => {
                tracing::warn!(shop = %shop, kind = ?kind, error = %e, "pass failed; nothing deleted, watermark kept")
            }
        }
        result.map(|_| report)
    }
}
