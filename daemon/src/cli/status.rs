//! `shopsync status`: per shop its watermark, item count, last passes and completeness; per
//! account the calls used today; per sink its cursor, lag and dead letters.

use super::context::Context;
use crate::clock::{now_ms, shanghai_day, show_ms};
use crate::state::PassRecord;
use serde_json::json;

pub fn status(ctx: &Context, as_json: bool) -> anyhow::Result<()> {
    let shops = ctx.store.shops()?;
    let today = shanghai_day(now_ms());
    let accounts: Vec<_> = ctx
        .settings
        .accounts
        .iter()
        .map(|a| {
            let used = ctx.store.calls_on(&a.name, today);
            json!({"name": a.name, "calls_today": used, "daily_quota": a.daily_quota,
                   "remaining": a.daily_quota.saturating_sub(used)})
        })
        .collect();
    let last = ctx.store.outbox_last_pos()?;
    let mut sinks = Vec::new();
    for s in &ctx.settings.sinks {
        let cursor = ctx.store.sink_cursor(&s.name)?;
        let dead = ctx.store.dlq(&s.name)?;
        sinks.push(json!({
            "name": s.name, "plugin": s.plugin, "cursor": cursor,
            "lag": cursor.map(|c| last.saturating_sub(c)),
            "dead_letter_batches": dead.len(),
            "dead_letter_events": dead.iter().map(|d| d.events).sum::<u64>(),
        }));
    }
    if as_json {
        let shops: Vec<_> = shops.iter().map(|(id, s)| json!({"shop": id, "state": s})).collect();
        let out = json!({"shops": shops, "accounts": accounts, "sinks": sinks, "outbox_events": ctx.store.outbox_len()});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let pass = |p: &Option<PassRecord>| match p {
        Some(p) => format!(
            "{} {} ({} calls, {} items, {} events, {:.1} s){}",
            show_ms(p.finished_ms),
            if p.ok { "ok" } else { "FAILED" },
            p.calls,
            p.items_seen,
            p.events,
            (p.finished_ms - p.started_ms) as f64 / 1000.0,
            p.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
        ),
        None => "never".into(),
    };
    for (id, s) in &shops {
        println!("shop {id}");
        println!("  watermark        {}", s.watermark_ms.map_or("none (next pass is full)".into(), show_ms));
        println!("  items            {}", s.item_count);
        println!("  last full        {}", pass(&s.last_full));
        println!("  last incremental {}", pass(&s.last_incremental));
        if let Some(c) = &s.completeness {
            println!(
                "  completeness     {} of {} official, SKU details {:.1}%, priced {:.1}%: {}",
                c.fetched,
                c.official,
                c.sku_share * 100.0,
                c.price_share * 100.0,
                if c.complete { "complete" } else { "INCOMPLETE" }
            );
        }
    }
    for a in &accounts {
        println!("account {} calls today {} of {}", a["name"], a["calls_today"], a["daily_quota"]);
    }
    for s in &sinks {
        println!(
            "sink {} ({}): cursor {}, {} events behind, dead letters: {} events in {} batches",
            s["name"], s["plugin"], s["cursor"], s["lag"], s["dead_letter_events"], s["dead_letter_batches"]
        );
    }
    println!("outbox {} events", ctx.store.outbox_len());
    Ok(())
}
