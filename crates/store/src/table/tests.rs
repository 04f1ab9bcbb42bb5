//! Engine-level tests: operations through [`TableEngine::execute`], recovery from SQLite,
//! racing conditional writers, and model-based and property tests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use clock::{ManualClock, Timestamp};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::journal::{Backend, BackendError, NullBackend};

pub(super) fn engine() -> (TableEngine, ManualClock) {
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let j = Journal::start(Box::new(NullBackend), true);
    (TableEngine::new(j, Arc::new(clock.clone())), clock)
}

pub(super) fn ok(e: &TableEngine, op: &str, req: Value) -> Value {
    let (v, t) = e
        .execute(op, &req)
        .unwrap_or_else(|err| panic!("{op} failed: {err}"));
    t.wait().unwrap();
    v.into_value()
}

/// An engine over the SQLite database at `path` (state recovered from it) on `clock`.
pub(super) fn engine_at(path: &std::path::Path, clock: &clock::ManualClock) -> TableEngine {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(crate::table_record::SCHEMA).unwrap();
    let state = load(&conn).unwrap();
    TableEngine::from_state(
        state,
        Journal::start(Box::new(TestSqlite::new(conn)), false),
        Arc::new(clock.clone()),
    )
}

pub(super) fn err(e: &TableEngine, op: &str, req: Value) -> DdbError {
    match e.execute(op, &req) {
        Ok(v) => panic!("{op} unexpectedly succeeded: {}", v.0.into_text()),
        Err(e) => e,
    }
}

pub(super) fn create(e: &TableEngine, name: &str, range: bool) {
    let mut req = json!({
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST"
    });
    if range {
        req["AttributeDefinitions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"AttributeName": "sk", "AttributeType": "N"}));
        req["KeySchema"]
            .as_array_mut()
            .unwrap()
            .push(json!({"AttributeName": "sk", "KeyType": "RANGE"}));
    }
    ok(e, "CreateTable", req);
}

#[test]
fn table_lifecycle_and_list_pagination() {
    let (e, _) = engine();
    for n in ["t-a", "t-b", "t-c"] {
        create(&e, n, false);
    }
    let er = err(
        &e,
        "CreateTable",
        json!({"TableName": "t-a", "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}], "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST"}),
    );
    assert_eq!(er.code, ErrorCode::ResourceInUse);
    let page = ok(&e, "ListTables", json!({"Limit": 2}));
    assert_eq!(page["TableNames"], json!(["t-a", "t-b"]));
    assert_eq!(page["LastEvaluatedTableName"], json!("t-b"));
    let page = ok(&e, "ListTables", json!({"ExclusiveStartTableName": "t-b"}));
    assert_eq!(page["TableNames"], json!(["t-c"]));
    assert!(page.get("LastEvaluatedTableName").is_none());
    let d = ok(&e, "DescribeTable", json!({"TableName": "t-a"}));
    assert_eq!(d["Table"]["TableStatus"], "ACTIVE");
    assert_eq!(
        d["Table"]["BillingModeSummary"]["BillingMode"],
        "PAY_PER_REQUEST"
    );
    ok(&e, "DeleteTable", json!({"TableName": "t-a"}));
    let er = err(&e, "DescribeTable", json!({"TableName": "t-a"}));
    assert_eq!(er.code, ErrorCode::ResourceNotFound);
    let er = err(
        &e,
        "CreateTable",
        json!({"TableName": "xx1", "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}], "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}),
    );
    assert!(
        er.message
            .contains("ReadCapacityUnits and WriteCapacityUnits must both be specified"),
        "{}",
        er.message
    );
}

#[test]
fn an_invalid_create_table_still_takes_a_table_id() {
    let (e, _) = engine();
    // The id's third and fourth groups carry the engine's table counter.
    let counter = |name: &str| {
        let d = ok(&e, "DescribeTable", json!({ "TableName": name }));
        let id = d["Table"]["TableId"].as_str().unwrap().to_string();
        let g: Vec<&str> = id.split('-').collect();
        (u64::from_str_radix(&g[2][1..], 16).unwrap() << 12)
            | u64::from_str_radix(&g[3][1..], 16).unwrap()
    };
    create(&e, "t-a", false);
    // Refused by the table checks (the key attribute is not defined): takes an id.
    let bad = err(
        &e,
        "CreateTable",
        json!({
            "TableName": "t-x",
            "AttributeDefinitions": [{"AttributeName": "other", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
    assert!(
        bad.message
            .contains("Some index key attributes are not defined")
    );
    // Refused by the member checks (no key schema): does not.
    err(&e, "CreateTable", json!({ "TableName": "t-y" }));
    create(&e, "t-b", false);
    assert_eq!((counter("t-a"), counter("t-b")), (0, 2));
}

#[test]
fn conditional_put_update_delete_with_return_values() {
    let (e, _) = engine();
    create(&e, "items", false);
    let put = json!({"TableName": "items", "Item": {"pk": {"S": "a"}, "n": {"N": "1"}}, "ConditionExpression": "attribute_not_exists(pk)"});
    ok(&e, "PutItem", put.clone());
    let er = err(&e, "PutItem", put);
    assert_eq!(er.code, ErrorCode::ConditionalCheckFailed);
    assert_eq!(er.message, "The conditional request failed");
    let r = ok(
        &e,
        "UpdateItem",
        json!({
            "TableName": "items", "Key": {"pk": {"S": "a"}},
            "UpdateExpression": "SET n = n + :d, #t = :t ADD c :d",
            "ExpressionAttributeNames": {"#t": "tags"},
            "ExpressionAttributeValues": {":d": {"N": "0.5"}, ":t": {"SS": ["x"]}},
            "ReturnValues": "UPDATED_NEW"
        }),
    );
    assert_eq!(
        r["Attributes"],
        json!({"n": {"N": "1.5"}, "tags": {"SS": ["x"]}, "c": {"N": "0.5"}})
    );
    let er = err(
        &e,
        "UpdateItem",
        json!({"TableName": "items", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET pk = :v", "ExpressionAttributeValues": {":v": {"S": "b"}}}),
    );
    assert!(
        er.message.contains("Cannot update attribute pk"),
        "{}",
        er.message
    );
    let er = err(
        &e,
        "GetItem",
        json!({"TableName": "items", "Key": {"pk": {"S": "a"}}, "ExpressionAttributeValues": {":x": {"S": "1"}}, "ProjectionExpression": "n"}),
    );
    assert!(
        er.message.contains("unused in expressions"),
        "{}",
        er.message
    );
    let er = err(
        &e,
        "GetItem",
        json!({"TableName": "items", "Key": {"pk": {"S": "a"}}, "ExpressionAttributeNames": {"#n": "n"}}),
    );
    assert_eq!(
        er.message,
        "ExpressionAttributeNames can only be specified when using expressions"
    );
    let g = ok(
        &e,
        "GetItem",
        json!({"TableName": "items", "Key": {"pk": {"S": "a"}}, "ProjectionExpression": "n"}),
    );
    assert_eq!(g["Item"], json!({"n": {"N": "1.5"}}));
    let er = err(
        &e,
        "GetItem",
        json!({"TableName": "items", "Key": {"pk": {"N": "1"}}}),
    );
    assert_eq!(
        er.message,
        "The provided key element does not match the schema"
    );
    let er = err(
        &e,
        "DeleteItem",
        json!({"TableName": "items", "Key": {"pk": {"S": "a"}}, "ConditionExpression": "n > :big", "ExpressionAttributeValues": {":big": {"N": "100"}}, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}),
    );
    assert_eq!(er.body()["Item"]["n"], json!({"N": "1.5"}));
    let d = ok(
        &e,
        "DeleteItem",
        json!({"TableName": "items", "Key": {"pk": {"S": "a"}}, "ReturnValues": "ALL_OLD"}),
    );
    assert_eq!(d["Attributes"]["pk"], json!({"S": "a"}));
    assert_eq!(
        ok(
            &e,
            "GetItem",
            json!({"TableName": "items", "Key": {"pk": {"S": "a"}}})
        ),
        json!({})
    );
    let er = err(
        &e,
        "PutItem",
        json!({"TableName": "items", "Item": {"pk": {"S": ""}}}),
    );
    assert_eq!(
        er.message,
        "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: pk"
    );
    // A key parameter's empty value is worded as DynamoDB words it for keys.
    for op in ["GetItem", "DeleteItem"] {
        let er = err(
            &e,
            op,
            json!({"TableName": "items", "Key": {"pk": {"S": ""}}}),
        );
        assert_eq!(
            er.message,
            "One or more parameter values were invalid: The AttributeValue for a key attribute cannot contain an empty string value. Key: pk"
        );
    }
    // A query for an empty partition key is refused, not answered with nothing.
    let er = err(
        &e,
        "Query",
        json!({"TableName": "items", "KeyConditionExpression": "pk = :v", "ExpressionAttributeValues": {":v": {"S": ""}}}),
    );
    assert_eq!(
        er.message,
        "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: pk"
    );
    // So is one for an empty sort key compared for equality; a range or a prefix may start at
    // the empty string.
    ok(
        &e,
        "CreateTable",
        json!({"TableName": "sorted", "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]}),
    );
    ok(
        &e,
        "PutItem",
        json!({"TableName": "sorted", "Item": {"pk": {"S": "a"}, "sk": {"S": "x"}}}),
    );
    let sorted = |cond: &str| json!({"TableName": "sorted", "KeyConditionExpression": cond, "ExpressionAttributeValues": {":p": {"S": "a"}, ":s": {"S": ""}}});
    assert_eq!(
        err(&e, "Query", sorted("pk = :p AND sk = :s")).message,
        "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: sk"
    );
    for cond in ["pk = :p AND begins_with(sk, :s)", "pk = :p AND sk > :s"] {
        assert_eq!(ok(&e, "Query", sorted(cond))["Count"], json!(1), "{cond}");
    }
    let big = "x".repeat(400 * 1024);
    let er = err(
        &e,
        "PutItem",
        json!({"TableName": "items", "Item": {"pk": {"S": "b"}, "v": {"S": big}}}),
    );
    assert_eq!(
        er.message,
        "Item size has exceeded the maximum allowed size"
    );
    let er = err(
        &e,
        "PutItem",
        json!({"TableName": "nope", "Item": {"pk": {"S": "b"}}}),
    );
    assert_eq!(er.code, ErrorCode::ResourceNotFound);
}

#[test]
fn query_ranges_order_paging_and_count() {
    let (e, _) = engine();
    create(&e, "qry", true);
    for i in 0..10 {
        ok(
            &e,
            "PutItem",
            json!({"TableName": "qry", "Item": {"pk": {"S": "p"}, "sk": {"N": i.to_string()}, "odd": {"BOOL": i % 2 == 1}}}),
        );
    }
    ok(
        &e,
        "PutItem",
        json!({"TableName": "qry", "Item": {"pk": {"S": "other"}, "sk": {"N": "1"}}}),
    );
    let r = ok(
        &e,
        "Query",
        json!({"TableName": "qry", "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b", "ExpressionAttributeValues": {":p": {"S": "p"}, ":a": {"N": "2"}, ":b": {"N": "5"}}, "ScanIndexForward": false}),
    );
    let sks: Vec<&str> = r["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["sk"]["N"].as_str().unwrap())
        .collect();
    assert_eq!(sks, ["5", "4", "3", "2"]);
    // Paging with Limit and a filter: Count counts matches, ScannedCount what was read.
    let mut esk = Value::Null;
    let mut seen = Vec::new();
    loop {
        let mut req = json!({"TableName": "qry", "KeyConditionExpression": "pk = :p", "FilterExpression": "odd = :t", "ExpressionAttributeValues": {":p": {"S": "p"}, ":t": {"BOOL": true}}, "Limit": 3});
        if !esk.is_null() {
            req["ExclusiveStartKey"] = esk.clone();
        }
        let r = ok(&e, "Query", req);
        assert!(r["ScannedCount"].as_u64().unwrap() <= 3);
        for i in r["Items"].as_array().unwrap() {
            seen.push(i["sk"]["N"].as_str().unwrap().to_string());
        }
        match r.get("LastEvaluatedKey") {
            Some(k) => esk = k.clone(),
            None => break,
        }
    }
    assert_eq!(seen, ["1", "3", "5", "7", "9"]);
    let r = ok(
        &e,
        "Query",
        json!({"TableName": "qry", "KeyConditionExpression": "pk = :p AND sk < :x", "ExpressionAttributeValues": {":p": {"S": "p"}, ":x": {"N": "3"}}, "Select": "COUNT"}),
    );
    assert_eq!(r["Count"], 3);
    assert!(r.get("Items").is_none());
    let er = err(
        &e,
        "Query",
        json!({"TableName": "qry", "KeyConditionExpression": "sk = :x", "ExpressionAttributeValues": {":x": {"N": "3"}}}),
    );
    assert_eq!(er.message, "Query condition missed key schema element: pk");
    let er = err(
        &e,
        "Query",
        json!({"TableName": "qry", "KeyConditionExpression": "pk = :p", "FilterExpression": "sk > :x", "ExpressionAttributeValues": {":p": {"S": "p"}, ":x": {"N": "3"}}}),
    );
    assert!(
        er.message
            .contains("Filter Expression can only contain non-primary key attributes"),
        "{}",
        er.message
    );
    let s = ok(&e, "Scan", json!({"TableName": "qry"}));
    assert_eq!(s["Count"], 11);
    let mut total = 0;
    for seg in 0..3 {
        total += ok(
            &e,
            "Scan",
            json!({"TableName": "qry", "Segment": seg, "TotalSegments": 3}),
        )["Count"]
            .as_u64()
            .unwrap();
    }
    assert_eq!(total, 11);
}

#[test]
fn secondary_indexes_project_and_follow_writes() {
    let (e, _) = engine();
    ok(
        &e,
        "CreateTable",
        json!({
            "TableName": "idx",
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"}, {"AttributeName": "l", "AttributeType": "N"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "GlobalSecondaryIndexes": [{"IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}], "Projection": {"ProjectionType": "KEYS_ONLY"}}],
            "LocalSecondaryIndexes": [{"IndexName": "byl", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "l", "KeyType": "RANGE"}], "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["x"]}}],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
    for (sk, g, l) in [("a", "G1", 3), ("b", "G1", 1), ("c", "G2", 2)] {
        ok(
            &e,
            "PutItem",
            json!({"TableName": "idx", "Item": {"pk": {"S": "p"}, "sk": {"S": sk}, "g": {"S": g}, "l": {"N": l.to_string()}, "x": {"S": "x"}, "y": {"S": "y"}}}),
        );
    }
    ok(
        &e,
        "PutItem",
        json!({"TableName": "idx", "Item": {"pk": {"S": "p"}, "sk": {"S": "d"}}}),
    );
    let r = ok(
        &e,
        "Query",
        json!({"TableName": "idx", "IndexName": "byg", "KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": {"S": "G1"}}}),
    );
    assert_eq!(r["Count"], 2);
    assert_eq!(
        r["Items"][0],
        json!({"pk": {"S": "p"}, "sk": {"S": "a"}, "g": {"S": "G1"}})
    );
    let r = ok(
        &e,
        "Query",
        json!({"TableName": "idx", "IndexName": "byl", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p"}}}),
    );
    let ls: Vec<&str> = r["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["l"]["N"].as_str().unwrap())
        .collect();
    assert_eq!(ls, ["1", "2", "3"]);
    assert!(r["Items"][0].get("y").is_none() && r["Items"][0].get("x").is_some());
    let er = err(
        &e,
        "Query",
        json!({"TableName": "idx", "IndexName": "byg", "KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": {"S": "G1"}}, "ConsistentRead": true}),
    );
    assert_eq!(
        er.message,
        "Consistent reads are not supported on global secondary indexes"
    );
    // Moving an item between index partitions.
    ok(
        &e,
        "UpdateItem",
        json!({"TableName": "idx", "Key": {"pk": {"S": "p"}, "sk": {"S": "a"}}, "UpdateExpression": "SET g = :g", "ExpressionAttributeValues": {":g": {"S": "G2"}}}),
    );
    let r = ok(&e, "Scan", json!({"TableName": "idx", "IndexName": "byg"}));
    assert_eq!(r["Count"], 3);
    let er = err(
        &e,
        "PutItem",
        json!({"TableName": "idx", "Item": {"pk": {"S": "p"}, "sk": {"S": "z"}, "g": {"N": "1"}}}),
    );
    assert!(
        er.message.contains("Type mismatch for Index Key g"),
        "{}",
        er.message
    );
    // UpdateTable adds a GSI that is backfilled, and removes one.
    ok(
        &e,
        "UpdateTable",
        json!({"TableName": "idx", "AttributeDefinitions": [{"AttributeName": "x", "AttributeType": "S"}], "GlobalSecondaryIndexUpdates": [{"Create": {"IndexName": "byx", "KeySchema": [{"AttributeName": "x", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}}]}),
    );
    ok(
        &e,
        "UpdateTable",
        json!({"TableName": "idx", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "byg"}}]}),
    );
    let r = ok(
        &e,
        "Query",
        json!({"TableName": "idx", "IndexName": "byx", "KeyConditionExpression": "x = :x", "ExpressionAttributeValues": {":x": {"S": "x"}}}),
    );
    assert_eq!(r["Count"], 3);
    let d = ok(&e, "DescribeTable", json!({"TableName": "idx"}));
    assert_eq!(
        d["Table"]["GlobalSecondaryIndexes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn batches_enforce_limits_and_transactions_are_all_or_nothing() {
    let (e, _) = engine();
    create(&e, "bat", false);
    let puts: Vec<Value> = (0..25)
        .map(|i| json!({"PutRequest": {"Item": {"pk": {"S": format!("k{i}")}}}}))
        .collect();
    let r = ok(&e, "BatchWriteItem", json!({"RequestItems": {"bat": puts}}));
    assert_eq!(r["UnprocessedItems"], json!({}));
    let puts: Vec<Value> = (0..26)
        .map(|i| json!({"PutRequest": {"Item": {"pk": {"S": format!("k{i}")}}}}))
        .collect();
    assert_eq!(
        err(&e, "BatchWriteItem", json!({"RequestItems": {"bat": puts}})).code,
        ErrorCode::Validation
    );
    // Over 100 keys for one table break the member constraint; over 100 in all, the
    // operation's own limit.
    let keys: Vec<Value> = (0..101)
        .map(|i| json!({"pk": {"S": format!("k{i}")}}))
        .collect();
    let m = err(
        &e,
        "BatchGetItem",
        json!({"RequestItems": {"bat": {"Keys": keys}}}),
    )
    .message;
    assert!(
        m.starts_with("1 validation error detected: Value '[{pk={S=k0}}")
            && m.ends_with(
                "at 'requestItems.bat.member.keys' failed to satisfy constraint: Member must have length less than or equal to 100"
            ),
        "{m}"
    );
    let keys = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"pk": {"S": format!("k{i}")}}))
            .collect()
    };
    assert_eq!(
        err(
            &e,
            "BatchGetItem",
            json!({"RequestItems": {"bat": {"Keys": keys(60)}, "other": {"Keys": keys(41)}}})
        )
        .message,
        "Too many items requested for the BatchGetItem call"
    );
    let keys: Vec<Value> = (0..30)
        .map(|i| json!({"pk": {"S": format!("k{i}")}}))
        .collect();
    let r = ok(
        &e,
        "BatchGetItem",
        json!({"RequestItems": {"bat": {"Keys": keys}}}),
    );
    assert_eq!(r["Responses"]["bat"].as_array().unwrap().len(), 25);

    let tx = json!({"TransactItems": [
        {"Put": {"TableName": "bat", "Item": {"pk": {"S": "new"}}}},
        {"ConditionCheck": {"TableName": "bat", "Key": {"pk": {"S": "k0"}}, "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Delete": {"TableName": "bat", "Key": {"pk": {"S": "k1"}}}}
    ]});
    let er = err(&e, "TransactWriteItems", tx);
    assert_eq!(er.code, ErrorCode::TransactionCanceled);
    assert_eq!(
        er.message,
        "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed, None]"
    );
    assert_eq!(
        er.body()["CancellationReasons"][1]["Code"],
        "ConditionalCheckFailed"
    );
    assert_eq!(
        ok(
            &e,
            "GetItem",
            json!({"TableName": "bat", "Key": {"pk": {"S": "new"}}})
        ),
        json!({})
    );
    assert!(
        ok(
            &e,
            "GetItem",
            json!({"TableName": "bat", "Key": {"pk": {"S": "k1"}}})
        )
        .get("Item")
        .is_some()
    );
    ok(
        &e,
        "TransactWriteItems",
        json!({"TransactItems": [
            {"Put": {"TableName": "bat", "Item": {"pk": {"S": "new"}}}},
            {"Update": {"TableName": "bat", "Key": {"pk": {"S": "k0"}}, "UpdateExpression": "SET v = :v", "ExpressionAttributeValues": {":v": {"N": "7"}}}},
            {"Delete": {"TableName": "bat", "Key": {"pk": {"S": "k1"}}}}
        ]}),
    );
    let r = ok(
        &e,
        "TransactGetItems",
        json!({"TransactItems": [
            {"Get": {"TableName": "bat", "Key": {"pk": {"S": "new"}}}},
            {"Get": {"TableName": "bat", "Key": {"pk": {"S": "k1"}}}},
            {"Get": {"TableName": "bat", "Key": {"pk": {"S": "k0"}}, "ProjectionExpression": "v"}}
        ]}),
    );
    assert_eq!(
        r["Responses"],
        json!([{"Item": {"pk": {"S": "new"}}}, {}, {"Item": {"v": {"N": "7"}}}])
    );
    let er = err(
        &e,
        "TransactWriteItems",
        json!({"TransactItems": [
            {"Put": {"TableName": "bat", "Item": {"pk": {"S": "x"}}}},
            {"Delete": {"TableName": "bat", "Key": {"pk": {"S": "x"}}}}
        ]}),
    );
    assert_eq!(
        er.message,
        "Transaction request cannot include multiple operations on one item"
    );
}

#[test]
fn ttl_expires_items_by_the_injected_clock() {
    let (e, clock) = engine();
    create(&e, "ttl", false);
    ok(
        &e,
        "UpdateTimeToLive",
        json!({"TableName": "ttl", "TimeToLiveSpecification": {"Enabled": true, "AttributeName": "exp"}}),
    );
    assert_eq!(
        ok(&e, "DescribeTimeToLive", json!({"TableName": "ttl"}))["TimeToLiveDescription"]["TimeToLiveStatus"],
        "ENABLED"
    );
    let now = clock.now().as_secs();
    ok(
        &e,
        "PutItem",
        json!({"TableName": "ttl", "Item": {"pk": {"S": "soon"}, "exp": {"N": (now + 10).to_string()}}}),
    );
    ok(
        &e,
        "PutItem",
        json!({"TableName": "ttl", "Item": {"pk": {"S": "later"}, "exp": {"N": (now + 1000).to_string()}}}),
    );
    ok(
        &e,
        "PutItem",
        json!({"TableName": "ttl", "Item": {"pk": {"S": "never"}, "exp": {"S": "not a number"}}}),
    );
    assert_eq!(ok(&e, "Scan", json!({"TableName": "ttl"}))["Count"], 3);
    clock.advance(Duration::from_secs(11));
    assert_eq!(ok(&e, "Scan", json!({"TableName": "ttl"}))["Count"], 2);
    clock.advance(Duration::from_secs(1000));
    let r = ok(&e, "Scan", json!({"TableName": "ttl"}));
    assert_eq!(
        r["Items"],
        json!([{"pk": {"S": "never"}, "exp": {"S": "not a number"}}])
    );
    assert_eq!(err(&e, "UpdateTimeToLive", json!({"TableName": "ttl", "TimeToLiveSpecification": {"Enabled": true, "AttributeName": "exp"}})).message, "TimeToLive is already enabled");
}

#[test]
fn tags_round_trip() {
    let (e, _) = engine();
    create(&e, "tagged", false);
    let arn = ok(&e, "DescribeTable", json!({"TableName": "tagged"}))["Table"]["TableArn"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        &e,
        "TagResource",
        json!({"ResourceArn": arn, "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}),
    );
    ok(
        &e,
        "UntagResource",
        json!({"ResourceArn": arn, "TagKeys": ["a"]}),
    );
    assert_eq!(
        ok(&e, "ListTagsOfResource", json!({"ResourceArn": arn}))["Tags"],
        json!([{"Key": "b", "Value": "2"}])
    );
}

/// The SQLite backend as `crate::sqlite` builds it, restricted to table records.
pub(super) struct TestSqlite {
    conn: rusqlite::Connection,
    log: crate::table_log::ItemLog,
}

impl TestSqlite {
    /// Over `conn`, whose table schema is in place.
    pub(super) fn new(conn: rusqlite::Connection) -> TestSqlite {
        let log = crate::table_log::ItemLog::load(&conn).unwrap();
        TestSqlite { conn, log }
    }
}

impl Backend for TestSqlite {
    fn commit(&mut self, batch: &[Record]) -> Result<(), BackendError> {
        let tx = self.conn.transaction()?;
        {
            let mut sql = crate::table_record::Statements::default();
            for r in batch {
                if let Record::Table(t) = r {
                    crate::table_record::apply(&tx, t, &mut sql, &mut self.log)?;
                }
            }
            self.log.collect(&tx, &mut sql)?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[test]
fn recovery_rebuilds_tables_items_indexes_and_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let clock = ManualClock::new(Timestamp::from_secs(1_000));
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(crate::table_record::SCHEMA).unwrap();
        let e = TableEngine::new(
            Journal::start(Box::new(TestSqlite::new(conn)), false),
            Arc::new(clock.clone()),
        );
        ok(
            &e,
            "CreateTable",
            json!({
                "TableName": "rec", "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "g", "AttributeType": "N"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [{"IndexName": "gix", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}]
            }),
        );
        ok(
            &e,
            "UpdateTimeToLive",
            json!({"TableName": "rec", "TimeToLiveSpecification": {"Enabled": true, "AttributeName": "exp"}}),
        );
        for i in 0..20 {
            ok(
                &e,
                "PutItem",
                json!({"TableName": "rec", "Item": {"pk": {"S": format!("k{i}")}, "g": {"N": (i % 2).to_string()}, "n": {"N": "12345678901234567890.123456789"}, "exp": {"N": "2000"}}}),
            );
        }
        ok(
            &e,
            "DeleteItem",
            json!({"TableName": "rec", "Key": {"pk": {"S": "k0"}}}),
        );
        create(&e, "gone", false);
        ok(
            &e,
            "PutItem",
            json!({"TableName": "gone", "Item": {"pk": {"S": "x"}}}),
        );
        ok(&e, "DeleteTable", json!({"TableName": "gone"}));
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let state = load(&conn).unwrap();
    let e = TableEngine::from_state(
        state,
        Journal::start(Box::new(TestSqlite::new(conn)), false),
        Arc::new(clock.clone()),
    );
    assert_eq!(e.table_names(), ["rec"]);
    let r = ok(
        &e,
        "Query",
        json!({"TableName": "rec", "IndexName": "gix", "KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": {"N": "1"}}}),
    );
    assert_eq!(r["Count"], 10);
    assert_eq!(
        r["Items"][0]["n"],
        json!({"N": "12345678901234567890.123456789"})
    );
    assert_eq!(
        ok(&e, "DescribeTable", json!({"TableName": "rec"}))["Table"]["ItemCount"],
        19
    );
    clock.advance(Duration::from_secs(1_001));
    assert_eq!(ok(&e, "Scan", json!({"TableName": "rec"}))["Count"], 0);
}

#[test]
fn racing_conditional_writers_exactly_one_wins() {
    let (e, _) = engine();
    create(&e, "race", false);
    let e = Arc::new(e);
    for round in 0..200 {
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let handles: Vec<_> = (0..2)
            .map(|w| {
                let e = e.clone();
                let b = barrier.clone();
                std::thread::spawn(move || {
                    b.wait();
                    e.execute("PutItem", &json!({"TableName": "race", "Item": {"pk": {"S": format!("r{round}")}, "w": {"N": w.to_string()}}, "ConditionExpression": "attribute_not_exists(pk)"}))
                        .map(|(_, t)| t.wait())
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let wins = results.iter().filter(|r| matches!(r, Ok(Ok(())))).count();
        let lost = results
            .iter()
            .filter(|r| matches!(r, Err(e) if e.code == ErrorCode::ConditionalCheckFailed))
            .count();
        assert_eq!((wins, lost), (1, 1), "round {round}");
    }
}

// ---- property tests ----

fn arb_path() -> impl Strategy<Value = expr::Path> {
    let elem = prop_oneof![
        "[a-z][a-z0-9_]{0,4}x".prop_map(expr::PathElem::Name),
        "#[a-z0-9]{1,4}".prop_map(expr::PathElem::Placeholder),
    ];
    (
        elem,
        prop::collection::vec(
            prop_oneof![
                "[a-z][a-z0-9_]{0,4}x".prop_map(expr::PathElem::Name),
                (0u32..20).prop_map(expr::PathElem::Index),
            ],
            0..3,
        ),
    )
        .prop_map(|(first, rest)| {
            let mut v = vec![first];
            v.extend(rest);
            expr::Path(v)
        })
}

fn arb_operand() -> impl Strategy<Value = expr::Operand> {
    prop_oneof![
        arb_path().prop_map(expr::Operand::Path),
        ":[a-z0-9]{1,4}".prop_map(expr::Operand::Value),
        arb_path().prop_map(expr::Operand::Size),
    ]
}

fn arb_cond() -> impl Strategy<Value = expr::Cond> {
    use expr::ast::Cond;
    let op = prop_oneof![
        Just(expr::CmpOp::Eq),
        Just(expr::CmpOp::Ne),
        Just(expr::CmpOp::Lt),
        Just(expr::CmpOp::Le),
        Just(expr::CmpOp::Gt),
        Just(expr::CmpOp::Ge)
    ];
    let leaf = prop_oneof![
        (arb_operand(), op, arb_operand()).prop_map(|(a, o, b)| Cond::Cmp(a, o, b)),
        (arb_operand(), arb_operand(), arb_operand()).prop_map(|(a, b, c)| Cond::Between(a, b, c)),
        (arb_operand(), prop::collection::vec(arb_operand(), 1..4))
            .prop_map(|(a, l)| Cond::In(a, l)),
        arb_path().prop_map(Cond::AttributeExists),
        arb_path().prop_map(Cond::AttributeNotExists),
        (arb_operand(), arb_operand()).prop_map(|(a, o)| Cond::AttributeType(a, o)),
        (arb_operand(), arb_operand()).prop_map(|(a, b)| Cond::BeginsWith(a, b)),
        (arb_operand(), arb_operand()).prop_map(|(a, b)| Cond::Contains(a, b)),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Cond::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Cond::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| Cond::Not(Box::new(a))),
        ]
    })
}

fn arb_update() -> impl Strategy<Value = expr::Update> {
    use expr::ast::{SetOperand, SetValue};
    let leaf = prop_oneof![
        arb_path().prop_map(SetOperand::Path),
        ":[a-z]{1,3}".prop_map(SetOperand::Value)
    ];
    let operand = leaf.prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            (arb_path(), inner.clone()).prop_map(|(p, v)| SetOperand::IfNotExists(p, Box::new(v))),
            (inner.clone(), inner)
                .prop_map(|(a, b)| SetOperand::ListAppend(Box::new(a), Box::new(b))),
        ]
    });
    let value = prop_oneof![
        operand.clone().prop_map(SetValue::Operand),
        (operand.clone(), operand.clone()).prop_map(|(a, b)| SetValue::Plus(a, b)),
        (operand.clone(), operand).prop_map(|(a, b)| SetValue::Minus(a, b)),
    ];
    (
        prop::collection::vec((arb_path(), value), 0..3),
        prop::collection::vec(arb_path(), 0..3),
        prop::collection::vec((arb_path(), ":[a-z]{1,3}"), 0..2),
        prop::collection::vec((arb_path(), ":[a-z]{1,3}"), 0..2),
    )
        .prop_filter("non-empty", |(s, r, a, d)| {
            !(s.is_empty() && r.is_empty() && a.is_empty() && d.is_empty())
        })
        .prop_map(|(set, remove, add, delete)| expr::Update {
            set,
            remove,
            add,
            delete,
        })
}

/// Whether `u` has a list_append directly over another list_append.
fn nested_append(u: &expr::Update) -> bool {
    use expr::ast::{SetOperand, SetValue};
    fn op(o: &SetOperand) -> bool {
        match o {
            SetOperand::ListAppend(a, b) => {
                matches!(**a, SetOperand::ListAppend(..))
                    || matches!(**b, SetOperand::ListAppend(..))
                    || op(a)
                    || op(b)
            }
            SetOperand::IfNotExists(_, d) => op(d),
            _ => false,
        }
    }
    u.set.iter().any(|(_, v)| match v {
        SetValue::Operand(o) => op(o),
        SetValue::Plus(a, b) | SetValue::Minus(a, b) => op(a) || op(b),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn condition_display_round_trips(c in arb_cond()) {
        let text = c.to_string();
        let parsed = expr::parse_condition(&text, "ConditionExpression");
        // Generated names may collide with reserved words; those must be rejected, not misparsed.
        match parsed {
            Ok(p) => prop_assert_eq!(p, c),
            Err(e) => prop_assert!(e.message.contains("reserved keyword") || e.message.contains("Expression size"), "{}: {}", text, e.message),
        }
    }

    #[test]
    fn update_display_round_trips(u in arb_update()) {
        let text = u.to_string();
        match expr::parse_update(&text) {
            Ok(p) => prop_assert_eq!(p, u),
            // DynamoDB refuses list_append directly over list_append.
            Err(e) if e.message.contains("not allowed to be used this way") => {
                prop_assert!(nested_append(&u), "{}: {}", text, e.message)
            }
            Err(e) => prop_assert!(e.message.contains("reserved keyword"), "{}: {}", text, e.message),
        }
    }

    #[test]
    fn parsers_never_panic(s in "\\PC{0,80}") {
        let _ = expr::parse_condition(&s, "ConditionExpression");
        let _ = expr::parse_update(&s);
        let _ = expr::parse_projection(&s);
    }

    #[test]
    fn parsers_never_panic_on_expression_like_input(s in "[a-z#:()\\[\\]0-9 ,.=<>+-]{0,60}|(SET|REMOVE|ADD|DELETE|AND|OR|NOT|BETWEEN|IN|size|begins_with|if_not_exists|list_append| |a|:v|#n|\\(|\\)|,|=|\\+|\\[1\\]|\\.){0,30}") {
        let _ = expr::parse_condition(&s, "ConditionExpression");
        let _ = expr::parse_update(&s);
        let _ = expr::parse_projection(&s);
    }

    #[test]
    fn numbers_round_trip_and_order_like_decimals(a in -1_000_000i64..1_000_000, b in -1_000_000i64..1_000_000, sa in 0u32..6, sb in 0u32..6) {
        // a / 10^sa as a decimal string; compare with exact integer arithmetic.
        let dec = |v: i64, s: u32| {
            let neg = v < 0;
            let digits = format!("{:0>width$}", v.unsigned_abs(), width = s as usize + 1);
            let (i, f) = digits.split_at(digits.len() - s as usize);
            format!("{}{}{}{}", if neg { "-" } else { "" }, i, if s > 0 { "." } else { "" }, f)
        };
        let na = value::Number::parse(&dec(a, sa)).unwrap();
        let nb = value::Number::parse(&dec(b, sb)).unwrap();
        let scale = 10i128.pow(6);
        let ia = a as i128 * scale / 10i128.pow(sa);
        let ib = b as i128 * scale / 10i128.pow(sb);
        prop_assert_eq!(na.cmp(&nb), ia.cmp(&ib));
        let sum = na.add(&nb, false).unwrap();
        let expect = ia + ib;
        let back = value::Number::parse(&sum.to_string()).unwrap();
        prop_assert_eq!(&back, &sum);
        let whole = value::Number::parse(&format!("{}e-6", expect)).unwrap();
        prop_assert_eq!(sum, whole);
    }

    #[test]
    fn attribute_json_never_panics(v in any::<i64>(), s in "\\PC{0,12}") {
        for j in [json!({"N": s.clone()}), json!({"B": s.clone()}), json!({"NS": [s.clone(), v.to_string()]}), json!({"X": v}), json!({"S": v}), json!({"L": [{"N": s.clone()}]})] {
            let _ = value::AttrValue::from_json(&j);
        }
    }
}

// ---- model-based test: random operations vs a BTreeMap reference ----

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8, i64),
    PutIfAbsent(u8, u8, i64),
    Delete(u8, u8),
    Add(u8, u8, i64),
    DeleteIfGreater(u8, u8, i64),
    Query(u8, bool, Option<usize>),
}

fn arb_op() -> impl Strategy<Value = Op> {
    let k = 0u8..4;
    let s = 0u8..6;
    prop_oneof![
        (k.clone(), s.clone(), -50i64..50).prop_map(|(a, b, v)| Op::Put(a, b, v)),
        (k.clone(), s.clone(), -50i64..50).prop_map(|(a, b, v)| Op::PutIfAbsent(a, b, v)),
        (k.clone(), s.clone()).prop_map(|(a, b)| Op::Delete(a, b)),
        (k.clone(), s.clone(), -5i64..5).prop_map(|(a, b, v)| Op::Add(a, b, v)),
        (k.clone(), s, -50i64..50).prop_map(|(a, b, v)| Op::DeleteIfGreater(a, b, v)),
        (k, any::<bool>(), prop::option::of(1usize..4)).prop_map(|(a, f, l)| Op::Query(a, f, l)),
    ]
}

fn key(a: u8, b: u8) -> Value {
    json!({"pk": {"S": format!("p{a}")}, "sk": {"N": b.to_string()}})
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_operations_agree_with_a_btreemap(ops in prop::collection::vec(arb_op(), 1..60)) {
        let (e, _) = engine();
        create(&e, "mdl", true);
        let mut model: BTreeMap<(u8, u8), i64> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Put(a, b, v) => {
                    let mut item = key(a, b);
                    item["v"] = json!({"N": v.to_string()});
                    ok(&e, "PutItem", json!({"TableName": "mdl", "Item": item}));
                    model.insert((a, b), v);
                }
                Op::PutIfAbsent(a, b, v) => {
                    let mut item = key(a, b);
                    item["v"] = json!({"N": v.to_string()});
                    let r = e.execute("PutItem", &json!({"TableName": "mdl", "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}));
                    let absent = !model.contains_key(&(a, b));
                    prop_assert_eq!(r.is_ok(), absent);
                    if absent {
                        model.insert((a, b), v);
                    }
                }
                Op::Delete(a, b) => {
                    ok(&e, "DeleteItem", json!({"TableName": "mdl", "Key": key(a, b)}));
                    model.remove(&(a, b));
                }
                Op::Add(a, b, d) => {
                    let r = ok(&e, "UpdateItem", json!({"TableName": "mdl", "Key": key(a, b), "UpdateExpression": "ADD v :d", "ExpressionAttributeValues": {":d": {"N": d.to_string()}}, "ReturnValues": "ALL_NEW"}));
                    let v = model.entry((a, b)).or_insert(0);
                    *v += d;
                    prop_assert_eq!(&r["Attributes"]["v"], &json!({"N": v.to_string()}));
                }
                Op::DeleteIfGreater(a, b, t) => {
                    let r = e.execute("DeleteItem", &json!({"TableName": "mdl", "Key": key(a, b), "ConditionExpression": "v > :t", "ExpressionAttributeValues": {":t": {"N": t.to_string()}}}));
                    let hit = model.get(&(a, b)).is_some_and(|v| *v > t);
                    prop_assert_eq!(r.is_ok(), hit);
                    if hit {
                        model.remove(&(a, b));
                    }
                }
                Op::Query(a, forward, limit) => {
                    let mut got = Vec::new();
                    let mut esk = Value::Null;
                    loop {
                        let mut req = json!({"TableName": "mdl", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": format!("p{a}")}}, "ScanIndexForward": forward});
                        if let Some(l) = limit { req["Limit"] = json!(l); }
                        if !esk.is_null() { req["ExclusiveStartKey"] = esk.clone(); }
                        let r = ok(&e, "Query", req);
                        for i in r["Items"].as_array().unwrap() {
                            got.push((i["sk"]["N"].as_str().unwrap().parse::<u8>().unwrap(), i["v"]["N"].as_str().unwrap().parse::<i64>().unwrap()));
                        }
                        match r.get("LastEvaluatedKey") { Some(k) => esk = k.clone(), None => break }
                    }
                    let mut want: Vec<(u8, i64)> = model.range((a, 0)..=(a, u8::MAX)).map(|((_, b), v)| (*b, *v)).collect();
                    if !forward { want.reverse(); }
                    prop_assert_eq!(got, want);
                }
            }
        }
        let scan = ok(&e, "Scan", json!({"TableName": "mdl"}));
        prop_assert_eq!(scan["Count"].as_u64().unwrap() as usize, model.len());
    }
}

#[test]
fn lsi_tables_enforce_the_item_collection_limit() {
    let (e, _) = engine();
    ok(
        &e,
        "CreateTable",
        json!({
            "TableName": "coll", "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}, {"AttributeName": "l", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "LocalSecondaryIndexes": [{"IndexName": "byl", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "l", "KeyType": "RANGE"}], "Projection": {"ProjectionType": "KEYS_ONLY"}}]
        }),
    );
    e.state.write().get_mut("coll").unwrap().collection_limit = 1000;
    let big = "x".repeat(300);
    for i in 0..3 {
        ok(
            &e,
            "PutItem",
            json!({"TableName": "coll", "Item": {"pk": {"S": "p"}, "sk": {"S": i.to_string()}, "v": {"S": big}}}),
        );
    }
    let er = err(
        &e,
        "PutItem",
        json!({"TableName": "coll", "Item": {"pk": {"S": "p"}, "sk": {"S": "3"}, "v": {"S": big}}}),
    );
    assert_eq!(er.code, ErrorCode::ItemCollectionSizeLimitExceeded);
    assert_eq!(er.body()["ItemCollectionKey"], json!({"pk": {"S": "p"}}));
    // Other partitions and shrinking writes are unaffected.
    ok(
        &e,
        "PutItem",
        json!({"TableName": "coll", "Item": {"pk": {"S": "q"}, "sk": {"S": "3"}, "v": {"S": big}}}),
    );
    ok(
        &e,
        "PutItem",
        json!({"TableName": "coll", "Item": {"pk": {"S": "p"}, "sk": {"S": "0"}}}),
    );
}

/// An item's local index entries count toward its item collection (AWS: key, index key,
/// projected attributes and 100 bytes per entry), so the same items with the index key hit
/// the limit sooner than without it.
#[test]
fn lsi_entries_count_toward_the_item_collection_limit() {
    let (e, _) = engine();
    ok(
        &e,
        "CreateTable",
        json!({
            "TableName": "coll", "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}, {"AttributeName": "l", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "LocalSecondaryIndexes": [{"IndexName": "byl", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "l", "KeyType": "RANGE"}], "Projection": {"ProjectionType": "KEYS_ONLY"}}]
        }),
    );
    // Each item is 309 bytes; its KEYS_ONLY entry adds 100 + 2 (l) + 3 (pk) + 3 (sk).
    e.state.write().get_mut("coll").unwrap().collection_limit = 1000;
    let big = "x".repeat(300);
    let item = |pk: &str, sk: &str, l: Option<&str>| {
        let mut i = json!({"pk": {"S": pk}, "sk": {"S": sk}, "v": {"S": big}, "w": {"S": "a"}});
        if let Some(l) = l {
            i["l"] = json!({"S": l});
            i.as_object_mut().unwrap().remove("w");
        }
        json!({"TableName": "coll", "Item": i})
    };
    for sk in ["0", "1", "2"] {
        ok(&e, "PutItem", item("p", sk, None));
    }
    ok(&e, "PutItem", item("q", "0", Some("a")));
    ok(&e, "PutItem", item("q", "1", Some("b")));
    let er = err(&e, "PutItem", item("q", "2", Some("c")));
    assert_eq!(er.code, ErrorCode::ItemCollectionSizeLimitExceeded);
    assert_eq!(er.body()["ItemCollectionKey"], json!({"pk": {"S": "q"}}));
}

#[test]
fn scan_and_query_pages_stop_at_one_megabyte() {
    let (e, _) = engine();
    create(&e, "big", true);
    let blob = "y".repeat(100 * 1024);
    for i in 0..25 {
        ok(
            &e,
            "PutItem",
            json!({"TableName": "big", "Item": {"pk": {"S": "p"}, "sk": {"N": i.to_string()}, "blob": {"S": blob}}}),
        );
    }
    for op in ["Scan", "Query"] {
        let mut req = json!({"TableName": "big"});
        if op == "Query" {
            req["KeyConditionExpression"] = json!("pk = :p");
            req["ExpressionAttributeValues"] = json!({":p": {"S": "p"}});
        }
        let mut pages = Vec::new();
        loop {
            let r = ok(&e, op, req.clone());
            pages.push(r["Count"].as_u64().unwrap());
            match r.get("LastEvaluatedKey") {
                Some(k) => req["ExclusiveStartKey"] = k.clone(),
                None => break,
            }
        }
        // Items are ~100 KB: ten stay under 1 MB, the eleventh crosses it and ends the page.
        assert_eq!(pages, [11, 11, 3], "{op}");
    }
}

#[test]
fn legacy_conditional_parameters_are_translated() {
    let (e, _) = engine();
    create(&e, "leg", true);
    for i in 0..6 {
        ok(
            &e,
            "PutItem",
            json!({"TableName": "leg", "Item": {"pk": {"S": "p"}, "sk": {"N": i.to_string()}, "odd": {"BOOL": i % 2 == 1}}}),
        );
    }
    let r = ok(
        &e,
        "Query",
        json!({"TableName": "leg",
        "KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}, "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}, {"N": "4"}]}},
        "QueryFilter": {"odd": {"ComparisonOperator": "EQ", "AttributeValueList": [{"BOOL": true}]}}}),
    );
    assert_eq!(r["Count"], 2);
    assert_eq!(r["ScannedCount"], 4);
    let r = ok(
        &e,
        "Scan",
        json!({"TableName": "leg", "ScanFilter": {"sk": {"ComparisonOperator": "IN", "AttributeValueList": [{"N": "0"}, {"N": "5"}]}, "odd": {"ComparisonOperator": "NULL"}}, "ConditionalOperator": "OR"}),
    );
    assert_eq!(r["Count"], 2);
    let put = json!({"TableName": "leg", "Item": {"pk": {"S": "p"}, "sk": {"N": "0"}}, "Expected": {"pk": {"Exists": false}}});
    assert_eq!(
        err(&e, "PutItem", put).code,
        ErrorCode::ConditionalCheckFailed
    );
    ok(
        &e,
        "DeleteItem",
        json!({"TableName": "leg", "Key": {"pk": {"S": "p"}, "sk": {"N": "0"}}, "Expected": {"odd": {"Value": {"BOOL": false}}}}),
    );
    let er = err(
        &e,
        "Scan",
        json!({"TableName": "leg", "ScanFilter": {"odd": {"ComparisonOperator": "EQ", "AttributeValueList": [{"BOOL": true}]}}, "FilterExpression": "odd = :t", "ExpressionAttributeValues": {":t": {"BOOL": true}}}),
    );
    assert!(
        er.message
            .starts_with("Can not use both expression and non-expression parameters"),
        "{}",
        er.message
    );
}

#[test]
fn tables_go_creating_active_and_deleting_on_the_clock() {
    let (e, clock) = engine();
    e.set_status_delay(Duration::from_millis(500));
    let created = ok(
        &e,
        "CreateTable",
        json!({
            "TableName": "slow",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
    assert_eq!(created["TableDescription"]["TableStatus"], "CREATING");
    let item = json!({"TableName": "slow", "Item": {"pk": {"S": "a"}}});
    assert_eq!(
        err(&e, "PutItem", item.clone()).code,
        ErrorCode::ResourceNotFound
    );
    assert_eq!(
        err(&e, "DeleteTable", json!({"TableName": "slow"})).code,
        ErrorCode::ResourceInUse
    );
    // A malformed change is refused as invalid first, a valid one as in use.
    assert_eq!(
        err(
            &e,
            "UpdateTable",
            json!({"TableName": "slow", "GlobalSecondaryIndexUpdates": [{}]})
        )
        .code,
        ErrorCode::Validation
    );
    assert_eq!(
        err(
            &e,
            "UpdateTable",
            json!({"TableName": "slow", "BillingMode": "PROVISIONED", "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}})
        )
        .code,
        ErrorCode::ResourceInUse
    );
    clock.advance(Duration::from_millis(499));
    let d = ok(&e, "DescribeTable", json!({"TableName": "slow"}));
    assert_eq!(d["Table"]["TableStatus"], "CREATING");
    assert_eq!(
        d["Table"]["BillingModeSummary"],
        json!({"BillingMode": "PAY_PER_REQUEST"})
    );
    clock.advance(Duration::from_millis(1));
    let d = ok(&e, "DescribeTable", json!({"TableName": "slow"}));
    assert_eq!(d["Table"]["TableStatus"], "ACTIVE");
    // On demand since it was created.
    assert_eq!(
        d["Table"]["BillingModeSummary"]["LastUpdateToPayPerRequestDateTime"],
        d["Table"]["CreationDateTime"]
    );
    ok(&e, "PutItem", item.clone());
    let gone = ok(&e, "DeleteTable", json!({"TableName": "slow"}));
    assert_eq!(gone["TableDescription"]["TableStatus"], "DELETING");
    // DeleteTable's description leaves out the schema and the creation time.
    for member in ["KeySchema", "AttributeDefinitions", "CreationDateTime"] {
        assert!(gone["TableDescription"].get(member).is_none(), "{member}");
    }
    assert_eq!(gone["TableDescription"]["TableName"], "slow");
    let d = ok(&e, "DescribeTable", json!({"TableName": "slow"}));
    assert_eq!(d["Table"]["TableStatus"], "DELETING");
    assert_eq!(err(&e, "PutItem", item).code, ErrorCode::ResourceNotFound);
    clock.advance(Duration::from_millis(500));
    assert_eq!(
        err(&e, "DescribeTable", json!({"TableName": "slow"})).code,
        ErrorCode::ResourceNotFound
    );
}

#[test]
fn boolean_members_read_strings_as_dynamodb_parser_does() {
    let (e, _) = engine();
    create(&e, "bools", false);
    ok(
        &e,
        "PutItem",
        json!({"TableName": "bools", "Item": {"pk": {"S": "a"}, "t": {"BOOL": "YES"}, "f": {"BOOL": "0"}, "n": {"NULL": "1"}}}),
    );
    let got = ok(
        &e,
        "GetItem",
        json!({"TableName": "bools", "Key": {"pk": {"S": "a"}}, "ConsistentRead": "True"}),
    );
    assert_eq!(
        got["Item"],
        json!({"pk": {"S": "a"}, "t": {"BOOL": true}, "f": {"BOOL": false}, "n": {"NULL": true}})
    );
    for bad in ["maybe", "23", ""] {
        let er = err(
            &e,
            "PutItem",
            json!({"TableName": "bools", "Item": {"pk": {"S": "a"}, "t": {"BOOL": bad}}}),
        );
        assert_eq!(er.code, ErrorCode::Serialization, "{bad}: {}", er.message);
        let er = err(
            &e,
            "GetItem",
            json!({"TableName": "bools", "Key": {"pk": {"S": "a"}}, "ConsistentRead": bad}),
        );
        assert_eq!(er.code, ErrorCode::Serialization, "{bad}: {}", er.message);
    }
    // A value read from a string is typed like any other: ADD refuses it by its type.
    for (v, ty) in [
        (json!({"NULL": "yes"}), "NULL"),
        (json!({"BOOL": "no"}), "BOOLEAN"),
    ] {
        let er = err(
            &e,
            "UpdateItem",
            json!({"TableName": "bools", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "add a.b :a", "ExpressionAttributeValues": {":a": v}}),
        );
        assert_eq!(
            er.message,
            format!(
                "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: {ty}"
            )
        );
    }
}

#[test]
fn throughput_changes_describe_old_units_while_updating_and_stamp_their_direction() {
    let (e, clock) = engine();
    let t0 = clock.now().as_millis();
    ok(
        &e,
        "CreateTable",
        json!({
            "TableName": "tpt",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        }),
    );
    e.set_status_delay(Duration::from_millis(500));
    let units = |r: i64, w: i64| json!({"TableName": "tpt", "ProvisionedThroughput": {"ReadCapacityUnits": r, "WriteCapacityUnits": w}});
    let secs = |ms: u64| ms as f64 / 1000.0;
    clock.advance(Duration::from_millis(1000));
    let up = ok(&e, "UpdateTable", units(15, 15))["TableDescription"].clone();
    assert_eq!(up["TableStatus"], "UPDATING");
    let pt = &up["ProvisionedThroughput"];
    assert_eq!(
        (
            pt["ReadCapacityUnits"].clone(),
            pt["WriteCapacityUnits"].clone()
        ),
        (json!(5), json!(5))
    );
    assert_eq!(pt["LastIncreaseDateTime"], json!(secs(t0 + 1000)));
    assert!(pt.get("LastDecreaseDateTime").is_none(), "{pt}");
    assert_eq!(pt["NumberOfDecreasesToday"], 0);
    clock.advance(Duration::from_millis(500));
    let d = ok(&e, "DescribeTable", json!({"TableName": "tpt"}))["Table"].clone();
    assert_eq!(d["TableStatus"], "ACTIVE");
    let pt = &d["ProvisionedThroughput"];
    assert_eq!(
        (
            pt["ReadCapacityUnits"].clone(),
            pt["WriteCapacityUnits"].clone()
        ),
        (json!(15), json!(15))
    );
    // The increase is stamped again when it completes.
    assert_eq!(pt["LastIncreaseDateTime"], json!(secs(t0 + 1500)));
    let down = ok(&e, "UpdateTable", units(5, 15))["TableDescription"].clone();
    let pt = &down["ProvisionedThroughput"];
    assert_eq!(pt["ReadCapacityUnits"], 15);
    assert_eq!(pt["LastIncreaseDateTime"], json!(secs(t0 + 1500)));
    assert_eq!(pt["LastDecreaseDateTime"], json!(secs(t0 + 1500)));
    assert_eq!(pt["NumberOfDecreasesToday"], 0);
    clock.advance(Duration::from_millis(700));
    let pt = ok(&e, "DescribeTable", json!({"TableName": "tpt"}))["Table"]["ProvisionedThroughput"]
        .clone();
    assert_eq!(
        (
            pt["ReadCapacityUnits"].clone(),
            pt["WriteCapacityUnits"].clone()
        ),
        (json!(5), json!(15))
    );
    assert_eq!(pt["LastDecreaseDateTime"], json!(secs(t0 + 2200)));
    assert_eq!(pt["NumberOfDecreasesToday"], 1);
    // Decreases are counted per UTC day.
    clock.advance(Duration::from_secs(86_400));
    let pt = ok(&e, "DescribeTable", json!({"TableName": "tpt"}))["Table"]["ProvisionedThroughput"]
        .clone();
    assert_eq!(pt["NumberOfDecreasesToday"], 0);
    // With no delay the change completes at once.
    e.set_status_delay(Duration::ZERO);
    let now = ok(&e, "UpdateTable", units(4, 15))["TableDescription"].clone();
    assert_eq!(now["TableStatus"], "ACTIVE");
    assert_eq!(now["ProvisionedThroughput"]["ReadCapacityUnits"], 4);
    assert_eq!(now["ProvisionedThroughput"]["NumberOfDecreasesToday"], 1);
}

#[test]
fn scan_returns_partitions_in_hash_order_and_segments_split_it() {
    let (e, _) = engine();
    create(&e, "hsh", false);
    let keys = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "aardman", "hello", "zapf",
    ];
    for k in keys {
        ok(
            &e,
            "PutItem",
            json!({"TableName": "hsh", "Item": {"pk": {"S": k}}}),
        );
    }
    let got: Vec<String> = ok(&e, "Scan", json!({"TableName": "hsh"}))["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["pk"]["S"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        got,
        [
            "2", "8", "9", "1", "6", "hello", "0", "5", "4", "aardman", "7", "3", "zapf"
        ]
    );
    let mut halves = Vec::new();
    for s in 0..2 {
        let r = ok(
            &e,
            "Scan",
            json!({"TableName": "hsh", "Segment": s, "TotalSegments": 2}),
        );
        halves.extend(r["Items"].as_array().unwrap().clone());
    }
    assert_eq!(halves.len(), keys.len());
    // Paging with Limit walks the same order and ends with a LastEvaluatedKey at the limit.
    let page = ok(&e, "Scan", json!({"TableName": "hsh", "Limit": 13}));
    assert_eq!(page["Count"], 13);
    assert_eq!(page["LastEvaluatedKey"]["pk"]["S"], "zapf");
    let page = ok(
        &e,
        "Scan",
        json!({"TableName": "hsh", "Limit": 2, "ExclusiveStartKey": {"pk": {"S": "6"}}}),
    );
    let keys: Vec<&str> = page["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["pk"]["S"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["hello", "0"]);
}

#[test]
fn attribute_updates_put_add_and_delete() {
    let (e, _) = engine();
    create(&e, "upd", false);
    let key = json!({"pk": {"S": "k"}});
    let r = ok(
        &e,
        "UpdateItem",
        json!({"TableName": "upd", "Key": key, "ReturnValues": "UPDATED_NEW", "AttributeUpdates": {
            "n": {"Action": "ADD", "Value": {"N": "5"}},
            "s": {"Action": "ADD", "Value": {"SS": ["a", "b"]}},
            "l": {"Action": "ADD", "Value": {"L": [{"S": "x"}]}},
            "p": {"Value": {"S": "put"}}
        }}),
    );
    assert_eq!(r["Attributes"]["n"], json!({"N": "5"}));
    ok(
        &e,
        "UpdateItem",
        json!({"TableName": "upd", "Key": key, "AttributeUpdates": {
            "n": {"Action": "ADD", "Value": {"N": "-7"}},
            "s": {"Action": "DELETE", "Value": {"SS": ["a", "b"]}},
            "l": {"Action": "ADD", "Value": {"L": [{"S": "y"}]}},
            "p": {"Action": "DELETE"}
        }, "Expected": {"p": {"Value": {"S": "put"}}}}),
    );
    let item = &ok(&e, "GetItem", json!({"TableName": "upd", "Key": key}))["Item"];
    assert_eq!(
        *item,
        json!({"pk": {"S": "k"}, "n": {"N": "-2"}, "l": {"L": [{"S": "x"}, {"S": "y"}]}})
    );
    let mismatch = err(
        &e,
        "UpdateItem",
        json!({"TableName": "upd", "Key": key, "AttributeUpdates": {
            "n": {"Action": "ADD", "Value": {"SS": ["z"]}}
        }}),
    );
    assert_eq!(mismatch.message, "Type mismatch for attribute to update");
    let no_value = err(
        &e,
        "UpdateItem",
        json!({"TableName": "upd", "Key": key, "AttributeUpdates": {"x": {"Action": "PUT"}}}),
    );
    assert!(no_value.message.contains("Only DELETE action is allowed"));
    let key_attr = err(
        &e,
        "UpdateItem",
        json!({"TableName": "upd", "Key": key, "AttributeUpdates": {"pk": {"Value": {"S": "q"}}}}),
    );
    assert!(
        key_attr
            .message
            .contains("This attribute is part of the key")
    );
}

#[test]
fn consumed_capacity_follows_dynamodb_rules() {
    let (e, _) = engine();
    create(&e, "cap", false);
    let big = "x".repeat(1500);
    let put = ok(
        &e,
        "PutItem",
        json!({"TableName": "cap", "Item": {"pk": {"S": "a"}, "v": {"S": big}},
               "ReturnConsumedCapacity": "INDEXES"}),
    );
    assert_eq!(
        put["ConsumedCapacity"],
        json!({"TableName": "cap", "CapacityUnits": 2.0, "Table": {"CapacityUnits": 2.0}})
    );
    // Replacing a 2 KB item by a small one still costs the larger of the two.
    let put = ok(
        &e,
        "PutItem",
        json!({"TableName": "cap", "Item": {"pk": {"S": "a"}}, "ReturnConsumedCapacity": "TOTAL"}),
    );
    assert_eq!(put["ConsumedCapacity"]["CapacityUnits"], 2.0);
    let get = ok(
        &e,
        "GetItem",
        json!({"TableName": "cap", "Key": {"pk": {"S": "nope"}}, "ConsistentRead": true,
               "ReturnConsumedCapacity": "TOTAL"}),
    );
    assert_eq!(get["ConsumedCapacity"]["CapacityUnits"], 1.0);
    let batch = ok(
        &e,
        "BatchGetItem",
        json!({"RequestItems": {"cap": {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}, {"pk": {"S": "c"}}]}},
               "ReturnConsumedCapacity": "TOTAL"}),
    );
    assert_eq!(
        batch["ConsumedCapacity"],
        json!([{"TableName": "cap", "CapacityUnits": 1.5}])
    );
}

#[test]
fn tagging_refuses_arns_as_dynamodb_does() {
    let (e, _) = engine();
    let m = |op: &str, req: Value| {
        let x = err(&e, op, req);
        (x.code, x.message)
    };
    assert_eq!(
        m("ListTagsOfResource", json!({})),
        (ErrorCode::Validation, "Invalid TableArn".into())
    );
    let (code, msg) = m("TagResource", json!({"ResourceArn": "", "Tags": []}));
    assert_eq!(code, ErrorCode::AccessDenied);
    assert!(
        msg.ends_with("is not authorized to perform: dynamodb:TagResource on resource: *"),
        "{msg}"
    );
    assert_eq!(
        err(
            &e,
            "UntagResource",
            json!({"ResourceArn": "a:b:c:d:e/f", "TagKeys": ["k"]})
        )
        .body()["Message"],
        "User: arn:aws:iam::000000000000:root is not authorized to perform: dynamodb:UntagResource on resource: a:b:c:d:e/f"
    );
    let arn = "arn:aws:dynamodb:us-east-1:000000000000:table/ab";
    assert_eq!(
        m("ListTagsOfResource", json!({ "ResourceArn": arn })).1,
        format!("Invalid TableArn: Invalid ResourceArn provided as input {arn}")
    );
    let arn = "arn:aws:dynamodb:us-east-1:000000000000:table/nothere";
    assert_eq!(
        m("TagResource", json!({"ResourceArn": arn, "Tags": []})).1,
        "Atleast one Tag needs to be provided as Input."
    );
    assert_eq!(
        m(
            "TagResource",
            json!({"ResourceArn": arn, "Tags": [{"Key": "a", "Value": "b"}]})
        ),
        (
            ErrorCode::ResourceNotFound,
            format!("Requested resource not found: ResourcArn: {arn} not found")
        )
    );
    assert_eq!(
        m(
            "UntagResource",
            json!({"ResourceArn": arn, "TagKeys": ["a"]})
        ),
        (
            ErrorCode::ResourceNotFound,
            "Requested resource not found".into()
        )
    );
}

/// Query answers each mistake with DynamoDB's message, in DynamoDB's order: request-only
/// checks (filters, ExclusiveStartKey values, expressions, key-condition shape) before the
/// table is looked up, then the key schema, the start key and the filter (messages as
/// dynalite's suite records them against DynamoDB).
#[test]
fn query_validation_follows_dynamodb_order() {
    let (e, _) = engine();
    create(&e, "qtab", true);
    let m = |req: Value| err(&e, "Query", req).message;
    let v = |x: &str| json!({":a": {"S": x}});
    // Before the table lookup: the table does not exist.
    assert_eq!(
        m(
            json!({"TableName": "nope", "KeyConditions": {"a": {"ComparisonOperator": "LT", "AttributeValueList": [{"BOOL": true}]}}})
        ),
        "One or more parameter values were invalid: ComparisonOperator LT is not valid for BOOL AttributeValue type"
    );
    assert_eq!(
        m(
            json!({"TableName": "nope", "KeyConditions": {"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"S": "b"}, {"S": "a"}]}}})
        ),
        "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"
    );
    assert_eq!(
        m(
            json!({"TableName": "nope", "QueryFilter": {}, "AttributesToGet": ["a", "a"], "ExclusiveStartKey": {"a": {}}})
        ),
        "One or more parameter values were invalid: Duplicate value in attribute name: a"
    );
    assert_eq!(
        m(
            json!({"TableName": "nope", "KeyConditions": {"a": {"ComparisonOperator": "EQ"}}, "ExclusiveStartKey": {"a": {}}})
        ),
        "The provided starting key is invalid: Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
    );
    assert_eq!(
        m(json!({"TableName": "nope", "ExclusiveStartKey": {"a": {"NS": ["1", "1"]}}})),
        "Input collection contains duplicates"
    );
    for (expr, want) in [
        (
            "a > :a and b > :a or a > :a",
            "Invalid operator used in KeyConditionExpression: OR",
        ),
        (
            "attribute_type(a, :a)",
            "Invalid operator used in KeyConditionExpression: attribute_type",
        ),
        (
            "begins_with(:a, b)",
            "Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its first operand",
        ),
        (
            "a > size(b)",
            "KeyConditionExpressions cannot contain nested operations",
        ),
        (
            "b > a.b",
            "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition",
        ),
        (
            "a.d > :a",
            "KeyConditionExpressions cannot have conditions on nested attributes",
        ),
        (
            ":a > :a",
            "Invalid condition in KeyConditionExpression: No key attribute specified",
        ),
        (
            "b > :a and b < :a",
            "KeyConditionExpressions must only contain one condition per key",
        ),
        (
            "a = :a and b = :a and c = :a",
            "Conditions can be of length 1 or 2 only",
        ),
    ] {
        let mut req = json!({"TableName": "nope", "KeyConditionExpression": expr});
        if expr.contains(":a") {
            req["ExpressionAttributeValues"] = v(if expr.starts_with("attribute_type") {
                "S"
            } else {
                "x"
            });
        }
        let got = m(req);
        assert_eq!(got, want, "{expr}");
    }
    assert_eq!(
        m(
            json!({"TableName": "nope", "KeyConditionExpression": "attribute_type(a, b)", "FilterExpression": ""})
        ),
        "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: attribute_type, operand type: {NS,SS,L,BS,N,M,B,BOOL,NULL,S}"
    );
    assert_eq!(
        err(
            &e,
            "Query",
            json!({"TableName": "nope", "KeyConditionExpression": "pk = :a", "ExpressionAttributeValues": v("x")})
        )
        .code,
        ErrorCode::ResourceNotFound
    );
    // Against the table: key schema, then the start key, then the filter.
    let kc = |c: Value| json!({"TableName": "qtab", "KeyConditions": c});
    let eq = |x: &str| json!({"ComparisonOperator": "EQ", "AttributeValueList": [{"S": x}]});
    assert_eq!(
        m(kc(
            json!({"pk": eq("a"), "sk": {"ComparisonOperator": "NULL"}})
        )),
        "Attempted conditional constraint is not an indexable operation"
    );
    assert_eq!(
        m(kc(
            json!({"pk": {"ComparisonOperator": "GT", "AttributeValueList": [{"S": "a"}]}})
        )),
        "Query key condition not supported"
    );
    assert_eq!(
        m(kc(json!({"pk": eq("a"), "zz": eq("a")}))),
        "Query condition missed key schema element: sk"
    );
    assert_eq!(
        m(kc(
            json!({"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]}})
        )),
        "One or more parameter values were invalid: Condition parameter type does not match schema type"
    );
    let with_start = |start: Value, sk: Value| json!({"TableName": "qtab", "KeyConditions": {"pk": eq("a"), "sk": sk}, "ExclusiveStartKey": start});
    let gt1 = json!({"ComparisonOperator": "GT", "AttributeValueList": [{"N": "1"}]});
    assert_eq!(
        m(with_start(json!({"pk": {"S": "a"}}), gt1.clone())),
        "The provided starting key is invalid"
    );
    assert_eq!(
        m(with_start(
            json!({"pk": {"S": "a"}, "sk": {"S": "1"}}),
            gt1.clone()
        )),
        "The provided key element does not match the schema"
    );
    assert_eq!(
        m(with_start(
            json!({"pk": {"S": "a"}, "sk": {"N": "0"}}),
            gt1.clone()
        )),
        "The provided starting key does not match the range key predicate"
    );
    assert_eq!(
        m(with_start(json!({"pk": {"S": "b"}, "sk": {"N": "5"}}), gt1)),
        "The query can return at most one row and cannot be restarted"
    );
    assert_eq!(
        m(
            json!({"TableName": "qtab", "KeyConditions": {"pk": eq("a")}, "QueryFilter": {"sk": {"ComparisonOperator": "NULL"}}})
        ),
        "QueryFilter can only contain non-primary key attributes: Primary key attribute: sk"
    );
    // A well-formed query still runs.
    ok(
        &e,
        "PutItem",
        json!({"TableName": "qtab", "Item": {"pk": {"S": "a"}, "sk": {"N": "2"}}}),
    );
    let r = ok(
        &e,
        "Query",
        json!({"TableName": "qtab", "KeyConditionExpression": ":v < sk AND pk = :p", "ExpressionAttributeValues": {":v": {"N": "1"}, ":p": {"S": "a"}}}),
    );
    assert_eq!(r["Count"], 1);
}

/// Writes to a table with a local secondary index return ItemCollectionMetrics when asked
/// (single writes, batches and transactions); other tables never do.
#[test]
fn item_collection_metrics_for_tables_with_local_indexes() {
    let (e, _) = engine();
    ok(
        &e,
        "CreateTable",
        json!({
            "TableName": "lsi", "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}, {"AttributeName": "l", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "LocalSecondaryIndexes": [{"IndexName": "byl", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "l", "KeyType": "RANGE"}], "Projection": {"ProjectionType": "ALL"}}]
        }),
    );
    create(&e, "plain", true);
    let want = json!({"ItemCollectionKey": {"pk": {"S": "p"}}, "SizeEstimateRangeGB": [0.0, 1.0]});
    let put = ok(
        &e,
        "PutItem",
        json!({"TableName": "lsi", "Item": {"pk": {"S": "p"}, "sk": {"S": "1"}, "l": {"S": "x"}}, "ReturnItemCollectionMetrics": "SIZE"}),
    );
    assert_eq!(put["ItemCollectionMetrics"], want);
    let put = ok(
        &e,
        "PutItem",
        json!({"TableName": "lsi", "Item": {"pk": {"S": "p"}, "sk": {"S": "2"}}}),
    );
    assert!(put.get("ItemCollectionMetrics").is_none(), "{put}");
    let upd = ok(
        &e,
        "UpdateItem",
        json!({"TableName": "plain", "Key": {"pk": {"S": "p"}, "sk": {"N": "1"}}, "ReturnItemCollectionMetrics": "SIZE"}),
    );
    assert!(upd.get("ItemCollectionMetrics").is_none(), "{upd}");
    let batch = ok(
        &e,
        "BatchWriteItem",
        json!({"RequestItems": {
            "lsi": [{"DeleteRequest": {"Key": {"pk": {"S": "p"}, "sk": {"S": "2"}}}}, {"PutRequest": {"Item": {"pk": {"S": "q"}, "sk": {"S": "1"}}}}],
            "plain": [{"PutRequest": {"Item": {"pk": {"S": "p"}, "sk": {"N": "2"}}}}]
        }, "ReturnItemCollectionMetrics": "SIZE"}),
    );
    assert_eq!(
        batch["ItemCollectionMetrics"],
        json!({"lsi": [want, {"ItemCollectionKey": {"pk": {"S": "q"}}, "SizeEstimateRangeGB": [0.0, 1.0]}]})
    );
    let tx = ok(
        &e,
        "TransactWriteItems",
        json!({"TransactItems": [
            {"Update": {"TableName": "lsi", "Key": {"pk": {"S": "p"}, "sk": {"S": "1"}}, "UpdateExpression": "SET v = :v", "ExpressionAttributeValues": {":v": {"S": "y"}}}},
            {"ConditionCheck": {"TableName": "lsi", "Key": {"pk": {"S": "q"}, "sk": {"S": "1"}}, "ConditionExpression": "attribute_exists(pk)"}}
        ], "ReturnItemCollectionMetrics": "SIZE"}),
    );
    assert_eq!(tx["ItemCollectionMetrics"], json!({"lsi": [want]}));
}

#[test]
fn transact_items_must_hold_one_to_a_hundred_entries_with_dynamodbs_messages() {
    let (e, _) = engine();
    create(&e, "txs", false);
    let get = json!({"Get": {"TableName": "txs", "Key": {"pk": {"S": "a"}}}});
    let put = json!({"Put": {"TableName": "txs", "Item": {"pk": {"S": "a"}}}});
    for (op, entry) in [("TransactGetItems", get), ("TransactWriteItems", put)] {
        let er = err(&e, op, json!({"TransactItems": []}));
        assert_eq!(er.code, ErrorCode::Validation, "{op}");
        assert_eq!(
            er.message,
            "1 validation error detected: Value '[]' at 'transactItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
            "{op}"
        );
        let many: Vec<Value> = (0..101).map(|_| entry.clone()).collect();
        let er = err(&e, op, json!({ "TransactItems": many }));
        assert_eq!(
            er.message,
            "1 validation error detected: Value '[...]' at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100",
            "{op}"
        );
        let er = err(&e, op, json!({}));
        assert!(
            er.message.contains("Member must not be null"),
            "{op}: {}",
            er.message
        );
    }
}

/// GetItem's request-only checks come before the table is looked up (messages and order as
/// dynalite's suite records them against DynamoDB): AttributesToGet's duplicates, and the
/// ProjectionExpression's problems in the expression's own order.
#[test]
fn get_item_checks_its_request_before_the_table() {
    let (e, _) = engine();
    let m = |req: Value| err(&e, "GetItem", req).message;
    assert_eq!(
        m(json!({"TableName": "nope", "Key": {}, "AttributesToGet": ["a", "b", "a"]})),
        "One or more parameter values were invalid: Duplicate value in attribute name: a"
    );
    assert_eq!(
        m(json!({"TableName": "nope", "Key": {}, "ProjectionExpression": "a, #a"})),
        "Invalid ProjectionExpression: An expression attribute name used in the document path is not defined; attribute name: #a"
    );
    assert_eq!(
        m(json!({"TableName": "nope", "Key": {}, "ProjectionExpression": "b[1], b.a, a.b, a"})),
        "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a]"
    );
    assert_eq!(
        err(
            &e,
            "GetItem",
            json!({"TableName": "nope", "Key": {}, "AttributesToGet": ["a"]})
        )
        .code,
        ErrorCode::ResourceNotFound
    );
}

/// Writes check their request in DynamoDB's order before the table is looked up (messages and
/// order as dynalite's suite records them): mixed parameters, the key's or item's values,
/// AttributeUpdates, Expected, then placeholders and expressions.
#[test]
fn writes_check_values_before_conditions_and_placeholders() {
    let (e, _) = engine();
    let m = |op: &str, req: Value| err(&e, op, req).message;
    assert_eq!(
        m(
            "UpdateItem",
            json!({"TableName": "nope", "Key": {"a": {"S": "x"}}, "UpdateExpression": "SET b = :b", "Expected": {"a": {}}})
        ),
        "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {Expected} Expression parameters: {UpdateExpression}"
    );
    assert_eq!(
        m(
            "UpdateItem",
            json!({"TableName": "nope", "Key": {"a": {}}, "UpdateExpression": "", "ConditionExpression": "", "ExpressionAttributeNames": {}})
        ),
        "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
    );
    assert_eq!(
        m(
            "UpdateItem",
            json!({"TableName": "nope", "Key": {"a": {"S": "x"}}, "Expected": {"a": {}}, "AttributeUpdates": {"a": {"Action": "PUT"}}})
        ),
        "One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified"
    );
    assert_eq!(
        m(
            "PutItem",
            json!({"TableName": "nope", "Item": {"a": {"NULL": false}}, "ExpressionAttributeNames": {}, "ConditionExpression": "a = b"})
        ),
        "One or more parameter values were invalid: Null attribute value types must have the value of true"
    );
    assert_eq!(
        m(
            "UpdateItem",
            json!({"TableName": "nope", "Key": {"a": {"S": "x"}}, "UpdateExpression": "", "ConditionExpression": ""})
        ),
        "Invalid UpdateExpression: The expression can not be empty;"
    );
}

/// Against the table, before the item is read: paths may not reach inside key or index key
/// attributes, and an update may not give an index key a value already known to be of the
/// wrong type; after the update, an index key of the wrong type has its own message; REMOVE
/// and DELETE under a path that is not there are refused (dynalite's recorded answers).
#[test]
fn updates_and_projections_keep_key_attributes_scalar_and_typed() {
    let (e, _) = engine();
    ok(
        &e,
        "CreateTable",
        json!({
            "TableName": "kix",
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "g", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [{"IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
    let key = json!({"pk": {"S": "k"}});
    let m = |op: &str, extra: Value| {
        let mut req = json!({"TableName": "kix", "Key": key});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        err(&e, op, req).message
    };
    let scalars = "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed";
    assert_eq!(
        m("GetItem", json!({"ProjectionExpression": "pk.x"})),
        format!("{scalars}: Key: pk")
    );
    assert_eq!(
        m("UpdateItem", json!({"UpdateExpression": "SET y = g[1]"})),
        format!("{scalars}: IndexKey: g")
    );
    assert_eq!(
        m(
            "UpdateItem",
            json!({"UpdateExpression": "SET g = :n + :n, z = g.q", "ExpressionAttributeValues": {":n": {"N": "1"}}})
        ),
        "One or more parameter values were invalid: Type mismatch for Index Key g Expected: S Actual: N IndexName: byg"
    );
    assert_eq!(
        m(
            "UpdateItem",
            json!({"AttributeUpdates": {"g": {"Value": {"N": "1"}}}})
        ),
        "One or more parameter values were invalid: Type mismatch for Index Key g Expected: S Actual: N IndexName: byg"
    );
    ok(
        &e,
        "UpdateItem",
        json!({"TableName": "kix", "Key": key, "UpdateExpression": "SET n = :n, s = :s", "ExpressionAttributeValues": {":n": {"N": "1"}, ":s": {"S": "x"}}}),
    );
    assert_eq!(
        m("UpdateItem", json!({"UpdateExpression": "SET g = n"})),
        "The update expression attempted to update the secondary index key to unsupported type"
    );
    let invalid = "The document path provided in the update expression is invalid for update";
    for expr in ["REMOVE s.a", "REMOVE nope.a", "REMOVE s[1]"] {
        assert_eq!(
            m("UpdateItem", json!({"UpdateExpression": expr})),
            invalid,
            "{expr}"
        );
    }
    assert_eq!(
        m(
            "UpdateItem",
            json!({"UpdateExpression": "DELETE nope.a :ss", "ExpressionAttributeValues": {":ss": {"SS": ["a"]}}})
        ),
        invalid
    );
    // Nothing to remove where the path above exists is fine.
    ok(
        &e,
        "UpdateItem",
        json!({"TableName": "kix", "Key": key, "UpdateExpression": "REMOVE gone, s2"}),
    );
}

/// CreateTable answers a request with several mistakes with the one DynamoDB answers
/// (dynalite's createTable validations, recorded against DynamoDB): the throughput against
/// the billing mode, then the key schema (how many keys, which are defined, their names,
/// their types), then each local index, then each global one.
#[test]
fn create_table_validation_follows_dynamodb_order() {
    let (e, _) = engine();
    let m = |extra: Value| {
        let mut req = json!({"TableName": "abc",
            "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "S"}, {"AttributeName": "b", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}, {"AttributeName": "b", "KeyType": "RANGE"}],
            "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        err(&e, "CreateTable", req).message
    };
    let hash = |n: &str| json!({"AttributeName": n, "KeyType": "HASH"});
    let range = |n: &str| json!({"AttributeName": n, "KeyType": "RANGE"});
    // The billing mode's throughput before the keys.
    assert_eq!(
        m(
            json!({"AttributeDefinitions": [], "KeySchema": [hash("a"), hash("a")], "BillingMode": "PAY_PER_REQUEST"})
        ),
        "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"
    );
    assert_eq!(
        m(
            json!({"AttributeDefinitions": [], "KeySchema": [hash("a")], "ProvisionedThroughput": {"ReadCapacityUnits": 1_000_000_000_001i64, "WriteCapacityUnits": 1_000_000_000_001i64}})
        ),
        "Given value 1000000000001 for ReadCapacityUnits is out of bounds"
    );
    // More keys than definitions, then undefined keys (all of them named), then the
    // names, then the types.
    assert_eq!(
        m(json!({"AttributeDefinitions": [{"AttributeName": "b", "AttributeType": "S"}]})),
        "Invalid KeySchema: Some index key attribute have no definition"
    );
    assert_eq!(
        m(
            json!({"AttributeDefinitions": [{"AttributeName": "b", "AttributeType": "S"}], "KeySchema": [hash("a")]})
        ),
        "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [a], AttributeDefinitions: [b]"
    );
    assert_eq!(
        m(json!({"KeySchema": [hash("a"), hash("a")]})),
        "Both the Hash Key and the Range Key element in the KeySchema have the same name"
    );
    assert_eq!(
        m(json!({"KeySchema": [range("a"), range("b")]})),
        "Invalid KeySchema: The first KeySchemaElement is not a HASH key type"
    );
    assert_eq!(
        m(json!({"KeySchema": [hash("a"), hash("b")]})),
        "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type"
    );
    // A local index: its keys' definitions before their types, its range key before its
    // hash key, the keys before the projection; a missing ProjectionType is refused.
    let lsi = |keys: Value, projection: Value| json!({"LocalSecondaryIndexes": [{"IndexName": "abc", "KeySchema": keys, "Projection": projection}]});
    assert_eq!(
        m(lsi(json!([range("c"), range("d")]), json!({}))),
        "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [c, d], AttributeDefinitions: [a, b]"
    );
    assert_eq!(
        m(lsi(json!([hash("a"), range("c")]), json!({}))),
        "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [a, c], AttributeDefinitions: [a, b]"
    );
    assert_eq!(
        m(lsi(json!([hash("b")]), json!({}))),
        "One or more parameter values were invalid: Index KeySchema does not have a range key for index: abc"
    );
    assert_eq!(
        m(lsi(
            json!([hash("a"), range("b")]),
            json!({"NonKeyAttributes": ["a"]})
        )),
        "One or more parameter values were invalid: Unknown ProjectionType: null"
    );
    // A global index: the projection before the throughput; no leading-hash rule.
    assert_eq!(
        m(
            json!({"GlobalSecondaryIndexes": [{"IndexName": "abc", "KeySchema": [hash("b")], "Projection": {}}]})
        ),
        "One or more parameter values were invalid: Unknown ProjectionType: null"
    );
    // The local indexes' own checks before their count, and before the global indexes.
    let mut lsis: Vec<Value> = (0..6)
        .map(|i| json!({"IndexName": format!("ix{i}"), "KeySchema": [hash("a"), range("b")], "Projection": {"ProjectionType": "ALL"}}))
        .collect();
    lsis[5]["KeySchema"] = json!([hash("b"), range("a")]);
    assert_eq!(
        m(
            json!({"LocalSecondaryIndexes": lsis, "GlobalSecondaryIndexes": [{"IndexName": "ix0", "KeySchema": [hash("b")], "Projection": {"ProjectionType": "ALL"}}]})
        ),
        "One or more parameter values were invalid: Index KeySchema does not have the same leading hash key as table KeySchema for index: ix5. index hash key: b, table hash key: a"
    );
    lsis.truncate(5);
    assert_eq!(
        m(
            json!({"LocalSecondaryIndexes": lsis, "GlobalSecondaryIndexes": [{"IndexName": "ix0", "KeySchema": [hash("b")], "Projection": {"ProjectionType": "ALL"}, "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}]})
        ),
        "One or more parameter values were invalid: Duplicate index name: ix0"
    );
    // Nothing above created the table.
    ok(
        &e,
        "CreateTable",
        json!({"TableName": "abc",
        "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "S"}, {"AttributeName": "b", "AttributeType": "S"}],
        "KeySchema": [hash("a"), range("b")],
        "LocalSecondaryIndexes": lsis,
        "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}),
    );
}

/// UpdateTable answers a request with several mistakes with the one DynamoDB answers
/// (dynalite's updateTable validations, recorded against DynamoDB): some checks come before
/// the table is looked up, the rest after.
#[test]
fn update_table_validation_follows_dynamodb_order() {
    let (e, _) = engine();
    create(&e, "ppr", false);
    ok(
        &e,
        "CreateTable",
        json!({"TableName": "prov",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 5}}),
    );
    let m = |req: Value| err(&e, "UpdateTable", req);
    let big = 1_000_000_000_001i64;
    // Before the look-up: "nope" does not exist.
    for (req, want) in [
        (
            json!({"TableName": "nope", "GlobalSecondaryIndexUpdates": []}),
            "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required",
        ),
        (
            json!({"TableName": "nope", "BillingMode": "PROVISIONED", "GlobalSecondaryIndexUpdates": [{}]}),
            "One or more parameter values were invalid: ProvisionedThroughput must be specified when BillingMode is PROVISIONED",
        ),
        (
            json!({"TableName": "nope", "ProvisionedThroughput": {"ReadCapacityUnits": 1_000_000_000_000i64, "WriteCapacityUnits": big}, "GlobalSecondaryIndexUpdates": [{}]}),
            "Given value 1000000000001 for WriteCapacityUnits is out of bounds",
        ),
        (
            json!({"TableName": "nope", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "abc"}}, {}]}),
            "One or more parameter values were invalid: One of GlobalSecondaryIndexUpdate.Update, GlobalSecondaryIndexUpdate.Create, GlobalSecondaryIndexUpdate.Delete must not be null",
        ),
        (
            json!({"TableName": "nope", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "abc"}}, {"Delete": {"IndexName": "abc"}}]}),
            "One or more parameter values were invalid: Only one global secondary index update per index is allowed simultaneously. Index: abc",
        ),
        (
            json!({"TableName": "ppr", "BillingMode": "PROVISIONED"}),
            "One or more parameter values were invalid: ProvisionedThroughput must be specified when BillingMode is PROVISIONED",
        ),
    ] {
        assert_eq!(m(req.clone()).message, want, "{req}");
    }
    // An index update's units above the bound: the table is looked up first, the index
    // is not.
    let index_update = |table: &str| json!({"TableName": table, "GlobalSecondaryIndexUpdates": [{"Update": {"IndexName": "abc", "ProvisionedThroughput": {"ReadCapacityUnits": big, "WriteCapacityUnits": big}}}]});
    assert_eq!(
        m(index_update("nope")).message,
        "Requested resource not found: Table: nope not found"
    );
    assert_eq!(
        m(index_update("prov")).message,
        "This operation cannot be performed with given input values. Please contact DynamoDB service team for more info: Action Blocked: IndexUpdate"
    );
    // More than five index updates: a limit, before the indexes are looked up.
    let deletes: Vec<Value> = (0..6)
        .map(|i| json!({"Delete": {"IndexName": format!("ix{i}")}}))
        .collect();
    let er = m(json!({"TableName": "prov", "GlobalSecondaryIndexUpdates": deletes}));
    assert_eq!(er.code, ErrorCode::LimitExceeded);
    assert_eq!(
        er.message,
        "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table"
    );
    assert_eq!(
        m(json!({"TableName": "prov", "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 5}})).message,
        "The provisioned throughput for the table will not change. The requested value equals the current value. Current ReadCapacityUnits provisioned for the table: 10. Requested ReadCapacityUnits: 10. Current WriteCapacityUnits provisioned for the table: 5. Requested WriteCapacityUnits: 5. Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits."
    );
}

/// IAM answers a ResourceArn that is not shaped like a resource before DynamoDB checks the
/// request's members (dynalite's recorded TagResource/UntagResource answers).
#[test]
fn an_unshaped_resource_arn_is_denied_before_the_members_are_checked() {
    let (e, _) = engine();
    for (op, arn) in [
        ("TagResource", "abcd"),
        ("UntagResource", ""),
        ("ListTagsOfResource", "a:b:c:d:e/f"),
    ] {
        let x = err(&e, op, json!({"ResourceArn": arn}));
        assert_eq!(x.code, ErrorCode::AccessDenied, "{op}: {}", x.message);
    }
    // A resource-shaped ARN gets the member check.
    let x = err(&e, "TagResource", json!({"ResourceArn": "a:b:c:d:e:f/g"}));
    assert_eq!(
        x.message,
        "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null"
    );
}

/// Member constraints and legacy conditions as dynalite's suite records DynamoDB's answers:
/// Scan lists its segments among its first ten violations, BatchWriteItem names each write's
/// missing member, and Expected's Value with an AttributeValueList is refused first.
#[test]
fn batch_scan_and_expected_violations_as_dynamodb_lists_them() {
    let (e, _) = engine();
    let msg = err(
        &e,
        "Scan",
        json!({"TableName": "abc;", "ReturnConsumedCapacity": "hi", "AttributesToGet": [],
            "IndexName": "abc;", "Segment": -1, "TotalSegments": -1, "Select": "hi", "Limit": -1,
            "ScanFilter": {"a": {}, "b": {"ComparisonOperator": ""}}, "ConditionalOperator": "AN"}),
    )
    .message;
    assert!(msg.starts_with("10 validation errors detected: "), "{msg}");
    assert!(msg.contains("at 'totalSegments'"), "{msg}");
    let msg = err(
        &e,
        "BatchWriteItem",
        json!({"RequestItems": {"aa;": [{"PutRequest": {}, "DeleteRequest": {}}]}}),
    )
    .message;
    assert!(msg.starts_with("3 validation errors detected: "), "{msg}");
    assert!(
        msg.contains("Value null at 'requestItems.aa;.member.1.member.deleteRequest.key' failed to satisfy constraint: Member must not be null"),
        "{msg}"
    );
    assert!(
        msg.contains("Value null at 'requestItems.aa;.member.1.member.putRequest.item'"),
        "{msg}"
    );
    create(&e, "bwk", false);
    for item in [json!({"other": {"S": "x"}}), json!({"pk": {"N": "1"}})] {
        assert_eq!(
            err(
                &e,
                "BatchWriteItem",
                json!({"RequestItems": {"bwk": [{"PutRequest": {"Item": item}}]}})
            )
            .message,
            "The provided key element does not match the schema"
        );
    }
    assert_eq!(
        err(
            &e,
            "DeleteItem",
            json!({"TableName": "aaa", "Key": {}, "Expected": {"a": {"Value": {"S": "a"}, "AttributeValueList": []}}})
        )
        .message,
        "One or more parameter values were invalid: Value and AttributeValueList cannot be used together for Attribute: a"
    );
}

#[test]
fn key_text_is_the_wire_form_of_the_key_values() {
    use super::engine::key_string;
    use super::value::{KeyVal, Number};
    let old = |pk: &super::meta::PKey| {
        let mut v = vec![pk.0.to_attr().to_json()];
        if let Some(r) = &pk.1 {
            v.push(r.to_attr().to_json());
        }
        Value::Array(v).to_string()
    };
    let n = |s: &str| KeyVal::N(Number::parse(s).unwrap());
    let keys = [
        (KeyVal::S("a".into()), None),
        (
            KeyVal::S("quote \" back \\ é \u{1} \n".into()),
            Some(n("-12.50")),
        ),
        (n("1e3"), Some(KeyVal::B(vec![0, 1, 255]))),
        (KeyVal::B(vec![]), Some(KeyVal::S(String::new()))),
        (
            n("0.000001"),
            Some(n("-9.9999999999999999999999999999999999999E+125")),
        ),
    ];
    for pk in keys {
        assert_eq!(key_string(&pk), old(&pk));
    }
}

#[test]
fn a_transaction_with_a_client_request_token_is_applied_once_in_ten_minutes() {
    let (e, clock) = engine();
    create(&e, "idem", false);
    let tx = |token: &str, by: &str| {
        json!({
            "ClientRequestToken": token,
            "TransactItems": [{"Update": {
                "TableName": "idem",
                "Key": {"pk": {"S": "a"}},
                "UpdateExpression": "ADD n :by",
                "ExpressionAttributeValues": {":by": {"N": by}}
            }}]
        })
    };
    let n = |e: &TableEngine| {
        ok(
            e,
            "GetItem",
            json!({"TableName": "idem", "Key": {"pk": {"S": "a"}}}),
        )["Item"]["n"]
            .clone()
    };
    assert_eq!(ok(&e, "TransactWriteItems", tx("t1", "1")), json!({}));
    // A retry changes nothing; its capacity is that of reading the item.
    let mut again = tx("t1", "1");
    again["ReturnConsumedCapacity"] = json!("TOTAL");
    // (ReturnConsumedCapacity is a parameter too: a retry sends the request as it was.)
    let er = err(&e, "TransactWriteItems", again);
    assert_eq!(er.code, ErrorCode::IdempotentParameterMismatch);
    assert_eq!(ok(&e, "TransactWriteItems", tx("t1", "1")), json!({}));
    assert_eq!(n(&e), json!({"N": "1"}));
    // The same token with other parameters is refused.
    let er = err(&e, "TransactWriteItems", tx("t1", "5"));
    assert_eq!(er.code, ErrorCode::IdempotentParameterMismatch);
    assert_eq!(
        er.code.wire_type(),
        "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException"
    );
    // Another token is another transaction.
    ok(&e, "TransactWriteItems", tx("t2", "1"));
    assert_eq!(n(&e), json!({"N": "2"}));
    // A cancelled transaction does not use its token up.
    let mut cancelled = tx("t3", "1");
    cancelled["TransactItems"][0]["Update"]["ConditionExpression"] = json!("n > :by");
    cancelled["TransactItems"][0]["Update"]["ExpressionAttributeValues"][":by"] =
        json!({"N": "100"});
    assert_eq!(
        err(&e, "TransactWriteItems", cancelled).code,
        ErrorCode::TransactionCanceled
    );
    ok(&e, "TransactWriteItems", tx("t3", "1"));
    assert_eq!(n(&e), json!({"N": "3"}));
    // Ten minutes after it, the token is a new request's.
    clock.advance(Duration::from_secs(599));
    ok(&e, "TransactWriteItems", tx("t1", "1"));
    assert_eq!(n(&e), json!({"N": "3"}));
    clock.advance(Duration::from_secs(1));
    ok(&e, "TransactWriteItems", tx("t1", "1"));
    assert_eq!(n(&e), json!({"N": "4"}));
    // The first call answers the units it wrote, a retry those of reading the item.
    let mut counted = tx("t4", "1");
    counted["ReturnConsumedCapacity"] = json!("TOTAL");
    let first = ok(&e, "TransactWriteItems", counted.clone());
    assert_eq!(
        first["ConsumedCapacity"],
        json!([{"TableName": "idem", "CapacityUnits": 2.0}])
    );
    let retry = ok(&e, "TransactWriteItems", counted);
    assert_eq!(
        retry["ConsumedCapacity"],
        json!([{"TableName": "idem", "CapacityUnits": 1.0}])
    );
    assert_eq!(n(&e), json!({"N": "5"}));
}

#[test]
fn transactions_answer_their_consumed_capacity_at_twice_the_units() {
    let (e, _) = engine();
    create(&e, "cap1", false);
    create(&e, "cap2", false);
    let big = "x".repeat(1500);
    let tx = json!({
        "ReturnConsumedCapacity": "TOTAL",
        "TransactItems": [
            {"Put": {"TableName": "cap1", "Item": {"pk": {"S": "a"}, "v": {"S": big}}}},
            {"Put": {"TableName": "cap2", "Item": {"pk": {"S": "b"}}}},
            {"Put": {"TableName": "cap1", "Item": {"pk": {"S": "c"}}}}
        ]
    });
    let out = ok(&e, "TransactWriteItems", tx);
    // cap1: 2 KB item (2 units) + 1 unit, twice; cap2: 1 unit, twice.
    assert_eq!(
        out["ConsumedCapacity"],
        json!([
            {"TableName": "cap1", "CapacityUnits": 6.0},
            {"TableName": "cap2", "CapacityUnits": 2.0}
        ])
    );
    let out = ok(
        &e,
        "TransactGetItems",
        json!({
            "ReturnConsumedCapacity": "TOTAL",
            "TransactItems": [
                {"Get": {"TableName": "cap1", "Key": {"pk": {"S": "a"}}}},
                {"Get": {"TableName": "cap2", "Key": {"pk": {"S": "zz"}}}}
            ]
        }),
    );
    assert_eq!(
        out["ConsumedCapacity"],
        json!([
            {"TableName": "cap1", "CapacityUnits": 2.0},
            {"TableName": "cap2", "CapacityUnits": 2.0}
        ])
    );
    // Without ReturnConsumedCapacity, none.
    let out = ok(
        &e,
        "TransactGetItems",
        json!({"TransactItems": [{"Get": {"TableName": "cap1", "Key": {"pk": {"S": "a"}}}}]}),
    );
    assert!(out.get("ConsumedCapacity").is_none());
}

/// Writes to a table with secondary indexes consume the index writes AWS documents: an entry
/// added or removed costs one write of its size, a changed index key two, a changed projected
/// attribute one, anything else nothing; `INDEXES` reports each index's share.
#[test]
fn index_writes_consume_write_units_as_dynamodb_documents() {
    let (e, _) = engine();
    ok(
        &e,
        "CreateTable",
        json!({
            "TableName": "ixcap",
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "N"},
                {"AttributeName": "status", "AttributeType": "S"},
                {"AttributeName": "owner", "AttributeType": "S"},
                {"AttributeName": "n", "AttributeType": "N"},
                {"AttributeName": "date", "AttributeType": "S"}
            ],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "GlobalSecondaryIndexes": [
                {"IndexName": "byStatus", "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                 "Projection": {"ProjectionType": "KEYS_ONLY"}},
                {"IndexName": "byOwner", "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}, {"AttributeName": "n", "KeyType": "RANGE"}],
                 "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]}}
            ],
            "LocalSecondaryIndexes": [
                {"IndexName": "byDate", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "date", "KeyType": "RANGE"}],
                 "Projection": {"ProjectionType": "ALL"}}
            ],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
    let key = json!({"pk": {"S": "a"}, "sk": {"N": "1"}});
    let update = |set: &str, values: Value| {
        let mut req = json!({"TableName": "ixcap", "Key": key, "UpdateExpression": set,
                             "ExpressionAttributeValues": values, "ReturnConsumedCapacity": "INDEXES"});
        // Reserved words, named by placeholders (only the ones the expression uses).
        let names: serde_json::Map<String, Value> =
            [("#s", "status"), ("#o", "owner"), ("#d", "date")]
                .into_iter()
                .filter(|(p, _)| set.contains(p))
                .map(|(p, n)| (p.to_string(), json!(n)))
                .collect();
        if !names.is_empty() {
            req["ExpressionAttributeNames"] = Value::Object(names);
        }
        ok(&e, "UpdateItem", req)["ConsumedCapacity"].clone()
    };
    let consumed = |total: f64, table: f64, gsi: Value, lsi: Value| {
        let mut c = json!({"TableName": "ixcap", "CapacityUnits": total, "Table": {"CapacityUnits": table}});
        if gsi != json!({}) {
            c["GlobalSecondaryIndexes"] = gsi;
        }
        if lsi != json!({}) {
            c["LocalSecondaryIndexes"] = lsi;
        }
        c
    };
    // In no index: the table's unit alone.
    let put = ok(
        &e,
        "PutItem",
        json!({"TableName": "ixcap", "Item": {"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "x"}},
               "ReturnConsumedCapacity": "INDEXES"}),
    );
    assert_eq!(
        put["ConsumedCapacity"],
        consumed(1.0, 1.0, json!({}), json!({}))
    );
    let big = "n".repeat(1500);
    // (update, its values, total, table, GSIs' shares, LSIs' shares)
    let cases = [
        // A previously undefined index key defined: one write into that index.
        (
            "SET #s = :s",
            json!({":s": {"S": "new"}}),
            2.0,
            1.0,
            json!({"byStatus": {"CapacityUnits": 1.0}}),
            json!({}),
        ),
        // The index key changed: the old entry deleted and the new one put, two writes.
        (
            "SET #s = :s",
            json!({":s": {"S": "done"}}),
            3.0,
            1.0,
            json!({"byStatus": {"CapacityUnits": 2.0}}),
            json!({}),
        ),
        // An attribute no GSI projects: no GSI write (the LSI has no entry yet: no date).
        (
            "SET v = :v",
            json!({":v": {"S": "y"}}),
            1.0,
            1.0,
            json!({}),
            json!({}),
        ),
        // A 1.5 KB projected attribute: the entry costs two units, as does the item.
        (
            "SET #o = :o, n = :n, note = :note",
            json!({":o": {"S": "me"}, ":n": {"N": "1"}, ":note": {"S": big}}),
            4.0,
            2.0,
            json!({"byOwner": {"CapacityUnits": 2.0}}),
            json!({}),
        ),
        // Only a projected attribute changed: one write, of the larger entry.
        (
            "SET note = :note",
            json!({":note": {"S": "short"}}),
            4.0,
            2.0,
            json!({"byOwner": {"CapacityUnits": 2.0}}),
            json!({}),
        ),
        // The LSI's sort key defined: an entry in the local index.
        (
            "SET #d = :d",
            json!({":d": {"S": "2026-12-05"}}),
            2.0,
            1.0,
            json!({}),
            json!({"byDate": {"CapacityUnits": 1.0}}),
        ),
        // The LSI projects every attribute: any change rewrites its entry.
        (
            "SET v = :v",
            json!({":v": {"S": "z"}}),
            2.0,
            1.0,
            json!({}),
            json!({"byDate": {"CapacityUnits": 1.0}}),
        ),
    ];
    for (set, values, total, table, gsi, lsi) in cases {
        assert_eq!(
            update(set, values),
            consumed(total, table, gsi, lsi),
            "{set}"
        );
    }
    // Writing the item as it is changes no index.
    let same = ok(
        &e,
        "GetItem",
        json!({"TableName": "ixcap", "Key": key, "ConsistentRead": true}),
    )["Item"]
        .clone();
    let put = ok(
        &e,
        "PutItem",
        json!({"TableName": "ixcap", "Item": same, "ReturnConsumedCapacity": "TOTAL"}),
    );
    assert_eq!(
        put["ConsumedCapacity"],
        json!({"TableName": "ixcap", "CapacityUnits": 1.0})
    );
    // Deleting the item removes its three entries.
    let del = ok(
        &e,
        "DeleteItem",
        json!({"TableName": "ixcap", "Key": key, "ReturnConsumedCapacity": "INDEXES"}),
    );
    assert_eq!(
        del["ConsumedCapacity"],
        consumed(
            4.0,
            1.0,
            json!({"byStatus": {"CapacityUnits": 1.0}, "byOwner": {"CapacityUnits": 1.0}}),
            json!({"byDate": {"CapacityUnits": 1.0}})
        )
    );
    // A batch adds its writes' index units per table.
    let item = |pk: &str| json!({"PutRequest": {"Item": {"pk": {"S": pk}, "sk": {"N": "1"}, "status": {"S": "s"}}}});
    let batch = ok(
        &e,
        "BatchWriteItem",
        json!({"RequestItems": {"ixcap": [item("b"), item("c")]}, "ReturnConsumedCapacity": "INDEXES"}),
    );
    assert_eq!(
        batch["ConsumedCapacity"],
        json!([consumed(
            4.0,
            2.0,
            json!({"byStatus": {"CapacityUnits": 2.0}}),
            json!({})
        )])
    );
    // A transaction writes the table twice (prepare, commit) and each index once.
    let tx = ok(
        &e,
        "TransactWriteItems",
        json!({"TransactItems": [{"Put": {"TableName": "ixcap", "Item": {"pk": {"S": "d"}, "sk": {"N": "1"}, "status": {"S": "s"}}}}],
               "ReturnConsumedCapacity": "INDEXES"}),
    );
    assert_eq!(
        tx["ConsumedCapacity"],
        json!([consumed(
            3.0,
            2.0,
            json!({"byStatus": {"CapacityUnits": 1.0}}),
            json!({})
        )])
    );
    // A PartiQL write reports the same.
    let stmt = ok(
        &e,
        "ExecuteStatement",
        json!({"Statement": "UPDATE \"ixcap\" SET status = 'moved' WHERE pk = 'd' AND sk = 1",
               "ReturnConsumedCapacity": "TOTAL"}),
    );
    assert_eq!(
        stmt["ConsumedCapacity"],
        json!({"TableName": "ixcap", "CapacityUnits": 3.0})
    );
}

/// An update made only of removals does not create a missing item (DynamoDB's behaviour, as
/// ScyllaDB's suite records it), while an empty or setting update does.
#[test]
fn removal_only_updates_do_not_create_missing_items() {
    let (e, _) = engine();
    create(&e, "rmv", false);
    let exists = |pk: &str| {
        ok(
            &e,
            "GetItem",
            json!({"TableName": "rmv", "Key": {"pk": {"S": pk}}, "ConsistentRead": true}),
        )
        .get("Item")
        .is_some()
    };
    let update = |pk: &str, extra: Value| {
        let mut req =
            json!({"TableName": "rmv", "Key": {"pk": {"S": pk}}, "ReturnValues": "ALL_NEW"});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        ok(&e, "UpdateItem", req)
    };
    let out = update("a", json!({"UpdateExpression": "REMOVE x"}));
    assert!(out.get("Attributes").is_none());
    assert!(!exists("a"));
    update(
        "b",
        json!({"UpdateExpression": "DELETE s :v", "ExpressionAttributeValues": {":v": {"SS": ["q"]}}}),
    );
    assert!(!exists("b"));
    update(
        "c",
        json!({"AttributeUpdates": {"x": {"Action": "DELETE"}}}),
    );
    assert!(!exists("c"));
    update(
        "d",
        json!({"AttributeUpdates": {"x": {"Action": "DELETE", "Value": {"SS": ["q"]}}}}),
    );
    assert!(!exists("d"));
    // An empty AttributeUpdates, a SET, or a REMOVE alongside a SET create the item.
    update("e", json!({"AttributeUpdates": {}}));
    assert!(exists("e"));
    update(
        "f",
        json!({"UpdateExpression": "SET y = :v REMOVE x", "ExpressionAttributeValues": {":v": {"S": "q"}}}),
    );
    assert!(exists("f"));
    // On an item that exists, a removal is a write as always.
    let out = update("f", json!({"UpdateExpression": "REMOVE y"}));
    assert_eq!(out["Attributes"], json!({"pk": {"S": "f"}}));
}

/// Attribute names are 1 to 65535 bytes, in items, expressions' names and AttributesToGet.
#[test]
fn attribute_names_must_be_one_to_65535_bytes() {
    let (e, _) = engine();
    create(&e, "names", false);
    let long = "n".repeat(65536);
    let fits = "n".repeat(65535);
    for name in ["", long.as_str()] {
        let m = err(
            &e,
            "PutItem",
            json!({"TableName": "names", "Item": {"pk": {"S": "a"}, name: {"N": "1"}}}),
        )
        .message;
        assert!(
            m.contains(if name.is_empty() {
                "Empty attribute name"
            } else {
                "must be less than 65536 bytes"
            }),
            "{m}"
        );
        let m = err(&e, "GetItem", json!({"TableName": "names", "Key": {"pk": {"S": "a"}}, "ProjectionExpression": "#n", "ExpressionAttributeNames": {"#n": name}})).message;
        assert!(
            m.starts_with("ExpressionAttributeNames contains invalid value: ")
                && m.ends_with("for key #n"),
            "{m}"
        );
        let m = err(
            &e,
            "GetItem",
            json!({"TableName": "names", "Key": {"pk": {"S": "a"}}, "AttributesToGet": [name]}),
        )
        .message;
        assert!(m.ends_with("in AttributesToGet"), "{m}");
        let m = err(&e, "UpdateItem", json!({"TableName": "names", "Key": {"pk": {"S": "a"}}, "AttributeUpdates": {name: {"Value": {"N": "2"}, "Action": "PUT"}}})).message;
        assert!(
            m.starts_with("One or more parameter values were invalid: "),
            "{m}"
        );
    }
    ok(
        &e,
        "PutItem",
        json!({"TableName": "names", "Item": {"pk": {"S": "a"}, fits.as_str(): {"N": "1"}}}),
    );
    let got = ok(
        &e,
        "GetItem",
        json!({"TableName": "names", "Key": {"pk": {"S": "a"}}, "AttributesToGet": [fits]}),
    );
    assert_eq!(got["Item"][fits.as_str()], json!({"N": "1"}));
}

/// Items nest at most 32 levels deep (the item itself, then maps and lists).
#[test]
fn documents_nest_at_most_32_levels() {
    let (e, _) = engine();
    create(&e, "deep", false);
    // An attribute that is a map with `levels - 1` maps nested in it.
    let nested = |levels: usize| {
        let mut v = json!({"M": {}});
        for _ in 1..levels {
            v = json!({"M": {"a": v}});
        }
        v
    };
    ok(
        &e,
        "PutItem",
        json!({"TableName": "deep", "Item": {"pk": {"S": "a"}, "n": nested(31)}}),
    );
    let m = err(
        &e,
        "PutItem",
        json!({"TableName": "deep", "Item": {"pk": {"S": "a"}, "n": nested(32)}}),
    )
    .message;
    assert!(
        m.contains("nested attributes can be at most 32 levels deep"),
        "{m}"
    );
    // A list counts as a level too, and an update may not nest deeper either.
    let list = json!({"L": [nested(31)]});
    let m = err(
        &e,
        "PutItem",
        json!({"TableName": "deep", "Item": {"pk": {"S": "b"}, "n": list}}),
    )
    .message;
    assert!(
        m.contains("Nesting Levels have exceeded supported limits"),
        "{m}"
    );
    let m = err(
        &e,
        "UpdateItem",
        json!({"TableName": "deep", "Key": {"pk": {"S": "a"}},
        "UpdateExpression": "SET n.a = :v", "ExpressionAttributeValues": {":v": nested(31)}}),
    )
    .message;
    assert!(m.contains("Nesting Levels"), "{m}");
}

/// Legacy `Expected`: NOT_CONTAINS is false for a missing attribute (NE is true), a type the
/// operator does not take is a ValidationException, and ConditionalOperator needs conditions.
#[test]
fn expected_conditions_follow_dynamodb() {
    let (e, _) = engine();
    create(&e, "expt", false);
    ok(
        &e,
        "PutItem",
        json!({"TableName": "expt", "Item": {"pk": {"S": "a"}, "n": {"N": "1"}}}),
    );
    let update = |expected: Value, extra: Value| {
        let mut req = json!({"TableName": "expt", "Key": {"pk": {"S": "a"}},
            "AttributeUpdates": {"z": {"Value": {"N": "1"}, "Action": "PUT"}}, "Expected": expected});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        e.execute("UpdateItem", &req)
            .map(|_| ())
            .map_err(|e| (e.code, e.message))
    };
    let failed =
        |r: Result<(), (ErrorCode, String)>| r.unwrap_err().0 == ErrorCode::ConditionalCheckFailed;
    assert!(failed(update(
        json!({"gone": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [{"S": "x"}]}}),
        json!({})
    )));
    assert!(
        update(
            json!({"gone": {"ComparisonOperator": "NE", "AttributeValueList": [{"S": "x"}]}}),
            json!({})
        )
        .is_ok()
    );
    let (code, m) = update(
        json!({"n": {"ComparisonOperator": "LE", "AttributeValueList": [{"L": [{"N": "1"}]}]}}),
        json!({}),
    )
    .unwrap_err();
    assert_eq!(code, ErrorCode::Validation);
    assert!(
        m.ends_with("ComparisonOperator LE is not valid for L AttributeValue type"),
        "{m}"
    );
    for expected in [json!({}), Value::Null] {
        let (code, m) = update(expected, json!({"ConditionalOperator": "OR"})).unwrap_err();
        assert_eq!(code, ErrorCode::Validation);
        assert!(m.contains("ConditionalOperator"), "{m}");
    }
    // An ordering comparison with a list in the request is an error in the request too.
    let (code, m) = e
        .execute("UpdateItem", &json!({"TableName": "expt", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET z = :v",
            "ConditionExpression": "n < :l", "ExpressionAttributeValues": {":v": {"N": "1"}, ":l": {"L": []}}}))
        .map(|_| ())
        .map_err(|e| (e.code, e.message))
        .unwrap_err();
    assert_eq!(code, ErrorCode::Validation);
    assert!(
        m.ends_with("operator or function: <, operand type: L"),
        "{m}"
    );
}

/// Names start with a letter, and the update expression's functions are not conditions'.
#[test]
fn expression_names_and_functions_as_dynamodb_reads_them() {
    let (e, _) = engine();
    create(&e, "exprs", false);
    let m = |req: Value| err(&e, "UpdateItem", req).message;
    let key = json!({"pk": {"S": "a"}});
    let msg = m(
        json!({"TableName": "exprs", "Key": key, "UpdateExpression": "SET _123 = :v", "ExpressionAttributeValues": {":v": {"N": "1"}}}),
    );
    assert!(
        msg.starts_with("Invalid UpdateExpression: Syntax error; token: \"_\""),
        "{msg}"
    );
    let msg = m(json!({"TableName": "exprs", "Key": key, "UpdateExpression": "SET a = _f(b)"}));
    assert!(
        msg.starts_with("Invalid UpdateExpression: Syntax error; token: \"_\""),
        "{msg}"
    );
    for f in ["if_not_exists(a, a)", "list_append(a, a)"] {
        let msg = m(
            json!({"TableName": "exprs", "Key": key, "UpdateExpression": "SET z = :v",
            "ConditionExpression": format!("{f} = :v"), "ExpressionAttributeValues": {":v": {"N": "1"}}}),
        );
        assert!(
            msg.starts_with(
                "Invalid ConditionExpression: The function is not allowed in a condition expression"
            ),
            "{msg}"
        );
    }
    let msg = m(
        json!({"TableName": "exprs", "Key": key, "UpdateExpression": "SET z = :v",
        "ConditionExpression": "dog(a) = :v", "ExpressionAttributeValues": {":v": {"N": "1"}}}),
    );
    assert_eq!(
        msg,
        "Invalid ConditionExpression: Invalid function name; function: dog"
    );
    // A name may hold underscores after its first letter.
    ok(
        &e,
        "UpdateItem",
        json!({"TableName": "exprs", "Key": key, "UpdateExpression": "SET a_1 = :v", "ExpressionAttributeValues": {":v": {"N": "1"}}}),
    );
}

/// Attribute definitions' names are 1 to 255 characters, checked before the schema's
/// coherence, in CreateTable and UpdateTable alike.
#[test]
fn attribute_definition_names_are_checked_before_coherence() {
    let (e, _) = engine();
    let long = "d".repeat(256);
    let m = err(
        &e,
        "CreateTable",
        json!({"TableName": "coh", "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": long, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "short", "KeyType": "HASH"}]}),
    )
    .message;
    assert!(m.contains("at 'attributeDefinitions.1.member.attributeName' failed to satisfy constraint: Member must have length less than or equal to 255"), "{m}");
    create(&e, "coh", false);
    let m = err(&e, "UpdateTable", json!({"TableName": "coh",
        "AttributeDefinitions": [{"AttributeName": long, "AttributeType": "S"}],
        "GlobalSecondaryIndexUpdates": [{"Create": {"IndexName": "ix", "KeySchema": [{"AttributeName": "short", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}}]})).message;
    assert!(
        m.contains("Member must have length less than or equal to 255"),
        "{m}"
    );
}

/// Tags: at most 50 per table (a refused request changes nothing), keys of 1 to 128 and
/// values of at most 256 characters, of letters, digits, whitespace and `+ - = . _ : / @`.
#[test]
fn tags_follow_dynamodb_limits() {
    let (e, _) = engine();
    create(&e, "tagged", false);
    let arn = "arn:aws:dynamodb:us-east-1:000000000000:table/tagged";
    let tags = |r: std::ops::Range<usize>| -> Value {
        r.map(|i| json!({"Key": format!("k{i}"), "Value": format!("v{i}")}))
            .collect()
    };
    let count = || {
        ok(&e, "ListTagsOfResource", json!({"ResourceArn": arn}))["Tags"]
            .as_array()
            .unwrap()
            .len()
    };
    ok(
        &e,
        "TagResource",
        json!({"ResourceArn": arn, "Tags": tags(0..30)}),
    );
    ok(
        &e,
        "TagResource",
        json!({"ResourceArn": arn, "Tags": tags(20..50)}),
    );
    assert_eq!(count(), 50);
    let er = err(
        &e,
        "TagResource",
        json!({"ResourceArn": arn, "Tags": tags(45..55)}),
    );
    assert_eq!(er.code, ErrorCode::Validation);
    assert!(er.message.contains("limit of 50"), "{}", er.message);
    assert_eq!(count(), 50);
    ok(
        &e,
        "UntagResource",
        json!({"ResourceArn": arn, "TagKeys": (0..50).map(|i| format!("k{i}")).collect::<Vec<_>>()}),
    );
    // Characters, not bytes, and Unicode letters are letters.
    ok(
        &e,
        "TagResource",
        json!({"ResourceArn": arn, "Tags": [{"Key": "Ѯ".repeat(128), "Value": "законные буквы +-=._:/@"}]}),
    );
    for (k, v) in [("hi!", "dog"), ("dog", "d%g"), ("k", "\"q\""), ("", "v")] {
        let er = err(
            &e,
            "TagResource",
            json!({"ResourceArn": arn, "Tags": [{"Key": k, "Value": v}]}),
        );
        assert_eq!(er.code, ErrorCode::Validation, "{k} {v}");
    }
    let er = err(
        &e,
        "TagResource",
        json!({"ResourceArn": arn, "Tags": [{"Key": "k", "Value": "x".repeat(257)}]}),
    );
    assert_eq!(er.code, ErrorCode::Validation);
    assert_eq!(count(), 1);
    // An index's ARN is not a taggable resource.
    let er = err(
        &e,
        "ListTagsOfResource",
        json!({"ResourceArn": format!("{arn}/index/ix")}),
    );
    assert_eq!(er.code, ErrorCode::Validation);
    assert!(
        er.message.contains("only table or stream is accepted"),
        "{}",
        er.message
    );
}

/// Schema mistakes named as DynamoDB names them: a duplicated attribute definition, an
/// attribute redefined with another type, a GSI update with two actions.
#[test]
fn schema_mistakes_name_what_is_wrong() {
    let (e, _) = engine();
    let m = err(&e, "CreateTable", json!({"TableName": "dup", "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "xyz", "AttributeType": "S"}, {"AttributeName": "xyz", "AttributeType": "N"}],
        "KeySchema": [{"AttributeName": "xyz", "KeyType": "HASH"}]})).message;
    assert!(m.contains("duplicate AttributeName xyz"), "{m}");
    create(&e, "redef", false);
    let gsi = |name: &str| json!({"Create": {"IndexName": name, "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}});
    let m = err(&e, "UpdateTable", json!({"TableName": "redef",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "N"}], "GlobalSecondaryIndexUpdates": [gsi("idx")]})).message;
    assert!(m.contains("Attributes cannot be redefined"), "{m}");
    let mut both = gsi("idx");
    both["Delete"] = json!({"IndexName": "idx"});
    let m = err(&e, "UpdateTable", json!({"TableName": "redef",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}], "GlobalSecondaryIndexUpdates": [both]})).message;
    assert!(m.contains("Only one of GlobalSecondaryIndexUpdate"), "{m}");
}

/// `size(:v)` is the size of the request's value (DynamoDB's size() takes any operand);
/// of a number it is an error in the request.
#[test]
fn size_of_a_request_value() {
    let (e, _) = engine();
    create(&e, "sizes", false);
    let key = json!({"pk": {"S": "a"}});
    let cond = |v: Value| {
        e.execute("UpdateItem", &json!({"TableName": "sizes", "Key": key, "UpdateExpression": "SET z = :n",
            "ConditionExpression": "size(:v) >= :n", "ExpressionAttributeValues": {":v": v, ":n": {"N": "3"}}}))
            .map(|_| ())
            .map_err(|e| (e.code, e.message))
    };
    assert!(cond(json!({"S": "abc"})).is_ok());
    assert_eq!(
        cond(json!({"S": "ab"})).unwrap_err().0,
        ErrorCode::ConditionalCheckFailed
    );
    assert!(cond(json!({"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}]})).is_ok());
    let (code, m) = cond(json!({"N": "123"})).unwrap_err();
    assert_eq!(code, ErrorCode::Validation);
    assert!(
        m.ends_with("operator or function: size, operand type: N"),
        "{m}"
    );
}

/// SSESpecification, TableClass and WarmThroughput are kept, reported as DynamoDB reports
/// them, changed by UpdateTable (each alone is a change), and survive a restart.
#[test]
fn encryption_class_and_warm_throughput_are_kept_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let clock = ManualClock::new(Timestamp::from_secs(1_000));
    let table = |name: &str| {
        json!({
            "TableName": name, "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        })
    };
    let describe = |e: &TableEngine, name: &str| {
        ok(e, "DescribeTable", json!({"TableName": name}))["Table"].clone()
    };
    {
        let e = engine_at(&path, &clock);
        // By default: DynamoDB's own key, no class or warm throughput reported.
        ok(&e, "CreateTable", table("plain"));
        let d = describe(&e, "plain");
        for absent in ["SSEDescription", "TableClassSummary", "WarmThroughput"] {
            assert!(d.get(absent).is_none(), "{absent} in {d}");
        }
        let mut req = table("kept");
        req["SSESpecification"] = json!({"Enabled": true});
        req["TableClass"] = json!("STANDARD_INFREQUENT_ACCESS");
        req["WarmThroughput"] = json!({"ReadUnitsPerSecond": 15000, "WriteUnitsPerSecond": 5000});
        let created = ok(&e, "CreateTable", req)["TableDescription"].clone();
        assert_eq!(
            created["SSEDescription"],
            json!({"Status": "ENABLED", "SSEType": "KMS", "KMSMasterKeyArn": format!("arn:aws:kms:us-east-1:000000000000:key/{}", meta::MANAGED_KMS_KEY_ID)})
        );
        assert_eq!(
            created["TableClassSummary"],
            json!({"TableClass": "STANDARD_INFREQUENT_ACCESS"})
        );
        assert_eq!(
            created["WarmThroughput"],
            json!({"ReadUnitsPerSecond": 15000, "WriteUnitsPerSecond": 5000, "Status": "ACTIVE"})
        );
        // Each alone is an UpdateTable change; a key of the account's own by id.
        clock.advance(Duration::from_secs(60));
        ok(
            &e,
            "UpdateTable",
            json!({"TableName": "kept", "TableClass": "STANDARD"}),
        );
        ok(
            &e,
            "UpdateTable",
            json!({"TableName": "kept", "WarmThroughput": {"WriteUnitsPerSecond": 6000}}),
        );
        ok(
            &e,
            "UpdateTable",
            json!({"TableName": "plain", "SSESpecification": {"Enabled": true, "SSEType": "KMS", "KMSMasterKeyId": "my-key"}}),
        );
    }
    // After a restart.
    let e = engine_at(&path, &clock);
    let d = describe(&e, "kept");
    assert_eq!(
        d["TableClassSummary"],
        json!({"TableClass": "STANDARD", "LastUpdateDateTime": 1060.0})
    );
    assert_eq!(
        d["WarmThroughput"],
        json!({"ReadUnitsPerSecond": 15000, "WriteUnitsPerSecond": 6000, "Status": "ACTIVE"})
    );
    assert_eq!(
        describe(&e, "plain")["SSEDescription"]["KMSMasterKeyArn"],
        json!("arn:aws:kms:us-east-1:000000000000:key/my-key")
    );
    // Only what was given is reported.
    ok(
        &e,
        "UpdateTable",
        json!({"TableName": "plain", "WarmThroughput": {"ReadUnitsPerSecond": 20000}}),
    );
    assert_eq!(
        describe(&e, "plain")["WarmThroughput"],
        json!({"ReadUnitsPerSecond": 20000, "Status": "ACTIVE"})
    );
    // Back to DynamoDB's own key.
    ok(
        &e,
        "UpdateTable",
        json!({"TableName": "plain", "SSESpecification": {"Enabled": false}}),
    );
    assert!(describe(&e, "plain").get("SSEDescription").is_none());
    // A restore keeps the source's key unless SSESpecificationOverride says otherwise.
    let backup = ok(
        &e,
        "CreateBackup",
        json!({"TableName": "kept", "BackupName": "kept-1"}),
    )["BackupDetails"]["BackupArn"]
        .clone();
    ok(
        &e,
        "RestoreTableFromBackup",
        json!({"TargetTableName": "same", "BackupArn": backup}),
    );
    assert_eq!(
        describe(&e, "same")["SSEDescription"],
        describe(&e, "kept")["SSEDescription"]
    );
    ok(
        &e,
        "RestoreTableFromBackup",
        json!({"TargetTableName": "own", "BackupArn": backup, "SSESpecificationOverride": {"Enabled": false}}),
    );
    assert!(describe(&e, "own").get("SSEDescription").is_none());
    // The enums are checked with the request's other constraints.
    let mut bad = table("bad");
    bad["TableClass"] = json!("COLD");
    bad["SSESpecification"] = json!({"Enabled": true, "SSEType": "RSA"});
    assert_eq!(
        err(&e, "CreateTable", bad).message,
        "2 validation errors detected: Value 'COLD' at 'tableClass' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, STANDARD_INFREQUENT_ACCESS]; Value 'RSA' at 'sSESpecification.sSEType' failed to satisfy constraint: Member must satisfy enum value set: [AES256, KMS]"
    );
}

#[test]
fn contributor_insights_are_kept_reported_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let clock = ManualClock::new(Timestamp::from_secs(1_000));
    let describe = |e: &TableEngine, index: Option<&str>| {
        let mut req = json!({"TableName": "cit"});
        if let Some(ix) = index {
            req["IndexName"] = json!(ix);
        }
        ok(e, "DescribeContributorInsights", req)
    };
    let update = |e: &TableEngine, req: Value| ok(e, "UpdateContributorInsights", req);
    let stamp = 1_000_000u64;
    {
        let e = engine_at(&path, &clock);
        e.set_status_delay(Duration::from_secs(5));
        ok(
            &e,
            "CreateTable",
            json!({
                "TableName": "cit", "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "N"}, {"AttributeName": "g", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                "GlobalSecondaryIndexes": [{"IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"}}],
                "LocalSecondaryIndexes": [{"IndexName": "byl", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "g", "KeyType": "RANGE"}], "Projection": {"ProjectionType": "KEYS_ONLY"}}],
            }),
        );
        // Never enabled: DISABLED, no rules, no time.
        assert_eq!(
            describe(&e, None),
            json!({"TableName": "cit", "ContributorInsightsStatus": "DISABLED"})
        );
        let on = update(
            &e,
            json!({"TableName": "cit", "ContributorInsightsAction": "ENABLE"}),
        );
        assert_eq!(
            on,
            json!({"TableName": "cit", "ContributorInsightsStatus": "ENABLING",
                "ContributorInsightsMode": "ACCESSED_AND_THROTTLED_KEYS"})
        );
        assert_eq!(describe(&e, None)["ContributorInsightsStatus"], "ENABLING");
        clock.advance(Duration::from_secs(5));
        let d = describe(&e, None);
        assert_eq!(d["ContributorInsightsStatus"], "ENABLED");
        assert_eq!(d["LastUpdateDateTime"], json!(1000.0));
        assert_eq!(
            d["ContributorInsightsRuleList"],
            json!(
                ["PKC", "SKC", "PKT", "SKT"]
                    .map(|k| format!("DynamoDBContributorInsights-{k}-cit-{stamp}"))
            )
        );
        // A global index, throttled keys only: its key has no sort key.
        update(
            &e,
            json!({"TableName": "cit", "IndexName": "byg", "ContributorInsightsAction": "ENABLE",
                "ContributorInsightsMode": "THROTTLED_KEYS"}),
        );
        clock.advance(Duration::from_secs(5));
        let d = describe(&e, Some("byg"));
        assert_eq!(d["IndexName"], "byg");
        assert_eq!(d["ContributorInsightsMode"], "THROTTLED_KEYS");
        assert_eq!(
            d["ContributorInsightsRuleList"],
            json!([format!(
                "DynamoDBContributorInsights-PKT-cit-{}",
                stamp + 5_000
            )])
        );
        // A local index or an unknown one is not a global index of the table; an unknown
        // table is not found either.
        for ix in ["byl", "nope"] {
            let er = err(
                &e,
                "UpdateContributorInsights",
                json!({"TableName": "cit", "IndexName": ix, "ContributorInsightsAction": "ENABLE"}),
            );
            assert_eq!(er.code, ErrorCode::ResourceNotFound, "{ix}");
            assert!(er.message.contains(ix), "{}", er.message);
        }
        let er = err(
            &e,
            "DescribeContributorInsights",
            json!({"TableName": "other"}),
        );
        assert_eq!(er.code, ErrorCode::ResourceNotFound);
        // The action is required and both enums are checked with the other constraints.
        let er = err(
            &e,
            "UpdateContributorInsights",
            json!({"TableName": "cit", "ContributorInsightsAction": "ON", "ContributorInsightsMode": "ALL"}),
        );
        assert_eq!(er.code, ErrorCode::Validation);
        assert!(
            er.message.starts_with("2 validation errors detected")
                && er.message.contains("Value 'ON' at 'contributorInsightsAction' failed to satisfy constraint: Member must satisfy enum value set: [ENABLE, DISABLE]")
                && er.message.contains("at 'contributorInsightsMode'"),
            "{}",
            er.message
        );
        let er = err(&e, "UpdateContributorInsights", json!({"TableName": "cit"}));
        assert!(
            er.message.contains(
                "'contributorInsightsAction' failed to satisfy constraint: Member must not be null"
            ),
            "{}",
            er.message
        );
    }
    // After a restart: kept. Listed a table before its indexes, a page at a time.
    let e = engine_at(&path, &clock);
    assert_eq!(describe(&e, None)["ContributorInsightsStatus"], "ENABLED");
    let all = ok(&e, "ListContributorInsights", json!({}));
    assert_eq!(
        all,
        json!({"ContributorInsightsSummaries": [
            {"TableName": "cit", "ContributorInsightsStatus": "ENABLED", "ContributorInsightsMode": "ACCESSED_AND_THROTTLED_KEYS"},
            {"TableName": "cit", "IndexName": "byg", "ContributorInsightsStatus": "ENABLED", "ContributorInsightsMode": "THROTTLED_KEYS"}]})
    );
    let first = ok(
        &e,
        "ListContributorInsights",
        json!({"TableName": "cit", "MaxResults": 1}),
    );
    assert_eq!(
        first["ContributorInsightsSummaries"],
        json!([all["ContributorInsightsSummaries"][0]])
    );
    let second = ok(
        &e,
        "ListContributorInsights",
        json!({"MaxResults": 1, "NextToken": first["NextToken"]}),
    );
    assert_eq!(
        second["ContributorInsightsSummaries"],
        json!([all["ContributorInsightsSummaries"][1]])
    );
    assert!(second.get("NextToken").is_none());
    let er = err(&e, "ListContributorInsights", json!({"MaxResults": 101}));
    assert!(
        er.message
            .contains("Member must have value less than or equal to 100"),
        "{}",
        er.message
    );
    // Off: the answer says DISABLING, and with no status delay (this engine's) the table is
    // DISABLED at once, out of the list; deleting the index takes its insights with it.
    let off = update(
        &e,
        json!({"TableName": "cit", "ContributorInsightsAction": "DISABLE"}),
    );
    assert_eq!(off["ContributorInsightsStatus"], "DISABLING");
    let d = describe(&e, None);
    assert_eq!(d["ContributorInsightsStatus"], "DISABLED");
    assert!(d.get("ContributorInsightsRuleList").is_none(), "{d}");
    ok(
        &e,
        "UpdateTable",
        json!({"TableName": "cit", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "byg"}}]}),
    );
    assert_eq!(
        ok(&e, "ListContributorInsights", json!({})),
        json!({"ContributorInsightsSummaries": []})
    );
}

#[test]
fn on_demand_maximum_throughput_is_kept_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let clock = ManualClock::new(Timestamp::from_secs(1_000));
    let describe = |e: &TableEngine| {
        ok(e, "DescribeTable", json!({"TableName": "capped"}))["Table"]["OnDemandThroughput"]
            .clone()
    };
    {
        let e = engine_at(&path, &clock);
        let created = ok(
            &e,
            "CreateTable",
            json!({
                "TableName": "capped", "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "OnDemandThroughput": {"MaxReadRequestUnits": 100},
            }),
        );
        assert_eq!(
            created["TableDescription"]["OnDemandThroughput"],
            json!({"MaxReadRequestUnits": 100})
        );
        // Alone, an UpdateTable change; the other unit is kept.
        ok(
            &e,
            "UpdateTable",
            json!({"TableName": "capped", "OnDemandThroughput": {"MaxWriteRequestUnits": 50}}),
        );
        assert_eq!(
            describe(&e),
            json!({"MaxReadRequestUnits": 100, "MaxWriteRequestUnits": 50})
        );
        // -1 takes the maximum away; 0 or below is refused, and so is a unit of another type.
        ok(
            &e,
            "UpdateTable",
            json!({"TableName": "capped", "OnDemandThroughput": {"MaxReadRequestUnits": -1}}),
        );
        for bad in [json!(0), json!(-2)] {
            let er = err(
                &e,
                "UpdateTable",
                json!({"TableName": "capped", "OnDemandThroughput": {"MaxWriteRequestUnits": bad}}),
            );
            assert_eq!(er.code, ErrorCode::Validation);
            assert!(
                er.message.contains("MaxWriteRequestUnits"),
                "{}",
                er.message
            );
        }
        let er = err(
            &e,
            "UpdateTable",
            json!({"TableName": "capped", "OnDemandThroughput": {"MaxWriteRequestUnits": "many"}}),
        );
        assert_eq!(er.code, ErrorCode::Serialization);
    }
    // After a restart.
    let e = engine_at(&path, &clock);
    assert_eq!(
        describe(&e),
        json!({"MaxReadRequestUnits": -1, "MaxWriteRequestUnits": 50})
    );
    // A table never capped reports nothing.
    create(&e, "free", false);
    assert!(
        ok(&e, "DescribeTable", json!({"TableName": "free"}))["Table"]
            .get("OnDemandThroughput")
            .is_none()
    );
    // A restore keeps the source's maximum unless `OnDemandThroughputOverride` gives another.
    let backup = ok(
        &e,
        "CreateBackup",
        json!({"TableName": "capped", "BackupName": "capped-backup"}),
    )["BackupDetails"]["BackupArn"]
        .clone();
    let restored = |target: &str, extra: Value| {
        let mut req = json!({"TargetTableName": target, "BackupArn": backup});
        if let (Some(r), Some(x)) = (req.as_object_mut(), extra.as_object()) {
            r.extend(x.clone());
        }
        e.execute("RestoreTableFromBackup", &req).map(|(v, t)| {
            t.wait().unwrap();
            v.into_value()["TableDescription"]["OnDemandThroughput"].clone()
        })
    };
    assert_eq!(
        restored("kept", json!({})).unwrap(),
        json!({"MaxReadRequestUnits": -1, "MaxWriteRequestUnits": 50})
    );
    assert_eq!(
        restored(
            "overridden",
            json!({"OnDemandThroughputOverride": {"MaxReadRequestUnits": 7}})
        )
        .unwrap(),
        json!({"MaxReadRequestUnits": 7})
    );
    let er = restored(
        "refused",
        json!({"OnDemandThroughputOverride": {"MaxReadRequestUnits": 0}}),
    )
    .unwrap_err();
    assert_eq!(er.code, ErrorCode::Validation);
}

#[test]
fn a_global_index_keeps_its_warm_and_maximum_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let clock = ManualClock::new(Timestamp::from_secs(1_000));
    let gsi = |name: &str, max_read: i64| {
        json!({"IndexName": name, "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
            "WarmThroughput": {"ReadUnitsPerSecond": 15000, "WriteUnitsPerSecond": 5000},
            "OnDemandThroughput": {"MaxReadRequestUnits": max_read}})
    };
    let table = |gsis: Value| {
        json!({
            "TableName": "gwt", "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": gsis,
        })
    };
    let described = |e: &TableEngine| {
        ok(e, "DescribeTable", json!({"TableName": "gwt"}))["Table"]["GlobalSecondaryIndexes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["IndexName"].as_str().unwrap().to_string(),
                    i.get("WarmThroughput").cloned(),
                    i.get("OnDemandThroughput").cloned(),
                )
            })
            .collect::<Vec<_>>()
    };
    {
        let e = engine_at(&path, &clock);
        let er = err(&e, "CreateTable", table(json!([gsi("byg", 0)])));
        assert_eq!(er.code, ErrorCode::Validation);
        assert!(er.message.contains("MaxReadRequestUnits"), "{}", er.message);
        ok(&e, "CreateTable", table(json!([gsi("byg", 300)])));
        // An index added by UpdateTable keeps its own; an index given none reports none.
        ok(
            &e,
            "UpdateTable",
            json!({"TableName": "gwt", "AttributeDefinitions": [{"AttributeName": "g", "AttributeType": "S"}],
                "GlobalSecondaryIndexUpdates": [{"Create": gsi("late", -1)}]}),
        );
    }
    let e = engine_at(&path, &clock);
    let warm =
        Some(json!({"ReadUnitsPerSecond": 15000, "WriteUnitsPerSecond": 5000, "Status": "ACTIVE"}));
    assert_eq!(
        described(&e),
        vec![
            (
                "byg".to_string(),
                warm.clone(),
                Some(json!({"MaxReadRequestUnits": 300}))
            ),
            (
                "late".to_string(),
                warm.clone(),
                Some(json!({"MaxReadRequestUnits": -1}))
            ),
        ]
    );
    // UpdateTable's index `Update` changes them (what it does not give is kept), without
    // provisioned units; with none of the three it still asks for provisioned units.
    let update = |action: Value| json!({"TableName": "gwt", "GlobalSecondaryIndexUpdates": [{"Update": action}]});
    let m = err(&e, "UpdateTable", update(json!({"IndexName": "byg"}))).message;
    assert!(
        m.contains(
            "Value null at 'globalSecondaryIndexUpdates.1.member.update.provisionedThroughput'"
        ),
        "{m}"
    );
    let zero = json!({"IndexName": "byg", "OnDemandThroughput": {"MaxWriteRequestUnits": 0}});
    assert_eq!(
        err(&e, "UpdateTable", update(zero)).code,
        ErrorCode::Validation
    );
    ok(
        &e,
        "UpdateTable",
        update(json!({"IndexName": "byg",
            "OnDemandThroughput": {"MaxWriteRequestUnits": 50},
            "WarmThroughput": {"ReadUnitsPerSecond": 20000}})),
    );
    drop(e);
    let e = engine_at(&path, &clock);
    assert_eq!(
        described(&e),
        vec![
            (
                "byg".to_string(),
                Some(
                    json!({"ReadUnitsPerSecond": 20000, "WriteUnitsPerSecond": 5000, "Status": "ACTIVE"})
                ),
                Some(json!({"MaxReadRequestUnits": 300, "MaxWriteRequestUnits": 50}))
            ),
            (
                "late".to_string(),
                warm,
                Some(json!({"MaxReadRequestUnits": -1}))
            ),
        ]
    );
}

#[test]
fn a_damaged_item_is_a_start_up_error_naming_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kedge.db");
    let clock = ManualClock::new(Timestamp::from_secs(1_000));
    {
        let e = engine_at(&path, &clock);
        create(&e, "tab", false);
        for k in ["a", "b"] {
            ok(
                &e,
                "PutItem",
                json!({"TableName": "tab", "Item": {"pk": {"S": k}}}),
            );
        }
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let id: i64 = conn
        .query_row(
            "SELECT id FROM ddb_log WHERE item LIKE '%\"b\"%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute(
        "UPDATE ddb_log SET item = '{\"pk\": {\"S\": ' WHERE id = ?1",
        [id],
    )
    .unwrap();
    let e = load(&conn).err().unwrap().to_string();
    assert!(
        e.contains(&format!("ddb_log row {id} is damaged")) && e.contains("table tab: bad item"),
        "{e}"
    );
}
