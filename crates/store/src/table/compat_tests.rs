//! DynamoDB behaviours found by ScyllaDB's compatibility suite (run against AWS by its
//! authors): index key limits and projections, transactions' validation and size, read
//! capacity of empty reads, restarting a query of a hash-only table, nested update functions.

use serde_json::{Value, json};

use super::tests::{create, engine, err, ok};
use super::*;

fn indexed(e: &TableEngine) {
    ok(
        e,
        "CreateTable",
        json!({
            "TableName": "idx",
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"}, {"AttributeName": "l", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "GlobalSecondaryIndexes": [{"IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}], "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["a"]}}],
            "LocalSecondaryIndexes": [{"IndexName": "byl", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "l", "KeyType": "RANGE"}], "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["a"]}}],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
}

fn s(v: &str) -> Value {
    json!({ "S": v })
}

#[test]
fn index_keys_obey_the_table_key_size_limits() {
    let (e, _) = engine();
    indexed(&e);
    let put = |g: usize, l: usize| {
        e.execute(
            "PutItem",
            &json!({"TableName": "idx", "Item": {"pk": s("p"), "sk": s(&format!("{g}-{l}")), "g": s(&"g".repeat(g)), "l": s(&"l".repeat(l))}}),
        )
        .map(|(_, t)| t.wait().unwrap())
    };
    put(2048, 1024).unwrap();
    let hash = put(2049, 1).unwrap_err();
    assert!(hash.message.contains("2048"), "{}", hash.message);
    let range = put(1, 1025).unwrap_err();
    assert!(range.message.contains("1024"), "{}", range.message);
    // Nothing was written by the refused puts.
    let r = ok(
        &e,
        "Query",
        json!({"TableName": "idx", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": s("p")}}),
    );
    assert_eq!(r["Count"], 1);

    // A GSI created later leaves out the items whose key it could not hold.
    create(&e, "late", false);
    for (i, n) in [2048, 2049].into_iter().enumerate() {
        ok(
            &e,
            "PutItem",
            json!({"TableName": "late", "Item": {"pk": s(&format!("k{i}")), "x": s(&"x".repeat(n))}}),
        );
    }
    ok(
        &e,
        "UpdateTable",
        json!({"TableName": "late", "AttributeDefinitions": [{"AttributeName": "x", "AttributeType": "S"}], "GlobalSecondaryIndexUpdates": [{"Create": {"IndexName": "byx", "KeySchema": [{"AttributeName": "x", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}}]}),
    );
    let r = ok(&e, "Scan", json!({"TableName": "late", "IndexName": "byx"}));
    assert_eq!(r["Count"], 1);
    assert_eq!(r["Items"][0]["pk"], s("k0"));
    assert_eq!(ok(&e, "Scan", json!({"TableName": "late"}))["Count"], 2);
}

#[test]
fn projections_refuse_duplicate_and_overlong_names() {
    let (e, _) = engine();
    let table = |names: Value| {
        json!({
            "TableName": "bad",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "g", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [{"IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}], "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": names}}],
            "BillingMode": "PAY_PER_REQUEST"
        })
    };
    let dup = err(&e, "CreateTable", table(json!(["a", "b", "a"])));
    assert_eq!(dup.code, ErrorCode::Validation);
    assert!(dup.message.contains("Duplicate"), "{}", dup.message);
    let long = err(&e, "CreateTable", table(json!(["x".repeat(256)])));
    assert!(long.message.contains("255"), "{}", long.message);
    ok(&e, "CreateTable", table(json!(["a", "x".repeat(255)])));
}

#[test]
fn a_gsi_refuses_unprojected_attributes_and_an_lsi_fetches_them() {
    let (e, _) = engine();
    indexed(&e);
    ok(
        &e,
        "PutItem",
        json!({"TableName": "idx", "Item": {"pk": s("p"), "sk": s("1"), "g": s("G"), "l": s("L"), "a": s("A"), "b": s("B")}}),
    );
    let gsi = |proj: Value| {
        let mut q = json!({"TableName": "idx", "IndexName": "byg", "KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": s("G")}});
        q.as_object_mut()
            .unwrap()
            .extend(proj.as_object().unwrap().clone());
        q
    };
    for proj in [
        json!({"ProjectionExpression": "b"}),
        json!({"ProjectionExpression": "a, b.c"}),
    ] {
        let er = err(&e, "Query", gsi(proj));
        assert_eq!(er.code, ErrorCode::Validation);
        assert!(er.message.contains("does not project"), "{}", er.message);
    }
    let r = ok(&e, "Query", gsi(json!({"ProjectionExpression": "a, pk"})));
    assert_eq!(r["Items"][0], json!({"a": s("A"), "pk": s("p")}));

    // The LSI reads `b` from the table, and the table's read shows in the capacity.
    let r = ok(
        &e,
        "Query",
        json!({"TableName": "idx", "IndexName": "byl", "KeyConditionExpression": "pk = :p AND l = :l",
               "ExpressionAttributeValues": {":p": s("p"), ":l": s("L")}, "ProjectionExpression": "a, b",
               "ReturnConsumedCapacity": "INDEXES"}),
    );
    assert_eq!(r["Items"][0], json!({"a": s("A"), "b": s("B")}));
    assert_eq!(r["ConsumedCapacity"]["Table"]["CapacityUnits"], 0.5);
    assert_eq!(
        r["ConsumedCapacity"]["LocalSecondaryIndexes"]["byl"]["CapacityUnits"],
        0.5
    );
}

#[test]
fn reading_nothing_still_costs_a_read_unit() {
    let (e, _) = engine();
    indexed(&e);
    for (consistent, units) in [(true, 1.0), (false, 0.5)] {
        let q = ok(
            &e,
            "Query",
            json!({"TableName": "idx", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": s("none")},
                   "ConsistentRead": consistent, "ReturnConsumedCapacity": "INDEXES"}),
        );
        assert_eq!(q["Count"], 0);
        assert_eq!(q["ConsumedCapacity"]["CapacityUnits"], units);
        assert_eq!(q["ConsumedCapacity"]["Table"]["CapacityUnits"], units);
        let sc = ok(
            &e,
            "Scan",
            json!({"TableName": "idx", "ConsistentRead": consistent, "ReturnConsumedCapacity": "TOTAL"}),
        );
        assert_eq!(sc["ConsumedCapacity"]["CapacityUnits"], units);
    }
    // An index query that finds nothing: the index's read, and nothing of the table.
    let q = ok(
        &e,
        "Query",
        json!({"TableName": "idx", "IndexName": "byg", "KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": s("none")},
               "ReturnConsumedCapacity": "INDEXES"}),
    );
    assert_eq!(q["ConsumedCapacity"]["CapacityUnits"], 0.5);
    assert_eq!(q["ConsumedCapacity"]["Table"]["CapacityUnits"], 0.0);
}

#[test]
fn a_query_of_a_hash_only_table_cannot_be_restarted() {
    let (e, _) = engine();
    create(&e, "hash", false);
    ok(
        &e,
        "PutItem",
        json!({"TableName": "hash", "Item": {"pk": s("k")}}),
    );
    let q = |esk: &str| {
        json!({"TableName": "hash", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": s("k")},
               "ExclusiveStartKey": {"pk": s(esk)}})
    };
    let er = err(&e, "Query", q("k"));
    assert_eq!(er.code, ErrorCode::Validation);
    assert_eq!(
        er.message,
        "The provided exclusive start key is invalid: ExclusiveStartKey: {pk=AttributeValue: {S:k}}"
    );
    let er = err(&e, "Query", q("other"));
    assert!(
        er.message.contains("outside query boundaries"),
        "{}",
        er.message
    );
    // Nor does a page of such a query hand out a start key, even when it ends at its Limit.
    let r = ok(
        &e,
        "Query",
        json!({"TableName": "hash", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": s("k")}, "Limit": 1}),
    );
    assert_eq!(r["Count"], 1);
    assert!(r.get("LastEvaluatedKey").is_none(), "{r}");
    // A scan of it does.
    let r = ok(&e, "Scan", json!({"TableName": "hash", "Limit": 1}));
    assert_eq!(r["LastEvaluatedKey"], json!({"pk": s("k")}));
}

#[test]
fn a_transaction_with_an_unreadable_key_is_cancelled_at_that_action() {
    let (e, _) = engine();
    create(&e, "txn", false);
    let er = err(
        &e,
        "TransactWriteItems",
        json!({"TransactItems": [
            {"Put": {"TableName": "txn", "Item": {"pk": {"N": "7"}}}},
            {"Put": {"TableName": "txn", "Item": {"pk": {"N": "8"}}}},
            {"Put": {"TableName": "txn", "Item": {"pk": s("k")}, "ConditionExpression": "attribute_exists(pk)"}}]}),
    );
    assert_eq!(er.code, ErrorCode::TransactionCanceled);
    let reasons = &er.extra.as_ref().unwrap()["CancellationReasons"];
    assert_eq!(reasons[0]["Code"], "ValidationError");
    assert!(
        reasons[0]["Message"]
            .as_str()
            .unwrap()
            .contains("Type mismatch for key pk")
    );
    assert_eq!(reasons[1], json!({"Code": "None"}));
    assert_eq!(reasons[2], json!({"Code": "None"}));
    assert_eq!(ok(&e, "Scan", json!({"TableName": "txn"}))["Count"], 0);
}

#[test]
fn a_transaction_with_an_empty_key_value_is_refused_not_cancelled() {
    let (e, _) = engine();
    create(&e, "txn", false);
    let er = err(
        &e,
        "TransactWriteItems",
        json!({"TransactItems": [
            {"Put": {"TableName": "txn", "Item": {"pk": s("ok")}}},
            {"Update": {"TableName": "txn", "Key": {"pk": s("")}, "UpdateExpression": "SET n = :v",
                        "ExpressionAttributeValues": {":v": {"N": "0"}}}}]}),
    );
    assert_eq!(er.code, ErrorCode::Validation);
    assert_eq!(
        er.message,
        "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: pk"
    );
    assert!(er.extra.is_none());
    assert_eq!(ok(&e, "Scan", json!({"TableName": "txn"}))["Count"], 0);
}

#[test]
fn a_table_arn_names_the_table_wherever_a_table_name_goes() {
    let (e, _) = engine();
    create(&e, "byarn", false);
    let arn = ok(&e, "DescribeTable", json!({"TableName": "byarn"}))["Table"]["TableArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let described = ok(&e, "DescribeTable", json!({"TableName": arn}));
    assert_eq!(described["Table"]["TableName"], "byarn");
    ok(
        &e,
        "TransactWriteItems",
        json!({"TransactItems": [{"Update": {"TableName": arn, "Key": {"pk": s("a")},
            "UpdateExpression": "SET n = :v", "ExpressionAttributeValues": {":v": {"N": "1"}}}}]}),
    );
    ok(
        &e,
        "PutItem",
        json!({"TableName": arn, "Item": {"pk": s("b")}}),
    );
    assert_eq!(ok(&e, "Scan", json!({"TableName": arn}))["Count"], 2);
    assert_eq!(
        ok(
            &e,
            "GetItem",
            json!({"TableName": arn, "Key": {"pk": s("a")}})
        )["Item"]["n"],
        json!({"N": "1"})
    );
    // A batch answers under the name it was asked with.
    let got = ok(
        &e,
        "BatchGetItem",
        json!({"RequestItems": {arn.clone(): {"Keys": [{"pk": s("b")}]}}}),
    );
    assert_eq!(got["Responses"][&arn], json!([{"pk": s("b")}]));
    // Another account's or region's ARN is not this table, nor is a malformed one.
    for other in [
        arn.replace("000000000000", "111111111111"),
        arn.replace("us-east-1", "eu-west-1"),
        format!("{arn}/index/x"),
    ] {
        assert!(
            e.execute(
                "GetItem",
                &json!({"TableName": other, "Key": {"pk": s("a")}})
            )
            .is_err(),
            "{other}"
        );
    }
}

#[test]
fn a_resource_policy_is_put_read_replaced_by_revision_and_deleted() {
    let (e, clock) = engine();
    create(&e, "pol", false);
    let arn = ok(&e, "DescribeTable", json!({"TableName": "pol"}))["Table"]["TableArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let doc = |action: &str| {
        json!({"Version": "2012-10-17", "Statement": [{"Principal": {"AWS": "000000000000"},
            "Effect": "Allow", "Action": [action], "Resource": "*"}]})
        .to_string()
    };
    let er = err(&e, "GetResourcePolicy", json!({"ResourceArn": arn}));
    assert_eq!(er.code, ErrorCode::PolicyNotFound);
    assert_eq!(
        er.message,
        format!("Resource-based policy not found for the provided ResourceArn: {arn}")
    );
    let put = |action: &str, expected: Option<&str>| {
        let mut req = json!({"ResourceArn": arn, "Policy": doc(action)});
        if let Some(x) = expected {
            req["ExpectedRevisionId"] = json!(x);
        }
        e.execute("PutResourcePolicy", &req)
            .map(|(a, _)| a.into_value()["RevisionId"].as_str().unwrap().to_owned())
    };
    let r1 = put("dynamodb:*", Some("NO_POLICY")).unwrap();
    let got = ok(&e, "GetResourcePolicy", json!({"ResourceArn": arn}));
    assert_eq!(got["RevisionId"], r1.as_str());
    assert_eq!(got["Policy"], doc("dynamodb:*").as_str());
    // The same document again changes nothing, even in the same millisecond or later.
    assert_eq!(put("dynamodb:*", None).unwrap(), r1);
    // Another document in the same millisecond still gets a greater revision.
    let r2 = put("dynamodb:PutItem", Some(&r1)).unwrap();
    assert!(r2.parse::<u64>().unwrap() > r1.parse::<u64>().unwrap());
    let er = put("dynamodb:GetItem", Some(&r1)).unwrap_err();
    assert_eq!(er.code, ErrorCode::PolicyNotFound);
    assert_eq!(
        er.message,
        format!(
            "Resource-based policy not found for the provided ResourceArn: Requested update for policy with revision id {r1}, but the policy associated to target table pol has revision id {r2}."
        )
    );
    let er = put("dynamodb:GetItem", Some("NO_POLICY")).unwrap_err();
    assert_eq!(
        er.message,
        format!(
            "Resource-based policy not found for the provided ResourceArn: Requested policy update expecting none to be present for table pol, but a policy exists with revision id {r2}."
        )
    );
    clock.advance(std::time::Duration::from_secs(5));
    let r3 = put("dynamodb:Query", None).unwrap();
    assert_eq!(
        r3.parse::<u64>().unwrap(),
        r1.parse::<u64>().unwrap() + 5000
    );
    let er = err(
        &e,
        "DeleteResourcePolicy",
        json!({"ResourceArn": arn, "ExpectedRevisionId": r2}),
    );
    assert_eq!(er.code, ErrorCode::PolicyNotFound);
    let gone = ok(
        &e,
        "DeleteResourcePolicy",
        json!({"ResourceArn": arn, "ExpectedRevisionId": r3}),
    );
    assert_eq!(gone["RevisionId"], r3.as_str());
    assert_eq!(
        err(&e, "GetResourcePolicy", json!({"ResourceArn": arn})).code,
        ErrorCode::PolicyNotFound
    );
    // Unknown tables, and documents that are not JSON objects, are refused.
    let er = err(
        &e,
        "GetResourcePolicy",
        json!({"ResourceArn": format!("{arn}unknown")}),
    );
    assert_eq!(er.code, ErrorCode::ResourceNotFound);
    assert_eq!(
        er.message,
        "Requested resource not found: Table: polunknown not found"
    );
    let er = err(
        &e,
        "PutResourcePolicy",
        json!({"ResourceArn": arn, "Policy": "[1]"}),
    );
    assert_eq!(er.code, ErrorCode::Validation);
    // A table may be created with its policy.
    ok(
        &e,
        "CreateTable",
        json!({"TableName": "withpol", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST", "ResourcePolicy": doc("dynamodb:GetItem")}),
    );
    let got = ok(
        &e,
        "GetResourcePolicy",
        json!({"ResourceArn": arn.replace("table/pol", "table/withpol")}),
    );
    assert_eq!(got["Policy"], doc("dynamodb:GetItem").as_str());
    let er = err(
        &e,
        "CreateTable",
        json!({"TableName": "badpol", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST", "ResourcePolicy": "not json"}),
    );
    assert_eq!(er.code, ErrorCode::Validation);
}

#[test]
fn select_checks_are_worded_as_dynamodb_words_them_for_query_and_scan() {
    let (e, _) = engine();
    create(&e, "sel", false);
    let q = |extra: Value| {
        let mut r = json!({"TableName": "sel", "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": s("a")}});
        r.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        err(&e, "Query", r).message
    };
    let sc = |extra: Value| {
        let mut r = json!({"TableName": "sel"});
        r.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        err(&e, "Scan", r).message
    };
    let all_projected =
        "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName";
    assert_eq!(
        q(json!({"Select": "ALL_PROJECTED_ATTRIBUTES"})),
        format!("1 validation error detected: {all_projected}")
    );
    assert_eq!(
        sc(json!({"Select": "ALL_PROJECTED_ATTRIBUTES"})),
        all_projected
    );
    let specific = "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES";
    assert_eq!(
        q(json!({"Select": "SPECIFIC_ATTRIBUTES"})),
        format!("1 validation error detected: {specific}")
    );
    assert_eq!(sc(json!({"Select": "SPECIFIC_ATTRIBUTES"})), specific);
    assert_eq!(
        sc(json!({"Select": "COUNT", "ProjectionExpression": "pk"})),
        "Cannot specify the ProjectionExpression when choosing to get only the Count"
    );
    assert_eq!(
        sc(json!({"Select": "ALL_ATTRIBUTES", "AttributesToGet": ["pk"]})),
        "Cannot specify the AttributesToGet when choosing to get ALL_ATTRIBUTES"
    );
    assert_eq!(
        q(json!({"Select": "ALL_ATTRIBUTES", "ProjectionExpression": "pk"})),
        "1 validation error detected: Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES"
    );
}

#[test]
fn point_in_time_recovery_is_turned_on_and_off_and_described() {
    let (e, clock) = engine();
    create(&e, "pitr", false);
    let described = |e: &TableEngine| {
        ok(e, "DescribeContinuousBackups", json!({"TableName": "pitr"}))
            ["ContinuousBackupsDescription"]
            .clone()
    };
    assert_eq!(
        described(&e)["PointInTimeRecoveryDescription"],
        json!({"PointInTimeRecoveryStatus": "DISABLED"})
    );
    let t0 = clock.now().as_millis() as f64 / 1000.0;
    let on = ok(
        &e,
        "UpdateContinuousBackups",
        json!({"TableName": "pitr", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true}}),
    )["ContinuousBackupsDescription"]
        .clone();
    assert_eq!(on["ContinuousBackupsStatus"], "ENABLED");
    let p = &on["PointInTimeRecoveryDescription"];
    assert_eq!(p["PointInTimeRecoveryStatus"], "ENABLED");
    assert_eq!(p["RecoveryPeriodInDays"], 35);
    assert_eq!(p["EarliestRestorableDateTime"], json!(t0));
    assert_eq!(p["LatestRestorableDateTime"], json!(t0));
    // An hour later: restorable from when it was enabled until five minutes ago; a period
    // change keeps the start.
    clock.advance(std::time::Duration::from_secs(3600));
    let p = ok(
        &e,
        "UpdateContinuousBackups",
        json!({"TableName": "pitr", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true, "RecoveryPeriodInDays": 10}}),
    )["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
        .clone();
    assert_eq!(p["RecoveryPeriodInDays"], 10);
    assert_eq!(p["EarliestRestorableDateTime"], json!(t0));
    assert_eq!(p["LatestRestorableDateTime"], json!(t0 + 3300.0));
    assert_eq!(described(&e)["PointInTimeRecoveryDescription"], p);
    let off = ok(
        &e,
        "UpdateContinuousBackups",
        json!({"TableName": "pitr", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": false}}),
    );
    assert_eq!(
        off["ContinuousBackupsDescription"],
        json!({"ContinuousBackupsStatus": "ENABLED",
            "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}})
    );
    let er = err(
        &e,
        "UpdateContinuousBackups",
        json!({"TableName": "nope", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true}}),
    );
    assert_eq!(er.code, ErrorCode::TableNotFound);
    assert_eq!(er.message, "Table not found: nope");
    let er = err(
        &e,
        "UpdateContinuousBackups",
        json!({"TableName": "pitr", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true, "RecoveryPeriodInDays": 36}}),
    );
    assert_eq!(er.code, ErrorCode::Validation);
}

#[test]
fn a_transaction_carries_at_most_4_mb_and_a_token_of_36_characters() {
    let (e, _) = engine();
    create(&e, "txn", false);
    let big = "x".repeat(100_000);
    let puts = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"Put": {"TableName": "txn", "Item": {"pk": s(&format!("k{i}")), "x": s(&big)}}}))
            .collect()
    };
    let er = err(&e, "TransactWriteItems", json!({"TransactItems": puts(50)}));
    assert_eq!(er.code, ErrorCode::Validation);
    assert!(
        er.message.contains("size cannot exceed 4 MB"),
        "{}",
        er.message
    );
    ok(&e, "TransactWriteItems", json!({"TransactItems": puts(40)}));
    // Deleting those 4 MB is a small request: allowed.
    let deletes: Vec<Value> = (0..40)
        .map(|i| json!({"Delete": {"TableName": "txn", "Key": {"pk": s(&format!("k{i}"))}}}))
        .collect();
    ok(&e, "TransactWriteItems", json!({"TransactItems": deletes}));

    let one = json!([{"Put": {"TableName": "txn", "Item": {"pk": s("t")}}}]);
    ok(
        &e,
        "TransactWriteItems",
        json!({"TransactItems": one, "ClientRequestToken": "t".repeat(36)}),
    );
    let er = err(
        &e,
        "TransactWriteItems",
        json!({"TransactItems": one, "ClientRequestToken": "t".repeat(37)}),
    );
    assert_eq!(er.code, ErrorCode::Validation);
    assert!(er.message.contains("clientRequestToken"), "{}", er.message);
}

#[test]
fn list_append_does_not_nest_and_removing_from_nothing_is_allowed() {
    let (e, _) = engine();
    create(&e, "upd", false);
    let update = |expr: &str, values: Value| {
        let mut r = json!({"TableName": "upd", "Key": {"pk": s("k")}, "UpdateExpression": expr});
        if !values.is_null() {
            r["ExpressionAttributeValues"] = values;
        }
        r
    };
    let l = |v: &str| json!({"L": [s(v)]});
    ok(
        &e,
        "UpdateItem",
        update(
            "SET a = list_append(if_not_exists(a, :x), :y)",
            json!({":x": l("x"), ":y": l("y")}),
        ),
    );
    let er = err(
        &e,
        "UpdateItem",
        update(
            "SET a = list_append(list_append(:x, :y), :x)",
            json!({":x": l("x"), ":y": l("y")}),
        ),
    );
    assert_eq!(
        er.message,
        "Invalid UpdateExpression: The function is not allowed to be used this way in an expression; function: list_append"
    );
    let item = ok(
        &e,
        "GetItem",
        json!({"TableName": "upd", "Key": {"pk": s("k")}}),
    );
    assert_eq!(item["Item"]["a"], json!({"L": [s("x"), s("y")]}));

    // On a missing item, REMOVE of nested paths removes nothing and creates nothing; on an
    // item without the parent attribute it is refused.
    for expr in ["REMOVE x.y", "REMOVE x[0]", "REMOVE x.y, z"] {
        let r = json!({"TableName": "upd", "Key": {"pk": s("missing")}, "UpdateExpression": expr});
        ok(&e, "UpdateItem", r);
    }
    let none = ok(
        &e,
        "GetItem",
        json!({"TableName": "upd", "Key": {"pk": s("missing")}}),
    );
    assert!(none.get("Item").is_none());
    let er = err(&e, "UpdateItem", update("REMOVE x.y", Value::Null));
    assert!(er.message.contains("document path"), "{}", er.message);
}

#[test]
fn update_table_creates_or_deletes_one_index_from_its_own_definitions() {
    let (e, _) = engine();
    create(&e, "gsi", true);
    let create_ix = |name: &str, attr: &str| json!({"Create": {"IndexName": name, "KeySchema": [{"AttributeName": attr, "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}});
    // `sk` is a table key, yet a new index on it must define it again.
    let er = err(
        &e,
        "UpdateTable",
        json!({"TableName": "gsi", "GlobalSecondaryIndexUpdates": [create_ix("bysk", "sk")]}),
    );
    assert_eq!(er.code, ErrorCode::Validation);
    assert!(
        er.message.contains("AttributeDefinitions"),
        "{}",
        er.message
    );
    let defs = json!([{"AttributeName": "sk", "AttributeType": "N"}, {"AttributeName": "x", "AttributeType": "S"}]);
    for updates in [
        json!([create_ix("ixa", "sk"), create_ix("ixb", "x")]),
        json!([{"Delete": {"IndexName": "ixa"}}, {"Delete": {"IndexName": "ixb"}}]),
        json!([create_ix("ixa", "sk"), {"Delete": {"IndexName": "ixb"}}]),
    ] {
        let er = err(
            &e,
            "UpdateTable",
            json!({"TableName": "gsi", "AttributeDefinitions": defs, "GlobalSecondaryIndexUpdates": updates}),
        );
        assert_eq!(er.code, ErrorCode::LimitExceeded, "{}", er.message);
    }
    ok(
        &e,
        "UpdateTable",
        json!({"TableName": "gsi", "AttributeDefinitions": [{"AttributeName": "sk", "AttributeType": "N"}], "GlobalSecondaryIndexUpdates": [create_ix("bysk", "sk")]}),
    );
}

#[test]
fn attribute_type_takes_a_value_as_well_as_a_path() {
    let (e, _) = engine();
    create(&e, "aty", false);
    let put = |cond: &str, values: Value| {
        e.execute(
            "PutItem",
            &json!({"TableName": "aty", "Item": {"pk": s("k"), "a": {"N": "1"}}, "ConditionExpression": cond, "ExpressionAttributeValues": values}),
        )
        .map(|(_, t)| t.wait().unwrap())
    };
    put(
        "attribute_type(:v, :t)",
        json!({":v": {"N": "0"}, ":t": s("N")}),
    )
    .unwrap();
    let failed = put(
        "attribute_type(:v, :t)",
        json!({":v": {"N": "0"}, ":t": s("S")}),
    )
    .unwrap_err();
    assert_eq!(failed.code, ErrorCode::ConditionalCheckFailed);
    put("attribute_type(a, :t)", json!({":t": s("N")})).unwrap();
    let bad = put(
        "attribute_type(:v, :t)",
        json!({":v": {"N": "0"}, ":t": s("DOG")}),
    )
    .unwrap_err();
    assert_eq!(bad.code, ErrorCode::Validation);
    assert!(bad.message.contains("DOG"), "{}", bad.message);
}

#[test]
fn a_condition_takes_300_operators_however_deeply_nested() {
    let (e, _) = engine();
    create(&e, "ops", false);
    ok(
        &e,
        "PutItem",
        json!({"TableName": "ops", "Item": {"pk": s("k"), "a": {"N": "1"}, "b": {"N": "2"}}}),
    );
    let put = |cond: String| {
        e.execute(
            "PutItem",
            &json!({"TableName": "ops", "Item": {"pk": s("k"), "a": {"N": "1"}, "b": {"N": "2"}}, "ConditionExpression": cond}),
        )
        .map(|(_, t)| t.wait().unwrap())
    };
    // a<b or (a<b or (...)): 150 comparisons and 149 ORs, nested 149 deep.
    let nested = |depth: usize| format!("a<b {}{}", "or (a<b ".repeat(depth), ")".repeat(depth));
    put(nested(149)).unwrap();
    let er = put(nested(454)).unwrap_err();
    assert_eq!(er.code, ErrorCode::Validation);
    assert_eq!(
        er.message,
        "Invalid ConditionExpression: The expression contains too many operators; operator count: 301"
    );
    // Functions and NOT count too (299 NOTs nest 299 deep); parentheses do not, and
    // redundant ones are refused however many.
    let nots = |n: usize| format!("{}attribute_exists(a)", "NOT ".repeat(n));
    put(nots(299)).unwrap_err(); // parsed and evaluated: an odd number of NOTs is false
    assert!(
        put(nots(300))
            .unwrap_err()
            .message
            .contains("operator count: 301")
    );
    for n in [2, 300, 2000] {
        let er = put(format!("{}a<b{}", "(".repeat(n), ")".repeat(n))).unwrap_err();
        assert!(
            er.message.contains("redundant parentheses"),
            "{}",
            er.message
        );
    }
}
