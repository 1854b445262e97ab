//! What explicit crons cost a quota day: the planner takes it off the budget first, and a
//! config whose crons alone need more than the accounts hold is accepted with a warning that
//! says by how much (the crons still fire; the quota stops them when it is spent).

use super::rates::poll_cost;
use crate::config::{Settings, ShopSettings};
use crate::state::ChangeRate;
use croner::parser::{CronParser, Seconds};

/// How often `expr` fires within `window_ms` from `now_ms`: counted up to 1,000 fires, and
/// beyond that extrapolated from how long the first thousand took (a cron every second
/// would otherwise cost 86,400 steps at every reload).
pub fn fires_within(expr: &str, tz: chrono_tz::Tz, now_ms: i64, window_ms: i64) -> u64 {
    let parser = CronParser::builder().seconds(Seconds::Required).dom_and_dow(true).build();
    let Ok(cron) = parser.parse(expr) else { return 0 };
    let Some(start) = chrono::DateTime::from_timestamp_millis(now_ms) else { return 0 };
    let end = now_ms + window_ms;
    let mut t = start.with_timezone(&tz);
    let mut n = 0u64;
    while n < 1_000 {
        match cron.find_next_occurrence(&t, false) {
            Ok(next) if next.timestamp_millis() < end => {
                n += 1;
                t = next;
            }
            _ => return n,
        }
    }
    let took = (t.timestamp_millis() - now_ms).max(1);
    n * window_ms as u64 / took as u64
}

/// Calls a full pass of a shop is expected to cost, from its last one or its size.
pub fn full_pass_cost(rate: &ChangeRate, items: u64) -> u64 {
    if rate.full_calls > 0 {
        rate.full_calls
    } else {
        items.div_ceil(40) * 11 / 10 + items / 20 + 5
    }
}

/// Calls a day the crons of one shop are expected to need.
pub fn shop_cron_demand(
    s: &ShopSettings,
    settings: &Settings,
    rate: &ChangeRate,
    items: u64,
    now: i64,
) -> u64 {
    let day = settings.accounts.first().map_or(86_400_000, |a| a.pacing.quota_day.len_ms());
    let tz = settings.timezone;
    let mut calls = 0;
    if let Some(c) = s.incremental.cron() {
        calls += fires_within(&super::jittered(c, &s.label), tz, now, day) * poll_cost(rate).ceil() as u64;
    }
    if let Some(c) = s.full.cron() {
        calls += fires_within(&super::jittered(c, &s.label), tz, now, day) * full_pass_cost(rate, items);
    }
    calls
}

/// Calls a day every cron of the config is expected to need (watch lists included), with
/// `state(shop)` giving a shop's learned rate and stored item count where known.
pub fn total_cron_demand(
    settings: &Settings,
    now: i64,
    state: impl Fn(&ShopSettings) -> (ChangeRate, u64),
) -> u64 {
    let day = settings.accounts.first().map_or(86_400_000, |a| a.pacing.quota_day.len_ms());
    let shops: u64 = settings
        .shops
        .iter()
        .map(|s| {
            let (rate, items) = state(s);
            shop_cron_demand(s, settings, &rate, items, now)
        })
        .sum();
    let watches: u64 = settings
        .watches
        .iter()
        .map(|w| fires_within(&w.schedule, settings.timezone, now, day) * w.items.len() as u64)
        .sum();
    shops + watches
}

/// The warning for crons that need more than the accounts hold, if they do.
pub fn over_budget(demand: u64, settings: &Settings) -> Option<String> {
    let held: u64 = settings.accounts.iter().map(|a| a.daily_quota).sum();
    (demand > held).then(|| {
        format!(
            "the crons alone need about {demand} calls a quota day and the accounts hold {held}: \
             {} calls ({:.0}%) more than the budget; passes past it wait for the next quota day \
             (\"auto\" schedules fit the budget by themselves)",
            demand - held,
            (demand - held) as f64 * 100.0 / held.max(1) as f64
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_are_counted_in_the_zone() {
        let t = 1_700_000_000_000; // 2023-11-14 22:13:20 UTC
        let day = 86_400_000;
        assert_eq!(fires_within("0 */15 * * * *", chrono_tz::Asia::Shanghai, t, day), 96);
        assert_eq!(fires_within("0 30 3 * * *", chrono_tz::Asia::Shanghai, t, day), 1);
        assert_eq!(
            fires_within("* * * * * *", chrono_tz::UTC, t, 60_000),
            59,
            "after now, before now + 60 s"
        );
        assert_eq!(fires_within("not a cron", chrono_tz::UTC, t, day), 0);
    }
}
