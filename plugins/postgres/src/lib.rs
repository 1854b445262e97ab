//! The PostgreSQL sink.
//!
//! `items` holds each item's current state (typed columns plus the raw item as `jsonb`);
//! a delete marks the row (`deleted = true`) rather than removing it, so the row's `last_seq`
//! keeps guarding against an older event delivered again. `item_changes` appends every event
//! once, keyed by its `id`. A batch runs in one transaction, and redelivering any batch
//! changes nothing.
//!
//! Config: `url` (libpq style, e.g. `host=127.0.0.1 user=postgres dbname=shop`),
//! `items_table` (default `items`), `changes_table` (default `item_changes`).

use postgres::{Client, NoTls};
use shopsync_sink_abi::event::{newest_per_item, Columns, Event, TableConfig};
use shopsync_sink_abi::{export_sink, Sink, SinkError};

pub struct Postgres {
    client: Client,
    upsert: String,
    append: String,
}

/// Connection trouble is worth retrying; anything else in a statement means the batch or
/// the schema is wrong.
fn classify(e: postgres::Error) -> SinkError {
    if e.is_closed() || e.as_db_error().is_none() {
        SinkError::Retry(format!("postgres: {e}"))
    } else {
        SinkError::Reject(format!("postgres: {e}"))
    }
}

impl Sink for Postgres {
    fn create(config: serde_json::Value) -> Result<Self, String> {
        let cfg: TableConfig =
            serde_json::from_value(config).map_err(|e| format!("postgres sink config: {e}"))?;
        let (items, changes) = cfg.tables('"')?;
        let mut client =
            Client::connect(&cfg.url, NoTls).map_err(|e| format!("postgres: cannot connect: {e}"))?;
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {items} (
                    shop text NOT NULL, item_id text NOT NULL, title text, cid text, price_source text,
                    moq bigint, sales bigint, stock bigint, status text, modified_ms bigint, md5 text,
                    last_seq bigint NOT NULL, deleted boolean NOT NULL DEFAULT false, item jsonb NOT NULL,
                    PRIMARY KEY (shop, item_id));
                 CREATE TABLE IF NOT EXISTS {changes} (
                    id text PRIMARY KEY, seq bigint NOT NULL, shop text NOT NULL, item_id text NOT NULL,
                    op text NOT NULL, changed jsonb NOT NULL, md5 text, modified_ms bigint, observed_ms bigint,
                    item jsonb NOT NULL);"
            ))
            .map_err(|e| format!("postgres: creating tables: {e}"))?;
        // Whole batches go in as arrays (UNNEST): one statement per table per batch. The typed
        // columns come from the plugin, so the server parses each item's JSON once (taking
        // them with `->>` from a LATERAL jsonb parsed it once per column: 3x slower).
        let upsert = format!(
            "INSERT INTO {items} (shop, item_id, title, cid, price_source, moq, sales, stock, status, modified_ms, md5, last_seq, deleted, item)
             SELECT s, i, ti, c, ps, mq, sa, st, stat, m, h, q, d, jt::jsonb
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[],
                         $8::bigint[], $9::text[], $10::bigint[], $11::text[], $12::bigint[], $13::bool[], $14::text[])
                  AS t(s, i, ti, c, ps, mq, sa, st, stat, m, h, q, d, jt)
             ON CONFLICT (shop, item_id) DO UPDATE SET
                title = EXCLUDED.title, cid = EXCLUDED.cid, price_source = EXCLUDED.price_source,
                moq = EXCLUDED.moq, sales = EXCLUDED.sales, stock = EXCLUDED.stock, status = EXCLUDED.status,
                modified_ms = EXCLUDED.modified_ms, md5 = EXCLUDED.md5, last_seq = EXCLUDED.last_seq,
                deleted = EXCLUDED.deleted, item = EXCLUDED.item
             WHERE {items}.last_seq < EXCLUDED.last_seq"
        );
        let append = format!(
            "INSERT INTO {changes} (id, seq, shop, item_id, op, changed, md5, modified_ms, observed_ms, item)
             SELECT id, seq, s, i, op, ch::jsonb, h, m, o, jt::jsonb
             FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::bigint[], $9::bigint[], $10::text[]) AS t(id, seq, s, i, op, ch, h, m, o, jt)
             ON CONFLICT (id) DO NOTHING"
        );
        Ok(Postgres { client, upsert, append })
    }

    fn deliver(&mut self, events: &[u8]) -> Result<(), SinkError> {
        let events = Event::parse_batch(events)?;
        let rows = newest_per_item(&events);
        let cols: Vec<Columns> = rows.iter().map(|e| e.columns()).collect::<Result<_, _>>()?;
        let col = |f: fn(&Event) -> &str| rows.iter().map(|e| f(e)).collect::<Vec<&str>>();
        let (s, i, h, j) = (col(|e| &e.shop), col(|e| &e.item_id), col(|e| &e.md5), col(|e| e.item.get()));
        let text =
            |f: fn(&Columns) -> &Option<String>| cols.iter().map(|c| f(c).as_deref()).collect::<Vec<_>>();
        let (ti, c, ps, stat) =
            (text(|c| &c.title), text(|c| &c.cid), text(|c| &c.price_source), text(|c| &c.status));
        let num = |f: fn(&Columns) -> Option<i64>| cols.iter().map(f).collect::<Vec<Option<i64>>>();
        let (mq, sa, st) = (num(|c| c.moq), num(|c| c.sales), num(|c| c.stock));
        let m: Vec<i64> = rows.iter().map(|e| e.modified_ms).collect();
        let q: Vec<i64> = rows.iter().map(|e| e.seq).collect();
        let d: Vec<bool> = rows.iter().map(|e| e.is_delete()).collect();
        let ecol = |f: fn(&Event) -> &str| events.iter().map(f).collect::<Vec<&str>>();
        let (id, es, ei, op, eh, ej) = (
            ecol(|e| &e.id),
            ecol(|e| &e.shop),
            ecol(|e| &e.item_id),
            ecol(|e| &e.op),
            ecol(|e| &e.md5),
            ecol(|e| e.item.get()),
        );
        let ch: Vec<String> =
            events.iter().map(|e| serde_json::to_string(&e.changed).unwrap_or_default()).collect();
        let seq: Vec<i64> = events.iter().map(|e| e.seq).collect();
        let em: Vec<i64> = events.iter().map(|e| e.modified_ms).collect();
        let eo: Vec<i64> = events.iter().map(|e| e.observed_ms).collect();
        let mut tx = self.client.transaction().map_err(classify)?;
        tx.execute(self.upsert.as_str(), &[&s, &i, &ti, &c, &ps, &mq, &sa, &st, &stat, &m, &h, &q, &d, &j])
            .map_err(classify)?;
        tx.execute(self.append.as_str(), &[&id, &seq, &es, &ei, &op, &ch, &eh, &em, &eo, &ej])
            .map_err(classify)?;
        tx.commit().map_err(classify)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        // Every batch commits its own transaction.
        Ok(())
    }
}

export_sink!("postgres", Postgres);
