//! The table engine: DynamoDB semantics over the journal.
//!
//! Requests arrive as DynamoDB JSON (`serde_json::Value`) and leave as the JSON body of the
//! answer plus a [`Ticket`]: the caller acknowledges only after the ticket resolves, i.e.
//! once every change is durable. All tables live in memory behind one `RwLock`; writes
//! parse their expressions before taking it, then check conditions, apply and submit their
//! journal records while holding it, so conditional writes are atomic (two racers on
//! `attribute_not_exists(pk)`: exactly one wins) and the journal order equals apply order.
//!
//! # Layout
//! - [`value`]: attribute values, exact decimal numbers, sizes and validation.
//! - [`expr`]: the expression language (parser, AST with round-tripping `Display`, evaluator).
//! - [`meta`]: table definitions (keys, indexes, throughput, tags, TTL) and descriptions.
//! - [`engine`]: one table in memory: items, index entries, TTL order, journal records.
//! - `op`: one file per operation: its request, parsed from the request JSON, and how it is
//!   applied ([`TableEngine::execute`] dispatches through it).
//! - [`items`]: what the item operations share: writes ([`items::WriteReq`], prepared and
//!   applied under the lock), transactions, projections, consumed capacity.
//! - `index_keys`: what a read or update may not do to key and index key attributes (reach
//!   inside them, give them a value of the wrong type), checked against the table.
//! - [`legacy`]: legacy conditional parameters (Expected, KeyConditions, QueryFilter,
//!   ScanFilter) translated into expressions.
//! - [`query`]: Query's and Scan's parameters and reads (key conditions, indexes, filters,
//!   paging), and the reads of PartiQL SELECT statements.
//! - [`partiql`]: ExecuteStatement, BatchExecuteStatement and ExecuteTransaction (a PartiQL
//!   lexer and parser binding statements onto the expression language).
//! - [`streams`]: DynamoDB Streams: the change records every write appends, their retention,
//!   and ListStreams / DescribeStream / GetShardIterator / GetRecords.
//! - [`admin`]: table operations (create, describe, list, update, delete, tags, TTL).
//! - [`error`]: [`DdbError`] with AWS's error codes.
//! - [`req`]: request-reading helpers.
//! - [`shape`]: the type check of every request member that runs before validation.
//! - [`constraints`]: member constraints (required, patterns, enums, bounds), all reported at once.

pub mod admin;
pub mod attr_map;
pub mod backup;
pub mod constraints;
pub mod engine;
pub mod error;
pub mod expr;
mod index_keys;
pub mod items;
pub mod legacy;
pub mod meta;
mod op;
pub mod partiql;
pub mod partition;
pub mod pitr;
pub mod query;
pub mod req;
pub mod shape;
pub mod streams;
pub mod transfer;
pub mod typed;
pub mod value;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clock::Clock;
use parking_lot::RwLock;
use serde_json::Value;

use crate::journal::{Journal, Record, Ticket};
use crate::table_record::TableRecord;
pub use engine::Table;
pub use error::{DdbError, ErrorCode};

/// Everything the table engine recovers from disk at start.
#[derive(Debug, Default)]
pub struct TableState {
    pub tables: Vec<Table>,
    /// On-demand backups, by ARN.
    pub backups: BTreeMap<String, backup::Backup>,
    /// Every stream, in ARN order, each with its records.
    pub streams: Vec<streams::Stream>,
    /// Exports and imports, by ARN.
    pub transfers: BTreeMap<String, transfer::Transfer>,
    /// Where every item's latest change is in the item log, for the journal's backend.
    pub log: crate::table_log::ItemLog,
}

/// Load the table engine's state from the database.
pub fn load(conn: &rusqlite::Connection) -> rusqlite::Result<TableState> {
    let bad = |what: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, what.into())
    };
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    let mut backups: BTreeMap<String, backup::Backup> = BTreeMap::new();
    let mut transfers: BTreeMap<String, transfer::Transfer> = BTreeMap::new();
    let mut stmt = conn.prepare("SELECT name, meta FROM ddb_tables")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (name, meta) = row?;
        if name.starts_with(transfer::EXPORT_PREFIX) || name.starts_with(transfer::IMPORT_PREFIX) {
            let t: transfer::Transfer = serde_json::from_str(&meta)
                .map_err(|e| bad(format!("{name}: bad export or import: {e}")))?;
            transfers.insert(t.arn.clone(), t);
            continue;
        }
        if name.starts_with(backup::PREFIX) {
            let meta: backup::BackupMeta =
                serde_json::from_str(&meta).map_err(|e| bad(format!("{name}: bad backup: {e}")))?;
            backups.insert(
                name,
                backup::Backup {
                    meta,
                    items: Vec::new(),
                },
            );
            continue;
        }
        let meta: meta::TableMeta = serde_json::from_str(&meta)
            .map_err(|e| bad(format!("table {name}: bad definition: {e}")))?;
        tables.insert(name, Table::new(meta));
    }
    let log = crate::table_log::ItemLog::load(conn)?;
    log.for_each_live(conn, |tbl, item| {
        // A point-in-time history row belongs to the table it names.
        let history_of = tbl
            .strip_prefix(pitr::PREFIX)
            .filter(|t| tables.contains_key(*t))
            .map(str::to_string);
        let (table, backup) = match &history_of {
            Some(t) => (tables.get_mut(t), None),
            None => (tables.get_mut(tbl), backups.get_mut(tbl)),
        };
        if table.is_none() && backup.is_none() {
            return Ok(());
        }
        let v: Value =
            serde_json::from_str(item).map_err(|e| bad(format!("table {tbl}: bad item: {e}")))?;
        let item =
            value::item_from_json(&v).map_err(|e| bad(format!("table {tbl}: bad item: {e}")))?;
        let Some(t) = table else {
            if let Some(b) = backup {
                b.items.push(Arc::new(item));
            }
            return Ok(());
        };
        if history_of.is_some() {
            pitr::History::load(t, &item).map_err(|e| bad(format!("{tbl}: {e}")))?;
            return Ok(());
        }
        t.load(item)
            .map_err(|e| bad(format!("table {tbl}: bad item: {e}")))
    })?;
    for t in tables.values_mut() {
        t.history.loaded();
    }
    let mut metas: BTreeMap<String, streams::StreamMeta> = BTreeMap::new();
    let mut stmt = conn.prepare("SELECT arn, meta FROM ddb_streams")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (arn, meta) = row?;
        let meta = serde_json::from_str(&meta)
            .map_err(|e| bad(format!("stream {arn}: bad definition: {e}")))?;
        metas.insert(arn, meta);
    }
    let mut records: BTreeMap<String, std::collections::VecDeque<streams::StreamRecord>> =
        BTreeMap::new();
    let mut stmt =
        conn.prepare("SELECT arn, seq, at, record FROM ddb_stream_records ORDER BY arn, seq")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    for row in rows {
        let (arn, seq, at, body) = row?;
        let body: Value = serde_json::from_str(&body)
            .map_err(|e| bad(format!("stream {arn}: bad record: {e}")))?;
        records
            .entry(arn)
            .or_default()
            .push_back(streams::StreamRecord {
                seq: seq as u64,
                at_ms: at as u64,
                body: Arc::new(body),
            });
    }
    let streams = metas
        .into_iter()
        .map(|(arn, meta)| {
            streams::Stream::recovered(meta, records.remove(&arn).unwrap_or_default())
        })
        .collect();
    Ok(TableState {
        tables: tables.into_values().collect(),
        backups: backups
            .into_values()
            .map(|b| (b.meta.arn.clone(), b))
            .collect(),
        streams,
        transfers,
        log,
    })
}

/// All tables, by name.
#[derive(Debug, Default)]
pub struct Tables {
    pub by_name: BTreeMap<String, Table>,
    /// `ClientRequestToken`s of transactions that succeeded in the last 10 minutes.
    pub tokens: std::collections::HashMap<String, items::TokenUse>,
    /// Streams that are no longer their table's latest (replaced, or the table was deleted),
    /// by ARN; readable until they age out.
    pub old_streams: BTreeMap<String, streams::Stream>,
    /// On-demand backups, by ARN.
    pub backups: BTreeMap<String, backup::Backup>,
    /// Exports and imports, by ARN.
    pub transfers: BTreeMap<String, transfer::Transfer>,
}

impl Tables {
    /// A table reads and writes may use: a table still being created or being deleted is
    /// not found, as DynamoDB answers.
    pub fn get(&self, name: &str) -> Result<&Table, DdbError> {
        self.by_name
            .get(meta::named_table(name))
            .filter(|t| t.usable())
            .ok_or_else(DdbError::table_not_found)
    }
    pub fn get_mut(&mut self, name: &str) -> Result<&mut Table, DdbError> {
        self.by_name
            .get_mut(meta::named_table(name))
            .filter(|t| t.usable())
            .ok_or_else(DdbError::table_not_found)
    }
}

pub struct TableEngine {
    pub(crate) state: RwLock<Tables>,
    pub(crate) journal: Journal,
    pub(crate) clock: Arc<dyn Clock>,
    /// Second (clock time) of the last TTL sweep; sweeps run at most once per second.
    last_sweep: AtomicU64,
    /// Second (clock time) of the last stream retention sweep.
    last_stream_sweep: AtomicU64,
    ids: AtomicU64,
    /// How long (ms) tables and indexes stay CREATING / UPDATING / DELETING.
    status_delay_ms: AtomicU64,
    /// Clock time (ms) of the earliest pending status transition (`u64::MAX`: none), so a
    /// request only takes the write lock when a transition is due.
    next_transition: AtomicU64,
}

impl std::fmt::Debug for TableEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableEngine").finish_non_exhaustive()
    }
}

/// The operations [`TableEngine::execute`] understands.
pub const OPERATIONS: &[&str] = &[
    "CreateTable",
    "DescribeTable",
    "ListTables",
    "DeleteTable",
    "UpdateTable",
    "TagResource",
    "UntagResource",
    "ListTagsOfResource",
    "DescribeTimeToLive",
    "UpdateTimeToLive",
    "PutItem",
    "GetItem",
    "DeleteItem",
    "UpdateItem",
    "Query",
    "Scan",
    "BatchWriteItem",
    "BatchGetItem",
    "TransactWriteItems",
    "TransactGetItems",
    "ExecuteStatement",
    "BatchExecuteStatement",
    "ExecuteTransaction",
    "DescribeLimits",
    "DescribeEndpoints",
    "DescribeContinuousBackups",
    "PutResourcePolicy",
    "GetResourcePolicy",
    "DeleteResourcePolicy",
    "UpdateContinuousBackups",
    "DescribeContributorInsights",
    "UpdateContributorInsights",
    "ListContributorInsights",
    "CreateBackup",
    "DescribeBackup",
    "DeleteBackup",
    "ListBackups",
    "RestoreTableFromBackup",
    "RestoreTableToPointInTime",
    "DescribeKinesisStreamingDestination",
    "ExportTableToPointInTime",
    "ImportTable",
    "ListExports",
    "DescribeExport",
    "ListImports",
    "DescribeImport",
    "ListGlobalTables",
    "DescribeGlobalTable",
    "DescribeGlobalTableSettings",
];

/// DynamoDB operations kedge does not serve, each with why: they need a service or a Region
/// kedge does not serve. They are answered with `UnknownOperationException`, as an unknown
/// operation is, but with this reason as the message instead of none.
pub fn not_served(op: &str) -> Option<&'static str> {
    Some(match op {
        "CreateGlobalTable" | "UpdateGlobalTable" | "UpdateGlobalTableSettings" => {
            "global tables replicate to other Regions, and kedge serves one"
        }
        "DescribeTableReplicaAutoScaling" | "UpdateTableReplicaAutoScaling" => {
            "replica auto scaling is Application Auto Scaling's, which kedge does not serve"
        }
        "EnableKinesisStreamingDestination"
        | "DisableKinesisStreamingDestination"
        | "UpdateKinesisStreamingDestination" => {
            "changes stream to Amazon Kinesis Data Streams, which kedge does not serve; DynamoDB Streams are served"
        }
        _ => return None,
    })
}

impl TableEngine {
    pub fn new(journal: Journal, clock: Arc<dyn Clock>) -> Self {
        Self::from_state(TableState::default(), journal, clock)
    }

    pub fn from_state(state: TableState, journal: Journal, clock: Arc<dyn Clock>) -> Self {
        let mut by_name: BTreeMap<String, Table> = state
            .tables
            .into_iter()
            .map(|t| (t.meta.name.clone(), t))
            .collect();
        let mut old_streams = BTreeMap::new();
        for s in state.streams {
            match by_name
                .get_mut(&s.meta.table)
                .filter(|t| t.meta.latest_stream_arn().as_deref() == Some(s.meta.arn.as_str()))
            {
                Some(t) => t.stream = Some(s),
                None => {
                    old_streams.insert(s.meta.arn.clone(), s);
                }
            }
        }
        TableEngine {
            state: RwLock::new(Tables {
                by_name,
                tokens: Default::default(),
                old_streams,
                backups: state.backups,
                transfers: state.transfers,
            }),
            journal,
            clock,
            last_sweep: AtomicU64::new(0),
            last_stream_sweep: AtomicU64::new(0),
            ids: AtomicU64::new(0),
            status_delay_ms: AtomicU64::new(0),
            next_transition: AtomicU64::new(u64::MAX),
        }
    }

    /// How long new, updated and deleted tables (and their indexes) stay in their
    /// transitional status; zero (the default) makes every change take effect at once.
    pub fn set_status_delay(&self, delay: std::time::Duration) {
        self.status_delay_ms
            .store(delay.as_millis() as u64, Ordering::Relaxed);
    }

    /// When a transition that starts now ends (ms), or `None` when there is no delay.
    pub(crate) fn transition_end(&self) -> Option<u64> {
        let d = self.status_delay_ms.load(Ordering::Relaxed);
        (d > 0).then(|| self.clock.now().as_millis() + d)
    }

    /// Note that a transition ends at `at` (ms).
    pub(crate) fn schedule_transition(&self, at: u64) {
        self.next_transition.fetch_min(at, Ordering::Relaxed);
    }

    /// Finish every status transition that is due: CREATING/UPDATING tables and indexes
    /// become ACTIVE, DELETING ones disappear.
    pub(crate) fn settle(&self) {
        let now = self.clock.now().as_millis();
        if self.next_transition.load(Ordering::Relaxed) > now {
            return;
        }
        let mut g = self.state.write();
        let mut next = u64::MAX;
        let mut records = Vec::new();
        g.by_name.retain(|_, t| {
            if t.phase != engine::Phase::Active {
                if t.phase_until <= now {
                    if t.phase == engine::Phase::Deleting {
                        return false;
                    }
                    t.phase = engine::Phase::Active;
                    if let Some(c) = t.throughput_change.take() {
                        t.meta.end_throughput_change(c, now);
                        records.push(Self::table_record(&t.meta));
                    }
                } else {
                    next = next.min(t.phase_until);
                }
            }
            t.index_phases.retain(|_, (_, until, _)| {
                if *until <= now {
                    return false;
                }
                next = next.min(*until);
                true
            });
            true
        });
        self.next_transition.store(next, Ordering::Relaxed);
        if !records.is_empty() {
            // Only the change's timestamps are new here (its units were journaled when it
            // was requested); nothing waits on them.
            drop(self.submit(records));
        }
    }

    /// Run one DynamoDB operation: the checks every request goes through, the engine's
    /// housekeeping, then the operation (parsed, then applied). The answer may be sent once
    /// the ticket resolves.
    pub fn execute(&self, op: &str, req: &Value) -> Result<(Answer, Ticket), DdbError> {
        if !req.is_object() {
            return Err(DdbError::serialization(
                "Start of structure or map found where not expected",
            ));
        }
        shape::check(op, req)?;
        if let ("TagResource" | "UntagResource" | "ListTagsOfResource", Some(arn)) =
            (op, req.get("ResourceArn").and_then(Value::as_str))
        {
            Self::authorize_arn(arn, op)?;
        }
        constraints::check(op, req)?;
        constraints::check_expression_params(op, req)?;
        self.settle();
        self.sweep_ttl();
        self.sweep_streams();
        // A table's ARN in `TableName` names the table: the operation (and its answer) sees
        // the name. Batches and transactions name tables inside, looked up by `Tables::get`,
        // and answer under the name as given.
        if let Some(given) = req.get("TableName").and_then(Value::as_str)
            && meta::named_table(given) != given
        {
            let mut named = req.clone();
            named["TableName"] = Value::String(meta::named_table(given).to_owned());
            return op::execute(self, op, &named);
        }
        op::execute(self, op, req)
    }

    /// Run a request body that [`typed::read`] reads the plain way, without a `Value` tree;
    /// `None` (nothing done) for any other body, which [`TableEngine::execute`] takes. The
    /// checks `execute` makes before the operation pass for every plain body.
    pub fn execute_plain(
        &self,
        op: &str,
        body: &[u8],
    ) -> Option<Result<(Answer, Ticket), DdbError>> {
        let plain = typed::read(op, body)?;
        self.settle();
        self.sweep_ttl();
        self.sweep_streams();
        Some(op::execute_plain(self, plain))
    }

    pub(crate) fn next_id(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        let t = self.clock.now().as_millis();
        // A UUID-shaped id; uniqueness within this store is all clients rely on.
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (t >> 16) as u32,
            (t & 0xffff) as u16,
            (n >> 12) & 0xfff,
            n & 0xfff,
            t.wrapping_mul(2654435761).wrapping_add(n) & 0xffff_ffff_ffff
        )
    }

    /// Delete items whose TTL attribute is in the past (DynamoDB does this in the
    /// background; here it runs at most once per clock second, before a request).
    pub fn sweep_ttl(&self) {
        let now = self.clock.now().as_secs();
        // Read before writing: every request passes here, and a write each time would move
        // the cache line between the cores for nothing within the same second.
        if self.last_sweep.load(Ordering::Relaxed) == now
            || self.last_sweep.swap(now, Ordering::Relaxed) == now
        {
            return;
        }
        let due = {
            let g = self.state.read();
            g.by_name.values().any(|t| !t.expired(now).is_empty())
        };
        if !due || self.journal.check().is_err() {
            return;
        }
        let mut g = self.state.write();
        let mut records = Vec::new();
        let change = streams::Change {
            by_ttl: true,
            ..self.change()
        };
        for t in g.by_name.values_mut() {
            for pk in t.expired(now) {
                t.write(pk, None, change, &mut records);
            }
        }
        // Expiry deletions are not acknowledged to anyone; after a crash they are redone.
        drop(self.journal.submit(records));
    }

    /// A change made by a request now, for stream records.
    pub(crate) fn change(&self) -> streams::Change {
        streams::Change::request(self.clock.now().as_millis())
    }

    pub(crate) fn submit(&self, records: Vec<Record>) -> Ticket {
        self.journal.submit(records)
    }

    pub(crate) fn table_record(meta: &meta::TableMeta) -> Record {
        Record::Table(TableRecord::PutTable {
            name: meta.name.clone(),
            meta: serde_json::to_string(meta).unwrap_or_default(),
        })
    }

    /// Names of all tables (for tests and metrics).
    pub fn table_names(&self) -> Vec<String> {
        self.state.read().by_name.keys().cloned().collect()
    }
}

/// DescribeEndpoints' answer naming `address` (`host[:port]`), cached for a day as AWS's is.
pub fn describe_endpoints(address: &str) -> Value {
    serde_json::json!({
        "Endpoints": [{"Address": address, "CachePeriodInMinutes": 1440}]
    })
}

pub(crate) fn ready(v: Value) -> (Value, Ticket) {
    (v, Ticket::ready(Ok(())))
}

/// An operation's answer: a JSON tree, or JSON text the operation wrote straight out (GetItem,
/// whose item would otherwise be copied into a tree only to be written out).
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Tree(Value),
    Text(String),
}

impl Answer {
    /// The answer's JSON text.
    pub fn into_text(self) -> String {
        match self {
            Answer::Tree(v) => v.to_string(),
            Answer::Text(t) => t,
        }
    }

    /// The answer as a JSON tree.
    pub fn into_value(self) -> Value {
        match self {
            Answer::Tree(v) => v,
            // Text this engine wrote from its own values is JSON.
            Answer::Text(t) => serde_json::from_str(&t).unwrap_or(Value::Null),
        }
    }
}

#[cfg(test)]
mod backup_tests;
#[cfg(test)]
mod compat_tests;
#[cfg(test)]
mod composite_tests;
#[cfg(test)]
mod pitr_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod typed_tests;
#[cfg(test)]
mod unserved_tests;
