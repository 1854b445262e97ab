//! `shopsync state reset`: forget a shop's watermark, so its next pass is full.

use crate::api::MemberId;
use crate::state::Store;
use anyhow::Context as _;

/// Forgets the watermark of `shop` (a member id) and makes that durable; returns the line to
/// print. Items stay, so the full pass that follows emits events only for what differs.
pub async fn state_reset(store: &Store, shop: &str) -> anyhow::Result<String> {
    let member: MemberId = shop.parse().with_context(|| format!("--shop {shop:?}"))?;
    store.reset_watermark(member.as_str())?;
    store.flush().await?;
    Ok(format!("shop {member}: watermark forgotten; its next pass is full"))
}
