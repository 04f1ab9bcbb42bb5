//! DynamoDB Streams through the engine: which writes make records and what they hold, the
//! stream lifecycle (enable, disable, re-enable, table deletion), iterators, retention, and
//! recovery of records together with the writes they describe.

use std::sync::Arc;
use std::time::Duration;

use clock::{ManualClock, Timestamp};
use serde_json::{Value, json};

use super::super::tests::{create, engine, err, ok};
use super::*;

fn streams(e: &TableEngine, op: &str, req: Value) -> Value {
    e.execute_streams(op, &req)
        .unwrap_or_else(|err| panic!("{op} failed: {err}"))
}

fn streams_err(e: &TableEngine, op: &str, req: Value) -> DdbError {
    match e.execute_streams(op, &req) {
        Ok(v) => panic!("{op} unexpectedly succeeded: {v}"),
        Err(e) => e,
    }
}

fn enable(e: &TableEngine, table: &str, view: &str) -> String {
    let d = ok(
        e,
        "UpdateTable",
        json!({"TableName": table, "StreamSpecification": {"StreamEnabled": true, "StreamViewType": view}}),
    );
    d["TableDescription"]["LatestStreamArn"]
        .as_str()
        .unwrap()
        .to_string()
}

fn shard(e: &TableEngine, arn: &str) -> String {
    let d = streams(e, "DescribeStream", json!({"StreamArn": arn}));
    d["StreamDescription"]["Shards"][0]["ShardId"]
        .as_str()
        .unwrap()
        .to_string()
}

fn iterator(e: &TableEngine, arn: &str, ty: &str, seq: Option<&str>) -> String {
    let mut req = json!({"StreamArn": arn, "ShardId": shard(e, arn), "ShardIteratorType": ty});
    if let Some(s) = seq {
        req["SequenceNumber"] = json!(s);
    }
    streams(e, "GetShardIterator", req)["ShardIterator"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A durable store in `dir` on `clock` (opened again: recovered from disk).
fn open_store(dir: &std::path::Path, clock: &ManualClock) -> crate::Store {
    crate::Store::open(
        &crate::Durability::Disk(dir.to_path_buf()),
        Arc::new(clock.clone()),
    )
    .unwrap()
}

/// All records from TRIM_HORIZON.
fn records(e: &TableEngine, arn: &str) -> Vec<Value> {
    let it = iterator(e, arn, "TRIM_HORIZON", None);
    streams(e, "GetRecords", json!({"ShardIterator": it}))["Records"]
        .as_array()
        .unwrap()
        .clone()
}

fn names(recs: &[Value]) -> Vec<&str> {
    recs.iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect()
}

fn put(e: &TableEngine, table: &str, pk: &str, v: &str) {
    ok(
        e,
        "PutItem",
        json!({"TableName": table, "Item": {"pk": {"S": pk}, "v": {"S": v}}}),
    );
}

#[test]
fn every_kind_of_write_records_what_it_changed() {
    let (e, _) = engine();
    create(&e, "tbl", false);
    let arn = enable(&e, "tbl", "NEW_AND_OLD_IMAGES");
    put(&e, "tbl", "a", "1");
    // An identical put changes nothing: DynamoDB writes no record for it.
    put(&e, "tbl", "a", "1");
    ok(
        &e,
        "UpdateItem",
        json!({"TableName": "tbl", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET v = :v", "ExpressionAttributeValues": {":v": {"S": "2"}}}),
    );
    ok(
        &e,
        "DeleteItem",
        json!({"TableName": "tbl", "Key": {"pk": {"S": "a"}}}),
    );
    // Deleting what is not there, and a failed condition, change nothing either.
    ok(
        &e,
        "DeleteItem",
        json!({"TableName": "tbl", "Key": {"pk": {"S": "a"}}}),
    );
    err(
        &e,
        "PutItem",
        json!({"TableName": "tbl", "Item": {"pk": {"S": "z"}}, "ConditionExpression": "attribute_exists(pk)"}),
    );
    ok(
        &e,
        "BatchWriteItem",
        json!({"RequestItems": {"tbl": [{"PutRequest": {"Item": {"pk": {"S": "b"}}}}]}}),
    );
    ok(
        &e,
        "TransactWriteItems",
        json!({"TransactItems": [{"Put": {"TableName": "tbl", "Item": {"pk": {"S": "c"}}}}]}),
    );
    ok(
        &e,
        "ExecuteStatement",
        json!({"Statement": "INSERT INTO \"tbl\" VALUE {'pk': 'd'}"}),
    );
    ok(
        &e,
        "ExecuteStatement",
        json!({"Statement": "UPDATE \"tbl\" SET v = 'x' WHERE pk = 'd'"}),
    );
    let recs = records(&e, &arn);
    assert_eq!(
        names(&recs),
        [
            "INSERT", "MODIFY", "REMOVE", "INSERT", "INSERT", "INSERT", "MODIFY"
        ]
    );
    let r = &recs[1];
    assert_eq!(r["eventVersion"], "1.1");
    assert_eq!(r["eventSource"], "aws:dynamodb");
    assert_eq!(r["awsRegion"], "us-east-1");
    assert_eq!(r["dynamodb"]["Keys"], json!({"pk": {"S": "a"}}));
    assert_eq!(
        r["dynamodb"]["OldImage"],
        json!({"pk": {"S": "a"}, "v": {"S": "1"}})
    );
    assert_eq!(
        r["dynamodb"]["NewImage"],
        json!({"pk": {"S": "a"}, "v": {"S": "2"}})
    );
    assert_eq!(r["dynamodb"]["StreamViewType"], "NEW_AND_OLD_IMAGES");
    assert_eq!(r["dynamodb"]["ApproximateCreationDateTime"], 1_700_000_000);
    assert!(r["dynamodb"]["SizeBytes"].as_u64().unwrap() > 0);
    assert!(recs[2]["dynamodb"].get("NewImage").is_none());
    let seqs: Vec<&str> = recs
        .iter()
        .map(|r| r["dynamodb"]["SequenceNumber"].as_str().unwrap())
        .collect();
    assert!(seqs.iter().all(|s| s.len() >= 21));
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let ids: std::collections::BTreeSet<&str> = recs
        .iter()
        .map(|r| r["eventID"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), recs.len());
}

#[test]
fn view_type_decides_the_images() {
    let (e, _) = engine();
    for (table, view, new, old) in [
        ("keys", "KEYS_ONLY", false, false),
        ("new", "NEW_IMAGE", true, false),
        ("old", "OLD_IMAGE", false, true),
    ] {
        create(&e, table, false);
        let arn = enable(&e, table, view);
        put(&e, table, "a", "1");
        put(&e, table, "a", "2");
        let recs = records(&e, &arn);
        let m = &recs[1]["dynamodb"];
        assert_eq!(m["StreamViewType"], view);
        assert_eq!(m.get("NewImage").is_some(), new, "{view}");
        assert_eq!(m.get("OldImage").is_some(), old, "{view}");
        assert_eq!(m["Keys"], json!({"pk": {"S": "a"}}));
    }
}

#[test]
fn stream_specification_is_validated_as_dynamodb_does() {
    let (e, _) = engine();
    let mut req = json!({
        "TableName": "str",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": true}
    });
    assert_eq!(
        err(&e, "CreateTable", req.clone()).message,
        "One or more parameter values were invalid: Table is being created with a stream enabled, UpdateViewType is required"
    );
    req["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": "ALL"});
    assert_eq!(
        err(&e, "CreateTable", req.clone()).message,
        "1 validation error detected: Value 'ALL' at 'streamSpecification.streamViewType' failed to satisfy constraint: Member must satisfy enum value set: [NEW_IMAGE, OLD_IMAGE, NEW_AND_OLD_IMAGES, KEYS_ONLY]"
    );
    req["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": "KEYS_ONLY"});
    let d = ok(&e, "CreateTable", req)["TableDescription"].clone();
    assert_eq!(
        d["StreamSpecification"],
        json!({"StreamEnabled": true, "StreamViewType": "KEYS_ONLY"})
    );
    // 1_700_000_000 s is 2023-11-14T22:13:20Z.
    assert_eq!(d["LatestStreamLabel"], "2023-11-14T22:13:20.000");
    assert_eq!(
        d["LatestStreamArn"],
        "arn:aws:dynamodb:us-east-1:000000000000:table/str/stream/2023-11-14T22:13:20.000"
    );
    let upd = |spec: Value| json!({"TableName": "str", "StreamSpecification": spec});
    assert_eq!(
        err(
            &e,
            "UpdateTable",
            upd(json!({"StreamEnabled": true, "StreamViewType": "NEW_IMAGE"}))
        )
        .message,
        "Table already has an enabled stream: TableName: str"
    );
    assert_eq!(
        err(
            &e,
            "UpdateTable",
            upd(json!({"StreamEnabled": false, "StreamViewType": "NEW_IMAGE"}))
        )
        .message,
        "One or more parameter values were invalid: If stream is being disabled, then UpdateViewType must not be specified"
    );
    ok(&e, "UpdateTable", upd(json!({"StreamEnabled": false})));
    assert_eq!(
        err(&e, "UpdateTable", upd(json!({"StreamEnabled": false}))).message,
        "Table has no stream to disable: TableName: str"
    );
    assert_eq!(
        err(&e, "UpdateTable", upd(json!({"StreamEnabled": true}))).message,
        "One or more parameter values were invalid: If stream is being enabled then UpdateViewType is required"
    );
    let d = ok(&e, "DescribeTable", json!({"TableName": "str"}))["Table"].clone();
    assert!(d.get("StreamSpecification").is_none());
    assert_eq!(d["LatestStreamLabel"], "2023-11-14T22:13:20.000");
}

#[test]
fn disabled_streams_stay_readable_and_new_ones_get_new_arns() {
    let (e, clock) = engine();
    create(&e, "tbl", false);
    let first = enable(&e, "tbl", "KEYS_ONLY");
    put(&e, "tbl", "a", "1");
    let open = iterator(&e, &first, "TRIM_HORIZON", None);
    ok(
        &e,
        "UpdateTable",
        json!({"TableName": "tbl", "StreamSpecification": {"StreamEnabled": false}}),
    );
    put(&e, "tbl", "b", "1");
    let d = streams(&e, "DescribeStream", json!({"StreamArn": first}))["StreamDescription"].clone();
    assert_eq!(d["StreamStatus"], "DISABLED");
    assert_eq!(d["TableName"], "tbl");
    assert_eq!(
        d["KeySchema"],
        json!([{"AttributeName": "pk", "KeyType": "HASH"}])
    );
    assert!(d["Shards"][0]["SequenceNumberRange"]["EndingSequenceNumber"].is_string());
    // The closed shard is read to its end: one record, then no next iterator.
    let page = streams(&e, "GetRecords", json!({"ShardIterator": open}));
    assert_eq!(names(page["Records"].as_array().unwrap()), ["INSERT"]);
    assert!(page.get("NextShardIterator").is_none());

    clock.advance(Duration::from_millis(1));
    let second = enable(&e, "tbl", "NEW_IMAGE");
    assert_ne!(first, second);
    put(&e, "tbl", "c", "1");
    assert_eq!(records(&e, &second).len(), 1);
    let all = streams(&e, "ListStreams", json!({"TableName": "tbl"}));
    assert_eq!(all["Streams"].as_array().unwrap().len(), 2);
    let page = streams(&e, "ListStreams", json!({"Limit": 1}));
    assert_eq!(page["Streams"][0]["StreamArn"], json!(first));
    assert_eq!(page["LastEvaluatedStreamArn"], json!(first));
    let page = streams(
        &e,
        "ListStreams",
        json!({"Limit": 1, "ExclusiveStartStreamArn": first}),
    );
    assert_eq!(page["Streams"][0]["StreamArn"], json!(second));
    assert!(page.get("LastEvaluatedStreamArn").is_none());
    assert_eq!(
        streams(&e, "ListStreams", json!({"TableName": "other"}))["Streams"],
        json!([])
    );

    // Deleting the table disables its stream; it stays readable until it ages out.
    ok(&e, "DeleteTable", json!({"TableName": "tbl"}));
    let d =
        streams(&e, "DescribeStream", json!({"StreamArn": second}))["StreamDescription"].clone();
    assert_eq!(d["StreamStatus"], "DISABLED");
    assert_eq!(records(&e, &second).len(), 1);
    clock.advance(Duration::from_millis(RETENTION_MS));
    let gone = streams_err(&e, "DescribeStream", json!({"StreamArn": second}));
    assert_eq!(gone.code, ErrorCode::ResourceNotFound);
    assert_eq!(
        gone.message,
        format!("Requested resource not found: Stream: {second} not found")
    );
    assert_eq!(streams(&e, "ListStreams", json!({}))["Streams"], json!([]));
}

#[test]
fn iterators_start_where_asked_and_expire_after_15_minutes() {
    let (e, clock) = engine();
    create(&e, "tbl", false);
    let arn = enable(&e, "tbl", "KEYS_ONLY");
    for k in ["a", "b", "c"] {
        put(&e, "tbl", k, "1");
    }
    let recs = records(&e, &arn);
    let seq = |i: usize| recs[i]["dynamodb"]["SequenceNumber"].as_str().unwrap();
    let read = |it: String| streams(&e, "GetRecords", json!({"ShardIterator": it}));
    let keys = |page: &Value| -> Vec<String> {
        page["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r["dynamodb"]["Keys"]["pk"]["S"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        keys(&read(iterator(
            &e,
            &arn,
            "AT_SEQUENCE_NUMBER",
            Some(seq(1))
        ))),
        ["b", "c"]
    );
    assert_eq!(
        keys(&read(iterator(
            &e,
            &arn,
            "AFTER_SEQUENCE_NUMBER",
            Some(seq(1))
        ))),
        ["c"]
    );
    let latest = iterator(&e, &arn, "LATEST", None);
    put(&e, "tbl", "d", "1");
    let page = read(latest);
    assert_eq!(keys(&page), ["d"]);
    // An open shard always gives a next iterator, which sees later writes.
    let next = page["NextShardIterator"].as_str().unwrap().to_string();
    assert_eq!(keys(&read(next.clone())), Vec::<String>::new());

    // Limit pages through the shard.
    let it = iterator(&e, &arn, "TRIM_HORIZON", None);
    let p1 = streams(&e, "GetRecords", json!({"ShardIterator": it, "Limit": 3}));
    assert_eq!(keys(&p1), ["a", "b", "c"]);
    let p2 = read(p1["NextShardIterator"].as_str().unwrap().to_string());
    assert_eq!(keys(&p2), ["d"]);
    let bad = streams_err(
        &e,
        "GetRecords",
        json!({"ShardIterator": "x", "Limit": 1001}),
    );
    assert_eq!(
        bad.message,
        "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000"
    );
    assert_eq!(
        streams_err(
            &e,
            "GetRecords",
            json!({"ShardIterator": "not-an-iterator"})
        )
        .code,
        ErrorCode::Validation
    );
    // Members of the wrong JSON type fail before any check, as in DynamoDB.
    let typed = streams_err(&e, "GetRecords", json!({"ShardIterator": 5}));
    assert_eq!(typed.code, ErrorCode::Serialization);

    clock.advance(Duration::from_millis(ITERATOR_LIFETIME_MS + 1));
    let expired = streams_err(&e, "GetRecords", json!({"ShardIterator": next}));
    assert_eq!(expired.code, ErrorCode::ExpiredIterator);
    assert!(
        expired.message.starts_with("Iterator expired."),
        "{}",
        expired.message
    );
    // A SequenceNumber only goes with AT_ / AFTER_SEQUENCE_NUMBER, and is required there.
    let with_seq = streams_err(
        &e,
        "GetShardIterator",
        json!({"StreamArn": arn, "ShardId": shard(&e, &arn), "ShardIteratorType": "LATEST", "SequenceNumber": seq(0)}),
    );
    assert_eq!(with_seq.code, ErrorCode::Validation);
    let without = streams_err(
        &e,
        "GetShardIterator",
        json!({"StreamArn": arn, "ShardId": shard(&e, &arn), "ShardIteratorType": "AT_SEQUENCE_NUMBER"}),
    );
    assert_eq!(without.code, ErrorCode::Validation);
    // A string that is no stream ARN is invalid; a well-formed ARN of no stream is not found.
    let malformed = streams_err(
        &e,
        "DescribeStream",
        json!({"StreamArn": "sdfadfsdfnlfkajakfgjalksfgklasjklasdjfklasdfasdfgasf"}),
    );
    assert_eq!(malformed.code, ErrorCode::Validation);
    let missing = streams_err(
        &e,
        "DescribeStream",
        json!({"StreamArn": arn.replace("/tbl/", "/nope/")}),
    );
    assert_eq!(missing.code, ErrorCode::ResourceNotFound);
    // Shards are listed after ExclusiveStartShardId, whether or not it exists.
    let after = streams(
        &e,
        "DescribeStream",
        json!({"StreamArn": arn, "ExclusiveStartShardId": "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"}),
    );
    assert_eq!(after["StreamDescription"]["Shards"], json!([]));
    let unknown = streams_err(
        &e,
        "GetShardIterator",
        json!({"StreamArn": arn, "ShardId": "shardId-00000000000000000000-00000000", "ShardIteratorType": "LATEST"}),
    );
    assert_eq!(unknown.code, ErrorCode::ResourceNotFound);
}

#[test]
fn records_age_out_after_24_hours() {
    let (e, clock) = engine();
    create(&e, "tbl", false);
    let arn = enable(&e, "tbl", "KEYS_ONLY");
    put(&e, "tbl", "old", "1");
    let old_seq = records(&e, &arn)[0]["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap()
        .to_string();
    clock.advance(Duration::from_millis(RETENTION_MS - 10_000));
    put(&e, "tbl", "new", "1");
    let horizon = iterator(&e, &arn, "TRIM_HORIZON", None);
    clock.advance(Duration::from_millis(10_000));
    // The first record is trimmed: an iterator positioned on it fails, a new one starts
    // after it.
    let trimmed = streams_err(&e, "GetRecords", json!({"ShardIterator": horizon}));
    assert_eq!(trimmed.code, ErrorCode::TrimmedDataAccess);
    let at = streams_err(
        &e,
        "GetShardIterator",
        json!({"StreamArn": arn, "ShardId": shard(&e, &arn), "ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": old_seq}),
    );
    assert_eq!(at.code, ErrorCode::TrimmedDataAccess);
    let recs = records(&e, &arn);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["dynamodb"]["Keys"]["pk"]["S"], "new");
}

#[test]
fn ttl_deletions_are_recorded_as_the_service() {
    let (e, clock) = engine();
    create(&e, "tbl", false);
    ok(
        &e,
        "UpdateTimeToLive",
        json!({"TableName": "tbl", "TimeToLiveSpecification": {"Enabled": true, "AttributeName": "exp"}}),
    );
    let arn = enable(&e, "tbl", "OLD_IMAGE");
    ok(
        &e,
        "PutItem",
        json!({"TableName": "tbl", "Item": {"pk": {"S": "a"}, "exp": {"N": "1700000001"}}}),
    );
    clock.advance(Duration::from_secs(5));
    let recs = records(&e, &arn);
    assert_eq!(names(&recs), ["INSERT", "REMOVE"]);
    assert_eq!(
        recs[1]["userIdentity"],
        json!({"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"})
    );
    assert!(recs[0].get("userIdentity").is_none());
}

#[test]
fn records_survive_a_restart_with_the_writes_they_describe() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let open = || open_store(dir.path(), &clock);
    let (arn, before) = {
        let s = open();
        let e = &s.tables;
        create(e, "tbl", false);
        let arn = enable(e, "tbl", "NEW_AND_OLD_IMAGES");
        put(e, "tbl", "a", "1");
        put(e, "tbl", "a", "2");
        create(e, "gone", false);
        let gone = enable(e, "gone", "KEYS_ONLY");
        put(e, "gone", "x", "1");
        ok(e, "DeleteTable", json!({"TableName": "gone"}));
        assert_eq!(records(e, &gone).len(), 1);
        let before = records(e, &arn);
        (arn, before)
    };
    let s = open();
    let e = &s.tables;
    assert_eq!(records(e, &arn), before);
    let d = ok(e, "DescribeTable", json!({"TableName": "tbl"}))["Table"].clone();
    assert_eq!(d["LatestStreamArn"], json!(arn));
    // The deleted table's stream is still there, disabled.
    let listed = streams(e, "ListStreams", json!({"TableName": "gone"}));
    let gone = listed["Streams"][0]["StreamArn"]
        .as_str()
        .unwrap()
        .to_string();
    let desc = streams(e, "DescribeStream", json!({"StreamArn": gone}));
    assert_eq!(desc["StreamDescription"]["StreamStatus"], "DISABLED");
    // Sequence numbers go on increasing after the restart.
    put(e, "tbl", "a", "3");
    let after = records(e, &arn);
    assert_eq!(after.len(), 3);
    assert!(
        after[2]["dynamodb"]["SequenceNumber"].as_str()
            > after[1]["dynamodb"]["SequenceNumber"].as_str()
    );
    assert_eq!(after[2]["eventName"], "MODIFY");
}

/// While the UpdateTable that enables or disables a stream is under way (the table
/// `UPDATING`), the stream is `ENABLING` / `DISABLING`, as DynamoDB describes it.
#[test]
fn a_stream_is_enabling_and_disabling_while_its_table_updates() {
    let (e, clock) = engine();
    e.set_status_delay(Duration::from_millis(500));
    create(&e, "enab", false);
    clock.advance(Duration::from_millis(500));
    let status = |arn: &str| {
        streams(&e, "DescribeStream", json!({"StreamArn": arn}))["StreamDescription"]["StreamStatus"].clone()
    };
    let arn = enable(&e, "enab", "KEYS_ONLY");
    assert_eq!(status(&arn), "ENABLING");
    clock.advance(Duration::from_millis(500));
    assert_eq!(status(&arn), "ENABLED");
    ok(
        &e,
        "UpdateTable",
        json!({"TableName": "enab", "StreamSpecification": {"StreamEnabled": false}}),
    );
    assert_eq!(status(&arn), "DISABLING");
    clock.advance(Duration::from_millis(500));
    assert_eq!(status(&arn), "DISABLED");
}

/// DescribeStream's ShardFilter: the children of a shard (a stream's one shard has none),
/// with the filter's members checked as DynamoDB Streams checks them.
#[test]
fn describe_stream_filters_child_shards() {
    let (e, _) = engine();
    create(&e, "kids", false);
    let arn = enable(&e, "kids", "KEYS_ONLY");
    let id = shard(&e, &arn);
    let d = streams(
        &e,
        "DescribeStream",
        json!({"StreamArn": arn, "ShardFilter": {"Type": "CHILD_SHARDS", "ShardId": id}}),
    );
    assert_eq!(d["StreamDescription"]["Shards"], json!([]));
    assert_eq!(d["StreamDescription"]["StreamStatus"], "ENABLED");
    for (filter, at) in [
        (json!({"Type": "foo", "ShardId": id}), "shardFilter.type"),
        (json!({"ShardId": id}), "shardFilter.type"),
        (
            json!({"Type": "CHILD_SHARDS", "ShardId": "qwerty"}),
            "shardFilter.shardId",
        ),
        (json!({"Type": "CHILD_SHARDS"}), "shardFilter.shardId"),
    ] {
        let er = streams_err(
            &e,
            "DescribeStream",
            json!({"StreamArn": arn, "ShardFilter": filter}),
        );
        assert_eq!(er.code, ErrorCode::Validation);
        assert!(er.message.contains(&format!("at '{at}'")), "{}", er.message);
    }
}

#[test]
fn a_stream_has_its_own_resource_policy_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let open = || open_store(dir.path(), &clock);
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"dynamodb:GetRecords","Resource":"*"}]}"#;
    let (arn, revision) = {
        let s = open();
        let e = &s.tables;
        create(e, "tbl", false);
        let arn = enable(e, "tbl", "NEW_IMAGE");
        let table_arn = arn.split("/stream/").next().unwrap().to_string();
        let missing = err(e, "GetResourcePolicy", json!({"ResourceArn": arn}));
        assert_eq!(missing.code, ErrorCode::PolicyNotFound);
        let put = ok(
            e,
            "PutResourcePolicy",
            json!({"ResourceArn": arn, "Policy": doc, "ExpectedRevisionId": "NO_POLICY"}),
        );
        let revision = put["RevisionId"].as_str().unwrap().to_string();
        // The stream's policy is not the table's.
        assert_eq!(
            err(e, "GetResourcePolicy", json!({"ResourceArn": table_arn})).code,
            ErrorCode::PolicyNotFound
        );
        // A conditional put names the stream when the revision is not the current one.
        let stale = err(
            e,
            "PutResourcePolicy",
            json!({"ResourceArn": arn, "Policy": "{}", "ExpectedRevisionId": "1"}),
        );
        assert_eq!(stale.code, ErrorCode::PolicyNotFound);
        assert!(
            stale
                .message
                .contains(&format!("target stream {arn} has revision id {revision}")),
            "{}",
            stale.message
        );
        // A stream that does not exist is not found.
        let other = format!("{table_arn}/stream/2000-01-01T00:00:00.000");
        let er = err(e, "GetResourcePolicy", json!({"ResourceArn": other}));
        assert_eq!(er.code, ErrorCode::ResourceNotFound);
        assert!(er.message.contains("Stream"), "{}", er.message);
        (arn, revision)
    };
    let s = open();
    let e = &s.tables;
    let got = ok(e, "GetResourcePolicy", json!({"ResourceArn": arn}));
    assert_eq!(got, json!({"Policy": doc, "RevisionId": revision}));
    // Disabled, the stream is still there to read, and so is its policy until deleted.
    ok(
        e,
        "UpdateTable",
        json!({"TableName": "tbl", "StreamSpecification": {"StreamEnabled": false}}),
    );
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        ok(e, "GetResourcePolicy", json!({"ResourceArn": arn}))["RevisionId"],
        json!(revision)
    );
    let gone = ok(e, "DeleteResourcePolicy", json!({"ResourceArn": arn}));
    assert_eq!(gone["RevisionId"], json!(revision));
    assert_eq!(
        err(e, "GetResourcePolicy", json!({"ResourceArn": arn})).code,
        ErrorCode::PolicyNotFound
    );
}
