//! A sink that misbehaves on command, to prove the host survives it. Config:
//! `mode` = `panic` | `error` | `reject` | `hang` | `ok`, `times` (how many deliveries
//! misbehave before it recovers; default forever), `path` (where accepted batches go, one
//! JSON array per line), `hang_ms`.

use shopsync_sink_abi::{export_sink, Sink, SinkError};
use std::io::Write;

pub struct Testkit {
    mode: String,
    times: u64,
    path: Option<String>,
    hang_ms: u64,
}

impl Sink for Testkit {
    fn create(config: serde_json::Value) -> Result<Self, String> {
        if config["mode"] == "panic_on_create" {
            panic!("asked to panic in create");
        }
        Ok(Testkit {
            mode: config["mode"].as_str().unwrap_or("ok").to_string(),
            times: config["times"].as_u64().unwrap_or(u64::MAX),
            path: config["path"].as_str().map(String::from),
            hang_ms: config["hang_ms"].as_u64().unwrap_or(60_000),
        })
    }

    fn deliver(&mut self, events: &[u8]) -> Result<(), SinkError> {
        if self.times > 0 {
            self.times -= 1;
            match self.mode.as_str() {
                "panic" => panic!("asked to panic"),
                "error" => return Err(SinkError::Retry("asked to fail".into())),
                "reject" => return Err(SinkError::Reject("asked to reject".into())),
                "hang" => std::thread::sleep(std::time::Duration::from_millis(self.hang_ms)),
                _ => {}
            }
        }
        if let Some(p) = &self.path {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| SinkError::Retry(e.to_string()))?;
            f.write_all(events)
                .and_then(|()| f.write_all(b"\n"))
                .map_err(|e| SinkError::Retry(e.to_string()))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

export_sink!("testkit", Testkit);
