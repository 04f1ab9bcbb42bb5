//! PartiQL for DynamoDB: `ExecuteStatement`, `BatchExecuteStatement` and
//! `ExecuteTransaction`.
//!
//! A statement is parsed and bound to its parameters in one pass ([`parse`]): its WHERE
//! clause becomes an expression-language condition and its SET / REMOVE clauses an update
//! expression, over generated placeholders. It then runs as the operation DynamoDB turns it
//! into, through the same code: a SELECT as a Query when the WHERE clause fixes the
//! partition key and as a Scan otherwise ([`TableEngine::select`]); INSERT as a PutItem
//! conditioned on the key being free (DuplicateItemException when it is not); UPDATE as an
//! UpdateItem conditioned on the WHERE clause (so on the item existing); DELETE as a
//! DeleteItem conditioned on the WHERE clause when the item exists. Batches run each
//! statement on its own; transactions go through TransactWriteItems' and TransactGetItems'
//! code.
//!
//! The operations' requests are parsed before any table is looked up: each statement into a
//! [`PartiqlStatement`] (the text parsed and bound to its parameters). Planning one needs its
//! table's key schema, so it is left to the engine, which raises errors in DynamoDB's order:
//! where a statement's own error would come after an earlier statement's missing table, the
//! request keeps it and the engine raises it in its turn.
//!
//! # Layout
//! - [`lex`]: the tokens of a statement.
//! - [`parse`]: the recursive-descent parser and binder.
//! - this file: the statements of a request, planning a statement against its table, and the
//!   three operations.

pub mod lex;
pub mod parse;

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::TableEngine;
use super::error::{DdbError, ErrorCode};
use super::expr::eval::{check_overlap, update_paths};
use super::expr::{Cond, Ctx, Path, PathElem};
use super::items::{
    Action, Capacity, KeyRead, Projection, ReturnValues, Units, WriteReq, add_units, read_units,
};
use super::meta::KeySpec;
use super::query::{StatementRead, attr_cmp, conjuncts};
use super::req::{opt_bool, opt_i64, opt_str, req_str};
use super::value::{AttrValue, Item, item_from_json, item_size};
use crate::journal::Ticket;
use parse::{Parsed, Statement};

/// DynamoDB's answer to a statement it cannot parse.
pub(crate) fn malformed(detail: &str) -> DdbError {
    DdbError::validation(format!(
        "Statement wasn't well formed, can't be processed: {detail}"
    ))
}

/// One statement of a request (`Statement`, `Parameters`,
/// `ReturnValuesOnConditionCheckFailure`), parsed and bound to its parameters, to be planned
/// against its table.
pub(crate) struct PartiqlStatement {
    parsed: Parsed,
    /// `ReturnValuesOnConditionCheckFailure` is `ALL_OLD`.
    rv_on_fail: bool,
}

impl PartiqlStatement {
    /// Read one statement of a request; `EXISTS` only `in_transaction`.
    pub(crate) fn parse(req: &Value, in_transaction: bool) -> Result<Self, DdbError> {
        let statement = req_str(req, "Statement")?;
        let params = parameters(req)?;
        let parsed = parse::parse(statement, &params)?;
        if !in_transaction && matches!(parsed.stmt, Statement::Exists(_)) {
            return Err(DdbError::validation(
                "The EXISTS function can only be used in transactions (ExecuteTransaction)",
            ));
        }
        let rv_on_fail = opt_str(req, "ReturnValuesOnConditionCheckFailure") == Some("ALL_OLD");
        Ok(PartiqlStatement { parsed, rv_on_fail })
    }

    /// A SELECT (planned without looking at its table).
    pub(crate) fn is_select(&self) -> bool {
        self.parsed.stmt.is_read()
    }
}

/// ExecuteStatement's paging of a SELECT: `Limit`, `ConsistentRead`, and the page
/// `NextToken` continues from.
#[derive(Default)]
pub(crate) struct Page {
    limit: Option<usize>,
    consistent: bool,
    esk: Option<Item>,
}

impl Page {
    /// Read a SELECT's paging members (other statements do not read them).
    pub(crate) fn parse(req: &Value) -> Result<Page, DdbError> {
        Ok(Page {
            limit: opt_i64(req, "Limit")?.map(|l| l.max(1) as usize),
            consistent: opt_bool(req, "ConsistentRead")?.unwrap_or(false),
            esk: opt_str(req, "NextToken").map(decode_token).transpose()?,
        })
    }
}

/// One statement of a BatchExecuteStatement. Each statement fails on its own, in its entry of
/// the answer, so its own error is kept until then.
pub(crate) struct BatchStatement {
    statement: Result<PartiqlStatement, DdbError>,
    /// `ConsistentRead`: read for a SELECT once it is planned, when a bad one fails the
    /// whole batch.
    consistent: Result<bool, DdbError>,
}

impl BatchStatement {
    pub(crate) fn parse(req: &Value) -> BatchStatement {
        BatchStatement {
            statement: PartiqlStatement::parse(req, false),
            consistent: opt_bool(req, "ConsistentRead").map(|c| c.unwrap_or(false)),
        }
    }
}

/// What a statement does, as the engine's own requests.
enum Plan {
    Read(StatementRead),
    Write(WriteReq),
}

/// The placeholder a planned write uses for the table's partition key.
const KEY_NAME: &str = "#partiql_key";

/// The `Parameters` of a statement request.
fn parameters(v: &Value) -> Result<Vec<AttrValue>, DdbError> {
    match v.get("Parameters") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(AttrValue::from_json).collect(),
        Some(_) => Err(DdbError::serialization("Unexpected field type")),
    }
}

/// The full primary key a write's WHERE clause fixes with `=` among its top-level
/// conjuncts.
fn key_of(
    cond: &Cond,
    ctx: &Ctx,
    hash: &KeySpec,
    range: Option<&KeySpec>,
) -> Result<Item, DdbError> {
    let mut parts = Vec::new();
    conjuncts(cond, &mut parts);
    let mut key = Item::new();
    for spec in std::iter::once(hash).chain(range) {
        let v = parts
            .iter()
            .find_map(|c| match attr_cmp(c, ctx) {
                Some((n, super::expr::CmpOp::Eq, v)) if n == spec.name => Some(v.clone()),
                _ => None,
            })
            .ok_or_else(|| {
                DdbError::validation(
                    "Where clause does not contain a mandatory equality on all key attributes",
                )
            })?;
        key.insert(spec.name.clone(), v);
    }
    Ok(key)
}

fn key_path() -> Path {
    Path(vec![PathElem::Placeholder(KEY_NAME.into())])
}

/// `NextToken` carries the page's LastEvaluatedKey.
fn encode_token(lek: &Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(lek.to_string())
}

fn decode_token(token: &str) -> Result<Item, DdbError> {
    let invalid = || DdbError::validation("Invalid NextToken");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| invalid())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    item_from_json(&v).map_err(|_| invalid())
}

/// The short error code of a statement's entry in a batch's `Responses` (DynamoDB's
/// BatchStatementErrorCodeEnum).
fn statement_error(e: &DdbError) -> Value {
    let code = match e.code {
        ErrorCode::ConditionalCheckFailed => "ConditionalCheckFailed",
        ErrorCode::DuplicateItem => "DuplicateItem",
        ErrorCode::ResourceNotFound => "ResourceNotFound",
        ErrorCode::ItemCollectionSizeLimitExceeded => "ItemCollectionSizeLimitExceeded",
        ErrorCode::AccessDenied => "AccessDenied",
        ErrorCode::InternalServerError => "InternalServerError",
        _ => "ValidationError",
    };
    json!({"Code": code, "Message": e.message})
}

impl TableEngine {
    /// The keys of `table` (ResourceNotFoundException when there is no such table).
    fn key_specs(&self, table: &str) -> Result<(KeySpec, Option<KeySpec>), DdbError> {
        let g = self.state.read();
        let t = g.get(table)?;
        Ok((t.meta.hash.clone(), t.meta.range.clone()))
    }

    /// What `statement` does, against its table's keys.
    fn plan(&self, statement: PartiqlStatement) -> Result<Plan, DdbError> {
        let PartiqlStatement {
            parsed: Parsed { stmt, mut ctx },
            rv_on_fail,
        } = statement;
        let w = match stmt {
            Statement::Select(s) => {
                // PartiQL words an unknown index without its name (Query and Scan name it).
                if let Some(ix) = &s.index {
                    let g = self.state.read();
                    if g.get(&s.table)?.meta.index(ix).is_none() {
                        return Err(DdbError::validation(
                            "The table does not have the specified index",
                        ));
                    }
                }
                return Ok(Plan::Read(StatementRead {
                    table: s.table,
                    index: s.index,
                    cond: s.cond,
                    ctx,
                    proj: s.proj,
                    limit: None,
                    esk: None,
                    consistent: false,
                    order: s.order,
                }));
            }
            Statement::Insert { table, item } => {
                let (hash, _) = self.key_specs(&table)?;
                ctx.names.insert(KEY_NAME.into(), hash.name);
                let mut w = WriteReq::new(table, Action::Put(Arc::new(item)), ctx);
                w.cond = Some(Cond::AttributeNotExists(key_path()));
                w.insert = true;
                w
            }
            Statement::Update {
                table,
                update,
                cond,
                returning,
            } => {
                let (hash, range) = self.key_specs(&table)?;
                let key = key_of(&cond, &ctx, &hash, range.as_ref())?;
                let paths = update_paths(&update, &ctx)?;
                check_overlap(&paths, "UpdateExpression")?;
                let mut w = WriteReq::new(table, Action::Update(Some(update)), ctx);
                w.key = Some(key);
                // The WHERE clause is the condition, so an item that is not there fails it:
                // a PartiQL UPDATE never creates an item.
                w.cond = Some(cond);
                w.rv = returning;
                w.paths = paths;
                w
            }
            Statement::Exists(s) => {
                if s.index.is_some() {
                    return Err(DdbError::validation(
                        "This operation is not supported on an index",
                    ));
                }
                let (hash, range) = self.key_specs(&s.table)?;
                let cond = s.cond.ok_or_else(|| {
                    DdbError::validation(
                        "Where clause does not contain a mandatory equality on all key attributes",
                    )
                })?;
                let key = key_of(&cond, &ctx, &hash, range.as_ref())?;
                let mut w = WriteReq::new(s.table, Action::Check, ctx);
                w.key = Some(key);
                // The item must be there and match: a missing one fails the key equality.
                w.cond = Some(cond);
                w
            }
            Statement::Delete {
                table,
                cond,
                returning,
            } => {
                let (hash, range) = self.key_specs(&table)?;
                let key = key_of(&cond, &ctx, &hash, range.as_ref())?;
                ctx.names.insert(KEY_NAME.into(), hash.name);
                let mut w = WriteReq::new(table, Action::Delete, ctx);
                w.key = Some(key);
                // Deleting an item that is not there succeeds; one that is must match.
                w.cond = Some(Cond::Or(
                    Box::new(Cond::AttributeNotExists(key_path())),
                    Box::new(cond),
                ));
                w.rv = returning;
                w
            }
        };
        Ok(Plan::Write(WriteReq { rv_on_fail, ..w }))
    }

    /// ExecuteStatement: `page` is a SELECT's paging; `token`, whether a `NextToken` was
    /// sent, which any other statement refuses once planned.
    pub(crate) fn execute_statement(
        &self,
        statement: PartiqlStatement,
        page: Page,
        token: bool,
        capacity: Capacity,
    ) -> Result<(Value, Ticket), DdbError> {
        match self.plan(statement)? {
            Plan::Read(mut r) => {
                r.limit = page.limit;
                r.consistent = page.consistent;
                r.esk = page.esk;
                let page = self.select(capacity, r)?;
                let mut out = Map::new();
                out.insert(
                    "Items".into(),
                    page.get("Items").cloned().unwrap_or(json!([])),
                );
                if let Some(lek) = page.get("LastEvaluatedKey") {
                    out.insert("NextToken".into(), json!(encode_token(lek)));
                    out.insert("LastEvaluatedKey".into(), lek.clone());
                }
                if let Some(c) = page.get("ConsumedCapacity") {
                    out.insert("ConsumedCapacity".into(), c.clone());
                }
                Ok(super::ready(Value::Object(out)))
            }
            Plan::Write(w) => {
                if token {
                    return Err(DdbError::validation(
                        "NextToken is only valid for SELECT statements",
                    ));
                }
                let (applied, ticket) = self.apply_one(&w, false, capacity)?;
                let mut out = applied.response(capacity, &w);
                // A write answers its RETURNING image, or no items ("for the write operations
                // this value will be empty", ExecuteStatement's reference).
                let items = match out.remove("Attributes") {
                    Some(a) => json!([a]),
                    None => json!([]),
                };
                out.insert("Items".into(), items);
                Ok((Value::Object(out), ticket))
            }
        }
    }

    /// A SELECT of one item by its full key (batches and transactions only read so).
    fn key_read(&self, r: StatementRead, what: &str) -> Result<KeyRead, DdbError> {
        let refuse = || {
            DdbError::validation(format!(
                "Select statements within {what} must specify the primary key in the where clause."
            ))
        };
        if r.index.is_some() {
            return Err(refuse());
        }
        let (hash, range) = self.key_specs(&r.table)?;
        let cond = r.cond.ok_or_else(refuse)?;
        let key = key_of(&cond, &r.ctx, &hash, range.as_ref()).map_err(|_| refuse())?;
        Ok(KeyRead {
            table: r.table,
            key,
            proj: Projection {
                paths: r.proj,
                legacy: false,
            },
            cond: Some((cond, r.ctx)),
        })
    }

    pub(crate) fn batch_execute_statement(
        &self,
        statements: Vec<BatchStatement>,
        capacity: Capacity,
    ) -> Result<(Value, Ticket), DdbError> {
        enum Entry {
            Failed(DdbError),
            Read(Box<KeyRead>, bool),
            Write(usize),
        }
        let mut entries = Vec::with_capacity(statements.len());
        let mut writes = Vec::new();
        let mut targets: Vec<(String, Item)> = Vec::new();
        for s in statements {
            let entry = match s.statement.and_then(|st| self.plan(st)) {
                Err(e) => Entry::Failed(e),
                Ok(Plan::Read(r)) => match self.key_read(r, "BatchExecuteStatement") {
                    Err(e) => Entry::Failed(e),
                    Ok(k) => {
                        targets.push((k.table.clone(), k.key.clone()));
                        Entry::Read(Box::new(k), s.consistent?)
                    }
                },
                Ok(Plan::Write(w)) => {
                    let key = match (&w.key, &w.action) {
                        (Some(k), _) => Some(k.clone()),
                        (None, Action::Put(item)) => {
                            let (hash, range) = self.key_specs(&w.table)?;
                            Some(
                                std::iter::once(&hash)
                                    .chain(range.as_ref())
                                    .filter_map(|k| {
                                        Some((k.name.clone(), item.get(&k.name)?.clone()))
                                    })
                                    .collect(),
                            )
                        }
                        _ => None,
                    };
                    if let Some(k) = key {
                        targets.push((w.table.clone(), k));
                    }
                    writes.push(w);
                    Entry::Write(writes.len() - 1)
                }
            };
            entries.push(entry);
        }
        let reads = entries.iter().any(|e| matches!(e, Entry::Read(..)));
        if reads && !writes.is_empty() {
            return Err(DdbError::validation(
                "Read and write requests together in the same batch is not supported.",
            ));
        }
        for (i, t) in targets.iter().enumerate() {
            if targets[..i].contains(t) {
                return Err(DdbError::validation(
                    "Provided list of item keys contains duplicates",
                ));
            }
        }
        let (mut applied, ticket) = if writes.is_empty() {
            (Vec::new(), Ticket::ready(Ok(())))
        } else {
            self.apply_each(&writes, false, capacity)?
        };
        let mut units: Vec<(String, Units)> = Vec::new();
        let mut responses = Vec::with_capacity(entries.len());
        let g = self.state.read();
        for entry in entries {
            responses.push(match entry {
                Entry::Failed(e) => json!({ "Error": statement_error(&e) }),
                Entry::Read(k, consistent) => {
                    let read = g.get(&k.table).and_then(|t| {
                        let pk = t.key_from_param(&k.key)?;
                        let size = t.get(&pk).map_or(0, |i| item_size(i));
                        Ok((k.read(t, &pk)?, size))
                    });
                    match read {
                        Err(e) => json!({ "Error": statement_error(&e) }),
                        Ok((item, size)) => {
                            add_units(
                                &mut units,
                                &k.table,
                                &Units::table(read_units(size, consistent)),
                            );
                            let mut r = json!({ "TableName": k.table });
                            if let Some(item) = item {
                                r["Item"] = item;
                            }
                            r
                        }
                    }
                }
                Entry::Write(i) => {
                    let w = &writes[i];
                    let result = std::mem::replace(
                        &mut applied[i],
                        Err(DdbError::internal("answered twice")),
                    );
                    match result {
                        Err(e) => json!({ "Error": statement_error(&e) }),
                        Ok(a) => {
                            if let Some(u) = &a.units {
                                add_units(&mut units, &w.table, u);
                            }
                            json!({ "TableName": w.table })
                        }
                    }
                }
            });
        }
        drop(g);
        let mut out = json!({ "Responses": responses });
        if let Some(c) = super::items::batch_consumed(capacity, &units) {
            out["ConsumedCapacity"] = c;
        }
        Ok((out, ticket))
    }

    /// ExecuteTransaction: a statement's own error (`Err`) is raised in its turn, after an
    /// earlier statement's; `metrics`: `ReturnItemCollectionMetrics` is `SIZE`.
    pub(crate) fn execute_transaction(
        &self,
        statements: Vec<Result<PartiqlStatement, DdbError>>,
        opts: &super::items::TxOptions,
    ) -> Result<(Value, Ticket), DdbError> {
        let mut reads = Vec::new();
        let mut writes = Vec::new();
        for (i, s) in statements.into_iter().enumerate() {
            let in_statement = |mut e: DdbError| {
                if e.code == ErrorCode::Validation && !e.message.starts_with("Statement wasn't") {
                    e.message = format!(
                        "Validation failed in TransactStatements[{i}]: {}",
                        e.message
                    );
                }
                e
            };
            match self.plan(s?)? {
                Plan::Read(r) => {
                    if r.index.is_some() {
                        return Err(in_statement(DdbError::validation(
                            "Reads on indices are not supported within transactions.",
                        )));
                    }
                    reads.push(
                        self.key_read(r, "ExecuteTransaction")
                            .map_err(in_statement)?,
                    );
                }
                Plan::Write(w) => {
                    if w.rv != ReturnValues::None {
                        return Err(in_statement(DdbError::validation(
                            "RETURNING clause is not supported in ExecuteTransaction.",
                        )));
                    }
                    writes.push(w);
                }
            }
        }
        if !reads.is_empty() && !writes.is_empty() {
            return Err(DdbError::validation(
                "ExecuteTransaction API does not support both read and write operations in the same request.",
            ));
        }
        if writes.is_empty() {
            return self.transact_reads(&reads, opts.capacity).map(super::ready);
        }
        self.transact_writes(opts, &writes)
    }
}

#[cfg(test)]
mod tests;
