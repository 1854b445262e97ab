//! Pacing per account: how many calls may be in flight, how long each worker waits between
//! calls, a hard per-second guard, and the daily quota.
//!
//! `pacer.rs` holds the worker slots and intervals, `quota.rs` the daily call budget.

mod pacer;
mod quota;

pub use pacer::{Outcome, Pacer, PacingSettings, Permit};
pub use quota::{MemoryQuotaStore, Quota, QuotaStore};
