//! Running passes: one pass of a shop on the accounts it may use, the passes due when the
//! daemon starts, and the resumption of full passes left open.
//!
//! A full pass is never skipped for want of quota: it runs until the account's day is spent,
//! moves to the next account the shop may use, and when every account is spent it stays
//! open in the state; the resume loop takes it up again as soon as an account has quota
//! (the next quota day at the latest), however many days a big shop needs.

use super::shared::{Planned, PlannedKind, Shared};
use crate::api::Client;
use crate::clock::now_ms;
use crate::config::ShopSettings;
use crate::state::PassKind;
use crate::sync::{Engine, PassReport, PassStats, SyncError};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The accounts a pass may run on: the planned one alone, or the shop's candidates.
fn accounts_for<'a>(
    shared: &'a Shared,
    shop: &ShopSettings,
    index: usize,
    plan: Option<Planned>,
) -> Vec<&'a Client> {
    match plan {
        Some(p) => {
            shared.clients.get(p.account).filter(|c| c.quota().remaining(now_ms()) > 0).into_iter().collect()
        }
        None => shared.candidates(shop, index),
    }
}

/// Runs one pass of `shop` (`full` asks for a full pass; an open one is resumed).
pub(super) async fn run_pass(shared: Arc<Shared>, shop: ShopSettings, index: usize, full: bool) {
    run(shared, shop, index, full, None).await
}

/// Runs a pass the budget planner chose.
pub(super) async fn run_planned(shared: Arc<Shared>, shop: ShopSettings, index: usize, plan: Planned) {
    // The planner counted the full session when it started it; it ends here.
    let full = plan.kind == PlannedKind::Full;
    run(shared.clone(), shop, index, full, Some(plan)).await;
    if let Some(c) = shared.clients.get(plan.account) {
        if full {
            shared.with_ledger(c, now_ms(), |l| l.full_sessions = l.full_sessions.saturating_sub(1));
        }
    }
    shared.replan.notify_one();
}

/// What a finished session teaches the planner, and what it spent.
fn learn(
    shared: &Shared,
    client: &Client,
    member: &str,
    report: Option<&PassReport>,
    calls: u64,
    plan: Option<Planned>,
) {
    if let Some(p) = plan {
        shared.with_ledger(client, now_ms(), |l| match p.kind {
            PlannedKind::Full => l.full += calls,
            PlannedKind::Poll => l.polls += calls,
        });
        let kind = if p.kind == PlannedKind::Full { "full" } else { "poll" };
        shared.metrics.planned_calls.with_label_values(&[kind]).inc_by(calls);
    }
    let Some(report) = report else { return };
    let full_every = shared.settings.budget.full_every.as_millis() as i64;
    if let Err(e) = shared
        .store
        .update_shop(member, |st| crate::schedule::rates::observe(&mut st.rate, report, full_every))
    {
        tracing::warn!(shop = %member, error = %e, "could not store what the pass taught the planner");
    }
}

async fn run(shared: Arc<Shared>, shop: ShopSettings, index: usize, full: bool, plan: Option<Planned>) {
    let candidates = accounts_for(&shared, &shop, index, plan);
    let Some(first) = candidates.first() else {
        tracing::warn!(shop = %shop.label, "no account with quota left today; the pass waits for the reset");
        shared.metrics.passes_skipped.with_label_values(&[&shop.label, "quota"]).inc();
        return;
    };
    let engine = Engine::new((*first).clone(), shared.store.clone(), shared.settings.sync.clone());
    let member = match engine.resolve(&shop.shop).await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(shop = %shop.label, error = %e, "cannot resolve the shop");
            shared.metrics.passes.with_label_values(&[&shop.label, "resolve", "error"]).inc();
            return;
        }
    };
    let lock = shared.lock_for(member.as_str());
    let claim = if full { shared.claim_full(member.as_str()) } else { None };
    let busy = || {
        tracing::debug!(shop = %member, full, "pass not started: a pass of this shop still runs or waits its turn");
        shared.metrics.passes_skipped.with_label_values(&[member.as_str(), "running"]).inc();
    };
    if full && claim.is_none() {
        return busy();
    }
    let _guard = match lock.try_lock() {
        Ok(g) => g,
        // Only a poll can hold the shop now (the claim keeps other full passes out): the
        // full pass waits for it.
        Err(_) if full => lock.lock().await,
        Err(_) => return busy(),
    };
    let Ok(_permit) = shared.passes.clone().acquire_owned().await else {
        return; // never closed
    };
    let started = std::time::Instant::now();
    let mut result = None;
    // Candidates are read again after the wait for a permit: quota may have gone meanwhile.
    for client in accounts_for(&shared, &shop, index, plan) {
        let engine = Engine::new(client.clone(), shared.store.clone(), shared.settings.sync.clone());
        let stats = Arc::new(PassStats::default());
        if let Some(p) = plan.filter(|p| p.kind == PlannedKind::Full) {
            stats.budget.store(p.cap.max(1), Ordering::Relaxed);
        }
        if let Ok(mut a) = shared.active.lock() {
            a.retain(|(_, w)| w.strong_count() > 0);
            a.push((member.to_string(), Arc::downgrade(&stats)));
        }
        let r = match plan {
            Some(p) if p.kind == PlannedKind::Poll => engine.poll(&member, stats.clone()).await,
            _ => engine.pass(&member, full, None, stats.clone()).await,
        };
        shared
            .metrics
            .list_pages_reread
            .with_label_values::<&str>(&[])
            .inc_by(PassStats::get(&stats.rereads));
        learn(&shared, client, member.as_str(), r.as_ref().ok(), stats.calls(), plan);
        if r.is_err() && stats.over_budget() {
            tracing::info!(shop = %member, account = client.account(), calls = stats.calls(), "full pass paused: the session's share of today's budget is spent; it resumes at its next session");
            result = Some(r);
            break;
        }
        let quota = r.as_ref().err().is_some_and(SyncError::is_quota);
        result = Some(r);
        if !quota {
            break;
        }
        // The pass's progress is in the state: the next account goes on from there.
        tracing::warn!(shop = %member, account = client.account(), "account's daily quota ran out mid-pass; the pass goes on on the next account with quota left");
        shared.metrics.passes_skipped.with_label_values(&[member.as_str(), "quota_moved"]).inc();
    }
    let Some(result) = result else {
        tracing::warn!(shop = %member, "no account has quota left today; the pass waits for the reset");
        shared.metrics.passes_skipped.with_label_values(&[member.as_str(), "quota"]).inc();
        return;
    };
    let m = &shared.metrics;
    match result {
        Ok(r) => {
            let kind = match r.kind {
                PassKind::Full => "full",
                _ => "incremental",
            };
            m.passes.with_label_values(&[member.as_str(), kind, "ok"]).inc();
            m.pass_duration.with_label_values(&[kind]).observe(started.elapsed().as_secs_f64());
            m.events.with_label_values(&["create"]).inc_by(r.creates);
            m.events.with_label_values(&["update"]).inc_by(r.updates);
            m.events.with_label_values(&["delete"]).inc_by(r.deletes);
        }
        Err(e) => {
            let kind = if full { "full" } else { "incremental" };
            let outcome = if e.is_quota() { "quota" } else { "error" };
            m.passes.with_label_values(&[member.as_str(), kind, outcome]).inc();
            if !e.is_quota() && !matches!(e, SyncError::Stopped) {
                // Not a budget matter: do not let the resume loop retry it at once.
                let wait = shared.settings.plan_every.as_millis() as i64 * 10;
                if let Ok(mut r) = shared.resume_after.lock() {
                    r.insert(member.to_string(), now_ms() + wait);
                }
                tracing::warn!(shop = %member, error = %e, kind = e.kind(), "pass failed");
            }
        }
    }
}

/// What a configured shop needs when the daemon starts, judged from the state alone (no
/// call): a shop with a watermark and no open full pass needs nothing (its schedules carry
/// on); a shop never synced, or whose full pass is open, gets its (resumed) full pass now.
pub(super) fn due_at_start(shared: &Shared, shop: &ShopSettings) -> bool {
    let Some(member) = shared.known_member(shop) else { return true };
    match shared.store.shop(&member) {
        Ok(s) => s.watermark_ms.is_none() || s.full.is_some(),
        Err(e) => {
            tracing::warn!(shop = %shop.label, error = %e, "cannot read the shop's state; a pass runs to repair it");
            true
        }
    }
}

/// Starts the passes due at start, for shops whose full passes run on a cron.
pub(super) fn start_due(shared: &Arc<Shared>) {
    for (i, shop) in shared.settings.shops.iter().enumerate() {
        if shop.full.cron().is_some() && due_at_start(shared, shop) {
            tokio::spawn(run_pass(shared.clone(), shop.clone(), i, true));
        }
    }
}

/// Resumes the open full passes of shops whose full passes run on a cron (the planner
/// resumes those on "auto") that no pass is running for, when one of their accounts has
/// quota left. Called every `daemon.plan_every`.
pub(super) fn resume_open(shared: &Arc<Shared>) {
    let now = now_ms();
    for (i, shop) in shared.settings.shops.iter().enumerate() {
        if shop.full.cron().is_none() {
            continue;
        }
        let Some(member) = shared.known_member(shop) else { continue };
        let open = shared.store.shop(&member).is_ok_and(|s| s.full.is_some());
        if !open || shared.candidates(shop, i).is_empty() {
            continue;
        }
        let wait = shared.resume_after.lock().ok().and_then(|r| r.get(&member).copied());
        if wait.is_some_and(|t| t > now) {
            continue;
        }
        if shared.lock_for(&member).try_lock().is_err() {
            continue;
        }
        tracing::info!(shop = %member, "resuming the open full pass");
        tokio::spawn(run_pass(shared.clone(), shop.clone(), i, true));
    }
}
