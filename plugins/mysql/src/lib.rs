//! The MySQL/MariaDB sink: the same contract as the PostgreSQL one.
//!
//! `items` holds each item's current state, typed columns beside the raw item JSON, upserted
//! with `INSERT … ON DUPLICATE KEY UPDATE` guarded by `last_seq` so an older event delivered
//! again changes nothing; deletes mark the row. `item_changes` takes every event once
//! (`INSERT IGNORE` on its `id`). utf8mb4 throughout: titles are Chinese.
//!
//! Config: `url` (e.g. `mysql://root@127.0.0.1:3306/shop`), `items_table` (default
//! `items`), `changes_table` (default `item_changes`).

use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder, Value};
use shopsync_sink_abi::event::{newest_per_item, Event, TableConfig};
use shopsync_sink_abi::{export_sink, Sink, SinkError};

pub struct Mysql {
    conn: Conn,
    items: String,
    changes: String,
}

fn classify(e: mysql::Error) -> SinkError {
    match e {
        mysql::Error::MySqlError(e) => SinkError::Reject(format!("mysql: {e}")),
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

impl Sink for Mysql {
    fn create(config: serde_json::Value) -> Result<Self, String> {
        let cfg: TableConfig =
            serde_json::from_value(config).map_err(|e| format!("mysql sink config: {e}"))?;
        let (items, changes) = cfg.tables('`')?;
        let opts = Opts::from_url(&cfg.url).map_err(|e| format!("mysql: bad url: {e}"))?;
        let opts = OptsBuilder::from_opts(opts).init(vec!["SET NAMES utf8mb4"]);
        let mut conn = Conn::new(opts).map_err(|e| format!("mysql: cannot connect: {e}"))?;
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {items} (
                shop VARCHAR(32) NOT NULL, item_id VARCHAR(32) NOT NULL, title TEXT, cid VARCHAR(32),
                price_source VARCHAR(16), moq BIGINT, sales BIGINT, stock BIGINT, status VARCHAR(16),
                modified_ms BIGINT, md5 CHAR(32), last_seq BIGINT NOT NULL, deleted BOOLEAN NOT NULL DEFAULT FALSE,
                item JSON NOT NULL, PRIMARY KEY (shop, item_id)
             ) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci"
        ))
        .map_err(|e| format!("mysql: creating {items}: {e}"))?;
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {changes} (
                id VARCHAR(80) NOT NULL PRIMARY KEY, seq BIGINT NOT NULL, shop VARCHAR(32) NOT NULL,
                item_id VARCHAR(32) NOT NULL, op VARCHAR(8) NOT NULL, changed JSON NOT NULL, md5 CHAR(32),
                modified_ms BIGINT, observed_ms BIGINT, item JSON NOT NULL
             ) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci"
        ))
        .map_err(|e| format!("mysql: creating {changes}: {e}"))?;
        Ok(Mysql { conn, items, changes })
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
        let mut tx = self.conn.start_transaction(mysql::TxOpts::default()).map_err(classify)?;
        tx.exec_drop(upsert, item_params).map_err(classify)?;
        tx.exec_drop(append, change_params).map_err(classify)?;
        tx.commit().map_err(classify)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

export_sink!("mysql", Mysql);
