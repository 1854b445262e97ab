//! Deletes and completeness at the end of a full pass.
//!
//! "Not seen" is not "gone": pages shift when items change during a pass, and the item at a
//! page boundary slips past. Every stored item the pass did not see is therefore asked for by
//! id (`alibaba.item.get`); only an item the platform says is not found (delisted or
//! removed) gets its `delete`. One that is still there is stored in its current state.

use super::normalize::{listing, with_skus};
use super::pass::{apply, diff, Ctx, SyncError};
use super::stats::bump;
use crate::clock::now_ms;
use crate::state::{Completeness, Write};
use std::sync::Arc;

pub(super) async fn deletes(ctx: &Arc<Ctx>) -> Result<(), SyncError> {
    let store = &ctx.engine.store;
    let missing: Vec<String> = {
        let seen = ctx.seen.lock().map_err(|_| SyncError::Task("seen set poisoned".into()))?;
        store.item_ids(ctx.shop())?.into_iter().filter(|id| !seen.contains(id)).collect()
    };
    if missing.is_empty() {
        return Ok(());
    }
    tracing::info!(shop = %ctx.shop, candidates = missing.len(), "checking items the full pass did not see");
    let concurrency = ctx.engine.client.pacer().settings().concurrency.max(1);
    for chunk in missing.chunks(concurrency * 10) {
        let mut tasks = tokio::task::JoinSet::new();
        for id in chunk {
            let (client, id) = (ctx.engine.client.clone(), id.clone());
            tasks.spawn(async move { (client.item_get(&id).await, id) });
        }
        let mut writes = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let (res, id) = done.map_err(|e| SyncError::Task(e.to_string()))?;
            bump(&ctx.stats.item_calls, 1);
            match res? {
                Some(raw) => {
                    let l = listing(&raw);
                    ctx.mark_seen(&l.item.item_id);
                    let item = with_skus(l.item, raw.skus.unwrap_or_default());
                    if let Some(w) = diff(store, ctx.shop(), item, l.listing_md5)? {
                        writes.push(w);
                    }
                }
                None => {
                    if let Some(last) = store.item(ctx.shop(), &id)? {
                        writes.push(Write::Delete { last });
                    }
                }
            }
        }
        apply(store, ctx.shop(), &ctx.stats, &writes, None)?;
    }
    Ok(())
}

/// Fetched vs official count, and the shares of items with SKU details and with a price.
pub(super) fn completeness(ctx: &Ctx, official: u64) -> Result<Completeness, SyncError> {
    let (mut items, mut with_price, mut listing_skus, mut with_skus) = (0u64, 0u64, 0u64, 0u64);
    for s in ctx.engine.store.items(ctx.shop()) {
        let s = s?;
        items += 1;
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
    Ok(Completeness::judge(
        ctx.seen_count() as u64,
        official,
        share(with_skus, listing_skus),
        share(with_price, items),
        now_ms(),
    ))
}
