//! The plain reading ([`super::typed`]) against the `Value` reading: for every variant of a
//! valid PutItem and GetItem body (each attribute value at any depth replaced by each JSON
//! type and by values DynamoDB refuses, members added, removed and duplicated, escapes), a
//! body the plain reading takes gets the same answer, or the same error, and leaves the
//! same table as the `Value` reading.

use serde_json::{Value, json};

use super::tests::{engine, ok};
use super::{DdbError, TableEngine};

fn table(e: &TableEngine) {
    ok(
        e,
        "CreateTable",
        json!({
            "TableName": "plain",
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "N"}
            ],
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"}
            ],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
}

/// What a request did: its answer's text, or its error's code and message.
fn outcome(r: Result<(super::Answer, crate::journal::Ticket), DdbError>) -> String {
    match r {
        Ok((a, t)) => {
            t.wait().unwrap();
            format!("ok {}", a.into_text())
        }
        Err(e) => format!("err {:?} {}", e.code, e.message),
    }
}

fn everything(e: &TableEngine) -> Value {
    ok(e, "Scan", json!({"TableName": "plain"}))
}

/// Every JSON value a member could be replaced with, and attribute values DynamoDB refuses.
fn replacements() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(false),
        json!(1),
        json!(1.5),
        json!("s"),
        json!([]),
        json!([{"S": "x"}]),
        json!({}),
        json!({"S": "x"}),
        json!({"S": ""}),
        json!({"N": "12.50"}),
        json!({"N": "-0"}),
        json!({"N": ""}),
        json!({"N": "abc"}),
        json!({"N": "1e200"}),
        json!({"N": " 1"}),
        json!({"N": 1}),
        json!({"B": "YWJj"}),
        json!({"B": "not base64!"}),
        json!({"B": ""}),
        json!({"BOOL": false}),
        json!({"BOOL": "true"}),
        json!({"BOOL": "maybe"}),
        json!({"NULL": true}),
        json!({"NULL": false}),
        json!({"NULL": "yes"}),
        json!({"M": {}}),
        json!({"M": {"a": {"S": "x"}}}),
        json!({"M": {"a": {"Q": "x"}}}),
        json!({"L": []}),
        json!({"L": [{"N": "1"}, {"S": "x"}]}),
        json!({"L": [1]}),
        json!({"SS": ["a", "b"]}),
        json!({"SS": []}),
        json!({"SS": ["a", "a"]}),
        json!({"SS": ["a", 1]}),
        json!({"NS": ["1", "2"]}),
        json!({"NS": ["1", "1.0"]}),
        json!({"NS": ["1", "x"]}),
        json!({"BS": ["YQ==", "Yg=="]}),
        json!({"BS": ["YQ==", "YQ=="]}),
        json!({"BS": ["!"]}),
        json!({"S": "x", "N": "1"}),
        json!({"S": "x", "foo": 1}),
        json!({"S": null, "N": "1"}),
        json!({"Q": "x"}),
    ]
}

/// Each value at each place in `v` (attribute values of the item or key, at any depth).
fn variants(v: &Value, out: &mut Vec<Value>) {
    fn walk(root: &Value, path: &mut Vec<PathStep>, v: &Value, out: &mut Vec<Value>) {
        if !path.is_empty() {
            for r in replacements() {
                out.push(replace(root, path, r));
            }
        }
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    path.push(PathStep::Key(k.clone()));
                    walk(root, path, c, out);
                    path.pop();
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    path.push(PathStep::Index(i));
                    walk(root, path, c, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    walk(v, &mut Vec::new(), v, out);
}

#[derive(Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn replace(root: &Value, path: &[PathStep], new: Value) -> Value {
    let mut out = root.clone();
    let mut at = &mut out;
    for step in path {
        at = match step {
            PathStep::Key(k) => &mut at[k.as_str()],
            PathStep::Index(i) => &mut at[*i],
        };
    }
    *at = new;
    out
}

fn bodies(base: &Value) -> Vec<String> {
    let mut values = vec![base.clone()];
    variants(base, &mut values);
    for extra in [
        json!({"ReturnValues": "ALL_OLD"}),
        json!({"ReturnConsumedCapacity": "TOTAL"}),
        json!({"ConditionExpression": "attribute_not_exists(pk)"}),
        json!({"ConsistentRead": true}),
        json!({"ConsistentRead": "true"}),
        json!({"ConsistentRead": null}),
        json!({"TableName": "nope"}),
        json!({"TableName": "a;b"}),
        json!({"TableName": "ab"}),
        json!({"Expected": {}}),
    ] {
        let mut v = base.clone();
        for (k, x) in extra.as_object().unwrap() {
            v[k.as_str()] = x.clone();
        }
        values.push(v);
    }
    for member in base.as_object().unwrap().keys() {
        let mut v = base.clone();
        v.as_object_mut().unwrap().remove(member);
        values.push(v);
    }
    let mut texts: Vec<String> = values.iter().map(Value::to_string).collect();
    let text = base.to_string();
    // Texts a Value cannot hold: duplicated members, escapes, other JSON than an object.
    texts.push(text.replacen("{\"", "{\"TableName\":\"plain\",\"", 1));
    texts.push(text.replacen("\"pk\":{", "\"pk\":{\"S\":\"dup\"},\"pk\":{", 1));
    texts.push(text.replacen("\"S\":\"a\"", "\"S\":\"a\",\"S\":\"b\"", 1));
    texts.push(text.replace("\"a\"", "\"\\u0061\\n\""));
    texts.push(text.replace("plain", "pl\\u0061in"));
    texts.push(format!("  {text}"));
    texts.push(format!("{text} x"));
    texts.push(format!("[{text}]"));
    texts.push("null".into());
    texts
}

fn compare(op: &str, base: Value) -> (usize, usize) {
    let (mut plain, mut other) = (0, 0);
    for body in bodies(&base) {
        let (a, _) = engine();
        let (b, _) = engine();
        for e in [&a, &b] {
            table(e);
            ok(
                e,
                "PutItem",
                json!({"TableName": "plain", "Item": {"pk": {"S": "a"}, "sk": {"N": "1"}, "old": {"BOOL": true}}}),
            );
        }
        let Some(got) = a.execute_plain(op, body.as_bytes()) else {
            other += 1;
            continue;
        };
        plain += 1;
        let got = outcome(got);
        let want = match serde_json::from_slice::<Value>(body.as_bytes()) {
            Ok(v) => outcome(b.execute(op, &v)),
            Err(e) => panic!("the plain reading took a body that is not JSON ({e}): {body}"),
        };
        assert_eq!(got, want, "{op} {body}");
        assert_eq!(everything(&a), everything(&b), "{op} {body}");
    }
    (plain, other)
}

#[test]
fn put_item_read_plainly_answers_as_the_value_reading() {
    let base = json!({
        "TableName": "plain",
        "Item": {
            "pk": {"S": "a"},
            "sk": {"N": "1"},
            "n": {"N": "-12.5e3"},
            "b": {"B": "AAEC"},
            "t": {"BOOL": true},
            "z": {"NULL": true},
            "m": {"M": {"in": {"S": "x"}, "l": {"L": [{"N": "2"}, {"SS": ["p", "q"]}]}}},
            "ns": {"NS": ["3", "1"]},
            "bs": {"BS": ["YQ=="]}
        }
    });
    let (plain, other) = compare("PutItem", base);
    // Both readings are exercised: the base body and every variant the plain reading may
    // take, and every variant it must leave to the Value reading.
    assert!(plain > 150 && other > 400, "plain {plain}, other {other}");
}

#[test]
fn get_item_read_plainly_answers_as_the_value_reading() {
    let base = json!({
        "TableName": "plain",
        "Key": {"pk": {"S": "a"}, "sk": {"N": "1"}}
    });
    let (plain, other) = compare("GetItem", base);
    assert!(plain > 20 && other > 50, "plain {plain}, other {other}");
}

#[test]
fn only_plain_bodies_are_read_plainly() {
    let put = |b: &str| super::typed::read("PutItem", b.as_bytes()).is_some();
    assert!(put(r#"{"TableName":"plain","Item":{"pk":{"S":"a"}}}"#));
    assert!(!put(
        r#"{"TableName":"plain","Item":{"pk":{"S":"a"}},"ReturnValues":"NONE"}"#
    ));
    assert!(!put(r#"{"TableName":"plain","Item":{"pk":{"N":"x"}}}"#));
    assert!(!put(r#"{"TableName":"plain","Item":{}}"#));
    assert!(!put(
        r#"{"TableName":"plain","TableName":"plain","Item":{"pk":{"S":"a"}}}"#
    ));
    assert!(
        super::typed::read(
            "DeleteItem",
            br#"{"TableName":"plain","Key":{"pk":{"S":"a"}}}"#
        )
        .is_none()
    );
}
