//! The subcommands, each in its own file; `context.rs` opens what they share (settings,
//! state, one API client per account); `route.rs` decides whether a command goes to the
//! running daemon (through its control socket) or opens the state itself.

mod auth;
mod context;
mod deliver;
mod demo;
mod events;
mod export;
mod reset;
mod route;
mod status;
mod sync;

pub use auth::{auth, AuthArgs};
pub use context::Context;
pub use deliver::{deliver, dlq_replay, replay_with};
pub use demo::demo;
pub use events::events;
pub use export::{export, ExportFormat};
pub use reset::state_reset;
pub use route::{ask, target, Target};
pub use status::{status, StatusInput};
pub use sync::sync;
