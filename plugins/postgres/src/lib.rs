//! The PostgreSQL sink.
//!
//! `items` holds each item's current state (typed columns plus the raw item as `json`);
//! a delete marks the row (`deleted = true`) rather than removing it, so the row's `last_seq`
//! keeps guarding against an older event delivered again. `item_changes` appends every event
//! once, keyed by its `id`. A batch runs in one transaction; a batch of `SPLIT_FROM` events
//! or more is split by item over two connections, one transaction each, written at the same
//! time (Ok once both committed; after a partial commit the host's redelivery of the whole
//! batch is a no-op for the committed part). Redelivering any batch changes nothing.
//!
//! The tables it creates keep the item and the changed fields as `json`: the server checks
//! the text and stores it, where `jsonb` makes it build a binary tree of every item, which was
//! the biggest cost of a batch (bench-sinks, the two builds in turn: 53.5–63.6k events/s
//! against 44.6–54.2k).
//! Tables that exist are used as they are: made (by hand, or by an older version) with
//! `jsonb` columns, for GIN indexes or containment queries, they are written as `jsonb`.
//!
//! The connection is opened lazily and rebuilt after any failure that is not the batch's
//! fault (see [`classify`]): a server restart, `pg_terminate_backend` or a failover costs one
//! retried call, never a dead letter. A lost connection is retried once inside the same call
//! on a fresh connection, so a single kill usually costs nothing at all.
//!
//! Config (see `TableConfig`): `url` or `dsn` (libpq style, e.g. `host=127.0.0.1
//! user=postgres dbname=shop`, or `postgresql://…`), `password`, `sslmode` (`disable` |
//! `prefer` | `require`, as libpq: `require` encrypts but does not verify the server's
//! certificate; default: the connection string's, else `disable` when every host is this
//! machine (see [`only_local`]) and `prefer` otherwise), `items_table` (default
//! `items`), `changes_table` (default `item_changes`), `connect_timeout_ms`.

mod tls;

use postgres::config::SslMode;
use postgres::{Client, NoTls, Statement};
use shopsync_sink_abi::event::{newest_per_item, Columns, Event, TableConfig};
use shopsync_sink_abi::{export_sink, Sink, SinkError};
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

pub struct Postgres {
    target: Target,
    /// One connection per partition of a batch (see [`partition`]), each opened on first use.
    conns: [Option<Conn>; PARTS],
}

/// Where and what to write: shared by the connections, which may connect concurrently.
struct Target {
    config: postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// `sslmode` was left out and the server is this machine, so `config` says `disable`;
    /// a server that accepts only encrypted connections (a `hostssl` line in `pg_hba.conf`)
    /// is then asked again as `prefer` would (see [`only_local`]).
    local_default: bool,
    schema: String,
    /// The batch statement, with `{item}`, `{change_item}` and `{changed}` standing for the
    /// types of the tables' JSON columns, read on connecting (see [`json_type`]), and
    /// `{keep_text}` for the item's text kept beside them when the two tables differ.
    write: String,
    items: String,
    changes: String,
}

/// A big batch is split over this many connections, each writing its part in its own
/// transaction at the same time: one backend uses one server core, and the server's time
/// (reading each item's JSON, inserting, the commit's fsync) is most of a batch's time.
const PARTS: usize = 2;

/// Batches smaller than this go whole over one connection: a part must be worth its own
/// transaction and commit (about 4 ms of server work per 128 events here, near a commit's
/// fsync), and the daemon's trickle of small batches should not double its commits.
const SPLIT_FROM: usize = 256;

/// A live connection and the batch statement prepared on it: prepared once per connection
/// (a fresh connection prepares it again), so a batch costs no parse or plan.
struct Conn {
    client: Client,
    write: Statement,
}

/// What an error says about the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The batch holds a value the database will never take: only splitting it helps.
    Data,
    /// Anything else (connection lost, deadlock, serialization failure, shutdown, disk full,
    /// a missing table or database, a permission not granted yet): the same batch can pass
    /// later, on a fresh connection.
    Transient,
}

/// Classifies a SQLSTATE (`None`: the error did not come from the server, e.g. the socket
/// closed). Only data exceptions (class 22), integrity constraint violations (class 23) and a
/// row too big for an index (54000) are the batch's fault; the rest is worth retrying, and
/// retrying a server-side bug forever shows up as an unhealthy sink rather than as lost events.
pub fn class_of(sqlstate: Option<&str>) -> Class {
    match sqlstate {
        Some(c) if c.starts_with("22") || c.starts_with("23") || c == "54000" => Class::Data,
        _ => Class::Transient,
    }
}

/// The error as the host sees it. The message is postgres' own text, which names users,
/// databases and SQLSTATEs but never the password (the host also scrubs known secrets).
pub fn classify(e: &postgres::Error) -> SinkError {
    let code = e.code().map(|c| c.code());
    // `postgres::Error` shows a server error as just "db error": the server's own text is in
    // the `DbError`.
    let shown = match (code, e.as_db_error()) {
        (Some(c), Some(db)) => format!("postgres [{c}]: {db}"),
        (Some(c), None) => format!("postgres [{c}]: {e}"),
        (None, _) => format!("postgres: {e}"),
    };
    match class_of(code) {
        Class::Data => SinkError::Reject(shown),
        Class::Transient => SinkError::Retry(shown),
    }
}

/// The batch as the statement takes it: one array per column, one element per event. The
/// typed item columns are filled for the newest event of each item only (`n`): those are the
/// rows `items` gets; the other elements stay NULL and are never read.
struct Params<'a> {
    id: Vec<&'a str>,
    seq: Vec<i64>,
    s: Vec<&'a str>,
    i: Vec<&'a str>,
    op: Vec<&'a str>,
    ch: Vec<String>,
    h: Vec<&'a str>,
    m: Vec<i64>,
    o: Vec<i64>,
    j: Vec<&'a str>,
    n: Vec<bool>,
    d: Vec<bool>,
    ti: Vec<Option<&'a str>>,
    c: Vec<Option<&'a str>>,
    ps: Vec<Option<&'a str>>,
    mq: Vec<Option<i64>>,
    sa: Vec<Option<i64>>,
    st: Vec<Option<i64>>,
    stat: Vec<Option<&'a str>>,
}

impl<'a> Params<'a> {
    fn new(events: &[(&'a Event, bool)], cols: &'a [Option<Columns>]) -> Params<'a> {
        let text = |f: fn(&Columns) -> &Option<String>| {
            cols.iter().map(|c| c.as_ref().and_then(|c| f(c).as_deref())).collect::<Vec<_>>()
        };
        let num =
            |f: fn(&Columns) -> Option<i64>| cols.iter().map(|c| c.as_ref().and_then(f)).collect::<Vec<_>>();
        let events: Vec<&'a Event> = events.iter().map(|&(e, _)| e).collect();
        Params {
            id: events.iter().map(|e| e.id.as_str()).collect(),
            seq: events.iter().map(|e| e.seq).collect(),
            s: events.iter().map(|e| e.shop.as_str()).collect(),
            i: events.iter().map(|e| e.item_id.as_str()).collect(),
            op: events.iter().map(|e| e.op.as_str()).collect(),
            ch: events.iter().map(|e| serde_json::to_string(&e.changed).unwrap_or_default()).collect(),
            h: events.iter().map(|e| e.md5.as_str()).collect(),
            m: events.iter().map(|e| e.modified_ms).collect(),
            o: events.iter().map(|e| e.observed_ms).collect(),
            j: events.iter().map(|e| e.item.get()).collect(),
            n: cols.iter().map(Option::is_some).collect(),
            d: events.iter().map(|e| e.is_delete()).collect(),
            ti: text(|c| &c.title),
            c: text(|c| &c.cid),
            ps: text(|c| &c.price_source),
            mq: num(|c| c.moq),
            sa: num(|c| c.sales),
            st: num(|c| c.stock),
            stat: text(|c| &c.status),
        }
    }
}

/// The typed columns of each event marked newest of its item, `None` for the others (see
/// [`Params`]).
fn newest_columns(events: &[(&Event, bool)]) -> Result<Vec<Option<Columns>>, SinkError> {
    events.iter().map(|&(e, newest)| if newest { e.columns().map(Some) } else { Ok(None) }).collect()
}

/// The batch's events in `parts` groups by item (`(shop, item_id)`), in batch order, each
/// marked whether it is the newest event of its item. All events of an item land in the same
/// part: two parts written concurrently never touch the same `items` row, so they never wait
/// on each other's row locks (nor deadlock), and each part sees every event of its items.
fn partition(events: &[Event], parts: usize) -> Vec<Vec<(&Event, bool)>> {
    let newest: HashSet<*const Event> =
        newest_per_item(events).into_iter().map(|e| e as *const Event).collect();
    let mut out: Vec<Vec<(&Event, bool)>> = (0..parts).map(|_| Vec::new()).collect();
    for e in events {
        let part = if parts > 1 {
            let mut h = DefaultHasher::new();
            (e.shop.as_str(), e.item_id.as_str()).hash(&mut h);
            (h.finish() % parts as u64) as usize
        } else {
            0
        };
        out[part].push((e, newest.contains(&(e as *const Event))));
    }
    out
}

impl Target {
    fn connect(&self) -> Result<Conn, SinkError> {
        let mut client = match (&self.tls, self.local_default) {
            (Some(tls), true) => self.config.connect(NoTls).or_else(|e| {
                // 28000: no `pg_hba.conf` line lets this connection in unencrypted.
                if e.code().map(|c| c.code()) == Some("28000") {
                    self.config.clone().ssl_mode(SslMode::Prefer).connect(tls.clone())
                } else {
                    Err(e)
                }
            }),
            (Some(tls), false) => self.config.connect(tls.clone()),
            (None, _) => self.config.connect(NoTls),
        }
        .map_err(|e| classify(&e))?;
        // On every connection, not once: the tables may have been dropped, or the database
        // recreated, while we were away.
        client.batch_execute(&self.schema).map_err(|e| classify(&e))?;
        let item = json_type(&mut client, &self.items, "item")?;
        let change_item = json_type(&mut client, &self.changes, "item")?;
        // Tables of different types: each parses the text itself (jsonb turned back into
        // json would be printed and checked again, and lose the item's own text).
        let (keep_text, change_item) =
            if change_item == item { ("", "j".to_string()) } else { ("jt, ", format!("jt::{change_item}")) };
        let sql = self
            .write
            .replace("{keep_text}", keep_text)
            .replace("{item}", item)
            .replace("{change_item}", &change_item)
            .replace("{changed}", json_type(&mut client, &self.changes, "changed")?);
        let write = client.prepare(&sql).map_err(|e| classify(&e))?;
        Ok(Conn { client, write })
    }
}

/// The type to cast a table's JSON column's values to: `json` for the tables this sink
/// creates, `jsonb` for tables made so by hand or by an older version, and for any other
/// type (a `text` column, a domain over jsonb), as before there was a choice: the server's
/// own assignment casts take it from there.
fn json_type(client: &mut Client, table: &str, column: &str) -> Result<&'static str, SinkError> {
    let row = client
        .query_opt(
            "SELECT format_type(atttypid, NULL) FROM pg_attribute
             WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped",
            &[&table, &column],
        )
        .map_err(|e| classify(&e))?;
    let found: Option<String> = row.map(|r| r.get(0));
    Ok(if found.as_deref() == Some("json") { "json" } else { "jsonb" })
}

/// Writes a batch (or a part of one) in one round trip. The statement runs in the implicit
/// transaction of the extended protocol, which the server commits at the request's Sync,
/// before it answers ReadyForQuery; `execute` waits for that answer (tokio-postgres 0.7.4 on,
/// hence `postgres` 0.19.14 in Cargo.toml), so a commit that fails (a lost connection, an
/// fsync error) comes back as this call's error and Ok means durable, as with an explicit
/// BEGIN … COMMIT. Those two statements cost two more round trips, each a wake-up of both
/// processes: milliseconds per batch on a busy machine.
fn write(conn: &mut Conn, p: &Params<'_>) -> Result<(), postgres::Error> {
    let params: [&(dyn postgres::types::ToSql + Sync); 19] = [
        &p.id, &p.seq, &p.s, &p.i, &p.op, &p.ch, &p.h, &p.m, &p.o, &p.j, &p.n, &p.d, &p.ti, &p.c, &p.ps,
        &p.mq, &p.sa, &p.st, &p.stat,
    ];
    conn.client.execute(&conn.write, &params).map(drop)
}

/// Writes one part of a batch over its own connection (`slot`), connecting first if needed.
fn deliver_part(
    target: &Target,
    slot: &mut Option<Conn>,
    events: &[(&Event, bool)],
) -> Result<(), SinkError> {
    if events.is_empty() {
        return Ok(());
    }
    let cols = newest_columns(events)?;
    let p = Params::new(events, &cols);
    // Two tries: a connection that died while idle (or mid-batch) is replaced at once
    // rather than after the host's backoff. A fresh connection that fails is not retried
    // here: the host's backoff is the right pace for a server that is down.
    for attempt in 0..2 {
        let fresh = slot.is_none();
        let conn = match slot.take() {
            Some(c) => slot.insert(c),
            None => slot.insert(target.connect()?),
        };
        match write(conn, &p) {
            Ok(()) => return Ok(()),
            Err(e) => {
                let err = classify(&e);
                if let SinkError::Retry(_) = err {
                    // Never reuse a connection after a transient error: it may be dead,
                    // or in a state (an aborted transaction) we cannot see from here.
                    *slot = None;
                    if !fresh && attempt == 0 {
                        continue;
                    }
                }
                return Err(err);
            }
        }
    }
    Err(SinkError::Retry("postgres: the connection failed twice".into()))
}

/// Every host the connection may use is this machine (a loopback address, `localhost` or a
/// Unix socket). Such a connection is not encrypted unless `sslmode` says so: nothing it
/// carries leaves the machine, and encrypting it cost a quarter to a third of the sink's
/// throughput in `bench-sinks` (the server decrypts every batch on the core that writes it).
/// A server that refuses it unencrypted is asked again with TLS, as `prefer` would.
fn only_local(config: &postgres::Config) -> bool {
    use postgres::config::Host;
    let local = |h: &Host| match h {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
    };
    !config.get_hosts().is_empty()
        && config.get_hosts().iter().all(local)
        && config.get_hostaddrs().iter().all(|ip| ip.is_loopback())
}

fn ssl_mode(name: &str) -> Result<SslMode, String> {
    match name {
        "disable" => Ok(SslMode::Disable),
        "prefer" => Ok(SslMode::Prefer),
        "require" => Ok(SslMode::Require),
        other => Err(format!("postgres: sslmode {other:?} is not one of disable, prefer, require")),
    }
}

impl Sink for Postgres {
    fn create(config: serde_json::Value) -> Result<Self, String> {
        let cfg: TableConfig =
            serde_json::from_value(config).map_err(|e| format!("postgres sink config: {e}"))?;
        let (items, changes) = cfg.tables('"')?;
        let target = cfg.target().map_err(|e| format!("postgres: {e}"))?;
        let mut config: postgres::Config =
            target.parse().map_err(|e| format!("postgres: the connection string does not parse: {e}"))?;
        if let Some(p) = &cfg.password {
            config.password(p);
        }
        // `postgres::Config` reads a missing `sslmode` as `prefer`, so whether the connection
        // string named one is read from its text.
        let local_default = cfg.sslmode.is_none() && !target.contains("sslmode") && only_local(&config);
        if let Some(m) = &cfg.sslmode {
            config.ssl_mode(ssl_mode(m)?);
        } else if local_default {
            config.ssl_mode(SslMode::Disable);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_millis(cfg.connect_timeout_ms));
        }
        // Keepalives find a connection whose server vanished without a FIN (a failover).
        config.keepalives(true).keepalives_idle(Duration::from_secs(30));
        let tls = match config.get_ssl_mode() {
            SslMode::Disable if !local_default => None,
            _ => Some(tls::connector()?),
        };
        // One transaction (a multi-statement simple query is one) behind an advisory lock: the
        // plugin's connections open concurrently, and two `CREATE TABLE IF NOT EXISTS` of one
        // new table racing fail with a unique violation (23505, a Reject) in the catalog. The
        // key is fixed ("shopsync" in ASCII): creating tables is rare, sharing the lock is cheap.
        let schema = format!(
            "SELECT pg_advisory_xact_lock(8315168240290541155);
             CREATE TABLE IF NOT EXISTS {items} (
                shop text NOT NULL, item_id text NOT NULL, title text, cid text, price_source text,
                moq bigint, sales bigint, stock bigint, status text, modified_ms bigint, md5 text,
                last_seq bigint NOT NULL, deleted boolean NOT NULL DEFAULT false, item json NOT NULL,
                PRIMARY KEY (shop, item_id));
             CREATE TABLE IF NOT EXISTS {changes} (
                id text PRIMARY KEY, seq bigint NOT NULL, shop text NOT NULL, item_id text NOT NULL,
                op text NOT NULL, changed json NOT NULL, md5 text, modified_ms bigint, observed_ms bigint,
                item json NOT NULL);"
        );
        // Whole batches go in as arrays (UNNEST), both tables in one statement: the server
        // reads each item's text once (the batch CTE is materialized), where a statement per
        // table parsed it twice; that parse is the biggest single cost of a batch (into jsonb,
        // about 9 ms per 1000 items here). The typed columns come from the plugin (taking them
        // with `->>` on the server costs server time, and the server is what a batch waits for).
        // A data-modifying CTE runs to completion whether or not the outer query reads it.
        let write = format!(
            "WITH shopsync_batch AS MATERIALIZED (
                SELECT id, seq, s, i, op, ch, h, m, o, {{keep_text}}jt::{{item}} AS j, n, d, ti, c, ps, mq, sa, st, stat
                FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                            $8::bigint[], $9::bigint[], $10::text[], $11::bool[], $12::bool[], $13::text[],
                            $14::text[], $15::text[], $16::bigint[], $17::bigint[], $18::bigint[], $19::text[])
                     AS t(id, seq, s, i, op, ch, h, m, o, jt, n, d, ti, c, ps, mq, sa, st, stat)
             ), shopsync_appended AS (
                INSERT INTO {changes} (id, seq, shop, item_id, op, changed, md5, modified_ms, observed_ms, item)
                SELECT id, seq, s, i, op, ch::{{changed}}, h, m, o, {{change_item}} FROM shopsync_batch
                ON CONFLICT (id) DO NOTHING
             )
             INSERT INTO {items} (shop, item_id, title, cid, price_source, moq, sales, stock, status, modified_ms, md5, last_seq, deleted, item)
             SELECT s, i, ti, c, ps, mq, sa, st, stat, m, h, seq, d, j FROM shopsync_batch WHERE n
             ON CONFLICT (shop, item_id) DO UPDATE SET
                title = EXCLUDED.title, cid = EXCLUDED.cid, price_source = EXCLUDED.price_source,
                moq = EXCLUDED.moq, sales = EXCLUDED.sales, stock = EXCLUDED.stock, status = EXCLUDED.status,
                modified_ms = EXCLUDED.modified_ms, md5 = EXCLUDED.md5, last_seq = EXCLUDED.last_seq,
                deleted = EXCLUDED.deleted, item = EXCLUDED.item
             WHERE {items}.last_seq < EXCLUDED.last_seq"
        );
        // No connection yet: a database that is down at start must not keep the sink from
        // existing; the first delivery connects (and a failure there is retried).
        Ok(Postgres {
            target: Target { config, tls, local_default, schema, write, items, changes },
            conns: Default::default(),
        })
    }

    fn deliver(&mut self, events: &[u8]) -> Result<(), SinkError> {
        let events = Event::parse_batch(events)?;
        let parts = if events.len() >= SPLIT_FROM { PARTS } else { 1 };
        let parts = partition(&events, parts);
        let target = &self.target;
        // Every part is written (or fails) before the call returns: Ok only once all parts
        // committed. A part that committed while another failed is harmless, the host
        // delivers the whole batch again and that part changes nothing the second time.
        let results: Vec<Result<(), SinkError>> = std::thread::scope(|s| {
            let mut work = self.conns.iter_mut().zip(&parts);
            let first = work.next();
            let others: Vec<_> =
                work.map(|(slot, part)| s.spawn(move || deliver_part(target, slot, part))).collect();
            let mut results = vec![first.map_or(Ok(()), |(slot, part)| deliver_part(target, slot, part))];
            results.extend(others.into_iter().map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(SinkError::Retry("postgres: a writer thread panicked".into())))
            }));
            results
        });
        // A data error anywhere is the batch's fault: the host splits the batch until the bad
        // event is alone. Otherwise a failed part makes the whole batch worth retrying.
        let mut retry = None;
        for r in results {
            match r {
                Err(e @ SinkError::Reject(_)) => return Err(e),
                Err(e) => retry = retry.or(Some(e)),
                Ok(()) => {}
            }
        }
        retry.map_or(Ok(()), Err)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        // Every batch commits its own transaction.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_errors_reject_everything_else_retries() {
        for data in [
            "22P05", // unsupported Unicode escape (a \u0000 in jsonb)
            "22021", // invalid byte sequence (a NUL in text)
            "22001", // string too long
            "22003", // numeric out of range
            "23505", // unique violation (a constraint that will never pass)
            "23502", // not null violation
            "23514", // check violation
            "54000", // index row too big
        ] {
            assert_eq!(class_of(Some(data)), Class::Data, "{data}");
        }
        for transient in [
            "57P01", // admin_shutdown: pg_terminate_backend, server restart
            "57P02", // crash_shutdown
            "57P03", // cannot_connect_now: starting up
            "57014", // query_canceled
            "40001", // serialization_failure
            "40P01", // deadlock_detected
            "08006", // connection_failure
            "08001", // unable to connect
            "53100", // disk_full
            "53200", // out_of_memory
            "53300", // too_many_connections
            "55P03", // lock_not_available
            "25006", // read_only_sql_transaction: a standby after failover
            "3D000", // the database does not exist (yet)
            "28P01", // password authentication failed (rotated, created later)
            "42P01", // a table dropped under us: recreated on reconnect
            "42501", // insufficient privilege: a grant can come later
            "58030", // io_error
        ] {
            assert_eq!(class_of(Some(transient)), Class::Transient, "{transient}");
        }
        assert_eq!(class_of(None), Class::Transient, "socket closed, timeout, I/O");
    }

    /// A new database on the local PostgreSQL (127.0.0.1, user postgres) and a connection to
    /// the server to drop it with; `None` (the test is skipped) without a server.
    fn scratch_db(name: &str) -> Option<(Client, String)> {
        let admin = "host=127.0.0.1 user=postgres dbname=postgres connect_timeout=3";
        let Ok(mut pg) = Client::connect(admin, NoTls) else {
            eprintln!("no local PostgreSQL: skipped");
            return None;
        };
        let db = format!("shopsync_pg_{name}_{}", std::process::id());
        pg.batch_execute(&format!("DROP DATABASE IF EXISTS {db}")).expect("drop db");
        pg.batch_execute(&format!("CREATE DATABASE {db}")).expect("create db");
        Some((pg, db))
    }

    /// A batch big enough to be split goes over two connections; redelivering it changes
    /// nothing; after both backends are terminated the next delivery heals (a transient error
    /// at most, then Ok). Needs the local PostgreSQL (127.0.0.1, user postgres); skipped
    /// without it.
    #[test]
    fn split_batches_are_exactly_once_and_heal() {
        let Some((mut pg, db)) = scratch_db("unit") else { return };
        let batch = |from: i64, n: i64, op: &str| {
            let events: Vec<_> = (from..from + n)
                .map(|k| {
                    serde_json::json!({
                        "id": format!("e{k}"), "seq": k, "shop": "s", "item_id": format!("i{}", k % 700),
                        "op": op, "changed": ["title"], "md5": format!("m{k}"), "modified_ms": k, "observed_ms": k,
                        "item": {"title": format!("t{k}"), "moq": 1, "status": "online"},
                    })
                })
                .collect();
            serde_json::to_vec(&events).expect("json")
        };
        let mut sink =
            Postgres::create(serde_json::json!({"url": format!("host=127.0.0.1 user=postgres dbname={db}")}))
                .expect("create");
        let first = batch(0, 1000, "update");
        assert_eq!(sink.deliver(&first), Ok(()));
        assert!(sink.conns.iter().all(Option::is_some), "a 1000-event batch uses both connections");
        assert_eq!(sink.deliver(&first), Ok(()), "redelivery");
        let mut check =
            Client::connect(&format!("host=127.0.0.1 user=postgres dbname={db}"), NoTls).expect("db");
        let count = |c: &mut Client, q: &str| -> i64 { c.query_one(q, &[]).expect(q).get(0) };
        assert_eq!(count(&mut check, "SELECT count(*) FROM item_changes"), 1000);
        assert_eq!(count(&mut check, "SELECT count(*) FROM items"), 700);
        assert_eq!(
            count(&mut check, "SELECT count(*) FROM items WHERE last_seq < 300"),
            0,
            "newest event wins"
        );
        check
            .batch_execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .expect("terminate");
        assert_eq!(sink.deliver(&batch(1000, 1000, "delete")), Ok(()), "healed within the call");
        assert_eq!(count(&mut check, "SELECT count(*) FROM item_changes"), 2000);
        assert_eq!(count(&mut check, "SELECT count(*) FROM items WHERE deleted AND last_seq >= 1300"), 700);
        // A data error (a NUL in the title's text column) in one part rejects the batch.
        let bad = String::from_utf8(batch(2000, 1000, "update"))
            .expect("utf8")
            .replace("\"t2500\"", "\"a\\u0000b\"");
        assert!(matches!(sink.deliver(bad.as_bytes()), Err(SinkError::Reject(_))));
        drop((sink, check));
        pg.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)")).expect("drop db");
    }

    /// Tables that exist are written as they are: made with `jsonb` columns (by hand, for a
    /// GIN index, or by a version that created them so), the batch goes in as `jsonb`; the
    /// tables this sink creates hold `json`; a column of another type (`md5` here, text) is
    /// sent `jsonb` as before. Needs the local PostgreSQL; skipped without it.
    #[test]
    fn existing_jsonb_tables_are_written_as_jsonb_and_new_ones_are_json() {
        let Some((mut pg, db)) = scratch_db("types") else { return };
        let url = format!("host=127.0.0.1 user=postgres dbname={db}");
        let mut check = Client::connect(&url, NoTls).expect("db");
        check
            .batch_execute(
                "CREATE TABLE old_items (
                    shop text NOT NULL, item_id text NOT NULL, title text, cid text, price_source text,
                    moq bigint, sales bigint, stock bigint, status text, modified_ms bigint, md5 text,
                    last_seq bigint NOT NULL, deleted boolean NOT NULL DEFAULT false, item jsonb NOT NULL,
                    PRIMARY KEY (shop, item_id));
                 CREATE TABLE old_changes (
                    id text PRIMARY KEY, seq bigint NOT NULL, shop text NOT NULL, item_id text NOT NULL,
                    op text NOT NULL, changed jsonb NOT NULL, md5 text, modified_ms bigint, observed_ms bigint,
                    item jsonb NOT NULL);",
            )
            .expect("old tables");
        let events = serde_json::to_vec(&serde_json::json!([{
            "id": "e1", "seq": 1, "shop": "s", "item_id": "i1", "op": "create", "changed": [],
            "md5": "m", "modified_ms": 1, "observed_ms": 1, "item": {"title": "t", "moq": 2, "status": "online"},
        }]))
        .expect("json");
        // The third pair mixes the types: each table parses the text in its own.
        for (items, changes) in
            [("old_items", "old_changes"), ("items", "item_changes"), ("old_items", "item_changes")]
        {
            let cfg = serde_json::json!({"url": url, "items_table": items, "changes_table": changes});
            let mut sink = Postgres::create(cfg).expect("create");
            assert_eq!(sink.deliver(&events), Ok(()), "{items}");
            let moq: String =
                check.query_one(&format!("SELECT item->>'moq' FROM {items}"), &[]).expect("row").get(0);
            assert_eq!(moq, "2");
        }
        // What the statement is cast to, table by table (the server would convert either way,
        // so the rows alone cannot tell).
        for (table, column, ty) in [
            ("old_items", "item", "jsonb"),
            ("old_changes", "item", "jsonb"),
            ("old_changes", "changed", "jsonb"),
            ("items", "item", "json"),
            ("item_changes", "item", "json"),
            ("item_changes", "changed", "json"),
            ("item_changes", "md5", "jsonb"),
        ] {
            assert_eq!(json_type(&mut check, &format!("\"{table}\""), column), Ok(ty), "{table}.{column}");
        }
        drop(check);
        pg.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)")).expect("drop db");
    }

    #[test]
    fn only_a_connection_to_this_machine_goes_unencrypted_by_default() {
        let local = |s: &str| only_local(&s.parse().expect("parses"));
        assert!(local("host=127.0.0.1 user=x"));
        assert!(local("host=localhost port=5433"));
        assert!(local("postgresql://u@[::1]:5432/db"));
        assert!(local("host=/var/run/postgresql"));
        assert!(!local("host=db.example.com"));
        assert!(!local("host=10.0.0.2"));
        assert!(!local("host=127.0.0.1,10.0.0.2"), "a remote fallback host");
        assert!(!local("host=localhost hostaddr=10.0.0.2"), "hostaddr is where it connects");
        assert!(!local("user=x"), "no host named");
    }

    #[test]
    fn sslmode_names() {
        assert!(matches!(ssl_mode("require"), Ok(SslMode::Require)));
        assert!(matches!(ssl_mode("prefer"), Ok(SslMode::Prefer)));
        assert!(matches!(ssl_mode("disable"), Ok(SslMode::Disable)));
        assert!(ssl_mode("verify-full").is_err());
    }

    #[test]
    fn create_does_not_connect_and_checks_its_config() {
        let ok =
            serde_json::json!({"url": "host=127.0.0.1 port=1 user=nobody dbname=x", "sslmode": "require"});
        assert!(Postgres::create(ok).is_ok(), "a database that is down does not fail create");
        let both = serde_json::json!({"url": "host=a", "dsn": "host=b"});
        assert!(Postgres::create(both).is_err());
        let bad = serde_json::json!({"url": "host=a", "sslmode": "sometimes"});
        assert!(Postgres::create(bad).is_err());
    }
}

export_sink!("postgres", Postgres);
