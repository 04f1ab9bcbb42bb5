//! aws-sdk-dynamodb against a real in-process gateway: the operations an application uses,
//! the typed errors SDKs map AWS's codes to, and the wire details (CRC32 header, JSON 1.0).

mod common;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, Put, PutRequest, ScalarAttributeType,
    Select, TimeToLiveSpecification, TransactWriteItem, WriteRequest,
};
use common::{TestServer, n, s};

async fn client(url: &str) -> Client {
    common::dynamodb(url)
}

async fn create_orders(c: &Client) {
    common::pk_table(c, "orders")
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("sk")
                .attribute_type(ScalarAttributeType::N)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("status")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(KeyType::Range)
                .build()
                .unwrap(),
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by-status")
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name("status")
                        .key_type(KeyType::Hash)
                        .build()
                        .unwrap(),
                )
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_item_lifecycle_conditions_and_typed_errors() {
    let srv = TestServer::start().await;
    let c = client(&srv.url).await;
    create_orders(&c).await;
    let d = c
        .describe_table()
        .table_name("orders")
        .send()
        .await
        .unwrap();
    let t = d.table().unwrap();
    assert_eq!(t.table_status().unwrap().as_str(), "ACTIVE");
    assert_eq!(t.global_secondary_indexes().len(), 1);

    let e = common::pk_table(&c, "orders").send().await.unwrap_err();
    assert!(e.into_service_error().is_resource_in_use_exception());

    // 38 significant digits survive exactly.
    let precise = "12345678901234567890.123456789012345678";
    c.put_item()
        .table_name("orders")
        .item("pk", s("c1"))
        .item("sk", n("1"))
        .item("amount", n(precise))
        .item("status", s("NEW"))
        .item("tags", AttributeValue::Ss(vec!["a".into(), "b".into()]))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .unwrap();
    let e = c
        .put_item()
        .table_name("orders")
        .item("pk", s("c1"))
        .item("sk", n("1"))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_conditional_check_failed_exception(), "{e:?}");

    let got = c
        .get_item()
        .table_name("orders")
        .key("pk", s("c1"))
        .key("sk", n("1"))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(got.item().unwrap()["amount"], n(precise));

    let up = c
        .update_item()
        .table_name("orders")
        .key("pk", s("c1"))
        .key("sk", n("1"))
        .update_expression("SET amount = amount + :d, #s = :s REMOVE tags")
        .condition_expression("#s = :old")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":d", n("0.000000000000000002"))
        .expression_attribute_values(":s", s("PAID"))
        .expression_attribute_values(":old", s("NEW"))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
        .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Indexes)
        .send()
        .await
        .unwrap();
    let attrs = up.attributes().unwrap();
    assert_eq!(attrs["amount"], n("12345678901234567890.12345678901234568"));
    assert!(!attrs.contains_key("tags"));
    // The index key changed (NEW -> PAID): the table's write and two in the index (the old
    // entry deleted, the new one put), read by the SDK's typed ConsumedCapacity.
    let cc = up.consumed_capacity().unwrap();
    assert_eq!(cc.capacity_units(), Some(3.0));
    assert_eq!(cc.table().and_then(|t| t.capacity_units()), Some(1.0));
    let gsi = cc.global_secondary_indexes().unwrap();
    assert_eq!(gsi["by-status"].capacity_units(), Some(2.0));
    assert!(cc.local_secondary_indexes().is_none());

    let e = c
        .get_item()
        .table_name("missing")
        .key("pk", s("x"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_resource_not_found_exception(), "{e:?}");

    let e = c
        .update_item()
        .table_name("orders")
        .key("pk", s("c1"))
        .key("sk", n("1"))
        .update_expression("SET a = :a")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(e.code(), Some("ValidationException"));
    assert!(
        e.message()
            .unwrap()
            .contains("attribute value used in expression is not defined; attribute value: :a"),
        "{:?}",
        e.message()
    );

    let q = c
        .query()
        .table_name("orders")
        .index_name("by-status")
        .key_condition_expression("#s = :s")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":s", s("PAID"))
        .send()
        .await
        .unwrap();
    assert_eq!(q.count(), 1);

    c.delete_item()
        .table_name("orders")
        .key("pk", s("c1"))
        .key("sk", n("1"))
        .send()
        .await
        .unwrap();
    let got = c
        .get_item()
        .table_name("orders")
        .key("pk", s("c1"))
        .key("sk", n("1"))
        .send()
        .await
        .unwrap();
    assert!(got.item().is_none());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_paginates_queries_and_scans_and_runs_batches() {
    let srv = TestServer::start().await;
    let c = client(&srv.url).await;
    create_orders(&c).await;
    for chunk in (0..60).collect::<Vec<i32>>().chunks(25) {
        let reqs: Vec<WriteRequest> = chunk
            .iter()
            .map(|i| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .item("pk", s("cust"))
                            .item("sk", n(&i.to_string()))
                            .item("status", s(if i % 3 == 0 { "OPEN" } else { "DONE" }))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
            .collect();
        let r = c
            .batch_write_item()
            .request_items("orders", reqs)
            .send()
            .await
            .unwrap();
        assert!(r.unprocessed_items().is_none_or(|u| u.is_empty()));
    }
    let pages: Vec<_> = c
        .query()
        .table_name("orders")
        .key_condition_expression("pk = :p AND sk >= :lo")
        .expression_attribute_values(":p", s("cust"))
        .expression_attribute_values(":lo", n("10"))
        .scan_index_forward(false)
        .limit(7)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let sks: Vec<i64> = pages
        .iter()
        .flat_map(|p| {
            p.items()
                .iter()
                .map(|i| i["sk"].as_n().unwrap().parse::<i64>().unwrap())
        })
        .collect();
    assert_eq!(sks, (10..60).rev().collect::<Vec<_>>());
    assert!(pages.len() >= 8);

    let count = c
        .scan()
        .table_name("orders")
        .filter_expression("#s = :o")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":o", s("OPEN"))
        .select(Select::Count)
        .send()
        .await
        .unwrap();
    assert_eq!(count.count(), 20);
    assert_eq!(count.scanned_count(), 60);

    let keys: Vec<HashMap<String, AttributeValue>> = (0..5)
        .map(|i| {
            HashMap::from([
                ("pk".to_string(), s("cust")),
                ("sk".to_string(), n(&i.to_string())),
            ])
        })
        .collect();
    let bg = c
        .batch_get_item()
        .request_items(
            "orders",
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .projection_expression("sk")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let got = &bg.responses().unwrap()["orders"];
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|i| i.len() == 1 && i.contains_key("sk")));

    let e = c
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name("orders")
                        .item("pk", s("t"))
                        .item("sk", n("1"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name("orders")
                        .item("pk", s("cust"))
                        .item("sk", n("0"))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    match e {
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t) => {
            let codes: Vec<&str> = t.cancellation_reasons().iter().map(|r| r.code().unwrap_or("")).collect();
            assert_eq!(codes, ["None", "ConditionalCheckFailed"]);
        }
        other => panic!("expected TransactionCanceledException, got {other:?}"),
    }
    let got = c
        .get_item()
        .table_name("orders")
        .key("pk", s("t"))
        .key("sk", n("1"))
        .send()
        .await
        .unwrap();
    assert!(
        got.item().is_none(),
        "a cancelled transaction wrote nothing"
    );

    // The SDK's retry of a transaction (same ClientRequestToken) is applied once; the token
    // with other parameters is refused with the SDK's typed error.
    let bump = |by: &str, token: &str| {
        c.transact_write_items()
            .client_request_token(token)
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .transact_items(
                TransactWriteItem::builder()
                    .update(
                        aws_sdk_dynamodb::types::Update::builder()
                            .table_name("orders")
                            .key("pk", s("counter"))
                            .key("sk", n("0"))
                            .update_expression("ADD hits :by")
                            .expression_attribute_values(":by", n(by))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .send()
    };
    let first = bump("1", "retry-me").await.unwrap();
    assert_eq!(
        first.consumed_capacity()[0].capacity_units(),
        Some(2.0),
        "a transactional write is two units"
    );
    bump("1", "retry-me").await.unwrap();
    let e = bump("7", "retry-me")
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        e.is_idempotent_parameter_mismatch_exception(),
        "expected IdempotentParameterMismatchException, got {e:?}"
    );
    let hits = c
        .get_item()
        .table_name("orders")
        .key("pk", s("counter"))
        .key("sk", n("0"))
        .send()
        .await
        .unwrap();
    assert_eq!(hits.item().unwrap()["hits"], n("1"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_table_admin_ttl_tags_and_listing() {
    let srv = TestServer::start().await;
    let c = client(&srv.url).await;
    for i in 0..5 {
        c.create_table()
            .table_name(format!("tbl-{i}"))
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::B)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .provisioned_throughput(
                aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
                    .read_capacity_units(5)
                    .write_capacity_units(5)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    let names: Vec<String> = c
        .list_tables()
        .limit(2)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(
        names,
        (0..5).map(|i| format!("tbl-{i}")).collect::<Vec<_>>()
    );
    let u = c
        .update_table()
        .table_name("tbl-0")
        .provisioned_throughput(
            aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
                .read_capacity_units(7)
                .write_capacity_units(9)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        u.table_description()
            .unwrap()
            .provisioned_throughput()
            .unwrap()
            .write_capacity_units(),
        Some(9)
    );
    c.update_time_to_live()
        .table_name("tbl-0")
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("exp")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let ttl = c
        .describe_time_to_live()
        .table_name("tbl-0")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description()
            .unwrap()
            .time_to_live_status()
            .unwrap()
            .as_str(),
        "ENABLED"
    );
    let arn = c
        .describe_table()
        .table_name("tbl-0")
        .send()
        .await
        .unwrap()
        .table()
        .unwrap()
        .table_arn()
        .unwrap()
        .to_string();
    c.tag_resource()
        .resource_arn(&arn)
        .tags(
            aws_sdk_dynamodb::types::Tag::builder()
                .key("team")
                .value("core")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let tags = c
        .list_tags_of_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags()[0].value(), "core");
    c.delete_table().table_name("tbl-1").send().await.unwrap();
    let e = c
        .describe_table()
        .table_name("tbl-1")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_resource_not_found_exception());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_conditional_writers_over_http_exactly_one_wins() {
    let srv = TestServer::start().await;
    let c = client(&srv.url).await;
    create_orders(&c).await;
    for round in 0..20 {
        let mut tasks = Vec::new();
        for w in 0..8 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                c.put_item()
                    .table_name("orders")
                    .item("pk", s(&format!("race-{round}")))
                    .item("sk", n("0"))
                    .item("writer", n(&w.to_string()))
                    .condition_expression("attribute_not_exists(pk)")
                    .send()
                    .await
            }));
        }
        let mut wins = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => wins += 1,
                Err(e) => assert!(
                    e.into_service_error()
                        .is_conditional_check_failed_exception()
                ),
            }
        }
        assert_eq!(wins, 1, "round {round}");
    }
    srv.stop().await;
}

/// Raw HTTP: CRC32 header, content type, SerializationException and UnknownOperation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_format_crc32_and_protocol_errors() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = TestServer::start().await;
    let addr = srv.url.trim_start_matches("http://").to_string();
    let call = |target: &'static str, body: &'static str| {
        let addr = addr.clone();
        async move {
            let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let req = format!(
                "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: DynamoDB_20120810.{target}\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(req.as_bytes()).await.unwrap();
            let mut out = String::new();
            sock.read_to_string(&mut out).await.unwrap();
            let (head, body) = out.split_once("\r\n\r\n").unwrap();
            (head.to_ascii_lowercase(), body.to_string())
        }
    };
    let (head, body) = call("ListTables", "{}").await;
    assert!(head.starts_with("http/1.1 200"));
    assert!(head.contains("content-type: application/x-amz-json-1.0"));
    let crc = head
        .lines()
        .find_map(|l| l.strip_prefix("x-amz-crc32: "))
        .expect("crc header");
    assert_eq!(
        crc.trim().parse::<u32>().unwrap(),
        crc32fast::hash(body.as_bytes())
    );
    assert!(head.contains("x-amzn-requestid: "));

    let (head, body) = call("PutItem", "{not json").await;
    assert!(head.starts_with("http/1.1 400"));
    assert!(
        body.contains("com.amazon.coral.service#SerializationException"),
        "{body}"
    );
    let (_, body) = call("FlyToTheMoon", "{}").await;
    assert!(
        body.contains("com.amazon.coral.service#UnknownOperationException"),
        "{body}"
    );
    let (_, body) = call("DescribeTable", r#"{"TableName":"nope"}"#).await;
    assert!(
        body.contains("com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"),
        "{body}"
    );
    let (_, body) = call("CreateTable", r#"{"TableName":"x"}"#).await;
    assert!(
        body.contains("com.amazon.coral.validate#ValidationException"),
        "{body}"
    );
    srv.stop().await;
}

/// What DynamoDB answers outside its operations, as clients and browsers see it: request ids
/// of 52 upper-case characters, `GET /` health, CORS, a JSON body without a target, a body
/// that is not JSON, and type errors named the way DynamoDB's deserializer names them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_edges_answer_as_dynamodb_does() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = TestServer::start().await;
    let addr = srv.url.trim_start_matches("http://").to_string();
    let raw = |req: String| {
        let addr = addr.clone();
        async move {
            let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
            sock.write_all(req.as_bytes()).await.unwrap();
            let mut out = String::new();
            sock.read_to_string(&mut out).await.unwrap();
            let (head, body) = out.split_once("\r\n\r\n").unwrap();
            // Header names lower-cased, values as sent.
            let head: Vec<String> = head
                .lines()
                .map(|l| match l.split_once(": ") {
                    Some((k, v)) => format!("{}: {v}", k.to_ascii_lowercase()),
                    None => l.to_ascii_lowercase(),
                })
                .collect();
            (head.join("\n"), body.to_string())
        }
    };
    let post = |headers: &str, body: &str| {
        format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let request_id = |head: &str| -> String {
        head.lines()
            .find_map(|l| l.strip_prefix("x-amzn-requestid: "))
            .expect("request id")
            .trim()
            .to_string()
    };

    let (head, body) = raw(post(
        "X-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Type: application/x-amz-json-1.0\r\n",
        "{}",
    ))
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let id = request_id(&head);
    assert_eq!(id.len(), 52, "{id}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()),
        "{id}"
    );
    assert_eq!(body, r#"{"TableNames":[]}"#);
    // DynamoDB names itself in a Server header.
    assert!(head.contains("\nserver: Server"), "{head}");

    let (head, body) = raw(format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    ))
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, "healthy: dynamodb.us-east-1.amazonaws.com ");

    let (head, body) = raw(format!(
        "OPTIONS / HTTP/1.1\r\nHost: {addr}\r\nOrigin: https://app.example\r\nAccess-Control-Request-Headers: a, b\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"
    ))
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    assert!(
        head.contains("access-control-allow-headers: a, b"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-methods: POST"),
        "{head}"
    );
    assert!(head.contains("access-control-max-age: 172800"), "{head}");
    assert_eq!(body, "");

    // DynamoDB's request limit is 16 MB: one byte more is 413, 16 MB itself is read (and
    // here, not being JSON, refused as such).
    let target = "X-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Type: application/x-amz-json-1.0\r\n";
    let (head, _) = raw(post(target, &"a".repeat(16 * 1024 * 1024 + 1))).await;
    assert!(head.starts_with("http/1.1 413"), "{head}");
    // Its body comes chunked, as DynamoDB sends it.
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    let (head, body) = raw(post(target, &"a".repeat(16 * 1024 * 1024))).await;
    assert!(head.starts_with("http/1.1 400"), "{head}");
    assert!(body.contains("SerializationException"), "{body}");
    // Headers and request line are limited to 16 KB: a bare 400, before the body is read.
    let extra = |n: usize| {
        format!(
            "{target}X-Pad1: {}\r\nX-Pad2: {}\r\n",
            "x".repeat(n),
            "y".repeat(n)
        )
    };
    let (head, body) = raw(post(&extra(1024), "{}")).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, r#"{"TableNames":[]}"#);
    let (head, body) = raw(post(&extra(8192), "{}")).await;
    assert!(head.starts_with("http/1.1 400"), "{head}");
    assert!(body.contains("headers larger than 16384 bytes"), "{body}");
    let (head, body) = raw(format!(
        "POST /{} HTTP/1.1\r\nHost: {addr}\r\n{target}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}",
        "x".repeat(17_000)
    ))
    .await;
    assert!(head.starts_with("http/1.1 400"), "{head}");
    assert!(body.contains("line larger than 16384 bytes"), "{body}");

    let (head, body) = raw(post("Content-Type: application/json\r\n", "{}")).await;
    assert!(head.starts_with("http/1.1 400"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(
        body,
        r#"{"__type":"com.amazon.coral.service#UnknownOperationException"}"#
    );
    let (_, body) = raw(post("Content-Type: application/x-amz-json-1.0\r\n", "hi")).await;
    assert_eq!(
        body,
        r#"{"__type":"com.amazon.coral.service#SerializationException"}"#
    );
    // Without a content type: a wrong target, then an empty body, in application/json.
    let (head, body) = raw(post("X-Amz-Target: DynamoDB_20120810.ListTable\r\n", "")).await;
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(
        body,
        r#"{"__type":"com.amazon.coral.service#UnknownOperationException"}"#
    );
    let (head, body) = raw(post("X-Amz-Target: DynamoDB_20120810.ListTables\r\n", "")).await;
    assert!(head.starts_with("http/1.1 400"), "{head}");
    assert_eq!(
        body,
        r#"{"__type":"com.amazon.coral.service#SerializationException"}"#
    );
    let (head, body) = raw(post(
        "X-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Type: application/x-amz-json-1.0\r\nOrigin: https://app.example\r\n",
        r#"{"Limit":"23"}"#,
    ))
    .await;
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    assert!(
        head.contains("access-control-expose-headers: x-amzn-RequestId,"),
        "{head}"
    );
    assert_eq!(
        body,
        r#"{"Message":"STRING_VALUE cannot be converted to Integer","__type":"com.amazon.coral.service#SerializationException"}"#
    );
    // A health probe from a browser is readable by it too.
    let (head, _) = raw(format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nOrigin: https://app.example\r\nConnection: close\r\n\r\n"
    ))
    .await;
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    let (_, body) = raw(post(
        "X-Amz-Target: DynamoDB_20120810.PutItem\r\nContent-Type: application/x-amz-json-1.0\r\n",
        r#"{"TableName":"a;"}"#,
    ))
    .await;
    assert!(
        body.contains("3 validation errors detected: ")
            && body.contains(
                "Value null at 'item' failed to satisfy constraint: Member must not be null"
            ),
        "{body}"
    );
    srv.stop().await;
}

fn client_with(url: &str, key: &str, secret: &str) -> Client {
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            key, secret, None, None, "static",
        ))
        .build();
    Client::from_conf(conf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_is_verified_for_dynamodb_when_configured() {
    let srv = TestServer::with(common::Options {
        credentials: Some("AKIDGOOD:goodsecret".parse().unwrap()),
        ..Default::default()
    })
    .await;
    let good = client_with(&srv.url, "AKIDGOOD", "goodsecret");
    assert!(
        good.list_tables()
            .send()
            .await
            .unwrap()
            .table_names()
            .is_empty()
    );
    let e = client_with(&srv.url, "AKIDGOOD", "wrong")
        .list_tables()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(e.code(), Some("InvalidSignatureException"));
    let e = client_with(&srv.url, "AKIDOTHER", "goodsecret")
        .list_tables()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(e.code(), Some("UnrecognizedClientException"));
    srv.stop().await;
}

/// A table with a local secondary index: writes asked for `ReturnItemCollectionMetrics=SIZE`
/// come back with the item collection's key and size estimate, which the SDK parses; a Query
/// whose key condition DynamoDB would refuse gets DynamoDB's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_item_collection_metrics_and_key_condition_errors() {
    use aws_sdk_dynamodb::types::{LocalSecondaryIndex, ReturnItemCollectionMetrics};
    let srv = TestServer::start().await;
    let c = client(&srv.url).await;
    let def = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    c.create_table()
        .table_name("threads")
        .attribute_definitions(def("forum"))
        .attribute_definitions(def("subject"))
        .attribute_definitions(def("last_post"))
        .key_schema(key("forum", KeyType::Hash))
        .key_schema(key("subject", KeyType::Range))
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name("by-last-post")
                .key_schema(key("forum", KeyType::Hash))
                .key_schema(key("last_post", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let put = c
        .put_item()
        .table_name("threads")
        .item("forum", s("rust"))
        .item("subject", s("lifetimes"))
        .item("last_post", s("2026-12-03"))
        .return_item_collection_metrics(ReturnItemCollectionMetrics::Size)
        .send()
        .await
        .unwrap();
    let m = put
        .item_collection_metrics()
        .expect("ItemCollectionMetrics");
    assert_eq!(
        m.item_collection_key().unwrap().get("forum"),
        Some(&s("rust"))
    );
    assert_eq!(m.size_estimate_range_gb(), [0.0, 1.0]);
    let plain = c
        .put_item()
        .table_name("threads")
        .item("forum", s("rust"))
        .item("subject", s("traits"))
        .send()
        .await
        .unwrap();
    assert!(plain.item_collection_metrics().is_none());

    let e = c
        .query()
        .table_name("threads")
        .key_condition_expression("forum = :f OR subject = :f")
        .expression_attribute_values(":f", s("rust"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ValidationException"));
    assert_eq!(
        e.message(),
        Some("Invalid operator used in KeyConditionExpression: OR")
    );
    let e = c
        .query()
        .table_name("threads")
        .key_condition_expression("forum = :f AND subject <> :f")
        .expression_attribute_values(":f", s("rust"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        e.message(),
        Some("Invalid operator used in KeyConditionExpression: <>")
    );
}

/// Compressed requests and responses, as DynamoDB handles them: a gzip or deflate body is
/// read once decoded, a corrupt one is a 500 `InternalServerError`, and an answer over 4 KB
/// comes back in the coding `Accept-Encoding` asks for, its `x-amz-crc32` that of the bytes
/// sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_requests_and_responses_as_dynamodb_handles_them() {
    use std::io::{Read, Write};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = TestServer::start().await;
    let c = client(&srv.url).await;
    common::pk_table(&c, "zip").send().await.unwrap();
    let addr = srv.url.trim_start_matches("http://").to_string();
    // (head, body bytes) of one request on its own connection.
    let raw = |op: &str, headers: &str, body: Vec<u8>| {
        let mut req = format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: DynamoDB_20120810.{op}\r\nContent-Type: application/x-amz-json-1.0\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend(body);
        let addr = addr.clone();
        async move {
            let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
            sock.write_all(&req).await.unwrap();
            let mut out = Vec::new();
            sock.read_to_end(&mut out).await.unwrap();
            let at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            let head = String::from_utf8_lossy(&out[..at]).to_ascii_lowercase();
            (head, out[at + 4..].to_vec())
        }
    };
    let gzip = |b: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    let put = br#"{"TableName":"zip","Item":{"pk":{"S":"z1"},"v":{"S":"packed"}}}"#;
    let (head, _) = raw("PutItem", "Content-Encoding: gzip\r\n", gzip(put)).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let got = c
        .get_item()
        .table_name("zip")
        .key("pk", s("z1"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.item().unwrap()["v"], s("packed"));
    // Not deflate at all: refused, nothing written.
    let bad = br#"{"TableName":"zip","Item":{"pk":{"S":"z2"}}}"#.to_vec();
    let (head, body) = raw("PutItem", "Content-Encoding: deflate\r\n", bad).await;
    assert!(head.starts_with("http/1.1 500"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("InternalServerError"));
    let (head, _) = raw("PutItem", "Content-Encoding: br\r\n", put.to_vec()).await;
    assert!(head.starts_with("http/1.1 500"), "{head}");
    let none = c
        .get_item()
        .table_name("zip")
        .key("pk", s("z2"))
        .send()
        .await
        .unwrap();
    assert!(none.item().is_none());

    // A 6 KB item: its GetItem answer is compressed when asked for, and only then.
    c.put_item()
        .table_name("zip")
        .item("pk", s("big"))
        .item("v", s(&"x".repeat(6000)))
        .send()
        .await
        .unwrap();
    let get = br#"{"TableName":"zip","Key":{"pk":{"S":"big"}}}"#.to_vec();
    let (head, body) = raw(
        "GetItem",
        "Accept-Encoding: br, gzip;q=0.5\r\n",
        get.clone(),
    )
    .await;
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let crc = head
        .lines()
        .find_map(|l| l.strip_prefix("x-amz-crc32: "))
        .unwrap();
    assert_eq!(crc.trim(), crc32fast::hash(&body).to_string());
    assert!(body.len() < 1000, "compressed to {} bytes", body.len());
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains(&"x".repeat(6000)), "{text:.80}");
    let (head, body) = raw("GetItem", "Accept-Encoding: identity\r\n", get).await;
    assert!(!head.contains("content-encoding"), "{head}");
    assert!(body.len() > 6000);
    srv.stop().await;
}
