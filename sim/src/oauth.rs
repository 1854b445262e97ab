//! The OAuth token endpoint (contract section 6): client credentials and refresh tokens.

use crate::state::{Sim, Token};
use rand::Rng;
use serde_json::json;
use std::collections::BTreeMap;

/// (HTTP status, JSON body) for one token request.
pub fn token(sim: &Sim, p: &BTreeMap<String, String>) -> (u16, serde_json::Value) {
    let deny = |e: &str, d: &str| (401, json!({"error": e, "error_description": d}));
    let client_id = p.get("client_id").map(String::as_str).unwrap_or("");
    let Some(account) = sim.account(client_id) else {
        return deny("invalid_client", "unknown client_id");
    };
    if p.get("client_secret") != Some(&account.app_secret) {
        return deny("invalid_client", "client authentication failed");
    }
    let now = sim.now_ms();
    match p.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some("refresh_token") => {
            let rt = p.get("refresh_token").map(String::as_str).unwrap_or("");
            let valid = sim.refresh_tokens().get(rt).cloned();
            match valid {
                Some(t) if t.app_key == account.app_key && t.expires_ms > now => {}
                _ => return deny("invalid_grant", "refresh_token is invalid or expired"),
            }
        }
        _ => return (400, json!({"error": "unsupported_grant_type", "error_description": "grant_type"})),
    }
    let ttl_s = sim.limits().token_ttl_s;
    let refresh_ttl_s: u64 = 15_552_000;
    let fresh = || -> String {
        let n: u128 = rand::thread_rng().gen();
        format!("{n:032x}")
    };
    let (access, refresh) = (fresh(), fresh());
    sim.tokens().insert(
        access.clone(),
        Token { app_key: account.app_key.clone(), expires_ms: now + ttl_s as i64 * 1000, member_id: None },
    );
    sim.refresh_tokens().insert(
        refresh.clone(),
        Token {
            app_key: account.app_key.clone(),
            expires_ms: now + refresh_ttl_s as i64 * 1000,
            member_id: None,
        },
    );
    (
        200,
        json!({"access_token": access, "expires_in": ttl_s, "refresh_token": refresh,
               "refresh_token_expires_in": refresh_ttl_s}),
    )
}

/// Makes every access token issued so far expire now (the admin API's token-expiry fault).
pub fn expire_all(sim: &Sim) -> usize {
    let now = sim.now_ms();
    let mut tokens = sim.tokens();
    for t in tokens.values_mut() {
        t.expires_ms = t.expires_ms.min(now);
    }
    tokens.len()
}
