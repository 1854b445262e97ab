//! The full pass, resumable: its progress (windows not yet read, where each stands, the
//! official count, how many items it has stamped) lives in the shop's state, and the items it
//! has seen carry its mark in the store. Quota running out, SIGTERM, SIGKILL, a reload or a
//! move to another account stop it where it is; the next session, on any account, tomorrow
//! if need be, goes on from there without listing a finished window or a committed page
//! again. Deletes still come only after every window was read and each candidate was verified
//! gone.

use super::engine::SyncError;
use super::plan::PLATFORM_EPOCH_MS;
use super::stats::bump;
use super::verify;
use super::window::{run_windows, Ctx, Task};
use crate::api::{ItemFilter, SortType};
use crate::clock::now_ms;
use crate::state::{Completeness, FullProgress, WindowState};
use std::sync::Arc;

/// Opens a full pass for the shop, or returns the one already open.
pub(super) fn open(ctx: &Ctx) -> Result<FullProgress, SyncError> {
    let store = &ctx.engine.store;
    let now = now_ms();
    let st = store.update_shop(ctx.shop(), |st| {
        if st.full.is_none() && st.watermark_ms.is_none() {
            // A first copy starts: polls may follow the shop from here on while it runs
            // (see `Engine::poll`), from nothing an older pass left.
            st.poll_watermark_ms = None;
            st.rate.last_poll_ms = st.rate.last_poll_ms.or(Some(now));
        }
        let f = st.full.get_or_insert_with(|| {
            // The id must differ from any earlier pass's, or the old marks would count as
            // seen: the start time is, unless the clock went back, in which case go past
            // the last one.
            let last = st.last_full.as_ref().map_or(0, |p| p.started_ms.max(0) as u64);
            let id = (now.max(0) as u64).max(last + 1);
            FullProgress::new(id, now, now, WindowState::new(PLATFORM_EPOCH_MS, now, None))
        });
        f.sessions += 1;
    })?;
    st.full.ok_or_else(|| SyncError::Task("the full pass's progress was not stored".into()))
}

/// Runs (or resumes) the open full pass to its end: every window, then deletes, then the
/// completeness check, then the watermark. `progress` is what [`open`] returned. Returns the
/// completeness and what the whole pass cost, all its sessions together.
pub(super) async fn run(
    ctx: &Arc<Ctx>,
    mut progress: FullProgress,
) -> Result<(Completeness, u64), SyncError> {
    let e = &ctx.engine;
    let shop = ctx.shop();
    let official = match progress.official {
        Some(n) => n,
        None => {
            bump(&ctx.stats.count_calls, 1);
            let (n, oldest) = if e.client.is_param2() {
                // param2 has no count call, and a window wider than a slice is read in slices
                // (a wide saturated list stalls): its plain listing, oldest first, gives the
                // count and where the first slice starts, in one call. Without it the pass
                // would list every month back to 2001.
                let p = e
                    .client
                    .items_list(&ctx.shop, &ItemFilter::default(), 1, 1, SortType::ModifiedAsc)
                    .await?;
                let oldest = p
                    .items
                    .iter()
                    .filter_map(|i| i.modified_time)
                    .chain(p.bad.iter().filter_map(|b| b.modified_ms))
                    .min();
                (p.total_results, oldest)
            } else {
                (e.client.items_count(&ctx.shop, &ItemFilter::default()).await?, None)
            };
            let untouched = |w: &WindowState| w.start == PLATFORM_EPOCH_MS && w.next_page == 1;
            if let Some(t) = oldest {
                progress.windows.iter_mut().filter(|w| untouched(w)).for_each(|w| w.start = t.min(w.end));
            }
            e.store.update_shop(shop, |st| {
                if let Some(f) = st.full.as_mut() {
                    f.official = Some(n);
                    if let Some(t) = oldest {
                        f.windows.iter_mut().filter(|w| untouched(w)).for_each(|w| w.start = t.min(w.end));
                    }
                }
            })?;
            n
        }
    };
    // Items a stopped session listed but could not fetch the details of: first, so that
    // nothing is parked when the windows end.
    e.store.clear_parked(shop, Some(progress.pass_id))?;
    super::window::unpark(ctx, e.store.parked_items(shop, progress.pass_id)?).await?;
    if !progress.verifying {
        if progress.sessions > 1 {
            tracing::info!(
                shop = %ctx.shop, windows_left = progress.windows.len(), windows_done = progress.windows_done,
                items_seen = progress.items_seen, official, "full pass resumes where it stopped"
            );
        }
        ctx.resume_splits(&progress.splits);
        let tasks: Vec<Task> = progress.windows.iter().cloned().map(Task::resumed).collect();
        let concurrency = e.client.pacer().settings().concurrency.max(1);
        run_windows(ctx, tasks, concurrency).await?;
        e.store.update_shop(shop, |st| {
            if let Some(f) = st.full.as_mut() {
                f.verifying = true;
            }
        })?;
    }
    // Every window was read: now, and only now, items without the pass's mark may be gone.
    verify::deletes(ctx, progress.pass_id).await?;
    let c = verify::completeness(ctx, progress.pass_id, official)?;
    if !c.complete {
        tracing::warn!(
            shop = %ctx.shop, fetched = c.fetched, official = c.official, sku_share = c.sku_share,
            price_share = c.price_share, "full pass incomplete"
        );
    }
    let st = e.store.shop(shop)?;
    let open = st.full;
    let held = [open.as_ref().and_then(|f| f.held_ms), ctx.held_at()].into_iter().flatten().min();
    let total_calls = open.as_ref().map_or(0, |f| f.calls) + ctx.unaccounted().0;
    // Everything before `t_end` was read by this pass, and polls that ran while a first copy
    // was open read on from there: the watermark goes to the later, unless a millisecond held.
    let mark = match held {
        Some(h) => h.min(progress.t_end),
        None => progress.t_end.max(st.poll_watermark_ms.unwrap_or(progress.t_end)),
    };
    e.store.finish_full(shop, progress.pass_id, mark)?;
    Ok((c, total_calls))
}

/// Adds a session's calls and time to the open pass's progress (for its estimated finish).
pub(super) fn account_session(ctx: &Ctx, calls: u64, ms: i64) -> Result<(), SyncError> {
    ctx.engine.store.update_shop(ctx.shop(), |st| {
        if let Some(f) = st.full.as_mut() {
            f.calls += calls;
            f.active_ms += ms;
        }
    })?;
    Ok(())
}
