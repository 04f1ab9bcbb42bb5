//! Point-in-time recovery: restores go back to the table as it was, within the recovery
//! window, across a restart; the history follows the recovery period and the on/off switch.

use std::time::Duration;

use clock::{ManualClock, Timestamp};
use serde_json::{Value, json};

use super::tests::{create, engine_at, err, ok};
use super::*;

/// Every item of `table` as `key=v` (v: the `v` attribute, `-` when absent), sorted.
fn contents(e: &TableEngine, table: &str) -> Vec<String> {
    let r = ok(e, "Scan", json!({"TableName": table}));
    let mut k: Vec<String> = r["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}={}",
                i["pk"]["S"].as_str().unwrap(),
                i["v"]["N"].as_str().unwrap_or("-")
            )
        })
        .collect();
    k.sort();
    k
}

fn put(e: &TableEngine, key: &str, v: Option<i64>) {
    let mut item = json!({"pk": {"S": key}});
    if let Some(v) = v {
        item["v"] = json!({"N": v.to_string()});
    }
    ok(e, "PutItem", json!({"TableName": "src", "Item": item}));
}

fn pitr(e: &TableEngine, on: bool, days: Option<u32>) -> Value {
    let mut spec = json!({"PointInTimeRecoveryEnabled": on});
    if let Some(d) = days {
        spec["RecoveryPeriodInDays"] = json!(d);
    }
    ok(
        e,
        "UpdateContinuousBackups",
        json!({"TableName": "src", "PointInTimeRecoverySpecification": spec}),
    )
}

fn restore(e: &TableEngine, target: &str, at: Option<f64>) -> Value {
    let mut req = json!({"SourceTableName": "src", "TargetTableName": target});
    match at {
        Some(t) => req["RestoreDateTime"] = json!(t),
        None => req["UseLatestRestorableTime"] = json!(true),
    }
    ok(e, "RestoreTableToPointInTime", req)
}

const T0: u64 = 1_700_000_000;

#[test]
fn a_restore_goes_back_to_the_table_as_it_was_then_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let clock = ManualClock::new(Timestamp::from_secs(T0));
    {
        let e = engine_at(&path, &clock);
        create(&e, "src", false);
        put(&e, "k0", None);
        put(&e, "k1", None);
        pitr(&e, true, None);
        clock.advance(Duration::from_secs(60));
        put(&e, "k2", None);
        put(&e, "k0", Some(1));
        ok(
            &e,
            "DeleteItem",
            json!({"TableName": "src", "Key": {"pk": {"S": "k1"}}}),
        );
        clock.advance(Duration::from_secs(60));
        put(&e, "k3", None);
        ok(
            &e,
            "UpdateItem",
            json!({"TableName": "src", "Key": {"pk": {"S": "k0"}},
                   "UpdateExpression": "SET v = :v", "ExpressionAttributeValues": {":v": {"N": "2"}}}),
        );
        // Rewriting an item unchanged is no history.
        put(&e, "k3", None);
        clock.advance(Duration::from_secs(600));
        assert_eq!(e.state.read().by_name["src"].history.len(), 5);

        let before = restore(&e, "before", Some((T0 + 30) as f64));
        let summary = &before["TableDescription"]["RestoreSummary"];
        assert_eq!(
            summary["SourceTableArn"],
            "arn:aws:dynamodb:us-east-1:000000000000:table/src"
        );
        assert_eq!(summary["RestoreDateTime"], json!((T0 + 30) as f64));
        assert_eq!(contents(&e, "before"), ["k0=-", "k1=-"]);
        restore(&e, "middle", Some((T0 + 90) as f64));
        assert_eq!(contents(&e, "middle"), ["k0=1", "k2=-"]);
        // The latest restorable time is five minutes ago: after every write here.
        let latest = restore(&e, "latest", None);
        assert_eq!(
            latest["TableDescription"]["RestoreSummary"]["RestoreDateTime"],
            json!((T0 + 720 - 300) as f64)
        );
        assert_eq!(contents(&e, "latest"), ["k0=2", "k2=-", "k3=-"]);
        // The restored table does not inherit recovery.
        let cb = ok(
            &e,
            "DescribeContinuousBackups",
            json!({"TableName": "latest"}),
        );
        assert_eq!(
            cb["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"],
            "DISABLED"
        );
    }
    // The history is durable: the same restore after a restart.
    let e = engine_at(&path, &clock);
    restore(&e, "middle2", Some((T0 + 90) as f64));
    assert_eq!(contents(&e, "middle2"), ["k0=1", "k2=-"]);
    put(&e, "k4", None);
    assert_eq!(e.state.read().by_name["src"].history.len(), 6);
}

#[test]
fn restores_outside_the_window_or_of_tables_without_recovery_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::from_secs(T0));
    let e = engine_at(&dir.path().join("p.db"), &clock);
    create(&e, "src", false);
    let code = |req: Value| err(&e, "RestoreTableToPointInTime", req).code;
    let req = |at: Value| json!({"SourceTableName": "src", "TargetTableName": "tgt", "RestoreDateTime": at});
    assert_eq!(
        code(req(json!(T0))),
        ErrorCode::PointInTimeRecoveryUnavailable
    );
    // An existing target is named first.
    assert_eq!(
        code(json!({"SourceTableName": "src", "TargetTableName": "src", "RestoreDateTime": T0})),
        ErrorCode::TableAlreadyExists
    );
    let e2 = err(&e, "RestoreTableToPointInTime", req(json!(T0)));
    assert!(e2.message.contains("'src'"), "{}", e2.message);
    pitr(&e, true, None);
    clock.advance(Duration::from_secs(3600));
    // Earlier than recovery was turned on, later than five minutes ago.
    assert_eq!(code(req(json!(T0 - 1))), ErrorCode::InvalidRestoreTime);
    assert_eq!(code(req(json!(T0 + 3600))), ErrorCode::InvalidRestoreTime);
    assert_eq!(
        code(
            json!({"SourceTableName": "nope", "TargetTableName": "tgt", "UseLatestRestorableTime": true})
        ),
        ErrorCode::SourceTableNotFound
    );
    assert_eq!(
        code(
            json!({"SourceTableName": "src", "TargetTableName": "src", "UseLatestRestorableTime": true})
        ),
        ErrorCode::TableAlreadyExists
    );
    assert_eq!(
        code(
            json!({"SourceTableName": "src", "TargetTableName": "tgt", "UseLatestRestorableTime": true, "RestoreDateTime": T0})
        ),
        ErrorCode::Validation
    );
    // By ARN.
    let r = ok(
        &e,
        "RestoreTableToPointInTime",
        json!({"SourceTableArn": "arn:aws:dynamodb:us-east-1:000000000000:table/src", "TargetTableName": "tgt", "RestoreDateTime": T0 + 60}),
    );
    assert_eq!(r["TableDescription"]["TableName"], "tgt");
    // Neither time: the latest restorable one.
    let r = ok(
        &e,
        "RestoreTableToPointInTime",
        json!({"SourceTableName": "src", "TargetTableName": "tgt2"}),
    );
    assert_eq!(
        r["TableDescription"]["RestoreSummary"]["RestoreDateTime"],
        json!((T0 + 3600 - 300) as f64)
    );
}

#[test]
fn the_history_keeps_the_recovery_period_and_recovery_off_forgets_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let clock = ManualClock::new(Timestamp::from_secs(T0));
    let e = engine_at(&path, &clock);
    create(&e, "src", false);
    pitr(&e, true, Some(1));
    put(&e, "a", Some(1));
    put(&e, "b", Some(1));
    clock.advance(Duration::from_secs(2 * 86_400));
    put(&e, "a", Some(2));
    // The day-old entries fell out of the one-day period.
    assert_eq!(e.state.read().by_name["src"].history.len(), 1);
    pitr(&e, false, None);
    assert_eq!(e.state.read().by_name["src"].history.len(), 0);
    put(&e, "a", Some(3));
    assert_eq!(e.state.read().by_name["src"].history.len(), 0);
    drop(e);
    // Nothing of the history is left on disk for a restart to find.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut rows = 0;
    crate::table_log::ItemLog::load(&conn)
        .unwrap()
        .for_each_live(&conn, |tbl, _| {
            rows += usize::from(tbl.starts_with(super::pitr::PREFIX));
            Ok(())
        })
        .unwrap();
    assert_eq!(rows, 0);
    // On again: a new window, from now.
    let e = engine_at(&path, &clock);
    let on = pitr(&e, true, None);
    assert_eq!(
        on["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["EarliestRestorableDateTime"],
        json!((T0 + 2 * 86_400) as f64)
    );
    ok(&e, "DeleteTable", json!({"TableName": "src"}));
}

#[test]
fn deleting_a_table_with_recovery_on_keeps_a_system_backup_for_35_days() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let clock = ManualClock::new(Timestamp::from_secs(T0));
    let list = |e: &TableEngine, kind: Option<&str>| -> Vec<Value> {
        let mut req = json!({});
        if let Some(k) = kind {
            req["BackupType"] = json!(k);
        }
        ok(e, "ListBackups", req)["BackupSummaries"]
            .as_array()
            .unwrap()
            .clone()
    };
    let arn;
    {
        let e = engine_at(&path, &clock);
        create(&e, "plain", false);
        ok(&e, "DeleteTable", json!({"TableName": "plain"}));
        create(&e, "src", false);
        pitr(&e, true, None);
        put(&e, "k0", Some(1));
        put(&e, "k1", None);
        ok(&e, "DeleteTable", json!({"TableName": "src"}));
        // Not a USER backup, so not listed by default; a table without recovery has none.
        assert!(list(&e, None).is_empty());
        let system = list(&e, Some("SYSTEM"));
        assert_eq!(system.len(), 1);
        let b = &system[0];
        assert_eq!(
            (&b["BackupName"], &b["BackupType"], &b["TableName"]),
            (
                &json!("src$DeletedTableBackup"),
                &json!("SYSTEM"),
                &json!("src")
            )
        );
        assert_eq!(b["BackupExpiryDateTime"], json!((T0 + 35 * 86_400) as f64));
        assert_eq!(list(&e, Some("ALL")).len(), 1);
        arn = b["BackupArn"].as_str().unwrap().to_string();
    }
    // Kept across a restart, and restorable like any backup.
    let e = engine_at(&path, &clock);
    ok(
        &e,
        "RestoreTableFromBackup",
        json!({"TargetTableName": "back", "BackupArn": arn}),
    );
    assert_eq!(contents(&e, "back"), ["k0=1", "k1=-"]);
    clock.advance(Duration::from_secs(35 * 86_400));
    assert!(list(&e, Some("ALL")).is_empty());
    assert_eq!(
        err(&e, "DescribeBackup", json!({"BackupArn": arn})).code,
        ErrorCode::BackupNotFound
    );
}
