//! The platform's item, as parsed by the client, into shopsync's normalized [`Item`].

use crate::api::{parse_price, parse_wholesale, RawItem, RawSku, Tier};
use crate::event::{Item, PriceSource, Sku};

/// An item's listing fields, normalized, with the hash that decides whether its SKUs must
/// be fetched again.
#[derive(Debug, Clone)]
pub struct NormalizedListing {
    pub item: Item,
    pub listing_md5: String,
}

/// Normalizes the listing part of an item (no SKU details yet).
///
/// `wholesalePrice` is parsed into tiers; when it is `""` (a known quirk) the single
/// `channelPrice` becomes one open tier and `price_source` says so. An item that cannot be
/// read (no `modified_time`, tiers nobody can parse, a negative MOQ) is an error: the engine
/// quarantines it and tries it again on the next pass, instead of storing a wrong copy.
pub fn listing(raw: &RawItem) -> Result<NormalizedListing, String> {
    let modified_ms = raw.modified_time.ok_or("no modified_time")?;
    let moq = match raw.moq {
        Some(m) => Some(u64::try_from(m).map_err(|_| format!("moq {m} is negative"))?),
        None => None,
    };
    let tiers = match raw.wholesale_price.as_deref() {
        Some(s) => parse_wholesale(s, moq.unwrap_or(1)).map_err(|e| format!("wholesalePrice: {e}"))?,
        None => Vec::new(),
    };
    let (wholesale_prices, price_source) = if !tiers.is_empty() {
        (tiers, PriceSource::WholesalePrice)
    } else {
        match raw.channel_price.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(parse_price) {
            Some(Ok(price)) => (
                vec![Tier { min_qty: moq.unwrap_or(1).max(1), max_qty: None, price }],
                PriceSource::ChannelPrice,
            ),
            Some(Err(e)) => return Err(format!("channelPrice: {e}")),
            None => (Vec::new(), PriceSource::None),
        }
    };
    let item = Item {
        item_id: raw.item_id.clone(),
        title: raw.title.clone().unwrap_or_default(),
        cid: raw.cid.clone().unwrap_or_default(),
        wholesale_prices,
        price_source,
        moq,
        sales: raw.sales,
        stock: raw.stock,
        status: raw.status.clone().unwrap_or_else(|| "online".into()),
        modified_ms,
        sku_ids: raw.sku_id_list(),
        skus: Vec::new(),
        pic_url: raw.pic_url.clone().unwrap_or_default(),
        detail_url: raw.detail_url.clone().unwrap_or_default(),
    };
    let listing_md5 = item.listing_md5();
    Ok(NormalizedListing { item, listing_md5 })
}

/// The listing completed with SKU details (sorted by id, so the hash is canonical).
pub fn with_skus(mut item: Item, skus: impl IntoIterator<Item = RawSku>) -> Item {
    let mut out: Vec<Sku> = skus
        .into_iter()
        .map(|s| {
            let price = s.price.as_deref().and_then(|p| match parse_price(p) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::warn!(sku_id = %s.sku_id, error = %e, "SKU price unreadable");
                    None
                }
            });
            Sku { sku_id: s.sku_id, spec: s.spec, price, stock: s.stock }
        })
        .collect();
    out.sort_by(|a, b| a.sku_id.cmp(&b.sku_id));
    out.dedup_by(|a, b| a.sku_id == b.sku_id);
    item.skus = out;
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(wholesale: &str, channel: Option<&str>) -> RawItem {
        RawItem {
            item_id: "1".into(),
            wholesale_price: Some(wholesale.into()),
            channel_price: channel.map(String::from),
            moq: Some(2),
            modified_time: Some(1_700_000_000_000),
            ..Default::default()
        }
    }

    #[test]
    fn empty_wholesale_price_falls_back_to_channel_price() {
        let l = listing(&raw("", Some("13.00"))).expect("readable");
        assert_eq!(l.item.price_source, PriceSource::ChannelPrice);
        assert_eq!(l.item.wholesale_prices[0].price.to_string(), "13.00");
        assert_eq!(l.item.wholesale_prices[0].min_qty, 2);
    }

    #[test]
    fn unreadable_items_are_errors_not_wrong_copies() {
        let e = listing(&raw("1-9:x", None)).expect_err("garbage tiers");
        assert!(e.contains("wholesalePrice"), "{e}");
        let mut no_time = raw("1-:1.00", None);
        no_time.modified_time = None;
        assert_eq!(listing(&no_time).expect_err("no time"), "no modified_time");
        let mut negative = raw("1-:1.00", None);
        negative.moq = Some(-2);
        assert!(listing(&negative).is_err());
        let l = listing(&raw("", None)).expect("no price at all is readable");
        assert_eq!(l.item.price_source, PriceSource::None);
    }

    #[test]
    fn listing_hash_ignores_sku_details_and_item_hash_does_not() {
        let l = listing(&raw("1-:1.00", None)).expect("readable");
        let a = with_skus(l.item.clone(), vec![]);
        let sku = RawSku {
            sku_id: "9".into(),
            item_id: None,
            spec: "s".into(),
            price: Some("1.00".into()),
            stock: Some(3),
        };
        let b = with_skus(l.item.clone(), vec![sku]);
        assert_ne!(a.md5(), b.md5());
        assert_eq!(b.changed_fields(&a), vec!["skus".to_string()]);
    }
}
