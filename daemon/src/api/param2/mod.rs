//! The production 1688 Open Platform's `param2` protocol, client side. Every wire detail of
//! it lives in this folder, so that a difference found in production is one edit here.
//!
//! `wire.rs` addresses and signs requests (the per-API namespace table, URL, system
//! parameters, JSON-valued parameters); `errors.rs` classifies every answer into an
//! [`ApiError`](crate::api::ApiError) with its retry rule; `time.rs` reads and writes the
//! platform's Shanghai dates; `read.rs` and `tiers.rs` read fields tolerantly and turn
//! `startQuantity` thresholds into the seed model's tiers; `products.rs` maps product answers
//! into `RawItem`/`RawSku`/`ListPage`; `calls.rs` shapes the typed calls the sync engine
//! uses; `skus.rs` answers SKU asks from what the list delivered. `fixtures.rs` holds the
//! recorded answers the tests read, each with its source; `tests.rs` drives the client over
//! loopback.

mod calls;
mod errors;
#[cfg(test)]
mod fixtures;
mod products;
mod read;
mod skus;
#[cfg(test)]
mod tests;
mod tiers;
mod time;
mod wire;

pub use calls::{in_window, list_params, Follow, MAX_PAGE_SIZE, MESSAGE_PAGE};
pub use errors::classify;
pub use products::{parse_offer_detail, parse_product_list, parse_seller_offers, OfferDetail};
pub use skus::SkuCache;
pub use time::{format_compact, parse_compact, parse_dashed};
pub(crate) use wire::is_secret_key;
pub use wire::{
    lookup, request, root, signature, token_url, url_path, ApiRef, Request, DEFAULT_ROOT, OFFER_DETAIL,
    PRODUCT_LIST, SELLER_OFFERS,
};
