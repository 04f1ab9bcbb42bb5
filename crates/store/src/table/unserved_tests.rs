//! The operations about what needs a service or a Region kedge does not serve: S3 exports and
//! imports, global tables, Kinesis destinations. Their reads answer what is true here (none),
//! with DynamoDB's member checks and not-found errors; their writes are not served.

use serde_json::json;

use super::tests::{create, engine, err, ok};
use super::*;

#[test]
fn a_table_streams_to_no_kinesis_destination() {
    let (e, _) = engine();
    create(&e, "orders", false);
    let d = ok(
        &e,
        "DescribeKinesisStreamingDestination",
        json!({"TableName": "orders"}),
    );
    assert_eq!(
        d,
        json!({"TableName": "orders", "KinesisDataStreamDestinations": []})
    );
    // By ARN too, answered under the table's name.
    let arn = ok(&e, "DescribeTable", json!({"TableName": "orders"}))["Table"]["TableArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = ok(
        &e,
        "DescribeKinesisStreamingDestination",
        json!({"TableName": arn}),
    );
    assert_eq!(d["TableName"], "orders");
    let missing = err(
        &e,
        "DescribeKinesisStreamingDestination",
        json!({"TableName": "nope"}),
    );
    assert_eq!(missing.code, ErrorCode::ResourceNotFound);
    assert!(missing.message.contains("nope"), "{}", missing.message);
    let bad = err(&e, "DescribeKinesisStreamingDestination", json!({}));
    assert_eq!(bad.code, ErrorCode::Validation);
    assert!(
        bad.message.contains(
            "Value null at 'tableName' failed to satisfy constraint: Member must not be null"
        ),
        "{}",
        bad.message
    );
}

#[test]
fn exports_and_imports_are_listed_empty_and_described_as_not_found() {
    let (e, _) = engine();
    create(&e, "orders", false);
    assert_eq!(
        ok(&e, "ListExports", json!({})),
        json!({"ExportSummaries": []})
    );
    assert_eq!(
        ok(&e, "ListImports", json!({"PageSize": 25})),
        json!({"ImportSummaryList": []})
    );
    let arn = "arn:aws:dynamodb:us-east-1:000000000000:table/orders/export/01700000000000-abcdef12";
    let x = err(&e, "DescribeExport", json!({"ExportArn": arn}));
    assert_eq!(x.code, ErrorCode::ExportNotFound);
    assert_eq!(
        x.code.wire_type(),
        "com.amazonaws.dynamodb.v20120810#ExportNotFoundException"
    );
    assert!(x.message.contains(arn), "{}", x.message);
    let i = err(
        &e,
        "DescribeImport",
        json!({"ImportArn": "arn:aws:dynamodb:us-east-1:000000000000:table/orders/import/01700000000000-abcdef12"}),
    );
    assert_eq!(i.code, ErrorCode::ImportNotFound);

    // The members' constraints, several reported together as DynamoDB reports them.
    let m = err(&e, "ListExports", json!({"MaxResults": 26, "TableArn": ""})).message;
    assert!(m.starts_with("2 validation errors detected: "), "{m}");
    assert!(
        m.contains("Value '26' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 25"),
        "{m}"
    );
    assert!(
        m.contains("at 'tableArn' failed to satisfy constraint: Member must have length greater than or equal to 1"),
        "{m}"
    );
    let m = err(
        &e,
        "ListImports",
        json!({"PageSize": 0, "NextToken": "xyz"}),
    )
    .message;
    assert!(m.contains("'pageSize'"), "{m}");
    assert!(
        m.contains("Member must have length greater than or equal to 112"),
        "{m}"
    );
    assert!(
        m.contains("Member must satisfy regular expression pattern: ([0-9a-f]{16})+"),
        "{m}"
    );
    // A token of the right form pages nothing more.
    assert_eq!(
        ok(
            &e,
            "ListImports",
            json!({"NextToken": "0123456789abcdef".repeat(7)})
        ),
        json!({"ImportSummaryList": []})
    );
    let m = err(&e, "DescribeExport", json!({"ExportArn": "arn:short"})).message;
    assert!(
        m.contains("Value 'arn:short' at 'exportArn' failed to satisfy constraint: Member must have length greater than or equal to 37"),
        "{m}"
    );
    let m = err(&e, "DescribeImport", json!({})).message;
    assert!(m.contains("Value null at 'importArn'"), "{m}");
    // A member of the wrong type is a serialization error, as for every operation.
    let s = err(&e, "ListExports", json!({"MaxResults": "ten"}));
    assert_eq!(s.code, ErrorCode::Serialization);
}

#[test]
fn no_global_table_exists_not_even_for_a_table_of_that_name() {
    let (e, _) = engine();
    create(&e, "orders", false);
    assert_eq!(
        ok(
            &e,
            "ListGlobalTables",
            json!({"RegionName": "us-east-1", "Limit": 10})
        ),
        json!({"GlobalTables": []})
    );
    for op in ["DescribeGlobalTable", "DescribeGlobalTableSettings"] {
        let g = err(&e, op, json!({"GlobalTableName": "orders"}));
        assert_eq!(g.code, ErrorCode::GlobalTableNotFound, "{op}");
        assert_eq!(
            g.code.wire_type(),
            "com.amazonaws.dynamodb.v20120810#GlobalTableNotFoundException"
        );
        assert!(g.message.contains("orders"), "{}", g.message);
        let m = err(&e, op, json!({"GlobalTableName": "a b"})).message;
        assert!(
            m.contains("Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"),
            "{m}"
        );
        assert!(
            err(&e, op, json!({}))
                .message
                .contains("Value null at 'globalTableName'")
        );
    }
    let m = err(&e, "ListGlobalTables", json!({"Limit": 0})).message;
    assert!(
        m.contains("Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"),
        "{m}"
    );
    let m = err(
        &e,
        "ListGlobalTables",
        json!({"ExclusiveStartGlobalTableName": "ab"}),
    )
    .message;
    assert!(
        m.contains("'exclusiveStartGlobalTableName'") && m.contains("greater than or equal to 3"),
        "{m}"
    );
}

#[test]
fn the_operations_kedge_does_not_serve_say_why() {
    for (op, service) in [
        ("ExportTableToPointInTime", "Amazon S3"),
        ("ImportTable", "Amazon S3"),
        ("CreateGlobalTable", "Regions"),
        ("UpdateGlobalTableSettings", "Regions"),
        ("UpdateTableReplicaAutoScaling", "Application Auto Scaling"),
        ("EnableKinesisStreamingDestination", "Kinesis"),
    ] {
        let why = not_served(op).unwrap_or_else(|| panic!("{op} is not listed"));
        assert!(why.contains(service), "{op}: {why}");
        assert!(!OPERATIONS.contains(&op), "{op} is both served and not");
    }
    // What kedge serves, and what DynamoDB does not have, are not listed.
    assert_eq!(not_served("PutItem"), None);
    assert_eq!(not_served("ListExports"), None);
    assert_eq!(not_served("MakeCoffee"), None);
}
