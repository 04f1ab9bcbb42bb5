//! What the resource-based policy operations share: the table an ARN names and DynamoDB's
//! words for a missing policy or revision.

use super::super::admin::{not_found_table, table_from_arn};
use super::super::engine::Table;
use super::super::{DdbError, ErrorCode, Tables};

/// DynamoDB's limit on a resource-based policy document.
const MAX_POLICY_BYTES: usize = 20 * 1024;

/// The table `arn` (`arn:aws:dynamodb:REGION:ACCOUNT:table/NAME`) names.
pub(super) fn policy_table<'g>(g: &'g mut Tables, arn: &str) -> Result<&'g mut Table, DdbError> {
    let name = table_from_arn(arn)?;
    match g.by_name.get_mut(name) {
        Some(t) if super::super::meta::table_arn(&t.meta.name) == arn && t.usable() => Ok(t),
        _ => Err(not_found_table(name)),
    }
}

/// A policy document DynamoDB would take: a JSON object of at most 20 KB.
pub(super) fn check_document(policy: &str) -> Result<(), DdbError> {
    if policy.len() > MAX_POLICY_BYTES {
        return Err(DdbError::validation(format!(
            "1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length less than or equal to {MAX_POLICY_BYTES}"
        )));
    }
    if !serde_json::from_str::<serde_json::Value>(policy).is_ok_and(|v| v.is_object()) {
        return Err(DdbError::validation(
            "Invalid policy document: the policy must be a JSON object",
        ));
    }
    Ok(())
}

pub(super) fn no_policy(arn: &str) -> DdbError {
    DdbError::new(
        ErrorCode::PolicyNotFound,
        format!("Resource-based policy not found for the provided ResourceArn: {arn}"),
    )
}

pub(super) fn revision_mismatch(expected: &str, table: &str, current: &str) -> DdbError {
    DdbError::new(
        ErrorCode::PolicyNotFound,
        format!(
            "Resource-based policy not found for the provided ResourceArn: Requested update for policy with revision id {expected}, but the policy associated to target table {table} has revision id {current}."
        ),
    )
}
