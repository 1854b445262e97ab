//! Tolerant readers for param2 fields, in the spirit of `api/model.rs`: ids and counts arrive
//! as strings or numbers (the generated classes say `Long`, recorded answers hold `"8"`),
//! prices as strings or numbers, absent and `null` are the same. What is present but cannot
//! be read is an error naming the field, so the caller can set the item aside.

use crate::api::parse_price;
use serde_json::Value;

/// The value at a `/`-separated path of object keys.
pub fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('/').try_fold(v, |v, k| v.get(k)).filter(|v| !v.is_null())
}

/// The first of several paths that is present: the same field under its name in each API.
pub fn first<'a>(v: &'a Value, paths: &[&str]) -> Option<&'a Value> {
    paths.iter().find_map(|p| at(v, p))
}

/// An id: a non-empty string or a whole number.
pub fn id(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// A whole number, from a number (`8`, `8.0`) or a string (`"8"`).
pub fn int(v: Option<&Value>, field: &str) -> Result<Option<i64>, String> {
    let bad = |v: &Value| format!("{field}: {v} is not a whole number");
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(Some(i)),
            // `amountOnSale` is a float64 in some clients' models: accept 99999.0, not 1.5.
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
                _ => Err(bad(v.unwrap_or(&Value::Null))),
            },
        },
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(val @ Value::String(s)) => {
            let t = s.trim();
            t.parse::<i64>()
                .ok()
                .or_else(|| t.strip_suffix(".0").and_then(|w| w.parse().ok()))
                .map(Some)
                .ok_or_else(|| bad(val))
        }
        Some(other) => Err(bad(other)),
    }
}

/// A text field; numbers are written as text.
pub fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A price as a decimal string. A JSON number is written back as the shortest text that
/// reads as the same number (`12.5`), never through float arithmetic; the check is
/// [`parse_price`], the seed model's own rule (a non-negative decimal).
pub fn price(v: Option<&Value>, field: &str) -> Result<Option<String>, String> {
    let Some(s) = text(v).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) else {
        return match v {
            None | Some(Value::Null) | Some(Value::String(_)) => Ok(None),
            Some(other) => Err(format!("{field}: {other} is not a price")),
        };
    };
    parse_price(&s).map_err(|e| format!("{field}: {e}"))?;
    Ok(Some(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_and_strings_either_way() {
        assert_eq!(id(Some(&json!(601234567890u64))).as_deref(), Some("601234567890"));
        assert_eq!(id(Some(&json!(" 601 "))).as_deref(), Some("601"));
        assert_eq!(id(Some(&json!(""))), None);
        assert_eq!(id(Some(&json!(1.5))), None);
        assert_eq!(int(Some(&json!("8")), "n"), Ok(Some(8)));
        assert_eq!(int(Some(&json!(99999.0)), "n"), Ok(Some(99999)));
        assert_eq!(int(Some(&json!("99999.0")), "n"), Ok(Some(99999)));
        assert_eq!(int(Some(&json!("")), "n"), Ok(None));
        assert!(int(Some(&json!("两件")), "moq").is_err_and(|e| e.contains("moq")));
        assert!(int(Some(&json!(1.5)), "n").is_err());
        assert!(int(Some(&json!([1])), "n").is_err());
    }

    #[test]
    fn prices_stay_decimal_text() {
        assert_eq!(price(Some(&json!("11.00")), "p"), Ok(Some("11.00".into())));
        assert_eq!(price(Some(&json!(12.5)), "p"), Ok(Some("12.5".into())));
        assert_eq!(price(Some(&json!(0.1)), "p"), Ok(Some("0.1".into())));
        assert_eq!(price(Some(&json!("")), "p"), Ok(None));
        assert_eq!(price(None, "p"), Ok(None));
        assert!(price(Some(&json!("价格")), "p").is_err());
        assert!(price(Some(&json!("-1")), "p").is_err());
        assert!(price(Some(&json!(true)), "p").is_err());
    }

    #[test]
    fn paths() {
        let v = json!({"a": {"b": {"c": 1}, "n": null}});
        assert_eq!(at(&v, "a/b/c"), Some(&json!(1)));
        assert_eq!(at(&v, "a/n"), None);
        assert_eq!(first(&v, &["x", "a/b/c"]), Some(&json!(1)));
    }
}
