//! OAuth access tokens for accounts that use them (contract section 6).
//!
//! A token is fetched lazily on the first call, refreshed a few minutes before it expires
//! (with the refresh token while that lives, else with client credentials), and refreshed once
//! when the gateway answers code 27. Tokens go through a [`TokenStore`] so a restart does not
//! re-authorize, and they never reach a log: they are [`Secret`]s.

use super::error::ApiError;
use super::param2;
use crate::clock::now_ms;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Token {
    pub access_token: Secret,
    pub expires_at_ms: i64,
    pub refresh_token: Option<Secret>,
    pub refresh_expires_at_ms: Option<i64>,
    /// Who authorized the app (param2's `resource_owner`, a login), shown by `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_owner: Option<String>,
    /// The member id of whoever authorized the app (param2's `memberId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
}

impl Token {
    /// A token from a grant that did not send a new refresh token: the refresh token it was
    /// made with lives on (param2's refresh grant never sends one; only `postponeToken`
    /// does), and so does the record of who authorized.
    fn carrying(mut self, old: &Token) -> Token {
        if self.refresh_token.is_none() {
            self.refresh_token = old.refresh_token.clone();
            self.refresh_expires_at_ms = old.refresh_expires_at_ms;
        }
        self.resource_owner = self.resource_owner.or_else(|| old.resource_owner.clone());
        self.member_id = self.member_id.or_else(|| old.member_id.clone());
        self
    }
}

/// Where tokens live between restarts.
pub trait TokenStore: Send + Sync {
    fn load(&self, account: &str) -> Option<Token>;
    fn save(&self, account: &str, token: &Token);
}

/// A store that forgets on restart.
#[derive(Default)]
pub struct MemoryTokenStore(Mutex<HashMap<String, Token>>);

impl TokenStore for MemoryTokenStore {
    fn load(&self, account: &str) -> Option<Token> {
        self.0.lock().ok()?.get(account).cloned()
    }
    fn save(&self, account: &str, token: &Token) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(account.to_string(), token.clone());
        }
    }
}

/// The token endpoint's answer; `expires_in` is a number here and a string on the real
/// platform.
#[derive(Deserialize)]
struct Grant {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<String>,
    refresh_token_expires_in: Option<serde_json::Value>,
    /// param2 says when the refresh token ends as a date (`yyyyMMddHHmmssSSS+0800`), not a
    /// lifetime.
    refresh_token_timeout: Option<String>,
    resource_owner: Option<String>,
    #[serde(rename = "memberId")]
    member_id: Option<serde_json::Value>,
    error: Option<String>,
    error_description: Option<String>,
    /// The param2 gateway's own refusal (`gw.*`), which its token endpoint can answer too.
    error_code: Option<String>,
    error_message: Option<String>,
}

fn seconds(v: &Option<serde_json::Value>) -> Option<i64> {
    match v.as_ref()? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// How the token endpoint said no, or why its answer could not be had.
#[derive(Debug)]
enum GrantError {
    /// An OAuth refusal (`invalid_grant`, `invalid_client`…) or a gateway `gw.*` code.
    Refused {
        status: u16,
        error: String,
        description: String,
    },
    Api(ApiError),
}

impl From<GrantError> for ApiError {
    fn from(e: GrantError) -> ApiError {
        match e {
            GrantError::Refused { status, error, description } => {
                ApiError::Auth(format!("{error} (HTTP {status}): {description}"))
            }
            GrantError::Api(e) => e,
        }
    }
}

/// Longest platform description quoted in an error.
const MAX_DESCRIPTION: usize = 200;

/// Reads one answer of the token endpoint, received at `now`.
fn read_grant(status: u16, body: &[u8], now: i64) -> Result<Token, GrantError> {
    let g: Grant = serde_json::from_slice(body).map_err(|e| {
        GrantError::Api(ApiError::Truncated {
            status,
            len: body.len(),
            detail: format!("token endpoint: {e}"),
        })
    })?;
    if let Some(error) = g.error.or(g.error_code) {
        let mut description = g.error_description.or(g.error_message).unwrap_or_default();
        if let Some((i, _)) = description.char_indices().nth(MAX_DESCRIPTION) {
            description.truncate(i);
        }
        return Err(GrantError::Refused { status, error, description });
    }
    let (Some(access), Some(expires_in)) = (g.access_token, seconds(&g.expires_in)) else {
        return Err(GrantError::Api(ApiError::Malformed(format!(
            "token endpoint answered HTTP {status} without a token"
        ))));
    };
    let refresh_expires_at_ms = match g.refresh_token_timeout.as_deref() {
        Some(t) => Some(param2::parse_compact(t).ok_or_else(|| {
            GrantError::Api(ApiError::Malformed(format!(
                "token endpoint: refresh_token_timeout {t:?} is not a date like 20270101120000000+0800"
            )))
        })?),
        None => seconds(&g.refresh_token_expires_in).map(|s| now + s * 1000),
    };
    let member_id = g.member_id.and_then(|v| match v {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    Ok(Token {
        access_token: Secret::new(access),
        expires_at_ms: now + expires_in * 1000,
        refresh_token: g.refresh_token.map(Secret::new),
        refresh_expires_at_ms,
        resource_owner: g.resource_owner,
        member_id,
    })
}

/// Why an authorization code did not become a stored token. Each says in one sentence what
/// to do; none quotes the code, the secret or a token.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error("account {0} does not use OAuth: set oauth = true in its [[accounts]] entry first")]
    NotOAuth(String),
    #[error("the platform refused the code ({0}): it is mistyped, was used already, or is older than its 2 minutes; run shopsync auth again")]
    BadCode(String),
    #[error("the platform refused the app key or secret of account {account} ({description}); check its app_key and app_secret_file")]
    BadClient { account: String, description: String },
    #[error("the token endpoint refused the code: {0}")]
    Refused(String),
    #[error("the token endpoint answered without a refresh token, so the authorization could not outlive the access token; authorize again")]
    NoRefreshToken,
    #[error("could not exchange the code at the token endpoint: {0}")]
    Api(ApiError),
}

/// The param2 call that gives a new refresh token within the old one's last 30 days.
const POSTPONE: param2::ApiRef =
    param2::ApiRef { namespace: "system.oauth2", name: "postponeToken", version: 1 };

pub struct OAuth {
    pub(crate) auth_url: String,
    pub(crate) account: String,
    pub(crate) app_key: String,
    pub(crate) secret: Secret,
    pub(crate) refresh_margin: Duration,
    /// param2 has no `client_credentials` grant: a first token comes only from a seller's
    /// authorization (`shopsync auth`), and only a stored refresh token renews it.
    pub(crate) refresh_only: bool,
    /// The param2 gateway root, for `postponeToken` (param2 only).
    pub(crate) postpone_root: Option<String>,
    /// Postpone the refresh token once it has less than this left.
    pub(crate) postpone_within: Duration,
    pub(crate) store: Arc<dyn TokenStore>,
    pub(crate) current: tokio::sync::Mutex<Option<Token>>,
}

impl OAuth {
    /// A valid access token, fetching or refreshing one if needed.
    pub async fn token(&self, http: &reqwest::Client) -> Result<Secret, ApiError> {
        let mut cur = self.current.lock().await;
        if cur.is_none() {
            *cur = self.store.load(&self.account);
        }
        let now = now_ms();
        let margin = self.refresh_margin.as_millis() as i64;
        if let Some(t) = cur.as_ref().filter(|t| t.expires_at_ms - margin > now) {
            return Ok(t.access_token.clone());
        }
        let refresh = cur.as_ref().and_then(|t| {
            t.refresh_token.clone().filter(|_| t.refresh_expires_at_ms.is_none_or(|e| e > now))
        });
        let mut fresh = None;
        let mut refused = None;
        if let Some(rt) = refresh {
            match self.grant(http, Some(&rt)).await {
                Ok(t) => fresh = Some(t),
                // param2 has nothing to fall back to: the refusal is the answer.
                Err(e) if self.refresh_only => refused = Some(e),
                Err(e) => {
                    tracing::warn!(account = %self.account, error = %ApiError::from(e), "OAuth refresh failed; authorizing anew")
                }
            }
        }
        let mut token = match (fresh, refused) {
            (Some(t), _) => match cur.as_ref() {
                Some(old) => t.carrying(old),
                None => t,
            },
            (None, Some(e)) => return Err(e.into()),
            (None, None) if self.refresh_only => {
                return Err(ApiError::Auth(format!(
                    "account {0} is not authorized (no stored refresh token, or it has ended): the shop owner must authorize the app; run shopsync auth --account {0}",
                    self.account
                )))
            }
            (None, None) => self.grant(http, None).await?,
        };
        tracing::info!(account = %self.account, expires_in_s = (token.expires_at_ms - now) / 1000, "OAuth token obtained");
        if self.due_for_postponing(&token, now) {
            token = self.postpone(http, token).await;
        }
        self.store.save(&self.account, &token);
        let access = token.access_token.clone();
        *cur = Some(token);
        Ok(access)
    }

    /// Whether `token`'s refresh token is within its last `postpone_within` (param2 only:
    /// elsewhere a lapsed refresh token is replaced by a client-credentials grant).
    fn due_for_postponing(&self, token: &Token, now: i64) -> bool {
        let within = self.postpone_within.as_millis() as i64;
        self.postpone_root.is_some()
            && token.refresh_token.is_some()
            && token.refresh_expires_at_ms.is_some_and(|e| e - now < within)
    }

    /// `token` with a postponed refresh token, or unchanged (and a warning) when the platform
    /// says no: the access token still works, and the next refresh tries again.
    async fn postpone(&self, http: &reqwest::Client, token: Token) -> Token {
        match self.postponed(http, &token).await {
            Ok((refresh, ends_ms)) => {
                tracing::info!(
                    account = %self.account,
                    refresh_expires_in_days = (ends_ms - now_ms()) / 86_400_000,
                    "OAuth authorization postponed"
                );
                Token { refresh_token: Some(refresh), refresh_expires_at_ms: Some(ends_ms), ..token }
            }
            Err(e) => {
                tracing::warn!(account = %self.account, error = %e, "could not postpone the OAuth authorization; trying again at the next token refresh");
                token
            }
        }
    }

    /// `system.oauth2/postponeToken`: a signed param2 call with both tokens.
    async fn postponed(&self, http: &reqwest::Client, token: &Token) -> Result<(Secret, i64), ApiError> {
        let (Some(root), Some(rt)) = (&self.postpone_root, &token.refresh_token) else {
            return Err(ApiError::Argument("postponeToken needs param2 and a refresh token".into()));
        };
        let params = vec![("refresh_token".to_string(), rt.expose().to_string())];
        let req = param2::request(
            root,
            &POSTPONE,
            &self.app_key,
            &params,
            &self.secret,
            Some(&token.access_token),
            now_ms(),
        );
        let res = http.post(&req.url).form(&req.form).send().await.map_err(ApiError::from_transport)?;
        let status = res.status().as_u16();
        let body = res.bytes().await.map_err(ApiError::from_transport)?;
        let v = param2::classify("system.oauth2:postponeToken", status, false, &body)?;
        let refresh = v.get("refresh_token").and_then(serde_json::Value::as_str);
        let ends = v
            .get("refresh_token_timeout")
            .and_then(serde_json::Value::as_str)
            .and_then(param2::parse_compact);
        match (refresh, ends) {
            (Some(r), Some(e)) => Ok((Secret::new(r), e)),
            _ => Err(ApiError::Malformed(
                "postponeToken answered without refresh_token and refresh_token_timeout".into(),
            )),
        }
    }

    /// The gateway refused `rejected` (code 27): the next [`OAuth::token`] fetches a new one.
    pub async fn invalidate(&self, rejected: &Secret) {
        let mut cur = self.current.lock().await;
        if let Some(t) = cur.as_mut().filter(|t| &t.access_token == rejected) {
            t.expires_at_ms = 0;
        }
    }

    /// Exchanges an authorization code (param2's `authorization_code` grant) for a token
    /// with a refresh token. Nothing is stored: see [`OAuth::install`].
    pub async fn exchange_code(
        &self,
        http: &reqwest::Client,
        code: &Secret,
        redirect_uri: &str,
    ) -> Result<Token, AuthorizeError> {
        let form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("need_refresh_token", "true"),
            ("client_id", &self.app_key),
            ("client_secret", self.secret.expose()),
            ("redirect_uri", redirect_uri),
            ("code", code.expose()),
        ];
        // A platform that quotes the code back in its refusal must not put it on a terminal.
        let scrub = |s: String| if code.expose().is_empty() { s } else { s.replace(code.expose(), "***") };
        match self.post_form(http, &form).await {
            Ok(t) if t.refresh_token.is_none() => Err(AuthorizeError::NoRefreshToken),
            Ok(t) => Ok(t),
            Err(GrantError::Refused { error, description, status }) => {
                let description = scrub(description);
                Err(match error.as_str() {
                    "invalid_grant" => AuthorizeError::BadCode(format!("invalid_grant: {description}")),
                    "invalid_client" => AuthorizeError::BadClient {
                        account: self.account.clone(),
                        description: format!("invalid_client: {description}"),
                    },
                    _ => AuthorizeError::Refused(format!("{error} (HTTP {status}): {description}")),
                })
            }
            Err(GrantError::Api(e)) => Err(AuthorizeError::Api(e)),
        }
    }

    /// Makes `token` the account's token, here and in the store.
    pub async fn install(&self, token: Token) {
        self.store.save(&self.account, &token);
        *self.current.lock().await = Some(token);
    }

    async fn grant(&self, http: &reqwest::Client, refresh: Option<&Secret>) -> Result<Token, GrantError> {
        let mut form: Vec<(&str, &str)> =
            vec![("client_id", &self.app_key), ("client_secret", self.secret.expose())];
        match refresh {
            Some(rt) => {
                form.push(("grant_type", "refresh_token"));
                form.push(("refresh_token", rt.expose()));
            }
            None => form.push(("grant_type", "client_credentials")),
        }
        self.post_form(http, &form).await
    }

    async fn post_form(&self, http: &reqwest::Client, form: &[(&str, &str)]) -> Result<Token, GrantError> {
        // POST, so the client secret never sits in a URL that an error message might quote.
        let res = http
            .post(&self.auth_url)
            .form(form)
            .send()
            .await
            .map_err(|e| GrantError::Api(ApiError::from_transport(e)))?;
        let status = res.status().as_u16();
        let body = res.bytes().await.map_err(|e| GrantError::Api(ApiError::from_transport(e)))?;
        read_grant(status, &body, now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000_000;

    #[test]
    fn a_param2_grant_reads_its_string_lifetime_and_dated_refresh_timeout() {
        let body = br#"{"access_token":"a-1","expires_in":"36000","refresh_token":"r-1",
            "refresh_token_timeout":"20270101120000000+0800","resource_owner":"shop-login",
            "memberId":"b2b-1234","aliId":"99"}"#;
        let t = read_grant(200, body, NOW).expect("a token");
        assert_eq!(t.expires_at_ms, NOW + 36_000_000);
        assert_eq!(t.refresh_expires_at_ms, param2::parse_compact("20270101120000000+0800"));
        // 2027-01-01 12:00 in Shanghai is 04:00 UTC.
        assert_eq!(t.refresh_expires_at_ms, Some(1_798_776_000_000));
        assert_eq!(t.resource_owner.as_deref(), Some("shop-login"));
        assert_eq!(t.member_id.as_deref(), Some("b2b-1234"));
        // The seed endpoint's lifetime in seconds still works.
        let t = read_grant(
            200,
            br#"{"access_token":"a","expires_in":10,"refresh_token":"r","refresh_token_expires_in":20}"#,
            NOW,
        )
        .expect("a token");
        assert_eq!(t.refresh_expires_at_ms, Some(NOW + 20_000));
    }

    #[test]
    fn refusals_and_bad_dates_are_errors_that_quote_no_token() {
        match read_grant(400, br#"{"error":"invalid_grant","error_description":"code is invalid"}"#, NOW) {
            Err(GrantError::Refused { status: 400, error, description }) => {
                assert_eq!((error.as_str(), description.as_str()), ("invalid_grant", "code is invalid"))
            }
            other => panic!("{other:?}"),
        }
        let bad = br#"{"access_token":"secret-access","expires_in":"36000","refresh_token":"r","refresh_token_timeout":"next year"}"#;
        let e = ApiError::from(read_grant(200, bad, NOW).expect_err("a bad date"));
        assert!(e.to_string().contains("next year") && !e.to_string().contains("secret-access"), "{e}");
    }

    #[test]
    fn a_refresh_without_a_new_refresh_token_keeps_the_old_one() {
        let old = Token {
            access_token: Secret::new("a-1"),
            expires_at_ms: NOW,
            refresh_token: Some(Secret::new("r-1")),
            refresh_expires_at_ms: Some(NOW + 1000),
            resource_owner: Some("login".into()),
            member_id: Some("b2b-1".into()),
        };
        let fresh = read_grant(200, br#"{"access_token":"a-2","expires_in":"36000"}"#, NOW).expect("a token");
        let t = fresh.carrying(&old);
        assert_eq!(t.access_token, Secret::new("a-2"));
        assert_eq!(t.refresh_token, Some(Secret::new("r-1")));
        assert_eq!(t.refresh_expires_at_ms, Some(NOW + 1000));
        assert_eq!(t.member_id.as_deref(), Some("b2b-1"));
    }
}
