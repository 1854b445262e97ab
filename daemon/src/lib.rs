//! shopsync keeps complete, current copies of 1688 shop catalogues and hands every change to
//! sinks.
//!
//! Data flows one way: plan → fetch → normalize → diff → store + outbox → deliver. The modules
//! follow that flow and the concerns around it:
//!
//! - [`api`]: the gateway client (signing, errors, shop references, OAuth, typed methods);
//! - [`pacing`]: per-account worker slots, adaptive intervals, the per-second guard and the
//!   daily quota;
//! - [`clock`]: millisecond time and the Asia/Shanghai quota day;
//! - [`secret`]: values that never reach logs, metrics or error messages;
//! - [`control`]: the Unix socket through which the CLI asks the running daemon;
//! - [`push`]: the receiver of the platform's change messages and their targeted re-fetches.

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod event;
pub mod memory;
pub mod metrics;
pub mod pacing;
pub mod push;
pub mod schedule;
pub mod secret;
pub mod service;
pub mod sinks;
pub mod state;
pub mod sync;
