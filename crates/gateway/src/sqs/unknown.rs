//! An action this endpoint does not implement: answered with SQS's `InvalidAction`.

use store::queue::{SqsError, SqsErrorKind};

pub(super) struct Unknown {
    name: String,
}

impl Unknown {
    pub(super) fn parse(name: &str) -> Self {
        Unknown {
            name: name.to_owned(),
        }
    }

    pub(super) fn apply(self) -> SqsError {
        SqsError::new(
            SqsErrorKind::InvalidAction,
            format!("The action {} is not valid for this endpoint.", self.name),
        )
    }
}
