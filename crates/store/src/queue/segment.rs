//! Message segments: the messages one group commit sends, stored as one row.
//!
//! # On-disk format
//! - `sqs_segments(id, messages)`: `messages` is the blob [`encode`] writes: a version byte
//!   (1), then each message's fields in [`StoredMessage`] order, integers little-endian,
//!   strings as a `u32` byte length and UTF-8, optional values behind a 0/1 byte, attributes
//!   as the JSON [`super::persist::encode_attributes`] writes (absent when there are none).
//!   A message's place in the blob is its index.
//! - `sqs_segment_gone(id, gone)`: a bitmap per segment (bit `i % 8` of byte `i / 8` for
//!   index `i`) of the messages that no longer exist (deleted, purged, their queue deleted).
//!   No row: none are gone. Once every message of a segment is gone, both rows are deleted;
//!   once fewer than an eighth are left (of 16 or more), they are written again as a new
//!   segment and the old one is deleted, so a message that stays long does not keep its whole
//!   commit's blob on disk.
//! - `sqs_segment_state(queue_id, seq, ...)`: the receive state of a message kept in a
//!   segment, as of the last fold of `sqs_log`, for messages received before that fold and
//!   still there (the blob keeps the state the message was sent with).
//!
//! Why: a message costs one row insert and later one row delete in `sqs_messages`, each a
//! b-tree edit; in a segment the send costs a few bytes of a blob written in one go, and the
//! delete a bit, until the whole segment goes with one row delete.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use clock::Timestamp;
use rusqlite::{Transaction, params};

use super::StoredMessage;
use super::persist::{ReceiveState, Statements, prepared, ts, u};

const VERSION: u8 = 1;

/// A commit's sends go in segments of about this many bytes (the last message may take one
/// past it): a commit may carry thousands of large messages, and SQLite refuses a blob past
/// 1 GB.
const SEGMENT_BYTES: usize = 1 << 20;

/// Where a message kept in a segment is.
#[derive(Debug, Clone, Copy)]
struct Loc {
    segment: u64,
    index: u32,
    /// `sqs_segment_state` has a row for it.
    has_state: bool,
}

#[derive(Debug, Clone)]
struct Segment {
    gone: Vec<u8>,
    live: u32,
    /// Messages in the blob, gone or not.
    total: u32,
}

/// A touched segment whose live messages are fewer than this fraction of its blob is written
/// again with only them (a message that stays for days keeps no more than this much of its
/// commit's blob alive), unless it holds fewer than [`COMPACT_MIN`] messages.
const COMPACT_BELOW: u32 = 8;
const COMPACT_MIN: u32 = 16;

/// The live messages kept in segments, and each segment's gone bitmap: what the journal
/// thread needs to turn a delete into a bit and to drop a segment once it is empty.
#[derive(Debug, Default)]
pub struct Segments {
    at: BTreeMap<(u64, u64), Loc>,
    segments: HashMap<u64, Segment>,
}

impl Segments {
    /// Store `messages` in `tx` as one new segment, or as several of about
    /// [`SEGMENT_BYTES`] each when they are larger (nothing when there are none).
    pub fn write<'c>(
        &mut self,
        tx: &'c Transaction<'_>,
        messages: &[Arc<StoredMessage>],
        st: &mut Statements<'c>,
    ) -> rusqlite::Result<()> {
        let mut blob = Vec::with_capacity(4096);
        let mut first = 0;
        for (i, m) in messages.iter().enumerate() {
            if blob.is_empty() {
                blob.push(VERSION);
            }
            encode_one(&mut blob, m);
            if blob.len() >= SEGMENT_BYTES || i + 1 == messages.len() {
                let id = insert(tx, &blob, st)?;
                let keys = messages[first..=i].iter().map(|m| (m.queue_id, m.seq));
                self.add(id, keys, None);
                blob.clear();
                first = i + 1;
            }
        }
        Ok(())
    }

    /// Register segment `id` holding `keys` in index order, with its gone bitmap.
    fn add(&mut self, id: u64, keys: impl Iterator<Item = (u64, u64)>, gone: Option<Vec<u8>>) {
        let mut live = 0;
        let mut n = 0;
        for (index, key) in keys.enumerate() {
            n = index + 1;
            if gone.as_ref().is_some_and(|g| bit(g, index)) {
                continue;
            }
            live += 1;
            self.at.insert(
                key,
                Loc {
                    segment: id,
                    index: index as u32,
                    has_state: false,
                },
            );
        }
        let mut gone = gone.unwrap_or_default();
        gone.resize(gone.len().max(n.div_ceil(8)), 0);
        self.segments.insert(
            id,
            Segment {
                gone,
                live,
                total: n as u32,
            },
        );
    }

    /// Whether the message is kept in a segment.
    pub fn holds(&self, queue: u64, seq: u64) -> bool {
        self.at.contains_key(&(queue, seq))
    }

    /// Record a receive state of a message kept in a segment (see [`Self::holds`]).
    pub fn set_state<'c>(
        &mut self,
        tx: &'c Transaction<'_>,
        queue: u64,
        seq: u64,
        state: &ReceiveState,
        st: &mut Statements<'c>,
    ) -> rusqlite::Result<()> {
        let Some(loc) = self.at.get_mut(&(queue, seq)) else {
            return Ok(());
        };
        prepared(
            &mut st.segment_state,
            tx,
            "INSERT OR REPLACE INTO sqs_segment_state (queue_id, seq, receive_count, first_receive_ms, visible_ms, token) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            queue as i64,
            seq as i64,
            state.receive_count,
            state.first_receive.map(ts),
            ts(state.visible),
            state.token as i64
        ])?;
        loc.has_state = true;
        Ok(())
    }

    /// Mark a message kept in a segment gone; its segment joins `touched`.
    pub fn remove<'c>(
        &mut self,
        tx: &'c Transaction<'_>,
        queue: u64,
        seq: u64,
        touched: &mut BTreeSet<u64>,
        st: &mut Statements<'c>,
    ) -> rusqlite::Result<()> {
        let Some(loc) = self.at.remove(&(queue, seq)) else {
            return Ok(());
        };
        if loc.has_state {
            prepared(
                &mut st.segment_state_delete,
                tx,
                "DELETE FROM sqs_segment_state WHERE queue_id = ?1 AND seq = ?2",
            )?
            .execute(params![queue as i64, seq as i64])?;
        }
        self.mark_gone(loc, touched);
        Ok(())
    }

    fn mark_gone(&mut self, loc: Loc, touched: &mut BTreeSet<u64>) {
        if let Some(s) = self.segments.get_mut(&loc.segment) {
            let i = loc.index as usize;
            if let Some(byte) = s.gone.get_mut(i / 8) {
                *byte |= 1 << (i % 8);
            }
            s.live = s.live.saturating_sub(1);
        }
        touched.insert(loc.segment);
    }

    /// Mark every message of `queue` with `seq <= upto` gone (a purge; `u64::MAX` for a
    /// deleted queue) and write the touched segments.
    pub fn remove_queue<'c>(
        &mut self,
        tx: &'c Transaction<'_>,
        queue: u64,
        upto: u64,
        st: &mut Statements<'c>,
    ) -> rusqlite::Result<()> {
        let keys: Vec<(u64, u64)> = self
            .at
            .range((queue, 0)..=(queue, upto))
            .map(|(k, _)| *k)
            .collect();
        let mut touched = BTreeSet::new();
        for key in keys {
            if let Some(loc) = self.at.remove(&key) {
                self.mark_gone(loc, &mut touched);
            }
        }
        tx.prepare_cached("DELETE FROM sqs_segment_state WHERE queue_id = ?1 AND seq <= ?2")?
            // `upto` is u64::MAX for a deleted queue: clamp, do not wrap.
            .execute(params![u(queue), upto.min(i64::MAX as u64) as i64])?;
        self.settle(tx, &touched, st)
    }

    /// Write the gone bitmaps of `touched` segments; delete those with nothing left.
    pub fn settle<'c>(
        &mut self,
        tx: &'c Transaction<'_>,
        touched: &BTreeSet<u64>,
        st: &mut Statements<'c>,
    ) -> rusqlite::Result<()> {
        for &id in touched {
            let Some(s) = self.segments.get(&id) else {
                continue;
            };
            if s.live == 0 {
                delete_rows(tx, id, st)?;
                self.segments.remove(&id);
            } else if s.total >= COMPACT_MIN && s.live * COMPACT_BELOW < s.total {
                self.compact(tx, id, st)?;
            } else {
                prepared(
                    &mut st.segment_gone,
                    tx,
                    "INSERT OR REPLACE INTO sqs_segment_gone (id, gone) VALUES (?1, ?2)",
                )?
                .execute(params![id as i64, &s.gone])?;
            }
        }
        Ok(())
    }
}

impl Segments {
    /// Write segment `id`'s live messages as a new segment and delete it. Their receive
    /// states stay in `sqs_segment_state` (keyed by queue and seq, not by segment).
    fn compact<'c>(
        &mut self,
        tx: &'c Transaction<'_>,
        id: u64,
        st: &mut Statements<'c>,
    ) -> rusqlite::Result<()> {
        let blob: Vec<u8> = tx.query_row(
            "SELECT messages FROM sqs_segments WHERE id = ?1",
            [id as i64],
            |r| r.get(0),
        )?;
        let messages = decode(&blob).map_err(|e| bad(format!("bad sqs_segments row {id}: {e}")))?;
        let live: Vec<StoredMessage> = messages
            .into_iter()
            .filter(|m| {
                self.at
                    .get(&(m.queue_id, m.seq))
                    .is_some_and(|l| l.segment == id)
            })
            .collect();
        let new = insert(tx, &encode(live.iter()), st)?;
        for (index, m) in live.iter().enumerate() {
            if let Some(loc) = self.at.get_mut(&(m.queue_id, m.seq)) {
                loc.segment = new;
                loc.index = index as u32;
            }
        }
        let n = live.len() as u32;
        self.segments.insert(
            new,
            Segment {
                gone: vec![0; live.len().div_ceil(8)],
                live: n,
                total: n,
            },
        );
        tracing::debug!(
            from = id,
            to = new,
            messages = n,
            "compacted a message segment"
        );
        self.segments.remove(&id);
        delete_rows(tx, id, st)
    }
}

/// Insert a segment row holding `blob`; its id.
fn insert<'c>(
    tx: &'c Transaction<'_>,
    blob: &[u8],
    st: &mut Statements<'c>,
) -> rusqlite::Result<u64> {
    prepared(
        &mut st.segment_insert,
        tx,
        "INSERT INTO sqs_segments (messages) VALUES (?1)",
    )?
    .execute([blob])?;
    Ok(tx.last_insert_rowid() as u64)
}

/// Delete segment `id`'s rows.
fn delete_rows<'c>(
    tx: &'c Transaction<'_>,
    id: u64,
    st: &mut Statements<'c>,
) -> rusqlite::Result<()> {
    prepared(
        &mut st.segment_delete,
        tx,
        "DELETE FROM sqs_segments WHERE id = ?1",
    )?
    .execute([id as i64])?;
    prepared(
        &mut st.segment_gone_delete,
        tx,
        "DELETE FROM sqs_segment_gone WHERE id = ?1",
    )?
    .execute([id as i64])?;
    Ok(())
}

fn bad(what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, what.into())
}

fn bit(bitmap: &[u8], i: usize) -> bool {
    bitmap.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

/// The blob of a segment holding `messages`, in order.
pub fn encode<'m>(messages: impl Iterator<Item = &'m StoredMessage>) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.push(VERSION);
    for m in messages {
        encode_one(&mut out, m);
    }
    out
}

/// Append one message to a segment blob.
fn encode_one(out: &mut Vec<u8>, m: &StoredMessage) {
    put_u64(out, m.queue_id);
    put_u64(out, m.seq);
    put_str(out, &m.message_id.text());
    put_str(out, &m.body);
    let attrs =
        (!m.attributes.is_empty()).then(|| super::persist::encode_attributes(&m.attributes));
    put_opt_str(out, attrs.as_deref());
    put_opt_str(out, m.trace_header.as_deref());
    put_u64(out, m.sent.0);
    put_str(out, &m.sender_id);
    put_opt_str(out, m.group_id.as_deref());
    put_opt_str(out, m.dedup_id.as_deref());
    put_opt_str(out, m.dlq_source_arn.as_deref());
    out.extend_from_slice(&m.receive_count.to_le_bytes());
    match m.first_receive {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            put_u64(out, t.0);
        }
    }
    put_u64(out, m.visible.0);
    put_u64(out, m.token);
}

struct Reader<'b>(&'b [u8]);

impl<'b> Reader<'b> {
    fn bytes(&mut self, n: usize) -> Result<&'b [u8], String> {
        if self.0.len() < n {
            return Err(format!(
                "truncated message: {} bytes left, {n} needed",
                self.0.len()
            ));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.bytes(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.bytes(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.bytes(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn str(&mut self) -> Result<&'b str, String> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.bytes(n)?).map_err(|e| format!("a string is not UTF-8: {e}"))
    }
    fn present(&mut self) -> Result<bool, String> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("bad presence byte {other}")),
        }
    }
    fn opt_str(&mut self) -> Result<Option<&'b str>, String> {
        if self.present()? {
            self.str().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// The messages of a segment blob, in order; an error names what is wrong with a blob this
/// engine did not write.
pub fn decode(blob: &[u8]) -> Result<Vec<StoredMessage>, String> {
    let Some((&version, rest)) = blob.split_first() else {
        return Err("empty segment".into());
    };
    if version != VERSION {
        return Err(format!("unknown segment version {version}"));
    }
    let mut r = Reader(rest);
    let mut out = Vec::new();
    while !r.0.is_empty() {
        let index = out.len();
        let m = (|| -> Result<StoredMessage, String> {
            Ok(StoredMessage {
                queue_id: r.u64()?,
                seq: r.u64()?,
                message_id: {
                    let id = r.str()?;
                    super::MessageId::parse(id)
                        .ok_or_else(|| format!("message id {id:?} is not a UUID"))?
                },
                body: Arc::from(r.str()?),
                attributes: r
                    .opt_str()?
                    .map(super::persist::decode_attributes)
                    .unwrap_or_default(),
                trace_header: r.opt_str()?.map(str::to_owned),
                sent: Timestamp(r.u64()?),
                sender_id: Arc::from(r.str()?),
                group_id: r.opt_str()?.map(Arc::from),
                dedup_id: r.opt_str()?.map(str::to_owned),
                dlq_source_arn: r.opt_str()?.map(str::to_owned),
                receive_count: r.u32()?,
                first_receive: if r.present()? {
                    Some(Timestamp(r.u64()?))
                } else {
                    None
                },
                visible: Timestamp(r.u64()?),
                token: r.u64()?,
            })
        })()
        .map_err(|e| format!("message {index}: {e}"))?;
        out.push(m);
    }
    Ok(out)
}

/// Load every segment's live messages (with the receive states `sqs_segment_state` holds)
/// into `messages`, and the index the journal thread keeps.
pub fn load(
    conn: &rusqlite::Connection,
    messages: &mut Vec<StoredMessage>,
) -> rusqlite::Result<Segments> {
    let mut states: BTreeMap<(u64, u64), ReceiveState> = BTreeMap::new();
    {
        let mut q = conn.prepare(
            "SELECT queue_id, seq, receive_count, first_receive_ms, visible_ms, token FROM sqs_segment_state",
        )?;
        let rows = q.query_map([], |r| {
            Ok((
                (r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64),
                ReceiveState {
                    receive_count: r.get(2)?,
                    first_receive: r.get::<_, Option<i64>>(3)?.map(|v| Timestamp(v as u64)),
                    visible: Timestamp(r.get::<_, i64>(4)? as u64),
                    token: r.get::<_, i64>(5)? as u64,
                },
            ))
        })?;
        for row in rows {
            let (k, s) = row?;
            states.insert(k, s);
        }
    }
    let mut segments = Segments::default();
    let mut q = conn.prepare(
        "SELECT s.id, s.messages, g.gone FROM sqs_segments s LEFT JOIN sqs_segment_gone g ON g.id = s.id ORDER BY s.id",
    )?;
    let rows = q.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)? as u64,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, Option<Vec<u8>>>(2)?,
        ))
    })?;
    for row in rows {
        let (id, blob, gone) = row?;
        let decoded = decode(&blob).map_err(|e| bad(format!("bad sqs_segments row {id}: {e}")))?;
        segments.add(id, decoded.iter().map(|m| (m.queue_id, m.seq)), gone);
        for mut m in decoded {
            let key = (m.queue_id, m.seq);
            let Some(loc) = segments.at.get_mut(&key) else {
                continue;
            };
            if let Some(s) = states.get(&key) {
                m.set_receive_state(*s);
                loc.has_state = true;
            }
            messages.push(m);
        }
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(queue_id: u64, seq: u64, full: bool) -> StoredMessage {
        StoredMessage {
            queue_id,
            seq,
            message_id: super::super::MessageId::v4(u128::from(seq).to_le_bytes()),
            body: format!("body ü {seq}").into(),
            attributes: if full {
                [(
                    "a".to_string(),
                    super::super::MessageAttributeValue {
                        data_type: "Binary".into(),
                        string_value: None,
                        binary_value: Some(vec![0, 1, 255]),
                    },
                )]
                .into()
            } else {
                Default::default()
            },
            trace_header: full.then(|| "Root=1".into()),
            sent: Timestamp(seq * 10),
            sender_id: "me".into(),
            group_id: full.then(|| "g".into()),
            dedup_id: full.then(|| "d".into()),
            dlq_source_arn: full.then(|| "arn:aws:sqs:x".into()),
            receive_count: if full { 3 } else { 0 },
            first_receive: full.then_some(Timestamp(7)),
            visible: Timestamp(u64::MAX),
            token: u64::MAX - seq,
        }
    }

    #[test]
    fn a_segment_round_trips_every_field_and_a_damaged_one_is_an_error() {
        let ms = [
            message(1, 1, true),
            message(2, 9, false),
            message(1, 3, true),
        ];
        let blob = encode(ms.iter());
        let back = decode(&blob).unwrap();
        assert_eq!(back, ms);
        let cut = decode(&blob[..blob.len() - 2]).unwrap_err();
        assert!(
            cut.starts_with("message 2: truncated message: 6 bytes left, 8 needed"),
            "{cut}"
        );
        assert_eq!(decode(&[]).unwrap_err(), "empty segment");
        assert_eq!(decode(&[7]).unwrap_err(), "unknown segment version 7");
        let mut bad = blob.clone();
        // The presence byte of the first message's attributes.
        let at = 1 + 8 + 8 + 4 + 36 + 4 + "body ü 1".len();
        bad[at] = 5;
        assert_eq!(decode(&bad).unwrap_err(), "message 0: bad presence byte 5");
        // A message id that is not one this engine writes.
        let mut bad = blob.clone();
        bad[1 + 8 + 8 + 4] = b'G';
        let e = decode(&bad).unwrap_err();
        assert!(e.starts_with("message 0: message id \"G"), "{e}");
        assert!(e.ends_with("\" is not a UUID"), "{e}");
    }
}
