//! The receiver of the platform's change messages (`[push]`), and the worker that turns
//! them into targeted re-fetches.
//!
//! The platform POSTs each message to the app's callback URL as a form with `message` (a
//! JSON envelope) and `_aop_signature`, and takes HTTP 200 as the acknowledgement; it tries a
//! few times, then keeps the message for pulling. So:
//!
//! - `receiver.rs` checks the signature with the app secret (anything unsigned or
//!   mis-signed is refused with 401), stores the message under its `msgId` in the state and
//!   flushes, and only then answers 200: an acknowledged message survives a crash the next
//!   instant. A `msgId` stored before is acknowledged and nothing more;
//! - `worker.rs` drains the stored messages: the offers they name are fetched again through
//!   the shop's client (paced and counted like any call) under the shop's pass lock, diffed
//!   and committed as a pass would, and the messages are marked done after the commit;
//! - `pull.rs` fetches what the platform could not deliver (`push.cursor.messageList`), at
//!   every start and every `pull_every`, into the same store;
//! - `follow.rs` follows the offers of shops with `follow = true`, within the watch share of
//!   their account's day: only followed offers produce messages;
//! - `message.rs` reads the envelope leniently; `signature.rs` signs and verifies.
//!
//! Messages carry ids only, and only for offers the app follows, so they make a copy
//! fresher between passes; they never replace the passes.

mod follow;
mod message;
mod pull;
mod receiver;
mod signature;
mod worker;

pub use follow::FollowTarget;
pub use message::{acted_on, read, INVENTORY_TOPIC, PRODUCT_TOPICS};
pub use receiver::{start, PushHandle};
pub use signature::{sign, verify, MESSAGE_FIELD, SIGNATURE_FIELD};

use crate::api::Client;
use crate::config::SyncSettings;
use crate::secret::Secret;
use std::sync::Arc;

/// Where the messages of one member are applied.
pub struct Route {
    /// The store key of the shop's items (its member id, as passes use it).
    pub key: String,
    /// The client the offers are fetched with.
    pub client: Client,
    /// The shop's pass lock: a re-fetch and a pass of one shop never run at once.
    pub lock: Arc<tokio::sync::Mutex<()>>,
    pub sync: SyncSettings,
}

/// What the receiver and the worker read from the running daemon's current config (it
/// changes on reload).
pub trait Directory: Send + Sync + 'static {
    /// The app secret that signs the messages; `None` when `[push]` is gone from the config.
    fn secret(&self) -> Option<Secret>;
    /// Where messages about `member` go; `None` when no configured shop is that member's.
    fn route(&self, member: &str) -> Option<Route>;
    /// The client that pulls undelivered messages (the `[push]` account's); `None` when
    /// `[push]` is gone from the config.
    fn puller(&self) -> Option<Client>;
    /// The shops with `follow = true` whose member id is known.
    fn follows(&self) -> Vec<FollowTarget>;
}
