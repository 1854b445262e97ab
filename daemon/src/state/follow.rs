//! Which offers the app follows on the platform (`alibaba.product.follow`), per shop, and how
//! many follow calls each app key made in its current quota day.
//!
//! Only followed offers produce change messages, so a shop with `follow = true` has its
//! stored offers followed a few at a time; the marks keep an offer from being followed twice,
//! across restarts. The day's count keeps the follower inside its share of the quota after a
//! restart too.

use super::store::{item_key, StateError, Store};

/// The day's count of an app key lives under this prefix (`/` cannot start a shop key).
fn day_key(app_key: &str) -> Vec<u8> {
    format!("/day/{app_key}").into_bytes()
}

/// A mark's value: when the offer was followed, or that the platform refused it (it is not
/// asked again either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowMark {
    Followed { at_ms: i64 },
    Refused { at_ms: i64 },
}

impl FollowMark {
    fn encode(self) -> Vec<u8> {
        match self {
            FollowMark::Followed { at_ms } => format!("f{at_ms}").into_bytes(),
            FollowMark::Refused { at_ms } => format!("r{at_ms}").into_bytes(),
        }
    }

    fn decode(v: &[u8]) -> Option<FollowMark> {
        let (kind, at) = v.split_first()?;
        let at_ms = std::str::from_utf8(at).ok()?.parse().ok()?;
        match kind {
            b'f' => Some(FollowMark::Followed { at_ms }),
            b'r' => Some(FollowMark::Refused { at_ms }),
            _ => None,
        }
    }
}

impl Store {
    /// Up to `limit` ids of a shop's stored items to follow, in key order: those without a
    /// follow mark, and those the platform refused before `retry_refused_before`.
    pub fn unfollowed_items(
        &self,
        shop: &str,
        limit: usize,
        retry_refused_before: i64,
    ) -> Result<Vec<String>, StateError> {
        let prefix = format!("{shop}/");
        let mut out = Vec::new();
        for k in self.items.scan_prefix(prefix.as_bytes()).keys() {
            let k = k?;
            let due = match self.followed.get(&k)?.and_then(|v| FollowMark::decode(&v)) {
                None => true,
                Some(FollowMark::Refused { at_ms }) => at_ms < retry_refused_before,
                Some(FollowMark::Followed { .. }) => false,
            };
            if due {
                out.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    pub fn follow_mark(&self, shop: &str, offer: &str) -> Result<Option<FollowMark>, StateError> {
        Ok(self.followed.get(item_key(shop, offer))?.and_then(|v| FollowMark::decode(&v)))
    }

    /// Records the platform's answer about one offer.
    pub fn mark_followed(&self, shop: &str, offer: &str, mark: FollowMark) -> Result<(), StateError> {
        self.followed.insert(item_key(shop, offer), mark.encode())?;
        Ok(())
    }

    /// Counts `n` follow calls of `app_key` in quota day `day` (answered or failed: each
    /// spent quota).
    pub fn count_follow_calls(&self, app_key: &str, day: i64, n: u64) -> Result<(), StateError> {
        let used = self.follow_calls(app_key, day)?;
        self.followed.insert(day_key(app_key), format!("{day}:{}", used + n).into_bytes())?;
        Ok(())
    }

    /// Follow calls `app_key` made in quota day `day`.
    pub fn follow_calls(&self, app_key: &str, day: i64) -> Result<u64, StateError> {
        let Some(v) = self.followed.get(day_key(app_key))? else { return Ok(0) };
        let text = String::from_utf8_lossy(&v);
        let (d, n) = text.split_once(':').unwrap_or(("", ""));
        Ok(if d.parse::<i64>().ok() == Some(day) { n.parse().unwrap_or(0) } else { 0 })
    }

    /// Offers of a shop followed so far (refusals not counted).
    pub fn followed_count(&self, shop: &str) -> Result<u64, StateError> {
        let mut n = 0;
        for v in self.followed.scan_prefix(format!("{shop}/").as_bytes()).values() {
            n += u64::from(matches!(FollowMark::decode(&v?), Some(FollowMark::Followed { .. })));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_and_day_counts_survive_and_days_restart_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(store.follow_calls("k", 1000).unwrap(), 0);
        store.mark_followed("s", "1", FollowMark::Followed { at_ms: 5 }).unwrap();
        store.mark_followed("s", "2", FollowMark::Refused { at_ms: 6 }).unwrap();
        store.count_follow_calls("k", 1000, 2).unwrap();
        assert_eq!(store.follow_mark("s", "1").unwrap(), Some(FollowMark::Followed { at_ms: 5 }));
        assert_eq!(store.follow_mark("s", "2").unwrap(), Some(FollowMark::Refused { at_ms: 6 }));
        assert_eq!(store.follow_mark("s", "3").unwrap(), None);
        assert_eq!(store.follow_calls("k", 1000).unwrap(), 2);
        assert_eq!(store.follow_calls("k", 1001).unwrap(), 0, "a new day starts from zero");
        store.mark_followed("s", "3", FollowMark::Followed { at_ms: 7 }).unwrap();
        store.count_follow_calls("k", 1001, 1).unwrap();
        assert_eq!(store.follow_calls("k", 1001).unwrap(), 1);
        assert_eq!(store.followed_count("s").unwrap(), 2);
        assert_eq!(store.followed_count("t").unwrap(), 0);
        // Items to follow: the stored ones unmarked, and those refused long enough ago.
        for id in ["1", "2", "3", "4"] {
            store.items.insert(item_key("s", id), b"{}".to_vec()).unwrap();
        }
        assert_eq!(store.unfollowed_items("s", 10, 0).unwrap(), vec!["4"]);
        assert_eq!(store.unfollowed_items("s", 10, 7).unwrap(), vec!["2", "4"]);
        assert_eq!(store.unfollowed_items("s", 1, 7).unwrap(), vec!["2"]);
    }
}
