//! `shopsync sync`: one pass of the configured (or named) shops in the foreground, with a
//! progress bar on a terminal and plain log lines otherwise.

use super::context::Context;
use crate::clock::show_ms;
use crate::sync::{PassReport, PassStats};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

pub async fn sync(
    ctx: &Context,
    shop: Option<&str>,
    full: bool,
    since_ms: Option<i64>,
) -> anyhow::Result<bool> {
    let mut all_ok = true;
    for s in ctx.shops(shop)? {
        let engine = ctx.engine(s.account.as_deref())?;
        let member = match engine.resolve(&s.shop).await {
            Ok(m) => m,
            Err(e) => {
                eprintln!("shop {}: cannot resolve: {e}", s.label);
                all_ok = false;
                continue;
            }
        };
        let stats = Arc::new(PassStats::default());
        let ticker = progress(&member.to_string(), stats.clone(), engine.client().clone());
        let result = engine.pass(&member, full, since_ms, stats).await;
        ticker.abort();
        match result {
            Ok(r) => print_report(&s.label, &r),
            Err(e) => {
                eprintln!("shop {} ({member}): pass failed: {e}", s.label);
                all_ok = false;
            }
        }
    }
    if shop.is_none() {
        for w in &ctx.settings.watches {
            let engine = ctx.engine(w.account.as_deref())?;
            let stats = PassStats::default();
            match engine.watch_pass(&w.name, &w.items, &stats).await {
                Ok(_) => println!(
                    "watch {}: {} items, {} events",
                    w.name,
                    PassStats::get(&stats.items_seen),
                    stats.events()
                ),
                Err(e) => {
                    eprintln!("watch {}: failed: {e}", w.name);
                    all_ok = false;
                }
            }
        }
        ctx.store.flush().await?;
    }
    Ok(all_ok)
}

fn print_report(label: &str, r: &PassReport) {
    println!(
        "shop {label} ({}): {:?} pass in {:.1} s: {} items seen, {} created, {} updated, {} deleted; \
         calls: {} list, {} count, {} sku, {} item, {} other; {} windows ({} splits)",
        r.shop,
        r.kind,
        (r.finished_ms - r.started_ms) as f64 / 1000.0,
        r.items_seen,
        r.creates,
        r.updates,
        r.deletes,
        r.list_calls,
        r.count_calls,
        r.sku_calls,
        r.item_calls,
        r.other_calls,
        r.windows,
        r.splits,
    );
    if let Some(c) = &r.completeness {
        println!(
            "  completeness: fetched {} of {} official, SKU details {:.1}%, priced {:.1}% -> {}",
            c.fetched,
            c.official,
            c.sku_share * 100.0,
            c.price_share * 100.0,
            if c.complete { "complete" } else { "INCOMPLETE" }
        );
    }
    if let Some(w) = r.watermark_ms {
        println!("  watermark: {}", show_ms(w));
    }
}

/// A progress bar on a terminal; a log line every 10 s otherwise.
fn progress(shop: &str, stats: Arc<PassStats>, client: crate::api::Client) -> tokio::task::JoinHandle<()> {
    let shop = shop.to_string();
    tokio::spawn(async move {
        let line = |s: &PassStats| {
            format!(
                "{} items · {} calls · {} windows left · backoff {:?}",
                PassStats::get(&s.items_seen),
                s.calls(),
                PassStats::get(&s.windows_left),
                client.pacer().current_interval()
            )
        };
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_prefix(shop);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {prefix} {elapsed} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            loop {
                bar.set_message(line(&stats));
                bar.tick();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        } else {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                tracing::info!(shop = %shop, "{}", line(&stats));
            }
        }
    })
}
