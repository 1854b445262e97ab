//! One account's connection to the gateway: signing, pacing, quota, OAuth and retries.
//!
//! [`Client::call`] is the only place a request leaves the process. It counts the call
//! against the quota, waits for a pacing slot, signs, sends, classifies the answer, and
//! retries what the contract calls transient (busy, throttled, HTML pages, cut-off bodies,
//! timeouts) up to `max_attempts`, never what it does not.

use super::error::{ApiError, Retry};
use super::oauth::{AuthorizeError, MemoryTokenStore, OAuth, Token, TokenStore};
use super::param2;
use super::sign::{Credentials, Protocol, SignMethod};
use crate::clock::now_ms;
use crate::pacing::{MemoryQuotaStore, Outcome, Pacer, PacingSettings, Quota, QuotaStore};
use crate::secret::Secret;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Gateway settings shared by all accounts (validated config).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSettings {
    /// The seed gateway's URL (contract section 1); with [`Protocol::Param2`], the gateway
    /// root that `param2/...` paths continue (`https://gw.open.1688.com/openapi/`).
    pub base_url: String,
    /// The OAuth token endpoint (contract section 6). param2 derives its own from the root
    /// and the app key (`param2::token_url`) and ignores this.
    pub auth_url: String,
    pub protocol: Protocol,
    pub connect_timeout: Duration,
    /// How long a whole response may take; a hanging request fails after this.
    pub read_timeout: Duration,
    /// Tries per call, the first included, for transient failures.
    pub max_attempts: u32,
    /// Refresh an OAuth token this long before it expires.
    pub token_refresh_margin: Duration,
    /// param2: the page where a shop owner authorizes the app (`shopsync auth` prints it
    /// with the app key, redirect URI and state added).
    pub authorize_url: String,
    /// param2: postpone a refresh token (`system.oauth2/postponeToken`) once it has less
    /// than this left; the platform allows it in the last 30 days.
    pub postpone_within: Duration,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            base_url: "https://gw.open.1688.com/openapi/param2/2/portals.open/api/".into(),
            auth_url: "https://open.1688.com/auth/token".into(),
            protocol: Protocol::Top(SignMethod::Md5),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(20),
            max_attempts: 8,
            token_refresh_margin: Duration::from_secs(300),
            authorize_url: DEFAULT_AUTHORIZE_URL.into(),
            postpone_within: DEFAULT_POSTPONE_WITHIN,
        }
    }
}

/// The production platform's authorization page (contract 8.2).
pub const DEFAULT_AUTHORIZE_URL: &str = "https://auth.1688.com/oauth/authorize";
/// The platform postpones a refresh token only within its last 30 days.
pub const DEFAULT_POSTPONE_WITHIN: Duration = Duration::from_secs(30 * 86_400);

/// One account (validated config).
#[derive(Debug, Clone, PartialEq)]
pub struct AccountSettings {
    /// The name used in logs and metrics (never the key or secret).
    pub name: String,
    pub app_key: String,
    pub app_secret: Secret,
    pub daily_quota: u64,
    /// Calls carry an OAuth access token.
    pub oauth: bool,
    /// An HTTP(S) proxy for this account's egress, e.g. `http://user:pass@10.0.0.2:3128`
    /// (teams pin each key to its own IP); the URL may hold credentials, so it is a secret.
    pub proxy: Option<Secret>,
    pub pacing: PacingSettings,
}

/// What one attempt looked like, for metrics and tests.
#[derive(Debug, Clone)]
pub struct CallRecord<'a> {
    pub account: &'a str,
    pub method: &'a str,
    /// `"ok"` or an [`ApiError::kind`].
    pub outcome: &'static str,
    pub latency: Duration,
    pub attempt: u32,
}

pub type Observer = Arc<dyn Fn(&CallRecord<'_>) + Send + Sync>;

/// Hooks through which the client's state outlives the process.
#[derive(Clone)]
pub struct Hooks {
    pub quota: Arc<dyn QuotaStore>,
    pub tokens: Arc<dyn TokenStore>,
    pub observer: Option<Observer>,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            quota: Arc::new(MemoryQuotaStore::default()),
            tokens: Arc::new(MemoryTokenStore::default()),
            observer: None,
        }
    }
}

struct Inner {
    http: reqwest::Client,
    api: ApiSettings,
    account: AccountSettings,
    /// Shared with the client a reload builds in this one's place, while its pacing is
    /// unchanged (see [`Client::rebuilt`]).
    pacer: Arc<Pacer>,
    quota: Arc<Quota>,
    oauth: Option<OAuth>,
    observer: Option<Observer>,
    /// param2 delivers SKU details with the list; `sku_get` answers from here.
    param2_skus: param2::SkuCache,
}

/// A client for one account. Cheap to clone; clones share pacing and quota.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    pub fn new(api: ApiSettings, account: AccountSettings, hooks: Hooks) -> Result<Client, ApiError> {
        Client::build(api, account, hooks, None, None)
    }

    /// A client for changed settings (a config reload) that carries on this one's state
    /// where it still applies: the pacer while the account's pacing is the same, the quota
    /// count while the app key, daily quota and quota day are. The quota must be the same
    /// object, not a reload of the count from the store: a pass still running on the old
    /// client spends on it too, and two counts of one key would overwrite each other.
    pub fn rebuilt(
        &self,
        api: ApiSettings,
        account: AccountSettings,
        hooks: Hooks,
    ) -> Result<Client, ApiError> {
        let old = &self.inner.account;
        let pacer = (old.pacing == account.pacing).then(|| self.inner.pacer.clone());
        let quota = (old.app_key == account.app_key
            && old.daily_quota == account.daily_quota
            && old.pacing.quota_day == account.pacing.quota_day)
            .then(|| self.inner.quota.clone());
        Client::build(api, account, hooks, pacer, quota)
    }

    /// The gateway settings this client was built with.
    pub fn api(&self) -> &ApiSettings {
        &self.inner.api
    }

    fn build(
        api: ApiSettings,
        account: AccountSettings,
        hooks: Hooks,
        pacer: Option<Arc<Pacer>>,
        quota: Option<Arc<Quota>>,
    ) -> Result<Client, ApiError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(api.connect_timeout)
            .timeout(api.read_timeout)
            .pool_max_idle_per_host(account.pacing.concurrency.max(1))
            .user_agent(concat!("shopsync/", env!("CARGO_PKG_VERSION")));
        if let Some(proxy) = &account.proxy {
            // The proxy URL may hold credentials: say which account, never the URL.
            let p = reqwest::Proxy::all(proxy.expose()).map_err(|_| {
                ApiError::Argument(format!("account {}: proxy is not a valid URL", account.name))
            })?;
            builder = builder.proxy(p);
        } else {
            builder = builder.no_proxy();
        }
        let http =
            builder.build().map_err(|e| ApiError::Argument(format!("HTTP client: {}", e.without_url())))?;
        let param2 = api.protocol == Protocol::Param2;
        let oauth = account.oauth.then(|| OAuth {
            auth_url: if param2 {
                param2::token_url(&api.base_url, &account.app_key)
            } else {
                api.auth_url.clone()
            },
            refresh_only: param2,
            account: account.name.clone(),
            app_key: account.app_key.clone(),
            secret: account.app_secret.clone(),
            refresh_margin: api.token_refresh_margin,
            postpone_root: param2.then(|| api.base_url.clone()),
            postpone_within: api.postpone_within,
            store: hooks.tokens.clone(),
            current: tokio::sync::Mutex::new(None),
        });
        Ok(Client {
            inner: Arc::new(Inner {
                quota: quota.unwrap_or_else(|| {
                    Arc::new(Quota::new(
                        account.app_key.clone(),
                        account.daily_quota,
                        account.pacing.quota_day,
                        hooks.quota,
                    ))
                }),
                pacer: pacer.unwrap_or_else(|| Arc::new(Pacer::new(account.pacing.clone()))),
                http,
                api,
                account,
                oauth,
                observer: hooks.observer,
                param2_skus: param2::SkuCache::default(),
            }),
        })
    }

    pub fn account(&self) -> &str {
        &self.inner.account.name
    }

    /// The settings this client was built from (a reload keeps a client whose account is
    /// unchanged, with its pacing state).
    pub fn settings(&self) -> &AccountSettings {
        &self.inner.account
    }

    /// Exchanges an authorization code (`shopsync auth`) for a token; nothing is stored
    /// until [`Client::install_token`].
    pub async fn authorize_code(&self, code: &Secret, redirect_uri: &str) -> Result<Token, AuthorizeError> {
        let inner = &self.inner;
        let Some(o) = &inner.oauth else { return Err(AuthorizeError::NotOAuth(inner.account.name.clone())) };
        o.exchange_code(&inner.http, code, redirect_uri).await
    }

    /// Makes `token` this account's token, in use at once and stored for restarts.
    pub async fn install_token(&self, token: Token) -> Result<(), AuthorizeError> {
        let inner = &self.inner;
        let Some(o) = &inner.oauth else { return Err(AuthorizeError::NotOAuth(inner.account.name.clone())) };
        o.install(token).await;
        Ok(())
    }

    pub fn pacer(&self) -> &Pacer {
        &self.inner.pacer
    }

    pub fn quota(&self) -> &Quota {
        &self.inner.quota
    }

    /// Whether this client speaks the production platform's `param2`.
    pub fn is_param2(&self) -> bool {
        self.inner.api.protocol == Protocol::Param2
    }

    /// The largest `page_size` [`Client::items_list`] accepts under this client's protocol:
    /// 40 on the seed gateway, 20 on param2 (where the platform silently cuts larger pages to
    /// 20, so the client refuses them rather than lose items).
    pub fn max_page_size(&self) -> u32 {
        if self.is_param2() {
            param2::MAX_PAGE_SIZE
        } else {
            super::methods::MAX_PAGE_SIZE
        }
    }

    pub(crate) fn param2_skus(&self) -> &param2::SkuCache {
        &self.inner.param2_skus
    }

    /// Calls `method` and returns the inside of its `<name>_response`, retrying what is
    /// transient.
    pub async fn call(&self, method: &str, params: &[(String, String)]) -> Result<Value, ApiError> {
        let inner = &*self.inner;
        if !inner.api.protocol.supports(method) {
            return Err(ApiError::Unsupported {
                call: method.to_string(),
                protocol: inner.api.protocol.name(),
            });
        }
        let mut refreshed_token = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.attempt(method, params, attempt).await;
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            match err.retry() {
                Retry::AfterFailure | Retry::AfterThrottle if attempt < inner.api.max_attempts => {
                    tracing::debug!(account = %inner.account.name, method, attempt, error = %err, "retrying");
                }
                Retry::RefreshToken if !refreshed_token => {
                    refreshed_token = true;
                    tracing::info!(account = %inner.account.name, method, "access token refused; refreshing once");
                }
                Retry::NextQuotaDay => {
                    let until_ms = inner.quota.mark_exhausted(now_ms());
                    return Err(ApiError::QuotaExhausted { account: inner.account.name.clone(), until_ms });
                }
                _ => return Err(err),
            }
        }
    }

    async fn attempt(
        &self,
        method: &str,
        params: &[(String, String)],
        attempt: u32,
    ) -> Result<Value, ApiError> {
        let inner = &*self.inner;
        // The permit first, then the quota: the wait for a permit can cross the quota day's
        // reset, and a call counted on the day before it reached the platform would be
        // counted there on the next day, where we did not count it (a call refused with code
        // 15 at a reset, seen under load with scaled quota days).
        let permit = inner.pacer.acquire().await;
        let spent_ms = now_ms();
        if let Err(until_ms) = inner.quota.spend(spent_ms) {
            // No call was made (the pass stops on this error): release the slot as after a success.
            permit.done(Outcome::Success);
            return Err(ApiError::QuotaExhausted { account: inner.account.name.clone(), until_ms });
        }
        let started = Instant::now();
        let token = match &inner.oauth {
            Some(o) => match o.token(&inner.http).await {
                Ok(t) => Some(t),
                Err(e) => {
                    permit.done(Outcome::Failure);
                    return Err(e);
                }
            },
            None => None,
        };
        let creds = Credentials {
            app_key: &inner.account.app_key,
            secret: &inner.account.app_secret,
            access_token: token.as_ref(),
        };
        let prep = match inner.api.protocol.prepare(&inner.api.base_url, method, params, &creds, now_ms()) {
            Ok(p) => p,
            Err(e) => {
                permit.done(Outcome::Success);
                return Err(e);
            }
        };
        let result = match inner.http.post(&prep.url).form(&prep.form).send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                let html = res
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("html"));
                match res.bytes().await {
                    Ok(body) => match inner.api.protocol {
                        Protocol::Top(_) => classify(method, status, html, &body),
                        Protocol::Param2 => param2::classify(method, status, html, &body),
                    },
                    Err(e) => Err(ApiError::from_transport(e)),
                }
            }
            Err(e) => Err(ApiError::from_transport(e)),
        };
        inner.quota.settle(spent_ms, now_ms());
        let outcome = match &result {
            Ok(_) => Outcome::Success,
            Err(e) => match e.retry() {
                Retry::AfterFailure => Outcome::Failure,
                Retry::AfterThrottle => Outcome::Throttled,
                _ => Outcome::Success,
            },
        };
        permit.done(outcome);
        if let (Err(ApiError::Token { .. }), Some(o), Some(t)) = (&result, &inner.oauth, &token) {
            o.invalidate(t).await;
        }
        if let Some(obs) = &inner.observer {
            obs(&CallRecord {
                account: &inner.account.name,
                method,
                outcome: result.as_ref().map_or_else(|e| e.kind(), |_| "ok"),
                latency: started.elapsed(),
                attempt,
            });
        }
        result
    }
}

/// `alibaba.seller.items.list.get` answers under `seller_items_list_get_response`.
pub fn response_key(method: &str) -> String {
    format!("{}_response", method.trim_start_matches("alibaba.").replace('.', "_"))
}

/// Turns one HTTP answer into the response's inner value or the matching error.
pub fn classify(method: &str, status: u16, html: bool, body: &[u8]) -> Result<Value, ApiError> {
    if html || body.trim_ascii_start().starts_with(b"<") {
        return Err(ApiError::Html { status });
    }
    let mut v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) if status == 429 => return Err(ApiError::Throttled),
        Err(e) => return Err(ApiError::Truncated { status, len: body.len(), detail: e.to_string() }),
    };
    if let Some(er) = v.get("error_response") {
        let code = match er.get("code") {
            Some(Value::Number(n)) => n.as_i64().unwrap_or(-1),
            Some(Value::String(s)) => s.trim().parse().unwrap_or(-1),
            _ => -1,
        };
        let text = |k: &str| er.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        return Err(ApiError::from_platform(status, code, text("msg"), text("sub_code")));
    }
    if status == 429 {
        return Err(ApiError::Throttled);
    }
    let key = response_key(method);
    match v.as_object_mut().and_then(|o| o.remove(&key)) {
        Some(inner) => Ok(inner),
        None if status >= 500 => {
            Err(ApiError::Other { status, code: 0, msg: "HTTP error without a body".into() })
        }
        None => Err(ApiError::Malformed(format!("{method}: no {key} in the response"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "alibaba.seller.items.list.get";

    #[test]
    fn classifies_every_kind_of_answer() {
        let ok = classify(
            M,
            200,
            false,
            br#"{"seller_items_list_get_response": {"total_results": 0, "items": {}}}"#,
        );
        assert_eq!(ok.ok().and_then(|v| v.get("total_results").cloned()), Some(Value::from(0)));
        let err = |status, body: &[u8]| classify(M, status, false, body).err().map(|e| e.kind());
        assert_eq!(
            err(200, br#"{"error_response": {"code": 15, "sub_code": "isv.quota-exceeded"}}"#),
            Some("quota")
        );
        assert_eq!(err(429, br#"{"error_response": {"code": 7}}"#), Some("throttled"));
        assert_eq!(err(429, b""), Some("throttled"));
        assert_eq!(err(502, b"<html><body>502</body></html>"), Some("html"));
        assert_eq!(err(200, br#"{"seller_items_list_get_response": {"total_res"#), Some("truncated"));
        assert_eq!(err(200, br#"{"something_else": 1}"#), Some("malformed"));
        assert_eq!(
            err(
                200,
                br#"{"error_response": {"code": "1001", "sub_code": "isv.invalid-parameter:pageSize"}}"#
            ),
            Some("invalid_param")
        );
    }
}
