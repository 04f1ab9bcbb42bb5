//! DynamoDB Streams: the change log of a table and the `DynamoDBStreams_20120810` API
//! (ListStreams, DescribeStream, GetShardIterator, GetRecords).
//!
//! A table's latest stream lives in its [`super::Table`] (`stream`), so [`super::Table::write`]
//! appends a record under the same lock and into the same journal batch as the item change:
//! a record is durable exactly when the write it describes is, and is never seen for a write
//! that was not applied. Streams that are no longer a table's latest (replaced by enabling a
//! new one, or left by a deleted table) move to [`super::Tables::old_streams`] and stay
//! readable, `DISABLED`, until their records age out ([`RETENTION_MS`]).
//!
//! Each stream has one shard. Sequence numbers are per stream, strictly increasing and at
//! least `now_ms * 10^6`, so they stay increasing across a restart even after every record was
//! trimmed (the clock does not run backwards); they are printed as 21-digit decimals.
//! A shard iterator is an opaque token naming the stream, the shard, the next sequence number
//! to read and when it was issued (iterators expire after [`ITERATOR_LIFETIME_MS`]).
//!
//! # On-disk format
//! `ddb_streams(arn, meta)` holds [`StreamMeta`] as JSON; `ddb_stream_records(arn, seq, at,
//! record)` one row per record, `record` the GetRecords JSON of it. Both are written only
//! through journal records ([`crate::table_record::TableRecord`]).

use std::collections::VecDeque;
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::TableEngine;
use super::error::{DdbError, ErrorCode};
use super::meta::{REGION, TableMeta};
use super::value::{Item, item_size, item_to_json};
use crate::journal::Record;
use crate::queue::md5::md5_hex;
use crate::table_record::TableRecord;

/// How long records stay readable (and a disabled stream stays listed): 24 hours.
pub const RETENTION_MS: u64 = 24 * 3600 * 1000;
/// How long a shard iterator may be used: 15 minutes.
pub const ITERATOR_LIFETIME_MS: u64 = 15 * 60 * 1000;
/// The most records one GetRecords answers, and its default.
pub const MAX_GET_RECORDS: usize = 1000;
/// GetRecords stops adding records past 1 MB, as DynamoDB Streams does.
const MAX_GET_RECORDS_BYTES: usize = 1024 * 1024;
/// Sequence numbers per millisecond of the clock (see the module doc).
const SEQ_PER_MS: u64 = 1_000_000;

/// The operations [`TableEngine::execute_streams`] understands.
pub const OPERATIONS: &[&str] = &[
    "ListStreams",
    "DescribeStream",
    "GetShardIterator",
    "GetRecords",
];

/// A stream's definition and state, persisted as JSON in `ddb_streams`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamMeta {
    pub arn: String,
    pub table: String,
    pub label: String,
    /// `KEYS_ONLY`, `NEW_IMAGE`, `OLD_IMAGE` or `NEW_AND_OLD_IMAGES`.
    pub view: String,
    /// The table's `KeySchema` as DescribeStream answers it.
    pub key_schema: Value,
    pub created_ms: u64,
    /// When the stream was disabled (by UpdateTable or DeleteTable); `None` while enabled.
    pub disabled_ms: Option<u64>,
    /// Records with a smaller sequence number were trimmed (0: none was).
    pub trimmed_before: u64,
    /// The stream's resource-based policy, if it has one (`PutResourcePolicy` on its ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<super::meta::ResourcePolicy>,
}

/// One change record.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    pub seq: u64,
    pub at_ms: u64,
    /// The record as GetRecords answers it.
    pub body: Arc<Value>,
}

/// A stream: its definition and its retained records, oldest first.
#[derive(Debug)]
pub struct Stream {
    pub meta: StreamMeta,
    pub records: VecDeque<StreamRecord>,
    /// The last sequence number handed out.
    last_seq: u64,
    /// Until when (ms) the UpdateTable that enabled or disabled the stream is under way: the
    /// stream is `ENABLING` / `DISABLING` until then, as the table is `UPDATING`.
    pub settles_ms: u64,
}

/// Who made a change, for the record: a request, or TTL expiry (which DynamoDB marks with a
/// service `userIdentity`).
#[derive(Debug, Clone, Copy)]
pub struct Change {
    pub now_ms: u64,
    pub by_ttl: bool,
}

impl Change {
    pub fn request(now_ms: u64) -> Change {
        Change {
            now_ms,
            by_ttl: false,
        }
    }
}

/// The stream ARN of table `table` with label `label`.
pub fn stream_arn(table: &str, label: &str) -> String {
    format!("{}/stream/{label}", super::meta::table_arn(table))
}

impl Stream {
    /// A new, enabled stream of `meta`'s table, created at `now_ms`.
    pub fn new(meta: &TableMeta, view: &str, label: String, now_ms: u64) -> Stream {
        Stream {
            meta: StreamMeta {
                arn: stream_arn(&meta.name, &label),
                table: meta.name.clone(),
                label,
                view: view.to_string(),
                key_schema: TableMeta::key_schema_json(&meta.hash, &meta.range),
                created_ms: now_ms,
                disabled_ms: None,
                trimmed_before: 0,
                policy: None,
            },
            records: VecDeque::new(),
            last_seq: now_ms * SEQ_PER_MS,
            settles_ms: 0,
        }
    }

    /// A stream recovered from disk; `records` in sequence order.
    pub fn recovered(meta: StreamMeta, records: VecDeque<StreamRecord>) -> Stream {
        let last_seq = records
            .back()
            .map(|r| r.seq)
            .unwrap_or(0)
            .max(meta.trimmed_before.saturating_sub(1))
            .max(meta.created_ms * SEQ_PER_MS);
        Stream {
            meta,
            records,
            last_seq,
            settles_ms: 0,
        }
    }

    pub fn enabled(&self) -> bool {
        self.meta.disabled_ms.is_none()
    }

    /// The journal record of this stream's definition.
    pub fn meta_record(&self) -> Record {
        Record::Table(TableRecord::PutStream {
            arn: self.meta.arn.clone(),
            meta: serde_json::to_string(&self.meta).unwrap_or_default(),
        })
    }

    /// Stop the stream (its records stay readable); the journal record of the change.
    pub fn disable(&mut self, now_ms: u64) -> Record {
        self.meta.disabled_ms = Some(now_ms);
        self.meta_record()
    }

    fn shard_id(&self) -> String {
        // One shard per stream, named as DynamoDB names shards (a creation time and an id).
        let digest = md5_hex(self.meta.arn.as_bytes());
        format!("shardId-{:020}-{}", self.meta.created_ms, &digest[..8])
    }

    /// Append the record of an item change (`old` → `new`, at least one present) when it
    /// changes anything: DynamoDB writes no record for a write that leaves the item as it
    /// was. Returns the journal record.
    pub fn append(
        &mut self,
        keys: &Item,
        old: Option<&Item>,
        new: Option<&Item>,
        change: Change,
    ) -> Option<Record> {
        let event = match (old, new) {
            (None, Some(_)) => "INSERT",
            (Some(o), Some(n)) if o != n => "MODIFY",
            (Some(_), None) => "REMOVE",
            _ => return None,
        };
        let seq = (self.last_seq + 1).max(change.now_ms * SEQ_PER_MS);
        self.last_seq = seq;
        let (with_new, with_old) = match self.meta.view.as_str() {
            "NEW_IMAGE" => (true, false),
            "OLD_IMAGE" => (false, true),
            "NEW_AND_OLD_IMAGES" => (true, true),
            _ => (false, false),
        };
        let mut size = item_size(keys);
        let mut ddb = json!({
            "ApproximateCreationDateTime": change.now_ms / 1000,
            "Keys": item_to_json(keys),
            "SequenceNumber": format!("{seq:021}"),
            "StreamViewType": self.meta.view,
        });
        if let Some(n) = new.filter(|_| with_new) {
            size += item_size(n);
            ddb["NewImage"] = item_to_json(n);
        }
        if let Some(o) = old.filter(|_| with_old) {
            size += item_size(o);
            ddb["OldImage"] = item_to_json(o);
        }
        ddb["SizeBytes"] = json!(size);
        let mut body = json!({
            "eventID": md5_hex(format!("{}#{seq}", self.meta.arn).as_bytes()),
            "eventName": event,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": REGION,
            "dynamodb": ddb,
        });
        if change.by_ttl {
            body["userIdentity"] =
                json!({"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"});
        }
        let rec = StreamRecord {
            seq,
            at_ms: change.now_ms,
            body: Arc::new(body),
        };
        self.records.push_back(rec.clone());
        Some(Record::Table(TableRecord::StreamRecord {
            arn: self.meta.arn.clone(),
            record: rec,
        }))
    }

    /// Drop records older than the retention period at `now_ms`; the journal records of the
    /// trim (none when nothing aged out).
    pub fn trim(&mut self, now_ms: u64, out: &mut Vec<Record>) {
        let mut trimmed = false;
        while let Some(r) = self.records.front() {
            if r.at_ms + RETENTION_MS > now_ms {
                break;
            }
            self.meta.trimmed_before = r.seq + 1;
            self.records.pop_front();
            trimmed = true;
        }
        if trimmed {
            out.push(Record::Table(TableRecord::TrimStream {
                arn: self.meta.arn.clone(),
                before: self.meta.trimmed_before,
            }));
            out.push(self.meta_record());
        }
    }

    /// Whether a disabled stream has outlived its retention and can be forgotten.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.meta
            .disabled_ms
            .is_some_and(|d| d + RETENTION_MS <= now_ms)
    }

    fn status(&self, now_ms: u64) -> &'static str {
        match (self.enabled(), now_ms < self.settles_ms) {
            (true, true) => "ENABLING",
            (true, false) => "ENABLED",
            (false, true) => "DISABLING",
            (false, false) => "DISABLED",
        }
    }

    fn describe(&self, now_ms: u64) -> Value {
        let start = self.meta.created_ms * SEQ_PER_MS;
        let mut range = json!({"StartingSequenceNumber": format!("{:021}", start.max(1))});
        if !self.enabled() {
            // A disabled stream's shard is closed at its last record.
            range["EndingSequenceNumber"] = json!(format!("{:021}", self.last_seq.max(1)));
        }
        json!({
            "StreamArn": self.meta.arn,
            "StreamLabel": self.meta.label,
            "StreamStatus": self.status(now_ms),
            "StreamViewType": self.meta.view,
            "CreationRequestDateTime": self.meta.created_ms as f64 / 1000.0,
            "TableName": self.meta.table,
            "KeySchema": self.meta.key_schema,
            "Shards": [{"ShardId": self.shard_id(), "SequenceNumberRange": range}],
        })
    }
}

/// A decoded shard iterator.
struct Iter {
    arn: String,
    shard: String,
    /// The next sequence number to read.
    pos: u64,
    issued_ms: u64,
}

impl Iter {
    fn encode(&self) -> String {
        let raw = format!(
            "{}|{}|{}|{}",
            self.issued_ms, self.pos, self.shard, self.arn
        );
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    fn decode(s: &str) -> Option<Iter> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let mut parts = raw.splitn(4, '|');
        let issued_ms = parts.next()?.parse().ok()?;
        let pos = parts.next()?.parse().ok()?;
        let shard = parts.next()?.to_string();
        let arn = parts.next()?.to_string();
        Some(Iter {
            arn,
            shard,
            pos,
            issued_ms,
        })
    }
}

pub(crate) fn stream_not_found(arn: &str) -> DdbError {
    DdbError::not_found(format!(
        "Requested resource not found: Stream: {arn} not found"
    ))
}

fn trimmed() -> DdbError {
    DdbError::new(
        ErrorCode::TrimmedDataAccess,
        "The operation attempted to read past the oldest stream record in a shard.",
    )
}

/// A stream ARN must be shaped like one (`arn:aws:dynamodb:<region>:<account>:table/<name>/
/// stream/<label>`): DynamoDB Streams refuses other strings as invalid before it looks for
/// the stream, and answers ResourceNotFoundException only for well-formed ARNs.
fn check_arn(arn: &str, member: &str) -> Result<(), DdbError> {
    let shaped = arn
        .strip_prefix("arn:aws:dynamodb:")
        .and_then(|rest| rest.splitn(3, ':').nth(2))
        .and_then(|res| res.strip_prefix("table/"))
        .and_then(|res| res.split_once("/stream/"))
        .is_some_and(|(table, label)| !table.is_empty() && !label.is_empty());
    if shaped {
        Ok(())
    } else {
        Err(DdbError::validation(format!("Invalid {member}: {arn}")))
    }
}

fn parse_seq(s: &str) -> Result<u64, DdbError> {
    s.parse::<u64>()
        .map_err(|_| DdbError::validation(format!("Invalid SequenceNumber: {s}")))
}

impl super::Tables {
    /// Every stream, by ARN: tables' latest ones and those left behind.
    fn all_streams(&self) -> impl Iterator<Item = &Stream> {
        self.by_name
            .values()
            .filter_map(|t| t.stream.as_ref())
            .chain(self.old_streams.values())
    }

    /// The stream `arn` names, to change (its resource-based policy).
    pub(crate) fn stream_mut(&mut self, arn: &str) -> Result<&mut Stream, DdbError> {
        self.by_name
            .values_mut()
            .filter_map(|t| t.stream.as_mut())
            .chain(self.old_streams.values_mut())
            .find(|s| s.meta.arn == arn)
            .ok_or_else(|| stream_not_found(arn))
    }

    fn stream(&self, arn: &str) -> Result<&Stream, DdbError> {
        self.all_streams()
            .find(|s| s.meta.arn == arn)
            .ok_or_else(|| stream_not_found(arn))
    }
}

impl TableEngine {
    /// Run one DynamoDB Streams operation (reads only: nothing to make durable).
    pub fn execute_streams(&self, op: &str, req: &Value) -> Result<Value, DdbError> {
        if !req.is_object() {
            return Err(DdbError::serialization(
                "Start of structure or map found where not expected",
            ));
        }
        super::shape::check(op, req)?;
        super::constraints::check(op, req)?;
        // The background work DynamoDB does runs before stream reads too, so a reader sees
        // TTL deletions and trims without another DynamoDB request.
        self.settle();
        self.sweep_ttl();
        self.sweep_streams();
        match op {
            "ListStreams" => self.list_streams(req),
            "DescribeStream" => self.describe_stream(req),
            "GetShardIterator" => self.get_shard_iterator(req),
            "GetRecords" => self.get_records(req),
            other => Err(DdbError::new(
                ErrorCode::UnknownOperation,
                format!("An unknown operation was requested: {other}"),
            )),
        }
    }

    /// Trim records past retention and forget disabled streams that have aged out; at most
    /// once per clock second, before a request, as the TTL sweep.
    pub fn sweep_streams(&self) {
        let now = self.clock.now().as_millis();
        let second = now / 1000;
        // Read before writing, as `sweep_ttl` does.
        let last = &self.last_stream_sweep;
        if last.load(std::sync::atomic::Ordering::Relaxed) == second
            || last.swap(second, std::sync::atomic::Ordering::Relaxed) == second
        {
            return;
        }
        let due = |s: &Stream| {
            s.expired(now)
                || s.records
                    .front()
                    .is_some_and(|r| r.at_ms + RETENTION_MS <= now)
        };
        if !self.state.read().all_streams().any(due) || self.journal.check().is_err() {
            return;
        }
        let mut g = self.state.write();
        let mut records = Vec::new();
        for t in g.by_name.values_mut() {
            if t.stream.as_ref().is_some_and(|s| s.expired(now)) {
                if let Some(s) = t.stream.take() {
                    records.push(Record::Table(TableRecord::DeleteStream { arn: s.meta.arn }));
                }
            } else if let Some(s) = t.stream.as_mut() {
                s.trim(now, &mut records);
            }
        }
        g.old_streams.retain(|arn, s| {
            if s.expired(now) {
                records.push(Record::Table(TableRecord::DeleteStream {
                    arn: arn.clone(),
                }));
                return false;
            }
            s.trim(now, &mut records);
            true
        });
        // Like TTL deletions, trims are acknowledged to no one; after a crash they are redone.
        drop(self.journal.submit(records));
    }

    fn list_streams(&self, req: &Value) -> Result<Value, DdbError> {
        let table = req.get("TableName").and_then(Value::as_str);
        let start = req.get("ExclusiveStartStreamArn").and_then(Value::as_str);
        if let Some(a) = start {
            check_arn(a, "ExclusiveStartStreamArn")?;
        }
        let limit = req.get("Limit").and_then(Value::as_u64).unwrap_or(100) as usize;
        let g = self.state.read();
        let mut all: Vec<&Stream> = g
            .all_streams()
            .filter(|s| table.is_none_or(|t| s.meta.table == t))
            .filter(|s| start.is_none_or(|a| s.meta.arn.as_str() > a))
            .collect();
        all.sort_by(|a, b| a.meta.arn.cmp(&b.meta.arn));
        let more = all.len() > limit;
        all.truncate(limit);
        let mut out = json!({
            "Streams": all.iter().map(|s| json!({
                "StreamArn": s.meta.arn,
                "TableName": s.meta.table,
                "StreamLabel": s.meta.label,
            })).collect::<Vec<_>>()
        });
        if more && let Some(last) = all.last() {
            out["LastEvaluatedStreamArn"] = json!(last.meta.arn);
        }
        Ok(out)
    }

    fn describe_stream(&self, req: &Value) -> Result<Value, DdbError> {
        let arn = req.get("StreamArn").and_then(Value::as_str).unwrap_or("");
        check_arn(arn, "StreamArn")?;
        let g = self.state.read();
        let s = g.stream(arn)?;
        let mut d = s.describe(self.clock.now().as_millis());
        // Shards are listed in id order after ExclusiveStartShardId, which need not exist.
        // A stream's one shard has no children (ShardFilter CHILD_SHARDS).
        if req
            .get("ExclusiveStartShardId")
            .and_then(Value::as_str)
            .is_some_and(|start| start >= s.shard_id().as_str())
            || req.get("ShardFilter").is_some_and(|f| !f.is_null())
        {
            d["Shards"] = json!([]);
        }
        Ok(json!({ "StreamDescription": d }))
    }

    fn get_shard_iterator(&self, req: &Value) -> Result<Value, DdbError> {
        let arn = req.get("StreamArn").and_then(Value::as_str).unwrap_or("");
        let shard = req.get("ShardId").and_then(Value::as_str).unwrap_or("");
        let ty = req
            .get("ShardIteratorType")
            .and_then(Value::as_str)
            .unwrap_or("");
        let seq = req.get("SequenceNumber").and_then(Value::as_str);
        check_arn(arn, "StreamArn")?;
        if seq.is_some() && matches!(ty, "TRIM_HORIZON" | "LATEST") {
            return Err(DdbError::validation(format!(
                "Invalid SequenceNumber: a SequenceNumber must not be given with ShardIteratorType {ty}"
            )));
        }
        let g = self.state.read();
        let s = g.stream(arn)?;
        if shard != s.shard_id() {
            return Err(DdbError::not_found(format!(
                "Requested resource not found: Shard does not exist: {shard}"
            )));
        }
        let named = |after: bool| -> Result<u64, DdbError> {
            let n = seq.ok_or_else(|| {
                DdbError::validation(format!(
                    "Must specify a SequenceNumber with ShardIteratorType {ty}"
                ))
            })?;
            let n = parse_seq(n)?;
            if n < s.meta.trimmed_before {
                return Err(trimmed());
            }
            if n > s.last_seq || n < s.meta.created_ms * SEQ_PER_MS {
                return Err(DdbError::validation(format!(
                    "Invalid SequenceNumber: {n:021} is not in shard {shard}"
                )));
            }
            Ok(n + u64::from(after))
        };
        let pos = match ty {
            "TRIM_HORIZON" => s
                .records
                .front()
                .map_or(s.last_seq + 1, |r| r.seq)
                .max(s.meta.trimmed_before),
            "LATEST" => s.last_seq + 1,
            "AT_SEQUENCE_NUMBER" => named(false)?,
            _ => named(true)?,
        };
        let it = Iter {
            arn: arn.to_string(),
            shard: shard.to_string(),
            pos,
            issued_ms: self.clock.now().as_millis(),
        };
        Ok(json!({ "ShardIterator": it.encode() }))
    }

    fn get_records(&self, req: &Value) -> Result<Value, DdbError> {
        let raw = req
            .get("ShardIterator")
            .and_then(Value::as_str)
            .unwrap_or("");
        let limit = req
            .get("Limit")
            .and_then(Value::as_u64)
            .map_or(MAX_GET_RECORDS, |l| l as usize);
        let it = Iter::decode(raw).ok_or_else(|| DdbError::validation("Invalid ShardIterator"))?;
        let now = self.clock.now().as_millis();
        if now > it.issued_ms + ITERATOR_LIFETIME_MS {
            return Err(DdbError::new(
                ErrorCode::ExpiredIterator,
                format!(
                    "Iterator expired. The iterator was created at time {} while right now it is {} which is further in the future than the tolerated delay of {ITERATOR_LIFETIME_MS} milliseconds.",
                    crate::civil::iso8601_millis(it.issued_ms),
                    crate::civil::iso8601_millis(now),
                ),
            ));
        }
        let g = self.state.read();
        let s = g.stream(&it.arn)?;
        if it.shard != s.shard_id() {
            return Err(DdbError::not_found(format!(
                "Requested resource not found: Shard does not exist: {}",
                it.shard
            )));
        }
        if it.pos < s.meta.trimmed_before {
            return Err(trimmed());
        }
        let first = s.records.partition_point(|r| r.seq < it.pos);
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut next = it.pos;
        for r in s.records.iter().skip(first).take(limit) {
            let size = r.body.to_string().len();
            if !out.is_empty() && bytes + size > MAX_GET_RECORDS_BYTES {
                break;
            }
            bytes += size;
            out.push((*r.body).clone());
            next = r.seq + 1;
        }
        let mut answer = json!({ "Records": out });
        // A disabled stream's shard is closed: once read to its end there is no next iterator.
        if s.enabled() || next <= s.last_seq {
            answer["NextShardIterator"] = json!(
                Iter {
                    pos: next,
                    issued_ms: now,
                    ..it
                }
                .encode()
            );
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests;
