//! How long an open full pass still needs, from its own pace and the quota it can use.

use crate::clock::QuotaDay;
use crate::state::FullProgress;

/// Calls the open pass still needs: the items it has yet to see, at the calls per item it
/// has spent so far (list, SKU and count calls together). `None` until it has a pace.
pub fn calls_left(p: &FullProgress) -> Option<u64> {
    let official = p.official?;
    if p.items_seen == 0 || p.calls == 0 {
        return None;
    }
    let left = official.saturating_sub(p.items_seen);
    Some((left as f64 * p.calls as f64 / p.items_seen as f64).ceil() as u64)
}

/// When the open pass should finish: at its own pace while today's quota lasts, then a quota
/// day at a time. `quota_left` is what its accounts have left today, `quota_daily` what they
/// get each day.
pub fn finish_at(
    p: &FullProgress,
    now: i64,
    quota_left: u64,
    quota_daily: u64,
    day: QuotaDay,
) -> Option<i64> {
    let need = calls_left(p)?;
    let ms_per_call = p.active_ms.max(1) as f64 / p.calls.max(1) as f64;
    if need <= quota_left {
        return Some(now + (need as f64 * ms_per_call) as i64);
    }
    if quota_daily == 0 {
        return None;
    }
    let rest = need - quota_left;
    let full_days = (rest - 1) / quota_daily;
    let last_day_calls = rest - full_days * quota_daily;
    Some(day.next_reset(now) + full_days as i64 * day.len_ms() + (last_day_calls as f64 * ms_per_call) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::WindowState;

    #[test]
    fn a_pass_bigger_than_the_day_finishes_days_later() {
        let mut p = FullProgress::new(1, 0, 0, WindowState::new(0, 1, None));
        p.official = Some(100_000);
        p.items_seen = 10_000;
        p.calls = 1_000;
        p.active_ms = 1_000_000; // a second a call
        assert_eq!(calls_left(&p), Some(9_000));
        let day = QuotaDay::new(std::time::Duration::from_secs(100));
        // 500 calls today, then 3,000 a day: 8,500 more = 2 full days and 2,500 on the third.
        let eta = finish_at(&p, 1_000, 500, 3_000, day);
        assert_eq!(eta, Some(100_000 + 2 * 100_000 + 2_500 * 1_000));
        // Everything fits today: at its own pace.
        assert_eq!(finish_at(&p, 0, 10_000, 3_000, day), Some(9_000 * 1_000));
    }
}
