//! DynamoDB Streams over HTTP: tables changed through aws-sdk-dynamodb, their streams read
//! with raw `DynamoDBStreams_20120810.*` requests on the same port, answers and AWS's error
//! types as an SDK receives them.

mod common;

use std::time::Duration;

use aws_sdk_dynamodb::types::{StreamSpecification, StreamViewType};
use bytes::Bytes;
use clock::{ManualClock, Timestamp};
use common::{Options, TestServer, s};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

/// POST one DynamoDB Streams request; (status, `__type` or "", body).
async fn call(url: &str, op: &str, body: Value) -> (u16, Value) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let req = hyper::Request::post(url)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("DynamoDBStreams_20120810.{op}"))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    assert_eq!(resp.headers()["content-type"], "application/x-amz-json-1.0");
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn ok(url: &str, op: &str, body: Value) -> Value {
    let (status, v) = call(url, op, body).await;
    assert_eq!(status, 200, "{op}: {v}");
    v
}

/// The error type (after `#`) and message of a failed call.
async fn fail(url: &str, op: &str, body: Value) -> (String, String) {
    let (status, v) = call(url, op, body).await;
    assert_eq!(status, 400, "{op}: {v}");
    let ty = v["__type"].as_str().unwrap();
    (
        ty.rsplit('#').next().unwrap().to_string(),
        v["message"].as_str().unwrap_or("").to_string(),
    )
}

async fn create_table(c: &aws_sdk_dynamodb::Client) -> String {
    let out = common::pk_table(c, "orders")
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let d = out.table_description.unwrap();
    assert_eq!(
        d.stream_specification.unwrap().stream_view_type,
        Some(StreamViewType::NewAndOldImages)
    );
    d.latest_stream_arn.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_api_reads_the_changes_made_through_dynamodb() {
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let srv = TestServer::with(Options {
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    let url = srv.url.clone();
    let c = common::dynamodb(&url);
    let arn = create_table(&c).await;
    assert!(
        arn.starts_with("arn:aws:dynamodb:us-east-1:000000000000:table/orders/stream/2023-11-14T"),
        "{arn}"
    );
    c.put_item()
        .table_name("orders")
        .item("pk", s("a"))
        .item("v", s("1"))
        .send()
        .await
        .unwrap();
    c.update_item()
        .table_name("orders")
        .key("pk", s("a"))
        .update_expression("SET v = :v")
        .expression_attribute_values(":v", s("2"))
        .send()
        .await
        .unwrap();
    c.delete_item()
        .table_name("orders")
        .key("pk", s("a"))
        .send()
        .await
        .unwrap();

    let listed = ok(&url, "ListStreams", json!({"TableName": "orders"})).await;
    assert_eq!(listed["Streams"][0]["StreamArn"], json!(arn));
    assert_eq!(listed["Streams"][0]["TableName"], "orders");
    let d =
        ok(&url, "DescribeStream", json!({"StreamArn": arn})).await["StreamDescription"].clone();
    assert_eq!(d["StreamStatus"], "ENABLED");
    assert_eq!(d["StreamViewType"], "NEW_AND_OLD_IMAGES");
    let shard = d["Shards"][0]["ShardId"].as_str().unwrap().to_string();
    let it = ok(
        &url,
        "GetShardIterator",
        json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
    )
    .await["ShardIterator"]
        .clone();
    let page = ok(&url, "GetRecords", json!({"ShardIterator": it})).await;
    let recs = page["Records"].as_array().unwrap();
    let events: Vec<&str> = recs
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["INSERT", "MODIFY", "REMOVE"]);
    assert_eq!(recs[1]["dynamodb"]["OldImage"]["v"], json!({"S": "1"}));
    assert_eq!(recs[1]["dynamodb"]["NewImage"]["v"], json!({"S": "2"}));
    assert_eq!(recs[2]["dynamodb"]["Keys"], json!({"pk": {"S": "a"}}));
    let next = page["NextShardIterator"].clone();

    // AWS's error types, as SDKs map them.
    let (ty, msg) = fail(
        &url,
        "DescribeStream",
        json!({"StreamArn": format!("{arn}x")}),
    )
    .await;
    assert_eq!(ty, "ResourceNotFoundException");
    assert!(msg.contains("not found"), "{msg}");
    let (ty, _) = fail(&url, "GetRecords", json!({"ShardIterator": "garbage"})).await;
    assert_eq!(ty, "ValidationException");
    let (ty, _) = fail(&url, "PutRecord", json!({})).await;
    assert_eq!(ty, "UnknownOperationException");
    clock.advance(Duration::from_secs(15 * 60 + 1));
    let (ty, msg) = fail(&url, "GetRecords", json!({"ShardIterator": next})).await;
    assert_eq!(ty, "ExpiredIteratorException");
    assert!(msg.starts_with("Iterator expired."), "{msg}");
    // After 24 hours the records are trimmed: an iterator at the first one fails.
    let first_seq = recs[0]["dynamodb"]["SequenceNumber"].clone();
    clock.advance(Duration::from_secs(24 * 3600));
    let (ty, _) = fail(
        &url,
        "GetShardIterator",
        json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": first_seq}),
    )
    .await;
    assert_eq!(ty, "TrimmedDataAccessException");

    // Disabling through UpdateTable leaves the stream readable, DISABLED.
    let disable = || {
        c.update_table()
            .table_name("orders")
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(false)
                    .build()
                    .unwrap(),
            )
            .send()
    };
    disable().await.unwrap();
    let d = ok(&url, "DescribeStream", json!({"StreamArn": arn})).await;
    assert_eq!(d["StreamDescription"]["StreamStatus"], "DISABLED");
    let again = disable().await.unwrap_err();
    let again = again.into_service_error();
    assert_eq!(
        aws_sdk_dynamodb::error::ProvideErrorMetadata::message(&again),
        Some("Table has no stream to disable: TableName: orders")
    );
    srv.stop().await;
}
