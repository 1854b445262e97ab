//! The change event as Rust sink plugins read it from a batch (design doc, "Change event"),
//! with the item kept as written, and what database sinks need of it.

use crate::SinkError;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;

/// One change event of a batch. The item stays the JSON text the host sent, so a sink can
/// store it without decoding and encoding it again.
#[derive(Deserialize)]
pub struct Event {
    pub id: String,
    pub seq: i64,
    pub shop: String,
    pub item_id: String,
    pub op: String,
    pub changed: Vec<String>,
    pub md5: String,
    pub modified_ms: i64,
    pub observed_ms: i64,
    pub item: Box<RawValue>,
}

/// The item fields that database sinks keep in typed columns.
#[derive(Deserialize)]
pub struct Columns {
    pub title: Option<String>,
    pub cid: Option<String>,
    pub price_source: Option<String>,
    pub moq: Option<i64>,
    pub sales: Option<i64>,
    pub stock: Option<i64>,
    pub status: Option<String>,
}

impl Event {
    /// A batch as events; a batch that is not a JSON array of events is rejected.
    pub fn parse_batch(batch: &[u8]) -> Result<Vec<Event>, SinkError> {
        serde_json::from_slice(batch).map_err(|e| SinkError::Reject(format!("batch is not events: {e}")))
    }

    pub fn columns(&self) -> Result<Columns, SinkError> {
        serde_json::from_str(self.item.get())
            .map_err(|e| SinkError::Reject(format!("event {}: the item is not an item: {e}", self.id)))
    }

    pub fn is_delete(&self) -> bool {
        self.op == "delete"
    }
}

/// The newest event of each item in a batch: one statement may not touch a row twice, and a
/// batch may hold one item more than once.
pub fn newest_per_item(events: &[Event]) -> Vec<&Event> {
    let mut last: HashMap<(&str, &str), &Event> = HashMap::new();
    for e in events {
        let k = (e.shop.as_str(), e.item_id.as_str());
        if last.get(&k).is_none_or(|p| p.seq < e.seq) {
            last.insert(k, e);
        }
    }
    last.into_values().collect()
}

/// The config database sinks share: the server as `url` or `dsn` (one of them), `password`
/// (kept out of the url so it can come from a secret store), `sslmode`, `items_table`
/// (default `items`), `changes_table` (default `item_changes`), `connect_timeout_ms`
/// (default 10000).
///
/// Secrets arrive already resolved: the host turns `password_env` / `password_file`,
/// `dsn_env` / `dsn_file` (any `<key>_env` / `<key>_file`) into `<key>` before `create`, and
/// scrubs the values from every message a plugin hands back.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub dsn: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub sslmode: Option<String>,
    #[serde(default = "default_items")]
    pub items_table: String,
    #[serde(default = "default_changes")]
    pub changes_table: String,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

fn default_items() -> String {
    "items".into()
}

fn default_changes() -> String {
    "item_changes".into()
}

fn default_connect_timeout_ms() -> u64 {
    10_000
}

impl TableConfig {
    /// The two table names quoted with `quote` (`"` for PostgreSQL, `` ` `` for MySQL); names
    /// may hold only letters, digits and `_`, so they are safe inside SQL text.
    pub fn tables(&self, quote: char) -> Result<(String, String), String> {
        let ident = |s: &str| {
            if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                Ok(format!("{quote}{s}{quote}"))
            } else {
                Err(format!("table name {s:?} may hold only letters, digits and '_'"))
            }
        };
        Ok((ident(&self.items_table)?, ident(&self.changes_table)?))
    }

    /// The connection string: `url` or `dsn`, exactly one.
    pub fn target(&self) -> Result<&str, String> {
        match (&self.url, &self.dsn) {
            (Some(u), None) | (None, Some(u)) => Ok(u),
            _ => Err("give exactly one of url and dsn (or url_env, dsn_env, url_file, dsn_file)".into()),
        }
    }
}
