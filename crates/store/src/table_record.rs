//! Journal records of the table engine (DynamoDB semantics) and their SQL.
//!
//! # On-disk format
//! - `ddb_tables(name, meta)`: one row per table; `meta` is the JSON of
//!   [`crate::table::meta::TableMeta`] (key schema, indexes, throughput, tags, TTL).
//! - `ddb_items(tbl, pk, item)`: one row per item; `pk` is the key's stable text form
//!   ([`crate::table::engine::key_string`]), `item` the item in DynamoDB's JSON wire form.
//!
//! Index entries and TTL order are not stored: recovery rebuilds them from the items.
//! Items are serialised here, on the journal thread, so request threads do not pay for it
//! while holding the engine lock.

use std::sync::Arc;

use crate::table::value::{Item, item_to_json};

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
";

pub fn apply(tx: &rusqlite::Transaction<'_>, r: &TableRecord) -> rusqlite::Result<()> {
    match r {
        TableRecord::PutTable { name, meta } => {
            tx.prepare_cached("INSERT OR REPLACE INTO ddb_tables (name, meta) VALUES (?1, ?2)")?
                .execute((name, meta))?;
        }
        TableRecord::DeleteTable { name } => {
            tx.prepare_cached("DELETE FROM ddb_tables WHERE name = ?1")?
                .execute([name])?;
            tx.prepare_cached("DELETE FROM ddb_items WHERE tbl = ?1")?
                .execute([name])?;
        }
        TableRecord::PutItem { table, key, item } => {
            let json = item_to_json(item).to_string();
            tx.prepare_cached(
                "INSERT OR REPLACE INTO ddb_items (tbl, pk, item) VALUES (?1, ?2, ?3)",
            )?
            .execute((&**table, key, json))?;
        }
        TableRecord::DeleteItem { table, key } => {
            tx.prepare_cached("DELETE FROM ddb_items WHERE tbl = ?1 AND pk = ?2")?
                .execute((&**table, key))?;
        }
    }
    Ok(())
}
