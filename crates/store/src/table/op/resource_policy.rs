//! What the resource-based policy operations share: the table or stream an ARN names and
//! DynamoDB's words for a missing policy or revision.

use super::super::admin::{not_found_table, table_from_arn};
use super::super::meta::ResourcePolicy;
use super::super::streams::Stream;
use super::super::{DdbError, ErrorCode, TableEngine, Tables};
use crate::journal::Record;

/// DynamoDB's limit on a resource-based policy document.
const MAX_POLICY_BYTES: usize = 20 * 1024;

/// What a resource-based policy is attached to: a table, or one of its streams (the latest or
/// an earlier one still readable).
pub(super) enum PolicyTarget<'g> {
    Table(&'g mut super::super::engine::Table),
    Stream(&'g mut Stream),
}

impl PolicyTarget<'_> {
    /// The target `arn` names: `arn:aws:dynamodb:REGION:ACCOUNT:table/NAME`, or that followed
    /// by `/stream/LABEL`.
    pub(super) fn find<'g>(g: &'g mut Tables, arn: &str) -> Result<PolicyTarget<'g>, DdbError> {
        let name = table_from_arn(arn)?;
        if arn.contains("/stream/") {
            return g.stream_mut(arn).map(PolicyTarget::Stream);
        }
        match g.by_name.get_mut(name) {
            Some(t) if super::super::meta::table_arn(&t.meta.name) == arn && t.usable() => {
                Ok(PolicyTarget::Table(t))
            }
            _ => Err(not_found_table(name)),
        }
    }

    pub(super) fn policy(&self) -> Option<&ResourcePolicy> {
        match self {
            PolicyTarget::Table(t) => t.meta.policy.as_ref(),
            PolicyTarget::Stream(s) => s.meta.policy.as_ref(),
        }
    }

    /// How DynamoDB's messages name the target: `table NAME`, or `stream ARN` (kedge's words).
    pub(super) fn named(&self) -> String {
        match self {
            PolicyTarget::Table(t) => format!("table {}", t.meta.name),
            PolicyTarget::Stream(s) => format!("stream {}", s.meta.arn),
        }
    }

    /// Attach `policy` (or none), returning the journal record of the change.
    pub(super) fn set(&mut self, policy: Option<ResourcePolicy>) -> Record {
        match self {
            PolicyTarget::Table(t) => {
                t.meta.policy = policy;
                TableEngine::table_record(&t.meta)
            }
            PolicyTarget::Stream(s) => {
                s.meta.policy = policy;
                s.meta_record()
            }
        }
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

/// `named`: the target as [`PolicyTarget::named`] names it.
pub(super) fn revision_mismatch(expected: &str, named: &str, current: &str) -> DdbError {
    DdbError::new(
        ErrorCode::PolicyNotFound,
        format!(
            "Resource-based policy not found for the provided ResourceArn: Requested update for policy with revision id {expected}, but the policy associated to target {named} has revision id {current}."
        ),
    )
}
