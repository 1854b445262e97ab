//! The two date forms of the production platform, both in Asia/Shanghai time:
//! `yyyyMMddHHmmssSSS+0800` (the product APIs, token timeouts) and `yyyy-MM-dd HH:mm:ss`
//! (the cross-border offer lists, which drop the milliseconds).

use crate::time::{days_from_civil, DAY_MS, SHANGHAI_OFFSET_MS};

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Shanghai wall-clock parts of an epoch-ms moment: (y, mo, d, h, mi, s, ms).
fn parts(ms: i64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let local = ms + SHANGHAI_OFFSET_MS;
    let (y, mo, d) = civil_from_days(local.div_euclid(DAY_MS));
    let in_day = local.rem_euclid(DAY_MS);
    (y, mo, d, in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000)
}

/// `20231115061320000+0800`
pub fn compact(ms: i64) -> String {
    let (y, mo, d, h, mi, s, milli) = parts(ms);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}{milli:03}+0800")
}

/// `2023-11-15 06:13:20`
pub fn plain(ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = parts(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// Parses the compact form. The offset must be there and must be `+0800`: a client that
/// writes UTC wall time with `+0000`, or none, is eight hours off, and the platform's SDKs
/// always send `+0800`, so anything else is refused rather than converted.
pub fn parse_compact(s: &str) -> Option<i64> {
    let (digits, offset) = s.split_at_checked(17)?;
    if offset != "+0800" || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| digits.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se, milli) = (num(8..10)?, num(10..12)?, num(12..14)?, num(14..17)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se;
    Some(secs * 1000 + milli - SHANGHAI_OFFSET_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_are_shanghai_time() {
        // 2023-11-14 22:13:20.000 UTC is 2023-11-15 06:13:20 in Shanghai.
        assert_eq!(compact(1_700_000_000_000), "20231115061320000+0800");
        assert_eq!(compact(1_700_000_000_042), "20231115061320042+0800");
        assert_eq!(plain(1_700_000_000_999), "2023-11-15 06:13:20");
        // The SDK's own example, and a moment on the Shanghai side of midnight.
        assert_eq!(
            parse_compact("20180717174002000+0800").map(compact).as_deref(),
            Some("20180717174002000+0800")
        );
        assert_eq!(
            compact(crate::time::parse_shanghai("2026-01-01 00:00:00").unwrap_or_default()),
            "20260101000000000+0800"
        );
    }

    #[test]
    fn compact_round_trips_and_refuses_other_offsets() {
        for ms in [0, 1_700_000_000_123, 951_782_400_000 /* 2000-02-29 */, 4_102_444_799_999] {
            assert_eq!(parse_compact(&compact(ms)), Some(ms), "{ms}");
        }
        assert_eq!(parse_compact("20231115061320000+0000"), None);
        assert_eq!(parse_compact("20231115061320000"), None);
        assert_eq!(parse_compact("2023111506132000+0800"), None);
        assert_eq!(parse_compact("20231315061320000+0800"), None);
        assert_eq!(parse_compact("1700000000000"), None);
    }
}
