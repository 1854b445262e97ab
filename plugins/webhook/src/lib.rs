//! The webhook sink: POSTs each batch (a JSON array of events) to a URL, with the header
//! `X-Shopsync-Signature: sha256=<hex HMAC-SHA256 of the body>` so the receiver can tell the
//! batch came from us. 5xx answers, timeouts and connection errors are retried a few times
//! and then handed back as retryable; a 4xx is the receiver refusing the batch, which is
//! reported as a rejection (the host dead-letters it after its configured tries).
//!
//! Config: `url`; the HMAC key from `secret_env` (an environment variable) or `secret_file`;
//! `timeout_ms` (default 10000); `retries` (default 2).

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use shopsync_sink_abi::{export_sink, Sink, SinkError};
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
    #[serde(default)]
    secret_env: Option<String>,
    #[serde(default)]
    secret_file: Option<String>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_retries")]
    retries: u32,
}

fn default_timeout_ms() -> u64 {
    10_000
}
fn default_retries() -> u32 {
    2
}

pub struct Webhook {
    url: String,
    key: Vec<u8>,
    agent: ureq::Agent,
    retries: u32,
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
}

impl Sink for Webhook {
    fn create(config: serde_json::Value) -> Result<Self, String> {
        let cfg: Config = serde_json::from_value(config).map_err(|e| format!("webhook sink config: {e}"))?;
        let key = match (&cfg.secret_env, &cfg.secret_file) {
            (Some(var), None) => {
                std::env::var(var).map_err(|_| format!("webhook: environment variable {var} is not set"))?
            }
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| format!("webhook: cannot read {f}: {e}"))?
                .trim()
                .to_string(),
            _ => return Err("webhook: give exactly one of secret_env and secret_file".into()),
        };
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_millis(cfg.timeout_ms)).build();
        Ok(Webhook { url: cfg.url, key: key.into_bytes(), agent, retries: cfg.retries })
    }

    fn deliver(&mut self, events: &[u8]) -> Result<(), SinkError> {
        let signature = self.sign(events);
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(100 << attempt.min(6)));
            }
            let res = self
                .agent
                .post(&self.url)
                .set("Content-Type", "application/json")
                .set("X-Shopsync-Signature", &signature)
                .send_bytes(events);
            match res {
                Ok(_) => return Ok(()),
                Err(ureq::Error::Status(code, _)) if (400..500).contains(&code) => {
                    return Err(SinkError::Reject(format!(
                        "webhook: the receiver refused the batch with HTTP {code}"
                    )));
                }
                Err(ureq::Error::Status(code, _)) => last = format!("webhook: HTTP {code}"),
                Err(e) => last = format!("webhook: {}", e.kind()),
            }
        }
        Err(SinkError::Retry(last))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

export_sink!("webhook", Webhook);
