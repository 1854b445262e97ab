//! The platform's two ways of writing a time, both meant in Asia/Shanghai, to and from epoch
//! milliseconds.
//!
//! - `yyyyMMddHHmmssSSS+0800` (`20180717174002000+0800`): the product APIs' dates and the
//!   `startModifyTime`/`endModifyTime` filters (generated parameter classes of
//!   `alibaba.product.list.get`; the Java SDK's `DateUtil`).
//! - `yyyy-MM-dd HH:mm:ss` without an offset (`2021-04-08 08:00:00`): the cross-border APIs'
//!   `createDate`/`modifyDate`, Shanghai wall time.
//!
//! Shanghai has kept +08:00 all year since 1991, so a fixed offset is exact for any date a
//! catalogue holds; no time-zone database is needed.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

const SHANGHAI_OFFSET_S: i32 = 8 * 3600;

/// `ms` as `yyyyMMddHHmmssSSS+0800`.
pub fn format_compact(ms: i64) -> String {
    // The Shanghai wall clock is UTC shifted by eight hours; read its fields as if UTC.
    let shifted = ms.saturating_add(i64::from(SHANGHAI_OFFSET_S) * 1000);
    let Some(t) = DateTime::<Utc>::from_timestamp_millis(shifted) else {
        // Out of chrono's range (hundreds of thousands of years): the epoch rather than a
        // panic; the platform answers an empty page for such a bound anyway.
        return "19700101080000000+0800".into();
    };
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}{:03}+0800",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.timestamp_subsec_millis()
    )
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A wall-clock reading: year, month, day, hour, minute, second, millisecond.
type Wall = (i32, u32, u32, u32, u32, u32, u32);

/// Epoch ms of a wall time at `offset_s` east of UTC.
fn epoch_ms((y, mo, d, h, mi, s, ms): Wall, offset_s: i32) -> Option<i64> {
    let local = NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_milli_opt(h, mi, s, ms)?;
    Some(local.and_utc().timestamp_millis() - i64::from(offset_s) * 1000)
}

/// `yyyyMMddHHmmssSSS±HHMM`; the milliseconds and the offset may be missing (then +0800).
pub fn parse_compact(s: &str) -> Option<i64> {
    let s = s.trim();
    let (wall, offset_s) = match s.find(['+', '-']) {
        Some(i) => {
            let (wall, off) = s.split_at(i);
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let off = &off[1..];
            if off.len() != 4 {
                return None;
            }
            let (oh, om) = (digits(&off[..2])?, digits(&off[2..])?);
            (wall, sign * (oh as i32 * 3600 + om as i32 * 60))
        }
        None => (s, SHANGHAI_OFFSET_S),
    };
    if !(wall.len() == 17 || wall.len() == 14) || !wall.is_ascii() {
        return None;
    }
    let n = |a: usize, b: usize| digits(&wall[a..b]);
    let ms = if wall.len() == 17 { n(14, 17)? } else { 0 };
    epoch_ms((n(0, 4)? as i32, n(4, 6)?, n(6, 8)?, n(8, 10)?, n(10, 12)?, n(12, 14)?, ms), offset_s)
}

/// `yyyy-MM-dd HH:mm:ss` in Shanghai time (a `.SSS` fraction is accepted too).
pub fn parse_dashed(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = s.split_once([' ', 'T'])?;
    let mut d = date.split('-');
    let (y, mo, day) = (digits(d.next()?)?, digits(d.next()?)?, digits(d.next()?)?);
    if d.next().is_some() {
        return None;
    }
    let (hms, frac) = match time.split_once('.') {
        Some((hms, f)) if f.len() <= 3 => (hms, digits(f)? * 10u32.pow(3 - f.len() as u32)),
        Some(_) => return None,
        None => (time, 0),
    };
    let mut t = hms.split(':');
    let (h, mi, sec) = (digits(t.next()?)?, digits(t.next()?)?, digits(t.next()?)?);
    if t.next().is_some() {
        return None;
    }
    epoch_ms((y as i32, mo, day, h, mi, sec, frac), SHANGHAI_OFFSET_S)
}

/// A time field as it arrives: either written form, or a bare 13-digit millisecond number
/// (as a number or a string). `Ok(None)` when the field is absent or null; `Err` when it is
/// there and none of these.
pub fn parse_value(v: Option<&serde_json::Value>) -> Result<Option<i64>, String> {
    use serde_json::Value;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            n.as_i64().map(Some).ok_or_else(|| format!("time {n} is not whole milliseconds"))
        }
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.len() == 13 && t.bytes().all(|b| b.is_ascii_digit()) {
                return t.parse().map(Some).map_err(|_| format!("time {s:?} is unreadable"));
            }
            parse_compact(t).or_else(|| parse_dashed(t)).map(Some).ok_or_else(|| {
                format!("time {s:?} is neither yyyyMMddHHmmssSSS+0800 nor yyyy-MM-dd HH:mm:ss")
            })
        }
        Some(other) => Err(format!("time {other} is not a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2018-07-17 17:40:02 +08:00 is 09:40:02 UTC = 1531820402 s.
    #[test]
    fn compact_dates_are_shanghai_time() {
        assert_eq!(parse_compact("20180717174002000+0800"), Some(1_531_820_402_000));
        assert_eq!(parse_compact("20180717174002123+0800"), Some(1_531_820_402_123));
        assert_eq!(parse_compact("20180717174002"), Some(1_531_820_402_000), "no ms, no offset: +0800");
        assert_eq!(parse_compact("20180717094002000+0000"), Some(1_531_820_402_000));
        assert_eq!(format_compact(1_531_820_402_000), "20180717174002000+0800");
        assert_eq!(format_compact(1_531_820_402_007), "20180717174002007+0800");
        // A day boundary: 2023-11-14 22:13:20 UTC is 2023-11-15 06:13:20 in Shanghai.
        assert_eq!(format_compact(1_700_000_000_000), "20231115061320000+0800");
    }

    #[test]
    fn dashed_dates_are_shanghai_time() {
        // 2021-04-08 08:00:00 Shanghai = 2021-04-08 00:00:00 UTC = 1617840000 s.
        assert_eq!(parse_dashed("2021-04-08 08:00:00"), Some(1_617_840_000_000));
        assert_eq!(parse_dashed("2021-04-08 08:00:00.5"), Some(1_617_840_000_500));
    }

    #[test]
    fn garbage_is_refused() {
        for s in [
            "2018071717400200+0800",
            "20181317174002000+0800",
            "2021-04-08",
            "2021-04-31 00:00:00",
            "昨天",
            "20180717174002000+08",
        ] {
            assert!(parse_compact(s).or_else(|| parse_dashed(s)).is_none(), "{s}");
        }
        assert!(parse_value(Some(&serde_json::json!("昨天"))).is_err());
        assert!(parse_value(Some(&serde_json::json!(true))).is_err());
        assert_eq!(parse_value(Some(&serde_json::json!("1531820402000"))), Ok(Some(1_531_820_402_000)));
        assert_eq!(parse_value(Some(&serde_json::json!(1_531_820_402_000i64))), Ok(Some(1_531_820_402_000)));
        assert_eq!(parse_value(Some(&serde_json::json!(""))), Ok(None));
        assert_eq!(parse_value(None), Ok(None));
    }
}
