//! `DescribeLimits`: AWS's default quotas for an account and a table in a region. The
//! request has no members.

use serde_json::Value;

use super::super::{DdbError, ready};
use crate::journal::Ticket;

pub(super) struct DescribeLimits;

impl DescribeLimits {
    pub(super) fn parse() -> Self {
        DescribeLimits
    }

    pub(super) fn apply(self) -> Result<(Value, Ticket), DdbError> {
        Ok(ready(serde_json::json!({
            "AccountMaxReadCapacityUnits": 80000,
            "AccountMaxWriteCapacityUnits": 80000,
            "TableMaxReadCapacityUnits": 40000,
            "TableMaxWriteCapacityUnits": 40000
        })))
    }
}
