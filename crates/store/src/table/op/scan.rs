//! `Scan`: every item of the table or an index (or of one segment of it), a page at a time.

use serde_json::Value;

use super::super::query::{ReadParams, parse_read};
use super::super::{DdbError, TableEngine, ready};
use crate::journal::Ticket;

pub(super) struct Scan {
    params: ReadParams,
}

impl Scan {
    pub(super) fn parse(req: &Value) -> Result<Self, DdbError> {
        Ok(Scan {
            params: parse_read(req, false)?,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.run_scan(&self.params).map(ready)
    }
}
