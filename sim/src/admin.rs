//! The admin API under `/_sim/`: not part of the platform. Tests and scripts use it to find
//! shops and accounts, create and mutate items, set limits and faults, read counters, and dump
//! the ground truth a perfect sync must end up with (and what of it no query can reach).

use crate::catalogue::{Garble, GenSpec, Generator, Shop};
use crate::state::{Catalogue, Sim};
use rand::seq::index::sample;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A mutation waiting for its point in a client's reads.
#[derive(Debug)]
pub struct Armed {
    member_id: String,
    at_ms: i64,
    mutation: Mutation,
}

#[derive(Debug, Serialize)]
pub struct ShopInfo {
    pub member_id: String,
    pub shop_url: String,
    pub shop_name: String,
    pub items: usize,
    pub categories: usize,
    /// The id the param2 face's cross-border APIs know the seller by.
    pub seller_open_id: String,
}

/// Body of `POST /_sim/shops`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewShop {
    pub items: usize,
    #[serde(default)]
    pub categories: Option<usize>,
    /// Size of a bulk-import tie to include.
    #[serde(default)]
    pub tie: Option<usize>,
    #[serde(default = "default_history_days")]
    pub history_days: u32,
    /// Variants per item as `[min, max]` (at most 12); 0 to 12 when absent.
    #[serde(default)]
    pub skus: Option<[usize; 2]>,
}

fn default_history_days() -> u32 {
    3 * 365
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MutationOp {
    /// New on-sale items, modified now.
    Create,
    /// Prices, title and SKUs change; `modified_time` moves to now; a garbled item is
    /// readable again.
    Update,
    /// Stock and sales change; `modified_time` stays (the silent-fields quirk).
    Touch,
    /// The price or the stock of one SKU changes and nothing of the listing does, not even
    /// `modified_time`: only fetching the SKUs again shows it. Items without SKUs are skipped.
    Sku,
    /// Taken off sale; `modified_time` moves to now.
    Delist,
    /// Taken off sale with `modified_time` left where it was: the item just drops out of the
    /// on-sale lists, and only a full pass notices.
    DelistSilent,
    /// Gone from the platform entirely.
    Remove,
    /// Edited into an unreadable state (`"moq": "两件"`, a `modified_time` of text, or a price
    /// tier of text), `modified_time` moved to now, until the next update.
    Garble,
}

/// Body of `POST /_sim/shops/{member_id}/mutate`: either `count` random items or the
/// listed `item_ids`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mutation {
    pub op: MutationOp,
    #[serde(default)]
    pub count: Option<usize>,
    #[serde(default)]
    pub item_ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
pub struct Mutated {
    pub op: MutationOp,
    pub item_ids: Vec<String>,
}

impl Sim {
    pub fn shop_infos(&self) -> Vec<ShopInfo> {
        self.catalogue()
            .shops
            .iter()
            .map(|s| ShopInfo {
                member_id: s.member_id.clone(),
                shop_url: s.shop_url(),
                shop_name: s.name.clone(),
                items: s.online_count(),
                categories: s.categories.len(),
                seller_open_id: crate::param2::seller_open_id(&s.member_id),
            })
            .collect()
    }

    pub fn create_shop(&self, spec: &NewShop) -> ShopInfo {
        let now = self.now_ms();
        let quirks = self.quirks();
        let mut cat = self.catalogue_mut();
        let idx = cat.add_shop(&GenSpec {
            items: spec.items,
            categories: spec.categories,
            tie: spec.tie,
            history_days: spec.history_days,
            now_ms: now,
            skus: spec.skus.map(|[a, b]| (a, b)),
            stray_cid_share: quirks.stray_cid_share,
            one_category_tie_min_items: quirks.one_category_tie_min_items,
        });
        let s = &cat.shops[idx];
        ShopInfo {
            member_id: s.member_id.clone(),
            shop_url: s.shop_url(),
            shop_name: s.name.clone(),
            items: s.online_count(),
            categories: s.categories.len(),
            seller_open_id: crate::param2::seller_open_id(&s.member_id),
        }
    }

    /// Holds a mutation back until a client lists the one millisecond `at_ms` of this shop
    /// by category, and applies it just before answering that query (once). A client that
    /// splits a crowded millisecond by category counts it first and reads the parts after,
    /// so the change lands between the two: for tests of what a read racing with changes
    /// must do, at an exact point rather than by chance.
    pub fn mutate_when_split(&self, member_id: &str, at_ms: i64, m: Mutation) {
        let mut armed = self.inner.armed.lock().unwrap_or_else(|e| e.into_inner());
        armed.push(Armed { member_id: member_id.to_string(), at_ms, mutation: m });
    }

    /// Applies the held-back mutations this list query reaches.
    pub(crate) fn fire_armed(&self, member_id: &str, q: &crate::catalogue::ListQuery) {
        let (Some(start), Some(end), Some(_)) = (q.start, q.end, q.cid) else { return };
        if end != start + 1 {
            return;
        }
        let due: Vec<Armed> = {
            let mut armed = self.inner.armed.lock().unwrap_or_else(|e| e.into_inner());
            let (due, keep) = std::mem::take(&mut *armed)
                .into_iter()
                .partition(|a| a.member_id == member_id && a.at_ms == start);
            *armed = keep;
            due
        };
        for a in due {
            if let Err(e) = self.mutate(&a.member_id, &a.mutation) {
                eprintln!("sim1688: a held-back mutation failed: {e}");
            }
        }
    }

    /// Applies a mutation; `Err` names what was wrong with it.
    pub fn mutate(&self, member_id: &str, m: &Mutation) -> Result<Mutated, String> {
        let now = self.now_ms();
        let mut guard = self.catalogue_mut();
        let cat = &mut *guard;
        let idx = *cat.by_member.get(member_id).ok_or_else(|| format!("no shop {member_id}"))?;
        let mut ids: Vec<u64> = Vec::new();
        if m.op == MutationOp::Create {
            for _ in 0..m.count.unwrap_or(1) {
                ids.push(create(cat, idx, now));
            }
            return Ok(Mutated { op: m.op, item_ids: ids.iter().map(u64::to_string).collect() });
        }
        match (&m.item_ids, m.count) {
            (Some(list), _) => {
                for s in list {
                    ids.push(s.parse().map_err(|_| format!("bad item id {s:?}"))?);
                }
            }
            (None, Some(n)) => {
                let shop = &cat.shops[idx];
                // SKU changes need items that have SKUs.
                let online: Vec<u64> = shop
                    .online_ids()
                    .filter(|id| m.op != MutationOp::Sku || shop.get(*id).is_some_and(|i| !i.skus.is_empty()))
                    .collect();
                let n = n.min(online.len());
                ids = sample(cat.gen.rng(), online.len(), n).into_iter().map(|i| online[i]).collect();
            }
            (None, None) => return Err("give count or item_ids".into()),
        }
        let mut done = Vec::new();
        for id in ids {
            if change(cat, idx, m.op, id, now) {
                done.push(id.to_string());
            }
        }
        Ok(Mutated { op: m.op, item_ids: done })
    }

    /// Every on-sale item of a shop in full (with SKUs), as a perfect sync would hold it;
    /// garbled items show what the platform serves for them. Beside the items: `garbled` (the
    /// ids a client cannot read), `wrong_types` (ids served with wrong but readable JSON
    /// types; the items here show the right ones) and `unreachable` (ids no query reaches,
    /// see [`Sim::unreachable`]).
    pub fn truth(&self, member_id: &str) -> Option<Value> {
        let reach = self.reach();
        let cat = self.catalogue();
        let shop = cat.shop(member_id)?;
        let items: Vec<_> = shop.online_items().map(|i| i.full_view(true, false)).collect();
        let garbled: Vec<String> =
            shop.online_items().filter(|i| i.garble.is_some()).map(|i| i.item_id.to_string()).collect();
        let wrong_types: Vec<String> = shop
            .online_items()
            .filter(|i| self.wrong_types(i.item_id))
            .map(|i| i.item_id.to_string())
            .collect();
        let unreachable: Vec<String> = shop.unreachable(reach).iter().map(u64::to_string).collect();
        Some(json!({
            "member_id": shop.member_id,
            "count": items.len(),
            "items": items,
            "garbled": garbled,
            "wrong_types": wrong_types,
            "unreachable": unreachable,
        }))
    }

    /// What one query reaches: the depth cap times the largest page.
    fn reach(&self) -> usize {
        let l = self.limits();
        l.depth_cap as usize * l.max_page_size as usize
    }

    /// The on-sale items of a shop that no query of the contract can reach (more than 2,000
    /// on one millisecond of one category, or on a saturated millisecond under a category the
    /// seller does not list), as `GET /_sim/shops/{member}/unreachable` shows them.
    pub fn unreachable(&self, member_id: &str) -> Option<Value> {
        let reach = self.reach();
        let cat = self.catalogue();
        let shop = cat.shop(member_id)?;
        let ids: Vec<String> = shop.unreachable(reach).iter().map(u64::to_string).collect();
        Some(json!({"member_id": shop.member_id, "reach": reach, "count": ids.len(), "item_ids": ids}))
    }
}

/// A new on-sale item in shop `idx`, modified at `now`; returns its id.
pub(crate) fn create(cat: &mut Catalogue, idx: usize, now: i64) -> u64 {
    let cids = cat.shops[idx].category_ids();
    let item = cat.gen.item(&cids, now);
    let id = item.item_id;
    cat.item_shop.insert(id, idx);
    cat.shops[idx].insert(item);
    id
}

/// Applies `op` (anything but `Create`) to one item of shop `idx`; false when the item is
/// unknown or the op does not apply to it.
pub(crate) fn change(cat: &mut Catalogue, idx: usize, op: MutationOp, id: u64, now: i64) -> bool {
    let shop: &mut Shop = &mut cat.shops[idx];
    let gen: &mut Generator = &mut cat.gen;
    match op {
        MutationOp::Create => false,
        MutationOp::Update => shop.update(id, |it| {
            gen.reprice(it);
            if gen.rng().gen_bool(0.3) {
                gen.retitle(it);
            }
            if gen.rng().gen_bool(0.2) {
                gen.reshape_skus(it);
            }
            gen.restock(it);
            it.garble = None;
            it.modified_ms = now;
        }),
        MutationOp::Touch => shop.update(id, |it| gen.restock(it)),
        MutationOp::Sku => {
            shop.get(id).is_some_and(|it| !it.skus.is_empty()) && shop.update(id, |it| gen.change_one_sku(it))
        }
        MutationOp::Delist => shop.update(id, |it| {
            it.online = false;
            it.modified_ms = now;
        }),
        MutationOp::DelistSilent => shop.update(id, |it| it.online = false),
        MutationOp::Remove => {
            cat.item_shop.remove(&id);
            shop.remove(id).is_some()
        }
        MutationOp::Garble => shop.update(id, |it| {
            it.garble = Some(Garble::ALL[gen.rng().gen_range(0..Garble::ALL.len())]);
            it.modified_ms = now;
        }),
    }
}
