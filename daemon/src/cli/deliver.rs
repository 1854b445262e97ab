//! `shopsync deliver` (drain the outbox to every sink once) and `shopsync dlq replay`.

use super::context::Context;
use crate::sinks::{collect_outbox, SinkRunner};
use anyhow::anyhow;

/// Consecutive failures after which a one-shot drain gives up on a sink.
const MAX_FAILURES: u32 = 5;

pub async fn deliver(ctx: &Context) -> anyhow::Result<bool> {
    let mut runners = Vec::new();
    let mut ok = true;
    for s in &ctx.settings.sinks {
        match SinkRunner::new(s, &ctx.settings.plugin_dir, ctx.store.clone(), s.delivery.clone()) {
            Ok(r) => runners.push(r),
            Err(e) => {
                eprintln!("sink {}: {e}", s.name);
                ok = false;
            }
        }
    }
    for r in &runners {
        let rep = r.drain(MAX_FAILURES).await?;
        println!(
            "sink {}: {} events delivered, {} dead-lettered, cursor {}{}",
            rep.sink,
            rep.delivered,
            rep.dead_lettered,
            rep.cursor,
            rep.error.as_deref().map(|e| format!("; gave up: {e}")).unwrap_or_default()
        );
        ok &= rep.error.is_none();
    }
    // Sinks that no longer appear in the config keep their cursor for the retention time.
    let configured: std::collections::BTreeSet<&str> =
        ctx.settings.sinks.iter().map(|s| s.name.as_str()).collect();
    for (name, _) in ctx.store.sink_cursors()? {
        if !configured.contains(name.as_str()) && !ctx.store.removed_sinks()?.iter().any(|r| r.0 == name) {
            ctx.store.mark_sink_removed(&name, crate::clock::now_ms())?;
        }
    }
    let removed = collect_outbox(&ctx.store, &ctx.settings.sinks, ctx.settings.sink_retention)?;
    if removed > 0 {
        println!("outbox: {removed} events every sink is past were removed");
    }
    ctx.store.flush().await?;
    Ok(ok)
}

/// `shopsync dlq replay` without a daemon: loads the sink's plugin itself.
pub async fn dlq_replay(ctx: &Context, sink: &str) -> anyhow::Result<bool> {
    let s = ctx
        .settings
        .sinks
        .iter()
        .find(|s| s.name == sink)
        .ok_or_else(|| anyhow!("no sink named {sink:?}"))?;
    let r = SinkRunner::new(s, &ctx.settings.plugin_dir, ctx.store.clone(), s.delivery.clone())?;
    let (ok, line) = replay_with(&r, &ctx.store).await?;
    println!("{line}");
    Ok(ok)
}

/// Re-sends the dead letters of `runner`'s sink (the daemon passes its running sink's);
/// returns whether all were accepted, and the line to print.
pub async fn replay_with(runner: &SinkRunner, store: &crate::state::Store) -> anyhow::Result<(bool, String)> {
    let (resent, failed) = runner.replay_dead_letters().await?;
    store.flush().await?;
    Ok((
        failed == 0,
        format!("sink {}: {resent} dead-lettered events re-sent, {failed} still refused", runner.name),
    ))
}
