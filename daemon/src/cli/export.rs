//! `shopsync export`: a shop's current catalogue, streamed, as JSONL (one item a line) or CSV
//! (one row per SKU with the item's tiers and MOQ; an item without SKUs gets one row).

use crate::state::Store;
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

fn tiers(item: &crate::event::Item) -> String {
    let parts: Vec<String> = item
        .wholesale_prices
        .iter()
        .map(|t| match t.max_qty {
            Some(m) => format!("{}-{}:{}", t.min_qty, m, t.price),
            None => format!("{}-:{}", t.min_qty, t.price),
        })
        .collect();
    parts.join(";")
}

/// Writes the catalogue of `shop` to `out`; returns the rows written.
pub fn export(store: &Store, shop: &str, format: ExportFormat, out: &mut dyn Write) -> anyhow::Result<u64> {
    let mut rows = 0;
    match format {
        ExportFormat::Jsonl => {
            for s in store.items(shop) {
                serde_json::to_writer(&mut *out, &s?.item)?;
                out.write_all(b"\n")?;
                rows += 1;
            }
        }
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "item_id",
                "title",
                "cid",
                "status",
                "moq",
                "price_source",
                "tiers",
                "sales",
                "stock",
                "modified_ms",
                "sku_id",
                "sku_spec",
                "sku_price",
                "sku_stock",
                "detail_url",
            ])?;
            for s in store.items(shop) {
                let i = s?.item;
                let base = [
                    i.item_id.clone(),
                    i.title.clone(),
                    i.cid.clone(),
                    i.status.clone(),
                    i.moq.map(|m| m.to_string()).unwrap_or_default(),
                    serde_json::to_value(i.price_source)?.as_str().unwrap_or("").to_string(),
                    tiers(&i),
                    i.sales.map(|m| m.to_string()).unwrap_or_default(),
                    i.stock.map(|m| m.to_string()).unwrap_or_default(),
                    i.modified_ms.to_string(),
                ];
                let skus: Vec<[String; 4]> = if i.skus.is_empty() {
                    vec![Default::default()]
                } else {
                    i.skus
                        .iter()
                        .map(|k| {
                            [
                                k.sku_id.clone(),
                                k.spec.clone(),
                                k.price.map(|p| p.to_string()).unwrap_or_default(),
                                k.stock.map(|s| s.to_string()).unwrap_or_default(),
                            ]
                        })
                        .collect()
                };
                for k in skus {
                    let row = base.iter().chain(k.iter()).chain(std::iter::once(&i.detail_url));
                    w.write_record(row)?;
                    rows += 1;
                }
            }
            w.flush()?;
        }
    }
    Ok(rows)
}
