//! `shopsync status`: per shop its watermark, item count, last passes and completeness; per
//! account the calls used today.

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
    if as_json {
        let shops: Vec<_> = shops.iter().map(|(id, s)| json!({"shop": id, "state": s})).collect();
        let sinks: Vec<_> =
            ctx.settings.sinks.iter().map(|s| json!({"name": s.name, "plugin": s.plugin})).collect();
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
    println!("outbox {} events", ctx.store.outbox_len());
    Ok(())
}
