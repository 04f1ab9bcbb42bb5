//! The operations about what needs a service or a Region kedge does not serve: S3 exports and
//! imports (checked, then failed as for a bucket that does not exist), global tables and
//! Kinesis destinations (reads answer that there are none, writes are not served).

use std::time::Duration;

use clock::{ManualClock, Timestamp};
use serde_json::{Value, json};

use super::tests::{create, engine, engine_at, err, ok};
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
fn an_export_is_checked_then_fails_as_for_a_bucket_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let arn = "arn:aws:dynamodb:us-east-1:000000000000:table/orders";
    let export = |e: &TableEngine, extra: Value| {
        let mut req = json!({"TableArn": arn, "S3Bucket": "bucket", "S3Prefix": "p"});
        if let (Some(r), Some(x)) = (req.as_object_mut(), extra.as_object()) {
            r.extend(x.clone());
        }
        e.execute("ExportTableToPointInTime", &req).map(|(v, t)| {
            t.wait().unwrap();
            v.into_value()["ExportDescription"].clone()
        })
    };
    let (first, second) = {
        let e = engine_at(&path, &clock);
        e.set_status_delay(Duration::from_secs(5));
        assert_eq!(
            ok(&e, "ListExports", json!({})),
            json!({"ExportSummaries": []})
        );
        // The table is named by ARN and must exist; its recovery must be on.
        let er = export(&e, json!({})).unwrap_err();
        assert_eq!(er.code, ErrorCode::TableNotFound);
        assert_eq!(er.message, format!("Table not found: {arn}"));
        create(&e, "orders", false);
        clock.advance(Duration::from_secs(5));
        let er = export(&e, json!({})).unwrap_err();
        assert_eq!(er.code, ErrorCode::PointInTimeRecoveryUnavailable);
        assert_eq!(
            er.message,
            "Point in time recovery is not enabled for table 'orders'"
        );
        ok(
            &e,
            "UpdateContinuousBackups",
            json!({"TableName": "orders",
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true}}),
        );
        clock.advance(Duration::from_secs(60));
        // A time before recovery was on, or after now, is outside the window.
        for at in [1_699_999_000.0, 1_700_001_000.0] {
            let er = export(&e, json!({"ExportTime": at})).unwrap_err();
            assert_eq!(er.code, ErrorCode::InvalidExportTime, "{at}");
        }
        let d = export(&e, json!({"ExportFormat": "ION", "ClientToken": "tok"})).unwrap();
        assert_eq!(d["ExportStatus"], "IN_PROGRESS");
        assert_eq!(d["TableArn"], arn);
        assert_eq!(d["S3Bucket"], "bucket");
        assert_eq!(d["S3Prefix"], "p");
        assert_eq!(d["ExportFormat"], "ION");
        assert_eq!(d["ExportType"], "FULL_EXPORT");
        assert_eq!(d["S3SseAlgorithm"], "AES256");
        assert_eq!(d["ClientToken"], "tok");
        assert_eq!(d["ExportTime"], json!(1_700_000_065.0));
        assert!(d.get("FailureCode").is_none());
        let first = d["ExportArn"].as_str().unwrap().to_owned();
        assert!(
            first.starts_with(&format!("{arn}/export/01700000065000-")),
            "{first}"
        );
        let described = ok(&e, "DescribeExport", json!({"ExportArn": first}));
        assert_eq!(
            described["ExportDescription"]["ExportStatus"],
            "IN_PROGRESS"
        );
        // Once the status delay is over, it has failed as for a bucket that does not exist.
        clock.advance(Duration::from_secs(5));
        let d = ok(&e, "DescribeExport", json!({"ExportArn": first}))["ExportDescription"].clone();
        assert_eq!(d["ExportStatus"], "FAILED");
        assert_eq!(d["FailureCode"], "S3NoSuchBucket");
        assert_eq!(d["FailureMessage"], "The specified bucket does not exist");
        assert_eq!(d["EndTime"], json!(1_700_000_070.0));
        // The same request with the same client token is the same export (as it is now);
        // the token with other parameters is a conflict.
        let again = export(&e, json!({"ExportFormat": "ION", "ClientToken": "tok"})).unwrap();
        assert_eq!(again["ExportArn"], first.as_str());
        assert_eq!(again["ExportStatus"], "FAILED");
        let er = export(&e, json!({"ClientToken": "tok"})).unwrap_err();
        assert_eq!(er.code, ErrorCode::ExportConflict);
        assert_eq!(
            er.code.wire_type(),
            "com.amazonaws.dynamodb.v20120810#ExportConflictException"
        );
        clock.advance(Duration::from_secs(1));
        let second = export(&e, json!({})).unwrap()["ExportArn"]
            .as_str()
            .unwrap()
            .to_owned();
        (first, second)
    };
    // After a restart both are there, newest ARN first, a page at a time.
    let e = engine_at(&path, &clock);
    let page = ok(&e, "ListExports", json!({"MaxResults": 1}));
    assert_eq!(
        page["ExportSummaries"],
        json!([{"ExportArn": second, "ExportStatus": "IN_PROGRESS", "ExportType": "FULL_EXPORT"}])
    );
    let token = page["NextToken"].as_str().unwrap();
    let page = ok(
        &e,
        "ListExports",
        json!({"MaxResults": 1, "NextToken": token}),
    );
    assert_eq!(page["ExportSummaries"][0]["ExportArn"], first);
    assert_eq!(page["ExportSummaries"][0]["ExportStatus"], "FAILED");
    assert!(page.get("NextToken").is_none());
    assert_eq!(
        ok(&e, "ListExports", json!({"TableArn": format!("{arn}x")}))["ExportSummaries"],
        json!([])
    );
    let x = err(
        &e,
        "DescribeExport",
        json!({"ExportArn": format!("{first}0")}),
    );
    assert_eq!(x.code, ErrorCode::ExportNotFound);
    assert_eq!(
        x.code.wire_type(),
        "com.amazonaws.dynamodb.v20120810#ExportNotFoundException"
    );
    // An import's ARN is not an export's.
    let x = err(&e, "DescribeImport", json!({"ImportArn": first}));
    assert_eq!(x.code, ErrorCode::ImportNotFound);
}

#[test]
fn an_import_checks_the_new_table_then_fails_and_creates_none() {
    let (e, clock) = engine();
    e.set_status_delay(Duration::from_secs(5));
    let import = |name: &str, billing: &str| {
        e.execute(
            "ImportTable",
            &json!({
                "ClientToken": format!("token-{name}"),
                "S3BucketSource": {"S3Bucket": "bucket"},
                "InputFormat": "DYNAMODB_JSON",
                "TableCreationParameters": {
                    "TableName": name,
                    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                    "BillingMode": billing,
                },
            }),
        )
        .map(|(v, t)| {
            t.wait().unwrap();
            v.into_value()["ImportTableDescription"].clone()
        })
    };
    let er = import("fresh", "PROVISIONED").unwrap_err();
    assert_eq!(
        er.message,
        "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED"
    );
    create(&e, "taken", false);
    assert_eq!(
        import("taken", "PAY_PER_REQUEST").unwrap_err().code,
        ErrorCode::ResourceInUse
    );
    let d = import("fresh", "PAY_PER_REQUEST").unwrap();
    assert_eq!(d["ImportStatus"], "IN_PROGRESS");
    assert_eq!(
        d["TableArn"],
        "arn:aws:dynamodb:us-east-1:000000000000:table/fresh"
    );
    assert_eq!(d["InputCompressionType"], "NONE");
    assert_eq!(d["S3BucketSource"], json!({"S3Bucket": "bucket"}));
    assert_eq!(d["TableCreationParameters"]["TableName"], "fresh");
    assert_eq!(d["ImportedItemCount"], 0);
    let arn = d["ImportArn"].as_str().unwrap().to_owned();
    assert!(arn.contains("table/fresh/import/"), "{arn}");
    assert_eq!(d["ClientToken"], "token-fresh");
    // Repeated with its client token: the same import; the token with another request (here
    // another billing mode) is a conflict.
    assert_eq!(
        import("fresh", "PAY_PER_REQUEST").unwrap()["ImportArn"],
        arn.as_str()
    );
    let er = e
        .execute(
            "ImportTable",
            &json!({
                "ClientToken": "token-fresh",
                "S3BucketSource": {"S3Bucket": "elsewhere"},
                "InputFormat": "DYNAMODB_JSON",
                "TableCreationParameters": {
                    "TableName": "fresh",
                    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                    "BillingMode": "PAY_PER_REQUEST",
                },
            }),
        )
        .unwrap_err();
    assert_eq!(er.code, ErrorCode::ImportConflict);
    clock.advance(Duration::from_secs(5));
    let d = ok(&e, "DescribeImport", json!({"ImportArn": arn}))["ImportTableDescription"].clone();
    assert_eq!(d["ImportStatus"], "FAILED");
    assert_eq!(d["FailureCode"], "S3NoSuchBucket");
    // No table is left.
    assert_eq!(
        ok(&e, "ListTables", json!({}))["TableNames"],
        json!(["taken"])
    );
    let listed = ok(&e, "ListImports", json!({}))["ImportSummaryList"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["ImportArn"], arn.as_str());
    assert_eq!(listed[0]["ImportStatus"], "FAILED");
    assert_eq!(listed[0]["InputFormat"], "DYNAMODB_JSON");
    // The request's own members are checked first, several reported together.
    let m = err(
        &e,
        "ImportTable",
        json!({"S3BucketSource": {}, "InputFormat": "XML"}),
    )
    .message;
    assert!(m.starts_with("3 validation errors detected: "), "{m}");
    assert!(m.contains("'s3BucketSource.s3Bucket'"), "{m}");
    assert!(
        m.contains("Member must satisfy enum value set: [DYNAMODB_JSON, ION, CSV]"),
        "{m}"
    );
    assert!(m.contains("'tableCreationParameters'"), "{m}");
    // Members of the wrong type are serialization errors.
    for bad in [json!(5), json!([])] {
        let er = err(
            &e,
            "ImportTable",
            json!({"S3BucketSource": {"S3Bucket": "b"}, "InputFormat": "CSV",
                "TableCreationParameters": bad}),
        );
        assert_eq!(er.code, ErrorCode::Serialization, "{}", er.message);
    }
    let er = err(
        &e,
        "ExportTableToPointInTime",
        json!({"TableArn": "arn:aws:dynamodb:us-east-1:000000000000:table/taken",
            "S3Bucket": "b", "ExportTime": "yesterday"}),
    );
    assert_eq!(er.code, ErrorCode::Serialization, "{}", er.message);
}

#[test]
fn the_lists_check_their_members() {
    let (e, _) = engine();
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
    let m = err(&e, "DescribeExport", json!({"ExportArn": "arn:short"})).message;
    assert!(
        m.contains("Value 'arn:short' at 'exportArn' failed to satisfy constraint: Member must have length greater than or equal to 37"),
        "{m}"
    );
    let m = err(&e, "DescribeImport", json!({})).message;
    assert!(m.contains("Value null at 'importArn'"), "{m}");
    let m = err(
        &e,
        "ExportTableToPointInTime",
        json!({"ExportType": "PARTIAL"}),
    )
    .message;
    assert!(m.contains("Value null at 'tableArn'"), "{m}");
    assert!(m.contains("Value null at 's3Bucket'"), "{m}");
    assert!(m.contains("[FULL_EXPORT, INCREMENTAL_EXPORT]"), "{m}");
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
