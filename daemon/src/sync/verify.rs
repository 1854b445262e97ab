//! Deletes and completeness at the end of a full pass.
//!
//! "Not seen" is not "gone": pages shift when items change during a pass, and the item at a
//! page boundary slips past. Every stored item without the pass's mark is therefore asked
//! for by id (`alibaba.item.get`); only an item the platform says is not found (delisted or
//! removed) gets its `delete`. One that is still there is stored in its current state, and
//! stamped. Candidates are read from the store in bounded chunks, so memory does not grow
//! with the shop, and a verification cut short resumes with the items still unmarked.

use super::diff::{apply, diff};
use super::engine::SyncError;
use super::normalize::{listing, with_skus};
use super::stats::bump;
use super::watch::quarantine;
use super::window::Ctx;
use crate::api::ApiError;
use crate::clock::now_ms;
use crate::state::{Completeness, Write};
use std::sync::Arc;

pub(super) async fn deletes(ctx: &Arc<Ctx>, pass_id: u64) -> Result<(), SyncError> {
    let store = &ctx.engine.store;
    let concurrency = ctx.engine.client.pacer().settings().concurrency.max(1);
    let mut after: Option<String> = None;
    let mut checked = 0u64;
    loop {
        let chunk = store.unseen_items(ctx.shop(), pass_id, after.as_deref(), concurrency * 10)?;
        let Some(last) = chunk.last().cloned() else { break };
        if checked == 0 {
            tracing::info!(shop = %ctx.shop, "checking items the full pass did not see");
        }
        checked += chunk.len() as u64;
        let mut tasks = tokio::task::JoinSet::new();
        for id in chunk {
            // Listed by this pass but unreadable: it is there, and asking again costs a call.
            if store.quarantined_item(ctx.shop(), &id)?.is_some_and(|q| q.last_seen_ms >= pass_id as i64) {
                continue;
            }
            let client = ctx.engine.client.clone();
            tasks.spawn(async move { (client.item_get(&id).await, id) });
        }
        let mut writes = Vec::new();
        let mut failed = None;
        while let Some(done) = tasks.join_next().await {
            let (res, id) = done.map_err(|e| SyncError::Task(e.to_string()))?;
            bump(&ctx.stats.item_calls, 1);
            match res {
                Ok(Some(raw)) => match listing(&raw) {
                    Ok(l) => {
                        let item = with_skus(l.item, raw.skus.unwrap_or_default());
                        if let Some(w) =
                            diff(store, ctx.shop(), item, l.listing_md5, Some(now_ms()), Some(pass_id))?
                        {
                            writes.push(w);
                        }
                        store.release(ctx.shop(), &[id.as_str()])?;
                    }
                    Err(e) => quarantine(store, ctx.shop(), &id, &e, raw.modified_time, &ctx.stats)?,
                },
                // There, but unreadable: not gone.
                Err(ApiError::Malformed(e)) => quarantine(store, ctx.shop(), &id, &e, None, &ctx.stats)?,
                Ok(None) => {
                    if let Some(last) = store.item(ctx.shop(), &id)? {
                        writes.push(Write::Delete { last });
                    }
                }
                // Keep what the other calls of the chunk found: they cost quota too.
                Err(e) => failed = Some(e),
            }
        }
        apply(store, ctx.shop(), &ctx.stats, &writes, None, None)?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        if ctx.stats.stopping() {
            return Err(SyncError::Stopped);
        }
        after = Some(last);
    }
    if checked > 0 {
        tracing::info!(shop = %ctx.shop, checked, "items the full pass did not see are checked");
    }
    Ok(())
}

/// Fetched (items carrying the pass's mark) vs official count, and the shares of items with
/// SKU details and with a price.
pub(super) fn completeness(ctx: &Ctx, pass_id: u64, official: u64) -> Result<Completeness, SyncError> {
    let (mut items, mut seen, mut with_price, mut listing_skus, mut with_skus) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    for s in ctx.engine.store.items(ctx.shop()) {
        let s = s?;
        items += 1;
        if s.seen == Some(pass_id) {
            seen += 1;
        }
        if !s.item.wholesale_prices.is_empty() {
            with_price += 1;
        }
        if !s.item.sku_ids.is_empty() {
            listing_skus += 1;
            if !s.item.skus.is_empty() {
                with_skus += 1;
            }
        }
    }
    let share = |n: u64, of: u64| if of == 0 { 1.0 } else { n as f64 / of as f64 };
    let unreachable = ctx.engine.store.shop(ctx.shop())?.unreachable_items();
    Ok(Completeness::judge(
        seen,
        official,
        unreachable,
        share(with_skus, listing_skus),
        share(with_price, items),
        now_ms(),
    ))
}
