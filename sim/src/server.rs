//! HTTP routes: the seed gateway at the contract's path and its OAuth token endpoint, the
//! param2 face (its gateway, token endpoint and authorize page), and `/_sim/`.

use crate::admin::{Mutation, NewShop};
use crate::config::{Account, Faults, Limits, Quirks};
use crate::state::{Sim, SimSpec};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The gateway path of contract section 1.
pub const GATEWAY_PATH: &str = "/openapi/param2/2/portals.open/api/";
pub const AUTH_PATH: &str = "/auth/token";
/// The param2 gateway: `<PARAM2_PREFIX><namespace>/<api>/<appKey>` (contract section 8.1).
pub const PARAM2_PREFIX: &str = "/openapi/param2/1/";
/// The param2 token endpoint: `<TOKEN_PREFIX><appKey>` (contract section 8.2).
pub const TOKEN_PREFIX: &str = "/openapi/http/1/system.oauth2/getToken/";
/// The page where a user authorizes an app (contract section 8.2).
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";

/// Query string and form body together, as the gateway reads them (the body wins).
pub(crate) fn params(uri: &Uri, body: &[u8]) -> BTreeMap<String, String> {
    let mut p: BTreeMap<String, String> = BTreeMap::new();
    let query = uri.query().unwrap_or("").as_bytes();
    for src in [query, body] {
        for (k, v) in form_urlencoded::parse(src) {
            p.insert(k.into_owned(), v.into_owned());
        }
    }
    p
}

async fn gateway(State(sim): State<Sim>, uri: Uri, body: Bytes) -> Response {
    let wire = sim.gateway(params(&uri, &body)).await;
    let status = StatusCode::from_u16(wire.status).unwrap_or(StatusCode::OK);
    (status, [(header::CONTENT_TYPE, wire.content_type)], wire.body).into_response()
}

async fn auth(State(sim): State<Sim>, uri: Uri, body: Bytes) -> Response {
    let (status, v) = crate::oauth::token(&sim, &params(&uri, &body));
    (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), Json(v)).into_response()
}

async fn param2(
    State(sim): State<Sim>,
    Path((version, namespace, api, app_key)): Path<(String, String, String, String)>,
    uri: Uri,
    body: Bytes,
) -> Response {
    // The client signs the path as it sent it, from `param2/` on.
    let url_path = uri.path().strip_prefix("/openapi/").unwrap_or(uri.path());
    let call = crate::param2::Call {
        url_path,
        version: &version,
        namespace: &namespace,
        api: &api,
        app_key: &app_key,
        params: params(&uri, &body),
    };
    let wire = sim.param2(call).await;
    let status = StatusCode::from_u16(wire.status).unwrap_or(StatusCode::OK);
    (status, [(header::CONTENT_TYPE, wire.content_type)], wire.body).into_response()
}

async fn param2_token(
    State(sim): State<Sim>,
    Path(app_key): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (status, v) = sim.param2_get_token(&app_key, &params(&uri, &body));
    (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), Json(v)).into_response()
}

async fn param2_authorize(State(sim): State<Sim>, uri: Uri) -> Response {
    match sim.param2_authorize(&params(&uri, b"")) {
        crate::param2::Authorize::Redirect(to) => {
            (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
        }
        crate::param2::Authorize::Refused(why) => (StatusCode::BAD_REQUEST, why).into_response(),
    }
}

async fn put_param2(State(sim): State<Sim>, body: Bytes) -> Response {
    let current = sim.param2_state().settings.clone();
    match merge(&current, &body) {
        Ok(s) => {
            sim.param2_state().settings = s;
            Json(sim.param2_state().settings.clone()).into_response()
        }
        Err(e) => bad(e),
    }
}

fn bad(msg: impl ToString) -> Response {
    (StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": msg.to_string()}))).into_response()
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

/// `PUT` merges the given keys into the current settings; unknown keys are refused.
fn merge<T: Serialize + DeserializeOwned>(current: &T, body: &[u8]) -> Result<T, String> {
    let mut cur = serde_json::to_value(current).map_err(|e| e.to_string())?;
    let patch: Value = parse(body)?;
    let (Some(c), Value::Object(p)) = (cur.as_object_mut(), patch) else {
        return Err("expected a JSON object".into());
    };
    c.extend(p);
    serde_json::from_value(cur).map_err(|e| e.to_string())
}

async fn put_push(State(sim): State<Sim>, body: Bytes) -> Response {
    let current = sim.push_book().settings.clone();
    match merge(&current, &body) {
        Ok(s) => {
            sim.push_book().settings = s;
            Json(sim.push_book().settings.clone()).into_response()
        }
        Err(e) => bad(e),
    }
}

async fn put_limits(State(sim): State<Sim>, body: Bytes) -> Response {
    match merge(&sim.limits(), &body) {
        Ok(l) => {
            sim.set_limits(l);
            Json(sim.limits()).into_response()
        }
        Err(e) => bad(e),
    }
}

async fn put_faults(State(sim): State<Sim>, body: Bytes) -> Response {
    match merge(&sim.faults(), &body) {
        Ok(f) => {
            sim.set_faults(f);
            Json(sim.faults()).into_response()
        }
        Err(e) => bad(e),
    }
}

async fn put_quirks(State(sim): State<Sim>, body: Bytes) -> Response {
    match merge(&sim.quirks(), &body) {
        Ok(q) => {
            sim.set_quirks(q);
            Json(sim.quirks()).into_response()
        }
        Err(e) => bad(e),
    }
}

/// Query of `GET /_sim/churn`.
#[derive(Deserialize)]
struct ChurnQuery {
    /// Only log entries after this sequence number.
    #[serde(default)]
    after: u64,
}

/// Body of `POST /_sim/churn`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChurnRate {
    per_minute: f64,
    #[serde(default)]
    silent_delist_share: Option<f64>,
}

async fn get_churn(State(sim): State<Sim>, Query(q): Query<ChurnQuery>) -> Response {
    Json(sim.churn_report(q.after)).into_response()
}

async fn post_churn(State(sim): State<Sim>, body: Bytes) -> Response {
    let rate = match parse::<ChurnRate>(&body) {
        Ok(r) if r.per_minute.is_finite() && r.per_minute >= 0.0 => r,
        Ok(_) => return bad("per_minute must be a number >= 0"),
        Err(e) => return bad(e),
    };
    let mut q: Quirks = sim.quirks();
    q.churn_per_min = rate.per_minute;
    if let Some(s) = rate.silent_delist_share {
        q.silent_delist_share = s.clamp(0.0, 1.0);
    }
    sim.set_quirks(q);
    Json(sim.churn_report(u64::MAX)).into_response()
}

async fn post_shop(State(sim): State<Sim>, body: Bytes) -> Response {
    match parse::<NewShop>(&body) {
        Ok(spec) => Json(sim.create_shop(&spec)).into_response(),
        Err(e) => bad(e),
    }
}

async fn mutate(State(sim): State<Sim>, Path(member_id): Path<String>, body: Bytes) -> Response {
    let m = match parse::<Mutation>(&body) {
        Ok(m) => m,
        Err(e) => return bad(e),
    };
    match sim.mutate(&member_id, &m) {
        Ok(done) => {
            sim.push_change(&member_id, done.op, &done.item_ids);
            Json(done).into_response()
        }
        Err(e) => bad(e),
    }
}

async fn truth(State(sim): State<Sim>, Path(member_id): Path<String>) -> Response {
    match sim.truth(&member_id) {
        Some(v) => Json(v).into_response(),
        None => (StatusCode::NOT_FOUND, "no such shop").into_response(),
    }
}

async fn unreachable(State(sim): State<Sim>, Path(member_id): Path<String>) -> Response {
    match sim.unreachable(&member_id) {
        Some(v) => Json(v).into_response(),
        None => (StatusCode::NOT_FOUND, "no such shop").into_response(),
    }
}

async fn post_account(State(sim): State<Sim>, body: Bytes) -> Response {
    match parse::<Account>(&body) {
        Ok(a) => {
            sim.add_account(a);
            Json(sim.accounts()).into_response()
        }
        Err(e) => bad(e),
    }
}

impl Sim {
    pub fn router(&self) -> Router {
        Router::new()
            .route(GATEWAY_PATH, any(gateway))
            .route(GATEWAY_PATH.trim_end_matches('/'), any(gateway))
            .route(AUTH_PATH, any(auth))
            .route("/openapi/param2/{version}/{namespace}/{api}/{app_key}", any(param2))
            .route(&format!("{TOKEN_PREFIX}{{app_key}}"), any(param2_token))
            .route(AUTHORIZE_PATH, get(param2_authorize))
            .route(
                "/_sim/param2",
                get(|State(s): State<Sim>| async move { Json(s.param2_state().settings.clone()) })
                    .put(put_param2),
            )
            .route(
                "/_sim/param2/push",
                get(|State(s): State<Sim>| async move { Json(s.push_book().settings.clone()) }).put(put_push),
            )
            .route("/_sim/param2/pushes", get(|State(s): State<Sim>| async move { Json(s.push_report()) }))
            .route(
                "/_sim/shops",
                get(|State(s): State<Sim>| async move { Json(s.shop_infos()) }).post(post_shop),
            )
            .route("/_sim/shops/{member_id}/mutate", post(mutate))
            .route("/_sim/shops/{member_id}/truth", get(truth))
            .route("/_sim/shops/{member_id}/unreachable", get(unreachable))
            .route("/_sim/churn", get(get_churn).post(post_churn))
            .route(
                "/_sim/quirks",
                get(|State(s): State<Sim>| async move { Json(s.quirks()) }).put(put_quirks),
            )
            .route(
                "/_sim/accounts",
                get(|State(s): State<Sim>| async move { Json(s.accounts()) }).post(post_account),
            )
            .route(
                "/_sim/limits",
                get(|State(s): State<Sim>| async move { Json(s.limits()) }).put(put_limits),
            )
            .route(
                "/_sim/faults",
                get(|State(s): State<Sim>| async move { Json(s.faults()) }).put(put_faults),
            )
            .route(
                "/_sim/counters",
                get(|State(s): State<Sim>| async move { Json(s.counters()) }).delete(
                    |State(s): State<Sim>| async move {
                        s.traffic().reset_counters();
                        StatusCode::NO_CONTENT
                    },
                ),
            )
            .route(
                "/_sim/counters/repeated_pages",
                get(|State(s): State<Sim>| async move {
                    let pages: Vec<_> = s
                        .traffic()
                        .repeated_pages(2_000)
                        .into_iter()
                        .map(|(key, served)| serde_json::json!({"key": key, "served": served}))
                        .collect();
                    Json(serde_json::json!({"pages": pages}))
                }),
            )
            .route(
                "/_sim/quota/reset",
                post(|State(s): State<Sim>| async move {
                    s.traffic().reset_quota();
                    StatusCode::NO_CONTENT
                }),
            )
            .route(
                "/_sim/tokens/expire",
                post(|State(s): State<Sim>| async move {
                    Json(serde_json::json!({"expired": crate::oauth::expire_all(&s)}))
                }),
            )
            .with_state(self.clone())
    }

    /// Serves on `listener` until the task is dropped, churning the catalogue meanwhile.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        // Churn lives exactly as long as the server: the guard stops it when this future
        // ends or is dropped (a `RunningSim` aborts it).
        let _churn = AbortOnDrop(tokio::spawn(self.clone().churn()));
        // So are the change messages: their sender, and the follower of the churn log.
        let _push = AbortOnDrop(tokio::spawn(self.clone().push_sender()));
        let _push_churn = AbortOnDrop(tokio::spawn(self.clone().push_churn()));
        axum::serve(listener, self.router()).await
    }

    /// Builds a simulator and serves it on `addr` (port 0 for a free one) in the background.
    pub async fn start(spec: SimSpec, addr: SocketAddr) -> std::io::Result<RunningSim> {
        Sim::start_with(spec, Quirks::default(), addr).await
    }

    /// [`Sim::start`] with these catalogue quirks (e.g. [`Quirks::calm_catalogue`]).
    pub async fn start_with(spec: SimSpec, quirks: Quirks, addr: SocketAddr) -> std::io::Result<RunningSim> {
        let sim = Sim::with_quirks(spec, quirks);
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(sim.clone().serve(listener));
        Ok(RunningSim { sim, addr, task })
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A simulator serving in the background; stops when dropped.
pub struct RunningSim {
    pub sim: Sim,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningSim {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn gateway_url(&self) -> String {
        format!("http://{}{}", self.addr, GATEWAY_PATH)
    }
    pub fn auth_url(&self) -> String {
        format!("http://{}{}", self.addr, AUTH_PATH)
    }
    /// The param2 URL of `namespace:api` for `app_key`.
    pub fn param2_url(&self, namespace: &str, api: &str, app_key: &str) -> String {
        format!("http://{}{PARAM2_PREFIX}{namespace}/{api}/{app_key}", self.addr)
    }
    /// The param2 token endpoint of `app_key`.
    pub fn token_url(&self, app_key: &str) -> String {
        format!("http://{}{TOKEN_PREFIX}{app_key}", self.addr)
    }
    pub fn authorize_url(&self) -> String {
        format!("http://{}{AUTHORIZE_PATH}", self.addr)
    }
    /// A calm platform, said out loud: no faults and no rate limit.
    pub fn calm(&self) {
        self.sim.set_faults(Faults::none());
        let mut l: Limits = self.sim.limits();
        l.rate_per_sec = 0;
        self.sim.set_limits(l);
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}
