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
        // 16 MiB of page cache. Not SQLite's 2 MB default: a deep queue's receives and
        // deletes then keep missing the cache. Not more either: at the end of every
        // transaction SQLite's pager drops cached pages past the end of the database, and
        // once many rows have been deleted that walks the whole cache's hash table on every
        // commit (`pcache1TruncateUnsafe` was 28 % of the server's samples for SendMessage
        // after a receive+delete run with 128 MiB; 16 MiB cut the server's CPU per request
        // by about 30 % there and was no slower for receive+delete, also from a 2 million
        // message queue; docs/benchmarks.md).
        conn.pragma_update(None, "cache_size", -16_384)?;
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
        // `Meta` records carry the engine's counters as of their request, and every send
        // writes one: one record with the highest of each counter, in place of the batch's
        // last one, is all that needs to reach the disk (the counters only grow; taking the
        // highest holds whatever order the records were journaled in).
        let last_meta = batch
            .iter()
            .rposition(|r| matches!(r, Record::Queue(QueueRecord::Meta { .. })));
        let meta = batch
            .iter()
            .filter_map(|r| match r {
                Record::Queue(QueueRecord::Meta {
                    next_seq,
                    next_queue_id,
                }) => Some((*next_seq, *next_queue_id)),
                _ => None,
            })
            .reduce(|(s, q), (s2, q2)| (s.max(s2), q.max(q2)));
        let tx = self.conn.transaction()?;
        {
            let mut queue_sql = crate::queue::persist::Statements::default();
            let mut table_sql = crate::table_record::Statements::default();
            for (i, r) in batch.iter().enumerate() {
                match r {
                    Record::Queue(QueueRecord::Meta { .. }) => {
                        if let (true, Some((next_seq, next_queue_id))) =
                            (Some(i) == last_meta, meta)
                        {
                            let highest = QueueRecord::Meta {
                                next_seq,
                                next_queue_id,
                            };
                            crate::queue::persist::apply(&tx, &highest, &mut queue_sql)?;
                        }
                    }
                    Record::Queue(QueueRecord::Insert(m))
                        if inserted_then_deleted.contains(&(m.queue_id, m.seq)) => {}
                    Record::Queue(QueueRecord::Update { queue, seq, .. })
                        if deleted.contains(&(*queue, *seq)) => {}
                    Record::Queue(QueueRecord::Delete { queue, seq })
                        if inserted_then_deleted.contains(&(*queue, *seq)) => {}
                    Record::Queue(q) => crate::queue::persist::apply(&tx, q, &mut queue_sql)?,
                    Record::Table(t) => crate::table_record::apply(&tx, t, &mut table_sql)?,
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::persist::QueueRecord;

    fn meta(next_seq: u64, next_queue_id: u64) -> Record {
        Record::Queue(QueueRecord::Meta {
            next_seq,
            next_queue_id,
        })
    }

    fn stored_meta(conn: &Connection) -> Vec<(String, i64)> {
        let mut st = conn
            .prepare("SELECT key, value FROM sqs_meta ORDER BY key")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_batch_keeps_the_highest_counters_of_its_meta_records() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, path) = open(dir.path()).unwrap();
        let mut backend = SqliteBackend::new(conn);
        backend
            .commit(&[meta(5, 1), meta(9, 2), meta(12, 2)])
            .unwrap();
        // Out of order, the highest of each counter still wins.
        backend
            .commit(&[meta(20, 3), meta(14, 4), meta(13, 2)])
            .unwrap();
        drop(backend);
        let conn = Connection::open(path).unwrap();
        assert_eq!(
            stored_meta(&conn),
            vec![("next_queue_id".into(), 4), ("next_seq".into(), 20)]
        );
    }
}
