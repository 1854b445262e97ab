//! Per-sink state: each sink's cursor into the outbox, its dead-letter queue, and the outbox
//! clean-up once every sink is past an event.

use super::store::{StateError, Store};
use serde::{Deserialize, Serialize};

/// A batch a sink rejected for good, kept for `shopsync dlq replay`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    pub sink: String,
    pub first_pos: u64,
    pub last_pos: u64,
    pub events: u64,
    pub error: String,
    pub at_ms: i64,
    /// The batch as it was delivered: a JSON array of events.
    pub batch: String,
}

impl Store {
    pub fn sink_cursor(&self, sink: &str) -> Result<Option<u64>, StateError> {
        Ok(self
            .cursors
            .get(sink.as_bytes())?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes)))
    }

    /// Moves a sink's cursor. Called only after the plugin accepted everything up to `pos`.
    pub fn set_sink_cursor(&self, sink: &str, pos: u64) -> Result<(), StateError> {
        self.cursors.insert(sink.as_bytes(), &pos.to_be_bytes())?;
        Ok(())
    }

    /// Every sink with a cursor.
    pub fn sink_cursors(&self) -> Result<Vec<(String, u64)>, StateError> {
        by_sink_name(&self.cursors, u64::from_be_bytes)
    }

    /// Forgets a sink entirely: its cursor and its removal mark.
    pub fn forget_sink(&self, sink: &str) -> Result<(), StateError> {
        self.cursors.remove(sink.as_bytes())?;
        self.removed_sinks.remove(sink.as_bytes())?;
        Ok(())
    }

    /// Records that a sink left the config at `at_ms`; its cursor is kept so re-adding it
    /// resumes where it stopped.
    pub fn mark_sink_removed(&self, sink: &str, at_ms: i64) -> Result<(), StateError> {
        self.removed_sinks.insert(sink.as_bytes(), &at_ms.to_be_bytes())?;
        Ok(())
    }

    pub fn unmark_sink_removed(&self, sink: &str) -> Result<(), StateError> {
        self.removed_sinks.remove(sink.as_bytes())?;
        Ok(())
    }

    /// Sinks removed from the config, with when.
    pub fn removed_sinks(&self) -> Result<Vec<(String, i64)>, StateError> {
        by_sink_name(&self.removed_sinks, i64::from_be_bytes)
    }

    pub fn dlq_put(&self, letter: &DeadLetter) -> Result<(), StateError> {
        let key = format!("{}/{:020}", letter.sink, letter.first_pos);
        let bytes = serde_json::to_vec(letter)
            .map_err(|e| StateError::Corrupt { what: "dead letter".into(), detail: e.to_string() })?;
        self.dlq.insert(key.as_bytes(), bytes)?;
        Ok(())
    }

    pub fn dlq(&self, sink: &str) -> Result<Vec<DeadLetter>, StateError> {
        let mut out = Vec::new();
        for v in self.dlq.scan_prefix(format!("{sink}/").as_bytes()).values() {
            let v = v?;
            out.push(
                serde_json::from_slice(&v)
                    .map_err(|e| StateError::Corrupt { what: "dead letter".into(), detail: e.to_string() })?,
            );
        }
        Ok(out)
    }

    pub fn dlq_remove(&self, letter: &DeadLetter) -> Result<(), StateError> {
        self.dlq.remove(format!("{}/{:020}", letter.sink, letter.first_pos).as_bytes())?;
        Ok(())
    }

    /// Position of the newest outbox event (0 when there is none).
    pub fn outbox_last_pos(&self) -> Result<u64, StateError> {
        Ok(self.outbox_last()?.unwrap_or(0))
    }

    /// Removes outbox events at or below `upto` (every sink is past them).
    pub fn gc_outbox(&self, upto: u64) -> Result<usize, StateError> {
        let mut n = 0;
        for k in self.outbox_keys_upto(upto) {
            self.remove_outbox(&k?)?;
            n += 1;
        }
        Ok(n)
    }
}

/// Every entry of a tree keyed by sink name with an 8-byte big-endian value (an unreadable
/// value reads as 0).
fn by_sink_name<T: Default>(
    tree: &sled::Tree,
    decode: fn([u8; 8]) -> T,
) -> Result<Vec<(String, T)>, StateError> {
    let mut out = Vec::new();
    for kv in tree.iter() {
        let (k, v) = kv?;
        let value = v.as_ref().try_into().map(decode).unwrap_or_default();
        out.push((String::from_utf8_lossy(&k).into_owned(), value));
    }
    Ok(out)
}
