//! Wall-clock helpers in the platform's terms: millisecond epoch time, and the Asia/Shanghai
//! day at whose midnight daily quotas reset.

use std::time::{SystemTime, UNIX_EPOCH};

pub const DAY_MS: i64 = 86_400_000;
/// Asia/Shanghai is UTC+8 all year (no daylight saving since 1991), so a fixed offset is exact.
const SHANGHAI_OFFSET_MS: i64 = 8 * 3_600_000;

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The quota day `ms` falls in: days since the epoch, counted in Shanghai time.
pub fn shanghai_day(ms: i64) -> i64 {
    (ms + SHANGHAI_OFFSET_MS).div_euclid(DAY_MS)
}

/// The first millisecond of the Shanghai day after the one `ms` falls in.
pub fn next_shanghai_midnight(ms: i64) -> i64 {
    (shanghai_day(ms) + 1) * DAY_MS - SHANGHAI_OFFSET_MS
}

/// How the daily call budget is cut into days. The platform's day starts at 00:00
/// Asia/Shanghai; simulations shorten it (`[pacing] quota_day`) so that tests and benchmarks
/// run many quota days in minutes, with days starting at multiples of their length since the
/// epoch (sim1688's `--quota-day` follows the same rule, so both sides agree on the reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaDay {
    len_ms: i64,
}

impl Default for QuotaDay {
    fn default() -> Self {
        QuotaDay { len_ms: DAY_MS }
    }
}

impl QuotaDay {
    /// A day of `len` (at least a millisecond); 24 hours is the platform's day.
    pub fn new(len: std::time::Duration) -> QuotaDay {
        QuotaDay { len_ms: (len.as_millis() as i64).max(1) }
    }

    pub fn len_ms(&self) -> i64 {
        self.len_ms
    }

    /// The index of the quota day `ms` falls in.
    pub fn index(&self, ms: i64) -> i64 {
        if self.len_ms == DAY_MS {
            shanghai_day(ms)
        } else {
            ms.div_euclid(self.len_ms)
        }
    }

    /// The first millisecond of the next quota day.
    pub fn next_reset(&self, ms: i64) -> i64 {
        if self.len_ms == DAY_MS {
            next_shanghai_midnight(ms)
        } else {
            (self.index(ms) + 1) * self.len_ms
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_quota_days_start_at_multiples_of_their_length() {
        let d = QuotaDay::new(std::time::Duration::from_secs(20));
        assert_eq!(d.index(1_700_000_019_999), 85_000_000);
        assert_eq!(d.next_reset(1_700_000_005_000), 1_700_000_020_000);
        let platform = QuotaDay::default();
        assert_eq!(platform.next_reset(1_700_000_000_000), next_shanghai_midnight(1_700_000_000_000));
    }

    #[test]
    fn midnight_is_sixteen_hundred_utc() {
        // 2023-11-14 22:13:20 UTC is already the 15th in Shanghai; its day ends at 16:00 UTC.
        let t = 1_700_000_000_000;
        let next = next_shanghai_midnight(t);
        assert_eq!(next, 1_700_064_000_000);
        assert_eq!(shanghai_day(next - 1) + 1, shanghai_day(next));
    }
}

/// `2026-01-01` read as 00:00 Asia/Shanghai (the platform's day), in epoch ms.
pub fn parse_shanghai_date(s: &str) -> Option<i64> {
    let mut parts = s.trim().splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from civil (proleptic Gregorian), after Howard Hinnant.
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * DAY_MS - SHANGHAI_OFFSET_MS)
}

/// An epoch-ms time as RFC 3339 UTC, for people.
pub fn show_ms(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod date_tests {
    use super::*;

    #[test]
    fn dates_are_shanghai_midnight() {
        // 2023-11-15 00:00 in Shanghai is 2023-11-14 16:00 UTC.
        assert_eq!(parse_shanghai_date("2023-11-15"), Some(1_699_977_600_000));
        assert_eq!(parse_shanghai_date("2023-13-01"), None);
        assert_eq!(show_ms(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
    }
}
