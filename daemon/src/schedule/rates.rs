//! Learning each shop's change rate and the cost of polling it, from its own passes.
//!
//! Changes are modelled as a Poisson process per shop (as Cho and Garcia-Molina do for web
//! pages, and as they show fits real change histories). The rate is estimated as
//! `(changes seen + 1/7) / (time observed + 1 quota day)`: a prior of one change a week,
//! weighted as one day of observation, keeps a shop that has been watched only briefly from
//! looking dead or frantic, and is outweighed within days. (It used to weigh a week: a shop
//! watched for three days then looked at a third of its real rate, the planner priced the
//! fetching of changes at a third of what it costs, and aimed at poll intervals the budget
//! could not pay for.) Old observations are halved once they span more than four times
//! `full_every`, so a shop that changes its rhythm is followed.

use crate::state::{ChangeRate, PassKind};
use crate::sync::PassReport;

/// The prior's rate: changes per quota day.
const PRIOR_PER_DAY: f64 = 1.0 / 7.0;
/// The prior's weight: quota days of observation.
const PRIOR_WEIGHT_DAYS: f64 = 1.0;

/// `(changes + prior) / (span + prior's weight)`, per millisecond.
fn rate(changes: f64, span_ms: f64, day_ms: i64) -> f64 {
    (changes + PRIOR_PER_DAY * PRIOR_WEIGHT_DAYS) / (span_ms + PRIOR_WEIGHT_DAYS * day_ms as f64)
}

/// Changes per millisecond that incremental polls can see.
pub fn visible_rate(r: &ChangeRate, day_ms: i64) -> f64 {
    rate(r.events, r.span_ms, day_ms)
}

/// Silent changes per visible change assumed before any shop's refreshes have measured it.
const SILENT_RATIO_PRIOR: f64 = 0.5;
/// That prior's weight, in visible changes expected over the measured spans.
const SILENT_RATIO_WEIGHT: f64 = 20.0;

/// Silent changes per visible change, over every shop whose full passes have measured its
/// silent changes (a span between two full passes): the silent ones found, against the
/// visible ones its rate expects over the same spans.
pub fn silent_ratio<'a>(rates: impl IntoIterator<Item = &'a ChangeRate>, day_ms: i64) -> f64 {
    let (mut silent, mut expected) = (0.0, 0.0);
    for r in rates.into_iter().filter(|r| r.silent_span_ms > 0.0) {
        silent += r.silent;
        expected += visible_rate(r, day_ms) * r.silent_span_ms;
    }
    (silent + SILENT_RATIO_PRIOR * SILENT_RATIO_WEIGHT) / (expected + SILENT_RATIO_WEIGHT)
}

/// Changes per millisecond only full passes see (silent stock/sales edits, removals): what
/// the shop's refreshes found, with a prior of `ratio` (see [`silent_ratio`]) times its
/// visible rate, weighted as one quota day.
pub fn silent_rate(r: &ChangeRate, day_ms: i64, ratio: f64) -> f64 {
    let weight = PRIOR_WEIGHT_DAYS * day_ms as f64;
    (r.silent + ratio * visible_rate(r, day_ms) * weight) / (r.silent_span_ms + weight)
}

/// List calls a full pass of `items` items is expected to make: its pages, a tenth more for
/// the splits, and a few counts.
pub fn list_calls(items: u64, page_size: u64) -> u64 {
    items.div_ceil(page_size.max(1)) * 11 / 10 + 5
}

/// SKU-detail calls a first copy of `items` items is expected to make.
pub fn sku_calls(items: u64) -> u64 {
    items / 20
}

/// Calls a refresh (a full pass of a shop that has its copy) is expected to cost: the
/// average of the refreshes measured so far; before any, its list pages plus `sku_share` of
/// the SKU calls the first copy made on top of them. `sku_share` is 1 when every full pass
/// fetches every item's SKU details again (`full_pass_skus = "all"`); with `"changed"` a
/// refresh fetches them only for changed items and for details older than `sku_max_age`, so
/// about `full_every / sku_max_age` of them (refreshes come at least every `full_every`).
/// `None`: nothing to go on.
pub fn refresh_cost(r: &ChangeRate, items: u64, page_size: u64, sku_share: f64) -> Option<u64> {
    if r.refresh_calls > 0 {
        return Some(r.refresh_calls);
    }
    let list = (items > 0).then(|| list_calls(items, page_size));
    let share = |calls: u64| (sku_share.clamp(0.0, 1.0) * calls as f64).round() as u64;
    match (list, r.full_calls) {
        (Some(l), 0) => Some(l + share(sku_calls(items))),
        (Some(l), copy) => Some(l.min(copy) + share(copy.saturating_sub(l))),
        (None, 0) => None,
        (None, copy) => Some(copy),
    }
}

/// Calls one incremental poll is expected to cost, on average so far.
pub fn poll_cost(r: &ChangeRate) -> f64 {
    if r.polls == 0 {
        2.0
    } else {
        r.poll_calls.max(1.0)
    }
}

/// Calls one more poll costs whatever it finds: a poll that finds nothing. Until such a
/// poll is seen, the cheaper of two calls and the average poll.
pub fn poll_fixed_cost(r: &ChangeRate) -> f64 {
    if r.empty_poll_calls > 0.0 {
        r.empty_poll_calls.max(1.0)
    } else {
        poll_cost(r).min(2.0)
    }
}

/// Calls each change costs a poll to fetch (its share of a list page, its SKU details): spent
/// once per change however often the shop is polled, so it is budgeted off the top and the
/// poll frequency is chosen on [`poll_fixed_cost`] alone. A busy shop whose polls cost many
/// calls is not expensive to poll often; it is expensive to keep up with at all.
pub fn per_change_cost(r: &ChangeRate) -> f64 {
    if r.busy_poll_events <= 0.0 {
        return 0.0;
    }
    ((r.busy_poll_calls - poll_fixed_cost(r)) / r.busy_poll_events).max(0.0)
}

/// Moves an average a fifth of the way to `x` (or starts it at `x`).
fn ewma(avg: &mut f64, x: f64) {
    *avg = if *avg <= 0.0 { x } else { 0.8 * *avg + 0.2 * x };
}

fn forget_old(events: &mut f64, span: &mut f64, horizon_ms: f64) {
    if *span > horizon_ms {
        *events /= 2.0;
        *span /= 2.0;
    }
}

/// Folds one finished pass (or one session of a full pass) into the shop's record.
pub fn observe(r: &mut ChangeRate, report: &PassReport, full_every_ms: i64) {
    let horizon = 4.0 * full_every_ms as f64;
    match report.kind {
        PassKind::Incremental if report.ok => {
            // The time this poll covered: since the previous poll (or full pass) started.
            if let Some(since) = r.last_poll_ms.or(r.last_full_ms) {
                r.span_ms += (report.started_ms - since).max(0) as f64;
            }
            let found = (report.creates + report.updates + report.deletes) as f64;
            r.events += found;
            let calls = (report.list_calls
                + report.count_calls
                + report.sku_calls
                + report.item_calls
                + report.other_calls) as f64;
            r.poll_calls = if r.polls == 0 { calls } else { 0.8 * r.poll_calls + 0.2 * calls };
            r.polls += 1;
            if found == 0.0 {
                ewma(&mut r.empty_poll_calls, calls);
            } else {
                ewma(&mut r.busy_poll_calls, calls);
                ewma(&mut r.busy_poll_events, found);
            }
            r.last_poll_ms = Some(report.started_ms);
            forget_old(&mut r.events, &mut r.span_ms, horizon);
        }
        PassKind::Full => {
            // Updates and deletes a full pass finds are, on a shop also polled, the changes
            // polls cannot see.
            if r.last_full_ms.is_some() {
                r.silent += (report.updates + report.deletes) as f64;
            }
            if let Some(total) = report.full_pass_calls {
                if let Some(prev) = r.last_full_ms {
                    r.silent_span_ms += (report.finished_ms - prev).max(0) as f64;
                    // Averaged: with `sku_max_age` every few refreshes fetch most SKU details
                    // again, and the last one alone would swing between cheap and dear.
                    r.refresh_calls =
                        if r.refresh_calls == 0 { total } else { (r.refresh_calls + total) / 2 };
                }
                r.last_full_ms = Some(report.finished_ms);
                r.full_calls = total;
                // A full pass's view of the platform reaches its start: polls go on from there.
                r.last_poll_ms = r.last_poll_ms.max(Some(report.started_ms));
                forget_old(&mut r.silent, &mut r.silent_span_ms, horizon);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(kind: PassKind, started: i64, finished: i64, updates: u64) -> PassReport {
        PassReport {
            shop: "s".into(),
            kind,
            started_ms: started,
            finished_ms: finished,
            ok: true,
            error: None,
            list_calls: 3,
            count_calls: 0,
            sku_calls: 1,
            item_calls: 0,
            other_calls: 0,
            items_seen: 0,
            creates: 0,
            updates,
            deletes: 0,
            windows: 1,
            splits: 0,
            unreachable: 0,
            quarantined: 0,
            completeness: None,
            watermark_ms: None,
            resumable: false,
            full_pass_calls: None,
        }
    }

    #[test]
    fn rates_follow_what_polls_find() {
        let day = 86_400_000;
        let mut r = ChangeRate::default();
        let mut full = report(PassKind::Full, 0, 1_000, 0);
        full.full_pass_calls = Some(500);
        observe(&mut r, &full, 7 * day);
        assert_eq!((r.last_full_ms, r.full_calls, r.last_poll_ms), (Some(1_000), 500, Some(0)));
        // Ten polls a day apart, each finding 50 changes: about 50 a day.
        for k in 1..=10 {
            observe(&mut r, &report(PassKind::Incremental, k * day, k * day + 10, 50), 7 * day);
        }
        // Ten days seen outweigh the prior's one: within a tenth of the truth.
        let per_day = visible_rate(&r, day) * day as f64;
        assert!((45.0..=50.0).contains(&per_day), "{per_day}");
        assert!((poll_cost(&r) - 4.0).abs() < 1e-9);
        // Every poll found changes: the fixed cost is guessed, the rest is per change.
        assert!((poll_fixed_cost(&r) - 2.0).abs() < 1e-9);
        assert!((per_change_cost(&r) - 2.0 / 50.0).abs() < 1e-9);
        // An empty poll of one call: polling once more costs one call, each change the rest.
        let mut empty = report(PassKind::Incremental, 11 * day, 11 * day + 10, 0);
        empty.list_calls = 1;
        empty.sku_calls = 0;
        observe(&mut r, &empty, 7 * day);
        assert!((poll_fixed_cost(&r) - 1.0).abs() < 1e-9);
        assert!((per_change_cost(&r) - 3.0 / 50.0).abs() < 1e-9);
        // A quiet shop tends to the prior's one change a week.
        let quiet = ChangeRate::default();
        assert!((visible_rate(&quiet, day) * day as f64 - 1.0 / 7.0).abs() < 1e-9);
    }

    #[test]
    fn silent_changes_are_expected_where_visible_ones_are_until_refreshes_measure_them() {
        let day = 86_400_000i64;
        // Polled for ten days: one shop finds 100 changes a day, another 1.
        let polled = |per_day: f64| ChangeRate {
            events: 10.0 * per_day,
            span_ms: 10.0 * day as f64,
            ..Default::default()
        };
        let (busy, quiet) = (polled(100.0), polled(1.0));
        // No shop refreshed yet: the ratio is the prior, and the busy shop is expected to
        // have about a hundred times the quiet one's silent changes.
        let ratio = silent_ratio([&busy, &quiet], day);
        assert!((ratio - SILENT_RATIO_PRIOR).abs() < 1e-9);
        let per_day = |r: &ChangeRate, ratio: f64| silent_rate(r, day, ratio) * day as f64;
        assert!(per_day(&busy, ratio) > 50.0 * per_day(&quiet, ratio));
        // Refreshes of a third shop measured 20 silent changes a day against 80 visible ones
        // over 10 days: the ratio follows (a quarter; the rate estimate and the prior pull it up a little).
        let measured = ChangeRate { silent: 200.0, silent_span_ms: 10.0 * day as f64, ..polled(80.0) };
        let ratio = silent_ratio([&busy, &quiet, &measured], day);
        assert!((0.25..0.30).contains(&ratio), "{ratio}");
        // A shop's own measurement outweighs the prior within days: this one's polls find
        // 80 changes a day (the ratio would expect about 20 silent ones), its refreshes found
        // 2 a day over 10 days.
        let own = ChangeRate { silent: 20.0, silent_span_ms: 10.0 * day as f64, ..polled(80.0) };
        let got = per_day(&own, silent_ratio([&measured], day));
        assert!((2.5..4.5).contains(&got), "{got}");
    }

    #[test]
    fn a_refresh_is_priced_at_its_list_pages_until_one_was_measured() {
        let day = 86_400_000;
        let mut r = ChangeRate::default();
        // The first copy of 4,000 items cost 400 calls, most of them SKU details.
        let mut copy = report(PassKind::Full, 0, 1_000, 0);
        copy.full_pass_calls = Some(400);
        observe(&mut r, &copy, 7 * day);
        // SKU details only for changed items (none due by age): a refresh reads the 100
        // list pages (and a margin); half of them due by age: half the copy's 285 SKU calls
        // on top; every item's SKUs fetched again: what the copy cost.
        assert_eq!(refresh_cost(&r, 4_000, 40, 0.0), Some(115));
        assert_eq!(refresh_cost(&r, 4_000, 40, 0.5), Some(258));
        assert_eq!(refresh_cost(&r, 4_000, 40, 1.0), Some(400));
        // Refreshes measured: their average from then on.
        let mut refresh = report(PassKind::Full, day, day + 1_000, 3);
        refresh.full_pass_calls = Some(130);
        observe(&mut r, &refresh, 7 * day);
        assert_eq!((r.full_calls, r.refresh_calls), (130, 130));
        assert_eq!(refresh_cost(&r, 4_000, 40, 0.0), Some(130));
        refresh.full_pass_calls = Some(390);
        observe(&mut r, &refresh, 7 * day);
        assert_eq!(refresh_cost(&r, 4_000, 40, 0.0), Some(260));
        // Nothing known at all.
        assert_eq!(refresh_cost(&ChangeRate::default(), 0, 40, 0.0), None);
    }
}
