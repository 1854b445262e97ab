//! Deterministic generation of realistic shops from a seed.
//!
//! Real 1688 catalogues have traits that break naive sync clients, and every one of them is
//! reproduced here: category trees of 5 to 40 nodes, Chinese titles, 0 to 12 SKUs per item,
//! tiered or single or empty wholesale prices, modified times spread over years,
//! bulk-import clusters where thousands of items share one millisecond (in big shops one of
//! them in a single category, out of any query's reach), and a few items filed under a
//! category the seller's list does not have.

use super::item::{Category, Item, PriceForm, Sku, Tier, COLORS, SIZES};
use super::shop::Shop;
use super::ITEM_ID_BASE;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const DAY_MS: i64 = 86_400_000;

/// What kind of shop to make.
#[derive(Debug, Clone)]
pub struct GenSpec {
    /// Number of on-sale items.
    pub items: usize,
    /// Number of categories; random in 5..=40 when `None`.
    pub categories: Option<usize>,
    /// Size of the largest bulk-import tie (items sharing one `modified_time`); chosen from
    /// the shop's size when `None` (a shop of 10,000 items or more gets one above 2,000).
    pub tie: Option<usize>,
    /// How far back modified times reach.
    pub history_days: u32,
    /// "Now" for the generated times, in ms.
    pub now_ms: i64,
    /// Variants per item, `(min, max)`; 0 to 12 (a quarter without any) when `None`.
    pub skus: Option<(usize, usize)>,
    /// Share of items with a `cid` outside the seller's category list
    /// ([`crate::config::Quirks::stray_cid_share`]).
    pub stray_cid_share: f64,
    /// Shops this big get a bulk import over 2,000 items in one category
    /// ([`crate::config::Quirks::one_category_tie_min_items`]; 0 never).
    pub one_category_tie_min_items: usize,
}

/// Shops smaller than this get no item with a stray category.
const STRAY_CID_MIN_ITEMS: usize = 1_000;
/// Stray categories are numbered from here, above any generated seller category, and each
/// stray item gets its own: no reachable item gives a stray category away.
const STRAY_CID_BASE: u64 = 2_900_000;
/// What one query reaches under the contract's limits: 50 pages of 40.
const CONTRACT_REACH: usize = 2_000;

/// Makes shops and items; owns the id counter so ids stay unique across all shops.
pub struct Generator {
    rng: SmallRng,
    /// Draws for the catalogue quirks (stray categories, the one-category tie), apart from
    /// `rng` so that a seed gives the same base catalogue with the quirks on or off.
    quirk_rng: SmallRng,
    next_stray_cid: u64,
    next_item_id: u64,
    /// The SKU range of the shop being generated (`GenSpec::skus`).
    sku_range: Option<(usize, usize)>,
}

const ADJ: &[&str] = &[
    "夏季", "冬季", "新款", "爆款", "加厚", "纯棉", "韩版", "宽松", "修身", "男士", "女士", "儿童", "复古",
    "简约", "高档", "防水", "透气", "速干", "加绒", "日系",
];
const NOUN: &[&str] = &[
    "T恤",
    "衬衫",
    "卫衣",
    "连衣裙",
    "牛仔裤",
    "运动鞋",
    "帆布包",
    "保温杯",
    "收纳盒",
    "手机壳",
    "数据线",
    "毛巾",
    "拖鞋",
    "围巾",
    "帽子",
    "袜子",
    "雨伞",
    "背包",
    "茶具",
    "台灯",
];
const SUFFIX: &[&str] =
    &["批发", "厂家直销", "一件代发", "跨境专供", "现货", "源头工厂", "支持定制", "量大从优"];
const CAT_NAMES: &[&str] = &[
    "女装",
    "男装",
    "童装",
    "鞋靴",
    "箱包",
    "家居",
    "厨具",
    "数码配件",
    "运动户外",
    "美妆",
    "内衣",
    "饰品",
    "玩具",
    "文具",
    "宠物用品",
    "汽车用品",
    "五金工具",
    "灯具",
    "纺织面料",
    "包装材料",
];

impl Generator {
    pub fn new(seed: u64) -> Self {
        Generator {
            rng: SmallRng::seed_from_u64(seed),
            quirk_rng: SmallRng::seed_from_u64(seed ^ 0x0dd_ca75),
            next_stray_cid: STRAY_CID_BASE,
            next_item_id: ITEM_ID_BASE + 1,
            sku_range: None,
        }
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_item_id;
        self.next_item_id += self.rng.gen_range(1..=37);
        id
    }

    /// Makes a whole shop. `member_id` is a 16-digit decimal string.
    pub fn shop(&mut self, spec: &GenSpec) -> Shop {
        self.sku_range = spec.skus;
        let rng = &mut self.rng;
        let member_id = format!("{}", 6_000_000_000_000_000u64 + rng.gen_range(1..999_999_999_999_999u64));
        // The shop's subdomain is a login name, never the member id: only `alibaba.shop.get`
        // can turn such a URL into a member id.
        let login = format!("shop{}", rng.gen_range(10_000_000u64..99_999_999));
        let name = format!(
            "义乌市{}{}有限公司",
            NOUN[rng.gen_range(0..NOUN.len())],
            ["贸易", "服饰", "日用品", "电子"][rng.gen_range(0..4)]
        );
        let n_cats = spec.categories.unwrap_or_else(|| rng.gen_range(5..=40)).max(1);
        let mut categories: Vec<Category> = Vec::with_capacity(n_cats);
        let mut cid = 1_031_000u64 + rng.gen_range(0..500_000);
        for i in 0..n_cats {
            cid += rng.gen_range(1..=50);
            let parent_cid = if i < (n_cats / 4).max(1) {
                "0".to_string()
            } else {
                categories[rng.gen_range(0..i)].cid.clone()
            };
            let name = format!("{}{}", CAT_NAMES[i % CAT_NAMES.len()], i / CAT_NAMES.len() + 1);
            categories.push(Category { cid: cid.to_string(), name, parent_cid });
        }
        let cids: Vec<u64> = categories.iter().filter_map(|c| c.cid.parse().ok()).collect();

        let ties = self.tie_sizes(spec);
        let history_ms = i64::from(spec.history_days.max(1)) * DAY_MS;
        let mut shop = Shop::new(member_id, login, name, categories);
        let mut items = Vec::with_capacity(spec.items);
        let mut tie_times = Vec::new();
        // Where the first tie lies in `items` when it is a saturated one (over 2,000).
        let saturated = ties.first().filter(|&&t| t > 2_000).map(|&t| 0..t);
        for tie in ties {
            // Bulk imports stamp whole seconds; spread over every category so that a
            // per-category query can always reach them.
            let at = (spec.now_ms - self.rng.gen_range(DAY_MS..history_ms.max(DAY_MS + 1))) / 1000 * 1000;
            tie_times.push(at);
            for _ in 0..tie {
                items.push(self.item(&cids, at));
            }
        }
        if spec.one_category_tie_min_items > 0 && spec.items >= spec.one_category_tie_min_items {
            // A bulk import into one category: more than 2,000 items on one millisecond of one
            // cid, which no query of the contract reaches past its 50th page.
            let size = self.quirk_rng.gen_range(2_001..=3_000).min(spec.items - items.len());
            let cid = cids.get(self.quirk_rng.gen_range(0..cids.len().max(1))).copied().unwrap_or(1_031_910);
            let at = loop {
                let at = (spec.now_ms - self.quirk_rng.gen_range(DAY_MS..history_ms.max(DAY_MS + 1))) / 1000
                    * 1000;
                if !tie_times.contains(&at) {
                    break at;
                }
            };
            for _ in 0..size {
                items.push(self.item(&[cid], at));
            }
        }
        while items.len() < spec.items {
            // Recent months are denser than old years, as in live shops.
            let u: f64 = self.rng.gen();
            let age = (u * u * history_ms as f64) as i64;
            let at = spec.now_ms - age - self.rng.gen_range(0..1000);
            items.push(self.item(&cids, at));
        }
        self.stray_cids(&mut items, spec, saturated);
        shop.extend(items);
        self.sku_range = None;
        shop
    }

    /// Files a share of `items` under categories the seller's list does not have, a quarter of
    /// them (at least one) on the saturated bulk-import millisecond at `saturated`, where only
    /// per-category queries reach items: those are lost to every client.
    fn stray_cids(&mut self, items: &mut [Item], spec: &GenSpec, saturated: Option<std::ops::Range<usize>>) {
        if spec.stray_cid_share <= 0.0 || items.len() < STRAY_CID_MIN_ITEMS {
            return;
        }
        let n = ((items.len() as f64 * spec.stray_cid_share).round() as usize).clamp(1, items.len());
        let mut picked = Vec::with_capacity(n);
        if let Some(tie) = saturated.filter(|r| r.end > CONTRACT_REACH) {
            // Past the first 2,000 ids of the tie and with next to no sales, so that neither
            // the tie's own pages nor a sort by volume reach them.
            for _ in 0..(n / 4).max(1) {
                let i = self.quirk_rng.gen_range(CONTRACT_REACH..tie.end);
                items[i].sales = self.quirk_rng.gen_range(0..10);
                picked.push(i);
            }
        }
        while picked.len() < n {
            picked.push(self.quirk_rng.gen_range(0..items.len()));
        }
        for i in picked {
            self.next_stray_cid += self.quirk_rng.gen_range(1..=9);
            items[i].cid = self.next_stray_cid;
        }
    }

    fn tie_sizes(&mut self, spec: &GenSpec) -> Vec<usize> {
        let n = spec.items;
        let mut ties = Vec::new();
        match spec.tie {
            Some(t) => ties.push(t.min(n)),
            None if n >= 10_000 => ties.push(self.rng.gen_range(2_001..=3_000)),
            None => {}
        }
        if n >= 2_000 {
            for _ in 0..self.rng.gen_range(1..=3) {
                ties.push(self.rng.gen_range(100..=(n / 10).clamp(101, 1_500)));
            }
        }
        let mut left = n;
        ties.into_iter()
            .map(|t| {
                let t = t.min(left);
                left -= t;
                t
            })
            .filter(|&t| t > 0)
            .collect()
    }

    /// Makes one new item in one of `cids`, modified at `modified_ms`.
    pub fn item(&mut self, cids: &[u64], modified_ms: i64) -> Item {
        let item_id = self.next_id();
        let rng = &mut self.rng;
        let cid = cids.get(rng.gen_range(0..cids.len().max(1))).copied().unwrap_or(1_031_910);
        let mut item = Item {
            item_id,
            title: Box::from(""),
            cid,
            form: PriceForm::Tiered,
            tiers: Vec::new(),
            channel_cents: 0,
            moq: 1,
            sales: rng.gen_range(0..50_000),
            stock: rng.gen_range(0..100_000),
            skus: Vec::new(),
            modified_ms,
            online: true,
            garble: None,
        };
        self.retitle(&mut item);
        self.reprice(&mut item);
        self.reshape_skus(&mut item);
        item
    }

    pub fn retitle(&mut self, item: &mut Item) {
        let rng = &mut self.rng;
        let mut title = format!(
            "{}{}{} {}",
            ADJ[rng.gen_range(0..ADJ.len())],
            ADJ[rng.gen_range(0..ADJ.len())],
            NOUN[rng.gen_range(0..NOUN.len())],
            SUFFIX[rng.gen_range(0..SUFFIX.len())]
        );
        if rng.gen_bool(0.1) {
            // Sellers put commas, spaces and ASCII in titles; clients must survive them.
            title.push_str(", 2026 new, A+B");
        }
        item.title = title.into_boxed_str();
    }

    /// New prices, tiers and MOQ.
    pub fn reprice(&mut self, item: &mut Item) {
        let rng = &mut self.rng;
        let base: u32 = rng.gen_range(150..60_000);
        item.channel_cents = base + base / 10;
        item.moq = *[1, 1, 2, 2, 3, 5, 10, 20, 50, 100].get(rng.gen_range(0..10)).unwrap_or(&1);
        let roll: f64 = rng.gen();
        item.form = if roll < 0.03 {
            PriceForm::Empty
        } else if roll < 0.18 {
            PriceForm::Single
        } else {
            PriceForm::Tiered
        };
        item.tiers.clear();
        match item.form {
            PriceForm::Empty => {}
            PriceForm::Single => item.tiers.push(Tier { min: item.moq, max: None, cents: base }),
            PriceForm::Tiered => {
                let n = rng.gen_range(2..=4);
                let mut min = item.moq;
                let mut cents = base;
                for i in 0..n {
                    let max = (i + 1 < n).then(|| min * 10 + rng.gen_range(8..100));
                    item.tiers.push(Tier { min, max, cents });
                    if let Some(m) = max {
                        min = m + 1;
                    }
                    cents = (cents * rng.gen_range(88..98) / 100).max(1);
                }
            }
        }
        for sku in &mut item.skus {
            sku.cents = base + rng.gen_range(0..=base / 5);
        }
    }

    /// New SKU set (0 to 12 variants).
    pub fn reshape_skus(&mut self, item: &mut Item) {
        let rng = &mut self.rng;
        let n = match self.sku_range {
            Some((lo, hi)) => rng.gen_range(lo.min(hi)..=hi.min(12)),
            None if rng.gen_bool(0.25) => 0,
            None => rng.gen_range(1..=12),
        };
        let base = item.tiers.first().map_or(item.channel_cents, |t| t.cents);
        item.skus = (0..n)
            .map(|i| Sku {
                index: i as u8,
                color: (i / SIZES.len()) as u8 % COLORS.len() as u8 + rng.gen_range(0..3) as u8,
                size: (i % SIZES.len()) as u8,
                cents: base + rng.gen_range(0..=base / 5),
                stock: rng.gen_range(0..5_000),
            })
            .collect();
    }

    /// Stock and sales move: the silent change that leaves `modified_time` alone.
    pub fn restock(&mut self, item: &mut Item) {
        let rng = &mut self.rng;
        item.stock = rng.gen_range(0..100_000);
        item.sales += rng.gen_range(1..500);
        for sku in &mut item.skus {
            sku.stock = rng.gen_range(0..5_000);
        }
    }

    /// The price or the stock of one SKU moves; nothing the list call shows changes.
    pub fn change_one_sku(&mut self, item: &mut Item) {
        let rng = &mut self.rng;
        let n = item.skus.len();
        let Some(sku) = item.skus.get_mut(rng.gen_range(0..n.max(1))) else { return };
        if rng.gen_bool(0.5) {
            let cents = (sku.cents * rng.gen_range(90..=110) / 100).max(1);
            sku.cents = if cents == sku.cents { cents + 1 } else { cents };
        } else {
            let stock = rng.gen_range(0..5_000);
            sku.stock = if stock == sku.stock { stock + 1 } else { stock };
        }
    }

    pub fn rng(&mut self) -> &mut SmallRng {
        &mut self.rng
    }
}
