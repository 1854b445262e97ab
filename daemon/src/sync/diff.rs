//! Diff and apply: the only place that decides what is written to the stored items and the
//! outbox. A fetched item is compared with the stored copy by its content hash; only a
//! difference makes an event, so re-read windows, overlaps and retries never repeat one.

use super::engine::SyncError;
use super::stats::PassStats;
use crate::clock::now_ms;
use crate::event::{Item, Op};
use crate::state::{PageMark, Store, StoredItem, Write};

/// The write (with its event) that brings the copy stored under `key` to `item`, if
/// anything differs. `mark` is the open full pass's id: an unchanged item that does not
/// carry it yet is still written (silently), so the store stamps it as seen.
pub(super) fn diff(
    store: &Store,
    key: &str,
    item: Item,
    listing_md5: String,
    mark: Option<u64>,
) -> Result<Option<Write>, SyncError> {
    // Read at commit time, not when staged: the same item may have been stored by another
    // page of this pass in between (pages shift), and its event must not repeat.
    let stored = store.item(key, &item.item_id)?;
    let md5 = item.md5();
    let event = match &stored {
        None => Some((Op::Create, Vec::new())),
        Some(s) if s.md5 != md5 => Some((Op::Update, item.changed_fields(&s.item))),
        Some(s) if s.listing_md5 != listing_md5 => None,
        Some(s) if mark.is_some() && s.seen != mark => None,
        Some(_) => return Ok(None),
    };
    Ok(Some(Write::Upsert { stored: StoredItem::new(item, md5, listing_md5), event }))
}

/// Commits writes, a watermark and where the open full pass's window stands, in one
/// transaction under `key`, counting the events.
pub(super) fn apply(
    store: &Store,
    key: &str,
    stats: &PassStats,
    writes: &[Write],
    watermark: Option<i64>,
    page: Option<&PageMark>,
) -> Result<(), SyncError> {
    if writes.is_empty() && watermark.is_none() && page.is_none() {
        return Ok(());
    }
    let events = store.commit_page(key, writes, watermark, now_ms(), page)?;
    for ev in &events {
        let c = match ev.op {
            Op::Create => &stats.creates,
            Op::Update => &stats.updates,
            Op::Delete => &stats.deletes,
        };
        super::stats::bump(c, 1);
    }
    Ok(())
}
