//! The production platform's OAuth (contract section 8.2): the authorize page, the token
//! endpoint's two grants, and `system.oauth2/postponeToken`.
//!
//! Tokens live in the same book as the seed face's, so `POST /_sim/tokens/expire` and
//! `--token-ttl-s` act on both, and a token says which member it speaks for: the member who
//! "clicked allow", whose shop `alibaba.product.list.get` then lists.
//!
//! Differences from the seed face's endpoint, all as on the platform: `expires_in` is a
//! string; an authorization code lives 2 minutes and works once, for the `redirect_uri` it
//! was issued to; a refresh-token grant gives a new access token but NOT a new refresh
//! token (only `postponeToken` does, and the old refresh token stays valid until it ends).

use super::dates::compact;
use super::gateway::{Caller, Params};
use super::ids::ali_id;
use super::reply::Reply;
use super::settings::AuthCode;
use crate::state::{Sim, Token};
use rand::Rng;
use serde_json::{json, Value};

/// How long a refresh token lives: about half a year.
pub const REFRESH_TTL_S: i64 = 15_552_000;
/// How long an authorization code lives.
pub const CODE_TTL_MS: i64 = 120_000;

fn fresh() -> String {
    let n: u128 = rand::thread_rng().gen();
    format!("{n:032x}")
}

/// What the authorize page does: the redirect to send the browser to, or why not.
pub enum Authorize {
    Redirect(String),
    Refused(String),
}

impl Sim {
    /// The member id that authorizes `app_key`: the configured one, else the first shop's.
    fn authorizing_member(&self, app_key: &str) -> Option<String> {
        let configured = self.param2_state().settings.authorize_member.get(app_key).cloned();
        configured.or_else(|| self.catalogue().shops.first().map(|s| s.member_id.clone()))
    }

    /// `GET /oauth/authorize?client_id&site=1688&redirect_uri&state`: a user who clicks
    /// "allow" at once; the browser goes to `redirect_uri?code=…&state=…`.
    pub fn param2_authorize(&self, p: &Params) -> Authorize {
        let client_id = p.get("client_id").map(String::as_str).unwrap_or("");
        if self.account(client_id).is_none() {
            return Authorize::Refused(format!("unknown client_id {client_id:?}"));
        }
        let Some(redirect_uri) = p.get("redirect_uri").filter(|u| !u.is_empty()) else {
            return Authorize::Refused("redirect_uri is required".into());
        };
        let Some(member_id) = self.authorizing_member(client_id) else {
            return Authorize::Refused("no member to authorize the app".into());
        };
        let code = fresh();
        let auth = AuthCode {
            app_key: client_id.to_string(),
            member_id,
            redirect_uri: redirect_uri.clone(),
            expires_ms: self.now_ms() + CODE_TTL_MS,
        };
        self.param2_state().codes.insert(code.clone(), auth);
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("code", &code);
        if let Some(state) = p.get("state") {
            query.append_pair("state", state);
        }
        let sep = if redirect_uri.contains('?') { '&' } else { '?' };
        Authorize::Redirect(format!("{redirect_uri}{sep}{}", query.finish()))
    }

    /// `POST /openapi/http/1/system.oauth2/getToken/<appKey>`: (HTTP status, JSON body).
    pub fn param2_get_token(&self, path_app_key: &str, p: &Params) -> (u16, Value) {
        let deny = |status: u16, e: &str, d: &str| (status, json!({"error": e, "error_description": d}));
        let client_id = p.get("client_id").map(String::as_str).unwrap_or("");
        let account = match self.account(client_id) {
            Some(a) if client_id == path_app_key => a,
            _ => return deny(401, "invalid_client", "unknown client_id, or not the app key of the URL"),
        };
        if p.get("client_secret") != Some(&account.app_secret) {
            return deny(401, "invalid_client", "client authentication failed");
        }
        let now = self.now_ms();
        match p.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {
                let code = p.get("code").map(String::as_str).unwrap_or("");
                // Taken out whatever happens next: a code works once, even a refused try.
                let issued = self.param2_state().codes.remove(code);
                let auth = match issued {
                    Some(a) if a.app_key == account.app_key && a.expires_ms > now => a,
                    _ => return deny(400, "invalid_grant", "code is invalid, used or expired"),
                };
                if p.get("redirect_uri") != Some(&auth.redirect_uri) {
                    return deny(400, "invalid_grant", "redirect_uri does not match the authorization");
                }
                let refresh = p.get("need_refresh_token").is_some_and(|v| v == "true");
                (200, self.issue(&account.app_key, &auth.member_id, refresh, now))
            }
            Some("refresh_token") => {
                let rt = p.get("refresh_token").map(String::as_str).unwrap_or("");
                let known = self.refresh_tokens().get(rt).cloned();
                match known {
                    Some(Token { app_key, expires_ms, member_id: Some(member) })
                        if app_key == account.app_key && expires_ms > now =>
                    {
                        (200, self.issue(&account.app_key, &member, false, now))
                    }
                    _ => deny(400, "invalid_grant", "refresh_token is invalid or expired"),
                }
            }
            _ => {
                deny(400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
            }
        }
    }

    /// A new access token (and, when asked, a refresh token) for `member_id`.
    fn issue(&self, app_key: &str, member_id: &str, with_refresh: bool, now: i64) -> Value {
        let ttl_s = self.limits().token_ttl_s;
        let access = fresh();
        self.tokens().insert(
            access.clone(),
            Token {
                app_key: app_key.to_string(),
                expires_ms: now + ttl_s as i64 * 1000,
                member_id: Some(member_id.to_string()),
            },
        );
        let mut v = self.owner_fields(member_id);
        v["access_token"] = json!(access);
        v["expires_in"] = json!(ttl_s.to_string());
        if with_refresh {
            let (refresh, timeout) = self.new_refresh_token(app_key, member_id, now);
            v["refresh_token"] = json!(refresh);
            v["refresh_token_timeout"] = json!(timeout);
        }
        v
    }

    fn new_refresh_token(&self, app_key: &str, member_id: &str, now: i64) -> (String, String) {
        let refresh = fresh();
        let expires_ms = now + REFRESH_TTL_S * 1000;
        let token =
            Token { app_key: app_key.to_string(), expires_ms, member_id: Some(member_id.to_string()) };
        self.refresh_tokens().insert(refresh.clone(), token);
        (refresh, compact(expires_ms))
    }

    /// `resource_owner` (the member's login), `memberId`, `aliId`.
    fn owner_fields(&self, member_id: &str) -> Value {
        let login =
            self.catalogue().shop(member_id).map_or_else(|| member_id.to_string(), |s| s.login.clone());
        json!({"resource_owner": login, "memberId": member_id, "aliId": ali_id(member_id)})
    }

    /// `system.oauth2/postponeToken`: a new refresh token for the caller's member. The
    /// platform allows it within a refresh token's last 30 days; the simulator allows it at
    /// any time, so a client is not punished for postponing early.
    pub(crate) fn postpone_token(&self, p: &Params, caller: &Caller, now: i64) -> Reply {
        let Some((access, token)) = caller.token.as_ref() else {
            return Reply::Unauthorized(super::reply::Unauthorized::Missing);
        };
        let Some(rt) = p.get("refresh_token") else {
            return Reply::gw(super::reply::Gw::ParamMissing, "Param refresh_token is missing");
        };
        let known = self.refresh_tokens().get(rt).cloned();
        let valid = known.is_some_and(|t| {
            t.app_key == caller.account.app_key && t.expires_ms > now && t.member_id == token.member_id
        });
        let Some(member) = token.member_id.as_deref().filter(|_| valid) else {
            return Reply::error_code_msg("invalid_grant", "refresh_token is invalid or expired");
        };
        let (refresh, timeout) = self.new_refresh_token(&caller.account.app_key, member, now);
        let mut v = self.owner_fields(member);
        v["access_token"] = json!(access);
        v["refresh_token"] = json!(refresh);
        v["refresh_token_timeout"] = json!(timeout);
        Reply::ok(v)
    }
}
