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

/// Changes per millisecond only full passes see (silent stock/sales edits, removals).
pub fn silent_rate(r: &ChangeRate, day_ms: i64) -> f64 {
    rate(r.silent, r.silent_span_ms, day_ms)
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
}
