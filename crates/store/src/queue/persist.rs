//! Journal records of the queue engine, their SQL, and recovery.
//!
//! # On-disk format (tables in `kedge.db`)
//! - `sqs_queues(id, name, attributes, tags, created_ms, modified_ms)`: one row per live queue;
//!   `attributes` and `tags` are JSON objects of strings, exactly as a client set them.
//! - `sqs_segments`, `sqs_segment_gone`, `sqs_segment_state`: the messages each group commit
//!   sends, as one blob row per commit, with a bitmap of those gone and the receive state of
//!   those received ([`super::segment`] has the format). Where a message is kept from its send.
//! - `sqs_messages(queue_id, seq, ...)`: one row per message, keyed by the queue's id (not its
//!   name, so a queue deleted and created again never sees old rows) and the engine's global
//!   sequence number (order of sending). Databases written before segments kept every message
//!   here; such rows are still loaded, received, folded and deleted as before. Its receive
//!   state (`receive_count`, `visible_ms`, `token`) is as of the last fold of `sqs_log`.
//! - `sqs_log(id, changes)`: receives, visibility changes and deletes since the last fold, one
//!   row per group commit (`changes` is the blob [`encode_change`] writes). A commit appends one
//!   small row instead of editing a row per change; every so often the backend folds the log
//!   into the segments and `sqs_messages` ([`fold`]: a message received and then deleted in
//!   between is deleted once, a deleted message of a segment is one bit, runs of deleted rows
//!   go by one statement) and empties it in the same transaction. Recovery applies the log to
//!   the messages it loads, so after a crash a message is exactly as the last acknowledged
//!   request left it.
//! - `sqs_dedup(queue_id, key, ...)`: FIFO deduplication entries; expired ones are dropped at
//!   load.
//! - `sqs_move_tasks(handle, started_ms, task)`: message move tasks (`task` is the JSON of a
//!   [`MoveTask`]), so `ListMessageMoveTasks` answers the same after a restart.
//! - `sqs_meta(key, value)`: the next sequence number and queue id.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use clock::Timestamp;
use rusqlite::{CachedStatement, Connection, Transaction, params};

use super::move_task::MoveTask;
use super::segment::Segments;
use super::{MessageAttributeValue, StoredMessage};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sqs_queues (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    attributes TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sqs_messages (
    queue_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes TEXT,
    trace_header TEXT,
    sent_ms INTEGER NOT NULL,
    sender_id TEXT NOT NULL,
    group_id TEXT,
    dedup_id TEXT,
    dlq_source_arn TEXT,
    receive_count INTEGER NOT NULL,
    first_receive_ms INTEGER,
    visible_ms INTEGER NOT NULL,
    token INTEGER NOT NULL,
    PRIMARY KEY (queue_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sqs_dedup (
    queue_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (queue_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sqs_move_tasks (
    handle TEXT PRIMARY KEY,
    started_ms INTEGER NOT NULL,
    task TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sqs_log (
    id INTEGER PRIMARY KEY,
    changes BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS sqs_segments (
    id INTEGER PRIMARY KEY,
    messages BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS sqs_segment_gone (
    id INTEGER PRIMARY KEY,
    gone BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS sqs_segment_state (
    queue_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    receive_count INTEGER NOT NULL,
    first_receive_ms INTEGER,
    visible_ms INTEGER NOT NULL,
    token INTEGER NOT NULL,
    PRIMARY KEY (queue_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sqs_meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

/// A message's receive state: what receives and visibility changes change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveState {
    pub receive_count: u32,
    pub first_receive: Option<Timestamp>,
    /// When the message is (or becomes) visible.
    pub visible: Timestamp,
    /// Changes at every receive; a receipt handle names the token it was issued with.
    pub token: u64,
}

/// A durable change to queues or messages.
#[derive(Debug, Clone)]
pub enum QueueRecord {
    /// Create or replace a queue row (creation, attribute and tag changes).
    PutQueue {
        id: u64,
        name: String,
        attributes: String,
        tags: String,
        created: Timestamp,
        modified: Timestamp,
    },
    DeleteQueue {
        id: u64,
    },
    /// Delete every message of the queue with `seq <= upto`.
    Purge {
        id: u64,
        upto: u64,
    },
    Insert(Arc<StoredMessage>),
    /// A receive or visibility change.
    Update {
        queue: u64,
        seq: u64,
        state: ReceiveState,
    },
    Delete {
        queue: u64,
        seq: u64,
    },
    PutDedup {
        queue: u64,
        key: String,
        expires: Timestamp,
        message_id: String,
        seq: u64,
    },
    Meta {
        next_seq: u64,
        next_queue_id: u64,
    },
    /// Create or replace a message move task.
    PutMoveTask(MoveTask),
}

pub(crate) fn ts(t: Timestamp) -> i64 {
    t.0.min(i64::MAX as u64) as i64
}

pub(crate) fn u(v: u64) -> i64 {
    v as i64
}

const INSERT_MESSAGE: &str = "INSERT OR REPLACE INTO sqs_messages (queue_id, seq, message_id, body, attributes, trace_header, sent_ms, sender_id, group_id, dedup_id, dlq_source_arn, receive_count, first_receive_ms, visible_ms, token) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
const UPDATE_MESSAGE: &str = "UPDATE sqs_messages SET receive_count = ?3, first_receive_ms = ?4, visible_ms = ?5, token = ?6 WHERE queue_id = ?1 AND seq = ?2";
const DELETE_MESSAGE: &str = "DELETE FROM sqs_messages WHERE queue_id = ?1 AND seq = ?2";

/// The per-message statements, prepared once per commit: a commit may run thousands of
/// them, and finding a statement in rusqlite's cache hashes and compares its whole SQL text.
#[derive(Default)]
pub struct Statements<'c> {
    insert: Option<CachedStatement<'c>>,
    update: Option<CachedStatement<'c>>,
    delete: Option<CachedStatement<'c>>,
    pub(crate) segment_insert: Option<CachedStatement<'c>>,
    pub(crate) segment_state: Option<CachedStatement<'c>>,
    pub(crate) segment_state_delete: Option<CachedStatement<'c>>,
    pub(crate) segment_gone: Option<CachedStatement<'c>>,
    pub(crate) segment_gone_delete: Option<CachedStatement<'c>>,
    pub(crate) segment_delete: Option<CachedStatement<'c>>,
}

/// A commit's statement for `sql`, prepared on its first use in the commit.
pub(crate) fn prepared<'s, 'c>(
    slot: &'s mut Option<CachedStatement<'c>>,
    tx: &'c Transaction<'_>,
    sql: &str,
) -> rusqlite::Result<&'s mut CachedStatement<'c>> {
    match slot {
        Some(s) => Ok(s),
        None => Ok(slot.insert(tx.prepare_cached(sql)?)),
    }
}

pub fn apply<'c>(
    tx: &'c Transaction<'_>,
    r: &QueueRecord,
    st: &mut Statements<'c>,
) -> rusqlite::Result<()> {
    match r {
        QueueRecord::PutMoveTask(t) => {
            let json = serde_json::to_string(t)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO sqs_move_tasks (handle, started_ms, task) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![t.handle, u(t.started_ms), json])?;
        }
        QueueRecord::PutQueue {
            id,
            name,
            attributes,
            tags,
            created,
            modified,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO sqs_queues (id, name, attributes, tags, created_ms, modified_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![u(*id), name, attributes, tags, ts(*created), ts(*modified)])?;
        }
        QueueRecord::DeleteQueue { id } => {
            tx.prepare_cached("DELETE FROM sqs_queues WHERE id = ?1")?
                .execute(params![u(*id)])?;
            tx.prepare_cached("DELETE FROM sqs_messages WHERE queue_id = ?1")?
                .execute(params![u(*id)])?;
            tx.prepare_cached("DELETE FROM sqs_dedup WHERE queue_id = ?1")?
                .execute(params![u(*id)])?;
        }
        QueueRecord::Purge { id, upto } => {
            tx.prepare_cached("DELETE FROM sqs_messages WHERE queue_id = ?1 AND seq <= ?2")?
                .execute(params![u(*id), u(*upto)])?;
            // A purge also forgets the FIFO deduplication ids (SQS accepts them again).
            tx.prepare_cached("DELETE FROM sqs_dedup WHERE queue_id = ?1")?
                .execute(params![u(*id)])?;
        }
        QueueRecord::Insert(m) => {
            let attrs = if m.attributes.is_empty() {
                None
            } else {
                Some(encode_attributes(&m.attributes))
            };
            prepared(&mut st.insert, tx, INSERT_MESSAGE)?.execute(params![
                u(m.queue_id),
                u(m.seq),
                &*m.message_id.text(),
                &*m.body,
                attrs,
                m.trace_header,
                ts(m.sent),
                &*m.sender_id,
                m.group_id.as_deref(),
                m.dedup_id,
                m.dlq_source_arn,
                m.receive_count,
                m.first_receive.map(ts),
                ts(m.visible),
                u(m.token),
            ])?;
        }
        QueueRecord::Update { queue, seq, state } => {
            prepared(&mut st.update, tx, UPDATE_MESSAGE)?.execute(params![
                u(*queue),
                u(*seq),
                state.receive_count,
                state.first_receive.map(ts),
                ts(state.visible),
                u(state.token)
            ])?;
        }
        QueueRecord::Delete { queue, seq } => {
            prepared(&mut st.delete, tx, DELETE_MESSAGE)?.execute(params![u(*queue), u(*seq)])?;
        }
        QueueRecord::PutDedup {
            queue,
            key,
            expires,
            message_id,
            seq,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO sqs_dedup (queue_id, key, expires_ms, message_id, seq) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![u(*queue), key, ts(*expires), message_id, u(*seq)])?;
        }
        QueueRecord::Meta {
            next_seq,
            next_queue_id,
        } => {
            let mut st =
                tx.prepare_cached("INSERT OR REPLACE INTO sqs_meta (key, value) VALUES (?1, ?2)")?;
            st.execute(params!["next_seq", u(*next_seq)])?;
            st.execute(params!["next_queue_id", u(*next_queue_id)])?;
        }
    }
    Ok(())
}

/// What `sqs_log` records about a message: its receive state after a receive or visibility
/// change, or that it was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    State(ReceiveState),
    Deleted,
}

const CHANGE_STATE: u8 = 0;
const CHANGE_DELETED: u8 = 1;

/// Append one change to a log blob: a tag byte, then queue id and seq, then (for a state)
/// receive count, first receive (`u64::MAX` for none), visible and token; little-endian.
pub fn encode_change(out: &mut Vec<u8>, queue: u64, seq: u64, change: &Change) {
    match change {
        Change::State(state) => {
            out.push(CHANGE_STATE);
            out.extend_from_slice(&queue.to_le_bytes());
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(&state.receive_count.to_le_bytes());
            let first = state.first_receive.map_or(u64::MAX, |t| t.0);
            out.extend_from_slice(&first.to_le_bytes());
            out.extend_from_slice(&state.visible.0.to_le_bytes());
            out.extend_from_slice(&state.token.to_le_bytes());
        }
        Change::Deleted => {
            out.push(CHANGE_DELETED);
            out.extend_from_slice(&queue.to_le_bytes());
            out.extend_from_slice(&seq.to_le_bytes());
        }
    }
}

/// The changes of one log blob, in the order they were made; an error names what is wrong
/// with a blob this engine did not write.
pub fn decode_changes(mut blob: &[u8]) -> Result<Vec<(u64, u64, Change)>, String> {
    fn take<const N: usize>(b: &mut &[u8]) -> Result<[u8; N], String> {
        let (head, rest) = b
            .split_first_chunk::<N>()
            .ok_or_else(|| format!("truncated change: {} bytes left, {N} needed", b.len()))?;
        *b = rest;
        Ok(*head)
    }
    let mut out = Vec::new();
    while let Some((&tag, rest)) = blob.split_first() {
        blob = rest;
        let queue = u64::from_le_bytes(take(&mut blob)?);
        let seq = u64::from_le_bytes(take(&mut blob)?);
        let change = match tag {
            CHANGE_STATE => {
                let receive_count = u32::from_le_bytes(take(&mut blob)?);
                let first = u64::from_le_bytes(take(&mut blob)?);
                Change::State(ReceiveState {
                    receive_count,
                    first_receive: (first != u64::MAX).then_some(Timestamp(first)),
                    visible: Timestamp(u64::from_le_bytes(take(&mut blob)?)),
                    token: u64::from_le_bytes(take(&mut blob)?),
                })
            }
            CHANGE_DELETED => Change::Deleted,
            other => return Err(format!("unknown change tag {other}")),
        };
        out.push((queue, seq, change));
    }
    Ok(out)
}

const DELETE_MESSAGE_RANGE: &str =
    "DELETE FROM sqs_messages WHERE queue_id = ?1 AND seq BETWEEN ?2 AND ?3";

/// Apply the net effect of the logged `changes` (the last change of each message) to
/// `sqs_messages` and the segments, and empty `sqs_log`, in `tx`. Deleted messages with
/// consecutive seqs in one queue go in one statement: every seq of the run is deleted, so the
/// range holds no other message of that queue. A message kept in a segment becomes a bit of
/// its segment's gone bitmap when deleted, a `sqs_segment_state` row when received.
pub fn fold<'c>(
    tx: &'c Transaction<'_>,
    changes: &BTreeMap<(u64, u64), Change>,
    segments: &mut Segments,
    st: &mut Statements<'c>,
) -> rusqlite::Result<()> {
    let mut run: Option<(u64, u64, u64)> = None;
    let mut range = None;
    let mut flush = |run: Option<(u64, u64, u64)>| -> rusqlite::Result<()> {
        if let Some((queue, from, to)) = run {
            prepared(&mut range, tx, DELETE_MESSAGE_RANGE)?.execute(params![
                u(queue),
                u(from),
                u(to)
            ])?;
        }
        Ok(())
    };
    let mut touched = BTreeSet::new();
    for (&(queue, seq), change) in changes {
        if segments.holds(queue, seq) {
            match change {
                Change::Deleted => segments.remove(tx, queue, seq, &mut touched, st)?,
                Change::State(state) => segments.set_state(tx, queue, seq, state, st)?,
            }
            continue;
        }
        match *change {
            Change::Deleted => match &mut run {
                Some((q, _, to)) if *q == queue && to.checked_add(1) == Some(seq) => *to = seq,
                _ => flush(run.replace((queue, seq, seq)))?,
            },
            Change::State(state) => apply(tx, &QueueRecord::Update { queue, seq, state }, st)?,
        }
    }
    flush(run)?;
    segments.settle(tx, &touched, st)?;
    tx.execute("DELETE FROM sqs_log", [])?;
    Ok(())
}

/// Attributes as stored: JSON `{name: [data_type, string_value | null, base64(binary) | null]}`.
pub fn encode_attributes(a: &std::collections::BTreeMap<String, MessageAttributeValue>) -> String {
    use base64::Engine;
    let map: serde_json::Map<String, serde_json::Value> = a
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::json!([
                    v.data_type,
                    v.string_value,
                    v.binary_value
                        .as_ref()
                        .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
                ]),
            )
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

pub(crate) fn decode_attributes(
    s: &str,
) -> std::collections::BTreeMap<String, MessageAttributeValue> {
    use base64::Engine;
    let mut out = std::collections::BTreeMap::new();
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(s) else {
        return out;
    };
    for (k, v) in map {
        let Some(arr) = v.as_array() else { continue };
        let data_type = arr.first().and_then(|x| x.as_str()).unwrap_or("String");
        let string_value = arr.get(1).and_then(|x| x.as_str()).map(str::to_owned);
        let binary_value = arr
            .get(2)
            .and_then(|x| x.as_str())
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
        out.insert(
            k,
            MessageAttributeValue {
                data_type: data_type.to_owned(),
                string_value,
                binary_value,
            },
        );
    }
    out
}

/// A queue row as recovered.
pub struct LoadedQueue {
    pub id: u64,
    pub name: String,
    pub attributes: HashMap<String, String>,
    pub tags: HashMap<String, String>,
    pub created: Timestamp,
    pub modified: Timestamp,
}

/// Everything the queue engine recovers at start.
#[derive(Default)]
pub struct LoadedState {
    pub queues: Vec<LoadedQueue>,
    pub messages: Vec<StoredMessage>,
    /// (queue id, key, expires, message id, seq)
    pub dedup: Vec<(u64, String, Timestamp, String, u64)>,
    pub next_seq: u64,
    pub next_queue_id: u64,
    /// Message move tasks, oldest first.
    pub move_tasks: Vec<MoveTask>,
    /// The index of the messages kept in segments, for the journal's backend.
    pub segments: Segments,
}

pub fn load(conn: &Connection, now: Timestamp) -> rusqlite::Result<LoadedState> {
    let mut st = LoadedState {
        next_seq: 1,
        next_queue_id: 1,
        ..Default::default()
    };
    {
        let mut q = conn.prepare("SELECT key, value FROM sqs_meta")?;
        let rows = q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (k, v) = row?;
            match k.as_str() {
                "next_seq" => st.next_seq = v as u64,
                "next_queue_id" => st.next_queue_id = v as u64,
                _ => {}
            }
        }
    }
    {
        let mut q = conn.prepare(
            "SELECT id, name, attributes, tags, created_ms, modified_ms FROM sqs_queues ORDER BY id",
        )?;
        let rows = q.query_map([], |r| {
            Ok(LoadedQueue {
                id: r.get::<_, i64>(0)? as u64,
                name: r.get(1)?,
                attributes: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
                tags: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
                created: Timestamp(r.get::<_, i64>(4)? as u64),
                modified: Timestamp(r.get::<_, i64>(5)? as u64),
            })
        })?;
        for row in rows {
            let q = row?;
            st.next_queue_id = st.next_queue_id.max(q.id + 1);
            st.queues.push(q);
        }
    }
    {
        let mut q = conn.prepare(
            "SELECT queue_id, seq, message_id, body, attributes, trace_header, sent_ms, sender_id, group_id, dedup_id, dlq_source_arn, receive_count, first_receive_ms, visible_ms, token FROM sqs_messages ORDER BY queue_id, seq",
        )?;
        let rows = q.query_map([], |r| {
            let attrs: Option<String> = r.get(4)?;
            Ok(StoredMessage {
                queue_id: r.get::<_, i64>(0)? as u64,
                seq: r.get::<_, i64>(1)? as u64,
                message_id: {
                    let id: String = r.get(2)?;
                    super::MessageId::parse(&id).ok_or_else(|| {
                        rusqlite::Error::FromSqlConversionFailure(
                            2,
                            rusqlite::types::Type::Text,
                            format!("message id {id:?} is not a UUID").into(),
                        )
                    })?
                },
                body: Arc::from(r.get::<_, String>(3)?),
                attributes: attrs.map(|a| decode_attributes(&a)).unwrap_or_default(),
                trace_header: r.get(5)?,
                sent: Timestamp(r.get::<_, i64>(6)? as u64),
                sender_id: Arc::from(r.get::<_, String>(7)?),
                group_id: r.get::<_, Option<String>>(8)?.map(Arc::from),
                dedup_id: r.get(9)?,
                dlq_source_arn: r.get(10)?,
                receive_count: r.get(11)?,
                first_receive: r.get::<_, Option<i64>>(12)?.map(|v| Timestamp(v as u64)),
                visible: Timestamp(r.get::<_, i64>(13)? as u64),
                token: r.get::<_, i64>(14)? as u64,
            })
        })?;
        for row in rows {
            st.messages.push(row?);
        }
    }
    st.segments = super::segment::load(conn, &mut st.messages)?;
    st.messages.sort_unstable_by_key(|m| (m.queue_id, m.seq));
    if let Some(last) = st.messages.iter().map(|m| m.seq).max() {
        st.next_seq = st.next_seq.max(last + 1);
    }
    {
        // Receives and deletes logged since the last fold, applied in order; then folded, so
        // the next start reads them from `sqs_messages`.
        let mut changes: BTreeMap<(u64, u64), Change> = BTreeMap::new();
        let mut q = conn.prepare("SELECT id, changes FROM sqs_log ORDER BY id")?;
        let rows = q.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
        for row in rows {
            let (id, blob) = row?;
            let logged = decode_changes(&blob).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    1,
                    rusqlite::types::Type::Blob,
                    format!("bad sqs_log row {id}: {e}").into(),
                )
            })?;
            changes.extend(logged.into_iter().map(|(q, s, c)| ((q, s), c)));
        }
        drop(q);
        if !changes.is_empty() {
            st.messages
                .retain_mut(|m| match changes.get(&(m.queue_id, m.seq)) {
                    None => true,
                    Some(Change::Deleted) => false,
                    Some(Change::State(state)) => {
                        m.set_receive_state(*state);
                        true
                    }
                });
            let tx = conn.unchecked_transaction()?;
            fold(&tx, &changes, &mut st.segments, &mut Statements::default())?;
            tx.commit()?;
        }
    }
    {
        conn.execute(
            "DELETE FROM sqs_dedup WHERE expires_ms <= ?1",
            params![ts(now)],
        )?;
        let mut q =
            conn.prepare("SELECT queue_id, key, expires_ms, message_id, seq FROM sqs_dedup")?;
        let rows = q.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, String>(1)?,
                Timestamp(r.get::<_, i64>(2)? as u64),
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)? as u64,
            ))
        })?;
        for row in rows {
            let d = row?;
            st.next_seq = st.next_seq.max(d.4 + 1);
            st.dedup.push(d);
        }
    }
    {
        let mut q = conn.prepare("SELECT task FROM sqs_move_tasks ORDER BY started_ms, handle")?;
        let rows = q.query_map([], |r| r.get::<_, String>(0))?;
        for row in rows {
            let text = row?;
            let task: MoveTask = serde_json::from_str(&text).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    format!("bad message move task {text}: {e}").into(),
                )
            })?;
            st.move_tasks.push(task);
        }
    }
    Ok(st)
}
