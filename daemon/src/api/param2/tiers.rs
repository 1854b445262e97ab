//! Wholesale tiers: the platform's `startQuantity` thresholds into the seed model's tier text.
//!
//! param2 writes `[{startQuantity: 2, price: "11.00"}, {startQuantity: 10, price: "10.00"}]`:
//! 2 pieces or more cost 11.00, 10 or more 10.00 (a tier runs up to the next threshold minus
//! one). The seed model, which the normalizer reads, writes the same as `2-9:11.00;10-:10.00`
//! (`parse_wholesale` in `api/model.rs`: `MIN-MAX:PRICE`, the last tier open). Producing that
//! text keeps the normalizer and everything after it unchanged.

use super::read::{int, price};
use serde_json::Value;

/// The tier text for a list of ranges, or `None` when there are none. Ranges may come in any
/// order; two ranges from the same quantity, a negative quantity or an unreadable price make
/// the whole list unreadable (a wrong price is worse than none: the item is set aside).
pub fn from_ranges(ranges: Option<&Value>, field: &str) -> Result<Option<String>, String> {
    let list = match ranges {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(format!("{field}: expected a list, got {other}")),
    };
    let mut tiers: Vec<(u64, String)> = Vec::with_capacity(list.len());
    for r in list {
        let start = int(r.get("startQuantity"), &format!("{field}.startQuantity"))?
            .ok_or_else(|| format!("{field}: a range without startQuantity"))?;
        let start =
            u64::try_from(start).map_err(|_| format!("{field}: startQuantity {start} is negative"))?;
        let p = price(r.get("price"), &format!("{field}.price"))?
            .ok_or_else(|| format!("{field}: the range from {start} has no price"))?;
        tiers.push((start, p));
    }
    tiers.sort_by_key(|t| t.0);
    if let Some(w) = tiers.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("{field}: two ranges start at {}", w[0].0));
    }
    let mut parts = Vec::with_capacity(tiers.len());
    for (i, (start, p)) in tiers.iter().enumerate() {
        match tiers.get(i + 1) {
            // Sorted and distinct, so the next start is at least start + 1.
            Some((next, _)) => parts.push(format!("{start}-{}:{p}", next - 1)),
            None => parts.push(format!("{start}-:{p}")),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join(";")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{parse_wholesale, Tier};
    use rust_decimal::Decimal;
    use serde_json::json;
    use std::str::FromStr;

    #[test]
    fn thresholds_become_closed_tiers_and_an_open_last_one() {
        let r = json!([
            {"startQuantity": 10, "price": "10.00"},
            {"startQuantity": 2, "price": "11.00"},
            {"startQuantity": "100", "price": 9.5}
        ]);
        let text = from_ranges(Some(&r), "priceRanges").unwrap();
        assert_eq!(text.as_deref(), Some("2-9:11.00;10-99:10.00;100-:9.5"));
        // And the seed parser reads it back into the tiers the normalizer stores.
        let tiers = parse_wholesale(text.as_deref().unwrap(), 1).unwrap();
        let d = |s| Decimal::from_str(s).unwrap();
        assert_eq!(
            tiers,
            vec![
                Tier { min_qty: 2, max_qty: Some(9), price: d("11.00") },
                Tier { min_qty: 10, max_qty: Some(99), price: d("10.00") },
                Tier { min_qty: 100, max_qty: None, price: d("9.5") },
            ]
        );
    }

    #[test]
    fn adjacent_thresholds_make_one_piece_tiers() {
        let r = json!([{"startQuantity": 1, "price": "3"}, {"startQuantity": 2, "price": "2"}]);
        assert_eq!(from_ranges(Some(&r), "p").unwrap().as_deref(), Some("1-1:3;2-:2"));
    }

    #[test]
    fn empty_and_hostile_ranges() {
        assert_eq!(from_ranges(None, "p"), Ok(None));
        assert_eq!(from_ranges(Some(&json!([])), "p"), Ok(None));
        for bad in [
            json!([{"startQuantity": 2, "price": "1"}, {"startQuantity": 2, "price": "2"}]),
            json!([{"startQuantity": -1, "price": "1"}]),
            json!([{"startQuantity": 2, "price": "价格"}]),
            json!([{"startQuantity": 2}]),
            json!([{"price": "1"}]),
            json!({"startQuantity": 2}),
        ] {
            assert!(from_ranges(Some(&bad), "p").is_err(), "{bad}");
        }
    }
}
