//! SQS errors: the codes AWS returns, with their HTTP status and the legacy query-protocol code
//! that current SDKs read from the `x-amzn-query-error` header.

/// Every error the queue engine and the SQS endpoint can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqsErrorKind {
    QueueDoesNotExist,
    QueueNameExists,
    QueueDeletedRecently,
    InvalidAttributeName,
    InvalidAttributeValue,
    InvalidParameterValue,
    MissingParameter,
    InvalidMessageContents,
    MessageNotInflight,
    ReceiptHandleIsInvalid,
    TooManyEntriesInBatchRequest,
    BatchEntryIdsNotDistinct,
    EmptyBatchRequest,
    InvalidBatchEntryId,
    BatchRequestTooLong,
    PurgeQueueInProgress,
    UnsupportedOperation,
    OverLimit,
    ResourceNotFound,
    InvalidAction,
    InvalidAddress,
    InvalidClientTokenId,
    SignatureDoesNotMatch,
    MissingAuthenticationToken,
    IncompleteSignature,
    InternalFailure,
    ServiceUnavailable,
}

impl SqsErrorKind {
    /// The error shape name used in the JSON protocol's `__type`.
    pub fn shape(self) -> &'static str {
        use SqsErrorKind::*;
        match self {
            QueueDoesNotExist => "QueueDoesNotExist",
            QueueNameExists => "QueueNameExists",
            QueueDeletedRecently => "QueueDeletedRecently",
            InvalidAttributeName => "InvalidAttributeName",
            InvalidAttributeValue => "InvalidAttributeValue",
            // AWS's JSON answers name these two shapes differently from their query codes
            // (recorded AWS answers: `InvalidParameterValueException`,
            // `MissingRequiredParameterException`).
            InvalidParameterValue => "InvalidParameterValueException",
            MissingParameter => "MissingRequiredParameterException",
            InvalidMessageContents => "InvalidMessageContents",
            MessageNotInflight => "MessageNotInflight",
            ReceiptHandleIsInvalid => "ReceiptHandleIsInvalid",
            TooManyEntriesInBatchRequest => "TooManyEntriesInBatchRequest",
            BatchEntryIdsNotDistinct => "BatchEntryIdsNotDistinct",
            EmptyBatchRequest => "EmptyBatchRequest",
            InvalidBatchEntryId => "InvalidBatchEntryId",
            BatchRequestTooLong => "BatchRequestTooLong",
            PurgeQueueInProgress => "PurgeQueueInProgress",
            UnsupportedOperation => "UnsupportedOperation",
            OverLimit => "OverLimit",
            ResourceNotFound => "ResourceNotFoundException",
            InvalidAction => "InvalidAction",
            InvalidAddress => "InvalidAddress",
            InvalidClientTokenId => "InvalidClientTokenId",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            MissingAuthenticationToken => "MissingAuthenticationToken",
            IncompleteSignature => "IncompleteSignature",
            InternalFailure => "InternalFailure",
            ServiceUnavailable => "ServiceUnavailable",
        }
    }

    /// The code of the query protocol (`<Code>` in XML, `x-amzn-query-error` in JSON).
    pub fn query_code(self) -> &'static str {
        use SqsErrorKind::*;
        match self {
            QueueDoesNotExist => "AWS.SimpleQueueService.NonExistentQueue",
            QueueNameExists => "QueueAlreadyExists",
            InvalidParameterValue => "InvalidParameterValue",
            MissingParameter => "MissingParameter",
            QueueDeletedRecently => "AWS.SimpleQueueService.QueueDeletedRecently",
            MessageNotInflight => "AWS.SimpleQueueService.MessageNotInflight",
            TooManyEntriesInBatchRequest => "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            BatchEntryIdsNotDistinct => "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
            EmptyBatchRequest => "AWS.SimpleQueueService.EmptyBatchRequest",
            InvalidBatchEntryId => "AWS.SimpleQueueService.InvalidBatchEntryId",
            BatchRequestTooLong => "AWS.SimpleQueueService.BatchRequestTooLong",
            PurgeQueueInProgress => "AWS.SimpleQueueService.PurgeQueueInProgress",
            UnsupportedOperation => "AWS.SimpleQueueService.UnsupportedOperation",
            ResourceNotFound => "ResourceNotFoundException",
            other => other.shape(),
        }
    }

    pub fn status(self) -> u16 {
        use SqsErrorKind::*;
        match self {
            // AWS documents these two as 403 as well: SDKs that branch on the status see it.
            InvalidClientTokenId
            | SignatureDoesNotMatch
            | MissingAuthenticationToken
            | PurgeQueueInProgress
            | OverLimit => 403,
            ResourceNotFound => 404,
            InternalFailure => 500,
            ServiceUnavailable => 503,
            _ => 400,
        }
    }

    /// "Sender" or "Receiver": whose fault it was, as the query protocol reports it.
    pub fn fault(self) -> &'static str {
        match self.status() {
            500.. => "Receiver",
            _ => "Sender",
        }
    }
}

/// An SQS error with its AWS-style message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.shape())]
pub struct SqsError {
    pub kind: SqsErrorKind,
    pub message: String,
}

impl SqsError {
    pub fn new(kind: SqsErrorKind, message: impl Into<String>) -> Self {
        SqsError {
            kind,
            message: message.into(),
        }
    }

    pub fn no_queue() -> Self {
        Self::new(
            SqsErrorKind::QueueDoesNotExist,
            "The specified queue does not exist.",
        )
    }

    pub fn invalid_param(message: impl Into<String>) -> Self {
        Self::new(SqsErrorKind::InvalidParameterValue, message)
    }

    /// AWS's wording for an out-of-range or malformed parameter.
    pub fn bad_value(param: &str, value: impl std::fmt::Display, reason: &str) -> Self {
        Self::invalid_param(format!(
            "Value {value} for parameter {param} is invalid. Reason: {reason}"
        ))
    }

    pub fn missing(param: &str) -> Self {
        Self::new(
            SqsErrorKind::MissingParameter,
            format!("The request must contain the parameter {param}."),
        )
    }
}

impl From<crate::StoreError> for SqsError {
    fn from(e: crate::StoreError) -> Self {
        SqsError::new(SqsErrorKind::ServiceUnavailable, e.to_string())
    }
}
