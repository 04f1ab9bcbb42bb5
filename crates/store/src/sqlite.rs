//! The SQLite backend: one database file, WAL mode, `synchronous=FULL` (every commit is
//! fsync'd before the journal acknowledges it).
//!
//! # On-disk format
//! One file `kedge.db` in the data directory (inspect it with the `sqlite3` CLI). Each engine
//! owns its tables (`sqs_*` for queues, `ddb_*` for tables) and writes them only through its
//! journal records, so the file is always the state as of the last acknowledged commit.
//! Recovery is loading those tables back into memory at start.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::StoreError;
use crate::journal::{Backend, BackendError, Record};

pub struct SqliteBackend {
    conn: Connection,
}

/// Open (or create) the database in `dir` with durable settings and every engine's schema.
pub fn open(dir: &Path) -> Result<(Connection, PathBuf), StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        StoreError::Io(format!(
            "cannot create data directory {}: {e}",
            dir.display()
        ))
    })?;
    let path = dir.join("kedge.db");
    let conn = Connection::open(&path)
        .map_err(|e| StoreError::Io(format!("cannot open {}: {e}", path.display())))?;
    let setup = || -> rusqlite::Result<()> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        // A deep queue's rows must not fall out of a 2 MB default page cache: updates and
        // deletes would then read pages back through syscalls and slow down with depth.
        conn.pragma_update(None, "cache_size", -131_072)?; // 128 MiB
        conn.pragma_update(None, "mmap_size", 4_294_967_296i64)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.execute_batch(crate::queue::persist::SCHEMA)?;
        conn.execute_batch(crate::table_record::SCHEMA)?;
        Ok(())
    };
    setup().map_err(|e| {
        StoreError::Io(format!(
            "cannot initialise {} (is another kedge serve using it?): {e}",
            path.display()
        ))
    })?;
    Ok((conn, path))
}

impl SqliteBackend {
    pub fn new(conn: Connection) -> Self {
        SqliteBackend { conn }
    }
}

impl Backend for SqliteBackend {
    fn commit(&mut self, batch: &[Record]) -> Result<(), BackendError> {
        use crate::queue::persist::QueueRecord;
        // A message sent, received and deleted within one group commit never needs to touch
        // the disk: skip the writes the batch's own deletes make moot. Keys (queue, seq) are
        // never reused, so this cannot drop a write that is still needed.
        let deleted: std::collections::HashSet<(u64, u64)> = batch
            .iter()
            .filter_map(|r| match r {
                Record::Queue(QueueRecord::Delete { queue, seq }) => Some((*queue, *seq)),
                _ => None,
            })
            .collect();
        let inserted_then_deleted: std::collections::HashSet<(u64, u64)> = batch
            .iter()
            .filter_map(|r| match r {
                Record::Queue(QueueRecord::Insert(m)) if deleted.contains(&(m.queue_id, m.seq)) => {
                    Some((m.queue_id, m.seq))
                }
                _ => None,
            })
            .collect();
        let tx = self.conn.transaction()?;
        for r in batch {
            match r {
                Record::Queue(QueueRecord::Insert(m))
                    if inserted_then_deleted.contains(&(m.queue_id, m.seq)) => {}
                Record::Queue(QueueRecord::Update { queue, seq, .. })
                    if deleted.contains(&(*queue, *seq)) => {}
                Record::Queue(QueueRecord::Delete { queue, seq })
                    if inserted_then_deleted.contains(&(*queue, *seq)) => {}
                Record::Queue(q) => crate::queue::persist::apply(&tx, q)?,
                Record::Table(t) => crate::table_record::apply(&tx, t)?,
            }
        }
        tx.commit()?;
        Ok(())
    }
}
