//! The JSONL sink: appends each event as one line to a file, fsyncs every batch, and rotates
//! the file when it would grow past `max_bytes` (`events.jsonl` → `events.jsonl.1` → ... up
//! to `keep` old files).
//!
//! Config: `path` (required), `max_bytes` (default 256 MiB), `keep` (default 5).

use serde::Deserialize;
use serde_json::value::RawValue;
use shopsync_sink_abi::{export_sink, Sink, SinkError};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    path: PathBuf,
    #[serde(default = "default_max_bytes")]
    max_bytes: u64,
    #[serde(default = "default_keep")]
    keep: u32,
}

fn default_max_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_keep() -> u32 {
    5
}

pub struct Jsonl {
    cfg: Config,
    file: File,
    size: u64,
}

fn open(path: &PathBuf) -> Result<(File, u64), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let size = complete_lines(&file).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok((file, size))
}

/// Cuts a torn last line (a write cut short by a crash or a full disk) off the file and
/// returns the length that is left. That batch was never acknowledged, so the host delivers
/// it again in full.
fn complete_lines(file: &File) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    let mut end = len;
    let mut reader = file;
    let mut chunk = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let n = (end - start) as usize;
        reader.seek(SeekFrom::Start(start))?;
        reader.read_exact(&mut chunk[..n])?;
        if let Some(i) = chunk[..n].iter().rposition(|&b| b == b'\n') {
            end = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    if end < len {
        file.set_len(end)?;
        file.sync_all()?;
    }
    Ok(end)
}

impl Jsonl {
    fn rotate(&mut self) -> Result<(), SinkError> {
        let io = |e: std::io::Error| SinkError::Retry(format!("rotating {}: {e}", self.cfg.path.display()));
        self.file.sync_all().map_err(io)?;
        let name = |n: u32| PathBuf::from(format!("{}.{n}", self.cfg.path.display()));
        for n in (1..self.cfg.keep).rev() {
            if name(n).exists() {
                std::fs::rename(name(n), name(n + 1)).map_err(io)?;
            }
        }
        if self.cfg.keep > 0 {
            std::fs::rename(&self.cfg.path, name(1)).map_err(io)?;
        } else {
            std::fs::remove_file(&self.cfg.path).map_err(io)?;
        }
        let (file, size) = open(&self.cfg.path).map_err(SinkError::Retry)?;
        self.file = file;
        self.size = size;
        Ok(())
    }
}

impl Sink for Jsonl {
    fn create(config: serde_json::Value) -> Result<Self, String> {
        let cfg: Config = serde_json::from_value(config).map_err(|e| format!("jsonl sink config: {e}"))?;
        let (file, size) = open(&cfg.path)?;
        Ok(Jsonl { cfg, file, size })
    }

    fn deliver(&mut self, events: &[u8]) -> Result<(), SinkError> {
        let list: Vec<&RawValue> = serde_json::from_slice(events)
            .map_err(|e| SinkError::Reject(format!("batch is not a JSON array: {e}")))?;
        let mut buf = Vec::with_capacity(events.len() + list.len());
        for ev in list {
            buf.extend_from_slice(ev.get().as_bytes());
            buf.push(b'\n');
        }
        if self.size > 0 && self.size + buf.len() as u64 > self.cfg.max_bytes {
            self.rotate()?;
        }
        let io = |e: std::io::Error| SinkError::Retry(format!("writing {}: {e}", self.cfg.path.display()));
        // One fsync per batch: the batch is durable before the host moves its cursor. A batch
        // that fails half-written (a full disk) is cut off again, so the retry appends whole lines.
        if let Err(e) = self.file.write_all(&buf).and_then(|()| self.file.sync_data()) {
            let _ = self.file.set_len(self.size);
            return Err(io(e));
        }
        self.size += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.file.sync_all().map_err(|e| SinkError::Retry(format!("fsync {}: {e}", self.cfg.path.display())))
    }
}

export_sink!("jsonl", Jsonl);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_lines_and_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ev.jsonl");
        let cfg = serde_json::json!({"path": path, "max_bytes": 60, "keep": 2});
        let mut s = Jsonl::create(cfg).unwrap();
        for i in 0..6 {
            s.deliver(format!(r#"[{{"id":"a{i}","x":"{}"}}]"#, "y".repeat(20)).as_bytes()).unwrap();
        }
        let current = std::fs::read_to_string(&path).unwrap();
        assert!(current.lines().count() >= 1 && current.len() <= 60);
        assert!(dir.path().join("ev.jsonl.1").exists() && dir.path().join("ev.jsonl.2").exists());
        assert!(!dir.path().join("ev.jsonl.3").exists(), "keep = 2");
        assert!(matches!(s.deliver(b"{not json"), Err(SinkError::Reject(_))));
    }

    #[test]
    fn a_torn_last_line_is_cut_off_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ev.jsonl");
        let whole = format!("{{\"id\":\"a\",\"x\":\"{}\"}}\n", "y".repeat(5000));
        std::fs::write(&path, format!("{whole}{{\"id\":\"b\",\"x\":\"yy")).unwrap();
        let mut s = Jsonl::create(serde_json::json!({"path": path})).unwrap();
        s.deliver(br#"[{"id":"b"}]"#).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{whole}{{\"id\":\"b\"}}\n"));
        std::fs::write(&path, "no newline at all").unwrap();
        Jsonl::create(serde_json::json!({"path": path})).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }
}
