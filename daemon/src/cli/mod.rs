//! The subcommands, each in its own file; `context.rs` opens what they share (settings,
//! state, one API client per account).

mod context;
mod deliver;
mod demo;
mod events;
mod export;
mod status;
mod sync;

pub use context::Context;
pub use deliver::{deliver, dlq_replay};
pub use demo::demo;
pub use events::events;
pub use export::{export, ExportFormat};
pub use status::status;
pub use sync::sync;
