//! `com.alibaba.product:alibaba.product.follow`: the app follows one offer, of any shop, on
//! sale or not. Source: bububa/go1688 `product/follow.go`: the parameter `productId` (a
//! number), the answer `{"code": 0, "message": …}` where 0 is success.
//!
//! Following is what makes an offer's changes reach the app as change messages
//! ([`super::push`]). Following again answers the same. A `productId` that is missing is
//! refused by the gateway (`gw.ParamMissing`), one that is not a number too
//! (`gw.ParamInvalid`); an offer no shop has is the business error
//! `{"code": 1, "message": "product not exist"}` with HTTP 200.

use super::gateway::Params;
use super::reply::{Gw, Reply};
use crate::state::Sim;
use serde_json::json;

/// The `productId` parameter, or the gateway's refusal of it.
fn product_id(p: &Params) -> Result<u64, Reply> {
    match p.get("productId").map(|v| v.trim()) {
        None | Some("") => Err(Reply::gw(Gw::ParamMissing, "Param productId is missing")),
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| Reply::gw(Gw::ParamInvalid, format!("Param productId must be a number, not {v:?}"))),
    }
}

impl Sim {
    /// Whether any shop has the offer, on sale or not.
    fn offer_exists(&self, offer_id: u64) -> bool {
        let cat = self.catalogue();
        cat.item_shop.get(&offer_id).is_some_and(|&s| cat.shops[s].get(offer_id).is_some())
    }

    pub(crate) fn follow(&self, p: &Params, app_key: &str) -> Reply {
        let offer_id = match product_id(p) {
            Ok(id) => id,
            Err(r) => return r,
        };
        if !self.offer_exists(offer_id) {
            return Reply::numeric_code(1, "product not exist");
        }
        self.push_book().follow(app_key, offer_id);
        Reply::ok(json!({"code": 0, "message": "success"}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimSpec;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn following_records_the_offer_once_and_refuses_bad_ids() {
        let sim = Sim::new(SimSpec { items: 10, ..Default::default() });
        let id = sim.catalogue().shops[0].online_id_at(0).unwrap();
        let p = params(&[("productId", &id.to_string())]);
        for _ in 0..2 {
            let r = sim.follow(&p, "10000003");
            assert_eq!(r.outcome(), "ok");
            let Reply::Json { body, .. } = r else { panic!("a JSON answer") };
            assert_eq!(body, json!({"code": 0, "message": "success"}));
        }
        assert!(sim.push_book().follows("10000003", id));
        assert!(!sim.push_book().follows("10000001", id), "following is per app");
        assert_eq!(sim.push_report().followed, 1, "following again is the same");

        assert_eq!(sim.follow(&params(&[]), "10000003").outcome(), "gw.ParamMissing");
        assert_eq!(sim.follow(&params(&[("productId", "")]), "10000003").outcome(), "gw.ParamMissing");
        assert_eq!(sim.follow(&params(&[("productId", "x1")]), "10000003").outcome(), "gw.ParamInvalid");
        assert_eq!(sim.follow(&params(&[("productId", "-1")]), "10000003").outcome(), "gw.ParamInvalid");
        let r = sim.follow(&params(&[("productId", "1")]), "10000003");
        assert_eq!(r.outcome(), "business:1");
        let Reply::Json { body, .. } = r else { panic!("a JSON answer") };
        assert_eq!(body, json!({"code": 1, "message": "product not exist"}));
    }

    #[test]
    fn an_offer_off_sale_can_be_followed() {
        let sim = Sim::new(SimSpec { items: 10, ..Default::default() });
        let member = sim.catalogue().shops[0].member_id.clone();
        let id = sim.catalogue().shops[0].online_id_at(0).unwrap();
        let m = crate::admin::Mutation {
            op: crate::admin::MutationOp::Delist,
            count: None,
            item_ids: Some(vec![id.to_string()]),
        };
        sim.mutate(&member, &m).unwrap();
        assert_eq!(sim.follow(&params(&[("productId", &id.to_string())]), "10000003").outcome(), "ok");
    }
}
