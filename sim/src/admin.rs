//! The admin API under `/_sim/`: not part of the platform. Tests and scripts use it to find
//! shops and accounts, create and mutate items, set limits and faults, read counters, and dump
//! the ground truth a perfect sync must end up with.

use crate::catalogue::GenSpec;
use crate::state::Sim;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Serialize)]
pub struct ShopInfo {
    pub member_id: String,
    pub shop_url: String,
    pub shop_name: String,
    pub items: usize,
    pub categories: usize,
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
#[serde(rename_all = "lowercase")]
pub enum MutationOp {
    /// New on-sale items, modified now.
    Create,
    /// Prices, title and SKUs change; `modified_time` moves to now.
    Update,
    /// Stock and sales change; `modified_time` stays (the silent-fields quirk).
    Touch,
    /// Taken off sale; `modified_time` moves to now.
    Delist,
    /// Gone from the platform entirely.
    Remove,
}

/// Body of `POST /_sim/shops/{member_id}/mutate`: either `count` random items or the
/// listed `item_ids`.
#[derive(Debug, Deserialize)]
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
            })
            .collect()
    }

    pub fn create_shop(&self, spec: &NewShop) -> ShopInfo {
        let now = self.now_ms();
        let mut cat = self.catalogue_mut();
        let idx = cat.add_shop(&GenSpec {
            items: spec.items,
            categories: spec.categories,
            tie: spec.tie,
            history_days: spec.history_days,
            now_ms: now,
            skus: spec.skus.map(|[a, b]| (a, b)),
        });
        let s = &cat.shops[idx];
        ShopInfo {
            member_id: s.member_id.clone(),
            shop_url: s.shop_url(),
            shop_name: s.name.clone(),
            items: s.online_count(),
            categories: s.categories.len(),
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
            let cids = cat.shops[idx].category_ids();
            for _ in 0..m.count.unwrap_or(1) {
                let item = cat.gen.item(&cids, now);
                ids.push(item.item_id);
                cat.item_shop.insert(item.item_id, idx);
                cat.shops[idx].insert(item);
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
                let online: Vec<u64> = cat.shops[idx].online_ids().collect();
                let n = n.min(online.len());
                ids = sample(cat.gen.rng(), online.len(), n).into_iter().map(|i| online[i]).collect();
            }
            (None, None) => return Err("give count or item_ids".into()),
        }
        let shop = &mut cat.shops[idx];
        let gen = &mut cat.gen;
        let mut done = Vec::new();
        for id in ids {
            let changed = match m.op {
                MutationOp::Create => unreachable!("handled above"),
                MutationOp::Update => shop.update(id, |it| {
                    gen.reprice(it);
                    if gen.rng().gen_bool(0.3) {
                        gen.retitle(it);
                    }
                    if gen.rng().gen_bool(0.2) {
                        gen.reshape_skus(it);
                    }
                    gen.restock(it);
                    it.modified_ms = now;
                }),
                MutationOp::Touch => shop.update(id, |it| gen.restock(it)),
                MutationOp::Delist => shop.update(id, |it| {
                    it.online = false;
                    it.modified_ms = now;
                }),
                MutationOp::Remove => {
                    cat.item_shop.remove(&id);
                    shop.remove(id).is_some()
                }
            };
            if changed {
                done.push(id.to_string());
            }
        }
        Ok(Mutated { op: m.op, item_ids: done })
    }

    /// Every on-sale item of a shop in full (with SKUs), as a perfect sync would hold it.
    pub fn truth(&self, member_id: &str) -> Option<Value> {
        let cat = self.catalogue();
        let shop = cat.shop(member_id)?;
        let items: Vec<_> = shop.online_items().map(|i| i.full_view(true)).collect();
        Some(json!({"member_id": shop.member_id, "count": items.len(), "items": items}))
    }
}

use rand::Rng;
