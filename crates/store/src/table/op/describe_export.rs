//! `DescribeExport`: an export to Amazon S3. kedge makes none (see `list_exports.rs`), so
//! every ARN is `ExportNotFoundException`.

use serde_json::Value;

use super::super::req::req_str;
use super::super::{DdbError, ErrorCode};

pub(super) struct DescribeExport<'a> {
    arn: &'a str,
}

impl<'a> DescribeExport<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(DescribeExport {
            arn: req_str(req, "ExportArn")?,
        })
    }

    pub(super) fn apply(self) -> DdbError {
        DdbError::new(
            ErrorCode::ExportNotFound,
            format!("Export not found: {}", self.arn),
        )
    }
}
