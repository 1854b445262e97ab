//! Durable state in sled, behind one small API so the engine never touches sled types (sled
//! calls itself beta; if it ever fails the crash suite, only this folder changes).
//!
//! `store.rs` opens the database and holds the item, shop and outbox trees with the one
//! transaction per page; `records.rs` holds what is stored per shop; `hooks.rs` lets the API
//! client persist quota counts, OAuth tokens and resolved shop URLs here; `parked.rs` the items
//! an open full pass listed that still wait for their SKU details; `quarantine.rs`
//! keeps the items the platform sent in a shape that could not be read; `push.rs` keeps the
//! platform's change messages, deduplicated by id, until they are handled; `follow.rs` which
//! offers the app follows so that they produce messages.

mod follow;
mod hooks;
mod parked;
mod push;
mod quarantine;
mod records;
mod sinks;
mod store;

pub use follow::FollowMark;
pub use push::{PushRecord, PushStatus};
pub use quarantine::Quarantined;
pub use records::{
    ChangeRate, Completeness, FullProgress, Gap, PageMark, Parked, PassKind, PassRecord, ShopState, SplitMs,
    StoredItem, WindowState,
};
pub use sinks::DeadLetter;
pub use store::{StateError, Store, Write, SCHEMA_VERSION};
