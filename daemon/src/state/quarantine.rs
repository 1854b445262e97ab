//! Items the platform sent in a shape that could not be read (a string MOQ that is no number,
//! a missing `modified_time`, tiers nobody can parse). They are kept here, per shop, with the
//! parser's message, so `status` can show them and the next pass can try them again; an item
//! leaves the quarantine as soon as a pass reads it cleanly.

use super::store::{item_key, StateError, Store};
use serde::{Deserialize, Serialize};

/// One quarantined item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    pub item_id: String,
    /// What the parser said.
    pub error: String,
    /// Its `modified_time` when that much could be read.
    #[serde(default)]
    pub modified_ms: Option<i64>,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// How many reads found it unreadable.
    pub times: u64,
}

fn decode(v: &[u8]) -> Result<Quarantined, StateError> {
    serde_json::from_slice(v)
        .map_err(|e| StateError::Corrupt { what: "quarantined item".into(), detail: e.to_string() })
}

impl Store {
    /// Records that `item_id` of `shop` could not be read (again).
    pub fn quarantine(
        &self,
        shop: &str,
        item_id: &str,
        error: &str,
        modified_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<Quarantined, StateError> {
        let key = item_key(shop, item_id);
        let q = match self.quarantine.get(&key)? {
            Some(v) => {
                let mut q = decode(&v)?;
                q.error = error.to_string();
                q.modified_ms = modified_ms.or(q.modified_ms);
                q.last_seen_ms = now_ms;
                q.times += 1;
                q
            }
            None => Quarantined {
                item_id: item_id.to_string(),
                error: error.to_string(),
                modified_ms,
                first_seen_ms: now_ms,
                last_seen_ms: now_ms,
                times: 1,
            },
        };
        let bytes = serde_json::to_vec(&q)
            .map_err(|e| StateError::Corrupt { what: "quarantined item".into(), detail: e.to_string() })?;
        self.quarantine.insert(key, bytes)?;
        Ok(q)
    }

    /// Releases these items of `shop` from the quarantine (they were read cleanly); returns
    /// how many were in it. Cheap when the shop has none, which is the usual case.
    pub fn release(&self, shop: &str, item_ids: &[&str]) -> Result<u64, StateError> {
        if self.quarantine.scan_prefix(format!("{shop}/")).next().is_none() {
            return Ok(0);
        }
        let mut n = 0;
        for id in item_ids {
            if self.quarantine.remove(item_key(shop, id))?.is_some() {
                n += 1;
            }
        }
        Ok(n)
    }

    pub fn is_quarantined(&self, shop: &str, item_id: &str) -> Result<bool, StateError> {
        Ok(self.quarantine.contains_key(item_key(shop, item_id))?)
    }

    pub fn quarantined_item(&self, shop: &str, item_id: &str) -> Result<Option<Quarantined>, StateError> {
        self.quarantine.get(item_key(shop, item_id))?.map(|v| decode(&v)).transpose()
    }

    /// The shop's quarantined items, by id.
    pub fn quarantined(&self, shop: &str) -> Result<Vec<Quarantined>, StateError> {
        self.quarantine.scan_prefix(format!("{shop}/")).map(|kv| decode(&kv?.1)).collect()
    }

    /// How many items of the shop are quarantined.
    pub fn quarantined_count(&self, shop: &str) -> usize {
        self.quarantine.scan_prefix(format!("{shop}/")).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_is_kept_until_it_is_read_cleanly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 1 << 20).expect("open");
        assert_eq!(store.release("6000000000000001", &["1"]).expect("release"), 0);
        store.quarantine("6000000000000001", "1", "moq: \"两件\" is no number", Some(5), 10).expect("put");
        let q = store.quarantine("6000000000000001", "1", "moq again", None, 20).expect("put");
        assert_eq!((q.times, q.first_seen_ms, q.last_seen_ms, q.modified_ms), (2, 10, 20, Some(5)));
        assert!(store.quarantined("6000000000000002").expect("list").is_empty());
        assert_eq!(store.quarantined_count("6000000000000001"), 1);
        assert_eq!(store.release("6000000000000001", &["1", "2"]).expect("release"), 1);
        assert!(!store.is_quarantined("6000000000000001", "1").expect("read"));
    }
}
