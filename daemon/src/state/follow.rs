//! Which offers the app follows on the platform (`alibaba.product.follow`), per shop, and how
//! many follow calls each app key made in its current quota day.
//!
//! Only followed offers produce change messages, so a shop with `follow = true` has its
//! stored offers followed a few at a time; the marks keep an offer from being followed twice,
//! across restarts. The day's count keeps the follower inside its share of the quota after a
//! restart too.

use super::store::{StateError, Store};

/// The key of a followed offer: `<shop>/<offer>`, as items are keyed.
fn offer_key(shop: &str, offer: &str) -> Vec<u8> {
    format!("{shop}/{offer}").into_bytes()
}

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
    /// Up to `limit` ids of a shop's stored items that carry no follow mark, in key order.
    pub fn unfollowed_items(&self, shop: &str, limit: usize) -> Result<Vec<String>, StateError> {
        let prefix = format!("{shop}/");
        let mut out = Vec::new();
        for k in self.items.scan_prefix(prefix.as_bytes()).keys() {
            let k = k?;
            if !self.followed.contains_key(&k)? {
                out.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    pub fn follow_mark(&self, shop: &str, offer: &str) -> Result<Option<FollowMark>, StateError> {
        Ok(self.followed.get(offer_key(shop, offer))?.and_then(|v| FollowMark::decode(&v)))
    }

    /// Records the answer to one follow call, and counts the call in `app_key`'s quota day
    /// starting at `day_start_ms`.
    pub fn mark_followed(
        &self,
        shop: &str,
        offer: &str,
        mark: FollowMark,
        app_key: &str,
        day_start_ms: i64,
    ) -> Result<(), StateError> {
        self.followed.insert(offer_key(shop, offer), mark.encode())?;
        let used = self.follow_calls(app_key, day_start_ms)?;
        self.followed.insert(day_key(app_key), format!("{day_start_ms}:{}", used + 1).into_bytes())?;
        Ok(())
    }

    /// Follow calls `app_key` made in the quota day starting at `day_start_ms`.
    pub fn follow_calls(&self, app_key: &str, day_start_ms: i64) -> Result<u64, StateError> {
        let Some(v) = self.followed.get(day_key(app_key))? else { return Ok(0) };
        let text = String::from_utf8_lossy(&v);
        let (day, n) = text.split_once(':').unwrap_or(("", ""));
        Ok(if day.parse::<i64>().ok() == Some(day_start_ms) { n.parse().unwrap_or(0) } else { 0 })
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
        store.mark_followed("s", "1", FollowMark::Followed { at_ms: 5 }, "k", 1000).unwrap();
        store.mark_followed("s", "2", FollowMark::Refused { at_ms: 6 }, "k", 1000).unwrap();
        assert_eq!(store.follow_mark("s", "1").unwrap(), Some(FollowMark::Followed { at_ms: 5 }));
        assert_eq!(store.follow_mark("s", "2").unwrap(), Some(FollowMark::Refused { at_ms: 6 }));
        assert_eq!(store.follow_mark("s", "3").unwrap(), None);
        assert_eq!(store.follow_calls("k", 1000).unwrap(), 2);
        assert_eq!(store.follow_calls("k", 2000).unwrap(), 0, "a new day starts from zero");
        store.mark_followed("s", "3", FollowMark::Followed { at_ms: 7 }, "k", 2000).unwrap();
        assert_eq!(store.follow_calls("k", 2000).unwrap(), 1);
        assert_eq!(store.followed_count("s").unwrap(), 2);
        assert_eq!(store.followed_count("t").unwrap(), 0);
    }
}
