//! `DescribeImport`: an import from Amazon S3. kedge makes none (see `list_imports.rs`), so
//! every ARN is `ImportNotFoundException`.

use serde_json::Value;

use super::super::req::req_str;
use super::super::{DdbError, ErrorCode};

pub(super) struct DescribeImport<'a> {
    arn: &'a str,
}

impl<'a> DescribeImport<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(DescribeImport {
            arn: req_str(req, "ImportArn")?,
        })
    }

    pub(super) fn apply(self) -> DdbError {
        DdbError::new(
            ErrorCode::ImportNotFound,
            format!("Import not found: {}", self.arn),
        )
    }
}
