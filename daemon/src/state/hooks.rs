//! The API client's persistence hooks, kept in sled: daily quota counts, OAuth tokens, and
//! resolved shop URLs.

use super::store::Store;
use crate::api::{Token, TokenStore};
use crate::pacing::QuotaStore;

impl QuotaStore for Store {
    fn load(&self, account: &str, day: i64) -> u64 {
        match self.quota.get(format!("{account}/{day}")) {
            Ok(Some(v)) => v.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0),
            _ => 0,
        }
    }

    fn save(&self, account: &str, day: i64, used: u64) {
        if let Err(e) = self.quota.insert(format!("{account}/{day}"), &used.to_be_bytes()) {
            tracing::warn!(error = %e, "could not store the daily call count");
        }
    }

    fn load_exhausted(&self, account: &str, day: i64) -> bool {
        matches!(self.quota.get(format!("{account}/{day}/exhausted")), Ok(Some(_)))
    }

    fn save_exhausted(&self, account: &str, day: i64) {
        if let Err(e) = self.quota.insert(format!("{account}/{day}/exhausted"), &[1u8]) {
            tracing::warn!(error = %e, "could not store that the daily quota is spent");
        }
    }
}

impl TokenStore for Store {
    fn load(&self, account: &str) -> Option<Token> {
        let v = self.tokens.get(account.as_bytes()).ok()??;
        serde_json::from_slice(&v).ok()
    }

    fn save(&self, account: &str, token: &Token) {
        let Ok(bytes) = serde_json::to_vec(token) else { return };
        if let Err(e) = self.tokens.insert(account.as_bytes(), bytes) {
            tracing::warn!(account, error = %e, "could not store the OAuth token");
        }
    }
}

/// How long a resolved shop URL is trusted.
pub const URL_TTL_MS: i64 = 86_400_000;

impl Store {
    /// The member id a shop URL resolved to, if resolved within the last day.
    pub fn resolved_url(&self, url: &str, now_ms: i64) -> Option<String> {
        let v = self.urls.get(url.as_bytes()).ok()??;
        let (member, at): (String, i64) = serde_json::from_slice(&v).ok()?;
        (now_ms - at < URL_TTL_MS).then_some(member)
    }

    /// The member id a shop URL resolved to, however long ago: a URL's member id does not
    /// change, so this is enough to find a shop's state without calling the platform.
    pub fn known_url(&self, url: &str) -> Option<String> {
        let v = self.urls.get(url.as_bytes()).ok()??;
        let (member, _): (String, i64) = serde_json::from_slice(&v).ok()?;
        Some(member)
    }

    pub fn remember_url(&self, url: &str, member_id: &str, now_ms: i64) {
        if let Ok(bytes) = serde_json::to_vec(&(member_id, now_ms)) {
            let _ = self.urls.insert(url.as_bytes(), bytes);
        }
    }

    /// Calls counted for app key `key` on quota day `day`.
    pub fn calls_on(&self, key: &str, day: i64) -> u64 {
        QuotaStore::load(self, key, day)
    }

    /// Whether the platform said the quota of app key `key` is spent on quota day `day`.
    pub fn exhausted_on(&self, key: &str, day: i64) -> bool {
        QuotaStore::load_exhausted(self, key, day)
    }
}
