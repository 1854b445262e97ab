//! `shopsync auth`: how a param2 account gets its first token.
//!
//! param2 has no client-credentials grant: a shop owner must authorize the app in a browser,
//! the platform redirects to the app's `redirect_uri` with a `code` (which lives 2 minutes
//! and works once), and the code becomes an access token and a refresh token (about half a
//! year, postponed by the daemon within its last 30 days). This command prints the
//! authorization URL, takes the code (pasted, or from the redirect on a loopback port with
//! `--listen`), exchanges it and stores the token: in the state when no daemon runs, else
//! through the daemon's control socket (sled lets one process open the state).
//!
//! Nothing here prints the code, the secret or a token; the code is a [`Secret`] from the
//! moment it is read.

use super::route::{ask, target, Target};
use super::status::{span, utc};
use crate::api::{Client, Hooks, Protocol, Token};
use crate::clock::now_ms;
use crate::config::Settings;
use crate::control::Request;
use crate::secret::Secret;
use anyhow::{anyhow, bail, Context as _};
use std::io::{BufRead, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What `shopsync auth` was asked.
pub struct AuthArgs {
    pub account: String,
    /// Receive the redirect on this loopback address instead of reading a pasted code.
    pub listen: Option<SocketAddr>,
    /// The redirect URI registered for the app; with `--listen`, defaults to the listener.
    pub redirect_uri: Option<String>,
    /// How long `--listen` waits for the redirect.
    pub timeout: Duration,
}

/// Runs the whole flow; `Ok(true)` once the token is stored.
pub async fn auth(config: &Path, args: AuthArgs) -> anyhow::Result<bool> {
    let settings = Settings::load(config)?;
    if settings.api.protocol != Protocol::Param2 {
        bail!(
            "shopsync auth is for [api] protocol = \"param2\"; the seed gateway issues OAuth tokens by itself (client credentials)"
        );
    }
    let Some(account) = settings.account(&args.account).cloned() else {
        let names: Vec<&str> = settings.accounts.iter().map(|a| a.name.as_str()).collect();
        bail!("{} has no account {:?} (its accounts: {})", config.display(), args.account, names.join(", "));
    };
    if !account.oauth {
        return Err(crate::api::AuthorizeError::NotOAuth(account.name).into());
    }
    // Fail now, not after the owner has clicked "allow", when the token could not be stored
    // (a state held by a process that does not answer). Nothing is held while waiting: the
    // daemon drops a silent control connection after seconds, and an open state would keep
    // a daemon from starting.
    drop(target(config)?);
    let listener = match args.listen {
        Some(addr) => {
            if !addr.ip().is_loopback() {
                bail!(
                    "--listen {addr}: the redirect listener only binds a loopback address (127.0.0.1 or ::1)"
                );
            }
            Some(TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?)
        }
        None => None,
    };
    let redirect_uri = match (&args.redirect_uri, &listener) {
        (Some(u), _) => u.clone(),
        (None, Some(l)) => format!("http://{}/", l.local_addr()?),
        (None, None) => bail!(
            "name the redirect URI registered for the app with --redirect-uri, or receive the redirect here with --listen 127.0.0.1:PORT"
        ),
    };
    let state = random_state()?;
    let url = authorize_url(&settings.api.authorize_url, &account.app_key, &redirect_uri, &state)?;
    eprintln!(
        "Open this address in a browser where the shop owner of account {} is logged in to 1688, and allow the app:",
        account.name
    );
    println!("{url}");
    std::io::stdout().flush()?;
    let code = match listener {
        Some(l) => {
            eprintln!(
                "Waiting up to {} for the redirect to {redirect_uri} ...",
                span(args.timeout.as_millis() as i64)
            );
            receive(l, &state, args.timeout).await?
        }
        None => {
            eprintln!("Then paste the code, or the whole address the browser was sent to, and press Enter (the code lives 2 minutes):");
            let line = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line).map(|_| line)
            })
            .await?
            .context("cannot read the code from stdin")?;
            pasted_code(&line, &state)?
        }
    };
    let client = Client::new(settings.api.clone(), account.clone(), Hooks::default())?;
    let token = client.authorize_code(&code, &redirect_uri).await?;
    let summary = summary(&account.name, &token, now_ms());
    match target(config)? {
        Target::Daemon(c) => {
            if !ask(c, &Request::StoreToken { account: account.name.clone(), token })? {
                return Ok(false);
            }
        }
        Target::Local(ctx) => {
            ctx.client(Some(&account.name))?.install_token(token).await?;
            ctx.store.flush().await?;
        }
    }
    println!("{summary}");
    Ok(true)
}

/// Who authorized and for how long, without any token.
fn summary(account: &str, token: &Token, now: i64) -> String {
    let who = match (&token.resource_owner, &token.member_id) {
        (Some(o), Some(m)) => format!("{o} (member {m})"),
        (Some(o), None) => o.clone(),
        (None, Some(m)) => format!("member {m}"),
        (None, None) => "the shop owner".into(),
    };
    let lasts = match token.refresh_expires_at_ms {
        Some(e) => format!("lasts {} (until {})", span(e - now), utc(e)),
        None => "has no end date".into(),
    };
    format!(
        "account {account}: authorized by {who}; the authorization {lasts}, and the daemon postpones it in its last days"
    )
}

/// 128 random bits as hex: the `state` that ties the redirect to this run.
fn random_state() -> anyhow::Result<String> {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.try_fill_bytes(&mut b).map_err(|e| anyhow!("no randomness for the state: {e}"))?;
    Ok(hex::encode(b))
}

/// `<authorize>?client_id=<appKey>&site=1688&redirect_uri=<uri>&state=<state>`.
fn authorize_url(base: &str, app_key: &str, redirect_uri: &str, state: &str) -> anyhow::Result<String> {
    let mut url = reqwest::Url::parse(base).with_context(|| format!("api.param2_auth_url {base:?}"))?;
    url.query_pairs_mut()
        .append_pair("client_id", app_key)
        .append_pair("site", "1688")
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state);
    Ok(url.into())
}

/// The pairs of a query string (`a=1&b=2`, percent-decoded).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    let Ok(url) = reqwest::Url::parse(&format!("http://x/?{query}")) else { return Vec::new() };
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// The code in a redirect's query, after checking its `state`.
fn code_from_query(query: &str, state: &str) -> anyhow::Result<Secret> {
    let pairs = query_pairs(query);
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    if let Some(e) = get("error") {
        bail!(
            "the authorization was refused ({e}{}); nothing was stored",
            get("error_description").map(|d| format!(": {d}")).unwrap_or_default()
        );
    }
    match get("state") {
        Some(s) if s == state => {}
        Some(_) => bail!(
            "the redirect's state does not match this run's: it belongs to another authorization (or a forged link); start again"
        ),
        None => bail!("the redirect carries no state, so it cannot be tied to this run; paste the code alone, or start again"),
    }
    match get("code").filter(|c| !c.is_empty()) {
        Some(c) => Ok(Secret::new(c)),
        None => bail!("the redirect carries no code"),
    }
}

/// A pasted line: the bare code, or the whole address the browser was sent to.
fn pasted_code(line: &str, state: &str) -> anyhow::Result<Secret> {
    let text = line.trim();
    if text.is_empty() {
        bail!("no code was pasted; run shopsync auth again");
    }
    if text.contains("code=") || text.contains("error=") {
        let query = text.split_once('?').map_or(text, |(_, q)| q);
        let query = query.split('#').next().unwrap_or(query);
        return code_from_query(query, state);
    }
    if !text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)) {
        bail!("that does not look like a code (letters, digits and -_.~ only) nor like the address the browser was sent to");
    }
    Ok(Secret::new(text))
}

/// Longest request head the listener reads.
const MAX_HEAD: usize = 16 * 1024;

/// Answers browser requests on `listener` until one is the redirect with a code (or a
/// refusal), or `timeout` passes. Other requests (a favicon) get a 404 and are not fatal.
async fn receive(listener: TcpListener, state: &str, timeout: Duration) -> anyhow::Result<Secret> {
    let addr = listener.local_addr()?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let accepted = tokio::time::timeout_at(deadline, listener.accept()).await.map_err(|_| {
            anyhow!(
                "no redirect reached http://{addr}/ within {}: open the address above in a browser on this machine, or run shopsync auth without --listen and paste the code",
                span(timeout.as_millis() as i64)
            )
        })?;
        let Ok((mut stream, _)) = accepted else { continue };
        // A browser that connects and says nothing must not hold the listener.
        let Ok(Ok(Some(target))) =
            tokio::time::timeout(Duration::from_secs(5), request_target(&mut stream)).await
        else {
            continue;
        };
        let query = target.split_once('?').map_or("", |(_, q)| q);
        let pairs = query_pairs(query);
        if !pairs.iter().any(|(k, _)| k == "code" || k == "error") {
            respond(
                &mut stream,
                "404 Not Found",
                "This is shopsync waiting for the 1688 authorization redirect.",
            )
            .await;
            continue;
        }
        return match code_from_query(query, state) {
            Ok(code) => {
                respond(
                    &mut stream,
                    "200 OK",
                    "shopsync received the authorization. You can close this tab; the terminal says how it went.",
                )
                .await;
                Ok(code)
            }
            Err(e) => {
                respond(
                    &mut stream,
                    "400 Bad Request",
                    &format!("shopsync could not use this redirect: {e}"),
                )
                .await;
                Err(e)
            }
        };
    }
}

/// The target of an HTTP request (`/path?query`), from its request line.
async fn request_target(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next().unwrap_or("").split_whitespace();
    Ok(match (parts.next(), parts.next()) {
        (Some("GET"), Some(t)) => Some(t.to_string()),
        _ => None,
    })
}

async fn respond(stream: &mut TcpStream, status: &str, message: &str) {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>shopsync</title></head><body><p>{}</p></body></html>\n",
        message.replace('&', "&amp;").replace('<', "&lt;")
    );
    let reply = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_code_or_address_is_read_and_its_state_checked() {
        let st = "abc123";
        assert_eq!(
            pasted_code("  c0de-1\n", st).map(|c| c.expose().to_string()).ok().as_deref(),
            Some("c0de-1")
        );
        let url = "https://example.com/cb?code=c0de-2&state=abc123#top";
        assert_eq!(pasted_code(url, st).map(|c| c.expose().to_string()).ok().as_deref(), Some("c0de-2"));
        assert_eq!(pasted_code("code=c0de-3&state=abc123", st).ok().map(|c| c.expose().len()), Some(6));
        let e = pasted_code("https://example.com/cb?code=c0de-4&state=other", st).expect_err("wrong state");
        assert!(e.to_string().contains("state does not match") && !e.to_string().contains("c0de-4"), "{e}");
        let e = pasted_code("https://example.com/cb?code=c0de-5", st).expect_err("no state");
        assert!(e.to_string().contains("no state"), "{e}");
        let e =
            pasted_code("https://example.com/cb?error=access_denied&state=abc123", st).expect_err("denied");
        assert!(e.to_string().contains("access_denied"), "{e}");
        assert!(pasted_code("", st).is_err());
        assert!(pasted_code("two words", st).is_err());
    }

    #[test]
    fn the_authorize_url_carries_key_site_redirect_and_state() {
        let u =
            authorize_url("https://auth.1688.com/oauth/authorize", "1000000", "http://127.0.0.1:8765/", "s1")
                .expect("a URL");
        assert_eq!(
            u,
            "https://auth.1688.com/oauth/authorize?client_id=1000000&site=1688&redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2F&state=s1"
        );
        assert_eq!(random_state().map(|s| s.len()).ok(), Some(32));
    }

    #[test]
    fn the_summary_says_who_and_how_long_but_no_token() {
        let t = Token {
            access_token: Secret::new("acc-xyz"),
            expires_at_ms: 0,
            refresh_token: Some(Secret::new("ref-xyz")),
            refresh_expires_at_ms: Some(1_700_000_000_000 + 180 * 86_400_000),
            resource_owner: Some("shop-login".into()),
            member_id: Some("b2b-1".into()),
        };
        let s = summary("main", &t, 1_700_000_000_000);
        assert!(s.contains("shop-login (member b2b-1)") && s.contains("lasts 180d 0h"), "{s}");
        assert!(!s.contains("xyz"), "{s}");
    }

    #[tokio::test]
    async fn the_listener_skips_stray_requests_and_times_out_clearly() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let browser = tokio::spawn(async move {
            let get = |path: &'static str| async move {
                let mut s = TcpStream::connect(addr).await.expect("connect");
                s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
                    .await
                    .expect("send");
                let mut out = String::new();
                let _ = s.read_to_string(&mut out).await;
                out
            };
            (get("/favicon.ico").await, get("/?code=k-1&state=st").await)
        });
        let code = receive(l, "st", Duration::from_secs(5)).await.expect("the code");
        assert_eq!(code.expose(), "k-1");
        let (stray, page) = browser.await.expect("browser");
        assert!(stray.starts_with("HTTP/1.1 404"), "{stray}");
        assert!(page.starts_with("HTTP/1.1 200") && page.contains("close this tab"), "{page}");

        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let e = receive(l, "st", Duration::from_millis(50)).await.expect_err("timeout");
        assert!(e.to_string().contains("no redirect reached"), "{e}");
    }
}
