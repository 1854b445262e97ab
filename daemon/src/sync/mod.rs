//! The sync engine: plan → fetch → normalize → diff → store + outbox.
//!
//! - `plan.rs`: windows of time (and category) and how a saturated one is split;
//! - `normalize.rs`: the platform's item into shopsync's [`crate::event::Item`];
//! - `enrich.rs`: SKU details, batched 20 ids a call across pages;
//! - `engine.rs`: the engine's handle (account client + store), errors and the pass report;
//! - `pass.rs`: one pass of a shop, full or incremental, and its record;
//! - `window.rs`: reading a window page by page, splitting it, and the watermark rule;
//! - `full.rs`: the resumable full pass, its progress kept in the shop's state;
//! - `diff.rs`: the only writer of items and events (content hash against the stored copy);
//! - `verify.rs`: deletes only for items verified gone, and the completeness check;
//! - `sweep.rs`: a seller's shop (`source = "seller"`): sweeps of its offer list, details
//!   only for offers new or changed;
//! - `watch.rs`: single watched items through `alibaba.item.get`;
//! - `targeted.rs`: named items of a shop fetched again (the platform's change messages);
//! - `stats.rs`: counters a progress bar or the metrics read while a pass runs.

mod diff;
mod engine;
mod enrich;
mod full;
pub mod normalize;
mod pass;
mod plan;
mod stats;
mod sweep;
mod targeted;
mod verify;
mod watch;
mod window;

pub use engine::{Engine, PassReport, SyncError};
pub use normalize::{listing, with_skus, NormalizedListing};
pub use plan::{Window, DEPTH_CAP, PLATFORM_EPOCH_MS};
pub use stats::PassStats;
