//! Global secondary indexes with multi-attribute keys (DynamoDB, November 2025): up to four
//! partition and four sort key attributes, queried with equality on every partition key
//! attribute and left to right on the sort key attributes.

use serde_json::{Value, json};

use super::tests::{engine, err, ok};
use super::*;

/// Table `tab` (key `p`) with index `idx`: partition key (h1 S, h2 N), sort key (r1 S, r2 N).
fn table(e: &TableEngine) {
    ok(
        e,
        "CreateTable",
        json!({
            "TableName": "tab",
            "AttributeDefinitions": [
                {"AttributeName": "p", "AttributeType": "S"},
                {"AttributeName": "h1", "AttributeType": "S"}, {"AttributeName": "h2", "AttributeType": "N"},
                {"AttributeName": "r1", "AttributeType": "S"}, {"AttributeName": "r2", "AttributeType": "N"}],
            "KeySchema": [{"AttributeName": "p", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [{"IndexName": "idx", "KeySchema": [
                {"AttributeName": "h1", "KeyType": "HASH"}, {"AttributeName": "h2", "KeyType": "HASH"},
                {"AttributeName": "r1", "KeyType": "RANGE"}, {"AttributeName": "r2", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"}}],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
}

fn put(e: &TableEngine, p: &str, h1: &str, r1: Option<&str>, r2: Option<i64>) {
    let mut item = json!({"p": {"S": p}, "h1": {"S": h1}, "h2": {"N": "7"}});
    if let Some(r1) = r1 {
        item["r1"] = json!({"S": r1});
    }
    if let Some(r2) = r2 {
        item["r2"] = json!({"N": r2.to_string()});
    }
    ok(e, "PutItem", json!({"TableName": "tab", "Item": item}));
}

/// Items: a/A/1, b/A/3, c/A/2, d/B/1, e/AB/5 under (x, 7); f under (y, 7); g and h sparse.
fn filled() -> TableEngine {
    let (e, _) = engine();
    table(&e);
    for (p, r1, r2) in [
        ("a", "A", 1),
        ("b", "A", 3),
        ("c", "A", 2),
        ("d", "B", 1),
        ("e", "AB", 5),
    ] {
        put(&e, p, "x", Some(r1), Some(r2));
    }
    put(&e, "f", "y", Some("A"), Some(1));
    put(&e, "g", "x", Some("A"), None);
    put(&e, "h", "x", None, Some(1));
    e
}

fn query(e: &TableEngine, cond: &str, values: Value, extra: Value) -> Value {
    let mut req = json!({
        "TableName": "tab", "IndexName": "idx", "KeyConditionExpression": cond,
        "ExpressionAttributeValues": values,
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        req[k] = v.clone();
    }
    ok(e, "Query", req)
}

fn keys(r: &Value) -> Vec<String> {
    r["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["p"]["S"].as_str().unwrap().to_string())
        .collect()
}

fn vals(r1: &str, extra: Value) -> Value {
    let mut v = json!({":h1": {"S": "x"}, ":h2": {"N": "7"}, ":r1": {"S": r1}});
    for (k, x) in extra.as_object().into_iter().flatten() {
        v[k] = x.clone();
    }
    v
}

#[test]
fn the_key_schema_is_described_as_created_and_survives_serialisation() {
    let (e, _) = engine();
    table(&e);
    let d = ok(&e, "DescribeTable", json!({"TableName": "tab"}));
    assert_eq!(
        d["Table"]["GlobalSecondaryIndexes"][0]["KeySchema"],
        json!([{"AttributeName": "h1", "KeyType": "HASH"}, {"AttributeName": "h2", "KeyType": "HASH"},
               {"AttributeName": "r1", "KeyType": "RANGE"}, {"AttributeName": "r2", "KeyType": "RANGE"}])
    );
    let g = e.state.read();
    let ix = g.get("tab").unwrap().meta.index("idx").unwrap().clone();
    let text = serde_json::to_string(&ix).unwrap();
    assert_eq!(serde_json::from_str::<meta::IndexMeta>(&text).unwrap(), ix);
    // A definition stored before multi-attribute keys reads as a single-attribute key.
    let old: meta::IndexMeta = serde_json::from_str(
        r#"{"name":"o","hash":{"name":"a","ty":"S"},"range":null,"projection":"ALL","non_key":[],"rcu":0,"wcu":0,"global":true}"#,
    )
    .unwrap();
    assert!(!old.is_composite() && old.key_specs().count() == 1);
}

#[test]
fn key_schemas_are_checked_as_dynamodb_checks_them() {
    let (e, _) = engine();
    let defs: Vec<Value> = ["p", "a", "b", "c", "d", "e", "f", "g", "h", "i"]
        .iter()
        .map(|n| json!({"AttributeName": n, "AttributeType": "S"}))
        .collect();
    let create = |gsi_keys: Vec<(&str, &str)>| {
        let ks: Vec<Value> = gsi_keys
            .iter()
            .map(|(n, t)| json!({"AttributeName": n, "KeyType": t}))
            .collect();
        let used: Vec<&Value> = defs
            .iter()
            .filter(|d| {
                let n = d["AttributeName"].as_str().unwrap();
                n == "p" || gsi_keys.iter().any(|(k, _)| *k == n)
            })
            .collect();
        err(
            &e,
            "CreateTable",
            json!({"TableName": "bad", "AttributeDefinitions": used,
                   "KeySchema": [{"AttributeName": "p", "KeyType": "HASH"}],
                   "GlobalSecondaryIndexes": [{"IndexName": "gsi", "KeySchema": ks, "Projection": {"ProjectionType": "ALL"}}],
                   "BillingMode": "PAY_PER_REQUEST"}),
        )
        .message
    };
    let five_hash = create(vec![
        ("a", "HASH"),
        ("b", "HASH"),
        ("c", "HASH"),
        ("d", "HASH"),
        ("e", "HASH"),
    ]);
    assert!(five_hash.contains("5 HASH key attributes"), "{five_hash}");
    let five_range = create(vec![
        ("a", "HASH"),
        ("b", "RANGE"),
        ("c", "RANGE"),
        ("d", "RANGE"),
        ("e", "RANGE"),
        ("f", "RANGE"),
    ]);
    assert!(
        five_range.contains("5 RANGE key attributes"),
        "{five_range}"
    );
    let interleaved = create(vec![("a", "HASH"), ("b", "RANGE"), ("c", "HASH")]);
    assert!(
        interleaved.contains("every HASH key element must precede the RANGE key elements"),
        "{interleaved}"
    );
    let twice = create(vec![("a", "HASH"), ("b", "HASH"), ("a", "RANGE")]);
    assert!(twice.contains("have the same name: a"), "{twice}");
    // Two elements keep DynamoDB's earlier answers.
    assert_eq!(
        create(vec![("a", "HASH"), ("a", "HASH")]),
        "Both the Hash Key and the Range Key element in the KeySchema have the same name"
    );
    assert_eq!(
        create(vec![("a", "RANGE"), ("b", "HASH")]),
        "Invalid KeySchema: The first KeySchemaElement is not a HASH key type"
    );
    // A table's own key and a local index's stay at one HASH and one RANGE attribute.
    let m = err(
        &e,
        "CreateTable",
        json!({"TableName": "bad", "AttributeDefinitions": &defs[..3],
               "KeySchema": [{"AttributeName": "p", "KeyType": "HASH"}, {"AttributeName": "a", "KeyType": "HASH"}, {"AttributeName": "b", "KeyType": "RANGE"}],
               "BillingMode": "PAY_PER_REQUEST"}),
    )
    .message;
    assert!(
        m.contains("Member must have length less than or equal to 2"),
        "{m}"
    );
}

#[test]
fn queries_take_every_hash_attribute_and_sort_attributes_left_to_right() {
    let e = filled();
    let none = json!({});
    // The partition alone, ordered by (r1, r2); items missing a key attribute are not in it.
    let r = query(
        &e,
        "h1 = :h1 AND h2 = :h2",
        json!({":h1": {"S": "x"}, ":h2": {"N": "7"}}),
        none.clone(),
    );
    assert_eq!(keys(&r), ["a", "c", "b", "e", "d"]);
    let r = query(
        &e,
        "h2 = :h2 AND h1 = :h1",
        json!({":h1": {"S": "x"}, ":h2": {"N": "7"}}),
        json!({"ScanIndexForward": false}),
    );
    assert_eq!(keys(&r), ["d", "e", "b", "c", "a"]);
    // Equality on the first sort attribute, then each comparison on the second.
    let r = query(
        &e,
        "h1 = :h1 AND h2 = :h2 AND r1 = :r1",
        vals("A", json!({})),
        none.clone(),
    );
    assert_eq!(keys(&r), ["a", "c", "b"]);
    for (cond, expect) in [
        ("r2 > :n", vec!["c", "b"]),
        ("r2 >= :n", vec!["a", "c", "b"]),
        ("r2 < :n", vec![]),
        ("r2 <= :n", vec!["a"]),
        ("r2 = :n", vec!["a"]),
        ("r2 BETWEEN :n AND :m", vec!["a", "c"]),
    ] {
        let r = query(
            &e,
            &format!("h1 = :h1 AND h2 = :h2 AND r1 = :r1 AND {cond}"),
            if cond.contains(":m") {
                vals("A", json!({":n": {"N": "1"}, ":m": {"N": "2"}}))
            } else {
                vals("A", json!({":n": {"N": "1"}}))
            },
            none.clone(),
        );
        assert_eq!(keys(&r), expect, "{cond}");
    }
    // A condition on the first sort attribute alone.
    let r = query(
        &e,
        "h1 = :h1 AND h2 = :h2 AND begins_with(r1, :r1)",
        vals("A", json!({})),
        json!({"ScanIndexForward": false}),
    );
    assert_eq!(keys(&r), ["e", "b", "c", "a"]);
    let r = query(
        &e,
        "h1 = :h1 AND h2 = :h2 AND r1 > :r1",
        vals("A", json!({})),
        none.clone(),
    );
    assert_eq!(keys(&r), ["e", "d"]);
    // All four attributes with equality: one item.
    let r = query(
        &e,
        "h1 = :h1 AND h2 = :h2 AND r1 = :r1 AND r2 = :n",
        vals("A", json!({":n": {"N": "3"}})),
        none.clone(),
    );
    assert_eq!(keys(&r), ["b"]);
    // The legacy KeyConditions take the same rules.
    let r = ok(
        &e,
        "Query",
        json!({"TableName": "tab", "IndexName": "idx", "KeyConditions": {
            "h1": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "x"}]},
            "h2": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "7"}]},
            "r1": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "A"}]},
            "r2": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "1"}]}}}),
    );
    assert_eq!(keys(&r), ["c", "b"]);
}

#[test]
fn key_conditions_that_break_the_rules_are_refused() {
    let e = filled();
    let bad = |cond: &str, values: Value| {
        err(
            &e,
            "Query",
            json!({"TableName": "tab", "IndexName": "idx", "KeyConditionExpression": cond,
                   "ExpressionAttributeValues": values}),
        )
        .message
    };
    let m = bad("h1 = :h1", json!({":h1": {"S": "x"}}));
    assert!(
        m.contains("missed key schema element: h2")
            && m.contains("HASH key attribute")
            && m.contains("equality"),
        "{m}"
    );
    let m = bad(
        "h1 = :h1 AND h2 > :h2",
        json!({":h1": {"S": "x"}, ":h2": {"N": "7"}}),
    );
    assert!(
        m.contains("HASH key attribute h2 must have an equality condition"),
        "{m}"
    );
    let m = bad(
        "h1 = :h1 AND h2 = :h2 AND r2 > :n",
        vals("A", json!({":n": {"N": "1"}}))
            .as_object()
            .map(|o| {
                let mut o = o.clone();
                o.remove(":r1");
                Value::Object(o)
            })
            .unwrap(),
    );
    assert_eq!(
        m,
        "RANGE key attributes r1 must have equality conditions specified in the query because a condition is present on key attribute r2"
    );
    let m = bad(
        "h1 = :h1 AND h2 = :h2 AND r1 > :r1 AND r2 = :n",
        vals("A", json!({":n": {"N": "1"}})),
    );
    assert!(
        m.starts_with("RANGE key attributes r1 must have equality conditions"),
        "{m}"
    );
    let m = bad(
        "h1 = :h1 AND h2 = :h2 AND r1 = :r1 AND r2 = :n",
        vals("A", json!({":n": {"S": "1"}})),
    );
    assert!(
        m.contains("Condition parameter type does not match schema type"),
        "{m}"
    );
    let m = err(
        &e,
        "Query",
        json!({"TableName": "tab", "IndexName": "idx", "KeyConditionExpression": "h1 = :h1 AND h2 = :h2",
               "FilterExpression": "#k = :v", "ExpressionAttributeNames": {"#k": "r2"},
               "ExpressionAttributeValues": {":h1": {"S": "x"}, ":h2": {"N": "7"}, ":v": {"N": "1"}}}),
    )
    .message;
    assert_eq!(
        m,
        "Filter Expression can only contain non-primary key attributes: Primary key attribute: r2"
    );
}

#[test]
fn writes_check_every_key_attribute_and_pages_restart_where_they_ended() {
    let e = filled();
    let m = err(
        &e,
        "PutItem",
        json!({"TableName": "tab", "Item": {"p": {"S": "z"}, "h1": {"S": "x"}, "h2": {"S": "7"}}}),
    )
    .message;
    assert!(m.contains("Type mismatch for Index Key h2"), "{m}");
    let m = err(
        &e,
        "PutItem",
        json!({"TableName": "tab", "Item": {"p": {"S": "z"}, "h1": {"S": "x"}, "h2": {"N": "7"}, "r1": {"S": ""}}}),
    )
    .message;
    assert!(m.contains("empty string value"), "{m}");
    // Updating a sort attribute moves the entry; removing one takes it out.
    ok(
        &e,
        "UpdateItem",
        json!({"TableName": "tab", "Key": {"p": {"S": "d"}}, "UpdateExpression": "SET r1 = :a",
               "ExpressionAttributeValues": {":a": {"S": "A"}}}),
    );
    ok(
        &e,
        "UpdateItem",
        json!({"TableName": "tab", "Key": {"p": {"S": "c"}}, "UpdateExpression": "REMOVE r2"}),
    );
    let all = json!({":h1": {"S": "x"}, ":h2": {"N": "7"}});
    let mut seen = Vec::new();
    let mut start: Option<Value> = None;
    loop {
        let mut extra = json!({"Limit": 1});
        if let Some(s) = &start {
            extra["ExclusiveStartKey"] = s.clone();
        }
        let r = query(&e, "h1 = :h1 AND h2 = :h2", all.clone(), extra);
        seen.extend(keys(&r));
        match r.get("LastEvaluatedKey") {
            Some(k) => {
                let names: Vec<&String> = k.as_object().unwrap().keys().collect();
                assert_eq!(names, ["h1", "h2", "p", "r1", "r2"]);
                start = Some(k.clone());
            }
            None => break,
        }
    }
    // a and d tie on (A, 1): DynamoDB's order among them is by their table keys' hash.
    assert_eq!(&seen[2..], ["b", "e"]);
    seen.sort();
    assert_eq!(seen, ["a", "b", "d", "e"]);
    // A start key from another partition, or outside the sort condition, is refused.
    let mut other = start_key("a");
    other["h1"] = json!({"S": "y"});
    let m = err(
        &e,
        "Query",
        json!({"TableName": "tab", "IndexName": "idx", "KeyConditionExpression": "h1 = :h1 AND h2 = :h2",
               "ExpressionAttributeValues": all, "ExclusiveStartKey": other}),
    )
    .message;
    assert!(m.contains("outside query boundaries"), "{m}");
    let m = err(
        &e,
        "Query",
        json!({"TableName": "tab", "IndexName": "idx", "KeyConditionExpression": "h1 = :h1 AND h2 = :h2 AND r1 = :r1",
               "ExpressionAttributeValues": vals("B", json!({})), "ExclusiveStartKey": start_key("a")}),
    )
    .message;
    assert!(m.contains("does not match the range key predicate"), "{m}");
    // A scan of the index pages through its entries, each once.
    let mut scanned = Vec::new();
    let mut start: Option<Value> = None;
    loop {
        let mut req = json!({"TableName": "tab", "IndexName": "idx", "Limit": 2});
        if let Some(s) = &start {
            req["ExclusiveStartKey"] = s.clone();
        }
        let r = ok(&e, "Scan", req);
        scanned.extend(keys(&r));
        match r.get("LastEvaluatedKey") {
            Some(k) => start = Some(k.clone()),
            None => break,
        }
    }
    scanned.sort();
    assert_eq!(scanned, ["a", "b", "d", "e", "f"]);
}

fn start_key(p: &str) -> Value {
    json!({"p": {"S": p}, "h1": {"S": "x"}, "h2": {"N": "7"}, "r1": {"S": "A"}, "r2": {"N": "1"}})
}

#[test]
fn a_partiql_select_on_the_index_reads_it_through_its_where_clause() {
    let e = filled();
    let r = ok(
        &e,
        "ExecuteStatement",
        json!({"Statement": "SELECT p FROM \"tab\".\"idx\" WHERE h1 = ? AND h2 = ? AND r1 = ?",
               "Parameters": [{"S": "x"}, {"N": "7"}, {"S": "A"}]}),
    );
    let mut got = keys(&r);
    got.sort();
    assert_eq!(got, ["a", "b", "c"]);
}
