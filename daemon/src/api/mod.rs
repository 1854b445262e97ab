//! The client for the 1688 gateway (contract: `shared/api-contract.md`).
//!
//! `sign.rs` shapes and signs requests (TOP md5/sha1 and the real platform's `param2`, one
//! seam); `client.rs` sends them through pacing, quota, OAuth and retries; `methods.rs` gives
//! the platform's methods typed signatures; `model.rs` parses what comes back, tolerantly;
//! `error.rs` maps every outcome to a variant that says whether to retry; `shop_ref.rs` reads
//! the ways users name a shop; `oauth.rs` keeps access tokens fresh; `param2/` holds every
//! wire detail of the production platform's protocol.

mod client;
mod error;
mod methods;
mod model;
mod oauth;
pub mod param2;
mod shop_ref;
mod sign;

pub use client::{
    classify, response_key, AccountSettings, ApiSettings, CallRecord, Client, Hooks, Observer,
    DEFAULT_AUTHORIZE_URL, DEFAULT_POSTPONE_WITHIN,
};
pub use error::{ApiError, Retry};
pub use methods::{
    parse_list_page, parse_skus, ItemFilter, SortType, ITEM_FIELDS, MAX_PAGE_SIZE, MAX_SKU_IDS,
};
pub use model::{
    parse_price, parse_wholesale, BadItem, Category, ListPage, PriceError, RawItem, RawSku, ShopInfo, Tier,
};
pub use oauth::{AuthorizeError, MemoryTokenStore, Token, TokenStore};
pub use shop_ref::{MemberId, ShopRef, ShopRefError};
pub use sign::{
    param2_signature, top_md5, top_md5_joined, top_sha1, Credentials, Prepared, Protocol, SignMethod,
};
