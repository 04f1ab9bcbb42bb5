//! DynamoDB requests through the gateway's handler.
//!
//! Every input runs against a fresh in-memory store with two tables: `tbl` (HASH `pk` S, RANGE
//! `sk` N, a global secondary index `gsi` on `gk`, a local one `lsi` on `lk`, TTL on `ttl`) and
//! `hash` (HASH `id` S), a few items in each.
//!
//! Input format (requests separated by [`crate::SEPARATOR`]): the operation on the first line
//! (the part after `DynamoDB_20120810.` in `X-Amz-Target`), the JSON body after it.

use bytes::Bytes;
use serde_json::json;

pub fn run(data: &[u8]) {
    let state = crate::fresh_state();
    // A setup error would be a harness bug (a unit test checks there is none).
    let _ = setup(&state);
    for req in crate::requests(data) {
        let (op, body) = crate::first_line(req);
        let Ok(op) = std::str::from_utf8(op) else {
            continue;
        };
        let resp = crate::block_on(gateway::dynamodb::handle(
            &state,
            op.trim(),
            Bytes::copy_from_slice(body),
        ));
        crate::debug(op, &resp);
        std::hint::black_box(resp);
    }
    std::hint::black_box(state.metrics.render(&state.store));
}

/// Create the tables and items; the errors, if any (none: a test checks).
fn setup(state: &gateway::AppState) -> Vec<String> {
    let tables = &state.store.tables;
    let requests = [
        (
            "CreateTable",
            json!({
                "TableName": "tbl",
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "N"},
                    {"AttributeName": "gk", "AttributeType": "S"},
                    {"AttributeName": "lk", "AttributeType": "B"}
                ],
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"}
                ],
                "GlobalSecondaryIndexes": [{
                    "IndexName": "gsi",
                    "KeySchema": [{"AttributeName": "gk", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"}
                }],
                "LocalSecondaryIndexes": [{
                    "IndexName": "lsi",
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "lk", "KeyType": "RANGE"}
                    ],
                    "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["n"]}
                }],
                "BillingMode": "PAY_PER_REQUEST"
            }),
        ),
        (
            "CreateTable",
            json!({
                "TableName": "hash",
                "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            }),
        ),
        (
            "UpdateTimeToLive",
            json!({
                "TableName": "tbl",
                "TimeToLiveSpecification": {"Enabled": true, "AttributeName": "ttl"}
            }),
        ),
        (
            "PutItem",
            json!({"TableName": "tbl", "Item": {
                "pk": {"S": "a"}, "sk": {"N": "1"}, "gk": {"S": "x"}, "lk": {"B": "AQI="},
                "n": {"N": "12.5"}, "l": {"L": [{"S": "p"}, {"N": "2"}, {"M": {"k": {"BOOL": true}}}]},
                "m": {"M": {"k": {"S": "v"}, "inner": {"M": {"z": {"NULL": true}}}}},
                "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]}, "bs": {"BS": ["AQ=="]},
                "ttl": {"N": "1600000000"}
            }}),
        ),
        (
            "PutItem",
            json!({"TableName": "tbl", "Item": {
                "pk": {"S": "a"}, "sk": {"N": "2"}, "gk": {"S": "y"}, "n": {"N": "-3"}
            }}),
        ),
        (
            "PutItem",
            json!({"TableName": "hash", "Item": {"id": {"S": "one"}, "v": {"N": "1"}}}),
        ),
    ];
    requests
        .into_iter()
        .filter_map(|(op, req)| tables.execute(op, &req).err().map(|e| format!("{op}: {e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    /// The harness's tables exist, so the fuzzer's requests reach items, not just errors.
    #[test]
    fn setup_creates_both_tables_with_items() {
        let state = crate::fresh_state();
        assert_eq!(super::setup(&state), Vec::<String>::new());
        let mut names = state.store.tables.table_names();
        names.sort();
        assert_eq!(names, ["hash", "tbl"]);
        let (v, _) = state
            .store
            .tables
            .execute("Scan", &serde_json::json!({"TableName": "tbl"}))
            .expect("scan");
        assert_eq!(v.into_value()["Count"], 2);
    }
}
