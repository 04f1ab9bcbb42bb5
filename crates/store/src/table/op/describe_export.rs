//! `DescribeExport`: an export (see `transfer.rs`) by ARN; an ARN that names none is
//! `ExportNotFoundException`.

use serde_json::Value;

use super::super::req::req_str;
use super::super::{DdbError, TableEngine, ready};
use crate::journal::Ticket;

pub(super) struct DescribeExport<'a> {
    arn: &'a str,
}

impl<'a> DescribeExport<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(DescribeExport {
            arn: req_str(req, "ExportArn")?,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.describe_transfer(self.arn, true).map(ready)
    }
}
