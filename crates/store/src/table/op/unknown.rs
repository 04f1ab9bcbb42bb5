//! An operation the engine does not implement: answered with `UnknownOperationException`.

use super::super::{DdbError, ErrorCode};

pub(super) struct Unknown<'a> {
    name: &'a str,
}

impl<'a> Unknown<'a> {
    pub(super) fn parse(name: &'a str) -> Self {
        Unknown { name }
    }

    pub(super) fn apply(self) -> DdbError {
        DdbError::new(
            ErrorCode::UnknownOperation,
            format!("An unknown operation was requested: {}", self.name),
        )
    }
}
