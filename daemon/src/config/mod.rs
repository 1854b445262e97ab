//! The TOML configuration: `raw.rs` is the file as written (every field documented, defaults
//! in `default_*` functions, unknown keys refused), `settings.rs` validates it once into the
//! typed settings the rest of the code uses. Nothing downstream re-checks.

mod raw;
mod settings;

pub use raw::RawConfig;
pub use settings::{
    BudgetSettings, BudgetSplit, Cadence, ConfigError, PushSettings, SellerSource, Settings, ShopSettings,
    SinkSettings, SinkStart, SkuRefresh, SyncSettings, WatchSettings,
};
