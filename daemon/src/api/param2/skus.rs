//! SKU details on param2 come inside the product list (`skuInfos`), not from a call of their
//! own. The sync engine still asks for them by id (`Client::sku_get`) after listing a page,
//! as it does on the seed gateway; this cache answers those asks from what the list just
//! delivered, at no call and no quota.
//!
//! The engine asks for a page's SKUs at most one list call after reading the page (its
//! batcher fills 20 ids, then fetches), so only recent SKUs are ever needed; the cache keeps
//! the most recent [`CAPACITY`] and forgets the oldest. An id it does not hold is left out of
//! the answer, which is what `alibaba.item.sku.get` does with an unknown id.

use crate::api::RawSku;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Far more than the SKUs of the pages a few concurrent passes hold between listing and
/// asking (20 items a page, rarely more than a few hundred SKUs an item), and still a few
/// megabytes at most.
pub const CAPACITY: usize = 50_000;

#[derive(Default)]
struct Inner {
    /// id → (generation of the last write, SKU). Boxed: the table keeps twice its entries'
    /// room (evicting leaves tombstones, and it grows past 50,000 to 131,072 slots), and at
    /// 144 bytes a slot that was 19 MiB of a 100,000-item pass's peak heap; 40 bytes a slot
    /// and the SKUs themselves beside it are ~11 MiB.
    map: HashMap<String, (u64, Box<RawSku>)>,
    /// Writes in order; an entry whose generation is no longer the map's is stale.
    order: VecDeque<(u64, String)>,
    generation: u64,
}

pub struct SkuCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl Default for SkuCache {
    fn default() -> Self {
        SkuCache::with_capacity(CAPACITY)
    }
}

impl SkuCache {
    pub fn with_capacity(capacity: usize) -> SkuCache {
        SkuCache { inner: Mutex::new(Inner::default()), capacity: capacity.max(1) }
    }

    /// Keeps these SKUs (newer details replace older ones of the same id).
    pub fn put(&self, skus: impl IntoIterator<Item = RawSku>) {
        let Ok(mut c) = self.inner.lock() else { return };
        for s in skus {
            c.generation += 1;
            let g = c.generation;
            c.order.push_back((g, s.sku_id.clone()));
            c.map.insert(s.sku_id.clone(), (g, Box::new(s)));
        }
        while c.map.len() > self.capacity {
            let Some((g, id)) = c.order.pop_front() else { break };
            if c.map.get(&id).is_some_and(|(cur, _)| *cur == g) {
                c.map.remove(&id);
            }
        }
        // Rewrites of the same ids leave stale order entries behind; drop them before the
        // queue outgrows the map.
        if c.order.len() > 2 * self.capacity {
            let Inner { map, order, .. } = &mut *c;
            order.retain(|(g, id)| map.get(id).is_some_and(|(cur, _)| cur == g));
        }
    }

    /// The SKUs of these ids that the cache holds, and how many it does not.
    pub fn get(&self, ids: &[String]) -> (Vec<RawSku>, usize) {
        let Ok(c) = self.inner.lock() else { return (Vec::new(), ids.len()) };
        let found: Vec<RawSku> =
            ids.iter().filter_map(|id| c.map.get(id).map(|(_, s)| RawSku::clone(s))).collect();
        let missing = ids.len() - found.len();
        (found, missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sku(id: &str, stock: i64) -> RawSku {
        RawSku {
            sku_id: id.into(),
            item_id: Some("1".into()),
            spec: String::new(),
            price: None,
            stock: Some(stock),
        }
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn answers_from_the_last_listing_and_forgets_the_oldest() {
        let c = SkuCache::with_capacity(2);
        c.put([sku("a", 1), sku("b", 1)]);
        c.put([sku("a", 2)]);
        c.put([sku("c", 1)]);
        let (found, missing) = c.get(&ids(&["a", "b", "c"]));
        assert_eq!(missing, 1, "b was the oldest write");
        assert_eq!(
            found.iter().map(|s| (s.sku_id.as_str(), s.stock)).collect::<Vec<_>>(),
            vec![("a", Some(2)), ("c", Some(1))]
        );
    }

    #[test]
    fn rewrites_do_not_grow_without_bound() {
        let c = SkuCache::with_capacity(3);
        for i in 0..100 {
            c.put([sku("a", i)]);
        }
        let n = c.inner.lock().map(|i| i.order.len()).unwrap_or(usize::MAX);
        assert!(n <= 6, "{n}");
        assert_eq!(c.get(&ids(&["a"])).0[0].stock, Some(99));
    }
}
