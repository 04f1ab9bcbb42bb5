//! `UpdateTimeToLive`: turn a table's TTL on or off.
//!
//! Still reads the wire JSON: the struct holds the validated request and `apply` calls the
//! engine method in `admin.rs` that reads it. Typed request: to do.

use serde_json::Value;

use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct UpdateTimeToLive<'a> {
    req: &'a Value,
}

impl<'a> UpdateTimeToLive<'a> {
    pub(super) fn parse(req: &'a Value) -> Self {
        UpdateTimeToLive { req }
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.update_ttl(self.req)
    }
}
