//! Table operations: CreateTable and UpdateTable (their typed requests are
//! [`TableDef`](super::meta::TableDef) and [`TableUpdate`]), and what the table operations in
//! `op/` share (errors, the ARN of a tagging request).
//!
//! Tables go CREATING -> ACTIVE, UPDATING -> ACTIVE and DELETING -> gone after the engine's
//! status delay (zero by default: at once, as DynamoDB Local does; `kedge serve` sets a short
//! one so clients that wait on the status see DynamoDB's sequence). Everything a change
//! means is applied and journaled at once; only the reported status trails.

use serde_json::{Value, json};

use super::engine::Table;
use super::error::DdbError;
use super::meta::{
    Billing, IndexDef, KeySpec, TableMeta, UnitPair, attr_defs, index_units, merge_units,
    out_of_bounds, stream_spec, table_arn,
};
use super::req::{opt_str, req_str, table_name};
use super::{TableEngine, Tables};
use crate::journal::Ticket;

pub(crate) fn not_found_table(name: &str) -> DdbError {
    DdbError::not_found(format!(
        "Requested resource not found: Table: {name} not found"
    ))
}

/// The table called `name`, whatever its status (table operations see tables being created
/// or deleted, unlike item operations).
pub(crate) fn any_table<'g>(g: &'g Tables, name: &str) -> Result<&'g Table, DdbError> {
    g.by_name.get(name).ok_or_else(|| not_found_table(name))
}

/// ResourceNotFoundException for a tagging request's ARN.
fn arn_not_found(arn: &str) -> DdbError {
    DdbError::not_found(format!(
        "Requested resource not found: ResourcArn: {arn} not found"
    ))
}

/// The table `table` a tagging request's `arn` names, when it is that table's ARN.
pub(crate) fn tagged<'g>(g: &'g Tables, table: &str, arn: &str) -> Result<&'g Table, DdbError> {
    g.by_name
        .get(table)
        .filter(|t| table_arn(&t.meta.name) == arn)
        .ok_or_else(|| arn_not_found(arn))
}

/// [`tagged`], to change.
pub(crate) fn tagged_mut<'g>(
    g: &'g mut Tables,
    table: &str,
    arn: &str,
) -> Result<&'g mut Table, DdbError> {
    g.by_name
        .get_mut(table)
        .filter(|t| table_arn(&t.meta.name) == arn)
        .ok_or_else(|| arn_not_found(arn))
}

/// `arn:aws:dynamodb:region:account:table/NAME` -> NAME.
pub(crate) fn table_from_arn(arn: &str) -> Result<&str, DdbError> {
    arn.split_once(":table/")
        .map(|(_, n)| n.split('/').next().unwrap_or(n))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            DdbError::validation(format!(
                "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
            ))
        })
}

/// ResourceInUseException for a table that is still changing, as DynamoDB refuses a second
/// change then.
pub(crate) fn in_use(t: &Table) -> Result<(), DdbError> {
    let what = match t.phase {
        super::engine::Phase::Active => return Ok(()),
        super::engine::Phase::Creating => "created",
        super::engine::Phase::Updating => "updated",
        super::engine::Phase::Deleting => "deleted",
    };
    Err(DdbError::in_use(format!(
        "Attempt to change a resource which is still in use: Table is being {what}: {}",
        t.meta.name
    )))
}

/// An UpdateTable request. Every member is read here. DynamoDB checks a few things before it
/// looks the table up (that something is to change, PROVISIONED with its throughput, the
/// throughput's bounds, each index update's action and index); [`TableUpdate::parse`]
/// raises those. The rest it checks once it has found the table, one after the other and
/// between checks against the table: a member's own error is kept (`Err`) and
/// [`TableEngine::update_table`] raises it where it comes in that order.
pub(crate) struct TableUpdate<'a> {
    name: &'a str,
    /// `BillingMode`.
    billing: Option<Result<Billing, DdbError>>,
    /// `ProvisionedThroughput`: read and write units (0 for one not given).
    throughput: Option<(i64, i64)>,
    /// `AttributeDefinitions`.
    attr_defs: Option<Result<Vec<KeySpec>, DdbError>>,
    /// `GlobalSecondaryIndexUpdates`.
    gsi_updates: Option<Vec<GsiUpdate<'a>>>,
    /// `StreamSpecification`: whether `StreamEnabled` is true, and the `StreamViewType`.
    stream: Option<(bool, Option<&'a str>)>,
    /// `DeletionProtectionEnabled`.
    deletion_protection: Option<bool>,
    /// `SSESpecification`, `TableClass`, `WarmThroughput`.
    extras: super::meta::ExtrasChange,
}

/// One entry of UpdateTable's `GlobalSecondaryIndexUpdates`.
enum GsiUpdate<'a> {
    Create(Result<IndexDef, DdbError>),
    /// The index to delete.
    Delete(Result<&'a str, DdbError>),
    /// The index to change, its new read and write units, warm throughput and maximum
    /// on-demand units (what is not given is kept).
    Update {
        name: Result<&'a str, DdbError>,
        read: Option<i64>,
        write: Option<i64>,
        units: Result<(UnitPair, UnitPair), DdbError>,
    },
}

/// DynamoDB's answer to an index update above its bound, whether the index exists or not.
fn index_units_blocked() -> DdbError {
    DdbError::validation(
        "This operation cannot be performed with given input values. Please contact DynamoDB service team for more info: Action Blocked: IndexUpdate",
    )
}

impl<'a> TableUpdate<'a> {
    /// Read an UpdateTable request, with the checks DynamoDB makes before it looks the
    /// table up, in its order.
    pub(crate) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        let name = table_name(req)?;
        Self::check_before_lookup(req)?;
        let units = |pt: &Value, field: &str| pt.get(field).and_then(Value::as_i64);
        // check_before_lookup has refused an update with none of the three actions.
        let gsi_update = |u: &'a Value| {
            let action = |a: &str| u.get(a).filter(|v| !v.is_null());
            if let Some(c) = action("Create") {
                Some(GsiUpdate::Create(IndexDef::parse(c, true)))
            } else if let Some(d) = action("Delete") {
                Some(GsiUpdate::Delete(req_str(d, "IndexName")))
            } else if let Some(up) = action("Update") {
                let pt = up.get("ProvisionedThroughput");
                Some(GsiUpdate::Update {
                    name: req_str(up, "IndexName"),
                    read: pt.and_then(|pt| units(pt, "ReadCapacityUnits")),
                    write: pt.and_then(|pt| units(pt, "WriteCapacityUnits")),
                    units: index_units(up),
                })
            } else {
                None
            }
        };
        Ok(TableUpdate {
            name,
            billing: opt_str(req, "BillingMode").map(Billing::parse),
            throughput: req
                .get("ProvisionedThroughput")
                .filter(|v| !v.is_null())
                .map(|pt| {
                    (
                        units(pt, "ReadCapacityUnits").unwrap_or(0),
                        units(pt, "WriteCapacityUnits").unwrap_or(0),
                    )
                }),
            attr_defs: req
                .get("AttributeDefinitions")
                .filter(|v| !v.is_null())
                .map(|d| attr_defs(Some(d))),
            gsi_updates: req
                .get("GlobalSecondaryIndexUpdates")
                .and_then(|v| v.as_array())
                .map(|l| l.iter().filter_map(gsi_update).collect()),
            stream: stream_spec(req),
            deletion_protection: req
                .get("DeletionProtectionEnabled")
                .and_then(crate::table::req::as_boolean),
            extras: super::meta::ExtrasChange::parse(req)?,
        })
    }

    /// What DynamoDB refuses before it looks the table up: a request that changes nothing,
    /// BillingMode PROVISIONED without ProvisionedThroughput, units above the bound, an
    /// index update with none of its three actions, and two updates of one index.
    fn check_before_lookup(req: &Value) -> Result<(), DdbError> {
        let given = |f: &str| req.get(f).is_some_and(|v| !v.is_null());
        let gsi_updates = req
            .get("GlobalSecondaryIndexUpdates")
            .and_then(Value::as_array)
            .filter(|l| !l.is_empty());
        let changes = [
            "ProvisionedThroughput",
            "BillingMode",
            "StreamSpecification",
            "SSESpecification",
            "TableClass",
            "WarmThroughput",
            "OnDemandThroughput",
        ]
        .iter()
        .any(|f| given(f))
            || gsi_updates.is_some()
            || req
                .get("DeletionProtectionEnabled")
                .is_some_and(Value::is_boolean);
        if !changes {
            return Err(nothing_to_change());
        }
        if opt_str(req, "BillingMode") == Some("PROVISIONED") && !given("ProvisionedThroughput") {
            return Err(DdbError::validation(
                "One or more parameter values were invalid: ProvisionedThroughput must be specified when BillingMode is PROVISIONED",
            ));
        }
        if let Some(pt) = req.get("ProvisionedThroughput") {
            let units = |f: &str| pt.get(f).and_then(Value::as_i64).unwrap_or(0);
            out_of_bounds(units("ReadCapacityUnits"), units("WriteCapacityUnits"))?;
        }
        let mut seen = Vec::new();
        for u in gsi_updates.into_iter().flatten() {
            let actions = ["Update", "Create", "Delete"]
                .iter()
                .filter_map(|a| u.get(a).filter(|v| !v.is_null()))
                .map(|a| opt_str(a, "IndexName"))
                .collect::<Vec<_>>();
            let Some(&index) = actions.first() else {
                return Err(DdbError::validation(
                    "One or more parameter values were invalid: One of GlobalSecondaryIndexUpdate.Update, GlobalSecondaryIndexUpdate.Create, GlobalSecondaryIndexUpdate.Delete must not be null",
                ));
            };
            if actions.len() > 1 {
                return Err(DdbError::validation(
                    "One or more parameter values were invalid: Only one of GlobalSecondaryIndexUpdate.Update, GlobalSecondaryIndexUpdate.Create, GlobalSecondaryIndexUpdate.Delete may be given in one GlobalSecondaryIndexUpdate",
                ));
            }
            if let Some(n) = index {
                if seen.contains(&n) {
                    return Err(DdbError::validation(format!(
                        "One or more parameter values were invalid: Only one global secondary index update per index is allowed simultaneously. Index: {n}"
                    )));
                }
                seen.push(n);
            }
        }
        // DynamoDB creates or deletes one index per UpdateTable.
        let online = gsi_updates
            .into_iter()
            .flatten()
            .filter(|u| {
                ["Create", "Delete"]
                    .iter()
                    .any(|a| u.get(a).is_some_and(|v| !v.is_null()))
            })
            .count();
        if online > 1 {
            return Err(DdbError::new(
                super::error::ErrorCode::LimitExceeded,
                "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table",
            ));
        }
        Ok(())
    }
}

/// DynamoDB's answer to an UpdateTable that changes nothing.
fn nothing_to_change() -> DdbError {
    DdbError::validation(
        "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required",
    )
}

impl TableEngine {
    /// The id and creation time (seconds since the epoch) of a table CreateTable is about to
    /// create. Every CreateTable that passes the request checks takes an id, even one whose
    /// request turns out invalid, so later ids depend on it.
    pub(crate) fn new_table_id(&self) -> (String, f64) {
        let created = self.clock.now().as_millis() as f64 / 1000.0;
        (self.next_id(), created)
    }

    pub(crate) fn create_table(&self, meta: TableMeta) -> Result<(Value, Ticket), DdbError> {
        self.journal.check()?;
        let mut g = self.state.write();
        if g.by_name.contains_key(&meta.name) {
            return Err(DdbError::in_use(format!(
                "Table already exists: {}",
                meta.name
            )));
        }
        let mut records = vec![Self::table_record(&meta)];
        let mut table = Table::new(meta);
        if let (Some(view), Some(label)) = (&table.meta.stream, &table.meta.stream_label) {
            let s = super::streams::Stream::new(
                &table.meta,
                view,
                label.clone(),
                (table.meta.created * 1000.0).round() as u64,
            );
            records.push(s.meta_record());
            table.stream = Some(s);
        }
        if let Some(until) = self.transition_end() {
            table.phase = super::engine::Phase::Creating;
            table.phase_until = until;
            self.schedule_transition(until);
        }
        let desc = table.describe(self.clock.now().as_millis());
        g.by_name.insert(table.meta.name.clone(), table);
        let ticket = self.submit(records);
        Ok((json!({ "TableDescription": desc }), ticket))
    }

    pub(crate) fn update_table(&self, u: TableUpdate) -> Result<(Value, Ticket), DdbError> {
        let name = u.name;
        self.journal.check()?;
        let mut g = self.state.write();
        let t = g
            .by_name
            .get_mut(name)
            .ok_or_else(|| not_found_table(name))?;
        // DynamoDB validates the request before it refuses a table that is still changing.
        let busy = in_use(t);
        let mut meta = t.meta.clone();
        let mut changed = false;
        let mut index_changes: Vec<(
            String,
            super::engine::IndexPhase,
            Option<super::meta::IndexMeta>,
        )> = Vec::new();
        let billing_given = u.billing.is_some();
        let mut throughput_change = None;
        if let Some(b) = u.billing {
            let b = b?;
            if b.as_str() != meta.billing {
                meta.billing = b.as_str().to_string();
                if b == Billing::PayPerRequest {
                    meta.ppr_since = Some(self.clock.now().as_millis() as f64 / 1000.0);
                    meta.rcu = 0;
                    meta.wcu = 0;
                    for i in &mut meta.indexes {
                        i.rcu = 0;
                        i.wcu = 0;
                    }
                }
            }
            changed = true;
        }
        if u.throughput.is_some() && meta.billing == "PAY_PER_REQUEST" {
            return Err(DdbError::validation(
                "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
            ));
        }
        // Then the number of index updates, and each index update's units against the
        // bound (before the index is looked up).
        if let Some(updates) = &u.gsi_updates {
            if updates.len() > 5 {
                return Err(DdbError::new(
                    super::error::ErrorCode::LimitExceeded,
                    "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table",
                ));
            }
            for update in updates {
                if let GsiUpdate::Update { read, write, .. } = update
                    && out_of_bounds(read.unwrap_or(0), write.unwrap_or(0)).is_err()
                {
                    return Err(index_units_blocked());
                }
            }
        }
        if let Some((r, w)) = u.throughput {
            if r < 1 || w < 1 {
                return Err(DdbError::validation(
                    "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be greater than 0",
                ));
            }
            if r == meta.rcu && w == meta.wcu && !billing_given {
                return Err(DdbError::validation(format!(
                    "The provisioned throughput for the table will not change. The requested value equals the current value. Current ReadCapacityUnits provisioned for the table: {}. Requested ReadCapacityUnits: {r}. Current WriteCapacityUnits provisioned for the table: {}. Requested WriteCapacityUnits: {w}. Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits.",
                    meta.rcu, meta.wcu
                )));
            }
            throughput_change = Some(super::meta::ThroughputChange {
                before: (meta.rcu, meta.wcu),
                up: r > meta.rcu || w > meta.wcu,
                down: r < meta.rcu || w < meta.wcu,
            });
            meta.rcu = r;
            meta.wcu = w;
            changed = true;
        }
        // A new index's keys must be defined in this request's AttributeDefinitions, even
        // when the table already defines them.
        let mut request_defs = Vec::new();
        if let Some(defs) = u.attr_defs {
            let defs = defs?;
            request_defs = defs.clone();
            for d in defs {
                match meta.attr_defs.iter().find(|x| x.name == d.name) {
                    Some(x) if x.ty != d.ty => {
                        return Err(DdbError::validation(format!(
                            "One or more parameter values were invalid: Attributes cannot be redefined. Please check that your attribute has the same type as previously defined. Attribute: {}, existing type: {}, new type: {}",
                            d.name, x.ty, d.ty
                        )));
                    }
                    Some(_) => {}
                    None => meta.attr_defs.push(d),
                }
            }
        }
        if let Some(updates) = u.gsi_updates {
            let ppr = meta.billing == "PAY_PER_REQUEST";
            for update in updates {
                match update {
                    GsiUpdate::Create(def) => {
                        let ix = def?.resolve(&request_defs, ppr)?;
                        if meta.index(&ix.name).is_some() {
                            return Err(DdbError::validation(format!(
                                "One or more parameter values were invalid: Index with name {} already exists",
                                ix.name
                            )));
                        }
                        if meta.indexes.iter().filter(|i| i.global).count() >= 20 {
                            return Err(DdbError::new(
                                super::error::ErrorCode::LimitExceeded,
                                "Subscriber limit exceeded: The number of global secondary indexes exceeds the limit of 20",
                            ));
                        }
                        index_changes.push((
                            ix.name.clone(),
                            super::engine::IndexPhase::Creating,
                            None,
                        ));
                        meta.indexes.push(ix);
                    }
                    GsiUpdate::Delete(n) => {
                        let n = n?;
                        let before = meta.indexes.len();
                        if let Some(gone) = meta.indexes.iter().find(|i| i.global && i.name == n) {
                            index_changes.push((
                                n.to_string(),
                                super::engine::IndexPhase::Deleting,
                                Some(gone.clone()),
                            ));
                        }
                        meta.indexes.retain(|i| !(i.global && i.name == n));
                        // Its contributor insights go with it.
                        meta.insights.remove(n);
                        if meta.indexes.len() == before {
                            return Err(DdbError::not_found(format!(
                                "Requested resource not found: Index: {n} not found for table: {name}"
                            )));
                        }
                    }
                    GsiUpdate::Update {
                        name: n,
                        read,
                        write,
                        units,
                    } => {
                        let n = n?;
                        let (warm, on_demand) = units?;
                        let ix = meta
                            .indexes
                            .iter_mut()
                            .find(|i| i.global && i.name == n)
                            .ok_or_else(|| {
                                DdbError::not_found(format!(
                                    "Requested resource not found: Index: {n} not found for table: {name}"
                                ))
                            })?;
                        index_changes.push((
                            n.to_string(),
                            super::engine::IndexPhase::Updating,
                            None,
                        ));
                        ix.rcu = read.unwrap_or(ix.rcu);
                        ix.wcu = write.unwrap_or(ix.wcu);
                        ix.warm = merge_units(ix.warm, warm);
                        ix.on_demand = merge_units(ix.on_demand, on_demand);
                    }
                }
            }
            changed = true;
        }
        let mut stream_change = None;
        if let Some((enable, view)) = u.stream {
            if !index_changes.is_empty() {
                return Err(DdbError::validation(
                    "One or more parameter values were invalid: You cannot create or delete index while changing stream status",
                ));
            }
            match (enable, view) {
                (true, None) => {
                    return Err(DdbError::validation(
                        "One or more parameter values were invalid: If stream is being enabled then UpdateViewType is required",
                    ));
                }
                (false, Some(_)) => {
                    return Err(DdbError::validation(
                        "One or more parameter values were invalid: If stream is being disabled, then UpdateViewType must not be specified",
                    ));
                }
                (true, Some(_)) if meta.stream.is_some() => {
                    return Err(DdbError::validation(format!(
                        "Table already has an enabled stream: TableName: {name}"
                    )));
                }
                (false, None) if meta.stream.is_none() => {
                    return Err(DdbError::validation(format!(
                        "Table has no stream to disable: TableName: {name}"
                    )));
                }
                _ => {}
            }
            meta.stream = view.map(str::to_string);
            stream_change = Some(view);
            changed = true;
        }
        if let Some(p) = u.deletion_protection {
            meta.deletion_protection = p;
            changed = true;
        }
        if !u.extras.is_empty() {
            let now = self.clock.now().as_millis() as f64 / 1000.0;
            u.extras.apply(&mut meta.extras, Some(now));
            changed = true;
        }
        if !changed {
            return Err(nothing_to_change());
        }
        busy?;
        // Drop definitions no key uses any more (AWS keeps only used ones).
        let used: Vec<String> = meta
            .indexes
            .iter()
            .flat_map(|i| i.key_specs().map(|k| k.name.clone()))
            .chain(std::iter::once(meta.hash.name.clone()))
            .chain(meta.range.iter().map(|r| r.name.clone()))
            .collect();
        meta.attr_defs.retain(|d| used.contains(&d.name));
        let mut records = Vec::new();
        let mut retired = None;
        let now = self.clock.now().as_millis();
        match stream_change {
            Some(Some(view)) => {
                // Two streams of one table enabled within a millisecond still get two ARNs.
                let created = t
                    .stream
                    .as_ref()
                    .map_or(now, |s| now.max(s.meta.created_ms + 1));
                let label = crate::civil::iso8601_millis(created);
                meta.stream_label = Some(label.clone());
                let s = super::streams::Stream::new(&meta, view, label, created);
                records.push(s.meta_record());
                retired = t.stream.replace(s);
            }
            Some(None) => {
                if let Some(s) = t.stream.as_mut() {
                    records.push(s.disable(now));
                }
            }
            None => {}
        }
        if let Some(c) = throughput_change {
            meta.begin_throughput_change(c, now);
        }
        let rebuild = meta.indexes != t.meta.indexes;
        t.meta = meta;
        if rebuild {
            t.rebuild_derived();
        }
        if let Some(until) = self.transition_end() {
            t.phase = super::engine::Phase::Updating;
            t.phase_until = until;
            if stream_change.is_some()
                && let Some(s) = t.stream.as_mut()
            {
                s.settles_ms = until;
            }
            for (name, phase, gone) in index_changes {
                t.index_phases.insert(name, (phase, until, gone));
            }
            t.throughput_change = throughput_change;
            self.schedule_transition(until);
        } else if let Some(c) = throughput_change {
            t.meta.end_throughput_change(c, now);
        }
        let desc = t.describe(now);
        records.insert(0, Self::table_record(&t.meta));
        if let Some(old) = retired {
            g.old_streams.insert(old.meta.arn.clone(), old);
        }
        let ticket = self.submit(records);
        Ok((json!({ "TableDescription": desc }), ticket))
    }

    /// The ARN and table name of a tagging request, refused as DynamoDB refuses them: no
    /// ARN is an invalid TableArn, one that is not shaped like an ARN with a resource path
    /// is denied (there is no such resource to be allowed on), and a table part that cannot
    /// be a table name is an invalid TableArn.
    /// IAM's answer to a ResourceArn not shaped like a resource's (`…:…:…:…:…:…/…`), which
    /// DynamoDB gives before it checks the request's members.
    pub(crate) fn authorize_arn(arn: &str, op: &str) -> Result<(), DdbError> {
        let shaped = arn.splitn(6, ':').nth(5).is_some_and(|r| r.contains('/'));
        if shaped {
            return Ok(());
        }
        Err(DdbError::new(
            super::error::ErrorCode::AccessDenied,
            format!(
                "User: arn:aws:iam::000000000000:root is not authorized to perform: dynamodb:{op} on resource: {}",
                if arn.is_empty() { "*" } else { arn }
            ),
        ))
    }

    pub(crate) fn with_arn<'a>(req: &'a Value, op: &str) -> Result<(&'a str, &'a str), DdbError> {
        let arn = req
            .get("ResourceArn")
            .and_then(Value::as_str)
            .ok_or_else(|| DdbError::validation("Invalid TableArn"))?;
        Self::authorize_arn(arn, op)?;
        let invalid = || {
            DdbError::validation(format!(
                "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
            ))
        };
        let name = table_from_arn(arn).map_err(|_| invalid())?;
        // An index's ARN (`table/<name>/index/<index>`) is not taggable.
        if arn
            .split_once(":table/")
            .is_some_and(|(_, rest)| rest.contains('/'))
        {
            return Err(DdbError::validation(format!(
                "One or more parameter values were invalid: Invalid resource arn provided, only table or stream is accepted. Provided resource {arn}"
            )));
        }
        if !(3..=255).contains(&name.len()) {
            return Err(invalid());
        }
        Ok((arn, name))
    }
}
