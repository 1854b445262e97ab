//! The budget planner: what each account's quota day is spent on, and when each shop on
//! `"auto"` is polled or gets a full pass.
//!
//! **The day's split.** Per account, the reserve (and the watch share, when watch lists
//! exist) is never planned, and the calls the explicit crons are expected to need are taken
//! off first. What is left is split between incremental polls and full-pass progress: while
//! first copies run, in the ratio of their shares (polls cut to about a third); then, with
//! `split = "auto"`, where it buys the most freshness (polls get `P / (P + F)`, see
//! [`poll_day`]), or with `split = "shares"` still in the ratio of the shares. Polls are
//! paced over the day (their allowance grows with the time elapsed), so the evening is not
//! left without polls; full passes may use their share at once, and in the last tenth of the
//! day they may take whatever is left, so no call of the day is wasted. No launch is made
//! that its account's allowance does not hold, and a full session is given a call cap that
//! fits it: a full pass stops after the page in hand at its cap and resumes at a later
//! session (its progress is in the state).
//!
//! **How often to poll (the rule, and why).** Changes of shop `i` arrive as a Poisson process
//! of rate `λᵢ` (learned in `rates.rs`); a poll costs `cᵢ` calls. What an operator feels is
//! the delay between a change on the platform and its event, averaged over all changes. With
//! polls every `Iᵢ`, a change waits `Iᵢ/2` on average, whatever `λᵢ`; so the mean delay over
//! all changes is `Σ λᵢ Iᵢ / 2 / Σ λᵢ`, to be minimised under the day's poll budget
//! `Σ cᵢ / Iᵢ = B`. Here `cᵢ` is what one more poll costs (a poll that finds nothing); the
//! calls that fetch the changes a poll finds (`kᵢ` a change) are spent however often the shop
//! is polled, so `Σ kᵢ λᵢ` comes off `B` first. Taking a busy shop's whole poll cost for `cᵢ`
//! would make the busiest shops look the dearest to poll and leave their many changes
//! waiting. Lagrange gives `λᵢ / 2 = μ cᵢ / Iᵢ²`, i.e. **poll frequency
//! `fᵢ ∝ √(λᵢ / cᵢ)`: the square-root rule.** This is the shape Cho and Garcia-Molina
//! ("Effective page refresh policies for web crawlers", ACM TODS 2003) found for their
//! optimum: visiting in proportion to the change rate is worse than even uniform visiting,
//! and the optimum gives fast-changing sources fewer visits than proportional and slow ones
//! more. Their freshness metric goes further and abandons sources that change faster than
//! they can be visited; we do not use it, because here every change is a price, a stock level
//! or an offer someone waits for, and a shop given up on would be stale forever. So every
//! shop is polled at least every `max_poll`, and none more often than `min_poll`; within
//! those bounds the budget is filled by water-filling (clamp, then spread the rest).
//!
//! **Polls during a first copy.** A shop whose first full pass is open is polled too
//! (`Engine::poll`): the pass reads what existed at its start, and polls read on from there.
//! The first copies of a backlog take days under a quota, and without this every change made
//! to a shop in those days would wait for its copy's end (measured: about a fifth of all
//! changes, waiting about 60 hours on average).
//!
//! **Full passes.** Open passes and first copies first (progress already paid for, and an
//! uncopied shop is the stalest there is), by Smith's rule (weighted shortest processing
//! time): the least items left per change a day that waits for the pass first. Every
//! change of a shop waits for its copy (polls of the open copy catch the visible ones made
//! since its start), and for a refresh its silent ones; ordering by size over that rate
//! minimises the total wait, where shortest first (what the rule gives for equal rates) would
//! leave a big busy shop's many changes waiting behind small quiet shops. The rates are
//! learned from the polls of the open copies, so the order sharpens over the first day.
//! (In `bench-budget` it gained nothing beyond one run's noise over shortest first: the
//! polls of an open copy hand over most of its visible changes anyway, and its silent ones
//! wait for the first refresh after it, which this order does not move.) A shop of
//! unknown size gets a short probe session that learns its official count, and a copy so
//! big that, started last, it would outlast all the others goes ahead of them (see
//! [`CRITICAL_COPY`]). Then shops on `full = "auto"` whose last full pass is older than
//! `full_every`, most overdue first, and then, with what the day still has, refreshes by the
//! square-root rule (see [`refresh_index`]): the shop whose expected silent changes (stock and
//! sales edits and removals only a full pass sees) weigh most per call. A refresh is priced at what
//! the shop's refreshes cost on average, or before any at its list pages and the SKU details it is
//! expected to fetch again (`rates::refresh_cost`): a first copy's cost, SKU details of every item
//! included, would make every shop look several times dearer to refresh than it is.

use crate::config::{BudgetSettings, BudgetSplit};
use crate::state::ChangeRate;

use super::rates::{
    list_calls, per_change_cost, poll_fixed_cost, silent_rate, silent_ratio, sku_calls, visible_rate,
};

/// A full session is not started for fewer calls than this.
const MIN_FULL_CHUNK: u64 = 10;
/// Full sessions at once per account: one can be a long pass while the other works through
/// small shops.
const FULL_SESSIONS_PER_ACCOUNT: usize = 2;
/// Polls may run this share of the day ahead of their pacing.
const AHEAD: f64 = 0.05;
/// While shops on "auto" still await their first complete copy, polls get this part of
/// their share: a shop without a copy is the stalest there is (every change it has waits),
/// and first copies of the whole backlog should take about as many days as their calls
/// fill, not a third more. But most shops are small and copied on the first day, and their
/// changes wait for polls while the big ones copy: in `bench-budget` a fifth (0.2) left the
/// planner's mean staleness at 19.4 h; 0.35 brought it to 15.4 h (changes polls see, after
/// the first copy: 7.2 h to 4.1 h) with every shop still complete by day 5.2. (0.25 was
/// tried when later runs completed on day 6.2: 6.1, and the mean rose from 13.1 h to 14.6 h;
/// the copies were late for another reason, see [`CRITICAL_COPY`].)
const POLLS_WHILE_COPYING: f64 = 0.35;
/// A first copy whose calls left, times the other accounts, times this, reach the calls all
/// first copies still need is started ahead of the order below. Shortest first (equal
/// rates), the biggest copy would start last and then run alone: a pass has one session at
/// a time, so while it ends the other accounts' full calls go elsewhere and the last copy is
/// late by about its calls times the other accounts over the day's calls (measured: complete
/// on day 6.2, where the calls sufficed for about 5.5). With one account there is nothing to
/// gain.
const CRITICAL_COPY: u64 = 3;
/// In the last tenth of the day full passes may take all that is left but this share of the
/// limit (what the day has not spent by then is lost at the reset).
const END_OF_DAY_FLOOR: f64 = 0.02;

/// One account as the planner sees it.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub limit: u64,
    /// Calls left today by the quota count (code 15 makes it 0).
    pub remaining: u64,
    /// Share of the quota day elapsed, 0 to 1.
    pub day_elapsed: f64,
    /// What planned passes spent today, by kind.
    pub spent_full: u64,
    pub spent_polls: u64,
    /// Calls the explicit crons of shops on this account are expected to need a day.
    pub cron_demand: u64,
    /// Planned full sessions running on the account.
    pub full_sessions: usize,
}

/// An open full pass.
#[derive(Debug, Clone, Default)]
pub struct OpenPass {
    /// Items it has yet to see (`None` before its official count).
    pub items_left: Option<u64>,
    /// Calls it is expected to need still.
    pub calls_left: Option<u64>,
}

/// One configured shop as the planner sees it.
#[derive(Debug, Clone)]
pub struct ShopView {
    /// Indices into the account list the shop may use, in its order of preference.
    pub accounts: Vec<usize>,
    pub synced: bool,
    /// An incremental poll can run: the shop has a watermark, or its first full pass is open
    /// (polls then follow what changes after that pass's start; see `Engine::poll`).
    pub pollable: bool,
    pub open: Option<OpenPass>,
    pub auto_polls: bool,
    pub auto_full: bool,
    pub rate: ChangeRate,
    pub items: u64,
    /// Calls a refresh of it is expected to cost (`rates::refresh_cost`).
    pub refresh_calls: Option<u64>,
    /// A pass of it runs (or waits for its turn) now.
    pub running: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Launch {
    /// A full pass (new or resumed) of shop `shop` on account `account`, stopping after at
    /// most `cap` calls.
    Full { shop: usize, account: usize, cap: u64 },
    /// An incremental poll.
    Poll { shop: usize, account: usize },
}

pub struct Input<'a> {
    pub now_ms: i64,
    pub day_ms: i64,
    pub budget: &'a BudgetSettings,
    pub any_watch: bool,
    pub accounts: &'a [AccountView],
    pub shops: &'a [ShopView],
    /// Passes that may still start now (`daemon.max_passes` less those running).
    pub free_slots: usize,
}

/// The calls a day holds for planned work on one account, after the reserve, the watch
/// share and the crons.
fn plannable(a: &AccountView, b: &BudgetSettings, any_watch: bool) -> f64 {
    let kept = b.reserve + if any_watch { b.watch } else { 0.0 };
    (a.limit as f64 * (1.0 - kept) - a.cron_demand as f64).max(0.0)
}

/// The share of planned calls that goes to polls by the configured ratio.
fn poll_share(b: &BudgetSettings, copying: bool) -> f64 {
    if b.incremental + b.full <= 0.0 {
        0.0
    } else {
        let s = b.incremental / (b.incremental + b.full);
        if copying {
            s * POLLS_WHILE_COPYING
        } else {
            s
        }
    }
}

/// The calls polls get over the whole day, all accounts together (`held`: what they hold
/// for planned work), `fetching` (the calls that fetch the changes polls find) included.
///
/// With `split = "auto"` and every first copy done, the division is the one that minimises
/// the mean staleness of all changes. Polls every `Iᵢ` at `cᵢ` calls leave the visible
/// changes (rate `λᵢ`) a total wait of `Σ λᵢ Iᵢ / 2`; full passes every `Jᵢ` at `Cᵢ` calls
/// leave the silent ones (rate `sᵢ`) `Σ sᵢ Jᵢ / 2`. Each side's best under its own calls
/// is the square-root rule, with totals `P² / 2Bₚ` and `F² / 2B_f` for `P = Σ √(λᵢcᵢ)` and
/// `F = Σ √(sᵢCᵢ)`; their sum under `Bₚ + B_f = B` is least at `Bₚ = B · P / (P + F)`.
/// The fetching comes off the top (it is spent however often a shop is polled), and polls
/// always get enough to reach every shop once per `max_poll`. While first copies run the
/// configured ratio holds, cut to [`POLLS_WHILE_COPYING`] (a full pass there is a first
/// copy, not a refresh, and the rule above does not price it).
fn poll_day(
    input: &Input<'_>,
    costs: &[(f64, f64, f64)], // (changes per ms, calls per poll, calls per change), pollable shops
    fetching: f64,
    held: f64,
    copying: bool,
    ratio: f64,
) -> f64 {
    let b = input.budget;
    if costs.is_empty() {
        return 0.0;
    }
    let share = poll_share(b, copying) * held;
    if copying {
        return share + fetching;
    }
    if b.split == BudgetSplit::Auto {
        let p: f64 = costs.iter().map(|&(l, c, _)| (l * c).sqrt()).sum();
        let f: f64 = input
            .shops
            .iter()
            .filter(|s| s.auto_full && s.synced)
            .map(|s| {
                (silent_rate(&s.rate, input.day_ms, ratio) * full_cost(s).unwrap_or(1).max(1) as f64).sqrt()
            })
            .sum();
        if p + f > 0.0 {
            let once_per_max_poll: f64 = costs.iter().map(|&(_, c, _)| c).sum::<f64>() * input.day_ms as f64
                / b.max_poll.as_millis().max(1) as f64;
            let fetching = fetching.min(held);
            return (fetching + (held - fetching) * p / (p + f)).max(fetching + once_per_max_poll).min(held);
        }
    }
    share.max(fetching)
}

/// Per account: (calls polls may spend now, calls full sessions may spend now), with
/// `poll_day` the calls polls get over the whole day (all accounts), spread over the
/// accounts in proportion to what each holds (`held`: what they all hold).
fn allowances(input: &Input<'_>, poll_day: f64, held: f64) -> Vec<(f64, f64)> {
    let b = input.budget;
    input
        .accounts
        .iter()
        .map(|a| {
            let day = plannable(a, b, input.any_watch);
            let poll_day = if held > 0.0 { (poll_day * day / held).min(day) } else { 0.0 };
            let end_of_day = a.day_elapsed >= 0.9;
            let reserve_calls =
                a.limit as f64 * if end_of_day { END_OF_DAY_FLOOR.min(b.reserve) } else { b.reserve };
            let usable_now = (a.remaining as f64 - reserve_calls).max(0.0);
            let polls = (poll_day * (a.day_elapsed + AHEAD).min(1.0) - a.spent_polls as f64).max(0.0);
            let polls = polls.min(usable_now);
            let full = if end_of_day { usable_now } else { day - poll_day - a.spent_full as f64 };
            // Polls still to come today keep their calls.
            let polls_to_come = (poll_day - a.spent_polls as f64).max(0.0);
            let keep = if end_of_day { polls } else { polls_to_come };
            let full = full.min(usable_now - keep).max(0.0);
            (polls, full)
        })
        .collect()
}

/// Target poll intervals (ms) of the pollable shops, by the square-root rule within
/// `[min_poll, max_poll]`, filling `budget_per_ms` calls a millisecond.
pub fn poll_intervals(
    rates: &[(f64, f64)], // (changes per ms, calls per poll)
    budget_per_ms: f64,
    min_poll_ms: f64,
    max_poll_ms: f64,
) -> Vec<f64> {
    let n = rates.len();
    let (f_min, f_max) = (1.0 / max_poll_ms, 1.0 / min_poll_ms);
    let mut f = vec![0.0; n];
    let mut fixed = vec![false; n];
    // Water-filling: shops whose square-root share falls outside the bounds are pinned to
    // the bound, and the rest of the budget is spread again over the others.
    for _ in 0..=n {
        let spent_fixed: f64 = (0..n).filter(|&i| fixed[i]).map(|i| f[i] * rates[i].1).sum();
        let weight: f64 = (0..n).filter(|&i| !fixed[i]).map(|i| (rates[i].0 * rates[i].1).sqrt()).sum();
        let left = (budget_per_ms - spent_fixed).max(0.0);
        let k = if weight > 0.0 { left / weight } else { 0.0 };
        let mut changed = false;
        let free: Vec<usize> = (0..n).filter(|&i| !fixed[i]).collect();
        for i in free {
            let fi = k * (rates[i].0 / rates[i].1).sqrt();
            if fi < f_min {
                f[i] = f_min;
                fixed[i] = true;
                changed = true;
            } else if fi > f_max {
                f[i] = f_max;
                fixed[i] = true;
                changed = true;
            } else {
                f[i] = fi;
            }
        }
        if !changed {
            break;
        }
    }
    f.iter().map(|&fi| 1.0 / fi.max(f_min)).collect()
}

/// How much a refresh (a full pass of a synced shop) is worth per call now: the silent
/// changes (stock and sales edits, removals: only a full pass sees them) arrive at rate `s`
/// and have waited `a²·s/2` in total since the last full pass `a` ago; a pass costs `c`.
/// Serving the largest `s·a²/c` first is the square-root rule again (each shop then gets
/// refreshed every `∝ √(c/s)`), the rule that minimises the mean wait of a change under a
/// fixed budget, as for polls (see the module's head).
fn refresh_index(s: &ShopView, since_full: i64, day_ms: i64, ratio: f64) -> f64 {
    let age = since_full.max(0) as f64;
    let cost = full_cost(s).unwrap_or(1).max(1) as f64;
    silent_rate(&s.rate, day_ms, ratio) * age * age / cost
}

/// Calls a full pass of the shop is expected to need from here.
fn full_cost(s: &ShopView) -> Option<u64> {
    if let Some(o) = &s.open {
        return o.calls_left;
    }
    if s.synced && s.refresh_calls.is_some() {
        return s.refresh_calls;
    }
    if s.rate.full_calls > 0 {
        return Some(s.rate.full_calls);
    }
    // List calls with the splitting margin, and SKU calls for a share of the listings.
    (s.items > 0).then(|| list_calls(s.items, 40) + sku_calls(s.items))
}

/// What the planner decided at one tick.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub launches: Vec<Launch>,
    /// Per shop (same order as the input): the target poll interval in ms, for shops it polls.
    pub intervals: Vec<Option<f64>>,
    /// Shops whose poll is due (their interval has passed) but was not started at this tick.
    pub overdue: Overdue,
}

/// Why due polls wait, shop by shop (each counted once, under the first reason that holds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overdue {
    /// A pass of the shop is running (often a long full session).
    pub running: usize,
    /// No account the shop may use has poll calls left in the day's pacing.
    pub allowance: usize,
    /// Every pass slot (`max_passes`) is taken.
    pub slots: usize,
}

/// What to start now.
pub fn plan(input: &Input<'_>) -> Plan {
    let b = input.budget;
    let now = input.now_ms;
    let mut out = Vec::new();
    let mut planned_intervals = vec![None; input.shops.len()];
    let mut slots = input.free_slots;
    let mut overdue_by = Overdue::default();
    let pollable: Vec<usize> =
        (0..input.shops.len()).filter(|&i| input.shops[i].pollable && input.shops[i].auto_polls).collect();
    let copying = input.shops.iter().any(|s| s.auto_full && !s.synced);
    // (changes per ms, calls per poll, calls per change) of the pollable shops.
    let costs: Vec<(f64, f64, f64)> = pollable
        .iter()
        .map(|&i| {
            let r = &input.shops[i].rate;
            (visible_rate(r, input.day_ms), poll_fixed_cost(r), per_change_cost(r))
        })
        .collect();
    // Fetching the changes costs the same however often a shop is polled (see the module's
    // head): it comes off the polls' share, and the rest buys polls. While first copies run,
    // polls get part of their share for polling (`POLLS_WHILE_COPYING`) and the fetching on
    // top: those calls are owed anyway, and holding them back only makes the copied shops'
    // changes wait.
    let fetching = costs.iter().map(|&(l, _, k)| l * k).sum::<f64>() * input.day_ms as f64;
    let held: f64 = input.accounts.iter().map(|a| plannable(a, b, input.any_watch)).sum();
    // Silent changes per visible one: a shop's silent rate is expected from its visible one
    // until its own refreshes measure it (see `rates.rs`).
    let ratio = silent_ratio(input.shops.iter().map(|s| &s.rate), input.day_ms);
    let poll_day = poll_day(input, &costs, fetching, held, copying, ratio);
    let mut allow = allowances(input, poll_day, held);
    let mut sessions: Vec<usize> = input.accounts.iter().map(|a| a.full_sessions).collect();

    // Polls: the square-root rule over the whole day's poll budget.
    if !pollable.is_empty() {
        let rates: Vec<(f64, f64)> = costs.iter().map(|&(l, c, _)| (l, c)).collect();
        let intervals = poll_intervals(
            &rates,
            (poll_day - fetching).max(0.0) / input.day_ms as f64,
            b.min_poll.as_millis() as f64,
            b.max_poll.as_millis() as f64,
        );
        for (&i, &iv) in pollable.iter().zip(&intervals) {
            planned_intervals[i] = Some(iv);
        }
        let mut due: Vec<(f64, usize, f64)> = Vec::new();
        for ((&i, &iv), &(rate, fixed, per_change)) in pollable.iter().zip(&intervals).zip(&costs) {
            let s = &input.shops[i];
            let last = s.rate.last_poll_ms.or(s.rate.last_full_ms).unwrap_or(0);
            let overdue = (now - last) as f64 / iv;
            let cost = fixed + per_change * rate * (now - last).max(0) as f64;
            match (overdue >= 1.0, s.running) {
                (true, true) => overdue_by.running += 1,
                (true, false) => due.push((overdue, i, cost.max(1.0))),
                _ => {}
            }
        }
        due.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (_, i, cost) in due {
            if slots == 0 {
                overdue_by.slots += 1;
                continue;
            }
            if let Some(&a) = input.shops[i].accounts.iter().find(|&&a| allow[a].0 >= cost) {
                allow[a].0 -= cost;
                out.push(Launch::Poll { shop: i, account: a });
                slots -= 1;
            } else {
                overdue_by.allowance += 1;
            }
        }
    }

    // Full sessions, in order of priority.
    let day = input.day_ms;
    let full_every = b.full_every.as_millis() as i64;
    // The calls all first copies still need: a copy that would outlast the others if it
    // started last goes first (see `CRITICAL_COPY`).
    let backlog: u64 = input.shops.iter().filter(|s| s.auto_full && !s.synced).filter_map(full_cost).sum();
    let others = input.accounts.len().saturating_sub(1) as u64;
    // Smith's rule (weighted shortest processing time): items left over the changes a day
    // that wait for the pass. For a first copy that is all of the shop's changes (polls
    // catch some visible ones meanwhile), for a refresh its silent ones.
    let waiting = |s: &ShopView| {
        let silent = silent_rate(&s.rate, day, ratio);
        (if s.synced { silent } else { visible_rate(&s.rate, day) + silent }) * day as f64
    };
    let smith = |s: &ShopView, n: u64| n as f64 / waiting(s).max(1e-9);
    let first_copy_key = |s: &ShopView, size: Option<u64>| match (full_cost(s), size) {
        // Between the probes (-1) and the rest, the biggest first (`c < backlog`: no zero).
        (Some(c), _) if c < backlog && c * others * CRITICAL_COPY >= backlog => {
            -0.5 - c as f64 / backlog as f64 / 2.0
        }
        (_, Some(n)) if n > 0 => smith(s, n),
        _ => -1.0,
    };
    let mut order: Vec<(u8, f64, usize)> = Vec::new();
    for (i, s) in input.shops.iter().enumerate() {
        if s.running {
            continue;
        }
        let since_full = now - s.rate.last_full_ms.unwrap_or(0);
        // Shops with a full cron get their first and resumed passes from the cron side.
        let key = match &s.open {
            Some(_) if !s.auto_full => continue,
            // Shortest first, weighted by the changes that wait: a pass that ends sooner hands
            // its shop's changes over sooner.
            Some(o) if s.synced => (0, o.items_left.map_or(-1.0, |n| smith(s, n))),
            Some(o) => (0, first_copy_key(s, o.items_left)),
            None if !s.synced && !s.auto_full => continue,
            // A first copy of unknown size is probed first (a short session learns the
            // official count), then takes its place in the order by Smith's rule.
            None if !s.synced => (0, first_copy_key(s, Some(s.items))),
            None if s.auto_full && since_full >= full_every => (2, -(since_full as f64) / full_every as f64),
            None if s.auto_full => (3, -refresh_index(s, since_full, day, ratio)),
            None => continue,
        };
        order.push((key.0, key.1, i));
    }
    order.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    for (prio, _, i) in order {
        if slots == 0 {
            break;
        }
        let s = &input.shops[i];
        let cost = full_cost(s);
        let Some(&a) = s
            .accounts
            .iter()
            .find(|&&a| allow[a].1 >= MIN_FULL_CHUNK as f64 && sessions[a] < FULL_SESSIONS_PER_ACCOUNT)
        else {
            continue;
        };
        // Extra full passes (not yet due) only when the whole pass fits what is left today.
        if prio == 3 && cost.is_none_or(|c| c as f64 > allow[a].1) {
            continue;
        }
        let cap = match cost {
            Some(c) => (c as f64 * 1.2 + 20.0).min(allow[a].1),
            // Size unknown: a probe, so that a big shop does not take the day before the
            // small ones are even counted.
            None => (MIN_FULL_CHUNK as f64).min(allow[a].1),
        }
        .floor() as u64;
        allow[a].1 -= cap as f64;
        sessions[a] += 1;
        slots -= 1;
        out.push(Launch::Full { shop: i, account: a, cap });
    }
    Plan { launches: out, intervals: planned_intervals, overdue: overdue_by }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const DAY: i64 = 86_400_000;

    fn budget() -> BudgetSettings {
        BudgetSettings {
            split: BudgetSplit::Auto,
            full: 0.45,
            incremental: 0.35,
            watch: 0.1,
            reserve: 0.1,
            full_every: Duration::from_secs(7 * 86_400),
            min_poll: Duration::from_secs(300),
            max_poll: Duration::from_secs(86_400),
        }
    }

    fn account(day_elapsed: f64) -> AccountView {
        AccountView {
            limit: 3_000,
            remaining: 3_000,
            day_elapsed,
            spent_full: 0,
            spent_polls: 0,
            cron_demand: 0,
            full_sessions: 0,
        }
    }

    /// The planner's view at `now` (one-day quota days, no watch lists).
    fn view<'a>(
        b: &'a BudgetSettings,
        accounts: &'a [AccountView],
        shops: &'a [ShopView],
        now_ms: i64,
        free_slots: usize,
    ) -> Input<'a> {
        Input { now_ms, day_ms: DAY, budget: b, any_watch: false, accounts, shops, free_slots }
    }

    fn shop(synced: bool) -> ShopView {
        ShopView {
            accounts: vec![0],
            synced,
            pollable: synced,
            open: None,
            auto_polls: true,
            auto_full: true,
            rate: ChangeRate::default(),
            items: 1_000,
            refresh_calls: None,
            running: false,
        }
    }

    #[test]
    fn the_square_root_rule_sits_between_uniform_and_proportional() {
        // Two shops of equal poll cost, one changing 100 times as often.
        let rates = [(100.0 / DAY as f64, 1.0), (1.0 / DAY as f64, 1.0)];
        let budget = 110.0 / DAY as f64; // 110 polls a day
        let iv = poll_intervals(&rates, budget, 1.0, DAY as f64 * 10.0);
        let polls: Vec<f64> = iv.iter().map(|i| DAY as f64 / i).collect();
        // √100 : √1 = 10 : 1, filling the budget.
        assert!((polls[0] - 100.0).abs() < 1e-6 && (polls[1] - 10.0).abs() < 1e-6, "{polls:?}");
        // Proportional would give 108.9 : 1.1; uniform 55 : 55.
        assert!(polls[0] < 108.9 && polls[0] > 55.0);
        // Its expected delay per change beats both (half the interval, weighted by rate).
        let delay = |p0: f64, p1: f64| (100.0 / p0 + 1.0 / p1) / 2.0 / 101.0;
        assert!(delay(polls[0], polls[1]) < delay(108.9, 1.1));
        assert!(delay(polls[0], polls[1]) < delay(55.0, 55.0));
    }

    #[test]
    fn a_busy_shop_is_polled_for_what_one_more_poll_costs_not_for_its_changes() {
        // The configured ratio of the shares, so that polls get a known part of the day (the
        // split itself is tested below).
        let b = BudgetSettings { split: BudgetSplit::Shares, ..budget() };
        let mut shops = vec![shop(true), shop(true)];
        // Shop 0: about 50 changes a day, its polls find 50 changes for 51 calls and an
        // empty poll costs one: one more poll costs one call, the changes cost one each.
        shops[0].rate.events = 700.0;
        shops[0].rate.span_ms = 14.0 * DAY as f64;
        shops[0].rate.polls = 20;
        shops[0].rate.poll_calls = 51.0;
        shops[0].rate.empty_poll_calls = 1.0;
        shops[0].rate.busy_poll_calls = 51.0;
        shops[0].rate.busy_poll_events = 50.0;
        // Shop 1: dead quiet, one call a poll.
        shops[1].rate.span_ms = 14.0 * DAY as f64;
        shops[1].rate.polls = 20;
        shops[1].rate.poll_calls = 1.0;
        shops[1].rate.empty_poll_calls = 1.0;
        for s in &mut shops {
            s.rate.last_full_ms = Some(0);
        }
        // A small account: 240 plannable calls a day, 105 of them for polls.
        let mut small = account(0.5);
        small.limit = 300;
        small.remaining = 300;
        let accounts = [small];
        let input = view(&b, &accounts, &shops, DAY, 8);
        let iv = plan(&input).intervals;
        let (busy, quiet) = (iv[0].unwrap_or(f64::MAX), iv[1].unwrap_or(0.0));
        // Priced at its average poll (51 calls) it would get about 2 polls a day; priced at
        // one call, with its 50 calls a day of fetching off the top, about 50.
        assert!(busy < DAY as f64 / 40.0, "{busy}");
        assert!(quiet > 10.0 * busy, "{quiet} against {busy}");
    }

    #[test]
    fn bounds_pin_shops_and_the_rest_is_spread_again() {
        // A dead shop would get almost nothing: it is pinned to max_poll.
        let rates = [(1e-12, 1.0), (1.0 / DAY as f64, 1.0), (4.0 / DAY as f64, 1.0)];
        let iv = poll_intervals(&rates, 30.0 / DAY as f64, 60_000.0, DAY as f64);
        assert!((iv[0] - DAY as f64).abs() < 1.0, "{iv:?}");
        let used: f64 = iv.iter().map(|i| DAY as f64 / i).sum();
        assert!((used - 30.0).abs() < 1e-6, "the budget is filled: {used}");
    }

    #[test]
    fn polls_and_full_passes_split_the_day_where_changes_wait_longest() {
        // Twenty synced shops, each with 24 visible changes a day and 1-call polls, full
        // passes of 50 calls; `silent` silent changes a day each.
        let shops_with = |silent: f64| -> Vec<ShopView> {
            (0..20)
                .map(|_| {
                    let mut s = shop(true);
                    s.rate.events = 24.0 * 30.0;
                    s.rate.span_ms = 30.0 * DAY as f64;
                    s.rate.silent = silent * 30.0;
                    s.rate.silent_span_ms = 30.0 * DAY as f64;
                    s.rate.empty_poll_calls = 1.0;
                    s.rate.full_calls = 50;
                    s.rate.last_full_ms = Some(DAY);
                    s
                })
                .collect()
        };
        let accounts = [account(0.5)];
        // Polls a day per shop, from the planned interval.
        let polls_a_day = |b: &BudgetSettings, shops: &[ShopView]| {
            let p = plan(&view(b, &accounts, shops, 2 * DAY, 8));
            DAY as f64 / p.intervals[0].expect("polled")
        };
        let auto = budget();
        let (quiet, busy) = (shops_with(0.1), shops_with(40.0));
        let (q, bz) = (polls_a_day(&auto, &quiet), polls_a_day(&auto, &busy));
        // P = 20·√24, F = 20·√(50·s) (per day; the rates' one-day prior moves them a little):
        // polls get P / (P + F) of the 2,700 planned calls (no watch lists: only the reserve is kept).
        let share = |s: f64| 24f64.sqrt() / (24f64.sqrt() + (50.0 * s).sqrt());
        assert!((q - 2_700.0 * share(0.1) / 20.0).abs() < 2_700.0 * share(0.1) / 20.0 * 0.05, "{q}");
        assert!((bz - 2_700.0 * share(40.0) / 20.0).abs() < 2_700.0 * share(40.0) / 20.0 * 0.05, "{bz}");
        assert!(bz < q / 2.0, "silent changes that pile up take calls from polls: {bz} vs {q}");
        // With fixed shares the silent changes move nothing: 35 : 45 of the planned calls.
        let shares = BudgetSettings { split: BudgetSplit::Shares, ..budget() };
        let (q, bz) = (polls_a_day(&shares, &quiet), polls_a_day(&shares, &busy));
        assert!((q - bz).abs() < 1e-6 && (q - 2_700.0 * 0.35 / 0.8 / 20.0).abs() < 1.0, "{q} {bz}");
    }

    #[test]
    fn due_polls_that_do_not_start_are_counted_by_why() {
        let b = budget();
        // Three synced shops last polled a day ago: all due (max_poll is a day).
        let mut shops = vec![shop(true), shop(true), shop(true)];
        for s in &mut shops {
            s.rate.last_poll_ms = Some(0);
        }
        shops[0].running = true;
        let accounts = [account(0.5)];
        let now = 2 * DAY;
        // One slot: one poll starts, one waits for a slot, the running shop waits for its pass.
        let p = plan(&view(&b, &accounts, &shops, now, 1));
        assert_eq!(p.launches.iter().filter(|l| matches!(l, Launch::Poll { .. })).count(), 1);
        assert_eq!(p.overdue, Overdue { running: 1, allowance: 0, slots: 1 });
        // The day's poll calls spent: both wait for the allowance.
        let mut spent = account(0.5);
        spent.spent_polls = 3_000;
        let accounts = [spent];
        let p = plan(&view(&b, &accounts, &shops, now, 8));
        assert!(p.launches.iter().all(|l| !matches!(l, Launch::Poll { .. })));
        assert_eq!(p.overdue, Overdue { running: 1, allowance: 2, slots: 0 });
    }

    #[test]
    fn a_first_copy_in_progress_is_polled_one_not_started_is_not() {
        let b = budget();
        // Two shops without a copy, both last "polled" (their pass opened) a day ago; only the
        // first has an open pass, so only it has somewhere to poll from.
        let mut shops = vec![shop(false), shop(false)];
        for s in &mut shops {
            s.rate.last_poll_ms = Some(0);
            s.running = true; // no full session for either, to see the polls alone
        }
        shops[0].pollable = true;
        shops[0].open = Some(OpenPass { items_left: Some(500), calls_left: Some(20) });
        let accounts = [account(0.5)];
        let p = plan(&view(&b, &accounts, &shops, 2 * DAY, 8));
        assert!(p.intervals[0].is_some() && p.intervals[1].is_none(), "{:?}", p.intervals);
        assert_eq!(p.overdue.running, 1, "the open copy's poll is due (its pass runs now)");
        shops[0].running = false;
        let p = plan(&view(&b, &accounts, &shops, 2 * DAY, 8));
        assert!(p.launches.contains(&Launch::Poll { shop: 0, account: 0 }), "{:?}", p.launches);
        assert!(!p.launches.iter().any(|l| matches!(l, Launch::Poll { shop: 1, .. })));
    }

    #[test]
    fn never_plans_more_than_the_day_holds() {
        let b = budget();
        let shops: Vec<ShopView> = (0..50).map(|_| shop(false)).collect();
        let mut acct = account(0.5);
        acct.remaining = 100;
        let accounts = [acct];
        let input = view(&b, &accounts, &shops, DAY, 50);
        let planned: u64 = plan(&input)
            .launches
            .iter()
            .map(|l| match l {
                Launch::Full { cap, .. } => *cap,
                Launch::Poll { .. } => 2,
            })
            .sum();
        // 100 left, 300 of them the reserve: nothing may start.
        assert_eq!(planned, 0);
        let accounts = [account(0.5)];
        let input = Input { accounts: &accounts, ..input };
        let launches = plan(&input).launches;
        let caps: u64 =
            launches.iter().map(|l| if let Launch::Full { cap, .. } = l { *cap } else { 0 }).sum();
        assert!(caps <= 3_000 * 8 / 10, "{caps}");
        assert_eq!(launches.len(), FULL_SESSIONS_PER_ACCOUNT, "two full sessions per account at once");
    }

    #[test]
    fn open_passes_and_first_copies_come_first_then_overdue_ones() {
        let b = budget();
        let mut shops = vec![shop(true), shop(false), shop(true), shop(true)];
        shops[0].rate.last_full_ms = Some(0); // overdue at day 8
        shops[2].open = Some(OpenPass { items_left: Some(500), calls_left: Some(100) });
        shops[3].rate.last_full_ms = Some(7 * DAY + DAY / 2); // recent
        let accounts = [account(0.2), account(0.2)];
        for s in &mut shops {
            s.accounts = vec![0, 1];
            s.auto_polls = false;
        }
        let input = view(&b, &accounts, &shops, 8 * DAY, 3);
        let fulls: Vec<usize> = plan(&input)
            .launches
            .iter()
            .filter_map(|l| if let Launch::Full { shop, .. } = l { Some(*shop) } else { None })
            .collect();
        // Nothing measured yet: every change of the uncopied shop waits for its copy, only
        // the silent ones (about half as many) for the refresh, so the copy of twice the
        // size goes first (1,000 / 1.5 against 500 / 0.5, in the prior's changes).
        assert_eq!(&fulls[..3.min(fulls.len())], &[1, 2, 0][..3.min(fulls.len())], "{fulls:?}");
    }

    #[test]
    fn first_copies_go_by_their_size_over_the_changes_that_wait_for_them() {
        let b = budget();
        // Three first copies in progress, polled for a day: a big busy shop, a small and a
        // middling one where polls found nothing.
        let mut shops = vec![shop(false), shop(false), shop(false)];
        let sizes = [(4_000, 300.0), (500, 0.0), (1_000, 0.0)];
        for (s, &(items, found)) in shops.iter_mut().zip(&sizes) {
            s.items = items;
            s.open = Some(OpenPass { items_left: Some(items), calls_left: Some(items / 10) });
            s.rate.events = found;
            s.rate.span_ms = DAY as f64;
            s.auto_polls = false;
        }
        // One account: no copy is critical (see `CRITICAL_COPY`). Shortest first would take
        // the two quiet ones; the busy shop's 150 changes a day weigh more than its size.
        let accounts = [account(0.2)];
        let input = view(&b, &accounts, &shops, 2 * DAY, 8);
        assert_eq!(fulls(&input).iter().map(|f| f.0).collect::<Vec<_>>(), vec![0, 1]);
        // Equal rates: shortest first.
        for s in &mut shops {
            s.rate.events = 0.0;
        }
        let input = view(&b, &accounts, &shops, 2 * DAY, 8);
        assert_eq!(fulls(&input).iter().map(|f| f.0).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn a_first_copy_that_would_outlast_the_others_starts_ahead_of_them() {
        let b = budget();
        // Ten small shops not copied yet and a big one, three accounts.
        let mut shops: Vec<ShopView> = (0..11).map(|_| shop(false)).collect();
        for s in &mut shops {
            s.accounts = vec![0, 1, 2];
            s.auto_polls = false;
            s.items = 4_000; // 315 calls each by the estimate
        }
        shops[9].items = 30_000; // 2,330 calls
        shops[10].items = 40_000; // 3,105 calls
        let accounts = [account(0.2), account(0.2), account(0.2)];
        // 3,105 × 2 other accounts × 3 is more than the 8,270 all copies need: started last,
        // it would run alone long after the small ones are done. It goes first, and the
        // other big one (2,330 × 6, critical too) next: the biggest first among them.
        let input = view(&b, &accounts, &shops, DAY, 2);
        assert_eq!(fulls(&input).iter().map(|f| f.0).collect::<Vec<_>>(), vec![10, 9]);
        // Among seventy shops (27,170 calls in all) both can wait their turn.
        let mut many: Vec<ShopView> = (0..60).map(|_| shops[0].clone()).collect();
        many.extend(shops);
        let input = view(&b, &accounts, &many, DAY, 1);
        assert_eq!(fulls(&input).first().map(|f| f.0), Some(0));
        // With one account the order changes nothing for the last copy: shortest first.
        let mut alone = many[60..].to_vec();
        for s in &mut alone {
            s.accounts = vec![0];
        }
        let input = view(&b, &accounts[..1], &alone, DAY, 1);
        assert_eq!(fulls(&input).first().map(|f| f.0), Some(0));
    }

    fn fulls(input: &Input<'_>) -> Vec<(usize, u64)> {
        plan(input)
            .launches
            .iter()
            .filter_map(|l| if let Launch::Full { shop, cap, .. } = l { Some((*shop, *cap)) } else { None })
            .collect()
    }

    #[test]
    fn a_shop_of_unknown_size_is_probed_before_a_big_pass_takes_the_day() {
        let b = budget();
        let mut shops = vec![shop(false), shop(false), shop(false)];
        shops[0].open = Some(OpenPass { items_left: Some(90_000), calls_left: Some(2_500) });
        shops[1].items = 0; // never counted
        shops[2].items = 200;
        for s in &mut shops {
            s.auto_polls = false;
        }
        let accounts = [account(0.2)];
        let input = view(&b, &accounts, &shops, DAY, 8);
        // Two sessions on the account: the probe (a short cap) and the small shop; the big
        // open pass waits for them.
        let got = fulls(&input);
        assert_eq!(got.iter().map(|f| f.0).collect::<Vec<_>>(), vec![1, 2], "{got:?}");
        assert_eq!(got[0].1, MIN_FULL_CHUNK, "the probe is short");
    }

    #[test]
    fn refreshes_go_where_silent_changes_weigh_most_per_call() {
        let b = budget();
        let mut shops = vec![shop(true), shop(true)];
        for (k, s) in shops.iter_mut().enumerate() {
            s.auto_polls = false;
            s.rate.last_full_ms = Some(DAY);
            // The same silent rate; the first costs 20 times as much to refresh.
            s.rate.silent = 20.0;
            s.rate.silent_span_ms = 2.0 * DAY as f64;
            s.rate.full_calls = if k == 0 { 2_000 } else { 100 };
        }
        let accounts = [account(0.2)];
        let input = view(&b, &accounts, &shops, 3 * DAY, 1);
        assert_eq!(fulls(&input).first().map(|f| f.0), Some(1));
        // Once the cheap shop was just refreshed, the expensive one's changes weigh more:
        // 6² / 2,000 days² per call against 0.5² / 100.
        shops[0].rate.last_full_ms = Some(-2 * DAY);
        shops[1].rate.last_full_ms = Some(3 * DAY + DAY / 2);
        let input = view(&b, &accounts, &shops, 4 * DAY, 1);
        assert_eq!(fulls(&input).first().map(|f| f.0), Some(0));
    }

    #[test]
    fn a_shop_never_refreshed_is_expected_to_have_silent_changes_where_polls_find_changes() {
        let b = budget();
        let mut shops = vec![shop(true), shop(true)];
        for (k, s) in shops.iter_mut().enumerate() {
            s.auto_polls = false;
            s.rate.last_full_ms = Some(DAY);
            s.rate.full_calls = 100;
            // Polled for two days since its copy: the first found 2 changes, the second 200.
            s.rate.events = if k == 0 { 2.0 } else { 200.0 };
            s.rate.span_ms = 2.0 * DAY as f64;
        }
        // Neither has been refreshed: nothing about their silent changes is measured, yet the
        // busy one is refreshed first, its visible changes say it has more silent ones.
        let accounts = [account(0.2)];
        let input = view(&b, &accounts, &shops, 3 * DAY, 1);
        assert_eq!(fulls(&input).first().map(|f| f.0), Some(1));
        shops.swap(0, 1);
        let input = view(&b, &accounts, &shops, 3 * DAY, 1);
        assert_eq!(fulls(&input).first().map(|f| f.0), Some(0));
    }
}
