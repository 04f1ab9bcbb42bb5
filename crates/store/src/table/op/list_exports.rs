//! `ListExports`: the exports of the last 90 days (see `transfer.rs`), of one table when
//! `TableArn` is given, newest ARN first, `MaxResults` (1–25, 25 when not given) a page.

use serde_json::Value;

use super::super::req::{opt_i64, opt_str};
use super::super::{DdbError, TableEngine, ready};
use crate::journal::Ticket;

pub(super) struct ListExports<'a> {
    table_arn: Option<&'a str>,
    limit: usize,
    next: Option<&'a str>,
}

impl<'a> ListExports<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(ListExports {
            table_arn: opt_str(req, "TableArn"),
            // The range was checked with the request's other constraints.
            limit: opt_i64(req, "MaxResults")?.map_or(25, |n| n as usize),
            next: opt_str(req, "NextToken"),
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine
            .list_transfers_answer(true, self.table_arn, self.limit, self.next)
            .map(ready)
    }
}
