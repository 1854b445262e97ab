//! The cross-border APIs take their business parameters as one JSON object in one form
//! field (`offerQueryParam`, `offerDetailParam`). This reads such a field, as leniently as
//! the platform's JSON reader: a number may come quoted.

use super::gateway::Params;
use super::reply::{Gw, Reply};
use serde_json::{Map, Value};

/// The object in field `name`; a missing field is a gateway refusal, an unreadable one a
/// business error of the API.
pub fn object(p: &Params, name: &str) -> Result<Map<String, Value>, Reply> {
    let Some(raw) = p.get(name) else {
        return Err(Reply::gw(Gw::ParamMissing, format!("Param {name} is missing")));
    };
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Reply::flat_failure("InvalidParameter", &format!("{name} must be a JSON object"))),
    }
}

/// A non-empty string member.
pub fn string(m: &Map<String, Value>, key: &str) -> Option<String> {
    match m.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// A member that is there but is not a whole number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAnInteger;

/// An integer member, `12` or `"12"`.
pub fn integer(m: &Map<String, Value>, key: &str) -> Result<Option<u64>, NotAnInteger> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or(NotAnInteger),
        Some(Value::String(s)) => s.trim().parse::<u64>().map(Some).map_err(|_| NotAnInteger),
        Some(_) => Err(NotAnInteger),
    }
}
