//! Journal records of the table engine (DynamoDB semantics) and their SQL.
//!
//! # On-disk format
//! - `ddb_tables(name, meta)`: one row per table; `meta` is the JSON of
//!   [`crate::table::meta::TableMeta`] (key schema, indexes, throughput, tags, TTL).
//! - `ddb_log(id, tbl, pk, item)`: every item change, appended in journal order and collected
//!   from the front ([`crate::table_log`] has the format). `ddb_items(tbl, pk, item)` is where
//!   items were kept before the log; a database that still has rows there is moved into the
//!   log when opened.
//!
//! - `ddb_streams(arn, meta)` and `ddb_stream_records(arn, seq, at, record)`: DynamoDB
//!   Streams (see [`crate::table::streams`]). A stream record is journaled in the same batch
//!   as the item change it describes, so both are durable together or not at all.
//!
//! Index entries and TTL order are not stored: recovery rebuilds them from the items.
//! Items are serialised here, on the journal thread, so request threads do not pay for it
//! while holding the engine lock.

use std::sync::Arc;

use crate::table::streams::StreamRecord;
use crate::table::value::Item;
use crate::table_log::ItemLog;

/// A durable change to a table or an item.
#[derive(Debug, Clone)]
pub enum TableRecord {
    /// Create or redefine a table (`meta` is the TableMeta JSON).
    PutTable { name: String, meta: String },
    /// Drop a table and all its items.
    DeleteTable { name: String },
    /// Insert or replace an item.
    PutItem {
        table: Arc<str>,
        key: String,
        item: Arc<Item>,
    },
    /// Remove an item.
    DeleteItem { table: Arc<str>, key: String },
    /// Create or update a stream's definition (`meta` is the StreamMeta JSON).
    PutStream { arn: String, meta: String },
    /// Forget a stream and its records.
    DeleteStream { arn: String },
    /// Append a change record to a stream.
    StreamRecord { arn: String, record: StreamRecord },
    /// Drop a stream's records with a sequence number below `before`.
    TrimStream { arn: String, before: u64 },
}

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ddb_tables (
    name TEXT PRIMARY KEY,
    meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ddb_items (
    tbl  TEXT NOT NULL,
    pk   TEXT NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (tbl, pk)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ddb_log (
    id   INTEGER PRIMARY KEY,
    tbl  TEXT NOT NULL,
    pk   TEXT,
    item TEXT
);
CREATE TABLE IF NOT EXISTS ddb_streams (
    arn  TEXT PRIMARY KEY,
    meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ddb_stream_records (
    arn    TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (arn, seq)
) WITHOUT ROWID;
";

/// The per-item statements, prepared once per commit (see the queue's
/// [`crate::queue::persist::Statements`]).
pub type Statements<'c> = crate::table_log::Statements<'c>;

/// Apply `r` in `tx`; item changes go to the item log `log`.
pub fn apply<'c>(
    tx: &'c rusqlite::Transaction<'_>,
    r: &TableRecord,
    st: &mut Statements<'c>,
    log: &mut ItemLog,
) -> rusqlite::Result<()> {
    match r {
        TableRecord::PutTable { name, meta } => {
            tx.prepare_cached("INSERT OR REPLACE INTO ddb_tables (name, meta) VALUES (?1, ?2)")?
                .execute((name, meta))?;
        }
        TableRecord::DeleteTable { name } => {
            tx.prepare_cached("DELETE FROM ddb_tables WHERE name = ?1")?
                .execute([name])?;
            log.drop_table(tx, st, name)?;
        }
        TableRecord::PutItem { table, key, item } => {
            let json = serde_json::to_string(&**item)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            log.write(tx, st, table, key, Some(&json))?;
        }
        TableRecord::DeleteItem { table, key } => log.write(tx, st, table, key, None)?,
        TableRecord::PutStream { arn, meta } => {
            tx.prepare_cached("INSERT OR REPLACE INTO ddb_streams (arn, meta) VALUES (?1, ?2)")?
                .execute((arn, meta))?;
        }
        TableRecord::DeleteStream { arn } => {
            tx.prepare_cached("DELETE FROM ddb_streams WHERE arn = ?1")?
                .execute([arn])?;
            tx.prepare_cached("DELETE FROM ddb_stream_records WHERE arn = ?1")?
                .execute([arn])?;
        }
        TableRecord::StreamRecord { arn, record } => {
            // Sequence numbers and times stay far below i64::MAX (see streams' module doc).
            tx.prepare_cached(
                "INSERT OR REPLACE INTO ddb_stream_records (arn, seq, at, record) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute((
                arn,
                record.seq as i64,
                record.at_ms as i64,
                record.body.to_string(),
            ))?;
        }
        TableRecord::TrimStream { arn, before } => {
            tx.prepare_cached("DELETE FROM ddb_stream_records WHERE arn = ?1 AND seq < ?2")?
                .execute((arn, *before as i64))?;
        }
    }
    Ok(())
}
