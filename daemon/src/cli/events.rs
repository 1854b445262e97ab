//! `shopsync events`: outbox events as JSONL.

use super::context::Context;
use std::io::Write;

pub fn events(ctx: &Context, shop: Option<&str>, after_seq: u64) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for e in ctx.store.events_after(0) {
        let (_, ev) = e?;
        if shop.is_some_and(|s| s != ev.shop) || ev.seq <= after_seq {
            continue;
        }
        serde_json::to_writer(&mut out, &ev)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
