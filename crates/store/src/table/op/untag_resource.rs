//! `UntagResource`: remove tags from a table.
//!
//! Still reads the wire JSON: the struct holds the validated request and `apply` calls the
//! engine method in `admin.rs` that reads it. Typed request: to do.

use serde_json::Value;

use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct UntagResource<'a> {
    req: &'a Value,
}

impl<'a> UntagResource<'a> {
    pub(super) fn parse(req: &'a Value) -> Self {
        UntagResource { req }
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.untag_resource(self.req)
    }
}
