//! The client under `protocol = "param2"` against a scripted gateway over loopback: the typed
//! calls the engine uses, the retry rules of the gateway errors through `Client::call`, and a
//! token refreshed after HTTP 401.

use super::fixtures as fx;
use super::wire;
use crate::api::{
    AccountSettings, ApiError, ApiSettings, Client, Hooks, ItemFilter, MemoryTokenStore, Protocol, SortType,
    Token, TokenStore,
};
use crate::pacing::PacingSettings;
use crate::secret::Secret;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: &str = "1000000";
const SECRET: &str = "test123";

const POSTPONE_PATH: &str = "/openapi/param2/1/system.oauth2/postponeToken/1000000";
const POSTPONED_UNTIL: &str = "20991231120000000+0800";

#[derive(Default)]
struct Script {
    /// Answers to `param2/...` calls, in order; when empty, an empty product page.
    answers: VecDeque<(u16, String)>,
    /// Every request: path and form.
    seen: Vec<(String, Vec<(String, String)>)>,
    /// The token endpoint's answer, when not a fresh token.
    token_answer: Option<(u16, String)>,
}

type Shared = Arc<Mutex<Script>>;

async fn gateway(
    State(s): State<Shared>,
    uri: axum::http::Uri,
    Form(form): Form<Vec<(String, String)>>,
) -> (StatusCode, String) {
    let path = uri.path().to_string();
    let Ok(mut s) = s.lock() else { return (StatusCode::INTERNAL_SERVER_ERROR, String::new()) };
    s.seen.push((path.clone(), form));
    if path.contains("/system.oauth2/getToken/") {
        if let Some((status, body)) = s.token_answer.clone() {
            return (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body);
        }
        return (
            StatusCode::OK,
            r#"{"access_token":"tok-new","expires_in":"36000","refresh_token":"ref-2"}"#.into(),
        );
    }
    if path == POSTPONE_PATH {
        let body = format!(r#"{{"refresh_token":"ref-3","refresh_token_timeout":"{POSTPONED_UNTIL}"}}"#);
        return (StatusCode::OK, body);
    }
    let (status, body) = s
        .answers
        .pop_front()
        .unwrap_or((200, r#"{"result":{"pageResult":{"totalRecords":0,"resultList":[]}}}"#.into()));
    (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body)
}

async fn start(answers: Vec<(u16, &str)>) -> (String, Shared) {
    let script: Shared = Arc::new(Mutex::new(Script {
        answers: answers.into_iter().map(|(s, b)| (s, b.to_string())).collect(),
        ..Script::default()
    }));
    let app = axum::Router::new().fallback(gateway).with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/openapi/"), script)
}

fn client(root: &str, oauth: bool, hooks: Hooks) -> Client {
    let api = ApiSettings {
        base_url: root.to_string(),
        protocol: Protocol::Param2,
        read_timeout: Duration::from_secs(5),
        max_attempts: 3,
        ..ApiSettings::default()
    };
    let account = AccountSettings {
        name: "p2".into(),
        app_key: KEY.into(),
        app_secret: Secret::new(SECRET),
        daily_quota: 1_000,
        oauth,
        proxy: None,
        pacing: PacingSettings {
            success_interval: Duration::ZERO,
            failure_interval: Duration::from_millis(5),
            throttled_interval: Duration::from_millis(5),
            max_calls_per_sec: 0,
            ..PacingSettings::default()
        },
    };
    Client::new(api, account, hooks).expect("client")
}

fn seen(s: &Shared) -> Vec<(String, Vec<(String, String)>)> {
    s.lock().map(|s| s.seen.clone()).unwrap_or_default()
}

fn field<'a>(form: &'a [(String, String)], k: &str) -> Option<&'a str> {
    form.iter().find(|p| p.0 == k).map(|p| p.1.as_str())
}

#[tokio::test]
async fn the_engines_calls_work_on_param2() {
    let (root, script) =
        start(vec![(400, fx::GW_QOS_LIMIT), (200, fx::PRODUCT_LIST_PAGE), (200, fx::PRODUCT_LIST_PAGE)])
            .await;
    let c = client(&root, false, Hooks::default());
    assert_eq!(c.max_page_size(), 20);
    let member = "6000000000000001".parse().expect("member id");
    let filter = ItemFilter { offline: false, ..Default::default() };

    // Throttled once, then the page: one call to the engine, two on the wire.
    let page = c.items_list(&member, &filter, 1, 20, SortType::ModifiedAsc).await.expect("page");
    assert_eq!((page.total_results, page.items.len()), (2, 1));
    let calls = seen(&script);
    assert_eq!(calls.len(), 2);
    let (path, form) = &calls[1];
    assert_eq!(path, "/openapi/param2/1/com.alibaba.product/alibaba.product.list.get/1000000");
    assert_eq!(field(form, "pageSize"), Some("20"));
    assert_eq!(field(form, "statusList"), Some(r#"["published"]"#));
    assert_eq!(field(form, "access_token"), None);
    assert_eq!(field(form, "_aop_timestamp").map(str::len), Some(13));
    let unsigned: Vec<_> = form.iter().filter(|p| p.0 != "_aop_signature").cloned().collect();
    let path = "param2/1/com.alibaba.product/alibaba.product.list.get/1000000";
    assert_eq!(
        field(form, "_aop_signature").map(str::to_string),
        Some(wire::signature(path, &unsigned, &Secret::new(SECRET)))
    );

    // SKU details come from that listing, at no call.
    let skus = c.sku_get(&["SKU-REAL".to_string(), "SKU-GONE".to_string()]).await.expect("skus");
    assert_eq!(skus.iter().map(|s| s.sku_id.as_str()).collect::<Vec<_>>(), vec!["SKU-REAL"]);
    assert_eq!(seen(&script).len(), 2);

    // The count is the page's totalRecords, asked with one row.
    assert_eq!(c.items_count(&member, &filter).await.expect("count"), 2);
    assert_eq!(field(&seen(&script)[2].1, "pageSize"), Some("1"));

    // An empty answer for one product id: gone.
    assert_eq!(c.item_get("601234567890").await.expect("item"), None);
    assert_eq!(field(&seen(&script)[3].1, "productIds"), Some("[601234567890]"));

    // What param2 cannot do fails typed, without a call.
    let before = seen(&script).len();
    let e = c.seller_cats(&member).await.expect_err("no seller categories on param2");
    assert_eq!(e.kind(), "unsupported");
    assert!(e.to_string().contains("alibaba.seller.cats.list.get"), "{e}");
    let url: crate::api::ShopRef = "https://shop12345678.1688.com".parse().expect("shop url");
    assert_eq!(c.resolve(&url).await.map_err(|e| e.kind()), Err("unsupported"));
    assert_eq!(
        c.call("alibaba.seller.items.list.get", &[]).await.map_err(|e| e.kind()).err(),
        Some("unsupported")
    );
    let e = c.items_list(&member, &filter, 1, 40, SortType::ModifiedAsc).await.expect_err("40 > 20");
    assert_eq!(e.kind(), "argument");
    assert_eq!(seen(&script).len(), before);
}

#[tokio::test]
async fn gateway_refusals_are_not_retried_and_the_quota_stops_the_account() {
    let (root, script) = start(vec![(400, fx::GW_ACL_DECLINE), (400, fx::GW_NO_USAGE_LEFT)]).await;
    let c = client(&root, false, Hooks::default());
    let e = c.item_get("1").await.expect_err("acl");
    assert!(matches!(e, ApiError::ApiNotGranted { .. }), "{e:?}");
    assert_eq!(seen(&script).len(), 1, "never retried");
    let e = c.item_get("1").await.expect_err("quota");
    assert!(
        matches!(&e, ApiError::QuotaExhausted { account, until_ms } if account == "p2" && *until_ms > 0),
        "{e:?}"
    );
    // The account is out: the next call does not leave the process.
    assert_eq!(c.item_get("1").await.map_err(|e| e.kind()).err(), Some("quota"));
    assert_eq!(seen(&script).len(), 2);
}

#[tokio::test]
async fn http_401_refreshes_the_token_once_on_the_param2_endpoint() {
    let (root, script) =
        start(vec![(401, r#"{"error_code":"401","error_message":"Request need user authorized"}"#)]).await;
    let tokens = Arc::new(MemoryTokenStore::default());
    tokens.save(
        "p2",
        &Token {
            access_token: Secret::new("tok-old"),
            expires_at_ms: i64::MAX / 2,
            refresh_token: Some(Secret::new("ref-1")),
            refresh_expires_at_ms: None,
            resource_owner: None,
            member_id: None,
        },
    );
    let hooks = Hooks { tokens: tokens.clone(), ..Hooks::default() };
    let c = client(&root, true, hooks);
    assert_eq!(c.item_get("1").await.expect("after one refresh"), None);
    let calls = seen(&script);
    assert_eq!(calls.len(), 3, "{:?}", calls.iter().map(|c| &c.0).collect::<Vec<_>>());
    assert_eq!(field(&calls[0].1, "access_token"), Some("tok-old"));
    assert_eq!(calls[1].0, "/openapi/http/1/system.oauth2/getToken/1000000");
    assert_eq!(field(&calls[1].1, "grant_type"), Some("refresh_token"));
    assert_eq!(field(&calls[1].1, "refresh_token"), Some("ref-1"));
    assert_eq!(field(&calls[2].1, "access_token"), Some("tok-new"));
    assert_eq!(tokens.load("p2").map(|t| t.access_token), Some(Secret::new("tok-new")));
}

#[tokio::test]
async fn a_refresh_token_in_its_last_days_is_postponed_with_a_signed_call() {
    let (root, script) = start(vec![]).await;
    // As on the platform: a refresh grant sends no new refresh token, so the old one (and
    // its end) must survive it for the postponing to see it.
    if let Ok(mut s) = script.lock() {
        s.token_answer = Some((200, r#"{"access_token":"tok-new","expires_in":"36000"}"#.into()));
    }
    let now = crate::clock::now_ms();
    let tokens = Arc::new(MemoryTokenStore::default());
    tokens.save(
        "p2",
        &Token {
            access_token: Secret::new("tok-old"),
            expires_at_ms: 0,
            refresh_token: Some(Secret::new("ref-1")),
            refresh_expires_at_ms: Some(now + 10 * 86_400_000),
            resource_owner: Some("login".into()),
            member_id: None,
        },
    );
    let c = client(&root, true, Hooks { tokens: tokens.clone(), ..Hooks::default() });
    assert_eq!(c.item_get("1").await.expect("a call"), None);
    let calls = seen(&script);
    let paths: Vec<&str> = calls.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(paths[..2], ["/openapi/http/1/system.oauth2/getToken/1000000", POSTPONE_PATH], "{paths:?}");
    let form = &calls[1].1;
    assert_eq!(field(form, "access_token"), Some("tok-new"));
    assert_eq!(field(form, "refresh_token"), Some("ref-1"));
    let unsigned: Vec<_> = form.iter().filter(|p| p.0 != "_aop_signature").cloned().collect();
    let path = POSTPONE_PATH.trim_start_matches("/openapi/");
    assert_eq!(
        field(form, "_aop_signature"),
        Some(wire::signature(path, &unsigned, &Secret::new(SECRET)).as_str())
    );
    let t = tokens.load("p2").expect("stored");
    assert_eq!(t.refresh_token, Some(Secret::new("ref-3")));
    assert_eq!(t.refresh_expires_at_ms, super::parse_compact(POSTPONED_UNTIL));
    assert_eq!(t.resource_owner.as_deref(), Some("login"));
}

#[tokio::test]
async fn no_token_and_no_refresh_token_is_a_clear_refusal() {
    let (root, script) = start(vec![]).await;
    let c = client(&root, true, Hooks::default());
    let e = c.item_get("1").await.expect_err("no token");
    assert_eq!(e.kind(), "auth");
    assert!(e.to_string().contains("run shopsync auth --account p2"), "{e}");
    assert!(seen(&script).is_empty());
}

#[tokio::test]
async fn a_refusal_of_the_token_endpoint_is_an_auth_error() {
    let (root, script) = start(vec![]).await;
    if let Ok(mut s) = script.lock() {
        s.token_answer =
            Some((400, r#"{"error_code":"gw.AppKeyNotFound","error_message":"appKey not found"}"#.into()));
    }
    let tokens = Arc::new(MemoryTokenStore::default());
    tokens.save(
        "p2",
        &Token {
            access_token: Secret::new("tok-old"),
            expires_at_ms: 0,
            refresh_token: Some(Secret::new("ref-secret-1")),
            refresh_expires_at_ms: None,
            resource_owner: None,
            member_id: None,
        },
    );
    let c = client(&root, true, Hooks { tokens, ..Hooks::default() });
    let e = c.item_get("1").await.expect_err("refused");
    assert_eq!(e.kind(), "auth");
    let text = e.to_string();
    assert!(text.contains("gw.AppKeyNotFound"), "{text}");
    assert!(!text.contains("ref-secret-1") && !text.contains(SECRET), "{text}");
}
