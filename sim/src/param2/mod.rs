//! The `param2` face: the production 1688 Open Platform's protocol (contract sections 7 and
//! 8), served over the same catalogues, accounts, tokens, quotas and rate windows as the
//! seed face, with the same faults.
//!
//! - `POST|GET /openapi/param2/1/<namespace>/<api>/<appKey>`: [`gateway`] checks the call
//!   (quota, rate, faults, `_aop_signature` from [`sign`], `_aop_timestamp`, token,
//!   permission) and hands it to an API: [`product_list`] (`alibaba.product.list.get`),
//!   [`seller_offers`] (`querySellerOfferList`), [`offer_detail`] (`queryProductDetail`),
//!   [`follow`] (`alibaba.product.follow`), [`message_list`] (`push.cursor.messageList`, the
//!   pull of kept change messages) or [`oauth`]'s `postponeToken`;
//! - `POST /openapi/http/1/system.oauth2/getToken/<appKey>` and `GET /oauth/authorize`:
//!   [`oauth`];
//! - [`reply`]: the `gw.*` refusals, HTTP 401 and the non-uniform business errors;
//!   [`views`]: items as products and offers; [`dates`], [`ids`]: the platform's date forms
//!   and derived identifiers; [`object_param`]: JSON-object parameters;
//!   [`settings`]: `GET|PUT /_sim/param2` (permissions, who authorizes, page sizes);
//! - [`push`]: signed change messages POSTed to the app's callback URL when offers the app
//!   follows change, retried, and kept for pulling when never acknowledged
//!   (`GET /_sim/param2/pushes`, `PUT /_sim/param2/push`).

pub mod dates;
pub mod follow;
pub mod gateway;
pub mod ids;
pub mod message_list;
pub mod oauth;
pub mod object_param;
pub mod offer_detail;
pub mod product_list;
pub mod push;
pub mod reply;
pub mod seller_offers;
pub mod settings;
pub mod sign;
pub mod views;

pub use gateway::Call;
pub use ids::seller_open_id;
pub use oauth::Authorize;
pub use settings::{Param2Settings, Param2State};
