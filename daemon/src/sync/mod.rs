//! The sync engine: plan → fetch → normalize → diff → store + outbox.
//!
//! - `plan.rs`: windows of time (and category) and how a saturated one is split;
//! - `normalize.rs`: the platform's item into shopsync's [`crate::event::Item`];
//! - `enrich.rs`: SKU details, batched 20 ids a call across pages;
//! - `pass.rs`: full and incremental passes over a shop's windows, one transaction per page;
//! - `verify.rs`: deletes only for items verified gone, and the completeness check;
//! - `watch.rs`: single watched items through `alibaba.item.get`;
//! - `stats.rs`: counters a progress bar or the metrics read while a pass runs.

mod enrich;
pub mod normalize;
mod pass;
mod plan;
mod stats;
mod verify;
mod watch;

pub use normalize::{listing, with_skus, NormalizedListing};
pub use pass::{Engine, PassReport, SyncError};
pub use plan::{Window, DEPTH_CAP, PLATFORM_EPOCH_MS};
pub use stats::PassStats;
