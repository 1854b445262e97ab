//! `com.alibaba.fenxiao.crossborder:product.search.queryProductDetail`: one offer in full,
//! with its SKUs, its price ranges and its seller's `sellerOpenId`.
//!
//! An unknown offer and a delisted one fail in two different business shapes, both with
//! HTTP 200: `{"success": false, "errorCode", "errorMsg"}` and
//! `{"result": {"success": false, "code", "message"}}`.

use super::gateway::Params;
use super::object_param::{integer, object, string, NotAnInteger};
use super::reply::Reply;
use super::views::offer_detail;
use crate::state::Sim;
use serde_json::json;

impl Sim {
    pub(crate) fn offer_detail(&self, p: &Params) -> Reply {
        let m = match object(p, "offerDetailParam") {
            Ok(m) => m,
            Err(r) => return r,
        };
        if string(&m, "country").is_none() {
            return Reply::flat_failure("ParamMissing", "offerDetailParam.country is required");
        }
        let offer_id = match integer(&m, "offerId") {
            Ok(Some(id)) => id,
            Ok(None) => return Reply::flat_failure("ParamMissing", "offerDetailParam.offerId is required"),
            Err(NotAnInteger) => {
                return Reply::flat_failure("InvalidParameter", "offerDetailParam.offerId must be a number")
            }
        };
        let cat = self.catalogue();
        let found =
            cat.item_shop.get(&offer_id).and_then(|&s| Some((&cat.shops[s], cat.shops[s].get(offer_id)?)));
        match found {
            None => Reply::error_code_msg("OFFER_NOT_FOUND", &format!("offer {offer_id} does not exist")),
            Some((_, item)) if !item.online => {
                Reply::result_failure("OFFER_NOT_ONLINE", &format!("offer {offer_id} is not on sale"))
            }
            Some((shop, item)) => {
                let detail = offer_detail(item, &shop.member_id, self.wrong_types(offer_id));
                Reply::ok(json!({"result": {"success": true, "code": "200", "result": detail}}))
            }
        }
    }
}
