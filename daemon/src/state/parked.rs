//! Items an open full pass listed on committed pages whose SKU details were not fetched yet
//! (see `PageMark::park`). They live in a tree of their own, keyed by shop and item, and
//! change in the page's transaction. The shop's record, which every commit reads and writes,
//! keeps only their count (inside it, a first copy's record carried some 36 listings through
//! every commit), and commits with nothing parked look at none of them.
//!
//! Rules, applied in this order by each commit:
//! 1. `unpark`: each id written from its parked listing takes one listing of it out;
//! 2. a strictly newer write of the item (a poll while the pass was stopped) or a delete of
//!    it ends its parked listings, and so does `forget` (a read found it gone unstored); a
//!    write as old as the listing (a poll that fetched no details) leaves it waiting;
//! 3. `park`: the page's waiting items are added.

use super::records::{FullProgress, PageMark, Parked, ParkedSlot};
use super::store::corrupt as corrupt_record;
use super::store::{item_key, StateError, Store, Write};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

type TxError = ConflictableTransactionError<StateError>;

fn corrupt(e: serde_json::Error) -> StateError {
    corrupt_record("parked item", e)
}

fn decode(v: &[u8]) -> Result<ParkedSlot, StateError> {
    serde_json::from_slice(v).map_err(corrupt)
}

/// The item's listings parked by pass `pass_id` (none when the slot is another pass's).
fn slot(tree: &TransactionalTree, key: &[u8], pass_id: u64) -> Result<Vec<Parked>, TxError> {
    match tree.get(key)? {
        Some(v) => {
            let s = decode(&v).map_err(ConflictableTransactionError::Abort)?;
            Ok(if s.pass_id == pass_id { s.listings } else { Vec::new() })
        }
        None => Ok(Vec::new()),
    }
}

fn put(tree: &TransactionalTree, key: &[u8], pass_id: u64, listings: Vec<Parked>) -> Result<(), TxError> {
    if listings.is_empty() {
        tree.remove(key)?;
    } else {
        let bytes = serde_json::to_vec(&ParkedSlot { pass_id, listings })
            .map_err(|e| ConflictableTransactionError::Abort(corrupt(e)))?;
        tree.insert(key, bytes)?;
    }
    Ok(())
}

/// Applies a commit's parking to the open pass `full`, inside the page's transaction (see the
/// module's rules), keeping `full.parked_count` in step.
pub(super) fn apply(
    tree: &TransactionalTree,
    shop: &str,
    full: &mut FullProgress,
    writes: &[Write],
    page: Option<&PageMark>,
) -> Result<(), TxError> {
    let pass = full.pass_id;
    let mut count = full.parked_count;
    if let Some(p) = page {
        for id in &p.unpark {
            let key = item_key(shop, id);
            let mut listings = slot(tree, &key, pass)?;
            if !listings.is_empty() {
                listings.remove(0);
                count = count.saturating_sub(1);
                put(tree, &key, pass, listings)?;
            }
        }
    }
    if count > 0 {
        let forget = page.map_or(&[][..], |p| &p.forget[..]);
        let ends = writes
            .iter()
            .map(|w| match w {
                Write::Upsert { stored, .. } => (&stored.item.item_id, Some(stored.item.modified_ms)),
                Write::Delete { last } => (&last.item.item_id, None),
            })
            .chain(forget.iter().map(|id| (id, None)));
        for (id, newer_than) in ends {
            let key = item_key(shop, id);
            let mut listings = slot(tree, &key, pass)?;
            if listings.is_empty() {
                continue;
            }
            let before = listings.len();
            // `None`: gone, every listing ends; else those older than the write.
            listings.retain(|x| newer_than.is_some_and(|t| x.item.modified_ms >= t));
            if listings.len() < before {
                count = count.saturating_sub((before - listings.len()) as u64);
                put(tree, &key, pass, listings)?;
            }
        }
    }
    if let Some(p) = page {
        for x in &p.park {
            let key = item_key(shop, &x.item.item_id);
            let mut listings = slot(tree, &key, pass)?;
            listings.push(x.clone());
            count += 1;
            put(tree, &key, pass, listings)?;
        }
    }
    full.parked_count = count;
    Ok(())
}

impl Store {
    /// The listings pass `pass_id` of `shop` parked, in key order.
    pub fn parked_items(&self, shop: &str, pass_id: u64) -> Result<Vec<Parked>, StateError> {
        let mut out = Vec::new();
        for v in self.parked.scan_prefix(format!("{shop}/").as_bytes()).values() {
            let s = decode(&v?)?;
            if s.pass_id == pass_id {
                out.extend(s.listings);
            }
        }
        Ok(out)
    }

    /// Removes the slots of `shop` that belong to no pass but `keep` (the open one; `None`
    /// once a pass finished): an abandoned pass's, or what a finished one left (nothing
    /// should be, but a slot must not outlive its pass). Each only if unchanged since read.
    pub fn clear_parked(&self, shop: &str, keep: Option<u64>) -> Result<(), StateError> {
        let _shared = self.gate.read().unwrap_or_else(|e| e.into_inner());
        for kv in self.parked.scan_prefix(format!("{shop}/").as_bytes()) {
            let (k, v) = kv?;
            // An unreadable slot is dropped too: the pass it belonged to fetches it again.
            if decode(&v).map_or(true, |s| Some(s.pass_id) != keep) {
                let _ = self.parked.compare_and_swap(&k, Some(&v), None::<&[u8]>)?;
            }
        }
        Ok(())
    }

    /// Schema 1 kept parked listings inside the shop's record: moves them to the tree, one
    /// shop per transaction.
    pub(super) fn migrate_parked(&self) -> Result<(), StateError> {
        use sled::Transactional;
        for kv in self.shops.iter() {
            let (k, v) = kv?;
            let shop = String::from_utf8_lossy(&k).into_owned();
            // A record that cannot be read fails that shop's passes, as before; it must not
            // keep the whole state from opening.
            let state: super::records::ShopState = match serde_json::from_slice(&v) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(shop = %shop, error = %e, "shop record unreadable; its parked items are not converted");
                    continue;
                }
            };
            if state.full.as_ref().is_none_or(|f| f.legacy_parked.is_empty()) {
                continue;
            }
            let res = (&self.shops, &self.parked).transaction(|(shops, parked)| {
                let Some(v) = shops.get(shop.as_bytes())? else { return Ok(()) };
                let mut st: super::records::ShopState = serde_json::from_slice(&v)
                    .map_err(|e| ConflictableTransactionError::Abort(corrupt(e)))?;
                if let Some(full) = st.full.as_mut() {
                    let park =
                        PageMark { park: std::mem::take(&mut full.legacy_parked), ..PageMark::default() };
                    apply(parked, &shop, full, &[], Some(&park))?;
                }
                let bytes =
                    serde_json::to_vec(&st).map_err(|e| ConflictableTransactionError::Abort(corrupt(e)))?;
                shops.insert(shop.as_bytes(), bytes)?;
                Ok(())
            });
            super::store::unwrap_tx(res)?;
            tracing::info!(shop = %shop, "moved the open full pass's parked items to their own tree");
        }
        Ok(())
    }
}
