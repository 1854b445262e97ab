//! `shopsync status`: per shop its watermark (a UTC time and its age), item count, last
//! passes, completeness and the open full pass's progress with its estimated finish; per
//! account the calls used today of its quota and when the quota resets; per sink its cursor,
//! lag, health and dead letters. A plain-text table, or JSON with `--json` (a shape scripts
//! and the e2e tests read: fields are only ever added).
//!
//! The same text comes out whether the running daemon answered or the CLI opened the state
//! itself; only a sink's health needs the daemon (it lives in the running delivery loops).

use crate::api::Client;
use crate::clock::now_ms;
use crate::config::Settings;
use crate::schedule::estimate;
use crate::state::{FullProgress, PassRecord, Store};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What `status` reads.
pub struct StatusInput<'a> {
    pub settings: &'a Settings,
    pub store: &'a Store,
    /// One per account, as configured (their quota counts are in the state).
    pub clients: &'a [Client],
    /// Per running sink, whether it delivers; `None` without a daemon.
    pub health: Option<&'a BTreeMap<String, bool>>,
}

/// `2026-01-02 03:04:05 UTC`.
pub(crate) fn utc(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string().replace('T', " ").replace('Z', " UTC")
}

/// A span in its two largest units: `3h 12m`, `45s`.
pub(crate) fn span(ms: i64) -> String {
    let secs = (ms.max(0) / 1000) as u64;
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// Rows as columns padded to their widest cell (the last column unpadded).
fn table(out: &mut String, indent: &str, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let mut line = indent.to_string();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = width[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn pass(p: &Option<PassRecord>, now: i64) -> String {
    match p {
        Some(p) => format!(
            "{} ({} ago) {}: {} calls, {} items, {} events, {:.1} s{}",
            utc(p.finished_ms),
            span(now - p.finished_ms),
            if p.ok { "ok" } else { "FAILED" },
            p.calls,
            p.items_seen,
            p.events,
            (p.finished_ms - p.started_ms) as f64 / 1000.0,
            p.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
        ),
        None => "never".into(),
    }
}

/// The status report, as text or JSON.
pub fn status(input: &StatusInput<'_>, as_json: bool) -> anyhow::Result<String> {
    let StatusInput { settings, store, clients, health } = input;
    let shops = store.shops()?;
    let now = now_ms();
    let accounts: Vec<_> = clients
        .iter()
        .map(|c| {
            let q = c.quota();
            json!({"name": c.account(), "calls_today": q.used(now), "daily_quota": q.limit(),
                   "remaining": q.remaining(now), "resets_ms": q.resets_at(now),
                   "authorization": authorization(c, store, now)})
        })
        .collect();
    let (quota_left, quota_daily) =
        clients.iter().fold((0, 0), |(l, d), c| (l + c.quota().remaining(now), d + c.quota().limit()));
    let day = clients.first().map(|c| c.quota().days()).unwrap_or_default();
    let eta = |f: &FullProgress| estimate::finish_at(f, now, quota_left, quota_daily, day);
    let last = store.outbox_last_pos()?;
    let mut sinks = Vec::new();
    for s in &settings.sinks {
        let cursor = store.sink_cursor(&s.name)?;
        let dead = store.dlq(&s.name)?;
        sinks.push(json!({
            "name": s.name, "plugin": s.plugin, "cursor": cursor,
            "lag": cursor.map(|c| last.saturating_sub(c)),
            "healthy": health.and_then(|h| h.get(&s.name)),
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
                let quarantined = store.quarantined(id).unwrap_or_default();
                json!({"shop": id, "state": s, "full_pass_progress": progress, "quarantined": quarantined,
                       "unreachable_items": s.unreachable_items(),
                       "followed_offers": store.followed_count(id).unwrap_or_default()})
            })
            .collect();
        let out = json!({"shops": shops, "accounts": accounts, "sinks": sinks, "outbox_events": store.outbox_len()});
        return Ok(serde_json::to_string_pretty(&out)? + "\n");
    }
    let mut out = String::new();
    let _ = writeln!(out, "shops ({}; times in UTC)", shops.len());
    for (id, s) in &shops {
        let mut rows = vec![
            vec![
                "watermark".into(),
                match (s.watermark_ms, s.poll_watermark_ms) {
                    (Some(w), _) => format!("{} ({} ago)", utc(w), span(now - w)),
                    (None, Some(p)) => format!(
                        "none until the first full pass ends (polls meanwhile have read to {}, {} ago)",
                        utc(p),
                        span(now - p)
                    ),
                    (None, None) => "none (next pass is full)".into(),
                },
            ],
            vec!["items".into(), s.item_count.to_string()],
            vec!["last full".into(), pass(&s.last_full, now)],
            vec!["last incremental".into(), pass(&s.last_incremental, now)],
        ];
        let quarantined = store.quarantined(id).unwrap_or_default();
        if let Some(q) = quarantined.first() {
            rows.push(vec![
                "quarantined".into(),
                format!(
                    "{} items unreadable, retried every pass (e.g. {}: {})",
                    quarantined.len(),
                    q.item_id,
                    q.error
                ),
            ]);
        }
        let followed = store.followed_count(id).unwrap_or_default();
        if followed > 0 {
            rows.push(vec![
                "followed".into(),
                format!("{followed} of {} offers (their changes come as messages)", s.item_count),
            ]);
        }
        if s.unreachable_items() > 0 {
            rows.push(vec![
                "unreachable".into(),
                format!(
                    "{} items no query reaches, on {} milliseconds",
                    s.unreachable_items(),
                    s.unreachable.len()
                ),
            ]);
        }
        if let Some(c) = &s.completeness {
            rows.push(vec![
                "completeness".into(),
                format!(
                    "{} of {} official{}, SKU details {:.1}%, priced {:.1}%: {}",
                    c.fetched,
                    c.official,
                    if c.unreachable > 0 {
                        format!(" ({} unreachable)", c.unreachable)
                    } else {
                        String::new()
                    },
                    c.sku_share * 100.0,
                    c.price_share * 100.0,
                    if c.complete { "complete" } else { "INCOMPLETE" }
                ),
            ]);
        }
        rows.push(vec![
            "full pass".into(),
            match &s.full {
                None => "none open".into(),
                Some(f) => format!(
                    "windows {} of {}, items {} of {} official, {} sessions, {} calls{}; finish {}",
                    f.windows_done,
                    f.windows_total(),
                    f.items_seen,
                    f.official.map_or("?".into(), |n| n.to_string()),
                    f.sessions,
                    f.calls,
                    if f.verifying { ", verifying deletes" } else { "" },
                    eta(f).map_or("not yet estimated".into(), |t| format!(
                        "{} (in {})",
                        utc(t),
                        span(t - now)
                    ))
                ),
            },
        ]);
        let _ = writeln!(out, "  {id}");
        table(&mut out, "    ", &rows);
    }
    let _ = writeln!(out, "accounts");
    let mut rows = vec![vec![
        "NAME".into(),
        "CALLS TODAY".into(),
        "QUOTA".into(),
        "RESETS".into(),
        "AUTHORIZATION".into(),
    ]];
    for c in clients.iter() {
        let q = c.quota();
        let resets = q.resets_at(now);
        rows.push(vec![
            c.account().to_string(),
            q.used(now).to_string(),
            q.limit().to_string(),
            format!("in {} ({})", span(resets - now), utc(resets)),
            authorization_cell(c, &authorization(c, store, now)),
        ]);
    }
    if clients.is_empty() {
        out.push_str("  none configured\n");
    } else {
        table(&mut out, "  ", &rows);
    }
    let _ = writeln!(out, "sinks");
    let mut rows = vec![vec![
        "NAME".into(),
        "PLUGIN".into(),
        "CURSOR".into(),
        "LAG".into(),
        "HEALTH".into(),
        "DEAD LETTERS".into(),
    ]];
    for s in &sinks {
        let show = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "-".into(),
            v => v.to_string(),
        };
        let health = match s["healthy"].as_bool() {
            Some(true) => "healthy",
            Some(false) => "FAILING",
            None if health.is_some() => "not running",
            None => "no daemon",
        };
        rows.push(vec![
            show(&s["name"]),
            show(&s["plugin"]),
            show(&s["cursor"]),
            show(&s["lag"]),
            health.into(),
            format!("{} events in {} batches", s["dead_letter_events"], s["dead_letter_batches"]),
        ]);
    }
    if sinks.is_empty() {
        out.push_str("  none configured\n");
    } else {
        table(&mut out, "  ", &rows);
    }
    let _ = writeln!(out, "outbox {} events", store.outbox_len());
    Ok(out)
}

/// An OAuth account's authorization as `status --json` shows it (`null` for an account
/// without OAuth): whether calls can get a token, and when that ends. Never a token.
fn authorization(c: &Client, store: &Store, now: i64) -> serde_json::Value {
    if !c.settings().oauth {
        return serde_json::Value::Null;
    }
    let token = crate::api::TokenStore::load(store, c.account());
    let refresh_only = c.api().protocol == crate::api::Protocol::Param2;
    let ends = token.as_ref().and_then(|t| t.refresh_expires_at_ms);
    let authorized = match &token {
        None => false,
        // param2 renews only with a live refresh token; the seed gateway re-grants at will.
        Some(t) if refresh_only => t.refresh_token.is_some() && ends.is_none_or(|e| e > now),
        Some(_) => true,
    };
    json!({
        "authorized": authorized,
        "expires_ms": ends,
        "seconds_left": ends.map(|e| (e - now).max(0) / 1000),
        "resource_owner": token.as_ref().and_then(|t| t.resource_owner.clone()),
        "member_id": token.as_ref().and_then(|t| t.member_id.clone()),
    })
}

/// The AUTHORIZATION column: who and how long, or what to run.
fn authorization_cell(c: &Client, a: &serde_json::Value) -> String {
    if a.is_null() {
        return "-".into();
    }
    let who = a["resource_owner"].as_str().or(a["member_id"].as_str());
    let by = who.map(|w| format!(" by {w}")).unwrap_or_default();
    match (a["authorized"].as_bool(), a["expires_ms"].as_i64(), a["seconds_left"].as_i64()) {
        (Some(true), Some(e), Some(left)) => format!("ends in {} ({}){by}", span(left * 1000), utc(e)),
        (Some(true), _, _) => format!("authorized{by}"),
        _ => format!("NONE: run shopsync auth --account {}", c.account()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_times_read_well() {
        assert_eq!(span(45_000), "45s");
        assert_eq!(span(125_000), "2m 5s");
        assert_eq!(span(3 * 3_600_000 + 12 * 60_000), "3h 12m");
        assert_eq!(span(-5), "0s");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn columns_line_up() {
        let mut out = String::new();
        table(&mut out, "", &[vec!["a".into(), "b".into()], vec!["long".into(), "c".into()]]);
        assert_eq!(out, "a     b\nlong  c\n");
    }
}
