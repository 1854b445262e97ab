//! The sled database: trees, the per-page transaction, and reads.
//!
//! Durability rules (sled 0.34 keeps recent writes in memory and syncs about every 500 ms;
//! a transaction is durable only after a flush, and recovery always yields a prefix of the
//! committed transactions, never a part of one):
//!
//! - items, outbox events, the shop's `seq` counter and its watermark change in **one
//!   transaction per page**, so whatever prefix survives a crash is consistent: the
//!   watermark never stands past an item whose event is not in the outbox;
//! - anything that hands events to the world (a sink cursor passing an event, `events`
//!   printing) must call [`Store::flush`] first, so an event leaves the process only once it
//!   is durable: a crash can then lose only work nobody has seen, which the next pass redoes;
//! - quota counts and tokens are written without flushing: a crash may forget the last
//!   half-second of calls, which errs by a handful of calls, and the platform's own code 15
//!   is believed over our count anyway.

use super::records::{PageMark, ShopState, StoredItem};
use crate::event::{Event, Op};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use std::path::Path;
use thiserror::Error;

/// Bumped when the stored format changes incompatibly. 2: an open full pass's parked items
/// moved from the shop's record to a tree of their own (an older build would not see them).
pub const SCHEMA_VERSION: u64 = 2;

#[derive(Debug, Error)]
pub enum StateError {
    #[error("cannot open the state in {dir}: {source}{hint}")]
    Open { dir: String, source: sled::Error, hint: &'static str },
    #[error("the state in {dir} was written by a newer shopsync (schema {found}; this one reads up to {SCHEMA_VERSION})")]
    NewerSchema { dir: String, found: u64 },
    #[error("state storage failed: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record is unreadable ({what}): {detail}")]
    Corrupt { what: String, detail: String },
}

impl StateError {
    pub fn kind(&self) -> &'static str {
        match self {
            StateError::Open { .. } => "open",
            StateError::NewerSchema { .. } => "schema",
            StateError::Sled(_) => "io",
            StateError::Corrupt { .. } => "corrupt",
        }
    }

    /// The state could not be opened because another process holds its lock.
    pub fn is_locked(&self) -> bool {
        matches!(self, StateError::Open { source, .. } if held_lock(source))
    }
}

/// One change to an item within a page's transaction.
#[derive(Debug, Clone)]
pub enum Write {
    /// Store the item; emit an event when `event` is set (a silent upsert only refreshes
    /// what is stored, e.g. the listing hash).
    Upsert { stored: StoredItem, event: Option<(Op, Vec<String>)> },
    /// Forget the item and emit a `delete` carrying its last known state.
    Delete { last: StoredItem },
}

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    /// Transactions take this shared, a flush alone. sled 0.34's flush holds its internal
    /// lock for reading while it waits for the log flusher thread, which needs that lock for
    /// reading too; a transaction queued for it (writing) in between parks the flusher
    /// behind it, and the three wait for ever. Seen in bench-budget: a daemon's `/metrics` and
    /// `/healthz` unanswered for 24 minutes, with flushes, a page transaction and a scrape all
    /// parked on sled's lock. With the gate no transaction queues on sled's lock during a
    /// flush.
    pub(super) gate: std::sync::Arc<std::sync::RwLock<()>>,
    /// Outbox positions up to here are known durable (a flush finished after they were written).
    durable_pos: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub(super) items: sled::Tree,
    pub(super) shops: sled::Tree,
    outbox: sled::Tree,
    meta: sled::Tree,
    pub(super) quota: sled::Tree,
    pub(super) tokens: sled::Tree,
    pub(super) urls: sled::Tree,
    pub(super) cursors: sled::Tree,
    pub(super) dlq: sled::Tree,
    pub(super) removed_sinks: sled::Tree,
    pub(super) quarantine: sled::Tree,
    /// Items an open full pass listed that wait for their SKU details (`parked.rs`).
    pub(super) parked: sled::Tree,
    /// Change messages received, by `msgId` (see `push.rs`).
    pub(super) push_messages: sled::Tree,
    /// The `msgId`s of received messages not yet handled.
    pub(super) push_pending: sled::Tree,
    /// Offers followed on the platform, and follow calls per app key and day (`follow.rs`).
    pub(super) followed: sled::Tree,
}

/// sled reports a held file lock as an `Other` I/O error whose text carries the WouldBlock
/// (the kind itself is lost); anything else (a full disk, permissions) must not be blamed on
/// another process.
fn held_lock(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(e)
        if e.kind() == std::io::ErrorKind::WouldBlock
            || e.to_string().starts_with("could not acquire lock on"))
}

/// sled 0.34 writes a snapshot to `snap.<lsn>.generating` and renames it when complete, but
/// on opening it takes the newest `snap.*` file, a `.generating` one included. A snapshot
/// whose write failed (a full disk) is left behind torn, and every later open then fails
/// with "Read corrupted data" although the log and the last complete snapshot are intact
/// (seen in CI: the disk-full suite's state would not open once there was room again).
/// Called only after sled reported corruption, so sled held the directory's lock and no
/// other process is writing a snapshot; removes the torn files and says how many.
fn drop_torn_snapshots(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut dropped = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::warn!(file = %name, "removed a snapshot whose write never finished; sled rebuilds it from its log");
                    dropped += 1;
                }
                Err(e) => tracing::warn!(file = %name, error = %e, "cannot remove a torn snapshot"),
            }
        }
    }
    dropped
}

pub(super) fn item_key(shop: &str, item_id: &str) -> Vec<u8> {
    format!("{shop}/{item_id}").into_bytes()
}

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> StateError {
    StateError::Corrupt { what: what.to_string(), detail: e.to_string() }
}

const NEXT_POS: &[u8] = b"outbox_next_pos";
const SCHEMA: &[u8] = b"schema_version";

impl Store {
    /// A tiny write that fails once sled has hit an I/O error (a full disk, a failing
    /// device): sled then refuses every write until it is opened again, so the daemon checks
    /// this once a second and restarts rather than run on with a state it cannot change.
    pub fn probe(&self) -> Result<(), StateError> {
        self.meta.insert(b"probe", &crate::clock::now_ms().to_be_bytes())?;
        Ok(())
    }

    /// Opens (or creates) the state in `dir` with a page cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Store, StateError> {
        let shown = dir.display().to_string();
        let open = || sled::Config::new().path(dir).cache_capacity(cache_bytes).open();
        let db = match open() {
            Err(sled::Error::Corruption { .. }) if drop_torn_snapshots(dir) > 0 => open(),
            other => other,
        }
        .map_err(|source| {
            let hint = if held_lock(&source) { " (another shopsync is using it)" } else { "" };
            StateError::Open { dir: shown.clone(), source, hint }
        })?;
        let meta = db.open_tree("meta")?;
        let found = match meta.get(SCHEMA)? {
            Some(v) => u64::from_be_bytes(v.as_ref().try_into().map_err(|e| corrupt("schema version", e))?),
            None => SCHEMA_VERSION,
        };
        if found > SCHEMA_VERSION {
            return Err(StateError::NewerSchema { dir: shown, found });
        }
        let store = Store {
            gate: Default::default(),
            durable_pos: Default::default(),
            items: db.open_tree("items")?,
            shops: db.open_tree("shops")?,
            outbox: db.open_tree("outbox")?,
            quota: db.open_tree("quota")?,
            tokens: db.open_tree("tokens")?,
            urls: db.open_tree("urls")?,
            cursors: db.open_tree("sink_cursors")?,
            dlq: db.open_tree("dead_letters")?,
            removed_sinks: db.open_tree("removed_sinks")?,
            quarantine: db.open_tree("quarantine")?,
            push_messages: db.open_tree("push_messages")?,
            push_pending: db.open_tree("push_pending")?,
            followed: db.open_tree("followed")?,
            parked: db.open_tree("parked")?,
            meta,
            db,
        };
        if found < 2 {
            store.migrate_parked()?;
        }
        store.meta.insert(SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
        Ok(store)
    }

    /// Makes everything written so far durable.
    pub async fn flush(&self) -> Result<(), StateError> {
        let upto = self.outbox_last()?.unwrap_or(0);
        let (db, gate) = (self.db.clone(), self.gate.clone());
        // On a blocking thread: the gate may wait for the transactions in hand.
        let flushed = tokio::task::spawn_blocking(move || {
            let _alone = gate.write().unwrap_or_else(|e| e.into_inner());
            db.flush()
        })
        .await
        .map_err(|e| StateError::Sled(sled::Error::ReportableBug(format!("flush task: {e}"))))?;
        flushed?;
        self.durable_pos.fetch_max(upto, std::sync::atomic::Ordering::AcqRel);
        Ok(())
    }

    /// Makes sure the outbox is durable up to `pos`, flushing only if it is not known to be.
    pub async fn ensure_durable(&self, pos: u64) -> Result<(), StateError> {
        if self.durable_pos.load(std::sync::atomic::Ordering::Acquire) >= pos {
            return Ok(());
        }
        self.flush().await
    }

    pub fn item(&self, shop: &str, item_id: &str) -> Result<Option<StoredItem>, StateError> {
        match self.items.get(item_key(shop, item_id))? {
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(|e| corrupt("item", e)),
            None => Ok(None),
        }
    }

    /// Ids of every stored item of a shop.
    pub fn item_ids(&self, shop: &str) -> Result<Vec<String>, StateError> {
        let prefix = format!("{shop}/");
        let mut out = Vec::new();
        for kv in self.items.scan_prefix(prefix.as_bytes()).keys() {
            let k = kv?;
            out.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
        }
        Ok(out)
    }

    /// Up to `limit` ids of a shop's stored items that do not carry mark `pass_id`, in key
    /// order after `after` (exclusive): the delete candidates of a full pass, read in
    /// bounded chunks however big the shop.
    pub fn unseen_items(
        &self,
        shop: &str,
        pass_id: u64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StateError> {
        let prefix = format!("{shop}/");
        let start = match after {
            Some(a) => {
                let mut k = item_key(shop, a);
                k.push(0);
                k
            }
            None => prefix.clone().into_bytes(),
        };
        let mut out = Vec::new();
        for kv in self.items.range(start..) {
            let (k, v) = kv?;
            if !k.starts_with(prefix.as_bytes()) {
                break;
            }
            let s: StoredItem = serde_json::from_slice(&v).map_err(|e| corrupt("item", e))?;
            if s.seen != Some(pass_id) {
                out.push(s.item.item_id);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Every stored item of a shop, streaming.
    pub fn items(&self, shop: &str) -> impl Iterator<Item = Result<StoredItem, StateError>> + '_ {
        self.items.scan_prefix(format!("{shop}/").as_bytes()).values().map(|v| {
            let v = v?;
            serde_json::from_slice(&v).map_err(|e| corrupt("item", e))
        })
    }

    pub fn shop(&self, shop: &str) -> Result<ShopState, StateError> {
        match self.shops.get(shop.as_bytes())? {
            Some(v) => serde_json::from_slice(&v).map_err(|e| corrupt("shop state", e)),
            None => Ok(ShopState::default()),
        }
    }

    /// Every shop with stored state.
    pub fn shops(&self) -> Result<Vec<(String, ShopState)>, StateError> {
        let mut out = Vec::new();
        for kv in self.shops.iter() {
            let (k, v) = kv?;
            let s: ShopState = serde_json::from_slice(&v).map_err(|e| corrupt("shop state", e))?;
            out.push((String::from_utf8_lossy(&k).into_owned(), s));
        }
        Ok(out)
    }

    /// Changes a shop's record outside the page transaction (pass records, completeness).
    pub fn update_shop(&self, shop: &str, f: impl Fn(&mut ShopState)) -> Result<ShopState, StateError> {
        let _shared = self.gate.read().unwrap_or_else(|e| e.into_inner());
        let res = self.shops.transaction(|t| {
            let mut s: ShopState = match t.get(shop.as_bytes())? {
                Some(v) => serde_json::from_slice(&v)
                    .map_err(|e| ConflictableTransactionError::Abort(corrupt("shop state", e)))?,
                None => ShopState::default(),
            };
            f(&mut s);
            let bytes = serde_json::to_vec(&s)
                .map_err(|e| ConflictableTransactionError::Abort(corrupt("shop state", e)))?;
            t.insert(shop.as_bytes(), bytes)?;
            Ok(s)
        });
        unwrap_tx(res)
    }

    /// Closes the open full pass `pass_id` and moves the watermark to `watermark` (never
    /// backwards), in one transaction.
    pub fn finish_full(&self, shop: &str, pass_id: u64, watermark: i64) -> Result<(), StateError> {
        let st = self.update_shop(shop, |s| {
            if s.full.as_ref().is_some_and(|f| f.pass_id == pass_id) {
                s.full = None;
            }
            s.watermark_ms = Some(s.watermark_ms.map_or(watermark, |old| old.max(watermark)));
            s.poll_watermark_ms = None;
        })?;
        // Whatever the finished pass left parked goes; a pass still open keeps its own.
        self.clear_parked(shop, st.full.map(|f| f.pass_id))
    }

    /// Forgets a shop's watermark (its next pass is full); items stay for diffing.
    pub fn reset_watermark(&self, shop: &str) -> Result<(), StateError> {
        self.update_shop(shop, |s| {
            s.watermark_ms = None;
            s.poll_watermark_ms = None;
        })
        .map(|_| ())
    }

    /// Applies one page: items, outbox events and the watermark in one transaction.
    /// Returns the events as written, with their `seq`.
    pub fn commit(
        &self,
        shop: &str,
        writes: &[Write],
        watermark: Option<i64>,
        observed_ms: i64,
    ) -> Result<Vec<Event>, StateError> {
        self.commit_page(shop, writes, watermark, observed_ms, None)
    }

    /// [`Store::commit`], also recording in the same transaction where the open full pass's
    /// window now stands (`page`). Every item written while a full pass is open is stamped
    /// with the pass's mark, and the pass's seen count grows by the items newly stamped.
    pub fn commit_page(
        &self,
        shop: &str,
        writes: &[Write],
        watermark: Option<i64>,
        observed_ms: i64,
        page: Option<&PageMark>,
    ) -> Result<Vec<Event>, StateError> {
        /// Reads only the mark of a stored item.
        #[derive(serde::Deserialize)]
        struct Mark {
            #[serde(default)]
            seen: Option<u64>,
        }
        let _shared = self.gate.read().unwrap_or_else(|e| e.into_inner());
        let res = (&self.items, &self.outbox, &self.shops, &self.meta, &self.parked).transaction(
            |(items, outbox, shops, meta, parked)| {
                let abort =
                    |what: &str, e: serde_json::Error| ConflictableTransactionError::Abort(corrupt(what, e));
                let mut state: ShopState = match shops.get(shop.as_bytes())? {
                    Some(v) => serde_json::from_slice(&v).map_err(|e| abort("shop state", e))?,
                    None => ShopState::default(),
                };
                let mut pos = match meta.get(NEXT_POS)? {
                    Some(v) => u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])),
                    None => 1,
                };
                let mut events = Vec::new();
                let mark = state.full.as_ref().map(|f| f.pass_id);
                let mut newly_seen = 0u64;
                for w in writes {
                    let (stored, op, changed) = match w {
                        Write::Upsert { stored, event } => {
                            let mut stamped = stored.clone();
                            stamped.seen = mark;
                            let bytes = serde_json::to_vec(&stamped).map_err(|e| abort("item", e))?;
                            match items.insert(item_key(shop, &stored.item.item_id), bytes)? {
                                None => {
                                    state.item_count += 1;
                                    newly_seen += u64::from(mark.is_some());
                                }
                                Some(old) => {
                                    let old: Mark =
                                        serde_json::from_slice(&old).map_err(|e| abort("item", e))?;
                                    newly_seen += u64::from(mark.is_some() && old.seen != mark);
                                }
                            }
                            match event {
                                Some((op, changed)) => (stored, *op, changed.clone()),
                                None => continue,
                            }
                        }
                        Write::Delete { last } => {
                            if items.remove(item_key(shop, &last.item.item_id))?.is_some() {
                                state.item_count = state.item_count.saturating_sub(1);
                            }
                            (last, Op::Delete, Vec::new())
                        }
                    };
                    let seq = state.next_seq.max(1);
                    state.next_seq = seq + 1;
                    let ev = Event {
                        id: format!("{shop}:{}:{seq}", stored.item.item_id),
                        seq,
                        shop: shop.to_string(),
                        item_id: stored.item.item_id.clone(),
                        op,
                        changed,
                        md5: stored.md5.clone(),
                        modified_ms: stored.item.modified_ms,
                        observed_ms,
                        item: stored.item.clone(),
                    };
                    outbox.insert(
                        &pos.to_be_bytes(),
                        serde_json::to_vec(&ev).map_err(|e| abort("event", e))?,
                    )?;
                    pos += 1;
                    events.push(ev);
                }
                if let Some(w) = watermark {
                    // Never backwards: an overlapping or re-read window cannot undo progress.
                    // Before the first full pass is done, a poll's progress is its own: the
                    // shop has no watermark until everything before it was read.
                    let first_open = state.watermark_ms.is_none() && state.full.is_some();
                    let moved =
                        if first_open { &mut state.poll_watermark_ms } else { &mut state.watermark_ms };
                    *moved = Some(moved.map_or(w, |old| old.max(w)));
                }
                if let Some(full) = state.full.as_mut() {
                    full.items_seen += newly_seen;
                    if let Some(p) = page {
                        if let Some(w) = &p.window {
                            if let Some(ws) = full.windows.iter_mut().find(|ws| ws.same(w)) {
                                *ws = w.clone();
                            }
                        }
                    }
                    super::parked::apply(parked, shop, full, writes, page)?;
                    if let Some(p) = page {
                        full.calls += p.calls;
                        full.active_ms += p.active_ms;
                    }
                }
                meta.insert(NEXT_POS, &pos.to_be_bytes())?;
                shops.insert(
                    shop.as_bytes(),
                    serde_json::to_vec(&state).map_err(|e| abort("shop state", e))?,
                )?;
                Ok(events)
            },
        );
        unwrap_tx(res)
    }

    /// Outbox events from position `after_pos` on (exclusive), with their positions.
    pub fn events_after(
        &self,
        after_pos: u64,
    ) -> impl Iterator<Item = Result<(u64, Event), StateError>> + '_ {
        self.outbox.range((after_pos + 1).to_be_bytes()..).map(|kv| {
            let (k, v) = kv?;
            let pos = u64::from_be_bytes(k.as_ref().try_into().map_err(|e| corrupt("outbox key", e))?);
            let ev: Event = serde_json::from_slice(&v).map_err(|e| corrupt("event", e))?;
            Ok((pos, ev))
        })
    }

    pub(super) fn outbox_last(&self) -> Result<Option<u64>, StateError> {
        match self.outbox.last()? {
            Some((k, _)) => Ok(k.as_ref().try_into().ok().map(u64::from_be_bytes)),
            None => Ok(None),
        }
    }

    pub(super) fn outbox_keys_upto(
        &self,
        upto: u64,
    ) -> impl Iterator<Item = Result<sled::IVec, StateError>> + '_ {
        self.outbox.range(..=upto.to_be_bytes()).keys().map(|k| k.map_err(StateError::from))
    }

    pub(super) fn remove_outbox(&self, key: &[u8]) -> Result<(), StateError> {
        self.outbox.remove(key)?;
        Ok(())
    }

    /// Up to `limit` outbox events after `after_pos`, as stored (JSON bytes), with positions:
    /// delivery forwards them without decoding.
    pub fn raw_events_after(
        &self,
        after_pos: u64,
        limit: usize,
    ) -> Result<Vec<(u64, sled::IVec)>, StateError> {
        let mut out = Vec::with_capacity(limit.min(4096));
        for kv in self.outbox.range((after_pos + 1).to_be_bytes()..).take(limit) {
            let (k, v) = kv?;
            let pos = u64::from_be_bytes(k.as_ref().try_into().map_err(|e| corrupt("outbox key", e))?);
            out.push((pos, v));
        }
        Ok(out)
    }

    /// Number of events in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }
}

pub(super) fn unwrap_tx<T>(r: Result<T, TransactionError<StateError>>) -> Result<T, StateError> {
    match r {
        Ok(v) => Ok(v),
        Err(TransactionError::Abort(e)) => Err(e),
        Err(TransactionError::Storage(e)) => Err(StateError::Sled(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Item, PriceSource};

    pub(crate) fn item(id: &str, modified_ms: i64) -> StoredItem {
        let item = Item {
            item_id: id.into(),
            title: "t".into(),
            cid: "1".into(),
            wholesale_prices: vec![],
            price_source: PriceSource::None,
            moq: None,
            sales: None,
            stock: Some(1),
            status: "online".into(),
            modified_ms,
            sku_ids: vec![],
            skus: vec![],
            pic_url: String::new(),
            detail_url: String::new(),
        };
        StoredItem::new(item.clone(), item.md5(), String::new())
    }

    #[test]
    fn a_snapshot_torn_by_a_full_disk_does_not_keep_the_state_shut() {
        let dir = tempfile::tempdir().unwrap();
        let shop = "6000000000000001";
        {
            let s = Store::open(dir.path(), 1 << 20).unwrap();
            let writes = vec![Write::Upsert { stored: item("1", 10), event: Some((Op::Create, vec![])) }];
            s.commit(shop, &writes, Some(10), 99).unwrap();
            s.db.flush().unwrap();
        }
        // What a snapshot write cut short by ENOSPC leaves: the file sled would rename, empty.
        std::fs::write(dir.path().join("snap.7FFFFFFFFFFFFFFF.generating"), b"").unwrap();
        let s = Store::open(dir.path(), 1 << 20).expect("opens past the torn snapshot");
        assert_eq!(s.shop(shop).unwrap().item_count, 1, "what was committed is kept");
        assert!(!dir.path().join("snap.7FFFFFFFFFFFFFFF.generating").exists());
    }

    #[test]
    fn a_page_commits_items_events_and_watermark_together() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1 << 20).unwrap();
        let shop = "6000000000000001";
        let writes = vec![
            Write::Upsert { stored: item("1", 10), event: Some((Op::Create, vec![])) },
            Write::Upsert { stored: item("2", 20), event: None },
        ];
        let evs = s.commit(shop, &writes, Some(20), 99).unwrap();
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].id, format!("{shop}:1:1"));
        let st = s.shop(shop).unwrap();
        assert_eq!((st.watermark_ms, st.item_count, st.next_seq), (Some(20), 2, 2));
        // The watermark never moves backwards.
        s.commit(shop, &[Write::Delete { last: item("1", 10) }], Some(5), 100).unwrap();
        let st = s.shop(shop).unwrap();
        assert_eq!((st.watermark_ms, st.item_count), (Some(20), 1));
        let all: Vec<_> = s.events_after(0).map(|e| e.unwrap().1).collect();
        assert_eq!(
            all.iter().map(|e| (e.seq, e.op)).collect::<Vec<_>>(),
            vec![(1, Op::Create), (2, Op::Delete)]
        );
        assert_eq!(s.item_ids(shop).unwrap(), vec!["2".to_string()]);
    }

    /// A full pass's page moves its window and parks the items still waiting for details in
    /// one transaction; writing a parked item takes one entry of it out again.
    #[test]
    fn a_page_parks_its_waiting_items_with_its_place_and_their_commit_unparks_them() {
        use super::super::records::{FullProgress, Parked, ParkedSlot, WindowState};
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1 << 20).unwrap();
        let shop = "6000000000000001";
        s.update_shop(shop, |st| {
            st.full = Some(FullProgress::new(7, 0, 100, WindowState::new(0, 100, None)))
        })
        .unwrap();
        let parked = |id: &str| Parked { item: item(id, 10).item, listing_md5: "l".into() };
        let mut window = WindowState::new(0, 100, None);
        window.next_page = 2;
        window.first_total = Some(80);
        let mark = PageMark {
            window: Some(window.clone()),
            park: vec![parked("2"), parked("3"), parked("3")],
            ..PageMark::default()
        };
        let writes = vec![Write::Upsert { stored: item("1", 10), event: Some((Op::Create, vec![])) }];
        s.commit_page(shop, &writes, None, 99, Some(&mark)).unwrap();
        let full = s.shop(shop).unwrap().full.unwrap();
        assert_eq!(full.windows, vec![window]);
        let ids = |s: &Store| {
            let n = s.shop(shop).unwrap().full.unwrap().parked_count;
            let ids: Vec<String> =
                s.parked_items(shop, 7).unwrap().into_iter().map(|p| p.item.item_id).collect();
            assert_eq!(n, ids.len() as u64, "the count follows the tree");
            ids
        };
        assert_eq!(ids(&s), ["2", "3", "3"]);
        let unpark = PageMark { unpark: vec!["3".into()], ..PageMark::default() };
        let writes = vec![Write::Upsert { stored: item("3", 10), event: Some((Op::Create, vec![])) }];
        s.commit_page(shop, &writes, None, 99, Some(&unpark)).unwrap();
        assert_eq!(ids(&s), ["2", "3"], "an item listed twice waits twice");
        assert_eq!(s.shop(shop).unwrap().full.unwrap().items_seen, 2);
        // A read as old as the parked listing (a poll that fetched no details) leaves it;
        // a newer one, a delete, or a read that found the item gone unstored ends it.
        s.commit_page(shop, &[Write::Upsert { stored: item("3", 10), event: None }], None, 99, None).unwrap();
        assert_eq!(ids(&s), ["2", "3"]);
        let mark = PageMark { park: vec![parked("4")], ..PageMark::default() };
        s.commit_page(shop, &[], None, 99, Some(&mark)).unwrap();
        let writes = vec![
            Write::Upsert { stored: item("3", 11), event: Some((Op::Update, vec![])) },
            Write::Delete { last: item("2", 10) },
        ];
        s.commit_page(shop, &writes, None, 99, None).unwrap();
        assert_eq!(ids(&s), ["4"]);
        let forget = PageMark { forget: vec!["4".into()], ..PageMark::default() };
        s.commit_page(shop, &[], None, 99, Some(&forget)).unwrap();
        assert!(ids(&s).is_empty());
        // A slot another pass left (one abandoned) counts as none, is overwritten by the
        // open pass, and goes when the open pass clears the others'.
        let stale = |id: &str| {
            let slot = ParkedSlot { pass_id: 6, listings: vec![parked(id)] };
            s.parked.insert(item_key(shop, id), serde_json::to_vec(&slot).unwrap()).unwrap();
        };
        stale("5");
        stale("6");
        assert!(s.parked_items(shop, 7).unwrap().is_empty(), "another pass's are not its own");
        let five = PageMark { park: vec![parked("5")], ..PageMark::default() };
        s.commit_page(shop, &[], None, 99, Some(&five)).unwrap();
        assert_eq!(ids(&s), ["5"]);
        s.clear_parked(shop, Some(7)).unwrap();
        assert_eq!(ids(&s), ["5"], "the open pass's stay");
        assert_eq!(s.parked.len(), 1, "the stale slot is gone");
        // Whatever a finished pass left is removed with it.
        s.finish_full(shop, 7, 100).unwrap();
        assert!(s.parked.is_empty());
    }

    /// Schema 1 kept an open pass's parked items inside the shop's record: opening such a
    /// state moves them to their tree, and nothing parked is lost.
    #[test]
    fn parked_items_of_schema_1_move_to_their_tree() {
        use super::super::records::{FullProgress, WindowState};
        let dir = tempfile::tempdir().unwrap();
        let shop = "6000000000000001";
        {
            let s = Store::open(dir.path(), 1 << 20).unwrap();
            let full = FullProgress::new(7, 0, 100, WindowState::new(0, 100, None));
            let mut st =
                serde_json::to_value(ShopState { full: Some(full), ..ShopState::default() }).unwrap();
            st["full"]["parked"] = serde_json::json!([
                { "item": item("2", 10).item, "listing_md5": "l" },
                { "item": item("3", 10).item, "listing_md5": "l" },
            ]);
            s.shops.insert(shop.as_bytes(), serde_json::to_vec(&st).unwrap()).unwrap();
            s.meta.insert(SCHEMA, &1u64.to_be_bytes()).unwrap();
            s.db.flush().unwrap();
        }
        let s = reopen(dir.path());
        let ids: Vec<String> = s.parked_items(shop, 7).unwrap().into_iter().map(|p| p.item.item_id).collect();
        assert_eq!(ids, ["2", "3"]);
        let full = s.shop(shop).unwrap().full.unwrap();
        assert_eq!((full.parked_count, full.legacy_parked.len()), (2, 0));
        let raw = s.shops.get(shop.as_bytes()).unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("listing_md5"), "the record no longer holds them");
        assert_eq!(s.meta.get(SCHEMA).unwrap().unwrap().as_ref(), SCHEMA_VERSION.to_be_bytes());
    }

    /// Opens a state just closed: sled's flusher thread may hold the file lock a moment
    /// after the drop.
    fn reopen(dir: &Path) -> Store {
        let t0 = std::time::Instant::now();
        loop {
            match Store::open(dir, 1 << 20) {
                Err(e) if e.is_locked() && t0.elapsed() < std::time::Duration::from_secs(10) => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                r => return r.unwrap(),
            }
        }
    }

    #[test]
    fn newer_schema_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path(), 1 << 20).unwrap();
            s.meta.insert(SCHEMA, &(SCHEMA_VERSION + 1).to_be_bytes()).unwrap();
            s.db.flush().unwrap();
        }
        // sled's flusher thread may hold the file lock a moment after the drop: wait it out.
        let t0 = std::time::Instant::now();
        let e = loop {
            match Store::open(dir.path(), 1 << 20) {
                Err(e) if e.is_locked() && t0.elapsed() < std::time::Duration::from_secs(10) => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                r => break r.err().unwrap(),
            }
        };
        assert!(e.to_string().contains("newer shopsync"), "{e}");
    }

    #[test]
    fn a_state_held_by_another_opener_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let _held = Store::open(dir.path(), 1 << 20).unwrap();
        // sled's lock is a flock on a file description: a second open in this process is
        // refused just as another process's would be.
        let e = Store::open(dir.path(), 1 << 20).err().unwrap();
        assert!(e.is_locked(), "{e}");
        assert!(e.to_string().contains("another shopsync"), "{e}");
    }
}
