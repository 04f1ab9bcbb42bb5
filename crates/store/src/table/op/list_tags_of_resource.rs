//! `ListTagsOfResource`: list a table's tags.
//!
//! Still reads the wire JSON: the struct holds the validated request and `apply` calls the
//! engine method in `admin.rs` that reads it. Typed request: to do.

use serde_json::Value;

use super::super::{DdbError, TableEngine, ready};
use crate::journal::Ticket;

pub(super) struct ListTagsOfResource<'a> {
    req: &'a Value,
}

impl<'a> ListTagsOfResource<'a> {
    pub(super) fn parse(req: &'a Value) -> Self {
        ListTagsOfResource { req }
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.list_tags(self.req).map(ready)
    }
}
