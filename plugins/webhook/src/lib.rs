//! The webhook sink: POSTs each batch (a JSON array of events) to a URL, with the header
//! `X-Shopsync-Signature: sha256=<hex HMAC-SHA256 of the body>` so the receiver can tell the
//! batch came from us.
//!
//! 5xx answers, 408 (request timeout), 429 (too many requests), timeouts and connection
//! errors are retried a few times, waiting what `Retry-After` asks when the receiver sends
//! it, and then handed back as retryable; any other 4xx is the receiver refusing the batch,
//! reported as a rejection (the host splits the batch to find the events it refuses). All
//! of a call's tries, waits included, fit in `deadline_ms`, which must stay below the sink's
//! `timeout` on the host (default 30 s) so the host never sees a plugin that retries as a
//! stuck one; a `Retry-After` longer than what is left ends the call as retryable at once.
//!
//! Config: `url`; `secret`, the HMAC key (give it as `secret_env` or `secret_file`: the host
//! resolves those, see `daemon/src/sinks/secrets.rs`); `timeout_ms` per request (default
//! 10000); `retries` (default 2); `deadline_ms` (default 20000).

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use shopsync_sink_abi::{export_sink, Sink, SinkError};
use std::time::{Duration, Instant, SystemTime};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
    secret: String,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_retries")]
    retries: u32,
    #[serde(default = "default_deadline_ms")]
    deadline_ms: u64,
}

fn default_timeout_ms() -> u64 {
    10_000
}
fn default_retries() -> u32 {
    2
}
fn default_deadline_ms() -> u64 {
    20_000
}

pub struct Webhook {
    url: String,
    key: Vec<u8>,
    agent: ureq::Agent,
    timeout: Duration,
    retries: u32,
    deadline: Duration,
}

/// How one request ended.
#[derive(Debug, PartialEq)]
enum Outcome {
    Accepted,
    Refused(u16),
    /// Worth another try, after `wait` if the receiver said how long.
    Again {
        why: String,
        wait: Option<Duration>,
    },
}

/// Classifies an HTTP status: 2xx/3xx accepted (ureq follows redirects), 408 and 429 and 5xx
/// retried, any other 4xx refused.
fn outcome_of(code: u16, retry_after: Option<&str>, now: SystemTime) -> Outcome {
    match code {
        408 | 429 | 500..=599 => Outcome::Again {
            why: format!("HTTP {code}"),
            wait: retry_after.and_then(|v| parse_retry_after(v, now)),
        },
        400..=499 => Outcome::Refused(code),
        _ => Outcome::Accepted,
    }
}

/// `Retry-After` is either delay-seconds or an HTTP date (RFC 9110 10.2.3).
fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

impl Webhook {
    fn sign(&self, body: &[u8]) -> String {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mut mac) => {
                mac.update(body);
                format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
            }
            Err(_) => String::new(),
        }
    }

    fn post(&self, body: &[u8], signature: &str, timeout: Duration) -> Outcome {
        let res = self
            .agent
            .post(&self.url)
            .timeout(timeout)
            .set("Content-Type", "application/json")
            .set("X-Shopsync-Signature", signature)
            .send_bytes(body);
        match res {
            Ok(r) => outcome_of(r.status(), None, SystemTime::now()),
            Err(ureq::Error::Status(code, r)) => outcome_of(code, r.header("Retry-After"), SystemTime::now()),
            // The kind only: the error's text can hold the URL, which may carry a token.
            Err(e) => Outcome::Again { why: e.kind().to_string(), wait: None },
        }
    }
}

impl Sink for Webhook {
    fn create(config: serde_json::Value) -> Result<Self, String> {
        let cfg: Config = serde_json::from_value(config).map_err(|e| format!("webhook sink config: {e}"))?;
        let agent = ureq::AgentBuilder::new().build();
        Ok(Webhook {
            url: cfg.url,
            key: cfg.secret.into_bytes(),
            agent,
            timeout: Duration::from_millis(cfg.timeout_ms),
            retries: cfg.retries,
            deadline: Duration::from_millis(cfg.deadline_ms),
        })
    }

    fn deliver(&mut self, events: &[u8]) -> Result<(), SinkError> {
        let signature = self.sign(events);
        let end = Instant::now() + self.deadline;
        let mut last = String::from("webhook: no time left to try");
        for attempt in 0..=self.retries {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.post(events, &signature, self.timeout.min(left)) {
                Outcome::Accepted => return Ok(()),
                Outcome::Refused(code) => {
                    return Err(SinkError::Reject(format!(
                        "webhook: the receiver refused the batch with HTTP {code}"
                    )))
                }
                Outcome::Again { why, wait } => {
                    last = format!("webhook: {why}");
                    if attempt == self.retries {
                        break;
                    }
                    let wait = wait.unwrap_or(Duration::from_millis(100 << attempt.min(6)));
                    let left = end.saturating_duration_since(Instant::now());
                    if wait >= left {
                        // Waiting would outlive the call's budget: the host retries later.
                        return Err(SinkError::Retry(format!("{last}; the receiver asked to wait {wait:?}")));
                    }
                    std::thread::sleep(wait);
                }
            }
        }
        Err(SinkError::Retry(last))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(outcome_of(200, None, now), Outcome::Accepted);
        assert_eq!(outcome_of(400, None, now), Outcome::Refused(400));
        assert_eq!(outcome_of(422, None, now), Outcome::Refused(422));
        for code in [408, 429, 500, 503] {
            assert!(matches!(outcome_of(code, None, now), Outcome::Again { wait: None, .. }), "{code}");
        }
        assert_eq!(
            outcome_of(429, Some("3"), now),
            Outcome::Again { why: "HTTP 429".into(), wait: Some(Duration::from_secs(3)) }
        );
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}

export_sink!("webhook", Webhook);
