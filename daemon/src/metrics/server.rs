//! The HTTP listener: `/metrics`, `/healthz` (the process answers) and `/readyz` (state
//! open, scheduler running, sinks loaded).

use super::Metrics;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Default)]
pub struct Readiness {
    pub state_open: AtomicBool,
    pub scheduler_running: AtomicBool,
    pub sinks_loaded: AtomicBool,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        [&self.state_open, &self.scheduler_running, &self.sinks_loaded]
            .iter()
            .all(|b| b.load(Ordering::Relaxed))
    }
}

type Shared = (Arc<Metrics>, Arc<Readiness>, Arc<dyn Fn() + Send + Sync>);

async fn metrics(
    State((m, _, refresh)): State<Shared>,
) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    refresh();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], m.render())
}

async fn readyz(State((_, r, _)): State<Shared>) -> (StatusCode, &'static str) {
    if r.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Serves until the listener fails; `refresh` updates gauges read from state at scrape time.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics_: Arc<Metrics>,
    ready: Arc<Readiness>,
    refresh: Arc<dyn Fn() + Send + Sync>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state((metrics_, ready, refresh));
    axum::serve(listener, app).await
}
