//! What the daemon answers on its control socket: the CLI's commands, run against the state
//! and sinks the daemon holds, printing what the CLI would print by itself.

use super::passes::run_pass;
use super::shared::Shared;
use crate::api::ShopRef;
use crate::cli::{self, StatusInput};
use crate::config::{Cadence, ShopSettings};
use crate::control::{End, Handler, Replies, Request};
use crate::sinks::SinkManager;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch, Mutex};

/// A reload asked for on the socket, with where its outcome goes.
pub(super) type ReloadAsk = oneshot::Sender<Result<String, String>>;

pub(super) struct Control {
    /// The current shared state: replaced by every reload.
    pub shared: watch::Receiver<Arc<Shared>>,
    pub sinks: Arc<Mutex<SinkManager>>,
    /// The main loop reloads (it owns the schedules); this asks it to.
    pub reload: mpsc::Sender<ReloadAsk>,
}

impl Handler for Control {
    fn handle(self: Arc<Self>, req: Request, out: Replies) -> Pin<Box<dyn Future<Output = End> + Send>> {
        Box::pin(async move {
            match self.answer(req, &out).await {
                Ok(end) => end,
                Err(e) => End::error(format!("{e:#}")),
            }
        })
    }
}

impl Control {
    async fn answer(&self, req: Request, out: &Replies) -> anyhow::Result<End> {
        let shared = self.shared.borrow().clone();
        match req {
            Request::Status { json } => {
                let health: BTreeMap<String, bool> = {
                    let mgr = self.sinks.lock().await;
                    mgr.health()
                        .into_iter()
                        .map(|(n, h)| (n, h.healthy.load(std::sync::atomic::Ordering::Relaxed)))
                        .collect()
                };
                let text = tokio::task::spawn_blocking(move || {
                    let input = StatusInput {
                        settings: &shared.settings,
                        store: &shared.store,
                        clients: &shared.clients,
                        health: Some(&health),
                    };
                    cli::status(&input, json)
                })
                .await??;
                out.out(text).await;
                Ok(End::ok(true))
            }
            Request::Events { shop, after_seq } => {
                // Events leave the process only once durable (see state/store.rs).
                shared.store.flush().await?;
                let mut w = out.writer();
                tokio::task::spawn_blocking(move || {
                    cli::events(&shared.store, shop.as_deref(), after_seq, &mut w)
                })
                .await??;
                Ok(End::ok(true))
            }
            Request::Export { shop, format } => {
                let member: crate::api::MemberId =
                    shop.parse().map_err(|e| anyhow::anyhow!("--shop {shop:?}: {e}"))?;
                let mut w = out.writer();
                let rows = tokio::task::spawn_blocking(move || {
                    let rows = cli::export(&shared.store, member.as_str(), format, &mut w);
                    drop(w);
                    rows
                })
                .await??;
                out.note(format!("{rows} rows")).await;
                Ok(End::ok(true))
            }
            Request::StateReset { shop } => {
                let member: crate::api::MemberId =
                    shop.parse().map_err(|e| anyhow::anyhow!("--shop {shop:?}: {e}"))?;
                // A pass in flight would set the watermark again with its next page.
                if shared.lock_for(member.as_str()).try_lock().is_err() {
                    return Ok(End::error(format!(
                        "a pass of shop {shop} runs now; reset its state once the pass ends"
                    )));
                }
                out.out(cli::state_reset(&shared.store, &shop).await? + "\n").await;
                Ok(End::ok(true))
            }
            Request::Sync { shop, full } => self.sync(&shared, &shop, full, out).await,
            Request::DlqReplay { sink } => {
                let runner = self.sinks.lock().await.runner(&sink);
                let Some(runner) = runner else {
                    return Ok(End::error(format!("no sink named {sink:?} runs in the daemon")));
                };
                let (ok, line) = cli::replay_with(&runner, &shared.store).await?;
                out.out(line + "\n").await;
                Ok(End::ok(ok))
            }
            Request::StoreToken { account, token } => {
                let Some(client) = shared.clients.iter().find(|c| c.account() == account) else {
                    return Ok(End::error(format!(
                        "the running daemon has no account {account:?}; reload it after adding the account (shopsync reload), then authorize again"
                    )));
                };
                if let Err(e) = client.install_token(token).await {
                    return Ok(End::error(e));
                }
                shared.store.flush().await?;
                tracing::info!(account = %account, "OAuth authorization stored");
                Ok(End::ok(true))
            }
            Request::Reload => {
                let (tx, rx) = oneshot::channel();
                self.reload.send(tx).await.map_err(|_| anyhow::anyhow!("the daemon is stopping"))?;
                match rx.await {
                    Ok(Ok(line)) => {
                        out.out(line + "\n").await;
                        Ok(End::ok(true))
                    }
                    Ok(Err(e)) => {
                        Ok(End::error(format!("new config refused; the old one keeps running: {e}")))
                    }
                    Err(_) => Ok(End::error("the daemon is stopping")),
                }
            }
        }
    }

    /// Queues a pass of `named` (configured or not) through the daemon's own pass runner, so
    /// it takes the shop's lock, a pass slot and the shop's accounts like any scheduled pass.
    async fn sync(
        &self,
        shared: &Arc<Shared>,
        named: &str,
        full: bool,
        out: &Replies,
    ) -> anyhow::Result<End> {
        let shop: ShopRef = named.parse().map_err(|e| anyhow::anyhow!("--shop {named:?}: {e}"))?;
        let (index, settings) = match shared.settings.shops.iter().enumerate().find(|(_, s)| s.shop == shop) {
            Some((i, s)) => (i, s.clone()),
            None => (
                0,
                ShopSettings {
                    shop,
                    label: named.to_string(),
                    account: None,
                    incremental: Cadence::Auto,
                    full: Cadence::Auto,
                    follow: false,
                },
            ),
        };
        if let Some(member) = shared.known_member(&settings) {
            if shared.lock_for(&member).try_lock().is_err() {
                return Ok(End::error(format!(
                    "a pass of shop {member} runs now; nothing queued (ask again once it ends)"
                )));
            }
        }
        if shared.candidates(&settings, index).is_empty() {
            return Ok(End::error(format!(
                "shop {named}: no account it may use has quota left today; nothing queued"
            )));
        }
        tokio::spawn(run_pass(shared.clone(), settings, index, full));
        let kind = if full { "full" } else { "incremental (or the open full pass, resumed)" };
        out.out(format!("shop {named}: {kind} pass queued in the running daemon\n")).await;
        Ok(End::ok(true))
    }
}
