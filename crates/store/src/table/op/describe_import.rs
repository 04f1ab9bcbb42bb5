//! `DescribeImport`: an import (see `transfer.rs`) by ARN; an ARN that names none is
//! `ImportNotFoundException`.

use serde_json::Value;

use super::super::req::req_str;
use super::super::{DdbError, TableEngine, ready};
use crate::journal::Ticket;

pub(super) struct DescribeImport<'a> {
    arn: &'a str,
}

impl<'a> DescribeImport<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(DescribeImport {
            arn: req_str(req, "ImportArn")?,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.describe_transfer(self.arn, false).map(ready)
    }
}
