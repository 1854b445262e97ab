//! Clock helpers: millisecond time, the Asia/Shanghai day (quotas reset at its midnight), and
//! the `YYYY-MM-DD HH:MM:SS` timestamp form the gateway also accepts.

use std::time::{SystemTime, UNIX_EPOCH};

pub const DAY_MS: i64 = 86_400_000;
/// Asia/Shanghai is UTC+8 all year (no daylight saving since 1991).
pub const SHANGHAI_OFFSET_MS: i64 = 8 * 3_600_000;

pub fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The quota day a moment belongs to: days since the epoch, counted in Shanghai time.
pub fn shanghai_day(ms: i64) -> i64 {
    (ms + SHANGHAI_OFFSET_MS).div_euclid(DAY_MS)
}

/// The quota day a moment belongs to, for a day of `day_ms`: a 24-hour day starts at 00:00
/// Asia/Shanghai (the platform's rule); a shorter one (simulations that run many days in
/// minutes) starts at multiples of its length since the Unix epoch.
pub fn quota_day(ms: i64, day_ms: i64) -> i64 {
    if day_ms <= 0 || day_ms == DAY_MS {
        shanghai_day(ms)
    } else {
        ms.div_euclid(day_ms)
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DD HH:MM:SS`, read as Asia/Shanghai time, into epoch ms.
pub fn parse_shanghai(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se;
    Some(secs * 1000 - SHANGHAI_OFFSET_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shanghai_text_time() {
        // 2023-11-14 22:13:20 UTC is 2023-11-15 06:13:20 in Shanghai.
        assert_eq!(parse_shanghai("2023-11-15 06:13:20"), Some(1_700_000_000_000));
        assert_eq!(parse_shanghai("2023-11-15T06:13:20"), None);
    }

    #[test]
    fn quota_day_turns_at_shanghai_midnight() {
        let midnight = parse_shanghai("2026-01-02 00:00:00").unwrap_or_default();
        assert_eq!(shanghai_day(midnight - 1) + 1, shanghai_day(midnight));
    }
}
