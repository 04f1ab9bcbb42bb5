//! `DescribeGlobalTable`: a global table (version 2017.11.29). kedge makes none (see
//! `list_global_tables.rs`), so every name is `GlobalTableNotFoundException`, also the name of
//! a table that exists (a table is not a global table).

use serde_json::Value;

use super::super::req::req_str;
use super::super::{DdbError, ErrorCode};

pub(super) struct DescribeGlobalTable<'a> {
    name: &'a str,
}

impl<'a> DescribeGlobalTable<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(DescribeGlobalTable {
            name: req_str(req, "GlobalTableName")?,
        })
    }

    pub(super) fn apply(self) -> DdbError {
        global_table_not_found(self.name)
    }
}

/// The answer for a global table that does not exist.
pub(super) fn global_table_not_found(name: &str) -> DdbError {
    DdbError::new(
        ErrorCode::GlobalTableNotFound,
        format!("Global table not found: {name}"),
    )
}
