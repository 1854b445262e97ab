//! Item, SKU and category types, and how they look on the wire.

use serde::Serialize;

/// One wholesale price tier: from `min` pieces up to `max` (open-ended when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub min: u32,
    pub max: Option<u32>,
    pub cents: u32,
}

/// One variant of an item. Its spec is kept as two indexes into fixed word lists so that a
/// million-item catalogue stays small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sku {
    pub index: u8,
    pub color: u8,
    pub size: u8,
    pub cents: u32,
    pub stock: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Category {
    pub cid: String,
    pub name: String,
    pub parent_cid: String,
}

/// How an item's price is quoted in `wholesalePrice`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceForm {
    /// `1-99:12.50;100-:11.80`
    Tiered,
    /// `12.50`
    Single,
    /// `""`: the quirk where only `channelPrice` holds the price.
    Empty,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub item_id: u64,
    pub title: Box<str>,
    pub cid: u64,
    pub form: PriceForm,
    pub tiers: Vec<Tier>,
    pub channel_cents: u32,
    pub moq: u32,
    pub sales: u32,
    pub stock: u32,
    pub skus: Vec<Sku>,
    pub modified_ms: i64,
    pub online: bool,
    /// A field the admin API made unreadable (`"op": "garble"`), until the next update.
    pub garble: Option<Garble>,
}

/// How a garbled item is unreadable. Sellers' tools write free text into numeric fields, and
/// the platform passes it on: a client must set such an item aside, not fail the whole page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Garble {
    /// `"moq": "两件"`
    Moq,
    /// `"modified_time": "昨天 14:03"` (the platform still sorts by the real time)
    ModifiedTime,
    /// `"wholesalePrice": "1-99:十二元;100-:11.80"`
    Tiers,
}

impl Garble {
    pub const ALL: [Garble; 3] = [Garble::Moq, Garble::ModifiedTime, Garble::Tiers];
}

/// A number as the platform sends it: mostly typed, sometimes as text (`"12"`, or garbage).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Loose<T> {
    Typed(T),
    Text(String),
}

pub const COLORS: &[&str] =
    &["红色", "黑色", "白色", "蓝色", "灰色", "粉色", "绿色", "黄色", "卡其色", "藏青"];
pub const SIZES: &[&str] = &["S", "M", "L", "XL", "XXL", "3XL", "均码", "36", "38", "40"];

pub fn money(cents: u32) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

impl Item {
    /// The `wholesalePrice` wire string.
    pub fn wholesale_price(&self) -> String {
        match self.form {
            PriceForm::Empty => String::new(),
            PriceForm::Single => money(self.tiers.first().map_or(self.channel_cents, |t| t.cents)),
            PriceForm::Tiered => {
                let parts: Vec<String> = self
                    .tiers
                    .iter()
                    .map(|t| match t.max {
                        Some(max) => format!("{}-{}:{}", t.min, max, money(t.cents)),
                        None => format!("{}-:{}", t.min, money(t.cents)),
                    })
                    .collect();
                parts.join(";")
            }
        }
    }

    pub fn sku_ids(&self) -> String {
        let ids: Vec<String> =
            self.skus.iter().map(|s| super::sku_id(self.item_id, s.index as usize).to_string()).collect();
        ids.join(",")
    }

    pub fn sku_view(&self, sku: &Sku) -> SkuView {
        SkuView {
            sku_id: super::sku_id(self.item_id, sku.index as usize).to_string(),
            item_id: self.item_id.to_string(),
            spec: format!(
                "颜色:{};尺码:{}",
                COLORS[sku.color as usize % COLORS.len()],
                SIZES[sku.size as usize % SIZES.len()]
            ),
            price: money(sku.cents),
            stock: sku.stock,
        }
    }

    /// The item as the gateway shows it, restricted to `fields` (the `item_id` always comes).
    /// `b2b` false drops the wholesale fields, as the platform does for keys without the
    /// B2B data permission. A garbled field comes garbled; `wrong_types` sends the numbers
    /// as strings and the id as a number (readable, but not what the contract says).
    pub fn view(&self, fields: &FieldSet, b2b: bool, wrong_types: bool) -> ItemView {
        let want = |f: Field| fields.has(f);
        let b2b_want = |f: Field| b2b && fields.has(f);
        let num = |n: u32| if wrong_types { Loose::Text(n.to_string()) } else { Loose::Typed(n) };
        let moq = match self.garble {
            Some(Garble::Moq) => Loose::Text("两件".into()),
            _ => num(self.moq),
        };
        let modified_time = match self.garble {
            Some(Garble::ModifiedTime) => Loose::Text("昨天 14:03".into()),
            _ => Loose::Typed(self.modified_ms),
        };
        let wholesale_price = match self.garble {
            Some(Garble::Tiers) => "1-99:十二元;100-:11.80".to_string(),
            _ => self.wholesale_price(),
        };
        ItemView {
            item_id: if wrong_types {
                Loose::Typed(self.item_id)
            } else {
                Loose::Text(self.item_id.to_string())
            },
            title: want(Field::Title).then(|| self.title.to_string()),
            cid: want(Field::Cid).then(|| self.cid.to_string()),
            wholesale_price: b2b_want(Field::WholesalePrice).then_some(wholesale_price),
            channel_price: b2b_want(Field::ChannelPrice).then(|| money(self.channel_cents)),
            moq: b2b_want(Field::Moq).then_some(moq),
            sales: want(Field::Sales).then(|| num(self.sales)),
            stock: want(Field::Stock).then(|| num(self.stock)),
            sku_ids: want(Field::SkuIds).then(|| self.sku_ids()),
            modified_time: want(Field::ModifiedTime).then_some(modified_time),
            status: want(Field::Status).then(|| if self.online { "online" } else { "offline" }.to_string()),
            pic_url: want(Field::PicUrl)
                .then(|| format!("https://cbu01.alicdn.com/img/ibank/O1CN{}.jpg", self.item_id)),
            detail_url: want(Field::DetailUrl)
                .then(|| format!("https://detail.1688.com/offer/{}.html", self.item_id)),
            skus: None,
            images: None,
        }
    }

    /// The full form that `alibaba.item.get` and the ground-truth dump return.
    pub fn full_view(&self, b2b: bool, wrong_types: bool) -> ItemView {
        let mut v = self.view(&FieldSet::ALL, b2b, wrong_types);
        v.skus = Some(self.skus.iter().map(|s| self.sku_view(s)).collect());
        v.images = Some(vec![
            format!("https://cbu01.alicdn.com/img/ibank/O1CN{}_1.jpg", self.item_id),
            format!("https://cbu01.alicdn.com/img/ibank/O1CN{}_2.jpg", self.item_id),
        ]);
        v
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SkuView {
    pub sku_id: String,
    pub item_id: String,
    pub spec: String,
    pub price: String,
    pub stock: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemView {
    pub item_id: Loose<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    #[serde(rename = "wholesalePrice", skip_serializing_if = "Option::is_none")]
    pub wholesale_price: Option<String>,
    #[serde(rename = "channelPrice", skip_serializing_if = "Option::is_none")]
    pub channel_price: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moq: Option<Loose<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sales: Option<Loose<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stock: Option<Loose<u32>>,
    #[serde(rename = "skuIds", skip_serializing_if = "Option::is_none")]
    pub sku_ids: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified_time: Option<Loose<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pic_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skus: Option<Vec<SkuView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
}

/// The item fields a caller can ask for in `fields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Title = 0,
    Cid,
    WholesalePrice,
    ChannelPrice,
    Moq,
    Sales,
    Stock,
    SkuIds,
    ModifiedTime,
    Status,
    PicUrl,
    DetailUrl,
}

/// A set of [`Field`]s as a bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSet(u16);

impl FieldSet {
    pub const ALL: FieldSet = FieldSet(0x0fff);

    /// What comes back when `fields` is absent: everything but the wholesale data and the
    /// SKU ids, which must be asked for by name.
    pub fn default_set() -> FieldSet {
        let mut s = FieldSet::ALL;
        for f in [Field::WholesalePrice, Field::ChannelPrice, Field::Moq, Field::SkuIds] {
            s.0 &= !(1 << f as u16);
        }
        s
    }

    /// Parses a comma-separated `fields` value; unknown names are ignored, as on the platform.
    pub fn parse(list: &str) -> FieldSet {
        let mut s = FieldSet(0);
        for name in list.split(',').map(str::trim) {
            let f = match name {
                "title" => Field::Title,
                "cid" => Field::Cid,
                "wholesalePrice" => Field::WholesalePrice,
                "channelPrice" => Field::ChannelPrice,
                "moq" => Field::Moq,
                "sales" => Field::Sales,
                "stock" => Field::Stock,
                "skuIds" => Field::SkuIds,
                "modified_time" => Field::ModifiedTime,
                "status" => Field::Status,
                "pic_url" => Field::PicUrl,
                "detail_url" => Field::DetailUrl,
                _ => continue,
            };
            s.0 |= 1 << f as u16;
        }
        s
    }

    pub fn has(&self, f: Field) -> bool {
        self.0 & (1 << f as u16) != 0
    }
}
