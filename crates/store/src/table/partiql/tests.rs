//! PartiQL statements through [`TableEngine::execute`], against tables made with CreateTable.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::table::ErrorCode;
use crate::table::TableEngine;
use crate::table::tests::{create, engine, err, ok};

fn run(e: &TableEngine, statement: &str, params: Value) -> Value {
    let mut req = json!({ "Statement": statement });
    if !params.as_array().is_some_and(Vec::is_empty) {
        req["Parameters"] = params;
    }
    ok(e, "ExecuteStatement", req)
}

/// The `sk` of each item of an answer, in order.
fn sks(v: &Value) -> Vec<String> {
    v["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["sk"]["N"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// A table `tbl` (pk S, sk N) with pk `a` sk 1..=5 and pk `b` sk 1.
fn seeded() -> TableEngine {
    let (e, _) = engine();
    create(&e, "tbl", true);
    for sk in 1..=5 {
        run(
            &e,
            "INSERT INTO \"tbl\" VALUE {'pk': 'a', 'sk': ?, 'n': ?, 'tags': <<'x'>>, 'm': {'l': [1, 2, 3]}}",
            json!([{"N": sk.to_string()}, {"N": (sk * 10).to_string()}]),
        );
    }
    run(&e, "INSERT INTO tbl VALUE {'pk': 'b', 'sk': 1}", json!([]));
    e
}

#[test]
fn select_fixing_the_partition_key_is_a_query() {
    let e = seeded();
    let v = run(
        &e,
        "SELECT * FROM tbl WHERE pk = 'a' AND sk >= 2 AND n < 50",
        json!([]),
    );
    assert_eq!(sks(&v), ["2", "3", "4"]);
    let v = run(
        &e,
        "SELECT sk FROM tbl WHERE pk = 'a' AND sk BETWEEN 2 AND 4 ORDER BY sk DESC",
        json!([]),
    );
    assert_eq!(sks(&v), ["4", "3", "2"]);
    assert_eq!(v["Items"][0], json!({"sk": {"N": "4"}}));
    // Limit counts items evaluated in the partition: a Scan would start elsewhere.
    let v = ok(
        &e,
        "ExecuteStatement",
        json!({"Statement": "SELECT * FROM tbl WHERE pk = ?", "Parameters": [{"S": "b"}], "Limit": 1,
               "ReturnConsumedCapacity": "TOTAL", "ConsistentRead": true}),
    );
    assert_eq!(v["Items"].as_array().unwrap().len(), 1);
    assert_eq!(v["Items"][0]["pk"], json!({"S": "b"}));
    assert_eq!(
        v["LastEvaluatedKey"],
        json!({"pk": {"S": "b"}, "sk": {"N": "1"}})
    );
    assert!(v["NextToken"].is_string());
    assert_eq!(
        v["ConsumedCapacity"],
        json!({"TableName": "tbl", "CapacityUnits": 1.0})
    );
    let e2 = err(
        &e,
        "ExecuteStatement",
        json!({"Statement": "SELECT * FROM tbl WHERE n = 10 ORDER BY sk"}),
    );
    assert_eq!(
        e2.message,
        "Must have WHERE clause in the statement when using ORDER BY clause."
    );
}

#[test]
fn scans_page_with_next_token_until_done() {
    let e = seeded();
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut req = json!({"Statement": "SELECT pk, sk FROM \"tbl\" WHERE sk > 0", "Limit": 2});
        if let Some(t) = &token {
            req["NextToken"] = json!(t);
        }
        let v = ok(&e, "ExecuteStatement", req);
        pages += 1;
        for i in v["Items"].as_array().unwrap() {
            seen.push(format!(
                "{}{}",
                i["pk"]["S"].as_str().unwrap(),
                i["sk"]["N"].as_str().unwrap()
            ));
        }
        match v.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    seen.sort();
    assert_eq!(seen, ["a1", "a2", "a3", "a4", "a5", "b1"]);
    assert_eq!(
        pages, 4,
        "6 items by 2, and a last empty page after the limit"
    );
    let bad = err(
        &e,
        "ExecuteStatement",
        json!({"Statement": "SELECT * FROM tbl", "NextToken": "not a token"}),
    );
    assert_eq!(bad.message, "Invalid NextToken");
}

#[test]
fn where_clauses_filter_as_partiql_reads_them() {
    let e = seeded();
    run(
        &e,
        "UPDATE tbl SET extra = 'yes' WHERE pk = 'a' AND sk = 3",
        json!([]),
    );
    let q = |w: &str| {
        sks(&run(
            &e,
            &format!("SELECT * FROM tbl WHERE pk = 'a' AND {w}"),
            json!([]),
        ))
    };
    assert_eq!(q("extra IS NOT MISSING"), ["3"]);
    assert_eq!(q("extra IS MISSING AND sk < 3"), ["1", "2"]);
    assert_eq!(
        q("(attribute_exists(extra) OR sk IN [5, 1])"),
        ["1", "3", "5"]
    );
    // AND binds tighter than OR: without parentheses this reads every partition.
    assert_eq!(
        q("attribute_exists(extra) OR sk IN [5, 1]"),
        ["1", "1", "3", "5"]
    );
    assert_eq!(q("NOT (n <> 20)"), ["2"]);
    assert_eq!(q("contains(tags, 'x') AND m.l[2] = 3 AND sk = 4"), ["4"]);
    assert_eq!(q("begins_with(extra, 'ye')"), ["3"]);
    assert_eq!(q("n BETWEEN 15 AND 35"), ["2", "3"]);
    // A nested projection keeps the document's shape.
    let v = run(
        &e,
        "SELECT m.l[1], sk FROM tbl WHERE pk = 'a' AND sk = 1",
        json!([]),
    );
    assert_eq!(
        v["Items"],
        json!([{"m": {"M": {"l": {"L": [{"N": "2"}]}}}, "sk": {"N": "1"}}])
    );
}

#[test]
fn insert_refuses_an_existing_key() {
    let e = seeded();
    let dup = err(
        &e,
        "ExecuteStatement",
        json!({"Statement": "INSERT INTO tbl VALUE {'pk': 'a', 'sk': 1, 'other': 1}"}),
    );
    assert_eq!(dup.code, ErrorCode::DuplicateItem);
    assert_eq!(dup.message, "Duplicate primary key exists in table");
    assert_eq!(
        dup.body()["__type"],
        "com.amazonaws.dynamodb.v20120810#DuplicateItemException"
    );
    let v = run(&e, "SELECT * FROM tbl WHERE pk = 'a' AND sk = 1", json!([]));
    assert!(
        v["Items"][0].get("other").is_none(),
        "the item was overwritten"
    );
    let missing = err(
        &e,
        "ExecuteStatement",
        json!({"Statement": "INSERT INTO tbl VALUE {'pk': 'c'}"}),
    );
    assert_eq!(missing.code, ErrorCode::Validation);
    let nf = err(
        &e,
        "ExecuteStatement",
        json!({"Statement": "INSERT INTO nope VALUE {'pk': 'c'}"}),
    );
    assert_eq!(nf.code, ErrorCode::ResourceNotFound);
}

#[test]
fn update_changes_one_existing_item() {
    let e = seeded();
    let v = run(
        &e,
        "UPDATE tbl SET n = n + 1 SET m.l = list_append(m.l, [4]) SET tags = set_add(tags, <<'y'>>) REMOVE gone WHERE pk = 'a' AND sk = ? RETURNING ALL NEW *",
        json!([{"N": "1"}]),
    );
    assert_eq!(
        v["Items"],
        json!([{"pk": {"S": "a"}, "sk": {"N": "1"}, "n": {"N": "11"}, "tags": {"SS": ["x", "y"]},
                "m": {"M": {"l": {"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}, {"N": "4"}]}}}}])
    );
    let v = run(
        &e,
        "UPDATE tbl SET tags = set_delete(tags, <<'x'>>) WHERE pk = 'a' AND sk = 1 RETURNING MODIFIED OLD *",
        json!([]),
    );
    assert_eq!(v["Items"], json!([{"tags": {"SS": ["x", "y"]}}]));
    // No item, no update: PartiQL's UPDATE does not create one.
    let missing = err(
        &e,
        "ExecuteStatement",
        json!({"Statement": "UPDATE tbl SET n = 1 WHERE pk = 'zz' AND sk = 1"}),
    );
    assert_eq!(missing.code, ErrorCode::ConditionalCheckFailed);
    assert_eq!(
        run(&e, "SELECT * FROM tbl WHERE pk = 'zz'", json!([]))["Items"],
        json!([])
    );
    // Further WHERE conditions are the update's condition.
    let failed = err(
        &e,
        "ExecuteStatement",
        json!({"Statement": "UPDATE tbl SET n = 0 WHERE pk = 'a' AND sk = 2 AND n > 100",
               "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}),
    );
    assert_eq!(failed.code, ErrorCode::ConditionalCheckFailed);
    assert_eq!(failed.body()["Item"]["n"], json!({"N": "20"}));
    let partial = err(
        &e,
        "ExecuteStatement",
        json!({"Statement": "UPDATE tbl SET n = 0 WHERE pk = 'a'"}),
    );
    assert_eq!(
        partial.message,
        "Where clause does not contain a mandatory equality on all key attributes"
    );
    let key = err(
        &e,
        "ExecuteStatement",
        json!({"Statement": "UPDATE tbl SET sk = 9 WHERE pk = 'a' AND sk = 2"}),
    );
    assert!(
        key.message.contains("Cannot update attribute sk"),
        "{}",
        key.message
    );
}

#[test]
fn delete_removes_a_matching_item_and_ignores_a_missing_one() {
    let e = seeded();
    let v = run(
        &e,
        "DELETE FROM tbl WHERE pk = 'a' AND sk = 1 RETURNING ALL OLD *",
        json!([]),
    );
    assert_eq!(v["Items"][0]["n"], json!({"N": "10"}));
    let v = run(&e, "DELETE FROM tbl WHERE pk = 'a' AND sk = 1", json!([]));
    assert_eq!(v, json!({"Items": []}));
    let cond = err(
        &e,
        "ExecuteStatement",
        json!({"Statement": "DELETE FROM tbl WHERE pk = 'a' AND sk = 2 AND n = 99"}),
    );
    assert_eq!(cond.code, ErrorCode::ConditionalCheckFailed);
    assert_eq!(
        sks(&run(&e, "SELECT * FROM tbl WHERE pk = 'a'", json!([]))),
        ["2", "3", "4", "5"]
    );
}

#[test]
fn statement_errors_name_the_problem() {
    let e = seeded();
    let m = |req: Value| err(&e, "ExecuteStatement", req).message;
    assert_eq!(
        m(json!({"Statement": "SELECT * FROM tbl WHERE pk = ?"})),
        "Number of parameters in request and statement don't match."
    );
    assert_eq!(
        m(json!({"Statement": "DROP TABLE t"})),
        "Statement wasn't well formed, can't be processed: Expected data manipulation"
    );
    assert_eq!(
        m(json!({"Statement": ""})),
        "1 validation error detected: Value '' at 'statement' failed to satisfy constraint: Member must have length greater than or equal to 1"
    );
    assert_eq!(
        m(json!({"Statement": "SELECT * FROM tbl", "Limit": 0})),
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
    );
    assert_eq!(
        m(json!({"Statement": "SELECT * FROM tbl", "Parameters": []})),
        "1 validation error detected: Value '[]' at 'parameters' failed to satisfy constraint: Member must have length greater than or equal to 1"
    );
    assert_eq!(
        err(
            &e,
            "BatchExecuteStatement",
            json!({"Statements": [{"Statement": "SELECT * FROM tbl", "Parameters": []}, {}]})
        )
        .message,
        "2 validation errors detected: Value '[]' at 'statements.1.member.parameters' failed to satisfy constraint: Member must have length greater than or equal to 1; Value null at 'statements.2.member.statement' failed to satisfy constraint: Member must not be null"
    );
    assert_eq!(
        m(json!({"Statement": "EXISTS(SELECT * FROM tbl WHERE pk = 'a' AND sk = 1)"})),
        "The EXISTS function can only be used in transactions (ExecuteTransaction)"
    );
    let nf = err(
        &e,
        "ExecuteStatement",
        json!({"Statement": "SELECT * FROM nope"}),
    );
    assert_eq!(nf.code, ErrorCode::ResourceNotFound);
}

#[test]
fn batches_answer_each_statement() {
    let e = seeded();
    let v = ok(
        &e,
        "BatchExecuteStatement",
        json!({"Statements": [
            {"Statement": "SELECT n FROM tbl WHERE pk = 'a' AND sk = 2"},
            {"Statement": "SELECT * FROM tbl WHERE pk = 'a' AND sk = 99"},
            {"Statement": "SELECT * FROM tbl WHERE pk = 'a'"},
            {"Statement": "SELECT * FROM tbl WHERE pk = ? AND sk = 1", "Parameters": [{"S": "b"}]}
        ], "ReturnConsumedCapacity": "TOTAL"}),
    );
    let r = &v["Responses"];
    assert_eq!(
        r[0],
        json!({"TableName": "tbl", "Item": {"n": {"N": "20"}}})
    );
    assert_eq!(r[1], json!({"TableName": "tbl"}));
    assert_eq!(r[2]["Error"]["Code"], "ValidationError");
    assert_eq!(
        r[2]["Error"]["Message"],
        "Select statements within BatchExecuteStatement must specify the primary key in the where clause."
    );
    assert_eq!(r[3]["Item"]["pk"], json!({"S": "b"}));
    assert_eq!(v["ConsumedCapacity"][0]["TableName"], "tbl");

    let v = ok(
        &e,
        "BatchExecuteStatement",
        json!({"Statements": [
            {"Statement": "INSERT INTO tbl VALUE {'pk': 'c', 'sk': 1}"},
            {"Statement": "INSERT INTO tbl VALUE {'pk': 'a', 'sk': 1}"},
            {"Statement": "UPDATE tbl SET n = 0 WHERE pk = 'a' AND sk = 2 AND n = 5"},
            {"Statement": "DELETE FROM tbl WHERE pk = 'b' AND sk = 1"},
            {"Statement": "UPDATE nope SET n = 0 WHERE pk = 'a' AND sk = 2"}
        ]}),
    );
    let r = &v["Responses"];
    assert_eq!(r[0], json!({"TableName": "tbl"}));
    assert_eq!(r[1]["Error"]["Code"], "DuplicateItem");
    assert_eq!(r[2]["Error"]["Code"], "ConditionalCheckFailed");
    assert_eq!(r[3], json!({"TableName": "tbl"}));
    assert_eq!(r[4]["Error"]["Code"], "ResourceNotFound");
    assert_eq!(
        run(&e, "SELECT * FROM tbl WHERE pk = 'c'", json!([]))["Items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        run(&e, "SELECT * FROM tbl WHERE pk = 'b'", json!([]))["Items"],
        json!([])
    );

    let mixed = err(
        &e,
        "BatchExecuteStatement",
        json!({"Statements": [
            {"Statement": "SELECT * FROM tbl WHERE pk = 'a' AND sk = 2"},
            {"Statement": "DELETE FROM tbl WHERE pk = 'a' AND sk = 3"}
        ]}),
    );
    assert_eq!(
        mixed.message,
        "Read and write requests together in the same batch is not supported."
    );
    let many: Vec<Value> = (0..26)
        .map(|i| json!({"Statement": format!("SELECT * FROM tbl WHERE pk = 'x{i}' AND sk = 1")}))
        .collect();
    let too_many = err(&e, "BatchExecuteStatement", json!({ "Statements": many }));
    assert!(
        too_many
            .message
            .contains("Member must have length less than or equal to 25"),
        "{}",
        too_many.message
    );
}

#[test]
fn transactions_are_all_or_nothing() {
    let e = seeded();
    let cancelled = err(
        &e,
        "ExecuteTransaction",
        json!({"TransactStatements": [
            {"Statement": "UPDATE tbl SET n = 0 WHERE pk = 'a' AND sk = 2"},
            {"Statement": "INSERT INTO tbl VALUE {'pk': 'a', 'sk': 3}"},
            {"Statement": "DELETE FROM tbl WHERE pk = 'a' AND sk = 4 AND n = 1",
             "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        ]}),
    );
    assert_eq!(cancelled.code, ErrorCode::TransactionCanceled);
    let reasons = &cancelled.body()["CancellationReasons"];
    assert_eq!(reasons[0], json!({"Code": "None"}));
    assert_eq!(reasons[1]["Code"], "DuplicateItem");
    assert_eq!(reasons[2]["Code"], "ConditionalCheckFailed");
    assert_eq!(reasons[2]["Item"]["n"], json!({"N": "40"}));
    assert!(
        cancelled
            .message
            .ends_with("[None, DuplicateItem, ConditionalCheckFailed]")
    );
    let v = run(&e, "SELECT n FROM tbl WHERE pk = 'a' AND sk = 2", json!([]));
    assert_eq!(
        v["Items"][0]["n"],
        json!({"N": "20"}),
        "the first update was kept"
    );

    ok(
        &e,
        "ExecuteTransaction",
        json!({"TransactStatements": [
            {"Statement": "UPDATE tbl SET n = 0 WHERE pk = 'a' AND sk = 2"},
            {"Statement": "INSERT INTO tbl VALUE {'pk': 'd', 'sk': 1}"}
        ], "ClientRequestToken": "token-1"}),
    );
    let v = ok(
        &e,
        "ExecuteTransaction",
        json!({"TransactStatements": [
            {"Statement": "SELECT n FROM tbl WHERE pk = 'a' AND sk = 2"},
            {"Statement": "SELECT * FROM tbl WHERE pk = 'd' AND sk = 1"},
            {"Statement": "SELECT * FROM tbl WHERE pk = 'nope' AND sk = 1"}
        ]}),
    );
    assert_eq!(
        v,
        json!({"Responses": [
            {"Item": {"n": {"N": "0"}}},
            {"Item": {"pk": {"S": "d"}, "sk": {"N": "1"}}},
            {}
        ]})
    );
    // EXISTS is a condition check: the item must be there and match.
    let checked = err(
        &e,
        "ExecuteTransaction",
        json!({"TransactStatements": [
            {"Statement": "EXISTS(SELECT * FROM tbl WHERE pk = 'a' AND sk = 2 AND n = 0)"},
            {"Statement": "EXISTS(SELECT * FROM tbl WHERE pk = 'zz' AND sk = 1)"},
            {"Statement": "UPDATE tbl SET n = 5 WHERE pk = 'a' AND sk = 3"}
        ]}),
    );
    let body = checked.body();
    let codes: Vec<&str> = body["CancellationReasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["None", "ConditionalCheckFailed", "None"]);
    ok(
        &e,
        "ExecuteTransaction",
        json!({"TransactStatements": [
            {"Statement": "EXISTS(SELECT * FROM tbl WHERE pk = 'a' AND sk = 2 AND n = 0)"},
            {"Statement": "UPDATE tbl SET n = 5 WHERE pk = 'a' AND sk = 3"}
        ]}),
    );
    assert_eq!(
        run(&e, "SELECT n FROM tbl WHERE pk = 'a' AND sk = 3", json!([]))["Items"],
        json!([{"n": {"N": "5"}}])
    );
    let m = |req: Value| err(&e, "ExecuteTransaction", req).message;
    assert_eq!(
        m(json!({"TransactStatements": [
            {"Statement": "SELECT * FROM tbl WHERE pk = 'a' AND sk = 2"},
            {"Statement": "DELETE FROM tbl WHERE pk = 'a' AND sk = 3"}
        ]})),
        "ExecuteTransaction API does not support both read and write operations in the same request."
    );
    assert_eq!(
        m(json!({"TransactStatements": [
            {"Statement": "DELETE FROM tbl WHERE pk = 'a' AND sk = 3 RETURNING ALL OLD *"}
        ]})),
        "Validation failed in TransactStatements[0]: RETURNING clause is not supported in ExecuteTransaction."
    );
    assert_eq!(
        m(json!({"TransactStatements": [
            {"Statement": "DELETE FROM tbl WHERE pk = 'a' AND sk = 3"},
            {"Statement": "UPDATE tbl SET n = 1 WHERE pk = 'a' AND sk = 3"}
        ]})),
        "Transaction request cannot include multiple operations on one item"
    );
}

#[test]
fn index_reads_query_the_index() {
    let (e, _) = engine();
    ok(
        &e,
        "CreateTable",
        json!({
            "TableName": "gtab",
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "team", "AttributeType": "S"}
            ],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [{
                "IndexName": "by-team",
                "KeySchema": [{"AttributeName": "team", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"}
            }],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
    for (pk, team) in [("p1", "red"), ("p2", "blue"), ("p3", "red")] {
        run(
            &e,
            "INSERT INTO gtab VALUE {'pk': ?, 'team': ?}",
            json!([{"S": pk}, {"S": team}]),
        );
    }
    let v = run(
        &e,
        "SELECT pk FROM \"gtab\".\"by-team\" WHERE team = 'red'",
        json!([]),
    );
    let mut pks: Vec<&str> = v["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["pk"]["S"].as_str().unwrap())
        .collect();
    pks.sort();
    assert_eq!(pks, ["p1", "p3"]);
    let consistent = err(
        &e,
        "ExecuteStatement",
        json!({"Statement": "SELECT * FROM gtab.\"by-team\" WHERE team = 'red'", "ConsistentRead": true}),
    );
    assert_eq!(consistent.code, ErrorCode::Validation);
}

#[test]
fn describe_limits_answers_aws_default_quotas() {
    let (e, _) = engine();
    assert_eq!(
        ok(&e, "DescribeLimits", json!({})),
        json!({
            "AccountMaxReadCapacityUnits": 80000,
            "AccountMaxWriteCapacityUnits": 80000,
            "TableMaxReadCapacityUnits": 40000,
            "TableMaxWriteCapacityUnits": 40000
        })
    );
}

/// Every page of a SELECT, following NextToken; the items in the order they came.
fn all_pages(e: &TableEngine, statement: &str, params: Value, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100 {
        let mut req = json!({"Statement": statement, "Parameters": params, "Limit": limit});
        if let Some(t) = &token {
            req["NextToken"] = json!(t);
        }
        let v = ok(e, "ExecuteStatement", req);
        out.extend(v["Items"].as_array().unwrap().iter().cloned());
        match v.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => return out,
        }
    }
    panic!("paging did not end");
}

/// Statement fragments besides the keywords, for inputs that get past the lexer.
const FRAGMENTS: &[&str] = &[
    "ALL",
    "NEW",
    "*",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "<<",
    ">>",
    ",",
    ".",
    ":",
    "=",
    "<>",
    "<",
    ">=",
    "+",
    "-",
    "?",
    "'s'",
    "1",
    "2.5e3",
    "\"t\"",
    "tbl",
    "a",
    "b",
    "size",
    "contains",
    "begins_with",
    "list_append",
    "set_add",
];

fn fragments() -> Vec<&'static str> {
    super::parse::KEYWORDS
        .iter()
        .chain(FRAGMENTS)
        .copied()
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever the text, parsing answers with a statement or an error, never a panic.
    #[test]
    fn parsing_never_panics(
        text in "\\PC{0,40}",
        parts in prop::collection::vec(prop::sample::select(fragments()), 0..16),
    ) {
        let params = vec![crate::table::value::AttrValue::Null; 2];
        let _ = super::parse::parse(&text, &params);
        let _ = super::parse::parse(&parts.join(" "), &params);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// SELECTs against a reference: a Query (partition key fixed) returns exactly the
    /// matching items in sort-key order, and a Scan exactly the matching set, whatever the
    /// Limit that pages them.
    #[test]
    fn selects_agree_with_a_reference_filter(
        rows in prop::collection::vec((0..3u8, 0..6i64, prop::option::of(0..4i64)), 0..24),
        pk in 0..3u8,
        bounds in (0..6i64, 0..6i64),
        n in 0..4i64,
        limit in 1..5usize,
    ) {
        let (e, _) = engine();
        create(&e, "tbl", true);
        let mut model: BTreeMap<(u8, i64), Option<i64>> = BTreeMap::new();
        for (p, sk, v) in rows {
            let mut item = json!({"pk": {"S": format!("p{p}")}, "sk": {"N": sk.to_string()}});
            if let Some(v) = v {
                item["n"] = json!({"N": v.to_string()});
            }
            let res = e.execute(
                "ExecuteStatement",
                &json!({"Statement": "INSERT INTO tbl VALUE ?", "Parameters": [{"M": item}]}),
            );
            match res {
                Ok((_, t)) => {
                    t.wait().unwrap();
                    prop_assert!(model.insert((p, sk), v).is_none());
                }
                Err(err) => prop_assert_eq!(err.code, ErrorCode::DuplicateItem),
            }
        }
        let (lo, hi) = (bounds.0.min(bounds.1), bounds.0.max(bounds.1));
        let got = all_pages(
            &e,
            "SELECT sk FROM tbl WHERE pk = ? AND sk BETWEEN ? AND ? AND (n IS MISSING OR n <> ?)",
            json!([{"S": format!("p{pk}")}, {"N": lo.to_string()}, {"N": hi.to_string()}, {"N": n.to_string()}]),
            limit,
        );
        let got: Vec<i64> = got.iter().map(|i| i["sk"]["N"].as_str().unwrap().parse().unwrap()).collect();
        let want: Vec<i64> = model
            .iter()
            .filter(|((p, sk), v)| *p == pk && (lo..=hi).contains(sk) && **v != Some(n))
            .map(|((_, sk), _)| *sk)
            .collect();
        prop_assert_eq!(got, want);

        let got = all_pages(&e, "SELECT pk, sk FROM tbl WHERE sk >= ? OR n = ?", json!([{"N": hi.to_string()}, {"N": n.to_string()}]), limit);
        let mut got: Vec<(u8, i64)> = got
            .iter()
            .map(|i| {
                let p = i["pk"]["S"].as_str().unwrap()[1..].parse().unwrap();
                (p, i["sk"]["N"].as_str().unwrap().parse().unwrap())
            })
            .collect();
        got.sort();
        let want: Vec<(u8, i64)> = model
            .iter()
            .filter(|((_, sk), v)| *sk >= hi || **v == Some(n))
            .map(|(k, _)| *k)
            .collect();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn a_write_statement_answers_no_items_unless_it_returns_an_image() {
    let e = seeded();
    assert_eq!(
        run(&e, "INSERT INTO tbl VALUE {'pk': 'c', 'sk': 1}", json!([])),
        json!({"Items": []})
    );
    assert_eq!(
        run(
            &e,
            "UPDATE tbl SET n = 7 WHERE pk = 'c' AND sk = 1",
            json!([])
        ),
        json!({"Items": []})
    );
    let v = run(
        &e,
        "UPDATE tbl SET n = 8 WHERE pk = 'c' AND sk = 1 RETURNING ALL NEW *",
        json!([]),
    );
    assert_eq!(v["Items"][0]["n"], json!({"N": "8"}));
    assert_eq!(
        run(&e, "DELETE FROM tbl WHERE pk = 'c' AND sk = 1", json!([])),
        json!({"Items": []})
    );
}

#[test]
fn a_select_from_an_unknown_index_or_table_is_refused_in_dynamodbs_words() {
    let e = seeded();
    let er = err(
        &e,
        "ExecuteStatement",
        json!({"Statement": "SELECT * FROM tbl.nope"}),
    );
    assert_eq!(er.code, ErrorCode::Validation);
    assert_eq!(er.message, "The table does not have the specified index");
    let er = err(
        &e,
        "ExecuteStatement",
        json!({"Statement": "SELECT * FROM whatnow.nope"}),
    );
    assert_eq!(er.code, ErrorCode::ResourceNotFound);
}
