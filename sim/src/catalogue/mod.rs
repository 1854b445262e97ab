//! The simulated catalogues: what every shop sells, how it is generated from a seed, and the
//! sorted indexes that answer the gateway's queries in logarithmic time.
//!
//! `item.rs` holds the types and their wire form, `gen.rs` makes realistic shops (category
//! trees, Chinese titles, tiered prices, bulk-import ties), `shop.rs` keeps one shop's items
//! with its indexes and applies the admin API's mutations.

mod gen;
mod item;
mod shop;

pub use gen::{GenSpec, Generator};
pub use item::{
    money, Category, Field, FieldSet, Garble, Item, ItemView, Loose, PriceForm, Sku, SkuView, Tier, COLORS,
    SIZES,
};
pub use shop::{ListQuery, Shop, SortType};

/// First item id handed out; ids are 12-digit decimal strings on the wire.
pub const ITEM_ID_BASE: u64 = 600_000_000_000;
/// SKU ids are derived from their item id so that a SKU lookup needs no extra index.
pub const SKU_ID_BASE: u64 = 4_000_000_000_000;
/// Most SKUs one item can have (the SKU id encodes the index in 4 bits).
pub const MAX_SKUS: usize = 16;

/// The SKU id of the `k`-th SKU of `item_id`.
pub fn sku_id(item_id: u64, k: usize) -> u64 {
    SKU_ID_BASE + (item_id - ITEM_ID_BASE) * MAX_SKUS as u64 + k as u64
}

/// The item id and index a SKU id stands for, if it is one of ours.
pub fn sku_owner(sku_id: u64) -> Option<(u64, usize)> {
    let off = sku_id.checked_sub(SKU_ID_BASE)?;
    Some((ITEM_ID_BASE + off / MAX_SKUS as u64, (off % MAX_SKUS as u64) as usize))
}
