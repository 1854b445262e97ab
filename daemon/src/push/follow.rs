//! Following offers: the platform sends change messages only for offers the app follows
//! (`alibaba.product.follow`, one offer a call), and a new offer of a shop is not followed
//! by itself. So for every shop with `follow = true` the stored offers without a follow mark
//! are followed a few at a time, and the offers later passes add are followed as they come.
//!
//! Each call is a call of the shop's account like any other (paced, counted in its quota),
//! and the follow calls of one quota day stay within the account's watch share of the day
//! (`[budget] watch`, which the planner then keeps out of its plan) and never touch the
//! reserve; the day's count is kept in the state, so a restart does not grant a second
//! share. A 30,000-offer shop on a 3,000-call key with the default 10 % watch share is
//! followed in about 100 days: raise the share to go faster.

use super::Directory;
use crate::api::param2::Follow;
use crate::api::{ApiError, Client};
use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::state::{FollowMark, StateError, Store};
use std::sync::Arc;
use std::time::Duration;

/// Offers followed per shop before the next shop gets its turn.
const BATCH: usize = 50;
/// How long the follower rests when nothing was left to follow (or no calls were).
const IDLE: Duration = Duration::from_secs(30);

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
        loop {
            let worked = match self.round().await {
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

    /// One batch per shop; true when any offer was followed.
    async fn round(&self) -> Result<bool, StateError> {
        let mut worked = false;
        for target in self.directory.follows() {
            let app_key = target.client.settings().app_key.clone();
            let day = target.client.quota().days().index(now_ms());
            let used = self.store.follow_calls(&app_key, day)?;
            let room = room(&target, used, now_ms()).min(BATCH as u64) as usize;
            if room == 0 {
                continue;
            }
            // As many calls at once as the account's pacing allows; the pacer spaces them.
            let mut calls = tokio::task::JoinSet::new();
            let slots = target.client.pacer().settings().concurrency.max(1);
            let mut offers = self.store.unfollowed_items(&target.key, room)?.into_iter();
            let mut failed = false;
            loop {
                while !failed && calls.len() < slots {
                    let Some(offer) = offers.next() else { break };
                    let client = target.client.clone();
                    calls.spawn(async move { (client.follow(&offer).await, offer) });
                }
                let Some(done) = calls.join_next().await else { break };
                let Ok((answer, offer)) = done else { continue };
                let mark = match answer {
                    Ok(Follow::Followed) => FollowMark::Followed { at_ms: now_ms() },
                    Ok(Follow::Refused { code }) => {
                        tracing::info!(shop = %target.key, offer = %offer, code = %code, "the platform refuses to follow this offer; not asked again");
                        FollowMark::Refused { at_ms: now_ms() }
                    }
                    Err(e) => {
                        self.metrics.follow_calls.with_label_values(&["failed"]).inc();
                        if !failed && !matches!(e, ApiError::QuotaExhausted { .. }) {
                            tracing::warn!(shop = %target.key, offer = %offer, error = %e, kind = e.kind(), "following an offer failed; tried again later");
                        }
                        // No new calls this round; the ones under way finish.
                        failed = true;
                        continue;
                    }
                };
                let result = if matches!(mark, FollowMark::Followed { .. }) { "followed" } else { "refused" };
                self.metrics.follow_calls.with_label_values(&[result]).inc();
                self.store.mark_followed(&target.key, &offer, mark, &app_key, day)?;
                worked = true;
            }
        }
        Ok(worked)
    }
}
