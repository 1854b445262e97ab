//! `shopsync events`: outbox events as JSONL.

use crate::state::Store;
use std::io::Write;

/// Writes the outbox events of `shop` (or every shop) with `seq` above `after_seq` to `out`.
pub fn events(store: &Store, shop: Option<&str>, after_seq: u64, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(out);
    for e in store.events_after(0) {
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
