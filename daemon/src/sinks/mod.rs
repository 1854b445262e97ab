//! Sinks: plugins loaded at run time through the C ABI of `plugins/abi/`, fed from the outbox
//! with at-least-once delivery.
//!
//! `plugin.rs` loads and checks libraries (never unloading them) and calls an instance's
//! functions; `delivery.rs` moves each sink's cursor through the outbox, with backoff,
//! timeouts, the dead-letter queue and outbox clean-up.

mod delivery;
mod plugin;

pub use delivery::{collect_outbox, DeliveryOptions, DrainReport, Health, SinkRunner};
pub use plugin::{load, Call, HostError, Instance, Plugin};
