//! Sinks: plugins loaded at run time through the C ABI of `plugins/abi/`, fed from the outbox
//! with at-least-once delivery.
//!
//! `plugin.rs` loads and checks libraries (never unloading them) and calls an instance's
//! functions; `delivery.rs` moves each sink's cursor through the outbox, with backoff,
//! timeouts and the dead-letter queue; `manager.rs` runs the set of sinks and changes it at
//! run time (add, remove with a kept cursor, reconfigure) and collects the outbox;
//! `secrets.rs` resolves `*_env` / `*_file` keys of a sink's config and scrubs the values
//! from whatever a plugin says.

mod delivery;
mod manager;
mod plugin;
mod secrets;

pub use delivery::{DeliveryOptions, DrainReport, Health, SinkRunner};
pub use manager::{collect_outbox, SinkManager};
pub use plugin::{load, Call, HostError, Instance, Plugin};
pub use secrets::SecretError;
