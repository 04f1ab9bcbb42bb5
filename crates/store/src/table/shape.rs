//! The type check DynamoDB's request framework (Coral) runs before any validation: every
//! known member of a request must have its modelled JSON type, or the request fails with a
//! `SerializationException` whose message names what the deserializer saw (`TRUE_VALUE
//! cannot be converted to String`, `Unexpected field type`, ...). Unknown members are
//! ignored and `null` counts as absent, as DynamoDB does.
//!
//! The messages depend on where a value sits: a struct member that is not an object is an
//! "Unexpected field type", a list element or map value that should be a struct is an
//! "Unexpected value type in payload", and a list or map nested directly in another list or
//! map is a Java generic whose cast fails. These are DynamoDB's own answers (dynalite's
//! serialization tests, which were recorded against DynamoDB).

use serde_json::Value;

use super::error::DdbError;

/// The modelled type of one request member.
#[derive(Debug)]
pub enum Shape {
    Str,
    Bool,
    Int,
    Long,
    Blob,
    List(&'static Shape),
    /// A map with string keys; the first field is the Java type of its values (used in
    /// the message for a list sent instead).
    Map(&'static str, &'static Shape),
    /// A structure: its name and its members.
    Struct(&'static str, &'static [(&'static str, Shape)]),
    /// An AttributeValue (a recursive structure).
    Attr,
}

use Shape::*;

const NS: &str = "com.amazonaws.dynamodb.v20120810.";

static ATTR_FIELDS: &[(&str, Shape)] = &[
    ("S", Str),
    ("N", Str),
    ("B", Blob),
    ("BOOL", Bool),
    ("NULL", Bool),
    ("SS", List(&Str)),
    ("NS", List(&Str)),
    ("BS", List(&Blob)),
    ("L", List(&Attr)),
    (
        "M",
        Map("com.amazonaws.dynamodb.v20120810.AttributeValue", &Attr),
    ),
];

const ATTR_MAP: Shape = Map("com.amazonaws.dynamodb.v20120810.AttributeValue", &Attr);
const NAMES: Shape = Map("java.lang.String", &Str);
const THROUGHPUT: Shape = Struct(
    "ProvisionedThroughput",
    &[("ReadCapacityUnits", Long), ("WriteCapacityUnits", Long)],
);
const KEY_SCHEMA: Shape = List(&Struct(
    "KeySchemaElement",
    &[("AttributeName", Str), ("KeyType", Str)],
));
const PROJECTION: Shape = Struct(
    "Projection",
    &[("ProjectionType", Str), ("NonKeyAttributes", List(&Str))],
);
const EXPECTED: Shape = Map(
    "com.amazonaws.dynamodb.v20120810.ExpectedAttributeValue",
    &Struct(
        "ExpectedAttributeValue",
        &[
            ("Value", Attr),
            ("Exists", Bool),
            ("ComparisonOperator", Str),
            ("AttributeValueList", List(&Attr)),
        ],
    ),
);
const CONDITIONS: Shape = Map(
    "com.amazonaws.dynamodb.v20120810.Condition",
    &Struct(
        "Condition",
        &[
            ("ComparisonOperator", Str),
            ("AttributeValueList", List(&Attr)),
        ],
    ),
);
const TAGS: Shape = List(&Struct("Tag", &[("Key", Str), ("Value", Str)]));
const SSE: Shape = Struct(
    "SSESpecification",
    &[("Enabled", Bool), ("SSEType", Str), ("KMSMasterKeyId", Str)],
);
const WARM: Shape = Struct(
    "WarmThroughput",
    &[("ReadUnitsPerSecond", Long), ("WriteUnitsPerSecond", Long)],
);
const ON_DEMAND: Shape = Struct(
    "OnDemandThroughput",
    &[
        ("MaxReadRequestUnits", Long),
        ("MaxWriteRequestUnits", Long),
    ],
);
const STREAM_SPEC: Shape = Struct(
    "StreamSpecification",
    &[("StreamEnabled", Bool), ("StreamViewType", Str)],
);

const GET: &[(&str, Shape)] = &[
    ("TableName", Str),
    ("Key", ATTR_MAP),
    ("AttributesToGet", List(&Str)),
    ("ConsistentRead", Bool),
    ("ReturnConsumedCapacity", Str),
    ("ProjectionExpression", Str),
    ("ExpressionAttributeNames", NAMES),
];
const PUT: &[(&str, Shape)] = &[
    ("TableName", Str),
    ("Item", ATTR_MAP),
    ("Expected", EXPECTED),
    ("ConditionalOperator", Str),
    ("ReturnValues", Str),
    ("ReturnConsumedCapacity", Str),
    ("ReturnItemCollectionMetrics", Str),
    ("ConditionExpression", Str),
    ("ExpressionAttributeNames", NAMES),
    ("ExpressionAttributeValues", ATTR_MAP),
    ("ReturnValuesOnConditionCheckFailure", Str),
];
const DELETE: &[(&str, Shape)] = &[
    ("TableName", Str),
    ("Key", ATTR_MAP),
    ("Expected", EXPECTED),
    ("ConditionalOperator", Str),
    ("ReturnValues", Str),
    ("ReturnConsumedCapacity", Str),
    ("ReturnItemCollectionMetrics", Str),
    ("ConditionExpression", Str),
    ("ExpressionAttributeNames", NAMES),
    ("ExpressionAttributeValues", ATTR_MAP),
    ("ReturnValuesOnConditionCheckFailure", Str),
];
const UPDATE: &[(&str, Shape)] = &[
    ("TableName", Str),
    ("Key", ATTR_MAP),
    (
        "AttributeUpdates",
        Map(
            "com.amazonaws.dynamodb.v20120810.AttributeValueUpdate",
            &Struct("AttributeValueUpdate", &[("Value", Attr), ("Action", Str)]),
        ),
    ),
    ("Expected", EXPECTED),
    ("ConditionalOperator", Str),
    ("ReturnValues", Str),
    ("ReturnConsumedCapacity", Str),
    ("ReturnItemCollectionMetrics", Str),
    ("UpdateExpression", Str),
    ("ConditionExpression", Str),
    ("ExpressionAttributeNames", NAMES),
    ("ExpressionAttributeValues", ATTR_MAP),
    ("ReturnValuesOnConditionCheckFailure", Str),
];
const QUERY: &[(&str, Shape)] = &[
    ("TableName", Str),
    ("IndexName", Str),
    ("Select", Str),
    ("AttributesToGet", List(&Str)),
    ("Limit", Int),
    ("ConsistentRead", Bool),
    ("KeyConditions", CONDITIONS),
    ("QueryFilter", CONDITIONS),
    ("ConditionalOperator", Str),
    ("ScanIndexForward", Bool),
    ("ExclusiveStartKey", ATTR_MAP),
    ("ReturnConsumedCapacity", Str),
    ("ProjectionExpression", Str),
    ("FilterExpression", Str),
    ("KeyConditionExpression", Str),
    ("ExpressionAttributeNames", NAMES),
    ("ExpressionAttributeValues", ATTR_MAP),
];
const SCAN: &[(&str, Shape)] = &[
    ("TableName", Str),
    ("IndexName", Str),
    ("AttributesToGet", List(&Str)),
    ("Limit", Int),
    ("Select", Str),
    ("ScanFilter", CONDITIONS),
    ("ConditionalOperator", Str),
    ("ExclusiveStartKey", ATTR_MAP),
    ("ReturnConsumedCapacity", Str),
    ("TotalSegments", Int),
    ("Segment", Int),
    ("ProjectionExpression", Str),
    ("FilterExpression", Str),
    ("ExpressionAttributeNames", NAMES),
    ("ExpressionAttributeValues", ATTR_MAP),
    ("ConsistentRead", Bool),
];
const BATCH_GET: &[(&str, Shape)] = &[
    (
        "RequestItems",
        Map(
            "com.amazonaws.dynamodb.v20120810.KeysAndAttributes",
            &Struct(
                "KeysAndAttributes",
                &[
                    ("Keys", List(&ATTR_MAP)),
                    ("AttributesToGet", List(&Str)),
                    ("ConsistentRead", Bool),
                    ("ProjectionExpression", Str),
                    ("ExpressionAttributeNames", NAMES),
                ],
            ),
        ),
    ),
    ("ReturnConsumedCapacity", Str),
];
const BATCH_WRITE: &[(&str, Shape)] = &[
    (
        "RequestItems",
        Map(
            "java.util.List<com.amazonaws.dynamodb.v20120810.WriteRequest>",
            &List(&Struct(
                "WriteRequest",
                &[
                    ("PutRequest", Struct("PutRequest", &[("Item", ATTR_MAP)])),
                    (
                        "DeleteRequest",
                        Struct("DeleteRequest", &[("Key", ATTR_MAP)]),
                    ),
                ],
            )),
        ),
    ),
    ("ReturnConsumedCapacity", Str),
    ("ReturnItemCollectionMetrics", Str),
];
const INDEX_FIELDS: &[(&str, Shape)] = &[
    ("IndexName", Str),
    ("KeySchema", KEY_SCHEMA),
    ("Projection", PROJECTION),
    ("ProvisionedThroughput", THROUGHPUT),
    ("WarmThroughput", WARM),
    ("OnDemandThroughput", ON_DEMAND),
];
const CREATE_TABLE: &[(&str, Shape)] = &[
    ("TableName", Str),
    (
        "AttributeDefinitions",
        List(&Struct(
            "AttributeDefinition",
            &[("AttributeName", Str), ("AttributeType", Str)],
        )),
    ),
    ("KeySchema", KEY_SCHEMA),
    (
        "LocalSecondaryIndexes",
        List(&Struct("LocalSecondaryIndex", INDEX_FIELDS)),
    ),
    (
        "GlobalSecondaryIndexes",
        List(&Struct("GlobalSecondaryIndex", INDEX_FIELDS)),
    ),
    ("ProvisionedThroughput", THROUGHPUT),
    ("BillingMode", Str),
    ("StreamSpecification", STREAM_SPEC),
    ("SSESpecification", SSE),
    ("Tags", TAGS),
    ("TableClass", Str),
    ("DeletionProtectionEnabled", Bool),
    ("WarmThroughput", WARM),
    ("OnDemandThroughput", ON_DEMAND),
];
const UPDATE_TABLE: &[(&str, Shape)] = &[
    ("TableName", Str),
    (
        "AttributeDefinitions",
        List(&Struct(
            "AttributeDefinition",
            &[("AttributeName", Str), ("AttributeType", Str)],
        )),
    ),
    ("ProvisionedThroughput", THROUGHPUT),
    ("BillingMode", Str),
    (
        "GlobalSecondaryIndexUpdates",
        List(&Struct(
            "GlobalSecondaryIndexUpdate",
            &[
                (
                    "Update",
                    Struct(
                        "UpdateGlobalSecondaryIndexAction",
                        &[
                            ("IndexName", Str),
                            ("ProvisionedThroughput", THROUGHPUT),
                            ("OnDemandThroughput", ON_DEMAND),
                            ("WarmThroughput", WARM),
                        ],
                    ),
                ),
                (
                    "Create",
                    Struct("CreateGlobalSecondaryIndexAction", INDEX_FIELDS),
                ),
                (
                    "Delete",
                    Struct("DeleteGlobalSecondaryIndexAction", &[("IndexName", Str)]),
                ),
            ],
        )),
    ),
    ("StreamSpecification", STREAM_SPEC),
    ("SSESpecification", SSE),
    ("TableClass", Str),
    ("DeletionProtectionEnabled", Bool),
    ("WarmThroughput", WARM),
    ("OnDemandThroughput", ON_DEMAND),
];
const TABLE_ONLY: &[(&str, Shape)] = &[("TableName", Str)];
const LIST_TABLES: &[(&str, Shape)] = &[("ExclusiveStartTableName", Str), ("Limit", Int)];
const LIST_TAGS: &[(&str, Shape)] = &[("ResourceArn", Str), ("NextToken", Str)];
const TAG: &[(&str, Shape)] = &[("ResourceArn", Str), ("Tags", TAGS)];
const UNTAG: &[(&str, Shape)] = &[("ResourceArn", Str), ("TagKeys", List(&Str))];
const UPDATE_TTL: &[(&str, Shape)] = &[
    ("TableName", Str),
    (
        "TimeToLiveSpecification",
        Struct(
            "TimeToLiveSpecification",
            &[("Enabled", Bool), ("AttributeName", Str)],
        ),
    ),
];

const EXECUTE_STATEMENT: &[(&str, Shape)] = &[
    ("Statement", Str),
    ("Parameters", List(&Attr)),
    ("ConsistentRead", Bool),
    ("NextToken", Str),
    ("ReturnConsumedCapacity", Str),
    ("Limit", Int),
    ("ReturnValuesOnConditionCheckFailure", Str),
];
const BATCH_EXECUTE_STATEMENT: &[(&str, Shape)] = &[
    (
        "Statements",
        List(&Struct(
            "BatchStatementRequest",
            &[
                ("Statement", Str),
                ("Parameters", List(&Attr)),
                ("ConsistentRead", Bool),
                ("ReturnValuesOnConditionCheckFailure", Str),
            ],
        )),
    ),
    ("ReturnConsumedCapacity", Str),
];
const EXECUTE_TRANSACTION: &[(&str, Shape)] = &[
    (
        "TransactStatements",
        List(&Struct(
            "ParameterizedStatement",
            &[
                ("Statement", Str),
                ("Parameters", List(&Attr)),
                ("ReturnValuesOnConditionCheckFailure", Str),
            ],
        )),
    ),
    ("ClientRequestToken", Str),
    ("ReturnConsumedCapacity", Str),
];

/// The members of `op`'s request, for the operations whose shapes are modelled.
const LIST_STREAMS: &[(&str, Shape)] = &[
    ("TableName", Str),
    ("Limit", Int),
    ("ExclusiveStartStreamArn", Str),
];
const DESCRIBE_STREAM: &[(&str, Shape)] = &[
    ("StreamArn", Str),
    ("Limit", Int),
    ("ExclusiveStartShardId", Str),
];
const GET_SHARD_ITERATOR: &[(&str, Shape)] = &[
    ("StreamArn", Str),
    ("ShardId", Str),
    ("ShardIteratorType", Str),
    ("SequenceNumber", Str),
];
const GET_RECORDS: &[(&str, Shape)] = &[("ShardIterator", Str), ("Limit", Int)];
const DESCRIBE_INSIGHTS: &[(&str, Shape)] = &[("TableName", Str), ("IndexName", Str)];
const UPDATE_INSIGHTS: &[(&str, Shape)] = &[
    ("TableName", Str),
    ("IndexName", Str),
    ("ContributorInsightsAction", Str),
    ("ContributorInsightsMode", Str),
];
const LIST_INSIGHTS: &[(&str, Shape)] =
    &[("TableName", Str), ("NextToken", Str), ("MaxResults", Int)];
const LIST_EXPORTS: &[(&str, Shape)] =
    &[("TableArn", Str), ("MaxResults", Int), ("NextToken", Str)];
const DESCRIBE_EXPORT: &[(&str, Shape)] = &[("ExportArn", Str)];
const LIST_IMPORTS: &[(&str, Shape)] = &[("TableArn", Str), ("PageSize", Int), ("NextToken", Str)];
const DESCRIBE_IMPORT: &[(&str, Shape)] = &[("ImportArn", Str)];
const LIST_GLOBAL_TABLES: &[(&str, Shape)] = &[
    ("ExclusiveStartGlobalTableName", Str),
    ("Limit", Int),
    ("RegionName", Str),
];
const GLOBAL_TABLE: &[(&str, Shape)] = &[("GlobalTableName", Str)];
const EXPORT: &[(&str, Shape)] = &[
    ("TableArn", Str),
    ("ClientToken", Str),
    ("S3Bucket", Str),
    ("S3BucketOwner", Str),
    ("S3Prefix", Str),
    ("S3SseAlgorithm", Str),
    ("S3SseKmsKeyId", Str),
    ("ExportFormat", Str),
    ("ExportType", Str),
];
const IMPORT: &[(&str, Shape)] = &[
    ("ClientToken", Str),
    (
        "S3BucketSource",
        Struct(
            "S3BucketSource",
            &[
                ("S3Bucket", Str),
                ("S3BucketOwner", Str),
                ("S3KeyPrefix", Str),
            ],
        ),
    ),
    ("InputFormat", Str),
    ("InputCompressionType", Str),
    (
        "TableCreationParameters",
        Struct("TableCreationParameters", CREATE_TABLE),
    ),
];

fn members(op: &str) -> Option<&'static [(&'static str, Shape)]> {
    Some(match op {
        "GetItem" => GET,
        "PutItem" => PUT,
        "DeleteItem" => DELETE,
        "UpdateItem" => UPDATE,
        "Query" => QUERY,
        "Scan" => SCAN,
        "BatchGetItem" => BATCH_GET,
        "BatchWriteItem" => BATCH_WRITE,
        "CreateTable" => CREATE_TABLE,
        "UpdateTable" => UPDATE_TABLE,
        "DeleteTable" | "DescribeTable" | "DescribeTimeToLive" | "DescribeContinuousBackups" => {
            TABLE_ONLY
        }
        "ListTables" => LIST_TABLES,
        "DescribeContributorInsights" => DESCRIBE_INSIGHTS,
        "UpdateContributorInsights" => UPDATE_INSIGHTS,
        "ListContributorInsights" => LIST_INSIGHTS,
        "DescribeKinesisStreamingDestination" => TABLE_ONLY,
        "ExportTableToPointInTime" => EXPORT,
        "ImportTable" => IMPORT,
        "ListExports" => LIST_EXPORTS,
        "DescribeExport" => DESCRIBE_EXPORT,
        "ListImports" => LIST_IMPORTS,
        "DescribeImport" => DESCRIBE_IMPORT,
        "ListGlobalTables" => LIST_GLOBAL_TABLES,
        "DescribeGlobalTable" | "DescribeGlobalTableSettings" => GLOBAL_TABLE,
        "ListTagsOfResource" => LIST_TAGS,
        "TagResource" => TAG,
        "UntagResource" => UNTAG,
        "UpdateTimeToLive" => UPDATE_TTL,
        "ExecuteStatement" => EXECUTE_STATEMENT,
        "BatchExecuteStatement" => BATCH_EXECUTE_STATEMENT,
        "ExecuteTransaction" => EXECUTE_TRANSACTION,
        // DynamoDB Streams (`DynamoDBStreams_20120810`).
        "ListStreams" => LIST_STREAMS,
        "DescribeStream" => DESCRIBE_STREAM,
        "GetShardIterator" => GET_SHARD_ITERATOR,
        "GetRecords" => GET_RECORDS,
        _ => return None,
    })
}

/// Check `req` (a JSON object) against `op`'s modelled request shape.
pub fn check(op: &str, req: &Value) -> Result<(), DdbError> {
    match members(op) {
        Some(fields) => check_fields(req, fields),
        None => Ok(()),
    }
}

/// Where a value sits: a structure's member, or an element of a list or value of a map.
#[derive(Clone, Copy, PartialEq)]
enum At {
    Field,
    Element,
}

fn err(m: impl Into<String>) -> DdbError {
    DdbError::serialization(m)
}

const START_OF_MAP: &str = "Start of structure or map found where not expected";
const CAST: &str = "class sun.reflect.generics.reflectiveObjects.ParameterizedTypeImpl cannot be cast to class java.lang.Class (sun.reflect.generics.reflectiveObjects.ParameterizedTypeImpl and java.lang.Class are in module java.base of loader 'bootstrap')";

/// The deserializer's token name for a scalar JSON value.
fn token(v: &Value) -> &'static str {
    match v {
        Value::Bool(true) => "TRUE_VALUE",
        Value::Bool(false) => "FALSE_VALUE",
        Value::Number(n) if n.is_f64() => "DECIMAL_VALUE",
        Value::Number(_) => "NUMBER_VALUE",
        _ => "STRING_VALUE",
    }
}

fn check_fields(obj: &Value, fields: &[(&str, Shape)]) -> Result<(), DdbError> {
    let Some(m) = obj.as_object() else {
        return Ok(());
    };
    for (name, shape) in fields {
        if let Some(v) = m.get(*name) {
            check_value(v, shape, At::Field)?;
        }
    }
    Ok(())
}

/// A boolean member sent as a string, read as DynamoDB's parser reads it: `true`, `1` and
/// `yes` are true, `false`, `0` and `no` false (any case); anything else is not a boolean.
pub(crate) fn boolean_text(s: &str) -> Option<bool> {
    const TRUE: [&str; 3] = ["true", "1", "yes"];
    const FALSE: [&str; 3] = ["false", "0", "no"];
    if TRUE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if FALSE.iter().any(|f| s.eq_ignore_ascii_case(f)) {
        Some(false)
    } else {
        None
    }
}

fn check_value(v: &Value, shape: &Shape, at: At) -> Result<(), DdbError> {
    if v.is_null() {
        return Ok(());
    }
    match shape {
        Str | Bool | Int | Long => {
            let (java, ok) = match shape {
                Str => ("String", v.is_string()),
                Bool => (
                    "Boolean",
                    v.is_boolean() || v.as_str().and_then(boolean_text).is_some(),
                ),
                Int => ("Integer", v.is_i64() || v.is_u64()),
                _ => ("Long", v.is_i64() || v.is_u64()),
            };
            if ok {
                return Ok(());
            }
            Err(match v {
                Value::Array(_) => err(format!(
                    "Unrecognized collection type class java.lang.{java}"
                )),
                Value::Object(_) => err(START_OF_MAP),
                Value::String(_) if matches!(shape, Bool) => {
                    err("Unexpected token received from parser")
                }
                _ => err(format!("{} cannot be converted to {java}", token(v))),
            })
        }
        Blob => match v {
            Value::String(s) => check_base64(s),
            Value::Array(_) => Err(err(
                "Unrecognized collection type class java.nio.ByteBuffer",
            )),
            Value::Object(_) => Err(err(START_OF_MAP)),
            _ => Err(err("only base-64-encoded strings are convertible to bytes")),
        },
        List(elem) => match v {
            Value::Array(items) => {
                for e in items {
                    check_value(e, elem, At::Element)?;
                }
                Ok(())
            }
            Value::Object(_) => Err(err(START_OF_MAP)),
            _ if at == At::Element => Err(err(CAST)),
            _ => Err(err("Unexpected field type")),
        },
        Map(java, elem) => match v {
            Value::Object(m) => {
                for e in m.values() {
                    check_value(e, elem, At::Element)?;
                }
                Ok(())
            }
            Value::Array(_) => Err(err(format!(
                "Unrecognized collection type java.util.Map<java.lang.String, {java}>"
            ))),
            _ if at == At::Element => Err(err(CAST)),
            _ => Err(err("Unexpected field type")),
        },
        Struct(name, fields) => check_struct(v, name, fields, at),
        Attr => check_struct(v, "AttributeValue", ATTR_FIELDS, at),
    }
}

fn check_struct(v: &Value, name: &str, fields: &[(&str, Shape)], at: At) -> Result<(), DdbError> {
    match v {
        Value::Object(_) => check_fields(v, fields),
        Value::Array(_) => Err(err(format!(
            "Unrecognized collection type class {NS}{name}"
        ))),
        _ if at == At::Element => Err(err("Unexpected value type in payload")),
        _ => Err(err("Unexpected field type")),
    }
}

/// Base64 as Coral decodes it: whole quanta of four, and no stray bits in the last
/// character before the padding.
fn check_base64(s: &str) -> Result<(), DdbError> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return Err(err(format!(
            "Base64 encoded length is expected a multiple of 4 bytes but found: {}",
            b.len()
        )));
    }
    let pads = b.iter().rev().take_while(|&&c| c == b'=').count();
    let Some(&last) = b.len().checked_sub(pads + 1).and_then(|i| b.get(i)) else {
        return Ok(());
    };
    let bits = match last {
        b'A'..=b'Z' => last - b'A',
        b'a'..=b'z' => last - b'a' + 26,
        b'0'..=b'9' => last - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return Ok(()),
    };
    // One pad: the last character carries 2 spare bits; two pads: 4.
    let spare = match pads {
        1 => 0b11,
        2 => 0b1111,
        _ => 0,
    };
    if bits & spare != 0 {
        return Err(err("Invalid last non-pad Base64 character dectected"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(op: &str, req: Value) -> String {
        match check(op, &req) {
            Ok(()) => "ok".into(),
            Err(e) => {
                assert_eq!(e.code, super::super::error::ErrorCode::Serialization);
                e.message
            }
        }
    }

    #[test]
    fn scalars_name_the_token_they_got() {
        assert_eq!(
            msg("GetItem", json!({"TableName": true})),
            "TRUE_VALUE cannot be converted to String"
        );
        assert_eq!(
            msg("GetItem", json!({"TableName": 34.5})),
            "DECIMAL_VALUE cannot be converted to String"
        );
        assert_eq!(
            msg("GetItem", json!({"ConsistentRead": "23"})),
            "Unexpected token received from parser"
        );
        assert_eq!(
            msg("ListTables", json!({"Limit": "23"})),
            "STRING_VALUE cannot be converted to Integer"
        );
        assert_eq!(
            msg("ListTables", json!({"Limit": []})),
            "Unrecognized collection type class java.lang.Integer"
        );
        assert_eq!(
            msg("GetItem", json!({"TableName": "abc", "Extra": 1})),
            "ok"
        );
    }

    #[test]
    fn structs_lists_and_maps_depend_on_where_they_sit() {
        assert_eq!(
            msg("CreateTable", json!({"KeySchema": [1]})),
            "Unexpected value type in payload"
        );
        assert_eq!(
            msg("CreateTable", json!({"ProvisionedThroughput": 1})),
            "Unexpected field type"
        );
        assert_eq!(
            msg("BatchWriteItem", json!({"RequestItems": {"t": 1}})),
            CAST
        );
        assert_eq!(
            msg("GetItem", json!({"Key": []})),
            "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>"
        );
        assert_eq!(
            msg(
                "GetItem",
                json!({"Key": {"a": {"L": [{"M": {"b": {"BS": [true]}}}]}}})
            ),
            "only base-64-encoded strings are convertible to bytes"
        );
    }

    #[test]
    fn base64_is_checked_like_coral() {
        assert_eq!(
            msg("GetItem", json!({"Key": {"a": {"B": "23456"}}})),
            "Base64 encoded length is expected a multiple of 4 bytes but found: 5"
        );
        for bad in ["=+/=", "+/+="] {
            assert_eq!(
                msg("GetItem", json!({"Key": {"a": {"B": bad}}})),
                "Invalid last non-pad Base64 character dectected"
            );
        }
        assert_eq!(msg("GetItem", json!({"Key": {"a": {"B": "YWJj"}}})), "ok");
        assert_eq!(msg("GetItem", json!({"Key": {"a": {"B": "Yg=="}}})), "ok");
    }
}
