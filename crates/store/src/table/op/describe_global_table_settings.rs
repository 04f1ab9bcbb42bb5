//! `DescribeGlobalTableSettings`: the Region-specific settings of a global table (version
//! 2017.11.29). kedge makes none, so every name is `GlobalTableNotFoundException`.

use serde_json::Value;

use super::super::DdbError;
use super::super::req::req_str;
use super::describe_global_table::global_table_not_found;

pub(super) struct DescribeGlobalTableSettings<'a> {
    name: &'a str,
}

impl<'a> DescribeGlobalTableSettings<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(DescribeGlobalTableSettings {
            name: req_str(req, "GlobalTableName")?,
        })
    }

    pub(super) fn apply(self) -> DdbError {
        global_table_not_found(self.name)
    }
}
