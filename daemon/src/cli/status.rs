//! `shopsync status`: per shop its watermark, item count, last passes, completeness and the
//! open full pass's progress with its estimated finish; per account the calls used today and
//! when the quota resets; per sink its cursor, lag and dead letters.

use super::context::Context;
use crate::clock::{now_ms, show_ms};
use crate::schedule::estimate;
use crate::state::PassRecord;
use serde_json::json;

pub fn status(ctx: &Context, as_json: bool) -> anyhow::Result<()> {
    let shops = ctx.store.shops()?;
    let now = now_ms();
    let accounts: Vec<_> = ctx
        .clients
        .iter()
        .map(|c| {
            let q = c.quota();
            json!({"name": c.account(), "calls_today": q.used(now), "daily_quota": q.limit(),
                   "remaining": q.remaining(now), "resets_ms": q.resets_at(now)})
        })
        .collect();
    let (quota_left, quota_daily) =
        ctx.clients.iter().fold((0, 0), |(l, d), c| (l + c.quota().remaining(now), d + c.quota().limit()));
    let day = ctx.clients.first().map(|c| c.quota().days()).unwrap_or_default();
    let eta = |f: &crate::state::FullProgress| estimate::finish_at(f, now, quota_left, quota_daily, day);
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
        let shops: Vec<_> = shops
            .iter()
            .map(|(id, s)| {
                let progress = s.full.as_ref().map(|f| {
                    json!({"windows_done": f.windows_done, "windows_total": f.windows_total(),
                           "items_seen": f.items_seen, "official": f.official, "sessions": f.sessions,
                           "calls": f.calls, "verifying": f.verifying,
                           "calls_left_estimate": estimate::calls_left(f), "estimated_finish_ms": eta(f)})
                });
                let quarantined = ctx.store.quarantined(id).unwrap_or_default();
                json!({"shop": id, "state": s, "full_pass_progress": progress, "quarantined": quarantined,
                       "unreachable_items": s.unreachable_items()})
            })
            .collect();
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
        let quarantined = ctx.store.quarantined(id).unwrap_or_default();
        if let Some(q) = quarantined.first() {
            println!(
                "  quarantined      {} items unreadable, retried every pass (e.g. {}: {})",
                quarantined.len(),
                q.item_id,
                q.error
            );
        }
        if s.unreachable_items() > 0 {
            println!(
                "  unreachable      {} items no query reaches, on {} milliseconds",
                s.unreachable_items(),
                s.unreachable.len()
            );
        }
        if let Some(f) = &s.full {
            println!(
                "  full pass open   windows {} of {}, items {} of {} official, {} sessions, {} calls{}; finish {}",
                f.windows_done,
                f.windows_total(),
                f.items_seen,
                f.official.map_or("?".into(), |n| n.to_string()),
                f.sessions,
                f.calls,
                if f.verifying { ", verifying deletes" } else { "" },
                eta(f).map_or("not yet estimated".into(), show_ms)
            );
        }
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
        println!(
            "account {} calls today {} of {}, resets {}",
            a["name"],
            a["calls_today"],
            a["daily_quota"],
            a["resets_ms"].as_i64().map_or("?".into(), show_ms)
        );
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
