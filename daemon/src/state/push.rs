//! The platform's change messages, as the push receiver stored them: one record per `msgId`
//! (the platform redelivers a message it did not see acknowledged, so the id is the
//! deduplication key), and beside it the ids still waiting for the worker.
//!
//! A message is written here, and flushed, before the receiver acknowledges it: what the
//! platform was told it may forget is on disk. The worker marks it done only after the
//! re-fetch it caused is committed; a crash in between re-fetches it again, which emits
//! nothing the first time did not (the diff compares contents).

use super::store::{StateError, Store};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

/// Where a stored message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushStatus {
    /// Waiting for the worker.
    Pending,
    /// Its offers were fetched again and the result committed.
    Done,
    /// A topic shopsync does not act on (or a message it cannot read): kept, not acted on.
    Ignored,
    /// For a member no configured shop has, or naming no offer.
    Dropped,
    /// The re-fetch failed too many times; the shop's next pass catches the change.
    Failed,
}

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRecord {
    pub msg_id: String,
    /// The envelope's `type`.
    pub topic: String,
    /// The member the message is about (`userInfo`, else the data's `memberId`).
    pub member: Option<String>,
    /// The offers it names.
    pub offer_ids: Vec<String>,
    /// The envelope's `gmtBorn`.
    pub born_ms: Option<i64>,
    pub received_ms: i64,
    pub status: PushStatus,
    /// Failed re-fetches so far.
    pub attempts: u32,
    /// Not before this time is it tried again.
    pub next_ms: i64,
    /// The `message` field exactly as received (what the signature covered).
    pub message: String,
}

fn corrupt(e: impl std::fmt::Display) -> StateError {
    StateError::Corrupt { what: "push message".into(), detail: e.to_string() }
}

fn decode(v: &[u8]) -> Result<PushRecord, StateError> {
    serde_json::from_slice(v).map_err(corrupt)
}

fn unwrap_tx<T>(r: Result<T, TransactionError<StateError>>) -> Result<T, StateError> {
    match r {
        Ok(v) => Ok(v),
        Err(TransactionError::Abort(e)) => Err(e),
        Err(TransactionError::Storage(e)) => Err(StateError::Sled(e)),
    }
}

impl Store {
    /// Stores a message unless its `msgId` is already stored; true when it was new. Not
    /// durable until [`Store::flush`].
    pub fn store_push(&self, rec: &PushRecord) -> Result<bool, StateError> {
        let bytes = serde_json::to_vec(rec).map_err(corrupt)?;
        let _shared = self.gate.read().unwrap_or_else(|e| e.into_inner());
        let res = (&self.push_messages, &self.push_pending).transaction(|(messages, pending)| {
            if messages.get(rec.msg_id.as_bytes())?.is_some() {
                return Ok(false);
            }
            messages.insert(rec.msg_id.as_bytes(), bytes.as_slice())?;
            if rec.status == PushStatus::Pending {
                pending.insert(rec.msg_id.as_bytes(), &[])?;
            }
            Ok(true)
        });
        unwrap_tx(res)
    }

    pub fn push_record(&self, msg_id: &str) -> Result<Option<PushRecord>, StateError> {
        self.push_messages.get(msg_id.as_bytes())?.map(|v| decode(&v)).transpose()
    }

    /// Up to `limit` pending messages due at `now_ms`.
    pub fn push_due(&self, now_ms: i64, limit: usize) -> Result<Vec<PushRecord>, StateError> {
        let mut out = Vec::new();
        for k in self.push_pending.iter().keys() {
            let k = k?;
            // A pending id without its record cannot happen (both are written together);
            // skip it rather than stop the worker.
            let Some(v) = self.push_messages.get(&k)? else { continue };
            let rec = decode(&v)?;
            if rec.next_ms <= now_ms {
                out.push(rec);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Forgets finished messages (done, ignored, dropped, given up) received before
    /// `before_ms`; returns how many. Pending ones are kept whatever their age.
    pub fn prune_push(&self, before_ms: i64) -> Result<usize, StateError> {
        let mut old = Vec::new();
        for kv in self.push_messages.iter() {
            let (k, v) = kv?;
            let rec = decode(&v)?;
            if rec.status != PushStatus::Pending && rec.received_ms < before_ms {
                old.push(k);
            }
        }
        let _shared = self.gate.read().unwrap_or_else(|e| e.into_inner());
        for k in &old {
            self.push_messages.remove(k)?;
        }
        Ok(old.len())
    }

    /// Messages waiting for the worker.
    pub fn push_backlog(&self) -> usize {
        self.push_pending.len()
    }

    /// Changes the records of `msg_ids` with `f`, in one transaction; a record no longer
    /// pending afterwards leaves the waiting list.
    pub fn update_push(&self, msg_ids: &[String], f: impl Fn(&mut PushRecord)) -> Result<(), StateError> {
        let _shared = self.gate.read().unwrap_or_else(|e| e.into_inner());
        let res = (&self.push_messages, &self.push_pending).transaction(|(messages, pending)| {
            for id in msg_ids {
                let Some(v) = messages.get(id.as_bytes())? else { continue };
                let mut rec = decode(&v).map_err(ConflictableTransactionError::Abort)?;
                f(&mut rec);
                let bytes =
                    serde_json::to_vec(&rec).map_err(|e| ConflictableTransactionError::Abort(corrupt(e)))?;
                messages.insert(id.as_bytes(), bytes)?;
                if rec.status != PushStatus::Pending {
                    pending.remove(id.as_bytes())?;
                }
            }
            Ok(())
        });
        unwrap_tx(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, status: PushStatus) -> PushRecord {
        PushRecord {
            msg_id: id.into(),
            topic: "PRODUCT_RELATION_VIEW_PRODUCT_NEW_OR_MODIFY".into(),
            member: Some("6000000000000001".into()),
            offer_ids: vec!["601".into()],
            born_ms: Some(1),
            received_ms: 2,
            status,
            attempts: 0,
            next_ms: 0,
            message: "{}".into(),
        }
    }

    #[test]
    fn a_message_is_stored_once_and_leaves_the_backlog_when_done() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1 << 20).unwrap();
        assert!(s.store_push(&rec("1", PushStatus::Pending)).unwrap());
        let mut again = rec("1", PushStatus::Pending);
        again.offer_ids = vec!["999".into()];
        assert!(!s.store_push(&again).unwrap(), "a msgId already stored is a duplicate");
        assert_eq!(s.push_record("1").unwrap().unwrap().offer_ids, ["601"]);
        assert!(s.store_push(&rec("2", PushStatus::Ignored)).unwrap());
        assert_eq!(s.push_backlog(), 1, "an ignored message waits for nobody");
        s.update_push(&["1".into()], |r| {
            r.attempts += 1;
            r.next_ms = 100;
        })
        .unwrap();
        assert!(s.push_due(99, 10).unwrap().is_empty(), "deferred");
        assert_eq!(s.push_due(100, 10).unwrap().len(), 1);
        s.update_push(&["1".into()], |r| r.status = PushStatus::Done).unwrap();
        assert_eq!(s.push_backlog(), 0);
        assert_eq!(s.push_record("1").unwrap().unwrap().status, PushStatus::Done);
        assert!(!s.store_push(&rec("1", PushStatus::Pending)).unwrap(), "still known once done");
    }

    #[test]
    fn finished_messages_are_forgotten_once_old_and_pending_ones_never() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1 << 20).unwrap();
        s.store_push(&rec("1", PushStatus::Pending)).unwrap();
        s.store_push(&rec("2", PushStatus::Ignored)).unwrap();
        s.store_push(&rec("3", PushStatus::Pending)).unwrap();
        s.update_push(&["3".into()], |r| r.status = PushStatus::Done).unwrap();
        // Received at 2: nothing is older than 2.
        assert_eq!(s.prune_push(2).unwrap(), 0);
        assert_eq!(s.prune_push(3).unwrap(), 2, "the ignored and the done one");
        assert!(s.push_record("2").unwrap().is_none() && s.push_record("3").unwrap().is_none());
        assert_eq!(s.push_record("1").unwrap().unwrap().status, PushStatus::Pending);
        assert_eq!(s.push_backlog(), 1);
    }
}
