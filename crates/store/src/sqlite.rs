//! The SQLite backend: one database file, WAL mode, `synchronous=FULL` (every commit is
//! fsync'd before the journal acknowledges it; SQLite is built to sync with `fdatasync`, see
//! `.cargo/config.toml`).
//!
//! # On-disk format
//! One file `kedge.db` in the data directory (inspect it with the `sqlite3` CLI). Each engine
//! owns its tables (`sqs_*` for queues, `ddb_*` for tables) and writes them only through its
//! journal records, so the file is always the state as of the last acknowledged commit.
//! Recovery is loading those tables back into memory at start.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use rusqlite::Connection;

use crate::StoreError;
use crate::journal::{Backend, BackendError, Record};
use crate::queue::persist::Change;
use crate::queue::segment::Segments;
use crate::table_log::ItemLog;

pub struct SqliteBackend {
    conn: Connection,
    /// The changes logged since the last fold of `sqs_log`, in the order they were made
    /// (appended, not kept in a map: a receive+delete run makes two a message, and keying
    /// each one was ~2 % of the server's samples). A fold keeps the last of each message.
    changes: Vec<((u64, u64), Change)>,
    /// Rows in `sqs_log` since the last fold.
    log_rows: usize,
    /// The messages kept in segments (`sqs_segments`): each commit's sends go in one.
    segments: Segments,
    /// Where every table item's latest change is in `ddb_log`.
    items: ItemLog,
}

/// Fold `sqs_log` into the segments and `sqs_messages` once this many changes are logged
/// (about 2,048 messages received and deleted), or once the log has this many rows. A fold
/// stalls the journal: 2,048 messages took ~1.4 ms and left receive+delete's p99 latency where
/// it was without the log (~7–8 ms at 64 connections); 8,192 took ~4.5 ms and raised it to
/// ~11.5 ms, 32,768 to ~34 ms. A message received and deleted within ~10 ms (a consumer's
/// round trip is a few) still costs one delete.
const FOLD_CHANGES: usize = 4_096;
const FOLD_LOG_ROWS: usize = 1_024;

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
        // Checkpoint every 1 MiB of WAL (256 pages), not SQLite's 4 MiB. A checkpoint runs
        // inside a commit that every waiting request depends on; since sends are segments,
        // most of what it copies is new pages, which extend the file and make its fsync
        // slower (~8.5 ms at 4 MiB). With 1 MiB, SendMessageBatch's p99 at 64 connections
        // went from 16–34 ms to ~9 ms with throughput unchanged (docs/benchmarks.md).
        conn.pragma_update(None, "wal_autocheckpoint", 256)?;
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

/// The last change of each message, in key order (the order a fold writes them in).
fn net_changes(changes: &[((u64, u64), Change)]) -> BTreeMap<(u64, u64), Change> {
    let mut sorted = changes.to_vec();
    // Stable: a message's changes keep the order they were made in.
    sorted.sort_by_key(|(k, _)| *k);
    let mut last: Vec<((u64, u64), Change)> = Vec::with_capacity(sorted.len());
    for (k, c) in sorted {
        match last.last_mut() {
            Some((lk, lc)) if *lk == k => *lc = c,
            _ => last.push((k, c)),
        }
    }
    // Sorted and without repeats: built in one pass.
    last.into_iter().collect()
}

impl SqliteBackend {
    /// A backend writing to `conn`, whose segments and item log recovery indexed.
    pub fn new(conn: Connection, segments: Segments, items: ItemLog) -> Self {
        SqliteBackend {
            conn,
            changes: Vec::new(),
            log_rows: 0,
            segments,
            items,
        }
    }
}

impl Backend for SqliteBackend {
    fn commit(&mut self, batch: &[Record]) -> Result<(), BackendError> {
        use crate::queue::persist::QueueRecord;
        // A message sent, received and deleted within one group commit never needs to touch
        // the disk: skip the writes the batch's own deletes make moot. Keys (queue, seq) are
        // never reused, so this cannot drop a write that is still needed.
        let deleted: std::collections::BTreeSet<(u64, u64)> = batch
            .iter()
            .filter_map(|r| match r {
                Record::Queue(QueueRecord::Delete { queue, seq }) => Some((*queue, *seq)),
                _ => None,
            })
            .collect();
        let inserted_then_deleted: std::collections::BTreeSet<(u64, u64)> = batch
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
        let mut log = Vec::new();
        let mut sent = Vec::new();
        let mut folded = false;
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
                    Record::Queue(QueueRecord::Insert(m)) => {
                        if !inserted_then_deleted.contains(&(m.queue_id, m.seq)) {
                            sent.push(m.clone());
                        }
                    }
                    Record::Queue(QueueRecord::Update { queue, seq, .. })
                        if deleted.contains(&(*queue, *seq)) => {}
                    Record::Queue(QueueRecord::Delete { queue, seq })
                        if inserted_then_deleted.contains(&(*queue, *seq)) => {}
                    Record::Queue(QueueRecord::Update { queue, seq, state }) => {
                        let change = Change::State(*state);
                        crate::queue::persist::encode_change(&mut log, *queue, *seq, &change);
                        self.changes.push(((*queue, *seq), change));
                    }
                    Record::Queue(QueueRecord::Delete { queue, seq }) => {
                        crate::queue::persist::encode_change(
                            &mut log,
                            *queue,
                            *seq,
                            &Change::Deleted,
                        );
                        self.changes.push(((*queue, *seq), Change::Deleted));
                    }
                    Record::Queue(
                        q @ (QueueRecord::Purge { id, .. } | QueueRecord::DeleteQueue { id }),
                    ) => {
                        // The batch's earlier sends first: the purge covers them.
                        self.segments.write(&tx, &sent, &mut queue_sql)?;
                        sent.clear();
                        crate::queue::persist::apply(&tx, q, &mut queue_sql)?;
                        let upto = match q {
                            QueueRecord::Purge { upto, .. } => *upto,
                            _ => u64::MAX,
                        };
                        self.segments.remove_queue(&tx, *id, upto, &mut queue_sql)?;
                    }
                    Record::Queue(q) => crate::queue::persist::apply(&tx, q, &mut queue_sql)?,
                    Record::Table(t) => {
                        crate::table_record::apply(&tx, t, &mut table_sql, &mut self.items)?
                    }
                }
            }
            self.items.collect(&tx, &mut table_sql)?;
            self.segments.write(&tx, &sent, &mut queue_sql)?;
            if !log.is_empty() {
                tx.prepare_cached("INSERT INTO sqs_log (changes) VALUES (?1)")?
                    .execute([&log])?;
                self.log_rows += 1;
            }
            if self.changes.len() >= FOLD_CHANGES || self.log_rows >= FOLD_LOG_ROWS {
                // Wall time for the log line only; nothing depends on it.
                #[allow(clippy::disallowed_methods)]
                let started = std::time::Instant::now();
                crate::queue::persist::fold(
                    &tx,
                    &net_changes(&self.changes),
                    &mut self.segments,
                    &mut queue_sql,
                )?;
                tracing::debug!(
                    changes = self.changes.len(),
                    log_rows = self.log_rows,
                    elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "folded the queue log"
                );
                folded = true;
            }
        }
        tx.commit()?;
        // (After a failed commit the journal stops for good, so `changes` running ahead of
        // the disk then does not matter.)
        if folded {
            self.changes.clear();
            self.log_rows = 0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `.cargo/config.toml` passes SQLite's build flags (fdatasync, no allocation statistics)
    /// through `LIBSQLITE3_FLAGS`; `HAVE_FDATASYNC` is not among the options SQLite reports,
    /// the statistics flag set beside it is.
    #[test]
    fn sqlite_is_built_with_the_workspace_flags() {
        let conn = Connection::open_in_memory().unwrap();
        let mut st = conn.prepare("PRAGMA compile_options").unwrap();
        let options: Vec<String> = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "SQLite was built without the workspace's flags: {options:?}"
        );
    }

    #[test]
    fn a_fold_applies_the_last_change_of_each_message() {
        let state = |token| {
            Change::State(ReceiveState {
                receive_count: 1,
                first_receive: None,
                visible: Timestamp(5),
                token,
            })
        };
        let made = [
            ((2, 7), state(1)),
            ((1, 9), state(2)),
            ((2, 7), Change::Deleted),
            ((1, 3), state(3)),
            ((1, 9), state(4)),
            ((1, 3), Change::Deleted),
            ((1, 3), state(5)),
        ];
        let net: Vec<_> = net_changes(&made).into_iter().collect();
        assert_eq!(
            net,
            vec![
                ((1, 3), state(5)),
                ((1, 9), state(4)),
                ((2, 7), Change::Deleted)
            ]
        );
        assert!(net_changes(&[]).is_empty());
    }
    use crate::queue::persist::{QueueRecord, ReceiveState};
    use clock::Timestamp;

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

    fn message(queue_id: u64, seq: u64) -> Record {
        Record::Queue(QueueRecord::Insert(std::sync::Arc::new(
            crate::queue::StoredMessage {
                queue_id,
                seq,
                message_id: crate::queue::MessageId::v4((u128::from(seq)).to_le_bytes()),
                body: format!("body {seq}").into(),
                attributes: Default::default(),
                trace_header: None,
                sent: Timestamp(1),
                sender_id: "me".into(),
                group_id: None,
                dedup_id: None,
                dlq_source_arn: None,
                receive_count: 0,
                first_receive: None,
                visible: Timestamp(1),
                token: 0,
            },
        )))
    }

    fn received(queue: u64, seq: u64, n: u32) -> Record {
        Record::Queue(QueueRecord::Update {
            queue,
            seq,
            state: ReceiveState {
                receive_count: n,
                first_receive: Some(Timestamp(10)),
                visible: Timestamp(1000 + n as u64),
                token: 77 + n as u64,
            },
        })
    }

    fn deleted(queue: u64, seq: u64) -> Record {
        Record::Queue(QueueRecord::Delete { queue, seq })
    }

    /// (queue, seq, receive count, visible, token) of every message as a restart recovers it.
    fn recovered(path: &Path) -> Vec<(u64, u64, u32, u64, u64)> {
        let conn = Connection::open(path).unwrap();
        let st = crate::queue::persist::load(&conn, Timestamp(0)).unwrap();
        st.messages
            .iter()
            .map(|m| (m.queue_id, m.seq, m.receive_count, m.visible.0, m.token))
            .collect()
    }

    fn count(path: &Path, sql: &str) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    }

    /// Fold the log now, as the backend does once it is long enough.
    fn fold_now(backend: &mut SqliteBackend) {
        let tx = backend.conn.transaction().unwrap();
        crate::queue::persist::fold(
            &tx,
            &net_changes(&backend.changes),
            &mut backend.segments,
            &mut crate::queue::persist::Statements::default(),
        )
        .unwrap();
        tx.commit().unwrap();
        backend.changes.clear();
        backend.log_rows = 0;
    }

    /// A backend over the database in `path` as a restart opens it.
    fn reopened(path: &Path) -> SqliteBackend {
        let conn = Connection::open(path).unwrap();
        let mut st = crate::queue::persist::load(&conn, Timestamp(0)).unwrap();
        SqliteBackend::new(conn, std::mem::take(&mut st.segments), ItemLog::default())
    }

    #[test]
    fn receives_and_deletes_are_logged_then_folded_and_recovered_either_way() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, path) = open(dir.path()).unwrap();
        let mut backend = SqliteBackend::new(conn, Default::default(), Default::default());
        // Queue 1 holds seqs 1..=4 and 6..=8; queue 2's seq 5 is in between (seqs are
        // engine-wide).
        let mut sends: Vec<Record> = [1, 2, 3, 4, 6, 7, 8].map(|s| message(1, s)).to_vec();
        sends.push(message(2, 5));
        backend.commit(&sends).unwrap();
        // One commit's sends are one segment row.
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_segments"), 1);
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_messages"), 0);
        backend
            .commit(&[received(1, 1, 1), received(1, 2, 1), received(2, 5, 1)])
            .unwrap();
        backend
            .commit(&[
                deleted(1, 1),
                deleted(1, 2),
                received(1, 3, 1),
                received(1, 3, 2),
                deleted(1, 4),
            ])
            .unwrap();
        backend.commit(&[deleted(1, 6), deleted(1, 7)]).unwrap();
        // Nothing folded yet: the segment is as sent, the log holds the rest.
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_segment_gone"), 0);
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_log"), 3);
        // Seq 3 (live, between deleted 2 and 4) and queue 2's seq 5 (between deleted 4 and 6)
        // stay.
        let expected = vec![(1, 3, 2, 1002, 79), (1, 8, 0, 1, 0), (2, 5, 1, 1001, 78)];
        assert_eq!(recovered(&path), expected);
        // A fold writes the net effect and empties the log; a restart sees the same.
        fold_now(&mut backend);
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_log"), 0);
        // Blob order is 1, 2, 3, 4, 6, 7, 8, 5: indexes 0, 1, 3, 4, 5 are gone.
        let gone: String = Connection::open(&path)
            .unwrap()
            .query_row("SELECT hex(gone) FROM sqs_segment_gone", [], |r| r.get(0))
            .unwrap();
        assert_eq!(gone, "3B");
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_segment_state"), 2);
        assert_eq!(recovered(&path), expected);
        // Once every message is gone, so is the segment, with its bitmap and states.
        backend
            .commit(&[deleted(1, 3), deleted(1, 8), deleted(2, 5)])
            .unwrap();
        fold_now(&mut backend);
        for table in ["sqs_segments", "sqs_segment_gone", "sqs_segment_state"] {
            assert_eq!(
                count(&path, &format!("SELECT count(*) FROM {table}")),
                0,
                "{table}"
            );
        }
        assert_eq!(recovered(&path), vec![]);
    }

    #[test]
    fn message_rows_of_an_older_database_live_beside_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, path) = open(dir.path()).unwrap();
        // Before segments, every message was a `sqs_messages` row.
        {
            let tx = conn.transaction().unwrap();
            let mut sql = crate::queue::persist::Statements::default();
            for seq in 1..=3 {
                let Record::Queue(r) = message(1, seq) else {
                    unreachable!()
                };
                crate::queue::persist::apply(&tx, &r, &mut sql).unwrap();
            }
            drop(sql);
            tx.commit().unwrap();
        }
        drop(conn);
        let mut backend = reopened(&path);
        backend
            .commit(&[message(1, 4), message(1, 5), message(1, 6)])
            .unwrap();
        backend
            .commit(&[
                deleted(1, 1),
                deleted(1, 4),
                received(1, 2, 1),
                received(1, 5, 1),
            ])
            .unwrap();
        let expected = vec![
            (1, 2, 1, 1001, 78),
            (1, 3, 0, 1, 0),
            (1, 5, 1, 1001, 78),
            (1, 6, 0, 1, 0),
        ];
        assert_eq!(recovered(&path), expected);
        fold_now(&mut backend);
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_messages"), 2);
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_segment_state"), 1);
        assert_eq!(recovered(&path), expected);
        // A restart's index of the segment carries on where this backend's left off.
        drop(backend);
        let mut backend = reopened(&path);
        backend
            .commit(&[deleted(1, 5), deleted(1, 6), deleted(1, 2)])
            .unwrap();
        fold_now(&mut backend);
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_segments"), 0);
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_segment_state"), 0);
        assert_eq!(recovered(&path), vec![(1, 3, 0, 1, 0)]);
        // A row whose message id is not one this engine writes stops the start, naming it.
        drop(backend);
        let conn = Connection::open(&path).unwrap();
        conn.execute("UPDATE sqs_messages SET message_id = 'id-3'", [])
            .unwrap();
        let e = crate::queue::persist::load(&conn, Timestamp(0))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(r#"message id "id-3" is not a UUID"#), "{e}");
    }

    #[test]
    fn purges_and_queue_deletions_reach_messages_in_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, path) = open(dir.path()).unwrap();
        let mut backend = SqliteBackend::new(conn, Default::default(), Default::default());
        let mut sends: Vec<Record> = (1..=5).map(|s| message(1, s)).collect();
        sends.extend([message(2, 6), message(2, 7)]);
        backend.commit(&sends).unwrap();
        backend
            .commit(&[received(1, 2, 1), received(2, 7, 1)])
            .unwrap();
        fold_now(&mut backend);
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_segment_state"), 2);
        // A send in the purge's own batch, before it, is purged too; one after it is not.
        backend
            .commit(&[
                message(1, 8),
                Record::Queue(QueueRecord::Purge { id: 1, upto: 8 }),
                message(1, 9),
            ])
            .unwrap();
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_segment_state"), 1);
        assert_eq!(
            recovered(&path),
            vec![(1, 9, 0, 1, 0), (2, 6, 0, 1, 0), (2, 7, 1, 1001, 78)]
        );
        backend
            .commit(&[Record::Queue(QueueRecord::DeleteQueue { id: 2 })])
            .unwrap();
        assert_eq!(recovered(&path), vec![(1, 9, 0, 1, 0)]);
        // The first segment and the purge batch's first are empty and gone; its second stays.
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_segments"), 1);
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_segment_state"), 0);
        drop(backend);
        let mut backend = reopened(&path);
        backend.commit(&[deleted(1, 9)]).unwrap();
        fold_now(&mut backend);
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_segments"), 0);
    }

    #[test]
    fn a_segment_mostly_gone_is_written_again_with_what_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, path) = open(dir.path()).unwrap();
        let mut backend = SqliteBackend::new(conn, Default::default(), Default::default());
        backend
            .commit(&(1..=100).map(|s| message(1, s)).collect::<Vec<_>>())
            .unwrap();
        backend.commit(&[received(1, 95, 1)]).unwrap();
        fold_now(&mut backend);
        // 87 of 100 gone: 13 left, not yet below an eighth.
        backend
            .commit(&(1..=87).map(|s| deleted(1, s)).collect::<Vec<_>>())
            .unwrap();
        fold_now(&mut backend);
        let blob_len = |path: &Path| -> Vec<i64> {
            let conn = Connection::open(path).unwrap();
            let mut q = conn
                .prepare("SELECT id, length(messages) FROM sqs_segments ORDER BY id")
                .unwrap();
            q.query_map([], |r| r.get::<_, i64>(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(blob_len(&path), vec![1]);
        // 88 gone: the 12 left are a new segment, the old one is gone.
        backend.commit(&[deleted(1, 88)]).unwrap();
        fold_now(&mut backend);
        assert_eq!(blob_len(&path), vec![2]);
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_segment_gone"), 0);
        let expected: Vec<_> = (89..=100)
            .map(|s| {
                if s == 95 {
                    (1, s, 1, 1001, 78)
                } else {
                    (1, s, 0, 1, 0)
                }
            })
            .collect();
        assert_eq!(recovered(&path), expected);
        // The new segment's index is right, here and after a restart.
        backend
            .commit(&[deleted(1, 89), deleted(1, 90), deleted(1, 95)])
            .unwrap();
        fold_now(&mut backend);
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_segment_state"), 0);
        drop(backend);
        let mut backend = reopened(&path);
        assert_eq!(recovered(&path).len(), 9);
        backend
            .commit(
                &(91..=100)
                    .filter(|&s| s != 95)
                    .map(|s| deleted(1, s))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        fold_now(&mut backend);
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_segments"), 0);
        assert_eq!(recovered(&path), vec![]);
    }

    #[test]
    fn large_sends_are_split_into_segments_of_about_a_mebibyte() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, path) = open(dir.path()).unwrap();
        let mut backend = SqliteBackend::new(conn, Default::default(), Default::default());
        let big = |seq: u64| {
            let Record::Queue(QueueRecord::Insert(m)) = message(1, seq) else {
                unreachable!()
            };
            let mut m = (*m).clone();
            m.body = format!("{seq}{}", "x".repeat(400_000)).into();
            Record::Queue(QueueRecord::Insert(std::sync::Arc::new(m)))
        };
        // 400 kB each: the third crosses 1 MiB and closes the first segment.
        backend
            .commit(&(1..=5).map(big).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_segments"), 2);
        let conn = Connection::open(&path).unwrap();
        let st = crate::queue::persist::load(&conn, Timestamp(0)).unwrap();
        let bodies: Vec<(u64, usize, char)> = st
            .messages
            .iter()
            .map(|m| (m.seq, m.body.len(), m.body.chars().next().unwrap()))
            .collect();
        assert_eq!(
            bodies,
            (1..=5)
                .map(|s| (s, 400_001, char::from_digit(s as u32, 10).unwrap()))
                .collect::<Vec<_>>()
        );
        drop(conn);
        backend
            .commit(&[deleted(1, 1), deleted(1, 2), deleted(1, 3), deleted(1, 5)])
            .unwrap();
        fold_now(&mut backend);
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_segments"), 1);
        assert_eq!(
            recovered(&path).iter().map(|m| m.1).collect::<Vec<_>>(),
            vec![4]
        );
    }

    #[test]
    fn a_damaged_segment_is_a_start_up_error_naming_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, path) = open(dir.path()).unwrap();
        let mut backend = SqliteBackend::new(conn, Default::default(), Default::default());
        backend.commit(&[message(1, 1), message(1, 2)]).unwrap();
        drop(backend);
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE sqs_segments SET messages = substr(messages, 1, length(messages) - 3)",
            [],
        )
        .unwrap();
        let err = crate::queue::persist::load(&conn, Timestamp(0))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("bad sqs_segments row 1: message 1: truncated message"),
            "{err}"
        );
    }

    #[test]
    fn the_log_folds_by_itself_and_a_restart_folds_what_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, path) = open(dir.path()).unwrap();
        let mut backend = SqliteBackend::new(conn, Default::default(), Default::default());
        let n = FOLD_CHANGES as u64 + 10;
        backend
            .commit(&(1..=n).map(|s| message(1, s)).collect::<Vec<_>>())
            .unwrap();
        // Deleting all but the last ten crosses the fold threshold in the second commit.
        backend
            .commit(&(1..=n / 2).map(|s| deleted(1, s)).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_log"), 1);
        backend
            .commit(
                &(n / 2 + 1..=n - 10)
                    .map(|s| deleted(1, s))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_log"), 0);
        // The ten left were written again as a segment of their own.
        assert_eq!(
            count(&path, "SELECT count(*) FROM sqs_segments WHERE id = 2"),
            1
        );
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_segment_gone"), 0);
        backend.commit(&[received(1, n, 1)]).unwrap();
        drop(backend);
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_log"), 1);
        let after = recovered(&path);
        assert_eq!(after.len(), 10);
        assert_eq!(after[9], (1, n, 1, 1001, 78));
        // Loading folded the log.
        assert_eq!(count(&path, "SELECT count(*) FROM sqs_log"), 0);
        assert_eq!(
            count(
                &path,
                &format!("SELECT receive_count FROM sqs_segment_state WHERE seq = {n}")
            ),
            1
        );
    }

    #[test]
    fn a_log_blob_round_trips_and_a_damaged_one_is_an_error() {
        use crate::queue::persist::{decode_changes, encode_change};
        let changes = [
            (
                1,
                2,
                Change::State(ReceiveState {
                    receive_count: 3,
                    first_receive: None,
                    visible: Timestamp(4),
                    token: 5,
                }),
            ),
            (6, 7, Change::Deleted),
            (
                u64::MAX,
                0,
                Change::State(ReceiveState {
                    receive_count: u32::MAX,
                    first_receive: Some(Timestamp(8)),
                    visible: Timestamp(u64::MAX),
                    token: 0,
                }),
            ),
        ];
        let mut blob = Vec::new();
        for (q, s, c) in &changes {
            encode_change(&mut blob, *q, *s, c);
        }
        assert_eq!(decode_changes(&blob).unwrap(), changes.to_vec());
        let cut = decode_changes(&blob[..blob.len() - 3]).unwrap_err();
        assert!(cut.contains("truncated change"), "{cut}");
        let mut bad = blob.clone();
        bad[0] = 9;
        assert_eq!(decode_changes(&bad).unwrap_err(), "unknown change tag 9");
        // A restart refuses a damaged log rather than guessing.
        let dir = tempfile::tempdir().unwrap();
        let (conn, path) = open(dir.path()).unwrap();
        conn.execute("INSERT INTO sqs_log (changes) VALUES (?1)", [&bad])
            .unwrap();
        drop(conn);
        let conn = Connection::open(path).unwrap();
        let err = crate::queue::persist::load(&conn, Timestamp(0))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("bad sqs_log row 1: unknown change tag 9"),
            "{err}"
        );
    }

    #[test]
    fn a_batch_keeps_the_highest_counters_of_its_meta_records() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, path) = open(dir.path()).unwrap();
        let mut backend = SqliteBackend::new(conn, Default::default(), Default::default());
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
