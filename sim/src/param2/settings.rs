//! The param2 face's settings, `GET|PUT /_sim/param2`: which app may call which API, who
//! "clicks allow" at the authorize page, and the page sizes. Defaults keep every trap on.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The cross-border (distribution) namespace: a solution permission that test keys lack.
pub const CROSS_BORDER: &str = "com.alibaba.fenxiao.crossborder";

/// What `PUT /_sim/param2` sets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Param2Settings {
    /// App key → APIs it has no permission for (`gw.APIACLDecline`), each as
    /// `namespace:api` or a whole `namespace`. By default the seed face's no-permission
    /// account `10000006` may not call `queryProductDetail`, as it may not call
    /// `alibaba.item.get` there.
    pub denied: BTreeMap<String, Vec<String>>,
    /// Whether test keys hold the cross-border solution permission. On the platform a test
    /// key is refused these APIs (`gw.APIACLDecline`); default false.
    pub test_keys_cross_border: bool,
    /// App key → member id of the user who clicks "allow" at `/oauth/authorize` for it.
    /// Keys not listed are authorized by the first shop's member.
    pub authorize_member: BTreeMap<String, String>,
    /// Largest `pageSize` of `alibaba.product.list.get` (the SDK documents 20).
    pub product_list_max_page_size: u32,
    /// Largest `pageSize` in `querySellerOfferList`'s `offerQueryParam`. The platform
    /// documents no maximum; 20 is the safe reading (a client that works with 20 works
    /// with any larger limit).
    pub offer_list_max_page_size: u32,
    /// Pages of `querySellerOfferList` past this come back empty; 0: no cap (the default:
    /// no source documents one, and a list without time filter could not be sliced).
    pub offer_list_depth_cap: u32,
}

fn default_denied() -> BTreeMap<String, Vec<String>> {
    let detail = format!("{CROSS_BORDER}:product.search.queryProductDetail");
    BTreeMap::from([("10000006".to_string(), vec![detail])])
}

impl Default for Param2Settings {
    fn default() -> Self {
        Param2Settings {
            denied: default_denied(),
            test_keys_cross_border: false,
            authorize_member: BTreeMap::new(),
            product_list_max_page_size: 20,
            offer_list_max_page_size: 20,
            offer_list_depth_cap: 0,
        }
    }
}

impl Param2Settings {
    /// Whether `app_key` is refused `namespace:api` by the list of denials.
    pub fn denies(&self, app_key: &str, namespace: &str, api: &str) -> bool {
        self.denied.get(app_key).is_some_and(|list| {
            list.iter().any(|d| match d.split_once(':') {
                Some((ns, a)) => ns == namespace && a == api,
                None => d == namespace,
            })
        })
    }
}

/// An authorization code from the authorize page: lives 2 minutes, used once.
#[derive(Debug, Clone)]
pub struct AuthCode {
    pub app_key: String,
    pub member_id: String,
    pub redirect_uri: String,
    pub expires_ms: i64,
}

/// The face's mutable state, beside the shared tokens.
#[derive(Debug, Default)]
pub struct Param2State {
    pub settings: Param2Settings,
    pub codes: HashMap<String, AuthCode>,
}
