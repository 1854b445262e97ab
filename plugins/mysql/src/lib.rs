//! The MySQL/MariaDB sink: the same contract as the PostgreSQL one.
//!
//! `items` holds each item's current state, typed columns beside the raw item JSON, upserted
//! with `INSERT … ON DUPLICATE KEY UPDATE` guarded by `last_seq` so an older event delivered
//! again changes nothing; deletes mark the row. `item_changes` takes every event once
//! (`INSERT IGNORE` on its `id`). utf8mb4 throughout: titles are Chinese.
//!
//! The connection is opened lazily and rebuilt after any failure that is not the batch's
//! fault (see [`class_of`]): a restart or a `KILL` costs one retried call, never a dead
//! letter; a connection lost mid-call is replaced and the batch tried once more at once.
//!
//! Config (see `TableConfig`): `url` or `dsn` (e.g. `mysql://root@127.0.0.1:3306/shop`),
//! `password`, `items_table` (default `items`), `changes_table` (default `item_changes`),
//! `connect_timeout_ms`. `sslmode` may only be `disable`: this build has no TLS for MySQL.

use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder, Value};
use shopsync_sink_abi::event::{newest_per_item, Event, TableConfig};
use shopsync_sink_abi::{export_sink, Sink, SinkError};
use std::time::Duration;

/// Reads and writes give up before the host's default 30 s call timeout, so a server that
/// stops answering is reported as a retryable failure rather than as a stuck sink.
const IO_TIMEOUT: Duration = Duration::from_secs(25);

pub struct Mysql {
    opts: Opts,
    conn: Option<Conn>,
    items: String,
    changes: String,
}

/// What an error says about the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The batch holds a value the server will never take: only splitting it helps.
    Data,
    /// Anything else (connection lost or killed, deadlock, lock wait timeout, shutdown, disk
    /// or table full, unknown database or table, access denied): can pass later.
    Transient,
}

/// Server errors that are the batch's fault though their SQLSTATE is the generic `HY000`.
const DATA_CODES: [u16; 6] = [
    1265, // WARN_DATA_TRUNCATED
    1300, // ER_INVALID_CHARACTER_STRING
    1366, // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
    1411, // ER_WRONG_VALUE_FOR_TYPE
    3140, // ER_INVALID_JSON_TEXT (MySQL)
    4038, // ER_JSON_SYNTAX (MariaDB)
];

/// Classifies a server error by SQLSTATE and code: data exceptions (class 22), integrity
/// constraint violations (class 23, which includes MariaDB's JSON `CHECK`) and the few data
/// errors above reject; everything else, and every error that is not the server's (I/O, a
/// closed socket), is retried.
pub fn class_of(sqlstate: &str, code: u16) -> Class {
    if sqlstate.starts_with("22") || sqlstate.starts_with("23") || DATA_CODES.contains(&code) {
        Class::Data
    } else {
        Class::Transient
    }
}

/// The error as the host sees it. Driver and server messages name hosts, users and columns,
/// never the password (which the host also scrubs).
fn classify(e: &mysql::Error) -> SinkError {
    match e {
        mysql::Error::MySqlError(m) => match class_of(&m.state, m.code) {
            Class::Data => SinkError::Reject(format!("mysql: {m}")),
            Class::Transient => SinkError::Retry(format!("mysql: {m}")),
        },
        mysql::Error::IoError(io) => SinkError::Retry(format!("mysql: connection: {}", io.kind())),
        mysql::Error::UrlError(_) => SinkError::Retry("mysql: the url does not parse".into()),
        other => SinkError::Retry(format!("mysql: {other}")),
    }
}

/// `(?, ?, …)` repeated `rows` times.
fn placeholders(cols: usize, rows: usize) -> String {
    let one = format!("({})", vec!["?"; cols].join(","));
    vec![one; rows].join(",")
}

fn num(n: Option<i64>) -> Value {
    n.map_or(Value::NULL, Value::Int)
}

fn text(s: Option<String>) -> Value {
    s.map_or(Value::NULL, |s| Value::Bytes(s.into_bytes()))
}

impl Mysql {
    fn connect(&self) -> Result<Conn, SinkError> {
        let mut conn = Conn::new(self.opts.clone()).map_err(|e| classify(&e))?;
        let (items, changes) = (&self.items, &self.changes);
        // On every connection, not once: the tables may have been dropped, or the database
        // recreated, while we were away.
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {items} (
                shop VARCHAR(32) NOT NULL, item_id VARCHAR(32) NOT NULL, title TEXT, cid VARCHAR(32),
                price_source VARCHAR(16), moq BIGINT, sales BIGINT, stock BIGINT, status VARCHAR(16),
                modified_ms BIGINT, md5 CHAR(32), last_seq BIGINT NOT NULL, deleted BOOLEAN NOT NULL DEFAULT FALSE,
                item JSON NOT NULL, PRIMARY KEY (shop, item_id)
             ) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci"
        ))
        .map_err(|e| classify(&e))?;
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {changes} (
                id VARCHAR(80) NOT NULL PRIMARY KEY, seq BIGINT NOT NULL, shop VARCHAR(32) NOT NULL,
                item_id VARCHAR(32) NOT NULL, op VARCHAR(8) NOT NULL, changed JSON NOT NULL, md5 CHAR(32),
                modified_ms BIGINT, observed_ms BIGINT, item JSON NOT NULL
             ) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci"
        ))
        .map_err(|e| classify(&e))?;
        Ok(conn)
    }
}

fn write(
    conn: &mut Conn,
    upsert: &str,
    items: Vec<Value>,
    append: &str,
    changes: Vec<Value>,
) -> mysql::Result<()> {
    let mut tx = conn.start_transaction(mysql::TxOpts::default())?;
    tx.exec_drop(upsert, items)?;
    tx.exec_drop(append, changes)?;
    tx.commit()
}

impl Sink for Mysql {
    fn create(config: serde_json::Value) -> Result<Self, String> {
        let cfg: TableConfig =
            serde_json::from_value(config).map_err(|e| format!("mysql sink config: {e}"))?;
        let (items, changes) = cfg.tables('`')?;
        if cfg.sslmode.as_deref().is_some_and(|m| m != "disable") {
            return Err("mysql: this build has no TLS for MySQL; sslmode may only be \"disable\"".into());
        }
        // The url's own text never goes into a message: it may hold a password.
        let opts = Opts::from_url(cfg.target().map_err(|e| format!("mysql: {e}"))?)
            .map_err(|_| "mysql: the url does not parse (mysql://user@host:port/database)".to_string())?;
        let mut opts = OptsBuilder::from_opts(opts)
            .init(vec!["SET NAMES utf8mb4"])
            .tcp_connect_timeout(Some(Duration::from_millis(cfg.connect_timeout_ms)))
            .read_timeout(Some(IO_TIMEOUT))
            .write_timeout(Some(IO_TIMEOUT));
        if let Some(p) = cfg.password {
            opts = opts.pass(Some(p));
        }
        // No connection yet: a server that is down at start must not keep the sink from
        // existing; the first delivery connects (and a failure there is retried).
        Ok(Mysql { opts: opts.into(), conn: None, items, changes })
    }

    fn deliver(&mut self, events: &[u8]) -> Result<(), SinkError> {
        let events = Event::parse_batch(events)?;
        if events.is_empty() {
            return Ok(());
        }
        let last = newest_per_item(&events);
        let mut item_params: Vec<Value> = Vec::with_capacity(last.len() * 14);
        for e in &last {
            let c = e.columns()?;
            item_params.extend([
                Value::from(&e.shop),
                Value::from(&e.item_id),
                text(c.title),
                text(c.cid),
                text(c.price_source),
                num(c.moq),
                num(c.sales),
                num(c.stock),
                text(c.status),
                Value::Int(e.modified_ms),
                Value::from(&e.md5),
                Value::Int(e.seq),
                Value::Int(i64::from(e.is_delete())),
                Value::from(e.item.get()),
            ]);
        }
        // Columns update only when the event is newer; `last_seq` goes last because MySQL
        // evaluates the assignments left to right.
        let newer = "VALUES(last_seq) > last_seq";
        let set: Vec<String> = [
            "title",
            "cid",
            "price_source",
            "moq",
            "sales",
            "stock",
            "status",
            "modified_ms",
            "md5",
            "deleted",
            "item",
            "last_seq",
        ]
        .iter()
        .map(|c| format!("{c} = IF({newer}, VALUES({c}), {c})"))
        .collect();
        let upsert = format!(
            "INSERT INTO {} (shop, item_id, title, cid, price_source, moq, sales, stock, status, modified_ms, md5, last_seq, deleted, item) VALUES {} ON DUPLICATE KEY UPDATE {}",
            self.items,
            placeholders(14, last.len()),
            set.join(", ")
        );
        let mut change_params: Vec<Value> = Vec::with_capacity(events.len() * 10);
        for e in &events {
            change_params.extend([
                Value::from(&e.id),
                Value::Int(e.seq),
                Value::from(&e.shop),
                Value::from(&e.item_id),
                Value::from(&e.op),
                Value::from(serde_json::to_string(&e.changed).unwrap_or_default()),
                Value::from(&e.md5),
                Value::Int(e.modified_ms),
                Value::Int(e.observed_ms),
                Value::from(e.item.get()),
            ]);
        }
        let append = format!(
            "INSERT IGNORE INTO {} (id, seq, shop, item_id, op, changed, md5, modified_ms, observed_ms, item) VALUES {}",
            self.changes,
            placeholders(10, events.len())
        );
        // Two tries: a connection that died while idle (or was killed mid-batch) is replaced
        // at once rather than after the host's backoff. A fresh connection that fails is not
        // retried here: the host's backoff is the right pace for a server that is down.
        for attempt in 0..2 {
            let fresh = self.conn.is_none();
            let conn = match self.conn.take() {
                Some(c) => self.conn.insert(c),
                None => self.conn.insert(self.connect()?),
            };
            match write(conn, &upsert, item_params.clone(), &append, change_params.clone()) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let err = classify(&e);
                    if let SinkError::Retry(_) = err {
                        // Never reuse a connection after a transient error: it may be dead or
                        // half-way through a transaction we cannot see from here.
                        self.conn = None;
                        if !fresh && attempt == 0 {
                            continue;
                        }
                    }
                    return Err(err);
                }
            }
        }
        Err(SinkError::Retry("mysql: the connection failed twice".into()))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_errors_reject_everything_else_retries() {
        for (state, code) in [
            ("22001", 1406), // data too long for a column
            ("22003", 1264), // out of range
            ("23000", 1048), // column cannot be null
            ("23000", 4025), // MariaDB CHECK (json_valid) failed: not JSON
            ("HY000", 1366), // incorrect string value
            ("22032", 3140), // MySQL: invalid JSON text
        ] {
            assert_eq!(class_of(state, code), Class::Data, "{state} {code}");
        }
        for (state, code) in [
            ("40001", 1213), // deadlock
            ("HY000", 1205), // lock wait timeout
            ("70100", 1927), // MariaDB: connection was killed (KILL)
            ("70100", 1317), // query interrupted
            ("08S01", 1053), // server shutdown in progress
            ("HY000", 1021), // disk full
            ("HY000", 1114), // table is full
            ("08004", 1040), // too many connections
            ("28000", 1045), // access denied: a user created later
            ("42000", 1049), // unknown database: created later
            ("42S02", 1146), // a table dropped under us: recreated on reconnect
            ("HY000", 1290), // --read-only (a replica after failover)
        ] {
            assert_eq!(class_of(state, code), Class::Transient, "{state} {code}");
        }
    }

    #[test]
    fn io_errors_retry() {
        let e = mysql::Error::IoError(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(matches!(classify(&e), SinkError::Retry(_)));
    }

    #[test]
    fn create_does_not_connect_and_keeps_the_url_out_of_errors() {
        let ok = serde_json::json!({"url": "mysql://root@127.0.0.1:1/x"});
        assert!(Mysql::create(ok).is_ok(), "a server that is down does not fail create");
        let bad = serde_json::json!({"url": "postgres://u:hunter2@h/x"});
        let err = Mysql::create(bad).err().unwrap_or_default();
        assert!(!err.contains("hunter2") && err.contains("does not parse"), "{err}");
        let tls = serde_json::json!({"url": "mysql://root@h/x", "sslmode": "require"});
        assert!(Mysql::create(tls).is_err());
    }
}

export_sink!("mysql", Mysql);
