//! DynamoDB operations, one file each: every operation is parsed from its request into its
//! typed request, then applied to the engine, as one [`Operation`].
//!
//! [`TableEngine::execute`] first makes the checks every request goes through (member types,
//! member constraints, expression parameters) and the engine's housekeeping, then
//! `Operation::parse`s the request and `Operation::apply`s it. `parse` makes the checks
//! DynamoDB makes before it looks at a table (it takes no lock); checks DynamoDB makes only
//! after finding the table (key against the schema, index names, conditions...) stay in
//! `apply`, after that look-up, so the same error wins as before. Where a member is read in
//! `parse` but DynamoDB checks it only after a look-up (UpdateTable's members, a PartiQL
//! statement after an earlier statement's table), or after CreateTable has taken a table id,
//! the request keeps the member's own error and `apply` raises it at that point.
//!
//! # Layout
//! - this file: `Operation`, which parses a request by operation name and applies it,
//!   [`execute`], which does both, and the `TransactItems` check both transaction operations
//!   share.
//! - one file per operation, named after it (`put_item.rs` for `PutItem`, …): a struct with
//!   the typed request, its `parse` from the request JSON, and its `apply`, which runs it in
//!   the engine and answers with the response JSON and the durability [`Ticket`]. The typed
//!   requests of CreateTable and UpdateTable are in `meta.rs` and `admin.rs`, those of the
//!   PartiQL operations in `partiql/`, where the engine methods their `apply` calls are.
//! - `write.rs`: the single-item write PutItem, DeleteItem and UpdateItem share.
//! - `unknown.rs`: the answer to an operation the engine does not implement.

mod batch_execute_statement;
mod batch_get_item;
mod batch_write_item;
mod create_backup;
mod create_table;
mod delete_backup;
mod delete_item;
mod delete_resource_policy;
mod delete_table;
mod describe_backup;
mod describe_continuous_backups;
mod describe_contributor_insights;
mod describe_endpoints;
mod describe_export;
mod describe_global_table;
mod describe_global_table_settings;
mod describe_import;
mod describe_kinesis_streaming_destination;
mod describe_limits;
mod describe_table;
mod describe_time_to_live;
mod execute_statement;
mod execute_transaction;
mod export_table_to_point_in_time;
mod get_item;
mod get_resource_policy;
mod import_table;
mod list_backups;
mod list_contributor_insights;
mod list_exports;
mod list_global_tables;
mod list_imports;
mod list_tables;
mod list_tags_of_resource;
mod put_item;
mod put_resource_policy;
mod query;
mod resource_policy;
mod restore_table_from_backup;
mod restore_table_to_point_in_time;
mod scan;
mod tag_resource;
mod transact_get_items;
mod transact_write_items;
mod unknown;
mod untag_resource;
mod update_continuous_backups;
mod update_contributor_insights;
mod update_item;
mod update_table;
mod update_time_to_live;
mod write;

use serde_json::Value;

use super::{Answer, DdbError, TableEngine};
use crate::journal::Ticket;

use batch_execute_statement::BatchExecuteStatement;
use batch_get_item::BatchGetItem;
use batch_write_item::BatchWriteItem;
use create_backup::CreateBackup;
use create_table::CreateTable;
use delete_backup::DeleteBackup;
use delete_item::DeleteItem;
use delete_resource_policy::DeleteResourcePolicy;
use delete_table::DeleteTable;
use describe_backup::{DescribeBackup, backup_arn};
use describe_continuous_backups::DescribeContinuousBackups;
use describe_contributor_insights::DescribeContributorInsights;
use describe_endpoints::DescribeEndpoints;
use describe_export::DescribeExport;
use describe_global_table::DescribeGlobalTable;
use describe_global_table_settings::DescribeGlobalTableSettings;
use describe_import::DescribeImport;
use describe_kinesis_streaming_destination::DescribeKinesisStreamingDestination;
use describe_limits::DescribeLimits;
use describe_table::DescribeTable;
use describe_time_to_live::DescribeTimeToLive;
use execute_statement::ExecuteStatement;
use execute_transaction::ExecuteTransaction;
use export_table_to_point_in_time::ExportTableToPointInTime;
use get_item::GetItem;
use get_resource_policy::GetResourcePolicy;
use import_table::ImportTable;
use list_backups::ListBackups;
use list_contributor_insights::ListContributorInsights;
use list_exports::ListExports;
use list_global_tables::ListGlobalTables;
use list_imports::ListImports;
use list_tables::ListTables;
use list_tags_of_resource::ListTagsOfResource;
use put_item::PutItem;
use put_resource_policy::PutResourcePolicy;
use query::Query;
use restore_table_from_backup::RestoreTableFromBackup;
use restore_table_to_point_in_time::RestoreTableToPointInTime;
use scan::Scan;
use tag_resource::TagResource;
use transact_get_items::TransactGetItems;
use transact_write_items::TransactWriteItems;
use unknown::Unknown;
use untag_resource::UntagResource;
use update_continuous_backups::UpdateContinuousBackups;
use update_contributor_insights::UpdateContributorInsights;
use update_item::UpdateItem;
use update_table::UpdateTable;
use update_time_to_live::UpdateTimeToLive;

/// A parsed request: one arm per operation, each with its request. `'a` is the request JSON's
/// lifetime (names taken from it, and parts a response echoes, borrow it).
enum Operation<'a> {
    CreateTable(CreateTable),
    DescribeTable(DescribeTable<'a>),
    ListTables(ListTables<'a>),
    DeleteTable(DeleteTable<'a>),
    UpdateTable(UpdateTable<'a>),
    TagResource(TagResource<'a>),
    UntagResource(UntagResource<'a>),
    ListTagsOfResource(ListTagsOfResource<'a>),
    DescribeTimeToLive(DescribeTimeToLive<'a>),
    UpdateTimeToLive(UpdateTimeToLive<'a>),
    PutItem(PutItem),
    GetItem(GetItem<'a>),
    DeleteItem(DeleteItem),
    UpdateItem(UpdateItem),
    Query(Query),
    Scan(Scan),
    BatchWriteItem(BatchWriteItem),
    BatchGetItem(BatchGetItem<'a>),
    TransactWriteItems(TransactWriteItems),
    TransactGetItems(TransactGetItems),
    ExecuteStatement(ExecuteStatement),
    BatchExecuteStatement(BatchExecuteStatement),
    ExecuteTransaction(ExecuteTransaction),
    DescribeLimits(DescribeLimits),
    DescribeEndpoints(DescribeEndpoints),
    DescribeContinuousBackups(DescribeContinuousBackups<'a>),
    PutResourcePolicy(PutResourcePolicy<'a>),
    GetResourcePolicy(GetResourcePolicy<'a>),
    DeleteResourcePolicy(DeleteResourcePolicy<'a>),
    UpdateContinuousBackups(UpdateContinuousBackups<'a>),
    DescribeContributorInsights(DescribeContributorInsights<'a>),
    UpdateContributorInsights(UpdateContributorInsights<'a>),
    ListContributorInsights(ListContributorInsights<'a>),
    CreateBackup(CreateBackup<'a>),
    DescribeBackup(DescribeBackup<'a>),
    DeleteBackup(DeleteBackup<'a>),
    ListBackups(ListBackups<'a>),
    RestoreTableFromBackup(RestoreTableFromBackup<'a>),
    RestoreTableToPointInTime(RestoreTableToPointInTime<'a>),
    DescribeKinesisStreamingDestination(DescribeKinesisStreamingDestination<'a>),
    ExportTableToPointInTime(ExportTableToPointInTime<'a>),
    ImportTable(ImportTable),
    ListExports(ListExports<'a>),
    DescribeExport(DescribeExport<'a>),
    ListImports(ListImports<'a>),
    DescribeImport(DescribeImport<'a>),
    ListGlobalTables(ListGlobalTables),
    DescribeGlobalTable(DescribeGlobalTable<'a>),
    DescribeGlobalTableSettings(DescribeGlobalTableSettings<'a>),
    Unknown(Unknown<'a>),
}

impl<'a> Operation<'a> {
    /// Read the request of the operation called `name`, making the checks DynamoDB makes
    /// before it looks at a table. `req` has passed [`TableEngine::execute`]'s checks.
    fn parse(name: &'a str, req: &'a Value) -> Result<Operation<'a>, DdbError> {
        Ok(match name {
            "CreateTable" => Operation::CreateTable(CreateTable::parse(req)),
            "DescribeTable" => Operation::DescribeTable(DescribeTable::parse(req)?),
            "ListTables" => Operation::ListTables(ListTables::parse(req)?),
            "DeleteTable" => Operation::DeleteTable(DeleteTable::parse(req)?),
            "UpdateTable" => Operation::UpdateTable(UpdateTable::parse(req)?),
            "TagResource" => Operation::TagResource(TagResource::parse(req)?),
            "UntagResource" => Operation::UntagResource(UntagResource::parse(req)?),
            "ListTagsOfResource" => Operation::ListTagsOfResource(ListTagsOfResource::parse(req)?),
            "DescribeTimeToLive" => Operation::DescribeTimeToLive(DescribeTimeToLive::parse(req)?),
            "UpdateTimeToLive" => Operation::UpdateTimeToLive(UpdateTimeToLive::parse(req)?),
            "PutItem" => Operation::PutItem(PutItem::parse(req)?),
            "GetItem" => Operation::GetItem(GetItem::parse(req)?),
            "DeleteItem" => Operation::DeleteItem(DeleteItem::parse(req)?),
            "UpdateItem" => Operation::UpdateItem(UpdateItem::parse(req)?),
            "Query" => Operation::Query(Query::parse(req)?),
            "Scan" => Operation::Scan(Scan::parse(req)?),
            "BatchWriteItem" => Operation::BatchWriteItem(BatchWriteItem::parse(req)?),
            "BatchGetItem" => Operation::BatchGetItem(BatchGetItem::parse(req)?),
            "TransactWriteItems" => Operation::TransactWriteItems(TransactWriteItems::parse(req)?),
            "TransactGetItems" => Operation::TransactGetItems(TransactGetItems::parse(req)?),
            "ExecuteStatement" => Operation::ExecuteStatement(ExecuteStatement::parse(req)?),
            "BatchExecuteStatement" => {
                Operation::BatchExecuteStatement(BatchExecuteStatement::parse(req)?)
            }
            "ExecuteTransaction" => Operation::ExecuteTransaction(ExecuteTransaction::parse(req)?),
            "DescribeLimits" => Operation::DescribeLimits(DescribeLimits::parse()),
            "DescribeEndpoints" => Operation::DescribeEndpoints(DescribeEndpoints::parse()),
            "DescribeContinuousBackups" => {
                Operation::DescribeContinuousBackups(DescribeContinuousBackups::parse(req)?)
            }
            "PutResourcePolicy" => Operation::PutResourcePolicy(PutResourcePolicy::parse(req)?),
            "GetResourcePolicy" => Operation::GetResourcePolicy(GetResourcePolicy::parse(req)?),
            "DeleteResourcePolicy" => {
                Operation::DeleteResourcePolicy(DeleteResourcePolicy::parse(req)?)
            }
            "UpdateContinuousBackups" => {
                Operation::UpdateContinuousBackups(UpdateContinuousBackups::parse(req)?)
            }
            "DescribeContributorInsights" => {
                Operation::DescribeContributorInsights(DescribeContributorInsights::parse(req)?)
            }
            "UpdateContributorInsights" => {
                Operation::UpdateContributorInsights(UpdateContributorInsights::parse(req)?)
            }
            "ListContributorInsights" => {
                Operation::ListContributorInsights(ListContributorInsights::parse(req)?)
            }
            "CreateBackup" => Operation::CreateBackup(CreateBackup::parse(req)?),
            "DescribeBackup" => Operation::DescribeBackup(DescribeBackup::parse(req)?),
            "DeleteBackup" => Operation::DeleteBackup(DeleteBackup::parse(req)?),
            "ListBackups" => Operation::ListBackups(ListBackups::parse(req)?),
            "RestoreTableFromBackup" => {
                Operation::RestoreTableFromBackup(RestoreTableFromBackup::parse(req)?)
            }
            "RestoreTableToPointInTime" => {
                Operation::RestoreTableToPointInTime(RestoreTableToPointInTime::parse(req)?)
            }
            "DescribeKinesisStreamingDestination" => {
                Operation::DescribeKinesisStreamingDestination(
                    DescribeKinesisStreamingDestination::parse(req)?,
                )
            }
            "ExportTableToPointInTime" => {
                Operation::ExportTableToPointInTime(ExportTableToPointInTime::parse(req)?)
            }
            "ImportTable" => Operation::ImportTable(ImportTable::parse(req)?),
            "ListExports" => Operation::ListExports(ListExports::parse(req)?),
            "DescribeExport" => Operation::DescribeExport(DescribeExport::parse(req)?),
            "ListImports" => Operation::ListImports(ListImports::parse(req)?),
            "DescribeImport" => Operation::DescribeImport(DescribeImport::parse(req)?),
            "ListGlobalTables" => Operation::ListGlobalTables(ListGlobalTables::parse()),
            "DescribeGlobalTable" => {
                Operation::DescribeGlobalTable(DescribeGlobalTable::parse(req)?)
            }
            "DescribeGlobalTableSettings" => {
                Operation::DescribeGlobalTableSettings(DescribeGlobalTableSettings::parse(req)?)
            }
            other => Operation::Unknown(Unknown::parse(other)),
        })
    }

    /// Carry the operation out. The answer may be sent once the ticket resolves (reads
    /// answer with a ticket that is ready).
    fn apply(self, engine: &TableEngine) -> Result<(Answer, Ticket), DdbError> {
        let tree = |r: Result<(Value, Ticket), DdbError>| r.map(|(v, t)| (Answer::Tree(v), t));
        match self {
            Operation::CreateTable(o) => tree(o.apply(engine)),
            Operation::DescribeTable(o) => tree(o.apply(engine)),
            Operation::ListTables(o) => tree(o.apply(engine)),
            Operation::DeleteTable(o) => tree(o.apply(engine)),
            Operation::UpdateTable(o) => tree(o.apply(engine)),
            Operation::TagResource(o) => tree(o.apply(engine)),
            Operation::UntagResource(o) => tree(o.apply(engine)),
            Operation::ListTagsOfResource(o) => tree(o.apply(engine)),
            Operation::DescribeTimeToLive(o) => tree(o.apply(engine)),
            Operation::UpdateTimeToLive(o) => tree(o.apply(engine)),
            Operation::PutItem(o) => tree(o.apply(engine)),
            Operation::GetItem(o) => o.apply(engine),
            Operation::DeleteItem(o) => tree(o.apply(engine)),
            Operation::UpdateItem(o) => tree(o.apply(engine)),
            Operation::Query(o) => tree(o.apply(engine)),
            Operation::Scan(o) => tree(o.apply(engine)),
            Operation::BatchWriteItem(o) => tree(o.apply(engine)),
            Operation::BatchGetItem(o) => tree(o.apply(engine)),
            Operation::TransactWriteItems(o) => tree(o.apply(engine)),
            Operation::TransactGetItems(o) => tree(o.apply(engine)),
            Operation::ExecuteStatement(o) => tree(o.apply(engine)),
            Operation::BatchExecuteStatement(o) => tree(o.apply(engine)),
            Operation::ExecuteTransaction(o) => tree(o.apply(engine)),
            Operation::DescribeLimits(o) => tree(o.apply()),
            Operation::DescribeEndpoints(o) => tree(o.apply()),
            Operation::DescribeContinuousBackups(o) => tree(o.apply(engine)),
            Operation::PutResourcePolicy(o) => tree(o.apply(engine)),
            Operation::GetResourcePolicy(o) => tree(o.apply(engine)),
            Operation::DeleteResourcePolicy(o) => tree(o.apply(engine)),
            Operation::UpdateContinuousBackups(o) => tree(o.apply(engine)),
            Operation::DescribeContributorInsights(o) => tree(o.apply(engine)),
            Operation::UpdateContributorInsights(o) => tree(o.apply(engine)),
            Operation::ListContributorInsights(o) => tree(o.apply(engine)),
            Operation::CreateBackup(o) => tree(o.apply(engine)),
            Operation::DescribeBackup(o) => tree(o.apply(engine)),
            Operation::DeleteBackup(o) => tree(o.apply(engine)),
            Operation::ListBackups(o) => tree(o.apply(engine)),
            Operation::RestoreTableFromBackup(o) => tree(o.apply(engine)),
            Operation::RestoreTableToPointInTime(o) => tree(o.apply(engine)),
            Operation::DescribeKinesisStreamingDestination(o) => tree(o.apply(engine)),
            Operation::ExportTableToPointInTime(o) => tree(o.apply(engine)),
            Operation::ImportTable(o) => tree(o.apply(engine)),
            Operation::ListExports(o) => tree(o.apply(engine)),
            Operation::DescribeExport(o) => tree(o.apply(engine)),
            Operation::ListImports(o) => tree(o.apply(engine)),
            Operation::DescribeImport(o) => tree(o.apply(engine)),
            Operation::ListGlobalTables(o) => tree(Ok(o.apply())),
            Operation::DescribeGlobalTable(o) => Err(o.apply()),
            Operation::DescribeGlobalTableSettings(o) => Err(o.apply()),
            Operation::Unknown(o) => Err(o.apply()),
        }
    }
}

/// Parse, then apply, the operation called `name`.
pub(super) fn execute(
    engine: &TableEngine,
    name: &str,
    req: &Value,
) -> Result<(Answer, Ticket), DdbError> {
    Operation::parse(name, req)?.apply(engine)
}

/// Apply a request read the plain way ([`super::typed`]): the same typed request its `Value`
/// reading makes, applied the same way.
pub(super) fn execute_plain(
    engine: &TableEngine,
    plain: super::typed::Plain,
) -> Result<(Answer, Ticket), DdbError> {
    use super::typed::Plain;
    match plain {
        Plain::PutItem { table, item } => {
            Operation::PutItem(PutItem::plain(table.into_owned(), item)?).apply(engine)
        }
        Plain::GetItem {
            table,
            key,
            consistent,
        } => Operation::GetItem(GetItem::plain(&table, key, consistent)).apply(engine),
    }
}

/// The `TransactItems` list of TransactWriteItems and TransactGetItems: 1 to 100 entries, with
/// DynamoDB's messages (an empty list is shown as `[]`; a long one is not spelled out).
fn transact_items(req: &Value) -> Result<&Vec<Value>, DdbError> {
    let list = req
        .get("TransactItems")
        .and_then(|v| v.as_array())
        .ok_or_else(|| super::req::not_null("TransactItems"))?;
    let violated = if list.is_empty() {
        "Value '[]' at 'transactItems' failed to satisfy constraint: Member must have length greater than or equal to 1"
    } else if list.len() > 100 {
        "Value '[...]' at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100"
    } else {
        return Ok(list);
    };
    Err(super::req::vmsg(vec![violated.into()]))
}
