//! One shop's items and the sorted indexes that answer list and count queries.
//!
//! Pages are cut by offset from a fresh sort on every call, exactly like the platform: an
//! item modified while a client pages through a window moves, and the item at the next page
//! boundary slips past that client (the "shifting pages" quirk). Nothing here smooths that.

use super::item::{Category, Item};
use std::collections::{HashMap, HashSet};

/// Index key: items sort by `modified_time`, ties broken by `item_id` ascending.
type Key = (i64, u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortType {
    ModifiedAsc,
    ModifiedDesc,
    VolumeDesc,
}

/// A list or count query, already validated.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Include delisted items too.
    pub offline: bool,
    pub cid: Option<u64>,
    /// `start <= modified_time`
    pub start: Option<i64>,
    /// `modified_time < end`
    pub end: Option<i64>,
    pub sort: SortType,
}

#[derive(Default)]
struct Index {
    all: Vec<Key>,
    by_cat: HashMap<u64, Vec<Key>>,
}

impl Index {
    fn insert(&mut self, key: Key, cid: u64) {
        for v in [&mut self.all, self.by_cat.entry(cid).or_default()] {
            let at = v.partition_point(|k| *k < key);
            v.insert(at, key);
        }
    }

    fn remove(&mut self, key: Key, cid: u64) {
        for v in [Some(&mut self.all), self.by_cat.get_mut(&cid)].into_iter().flatten() {
            if let Ok(at) = v.binary_search(&key) {
                v.remove(at);
            }
        }
    }

    fn range(&self, q: &ListQuery) -> &[Key] {
        let v: &[Key] = match q.cid {
            Some(cid) => self.by_cat.get(&cid).map_or(&[], |v| v.as_slice()),
            None => &self.all,
        };
        let lo = q.start.map_or(0, |s| v.partition_point(|k| k.0 < s));
        let hi = q.end.map_or(v.len(), |e| v.partition_point(|k| k.0 < e));
        &v[lo..hi.max(lo)]
    }
}

pub struct Shop {
    pub member_id: String,
    pub login: String,
    pub name: String,
    pub categories: Vec<Category>,
    items: HashMap<u64, Item>,
    online: Index,
    everything: Index,
    /// The smallest and largest item id the shop ever held (ids are never reused).
    ids: (u64, u64),
}

impl Shop {
    pub fn new(member_id: String, login: String, name: String, categories: Vec<Category>) -> Self {
        Shop {
            member_id,
            login,
            name,
            categories,
            items: HashMap::new(),
            online: Index::default(),
            everything: Index::default(),
            ids: (u64::MAX, 0),
        }
    }

    /// The smallest and largest id of the shop's items, ever (`lo <= hi` even when empty).
    pub fn id_range(&self) -> (u64, u64) {
        (self.ids.0.min(self.ids.1), self.ids.1)
    }

    pub fn shop_url(&self) -> String {
        format!("https://{}.1688.com", self.login)
    }

    pub fn category_ids(&self) -> Vec<u64> {
        self.categories.iter().filter_map(|c| c.cid.parse().ok()).collect()
    }

    /// Number of on-sale items.
    pub fn online_count(&self) -> usize {
        self.online.all.len()
    }

    pub fn get(&self, item_id: u64) -> Option<&Item> {
        self.items.get(&item_id)
    }

    /// Adds many items at once: one sort instead of a shifting insert per item, which would
    /// make generating a million-item shop quadratic.
    pub fn extend(&mut self, items: impl IntoIterator<Item = Item>) {
        for item in items {
            let key = (item.modified_ms, item.item_id);
            self.everything.all.push(key);
            self.everything.by_cat.entry(item.cid).or_default().push(key);
            if item.online {
                self.online.all.push(key);
                self.online.by_cat.entry(item.cid).or_default().push(key);
            }
            self.ids = (self.ids.0.min(item.item_id), self.ids.1.max(item.item_id));
            self.items.insert(item.item_id, item);
        }
        for idx in [&mut self.everything, &mut self.online] {
            idx.all.sort_unstable();
            for v in idx.by_cat.values_mut() {
                v.sort_unstable();
            }
        }
    }

    pub fn insert(&mut self, item: Item) {
        let key = (item.modified_ms, item.item_id);
        self.everything.insert(key, item.cid);
        if item.online {
            self.online.insert(key, item.cid);
        }
        self.ids = (self.ids.0.min(item.item_id), self.ids.1.max(item.item_id));
        self.items.insert(item.item_id, item);
    }

    pub fn remove(&mut self, item_id: u64) -> Option<Item> {
        let item = self.items.remove(&item_id)?;
        let key = (item.modified_ms, item.item_id);
        self.everything.remove(key, item.cid);
        self.online.remove(key, item.cid);
        Some(item)
    }

    /// Changes one item in place, keeping the indexes right. Returns false for an unknown id.
    pub fn update(&mut self, item_id: u64, f: impl FnOnce(&mut Item)) -> bool {
        match self.remove(item_id) {
            Some(mut item) => {
                f(&mut item);
                self.insert(item);
                true
            }
            None => false,
        }
    }

    /// Ids of on-sale items in index order (for picking mutation targets deterministically).
    pub fn online_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.online.all.iter().map(|k| k.1)
    }

    /// The id of the `k`-th on-sale item in index order.
    pub fn online_id_at(&self, k: usize) -> Option<u64> {
        self.online.all.get(k).map(|key| key.1)
    }

    /// Every on-sale item, in `modified_time` order.
    pub fn online_items(&self) -> impl Iterator<Item = &Item> + '_ {
        self.online.all.iter().filter_map(|k| self.items.get(&k.1))
    }

    /// Ids of the on-sale items that no query of the contract reaches, where `reach` is the
    /// depth cap times the largest page (2,000). Only a millisecond holding more than `reach`
    /// items hides any: a window cannot be narrower, so what its 50 pages miss is reached
    /// only by per-category queries of that millisecond (for the categories the seller lists)
    /// and by sorting otherwise (`volume_desc`). Every other order keeps ties by id, and a
    /// wider window or the offline index only pushes an item further back, so the union of
    /// those few queries' first `reach` items is all a client can ever see.
    pub fn unreachable(&self, reach: usize) -> Vec<u64> {
        let listed: HashSet<u64> = self.category_ids().into_iter().collect();
        let all = &self.online.all;
        let mut out = Vec::new();
        let mut lo = 0;
        while lo < all.len() {
            let t = all[lo].0;
            let hi = lo + all[lo..].partition_point(|k| k.0 == t);
            if hi - lo > reach {
                let group: Vec<&Item> = all[lo..hi].iter().filter_map(|k| self.items.get(&k.1)).collect();
                let mut reached = first_pages(&group, reach);
                let mut by_cid: HashMap<u64, Vec<&Item>> = HashMap::new();
                for it in &group {
                    by_cid.entry(it.cid).or_default().push(it);
                }
                for (cid, items) in by_cid {
                    if listed.contains(&cid) {
                        reached.extend(first_pages(&items, reach));
                    }
                }
                out.extend(group.iter().map(|i| i.item_id).filter(|id| !reached.contains(id)));
            }
            lo = hi;
        }
        out
    }

    fn index(&self, q: &ListQuery) -> &Index {
        if q.offline {
            &self.everything
        } else {
            &self.online
        }
    }

    /// How many items match (`total_results`, `total_count`).
    pub fn count(&self, q: &ListQuery) -> usize {
        self.index(q).range(q).len()
    }

    /// The items at `offset..offset + size` of the query's order.
    pub fn page(&self, q: &ListQuery, offset: usize, size: usize) -> Vec<&Item> {
        let range = self.index(q).range(q);
        let ids: Vec<u64> = match q.sort {
            SortType::ModifiedAsc => range.iter().skip(offset).take(size).map(|k| k.1).collect(),
            SortType::ModifiedDesc => desc_page(range, offset, size),
            SortType::VolumeDesc => {
                let mut all: Vec<(u32, u64)> =
                    range.iter().filter_map(|k| self.items.get(&k.1).map(|i| (i.sales, i.item_id))).collect();
                all.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                all.into_iter().skip(offset).take(size).map(|p| p.1).collect()
            }
        };
        ids.iter().filter_map(|id| self.items.get(id)).collect()
    }
}

/// The items of one millisecond (in id order) that the first `reach` places of a query reach,
/// by time (ties by id) or by volume (sales descending, ties by id).
fn first_pages(group: &[&Item], reach: usize) -> HashSet<u64> {
    let mut out: HashSet<u64> = group.iter().take(reach).map(|i| i.item_id).collect();
    if group.len() > reach {
        let mut by_volume: Vec<(u32, u64)> = group.iter().map(|i| (i.sales, i.item_id)).collect();
        by_volume.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        out.extend(by_volume.into_iter().take(reach).map(|p| p.1));
    }
    out
}

/// A page of `range` sorted by time descending with ties still by id ascending: walk the
/// tie groups from the newest, each group forwards.
fn desc_page(range: &[Key], mut offset: usize, size: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(size);
    let mut hi = range.len();
    while hi > 0 && out.len() < size {
        let t = range[hi - 1].0;
        let lo = range[..hi].partition_point(|k| k.0 < t);
        let group = &range[lo..hi];
        if offset >= group.len() {
            offset -= group.len();
        } else {
            out.extend(group[offset..].iter().take(size - out.len()).map(|k| k.1));
            offset = 0;
        }
        hi = lo;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desc_pages_keep_ties_ascending() {
        let range = vec![(1, 10), (2, 20), (2, 21), (2, 22), (3, 30)];
        assert_eq!(desc_page(&range, 0, 10), vec![30, 20, 21, 22, 10]);
        assert_eq!(desc_page(&range, 2, 2), vec![21, 22]);
        assert_eq!(desc_page(&range, 4, 2), vec![10]);
        assert!(desc_page(&range, 5, 2).is_empty());
    }
}
