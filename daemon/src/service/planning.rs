//! The budget planner's tick: a snapshot of the accounts and shops for
//! [`crate::schedule::planner::plan`], and the passes it chooses, started.

use super::passes::run_planned;
use super::shared::{Planned, PlannedKind, Shared};
use crate::api::{Client, ShopRef};
use crate::clock::now_ms;
use crate::config::{Cadence, Settings, SkuRefresh};
use crate::schedule::planner::{plan, AccountView, Input, Launch, OpenPass, ShopView};
use crate::schedule::rates::refresh_cost;
use crate::schedule::{demand, estimate};
use crate::state::Store;
use std::sync::Arc;

/// Per shop (config order): how long its incremental cron waits between passes, in ms.
pub(super) fn cron_intervals(s: &Settings) -> Vec<Option<f64>> {
    let day = s.accounts.first().map_or(86_400_000, |a| a.pacing.quota_day.len_ms());
    let now = now_ms();
    s.shops
        .iter()
        .map(|shop| {
            let c = shop.incremental.cron()?;
            let fires =
                demand::fires_within(&crate::schedule::jittered(c, &shop.label), s.timezone, now, day);
            (fires > 0).then(|| day as f64 / fires as f64)
        })
        .collect()
}

/// Calls a quota day the explicit crons are expected to need, per client: a pinned shop's on
/// its account, the others' spread evenly. Logs a warning when they need more than the
/// accounts hold.
pub(super) fn cron_demand(s: &Settings, clients: &[Client], store: &Store) -> Vec<u64> {
    let n = clients.len().max(1);
    let mut per = vec![0u64; clients.len()];
    let now = now_ms();
    let mut total = 0;
    for shop in &s.shops {
        let member = match &shop.shop {
            ShopRef::Member(m) => Some(m.as_str().to_string()),
            ShopRef::Url(u) => store.known_url(u),
        };
        let (rate, items) =
            member.and_then(|m| store.shop(&m).ok()).map(|st| (st.rate, st.item_count)).unwrap_or_default();
        let d = demand::shop_cron_demand(shop, s, &rate, items, now);
        total += d;
        match shop.account.as_ref().and_then(|a| clients.iter().position(|c| c.account() == a)) {
            Some(i) => per[i] += d,
            None => per.iter_mut().for_each(|p| *p += d / n as u64),
        }
    }
    let watches =
        demand::total_cron_demand(&Settings { shops: Vec::new(), ..s.clone() }, now, |_| Default::default());
    total += watches;
    if let Some(w) = demand::over_budget(total, s) {
        tracing::warn!("{w}");
    }
    per
}

/// One tick: plans with what is known now and starts the chosen passes.
pub(super) fn tick(shared: &Arc<Shared>) {
    let now = now_ms();
    let Some(day_ms) = shared.clients.first().map(|c| c.quota().days().len_ms()) else { return };
    let accounts: Vec<AccountView> = shared
        .clients
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let q = c.quota();
            let l = shared.ledger_of(c, now);
            let day_start = q.resets_at(now) - day_ms;
            AccountView {
                limit: q.limit(),
                remaining: q.remaining(now),
                day_elapsed: ((now - day_start) as f64 / day_ms as f64).clamp(0.0, 1.0),
                // Calls spent before a restart are not in the ledger: count them as full-pass
                // calls, so polls keep their share.
                spent_full: l.full.max(q.used(now).saturating_sub(l.polls)),
                spent_polls: l.polls,
                cron_demand: shared.cron_demand.get(i).copied().unwrap_or(0),
                full_sessions: l.full_sessions,
            }
        })
        .collect();
    let n = shared.clients.len();
    let backoff = shared.resume_after.lock().map(|r| r.clone()).unwrap_or_default();
    let shops: Vec<ShopView> = shared
        .settings
        .shops
        .iter()
        .enumerate()
        .map(|(i, shop)| {
            let member = shared.known_member(shop);
            let state = member.as_ref().and_then(|m| shared.store.shop(m).ok()).unwrap_or_default();
            let running = member.as_ref().is_some_and(|m| {
                shared.lock_for(m).try_lock().is_err() || backoff.get(m).is_some_and(|&t| t > now)
            });
            let accounts: Vec<usize> = match &shop.account {
                Some(a) => shared.clients.iter().position(|c| c.account() == a).into_iter().collect(),
                None => (0..n).map(|k| (i + k) % n).collect(),
            };
            ShopView {
                accounts,
                synced: state.watermark_ms.is_some(),
                pollable: state.watermark_ms.is_some()
                    || (state.full.is_some()
                        && member.as_ref().is_some_and(|m| !shared.settings.sync.sellers.contains_key(m))),
                open: state.full.as_ref().map(|f| OpenPass {
                    items_left: f.official.map(|o| o.saturating_sub(f.items_seen)),
                    calls_left: estimate::calls_left(f),
                }),
                auto_polls: shop.incremental == Cadence::Auto,
                auto_full: shop.full == Cadence::Auto,
                refresh_calls: refresh_cost(
                    &state.rate,
                    state.item_count,
                    u64::from(shared.settings.sync.page_size),
                    match shared.settings.sync.full_pass_skus {
                        SkuRefresh::All => 1.0,
                        SkuRefresh::Changed => {
                            shared.settings.budget.full_every.as_secs_f64()
                                / shared.settings.sync.sku_max_age.as_secs_f64().max(1.0)
                        }
                    },
                ),
                rate: state.rate,
                items: state.item_count,
                running,
            }
        })
        .collect();
    let input = Input {
        now_ms: now,
        day_ms,
        budget: &shared.settings.budget,
        // Follow calls come out of the watch share too (`push/follow.rs`).
        any_watch: !shared.settings.watches.is_empty() || shared.settings.shops.iter().any(|s| s.follow),
        accounts: &accounts,
        shops: &shops,
        free_slots: shared.passes.available_permits(),
    };
    let decided = plan(&input);
    let o = decided.overdue;
    for kind in ["poll", "full"] {
        // Both series exist from the first tick, so a dashboard's rate() has a start.
        shared.metrics.planned_calls.with_label_values(&[kind]).inc_by(0);
    }
    for (reason, n) in [("running", o.running), ("allowance", o.allowance), ("slots", o.slots)] {
        shared.metrics.polls_overdue.with_label_values(&[reason]).set(n as i64);
    }
    if let Ok(mut iv) = shared.poll_intervals.lock() {
        iv.clear();
        for (i, shop) in shared.settings.shops.iter().enumerate() {
            let planned = decided.intervals.get(i).copied().flatten();
            let target = planned.or(shared.cron_intervals.get(i).copied().flatten());
            if let (Some(ms), Some(member)) = (target, shared.known_member(shop)) {
                iv.insert(member, ms / 1000.0);
            }
        }
    }
    for launch in decided.launches {
        let (shop, account, kind, cap) = match launch {
            Launch::Full { shop, account, cap } => (shop, account, PlannedKind::Full, cap),
            Launch::Poll { shop, account } => (shop, account, PlannedKind::Poll, 0),
        };
        let Some(settings) = shared.settings.shops.get(shop) else { continue };
        tracing::debug!(shop = %settings.label, ?kind, account, cap, "planned pass");
        if kind == PlannedKind::Full {
            // Counted at once, so the next tick does not start a second one meanwhile.
            if let Some(c) = shared.clients.get(account) {
                shared.with_ledger(c, now, |l| l.full_sessions += 1);
            }
        }
        let plan = Planned { account, kind, cap };
        tokio::spawn(run_planned(shared.clone(), settings.clone(), shop, plan));
    }
}
