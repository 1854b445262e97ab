//! OAuth access tokens for accounts that use them (contract section 6).
//!
//! A token is fetched lazily on the first call, refreshed a few minutes before it expires
//! (with the refresh token while that lives, else with client credentials), and refreshed once
//! when the gateway answers code 27. Tokens go through a [`TokenStore`] so a restart does not
//! re-authorize, and they never reach a log: they are [`Secret`]s.

use super::error::ApiError;
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

pub struct OAuth {
    pub(crate) auth_url: String,
    pub(crate) account: String,
    pub(crate) app_key: String,
    pub(crate) secret: Secret,
    pub(crate) refresh_margin: Duration,
    /// param2 has no `client_credentials` grant: a first token comes only from a seller's
    /// authorization (not implemented yet), and only a stored refresh token renews it.
    pub(crate) refresh_only: bool,
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
                    tracing::warn!(account = %self.account, error = %e, "OAuth refresh failed; authorizing anew")
                }
            }
        }
        let token = match (fresh, refused) {
            (Some(t), _) => t,
            (None, Some(e)) => return Err(e),
            (None, None) if self.refresh_only => {
                return Err(ApiError::Auth(format!(
                    "account {}: no usable refresh token; param2 issues tokens only after the shop owner authorizes the app",
                    self.account
                )))
            }
            (None, None) => self.grant(http, None).await?,
        };
        tracing::info!(account = %self.account, expires_in_s = (token.expires_at_ms - now) / 1000, "OAuth token obtained");
        self.store.save(&self.account, &token);
        let access = token.access_token.clone();
        *cur = Some(token);
        Ok(access)
    }

    /// The gateway refused `rejected` (code 27): the next [`OAuth::token`] fetches a new one.
    pub async fn invalidate(&self, rejected: &Secret) {
        let mut cur = self.current.lock().await;
        if let Some(t) = cur.as_mut().filter(|t| &t.access_token == rejected) {
            t.expires_at_ms = 0;
        }
    }

    async fn grant(&self, http: &reqwest::Client, refresh: Option<&Secret>) -> Result<Token, ApiError> {
        let mut form: Vec<(&str, &str)> =
            vec![("client_id", &self.app_key), ("client_secret", self.secret.expose())];
        match refresh {
            Some(rt) => {
                form.push(("grant_type", "refresh_token"));
                form.push(("refresh_token", rt.expose()));
            }
            None => form.push(("grant_type", "client_credentials")),
        }
        // POST, so the client secret never sits in a URL that an error message might quote.
        let res = http.post(&self.auth_url).form(&form).send().await.map_err(ApiError::from_transport)?;
        let status = res.status().as_u16();
        let body = res.bytes().await.map_err(ApiError::from_transport)?;
        let g: Grant = serde_json::from_slice(&body).map_err(|e| ApiError::Truncated {
            status,
            len: body.len(),
            detail: format!("token endpoint: {e}"),
        })?;
        if let Some(err) = g.error.or(g.error_code) {
            return Err(ApiError::Auth(format!(
                "{err} (HTTP {status}): {}",
                g.error_description.or(g.error_message).unwrap_or_default()
            )));
        }
        let now = now_ms();
        let (Some(access), Some(expires_in)) = (g.access_token, seconds(&g.expires_in)) else {
            return Err(ApiError::Malformed(format!(
                "token endpoint answered HTTP {status} without a token"
            )));
        };
        Ok(Token {
            access_token: Secret::new(access),
            expires_at_ms: now + expires_in * 1000,
            refresh_token: g.refresh_token.map(Secret::new),
            refresh_expires_at_ms: seconds(&g.refresh_token_expires_in).map(|s| now + s * 1000),
        })
    }
}
