//! On-demand backups: taken, described, listed, restored, deleted, and kept across a restart.

use clock::{ManualClock, Timestamp};
use serde_json::{Value, json};

use super::tests::{engine_at, err, ok};
use super::*;

fn scan_keys(e: &TableEngine, table: &str) -> Vec<String> {
    let r = ok(e, "Scan", json!({"TableName": table}));
    let mut k: Vec<String> = r["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["pk"]["S"].as_str().unwrap().to_string())
        .collect();
    k.sort();
    k
}

#[test]
fn a_backup_keeps_the_table_as_it_was_and_restores_into_a_new_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let arn;
    {
        let e = engine_at(&path, &clock);
        ok(
            &e,
            "CreateTable",
            json!({
                "TableName": "src", "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "g", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [{"IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}]
            }),
        );
        for i in 0..5 {
            ok(
                &e,
                "PutItem",
                json!({"TableName": "src", "Item": {"pk": {"S": format!("k{i}")}, "g": {"S": format!("g{}", i % 2)}}}),
            );
        }
        let b = ok(
            &e,
            "CreateBackup",
            json!({"TableName": "src", "BackupName": "first"}),
        );
        let d = &b["BackupDetails"];
        arn = d["BackupArn"].as_str().unwrap().to_string();
        assert!(
            arn.starts_with("arn:aws:dynamodb:us-east-1:000000000000:table/src/backup/"),
            "{arn}"
        );
        assert_eq!(
            (&d["BackupName"], &d["BackupStatus"], &d["BackupType"]),
            (&json!("first"), &json!("AVAILABLE"), &json!("USER"))
        );
        // Later writes do not reach the backup.
        ok(
            &e,
            "DeleteItem",
            json!({"TableName": "src", "Key": {"pk": {"S": "k0"}}}),
        );
        ok(
            &e,
            "PutItem",
            json!({"TableName": "src", "Item": {"pk": {"S": "k9"}, "g": {"S": "g1"}}}),
        );
        clock.advance(std::time::Duration::from_secs(5));
        ok(
            &e,
            "CreateBackup",
            json!({"TableName": "src", "BackupName": "second"}),
        );
    }
    // Both backups are still there after a restart.
    let e = engine_at(&path, &clock);
    let d = ok(&e, "DescribeBackup", json!({"BackupArn": arn}));
    let desc = &d["BackupDescription"];
    assert_eq!(desc["SourceTableDetails"]["TableName"], "src");
    assert_eq!(desc["SourceTableDetails"]["ItemCount"], 5);
    assert_eq!(
        desc["SourceTableFeatureDetails"]["GlobalSecondaryIndexes"][0]["IndexName"],
        "byg"
    );
    let l = ok(&e, "ListBackups", json!({"TableName": "src"}));
    let names: Vec<&Value> = l["BackupSummaries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["BackupName"])
        .collect();
    assert_eq!(names, [&json!("first"), &json!("second")]);
    let page = ok(&e, "ListBackups", json!({"Limit": 1}));
    assert_eq!(page["LastEvaluatedBackupArn"], json!(arn));
    let rest = ok(
        &e,
        "ListBackups",
        json!({"Limit": 1, "ExclusiveStartBackupArn": arn}),
    );
    assert_eq!(rest["BackupSummaries"][0]["BackupName"], "second");
    assert!(rest.get("LastEvaluatedBackupArn").is_none());
    assert_eq!(
        ok(&e, "ListBackups", json!({"TableName": "other"}))["BackupSummaries"],
        json!([])
    );
    // The restore holds the items as they were, with the index built over them.
    let r = ok(
        &e,
        "RestoreTableFromBackup",
        json!({"TargetTableName": "copy", "BackupArn": arn}),
    );
    assert_eq!(
        r["TableDescription"]["RestoreSummary"]["SourceBackupArn"],
        json!(arn)
    );
    assert_eq!(scan_keys(&e, "copy"), ["k0", "k1", "k2", "k3", "k4"]);
    assert_eq!(scan_keys(&e, "src"), ["k1", "k2", "k3", "k4", "k9"]);
    let q = ok(
        &e,
        "Query",
        json!({"TableName": "copy", "IndexName": "byg", "KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": {"S": "g0"}}}),
    );
    assert_eq!(q["Count"], 3);
    assert_eq!(
        ok(&e, "DescribeTable", json!({"TableName": "copy"}))["Table"]["RestoreSummary"]["SourceTableArn"],
        "arn:aws:dynamodb:us-east-1:000000000000:table/src"
    );
    // A restore with the global indexes overridden away.
    ok(
        &e,
        "RestoreTableFromBackup",
        json!({"TargetTableName": "bare", "BackupArn": arn, "GlobalSecondaryIndexOverride": []}),
    );
    assert!(
        ok(&e, "DescribeTable", json!({"TableName": "bare"}))["Table"]
            .get("GlobalSecondaryIndexes")
            .is_none()
    );
    let m = err(
        &e,
        "RestoreTableFromBackup",
        json!({"TargetTableName": "copy", "BackupArn": arn}),
    );
    assert_eq!(m.code, ErrorCode::TableAlreadyExists);
    // Deleted: gone now and after a restart.
    let gone = ok(&e, "DeleteBackup", json!({"BackupArn": arn}));
    assert_eq!(
        gone["BackupDescription"]["BackupDetails"]["BackupStatus"],
        "DELETED"
    );
    drop(e);
    let e = engine_at(&path, &clock);
    let m = err(&e, "DescribeBackup", json!({"BackupArn": arn}));
    assert_eq!(
        (m.code, m.message),
        (
            ErrorCode::BackupNotFound,
            format!("Backup not found: {arn}")
        )
    );
    assert_eq!(
        ok(&e, "ListBackups", json!({}))["BackupSummaries"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(scan_keys(&e, "copy"), ["k0", "k1", "k2", "k3", "k4"]);
}

#[test]
fn backup_requests_are_checked() {
    let (e, _) = super::tests::engine();
    let m = err(
        &e,
        "CreateBackup",
        json!({"TableName": "nope", "BackupName": "bk1"}),
    );
    assert_eq!(
        (m.code, m.message.as_str()),
        (ErrorCode::TableNotFound, "Table not found: nope")
    );
    let m = err(
        &e,
        "CreateBackup",
        json!({"TableName": "nope", "BackupName": "b!"}),
    );
    assert!(
        m.message
            .contains("at 'backupName' failed to satisfy constraint"),
        "{}",
        m.message
    );
    let m = err(&e, "DescribeBackup", json!({"BackupArn": "short"}));
    assert!(
        m.message
            .contains("Member must have length greater than or equal to 37"),
        "{}",
        m.message
    );
    let m = err(&e, "ListBackups", json!({"Limit": 0}));
    assert!(
        m.message
            .contains("Member must have value greater than or equal to 1"),
        "{}",
        m.message
    );
    let m = err(
        &e,
        "RestoreTableFromBackup",
        json!({"TargetTableName": "tgt", "BackupArn": "arn:aws:dynamodb:us-east-1:000000000000:table/x/backup/01700000000000-abcdef12"}),
    );
    assert_eq!(m.code, ErrorCode::BackupNotFound);
}

/// (The engine reads a table ARN in `TableName` as the table's name for every operation.)
#[test]
fn a_table_arn_names_the_table_to_back_up_and_to_list_by() {
    let (e, _) = super::tests::engine();
    super::tests::create(&e, "src", false);
    let arn = "arn:aws:dynamodb:us-east-1:000000000000:table/src";
    ok(
        &e,
        "CreateBackup",
        json!({"TableName": arn, "BackupName": "by-arn"}),
    );
    let listed = ok(&e, "ListBackups", json!({"TableName": arn}));
    let names: Vec<&str> = listed["BackupSummaries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["BackupName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["by-arn"]);
}
