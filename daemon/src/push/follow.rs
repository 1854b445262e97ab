//! Following offers: the platform sends change messages only for offers the app follows
//! (`alibaba.product.follow`, one offer a call), and a new offer of a shop is not followed
//! by itself. So for every shop with `follow = true` the stored offers without a follow mark
//! are followed a few at a time, and the offers later passes add are followed as they come.
//!
//! Follows are made by the `[push]` account: messages go to the app that follows. Each call
//! is that account's like any other (paced, counted in its quota), and the follow calls of
//! one quota day, answered or failed, stay within the account's watch share of the day
//! (`[budget] watch`, which the planner then keeps out of its plan) and never touch the
//! reserve; the day's count is kept in the state, so a restart does not grant a second
//! share. A failed call rests the shop's follows (1 minute, doubling up to 6 hours), so an
//! account that cannot follow does not spend its share on failures every round. An offer
//! the platform refuses is asked again after a week; an id that is not a number never.
//! A 30,000-offer shop on a 3,000-call key with the default 10 % watch share is followed in
//! about 100 days: raise the share to go faster.

use super::Directory;
use crate::api::param2::Follow;
use crate::api::{ApiError, Client};
use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::state::{FollowMark, StateError, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Offers followed per shop before the next shop gets its turn.
const BATCH: usize = 50;
/// How long the follower rests when nothing was left to follow (or no calls were).
const IDLE: Duration = Duration::from_secs(30);
/// An offer the platform refused is asked again after this long (the refusal may pass).
const RETRY_REFUSED_MS: i64 = 7 * 86_400_000;
/// How long a shop's follows rest after a failed call, doubling per failure up to `MAX_REST`.
const FIRST_REST: Duration = Duration::from_secs(60);
const MAX_REST: Duration = Duration::from_secs(6 * 3_600);

/// A shop's follows resting after failures: until when, and the failures in a row.
type Rests = HashMap<String, (Instant, u32)>;

/// What one batch of follow calls came to.
#[derive(Default)]
struct Batch {
    calls: u64,
    followed: u64,
    refused: u64,
    /// The first failure (a failed call ends the batch).
    failed: Option<ApiError>,
}

/// A shop whose offers are followed, and the shares of its account's day.
pub struct FollowTarget {
    /// The store key of the shop's items (its member id).
    pub key: String,
    pub client: Client,
    /// The share of each quota day follow calls may take (`[budget] watch`).
    pub share: f64,
    /// The share never spent (`[budget] reserve`).
    pub reserve: f64,
}

pub(super) struct Follower {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub directory: Arc<dyn Directory>,
}

/// Follow calls `client` may still make today: what is left of the share, and never into the
/// reserve.
fn room(target: &FollowTarget, used_today: u64, now: i64) -> u64 {
    let quota = target.client.quota();
    let limit = quota.limit() as f64;
    let share = (target.share * limit).floor() as u64;
    let reserve = (target.reserve * limit).ceil() as u64;
    share.saturating_sub(used_today).min(quota.remaining(now).saturating_sub(reserve))
}

impl Follower {
    pub async fn run(self) {
        let mut rests = Rests::new();
        loop {
            let worked = match self.round(&mut rests).await {
                Ok(worked) => worked,
                Err(e) => {
                    tracing::warn!(error = %e, kind = e.kind(), "follow marks cannot be read from the state");
                    false
                }
            };
            if !worked {
                tokio::time::sleep(IDLE).await;
            }
        }
    }

    /// One batch per shop not resting; true when any offer was answered for.
    async fn round(&self, rests: &mut Rests) -> Result<bool, StateError> {
        let mut worked = false;
        for target in self.directory.follows() {
            if rests.get(&target.key).is_some_and(|(until, _)| Instant::now() < *until) {
                continue;
            }
            let app_key = target.client.settings().app_key.clone();
            let day = target.client.quota().days().index(now_ms());
            let used = self.store.follow_calls(&app_key, day)?;
            let room = room(&target, used, now_ms()).min(BATCH as u64) as usize;
            if room == 0 {
                continue;
            }
            let offers = self.store.unfollowed_items(&target.key, room, now_ms() - RETRY_REFUSED_MS)?;
            if offers.is_empty() {
                continue;
            }
            let (b, state) = self.follow(&target, offers).await;
            // Every call made spent quota, whatever became of its mark.
            self.store.count_follow_calls(&app_key, day, b.calls)?;
            if let Some(e) = state {
                return Err(e);
            }
            worked |= b.followed + b.refused > 0;
            match b.failed {
                None => {
                    rests.remove(&target.key);
                }
                Some(e) => {
                    let failures = rests.get(&target.key).map_or(0, |r| r.1) + 1;
                    let rest = FIRST_REST.saturating_mul(1 << (failures - 1).min(10)).min(MAX_REST);
                    rests.insert(target.key.clone(), (Instant::now() + rest, failures));
                    if !matches!(e, ApiError::QuotaExhausted { .. }) {
                        tracing::warn!(shop = %target.key, error = %e, kind = e.kind(), rest_s = rest.as_secs(), "following offers failed; the shop's follows rest, then go on");
                    }
                }
            }
        }
        Ok(worked)
    }

    /// Follows `offers`, as many at once as the account's pacing allows (the pacer spaces
    /// them), and marks each answer. A failed call starts no further one.
    async fn follow(&self, target: &FollowTarget, offers: Vec<String>) -> (Batch, Option<StateError>) {
        let mut b = Batch::default();
        let mut calls = tokio::task::JoinSet::new();
        let slots = target.client.pacer().settings().concurrency.max(1);
        let mut offers = offers.into_iter();
        loop {
            while b.failed.is_none() && calls.len() < slots {
                let Some(offer) = offers.next() else { break };
                let client = target.client.clone();
                calls.spawn(async move { (client.follow(&offer).await, offer) });
            }
            let Some(done) = calls.join_next().await else { break };
            let Ok((answer, offer)) = done else { continue };
            b.calls += 1;
            let mark = match answer {
                Ok(Follow::Followed) => FollowMark::Followed { at_ms: now_ms() },
                Ok(Follow::Refused { code }) => {
                    tracing::info!(shop = %target.key, offer = %offer, code = %code, "the platform refuses to follow this offer; asked again in a week");
                    FollowMark::Refused { at_ms: now_ms() }
                }
                // Not an offer id at all: nothing will ever follow it.
                Err(ApiError::Argument(e)) => {
                    tracing::warn!(shop = %target.key, offer = %offer, error = %e, "not an offer id; never followed");
                    FollowMark::Refused { at_ms: i64::MAX }
                }
                Err(e) => {
                    self.metrics.follow_calls.with_label_values(&["failed"]).inc();
                    b.failed.get_or_insert(e);
                    continue;
                }
            };
            let followed = matches!(mark, FollowMark::Followed { .. });
            self.metrics
                .follow_calls
                .with_label_values(&[if followed { "followed" } else { "refused" }])
                .inc();
            if let Err(e) = self.store.mark_followed(&target.key, &offer, mark) {
                return (b, Some(e));
            }
            if followed {
                b.followed += 1;
            } else {
                b.refused += 1;
            }
        }
        (b, None)
    }
}
