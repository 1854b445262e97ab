//! Secrets in a sink's `[sinks.config]`.
//!
//! Any top-level key `<key>_env` (the name of an environment variable) or `<key>_file` (a
//! path; one trailing newline is dropped) is replaced by `<key>` holding the value, just
//! before the plugin's `create`: `password_env = "PGPASSWORD"` reaches the plugin as
//! `password = "…"`. The host reads them rather than each plugin because then every plugin,
//! C ones included, follows the same rules, and because the host then knows the values and
//! scrubs them from every message a plugin hands back, which is what ends up in logs,
//! `status` and the dead-letter tree. The config itself (which `status`, reload diffs and
//! `Debug` output may show) holds only the variable's name or the file's path.
//!
//! Values given in the clear are scrubbed too: `password`, `secret` and `token` keys, and
//! the password inside a `url` / `dsn` (`scheme://user:PASSWORD@host`, libpq's
//! `password=PASSWORD`).

use serde_json::{Map, Value};
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("config key {key}: environment variable {var} is not set (or not UTF-8)")]
    EnvMissing { key: String, var: String },
    #[error("config key {key}: cannot read {path}: {why}")]
    File { key: String, path: String, why: String },
    #[error("config keys {key} and {other} both give {target}; keep one")]
    Twice { key: String, other: String, target: String },
    #[error("config key {key} must be a string (a variable name or a path)")]
    NotText { key: String },
}

/// The secret values one sink's config holds, to scrub from messages.
#[derive(Debug, Clone, Default)]
pub struct Secrets(Arc<Vec<String>>);

const HIDDEN: &str = "[redacted]";

impl Secrets {
    /// `msg` with every secret value replaced, longest first so that a secret containing
    /// another is hidden whole.
    pub fn scrub(&self, msg: &str) -> String {
        let mut out = msg.to_string();
        for s in self.0.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), HIDDEN);
            }
        }
        out
    }
}

/// The password part of a URL (`scheme://user:pw@host`) or a libpq string (`password=pw`,
/// possibly quoted).
fn password_in(conn: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some((_, rest)) = conn.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((_, pw)) = userinfo.split_once(':') {
                found.push(pw.to_string());
            }
        }
    }
    for part in ["password=", "password ="] {
        let mut rest = conn;
        while let Some(i) = rest.find(part) {
            let after = rest[i + part.len()..].trim_start();
            let pw = match after.strip_prefix('\'') {
                Some(q) => q.split('\'').next().unwrap_or(""),
                None => after.split([' ', '&']).next().unwrap_or(""),
            };
            found.push(pw.to_string());
            rest = &rest[i + part.len()..];
        }
    }
    found
}

/// The config the plugin gets (every `<key>_env` / `<key>_file` resolved) and the secrets
/// to scrub from what it says.
pub fn resolve(config: &Value) -> Result<(Value, Secrets), SecretError> {
    let Value::Object(map) = config else { return Ok((config.clone(), Secrets::default())) };
    let mut out = Map::new();
    let mut secrets = Vec::new();
    for (k, v) in map {
        let (target, how) = if let Some(t) = k.strip_suffix("_env") {
            (t, "env")
        } else if let Some(t) = k.strip_suffix("_file") {
            (t, "file")
        } else {
            if let Value::String(s) = v {
                if matches!(k.as_str(), "password" | "secret" | "token") {
                    secrets.push(s.clone());
                } else if matches!(k.as_str(), "url" | "dsn") {
                    secrets.extend(password_in(s));
                }
            }
            out.insert(k.clone(), v.clone());
            continue;
        };
        let Value::String(name) = v else { return Err(SecretError::NotText { key: k.clone() }) };
        for other in [target.to_string(), format!("{target}_env"), format!("{target}_file")] {
            if other != *k && map.contains_key(&other) {
                return Err(SecretError::Twice { key: k.clone(), other, target: target.into() });
            }
        }
        let value = if how == "env" {
            std::env::var(name).map_err(|_| SecretError::EnvMissing { key: k.clone(), var: name.clone() })?
        } else {
            let text = std::fs::read_to_string(name).map_err(|e| SecretError::File {
                key: k.clone(),
                path: name.clone(),
                why: e.kind().to_string(),
            })?;
            let t = text.strip_suffix('\n').unwrap_or(&text);
            t.strip_suffix('\r').unwrap_or(t).to_string()
        };
        if matches!(target, "url" | "dsn") {
            // A whole connection string from a secret store is secret as a whole, and so is
            // the password inside it.
            secrets.extend(password_in(&value));
        }
        secrets.push(value.clone());
        out.insert(target.to_string(), Value::String(value));
    }
    secrets.retain(|s| !s.is_empty());
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    Ok((Value::Object(out), Secrets(Arc::new(secrets))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn env_and_file_keys_become_the_value_and_are_scrubbed() {
        std::env::set_var("SHOPSYNC_TEST_PW_1", "s3cret-pw");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("dsn");
        std::fs::write(&f, "postgresql://app:file-pw@db/shop\n").unwrap();
        let cfg = json!({"password_env": "SHOPSYNC_TEST_PW_1", "dsn_file": f, "items_table": "items"});
        let (out, secrets) = resolve(&cfg).unwrap();
        assert_eq!(
            out,
            json!({"password": "s3cret-pw", "dsn": "postgresql://app:file-pw@db/shop", "items_table": "items"})
        );
        let msg = "auth failed for s3cret-pw at postgresql://app:file-pw@db/shop and file-pw";
        let shown = secrets.scrub(msg);
        assert!(!shown.contains("s3cret") && !shown.contains("file-pw"), "{shown}");
        assert!(shown.contains("items") || shown.contains("auth failed"), "{shown}");
    }

    #[test]
    fn clear_passwords_in_urls_are_scrubbed_too() {
        let (_, s) = resolve(&json!({"url": "mysql://root:hunter22@127.0.0.1:3306/shop"})).unwrap();
        assert_eq!(s.scrub("denied: hunter22"), "denied: [redacted]");
        let (_, s) = resolve(&json!({"url": "host=h user=u password='p w' dbname=x"})).unwrap();
        assert_eq!(s.scrub("x p w y"), "x [redacted] y");
        let (_, s) = resolve(&json!({"url": "host=h password=abc123 dbname=x"})).unwrap();
        assert_eq!(s.scrub("abc123"), "[redacted]");
    }

    #[test]
    fn mistakes_name_the_key_never_a_value() {
        let e = resolve(&json!({"password_env": "SHOPSYNC_TEST_UNSET_VAR"})).unwrap_err();
        assert_eq!(
            e,
            SecretError::EnvMissing { key: "password_env".into(), var: "SHOPSYNC_TEST_UNSET_VAR".into() }
        );
        let e = resolve(&json!({"password_file": "/nonexistent/pw"})).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/pw"), "{e}");
        let e = resolve(&json!({"password": "x", "password_env": "A"})).unwrap_err();
        assert!(matches!(e, SecretError::Twice { .. }), "{e}");
        let e = resolve(&json!({"secret_env": "A", "secret_file": "B"})).unwrap_err();
        assert!(matches!(e, SecretError::Twice { .. }), "{e}");
        assert!(matches!(resolve(&json!({"token_env": 5})), Err(SecretError::NotText { .. })));
    }
}
