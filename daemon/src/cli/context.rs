//! What the subcommands share: validated settings, the opened state, and one API client per
//! account whose quota counts and tokens persist in the state.

use crate::api::{Client, Hooks, ShopRef};
use crate::config::{Settings, ShopSettings};
use crate::state::Store;
use crate::sync::Engine;
use anyhow::{anyhow, Context as _};
use std::path::Path;
use std::sync::Arc;

pub struct Context {
    pub settings: Settings,
    pub store: Store,
    pub clients: Vec<Client>,
}

impl Context {
    pub fn open(config: &Path) -> anyhow::Result<Context> {
        let settings = Settings::load(config)?;
        let store = Store::open(&settings.state_dir, settings.cache_bytes)?;
        Context::new(settings, store)
    }

    /// A context over a state opened by the caller.
    pub fn new(settings: Settings, store: Store) -> anyhow::Result<Context> {
        let hooks = Hooks { quota: Arc::new(store.clone()), tokens: Arc::new(store.clone()), observer: None };
        let clients = settings
            .accounts
            .iter()
            .map(|a| Client::new(settings.api.clone(), a.clone(), hooks.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Context { settings, store, clients })
    }

    /// What `status` reads, without sink health (that needs the daemon).
    pub fn status_input(&self) -> super::StatusInput<'_> {
        super::StatusInput {
            settings: &self.settings,
            store: &self.store,
            clients: &self.clients,
            health: None,
        }
    }

    /// The client of `account`, or the first account's.
    pub fn client(&self, account: Option<&str>) -> anyhow::Result<&Client> {
        match account {
            Some(name) => self
                .clients
                .iter()
                .find(|c| c.account() == name)
                .ok_or_else(|| anyhow!("no account {name:?}")),
            None => self.clients.first().ok_or_else(|| anyhow!("the config has no [[accounts]]")),
        }
    }

    pub fn engine(&self, account: Option<&str>) -> anyhow::Result<Engine> {
        Ok(Engine::new(self.client(account)?.clone(), self.store.clone(), self.settings.sync.clone()))
    }

    /// The configured shops, or the one named on the command line (configured or not).
    pub fn shops(&self, named: Option<&str>) -> anyhow::Result<Vec<ShopSettings>> {
        let Some(named) = named else { return Ok(self.settings.shops.clone()) };
        let shop: ShopRef = named.parse().with_context(|| format!("--shop {named:?}"))?;
        if let Some(s) = self.settings.shops.iter().find(|s| s.shop == shop) {
            return Ok(vec![s.clone()]);
        }
        Ok(vec![ShopSettings {
            shop,
            label: named.to_string(),
            account: None,
            incremental: crate::config::Cadence::Auto,
            full: crate::config::Cadence::Auto,
            follow: false,
        }])
    }
}
