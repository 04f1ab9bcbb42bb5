//! The errors a DynamoDB request can end in, carrying AWS's error code so the gateway can
//! answer in the wire format SDKs map to their typed exceptions.

use serde_json::Value;

use crate::StoreError;

/// AWS's error codes for DynamoDB (the `__type` suffix on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Validation,
    Serialization,
    ResourceNotFound,
    /// DescribeContinuousBackups (and the backup operations) of a table that does not exist.
    TableNotFound,
    ResourceInUse,
    ConditionalCheckFailed,
    TransactionCanceled,
    /// A transaction's `ClientRequestToken` reused with other parameters.
    IdempotentParameterMismatch,
    /// A PartiQL INSERT of a key that exists.
    DuplicateItem,
    ItemCollectionSizeLimitExceeded,
    LimitExceeded,
    UnknownOperation,
    AccessDenied,
    InternalServerError,
    /// DynamoDB Streams: a shard iterator older than 15 minutes.
    ExpiredIterator,
    /// DynamoDB Streams: a position whose records were trimmed.
    TrimmedDataAccess,
    /// A resource-based policy that is not there (or not at the expected revision).
    PolicyNotFound,
    /// A backup ARN that names no backup.
    BackupNotFound,
    /// A restore whose target table exists.
    TableAlreadyExists,
    /// A point-in-time restore of a table that does not exist.
    SourceTableNotFound,
    /// A point-in-time restore of a table whose recovery is off.
    PointInTimeRecoveryUnavailable,
    /// A point-in-time restore to a time outside the recovery window.
    InvalidRestoreTime,
    /// An export ARN that names no export.
    ExportNotFound,
    /// An export time outside the table's point-in-time recovery window.
    InvalidExportTime,
    /// An export's client token reused with other parameters.
    ExportConflict,
    /// An import's client token reused with other parameters.
    ImportConflict,
    /// An import ARN that names no import.
    ImportNotFound,
    /// A global table (version 2017.11.29) that does not exist.
    GlobalTableNotFound,
}

impl ErrorCode {
    /// The full `__type` DynamoDB sends (coral namespaces for the protocol-level ones).
    pub fn wire_type(self) -> &'static str {
        match self {
            ErrorCode::Validation => "com.amazon.coral.validate#ValidationException",
            ErrorCode::Serialization => "com.amazon.coral.service#SerializationException",
            ErrorCode::UnknownOperation => "com.amazon.coral.service#UnknownOperationException",
            ErrorCode::AccessDenied => "com.amazon.coral.service#AccessDeniedException",
            ErrorCode::ResourceNotFound => {
                "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"
            }
            ErrorCode::TableNotFound => "com.amazonaws.dynamodb.v20120810#TableNotFoundException",
            ErrorCode::ResourceInUse => "com.amazonaws.dynamodb.v20120810#ResourceInUseException",
            ErrorCode::ConditionalCheckFailed => {
                "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
            }
            ErrorCode::TransactionCanceled => {
                "com.amazonaws.dynamodb.v20120810#TransactionCanceledException"
            }
            ErrorCode::IdempotentParameterMismatch => {
                "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException"
            }
            ErrorCode::DuplicateItem => "com.amazonaws.dynamodb.v20120810#DuplicateItemException",
            ErrorCode::ItemCollectionSizeLimitExceeded => {
                "com.amazonaws.dynamodb.v20120810#ItemCollectionSizeLimitExceededException"
            }
            ErrorCode::LimitExceeded => "com.amazonaws.dynamodb.v20120810#LimitExceededException",
            ErrorCode::InternalServerError => {
                "com.amazonaws.dynamodb.v20120810#InternalServerError"
            }
            ErrorCode::ExpiredIterator => {
                "com.amazonaws.dynamodb.v20120810#ExpiredIteratorException"
            }
            ErrorCode::TrimmedDataAccess => {
                "com.amazonaws.dynamodb.v20120810#TrimmedDataAccessException"
            }
            ErrorCode::PolicyNotFound => "com.amazonaws.dynamodb.v20120810#PolicyNotFoundException",
            ErrorCode::BackupNotFound => "com.amazonaws.dynamodb.v20120810#BackupNotFoundException",
            ErrorCode::TableAlreadyExists => {
                "com.amazonaws.dynamodb.v20120810#TableAlreadyExistsException"
            }
            ErrorCode::SourceTableNotFound => {
                "com.amazonaws.dynamodb.v20120810#SourceTableNotFoundException"
            }
            ErrorCode::PointInTimeRecoveryUnavailable => {
                "com.amazonaws.dynamodb.v20120810#PointInTimeRecoveryUnavailableException"
            }
            ErrorCode::InvalidRestoreTime => {
                "com.amazonaws.dynamodb.v20120810#InvalidRestoreTimeException"
            }
            ErrorCode::ExportNotFound => "com.amazonaws.dynamodb.v20120810#ExportNotFoundException",
            ErrorCode::InvalidExportTime => {
                "com.amazonaws.dynamodb.v20120810#InvalidExportTimeException"
            }
            ErrorCode::ExportConflict => "com.amazonaws.dynamodb.v20120810#ExportConflictException",
            ErrorCode::ImportConflict => "com.amazonaws.dynamodb.v20120810#ImportConflictException",
            ErrorCode::ImportNotFound => "com.amazonaws.dynamodb.v20120810#ImportNotFoundException",
            ErrorCode::GlobalTableNotFound => {
                "com.amazonaws.dynamodb.v20120810#GlobalTableNotFoundException"
            }
        }
    }

    /// HTTP status: 400 for client errors, 500 for ours.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InternalServerError => 500,
            _ => 400,
        }
    }
}

/// A failed DynamoDB request.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct DdbError {
    pub code: ErrorCode,
    pub message: String,
    /// Extra top-level fields of the error body (CancellationReasons, Item).
    pub extra: Option<serde_json::Map<String, Value>>,
}

impl DdbError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        DdbError {
            code,
            message: message.into(),
            extra: None,
        }
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Validation, message)
    }
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Serialization, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceNotFound, message)
    }
    pub fn table_not_found() -> Self {
        Self::not_found("Requested resource not found")
    }
    pub fn in_use(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceInUse, message)
    }
    pub fn conditional_failed() -> Self {
        Self::new(
            ErrorCode::ConditionalCheckFailed,
            "The conditional request failed",
        )
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalServerError, message)
    }

    /// The JSON error body.
    pub fn body(&self) -> Value {
        let mut m = self.extra.clone().unwrap_or_default();
        m.insert("__type".into(), Value::String(self.code.wire_type().into()));
        // DynamoDB spells it `Message` in SerializationExceptions and leaves it out when
        // there is nothing to say (an unknown operation, a body that is not JSON).
        if !self.message.is_empty() {
            let key = if matches!(
                self.code,
                ErrorCode::Serialization | ErrorCode::AccessDenied
            ) {
                "Message"
            } else {
                "message"
            };
            m.insert(key.into(), Value::String(self.message.clone()));
        }
        Value::Object(m)
    }
}

impl From<StoreError> for DdbError {
    fn from(e: StoreError) -> Self {
        DdbError::internal(e.to_string())
    }
}
