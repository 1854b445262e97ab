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
/// carry it yet is still written (silently), so the store stamps it as seen. `skus_ms` is
/// when the item's SKU details were fetched, if they were just now (else the stored time
/// stays).
pub(super) fn diff(
    store: &Store,
    key: &str,
    item: Item,
    listing_md5: String,
    skus_ms: Option<i64>,
    mark: Option<u64>,
) -> Result<Option<Write>, SyncError> {
    // Read at commit time, not when staged: the same item may have been stored by another
    // page of this pass in between (pages shift), and its event must not repeat.
    let stored = store.item(key, &item.item_id)?;
    let md5 = item.md5();
    let event = match &stored {
        None => Some((Op::Create, Vec::new())),
        Some(s) if s.current_md5() != md5 => Some((Op::Update, item.changed_fields(&s.item))),
        // Silent rewrites: the hashes' form, the listing hash or the SKU fetch time moved,
        // or the open full pass has not stamped the item yet.
        Some(s) if s.hash_v != crate::event::HASH_VERSION || s.listing_md5 != listing_md5 => None,
        Some(s) if skus_ms.is_some() && s.skus_ms != skus_ms => None,
        Some(s) if mark.is_some() && s.seen != mark => None,
        Some(_) => return Ok(None),
    };
    let skus_ms = skus_ms.or(stored.as_ref().and_then(|s| s.skus_ms));
    Ok(Some(Write::Upsert { stored: StoredItem::new(item, md5, listing_md5).with_skus_ms(skus_ms), event }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{PriceSource, HASH_VERSION};

    fn item(stock: i64) -> Item {
        Item {
            item_id: "601".into(),
            title: "杯".into(),
            cid: "1".into(),
            wholesale_prices: Vec::new(),
            price_source: PriceSource::None,
            moq: Some(1),
            sales: None,
            stock: Some(stock),
            status: "online".into(),
            modified_ms: 1_700_000_000_000,
            sku_ids: Vec::new(),
            skus: Vec::new(),
            pic_url: String::new(),
            detail_url: String::new(),
        }
    }

    /// A copy stored with hashes of an older canonical form is re-hashed, not reported as
    /// changed: a new form must not turn every stored item into an update.
    #[test]
    fn hashes_of_an_older_form_make_no_events() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 1 << 20).expect("open");
        let mut old = StoredItem::new(item(5), "0123456789abcdef0123456789abcdef".into(), "fedcba".into());
        old.hash_v = 0;
        store.commit_page("s", &[Write::Upsert { stored: old, event: None }], None, 0, None).expect("commit");
        let it = item(5);
        let l = it.listing_md5();
        match diff(&store, "s", it, l.clone(), None, None).expect("diff") {
            Some(Write::Upsert { stored, event: None }) => assert_eq!(stored.hash_v, HASH_VERSION),
            other => panic!("expected a silent rewrite, got {other:?}"),
        }
        // Once rewritten in the current form, the same content is no write at all, and a
        // real change is an update naming the field.
        let it = item(5);
        let md5 = it.md5();
        store
            .commit_page(
                "s",
                &[Write::Upsert { stored: StoredItem::new(it.clone(), md5, l.clone()), event: None }],
                None,
                0,
                None,
            )
            .expect("commit");
        assert!(diff(&store, "s", it, l.clone(), None, None).expect("diff").is_none());
        match diff(&store, "s", item(6), item(6).listing_md5(), None, None).expect("diff") {
            Some(Write::Upsert { event: Some((Op::Update, changed)), .. }) => assert_eq!(changed, ["stock"]),
            other => panic!("expected an update, got {other:?}"),
        }
    }
}
