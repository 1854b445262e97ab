//! Gauges read from the state at scrape time: quota, watermarks, items, completeness, the
//! open full passes' progress, sinks.

use super::shared::Shared;
use crate::clock::now_ms;
use crate::schedule::estimate;
use crate::sinks::{Health, SinkManager};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{watch, Mutex};

/// Per sink: its runner's health (a restarted sink has a new one, counting from 0) and the
/// delivered, errors and dead-lettered counts at the previous scrape.
type SinkCounts = Arc<std::sync::Mutex<HashMap<String, (Arc<Health>, (u64, u64, u64))>>>;

/// Updates the gauges that are read from state, at scrape time, from the shared state in
/// force now (`current` follows reloads: a reload's new accounts show at the next scrape).
pub(super) fn refresher(
    current: watch::Receiver<Arc<Shared>>,
    sinks: Arc<Mutex<SinkManager>>,
) -> Arc<dyn Fn() + Send + Sync> {
    let last: SinkCounts = Default::default();
    Arc::new(move || {
        let shared = current.borrow().clone();
        let m = &shared.metrics;
        // The store keeps the state of shops removed from the config (re-adding one resumes
        // it); their series stay out of the metrics, or the staleness alert would fire on
        // a shop nobody syncs any more.
        let configured: HashSet<String> =
            shared.settings.shops.iter().filter_map(|s| shared.known_member(s)).collect();
        let now = now_ms();
        for c in &shared.clients {
            m.quota_used.with_label_values(&[c.account()]).set(c.quota().used(now) as i64);
            m.quota_remaining.with_label_values(&[c.account()]).set(c.quota().remaining(now) as i64);
            m.pacing_interval
                .with_label_values(&[c.account()])
                .set(c.pacer().current_interval().as_secs_f64());
            // Only param2 accounts can lose their authorization: the seed gateway re-grants.
            if c.settings().oauth && c.api().protocol == crate::api::Protocol::Param2 {
                let token = crate::api::TokenStore::load(&shared.store, c.account());
                let ends = token.filter(|t| t.refresh_token.is_some()).and_then(|t| t.refresh_expires_at_ms);
                m.authorization_expiry
                    .with_label_values(&[c.account()])
                    .set(ends.unwrap_or(0) as f64 / 1000.0);
            } else {
                let _ = m.authorization_expiry.remove_label_values(&[c.account()]);
            }
        }
        if let Ok(iv) = shared.poll_intervals.lock() {
            for (member, secs) in iv.iter() {
                m.poll_interval.with_label_values(&[member]).set(*secs);
            }
        }
        if let Ok(shops) = shared.store.shops() {
            for (id, s) in shops.into_iter().filter(|(id, _)| configured.contains(id)) {
                if let Some(w) = s.watermark_ms {
                    m.watermark.with_label_values(&[&id]).set(w as f64 / 1000.0);
                }
                m.items.with_label_values(&[&id]).set(s.item_count as i64);
                m.items_quarantined.with_label_values(&[&id]).set(shared.store.quarantined_count(&id) as i64);
                m.items_unreachable.with_label_values(&[&id]).set(s.unreachable_items() as i64);
                match &s.full {
                    Some(f) => {
                        m.full_pass_windows.with_label_values(&[&id, "done"]).set(f.windows_done as i64);
                        m.full_pass_windows.with_label_values(&[&id, "total"]).set(f.windows_total() as i64);
                        m.full_pass_items.with_label_values(&[&id, "seen"]).set(f.items_seen as i64);
                        m.full_pass_items
                            .with_label_values(&[&id, "official"])
                            .set(f.official.unwrap_or(0) as i64);
                        let (left, daily) = shared
                            .clients
                            .iter()
                            .fold((0, 0), |(l, d), c| (l + c.quota().remaining(now), d + c.quota().limit()));
                        let day =
                            shared.settings.accounts.first().map(|a| a.pacing.quota_day).unwrap_or_default();
                        match estimate::finish_at(f, now, left, daily, day) {
                            Some(t) => m.full_pass_eta.with_label_values(&[&id]).set(t as f64 / 1000.0),
                            None => {
                                let _ = m.full_pass_eta.remove_label_values(&[&id]);
                            }
                        }
                    }
                    None => {
                        for l in [["done"], ["total"]] {
                            let _ = m.full_pass_windows.remove_label_values(&[&id, l[0]]);
                        }
                        for l in ["seen", "official"] {
                            let _ = m.full_pass_items.remove_label_values(&[&id, l]);
                        }
                        let _ = m.full_pass_eta.remove_label_values(&[&id]);
                    }
                }
                if let Some(c) = s.completeness {
                    let count = if c.official == 0 { 1.0 } else { c.fetched as f64 / c.official as f64 };
                    m.completeness.with_label_values(&[&id, "count"]).set(count);
                    m.completeness.with_label_values(&[&id, "sku"]).set(c.sku_share);
                    m.completeness.with_label_values(&[&id, "price"]).set(c.price_share);
                }
            }
        }
        let outbox_last = shared.store.outbox_last_pos().unwrap_or(0);
        if let Ok(mgr) = sinks.try_lock() {
            let mut seen = last.lock().unwrap_or_else(|e| e.into_inner());
            for (name, h) in mgr.health() {
                let now = (
                    h.delivered.load(Ordering::Relaxed),
                    h.errors.load(Ordering::Relaxed),
                    h.dead_lettered.load(Ordering::Relaxed),
                );
                let before = match seen.insert(name.clone(), (h.clone(), now)) {
                    Some((was, counts)) if Arc::ptr_eq(&was, &h) => counts,
                    _ => (0, 0, 0),
                };
                m.sink_delivered.with_label_values(&[&name]).inc_by(now.0.saturating_sub(before.0));
                m.sink_errors.with_label_values(&[&name]).inc_by(now.1.saturating_sub(before.1));
                m.sink_dead_letters.with_label_values(&[&name]).inc_by(now.2.saturating_sub(before.2));
                m.sink_healthy.with_label_values(&[&name]).set(i64::from(h.healthy.load(Ordering::Relaxed)));
                let cursor = shared.store.sink_cursor(&name).ok().flatten().unwrap_or(0);
                m.sink_lag.with_label_values(&[&name]).set(outbox_last.saturating_sub(cursor) as i64);
            }
        }
    })
}
