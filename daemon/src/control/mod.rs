//! The control plane: the running daemon owns the state (sled locks it), so the CLI asks the
//! daemon through a Unix socket instead of opening it.
//!
//! - `protocol.rs`: the requests and the lines of an answer (newline-delimited JSON: one
//!   request line; answer lines of output text, then one `end` line with the outcome);
//! - `server.rs`: the socket (mode 0600, same user only, stale file removed at start, removed
//!   at shutdown) and the framing; what each request does is the daemon's [`Handler`];
//! - `client.rs`: the CLI's side: connect, send one request, copy the answer out;
//! - `lock.rs`: who holds the state's lock, for the one sentence printed when the holder does
//!   not answer on the socket.

mod client;
mod lock;
mod protocol;
mod server;

pub use client::{Client, ClientError};
pub use lock::lock_holder;
pub use protocol::{End, Reply, Request};
pub use server::{Handler, Replies, ReplyWriter, Server, ServerError};
