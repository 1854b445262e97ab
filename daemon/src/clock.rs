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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midnight_is_sixteen_hundred_utc() {
        // 2023-11-14 22:13:20 UTC is already the 15th in Shanghai; its day ends at 16:00 UTC.
        let t = 1_700_000_000_000;
        let next = next_shanghai_midnight(t);
        assert_eq!(next, 1_700_064_000_000);
        assert_eq!(shanghai_day(next - 1) + 1, shanghai_day(next));
    }
}
