//! sim1688: a simulated 1688 Open Platform gateway that shopsync is tested against.
//!
//! It implements the wire contract of `shared/api-contract.md` with every quirk switched on by
//! default: the 40-item page, the 50-page depth cap, the stall of wide saturated windows,
//! millisecond ties, shifting pages, silent stock changes, missing B2B fields, both signature
//! methods, rate limits, daily quotas, expiring OAuth tokens, HTML error pages, truncated
//! bodies and hanging requests. Its catalogues are harsh too: they change on their own while
//! it serves (background churn, silent delistings, SKU-only changes), a few items sit where no
//! query reaches them (a bulk import of over 2,000 items on one millisecond of one category,
//! categories the seller does not list), and some come with the wrong JSON types. A client
//! that passes against it has met every trap.
//!
//! - [`catalogue`]: the shops and their items, generated from a seed, with sorted indexes;
//! - [`gateway`]: the platform methods and error codes; [`sign`]: signature checks;
//! - [`oauth`]: the token endpoint; [`admin`]: the `/_sim/` API for tests and scripts;
//! - [`state`]: shared state and the traffic book; [`server`]: the HTTP routes;
//! - [`param2`]: the production platform's protocol (`/openapi/param2/1/<namespace>/<api>/
//!   <appKey>`, `_aop_signature`, `gw.*` errors, authorization codes) over the same
//!   catalogues, accounts, tokens, quotas and faults;
//! - [`churn`]: the background changes and their log;
//! - [`config`]: limits, fault rates, catalogue quirks and accounts; [`bench`]: the throughput
//!   benchmark.

pub mod admin;
pub mod bench;
pub mod catalogue;
pub mod churn;
pub mod config;
pub mod gateway;
pub mod oauth;
pub mod param2;
pub mod server;
pub mod sign;
pub mod state;
pub mod time;

pub use config::{Account, Faults, KeyKind, Limits, Quirks};
pub use server::{RunningSim, AUTHORIZE_PATH, AUTH_PATH, GATEWAY_PATH, PARAM2_PREFIX, TOKEN_PREFIX};
pub use state::{Sim, SimSpec};
