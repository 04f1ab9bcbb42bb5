//! aws-sdk-dynamodb's PartiQL operations (ExecuteStatement, BatchExecuteStatement,
//! ExecuteTransaction) and DescribeLimits / DescribeEndpoints against an in-process gateway:
//! the answers and the typed errors the SDK maps DynamoDB's codes to.

mod common;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BatchStatementErrorCodeEnum, BatchStatementRequest,
    BillingMode, KeySchemaElement, KeyType, ParameterizedStatement, ScalarAttributeType,
};
use common::{TestServer, n, s};

/// `scores` (pk S, sk N).
async fn create_scores(c: &Client) {
    let def = |name: &str, ty| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ty)
            .build()
            .unwrap()
    };
    let key = |name: &str, ty| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(ty)
            .build()
            .unwrap()
    };
    c.create_table()
        .table_name("scores")
        .attribute_definitions(def("pk", ScalarAttributeType::S))
        .attribute_definitions(def("sk", ScalarAttributeType::N))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
}

fn stmt(text: &str) -> BatchStatementRequest {
    BatchStatementRequest::builder()
        .statement(text)
        .build()
        .unwrap()
}

fn tx(text: &str) -> ParameterizedStatement {
    ParameterizedStatement::builder()
        .statement(text)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_runs_partiql_statements() {
    let srv = TestServer::start().await;
    let c = common::dynamodb(&srv.url);
    create_scores(&c).await;
    for sk in 1..=4 {
        c.execute_statement()
            .statement("INSERT INTO \"scores\" VALUE {'pk': ?, 'sk': ?, 'points': ?}")
            .parameters(s("ann"))
            .parameters(n(&sk.to_string()))
            .parameters(n(&(sk * 10).to_string()))
            .send()
            .await
            .unwrap();
    }
    let dup = c
        .execute_statement()
        .statement("INSERT INTO scores VALUE {'pk': 'ann', 'sk': 1}")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(dup.is_duplicate_item_exception(), "{dup:?}");

    let page = c
        .execute_statement()
        .statement("SELECT sk, points FROM scores WHERE pk = ? AND sk > 1 ORDER BY sk DESC")
        .parameters(s("ann"))
        .limit(2)
        .send()
        .await
        .unwrap();
    let sks: Vec<&AttributeValue> = page.items().iter().map(|i| &i["sk"]).collect();
    assert_eq!(sks, [&n("4"), &n("3")]);
    let token = page
        .next_token()
        .expect("a page ended by Limit has a NextToken");
    let rest = c
        .execute_statement()
        .statement("SELECT sk, points FROM scores WHERE pk = ? AND sk > 1 ORDER BY sk DESC")
        .parameters(s("ann"))
        .next_token(token)
        .send()
        .await
        .unwrap();
    let sks: Vec<&AttributeValue> = rest.items().iter().map(|i| &i["sk"]).collect();
    assert_eq!(sks, [&n("2")]);
    assert!(rest.next_token().is_none());

    let updated = c
        .execute_statement()
        .statement(
            "UPDATE scores SET points = points + 5 SET badges = set_add(badges, <<'gold'>>) WHERE pk = 'ann' AND sk = 1 RETURNING ALL NEW *",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(updated.items()[0]["points"], n("15"));
    assert_eq!(
        updated.items()[0]["badges"],
        AttributeValue::Ss(vec!["gold".into()])
    );
    let missing = c
        .execute_statement()
        .statement("UPDATE scores SET points = 0 WHERE pk = 'bob' AND sk = 1")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        missing.is_conditional_check_failed_exception(),
        "{missing:?}"
    );

    let bad = c
        .execute_statement()
        .statement("SELEKT * FROM scores")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(bad.code(), Some("ValidationException"));
    assert_eq!(
        bad.message(),
        Some("Statement wasn't well formed, can't be processed: Expected data manipulation")
    );
    let nf = c
        .execute_statement()
        .statement("SELECT * FROM nowhere")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(nf.is_resource_not_found_exception(), "{nf:?}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_runs_batches_and_transactions_of_statements() {
    let srv = TestServer::start().await;
    let c = common::dynamodb(&srv.url);
    create_scores(&c).await;
    let out = c
        .batch_execute_statement()
        .statements(stmt(
            "INSERT INTO scores VALUE {'pk': 'a', 'sk': 1, 'points': 1}",
        ))
        .statements(stmt(
            "INSERT INTO scores VALUE {'pk': 'b', 'sk': 1, 'points': 2}",
        ))
        .send()
        .await
        .unwrap();
    assert!(out.responses().iter().all(|r| r.error().is_none()));
    let out = c
        .batch_execute_statement()
        .statements(stmt("INSERT INTO scores VALUE {'pk': 'a', 'sk': 1}"))
        .statements(stmt("INSERT INTO scores VALUE {'pk': 'c', 'sk': 1}"))
        .send()
        .await
        .unwrap();
    let r = out.responses();
    assert_eq!(
        r[0].error().and_then(|e| e.code()),
        Some(&BatchStatementErrorCodeEnum::DuplicateItem)
    );
    assert!(r[1].error().is_none());
    assert_eq!(r[1].table_name(), Some("scores"));
    let out = c
        .batch_execute_statement()
        .statements(stmt("SELECT points FROM scores WHERE pk = 'b' AND sk = 1"))
        .statements(stmt("SELECT * FROM scores WHERE pk = 'b'"))
        .send()
        .await
        .unwrap();
    let r = out.responses();
    assert_eq!(r[0].item().map(|i| &i["points"]), Some(&n("2")));
    assert_eq!(
        r[1].error().and_then(|e| e.code()),
        Some(&BatchStatementErrorCodeEnum::ValidationError)
    );

    let cancelled = c
        .execute_transaction()
        .transact_statements(tx(
            "UPDATE scores SET points = 100 WHERE pk = 'a' AND sk = 1",
        ))
        .transact_statements(tx(
            "DELETE FROM scores WHERE pk = 'b' AND sk = 1 AND points = 99",
        ))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    let aws_sdk_dynamodb::operation::execute_transaction::ExecuteTransactionError::TransactionCanceledException(tc) = cancelled else {
        panic!("not a cancellation: {cancelled:?}");
    };
    let codes: Vec<Option<&str>> = tc.cancellation_reasons().iter().map(|r| r.code()).collect();
    assert_eq!(codes, [Some("None"), Some("ConditionalCheckFailed")]);
    let read = c
        .execute_transaction()
        .transact_statements(tx("SELECT points FROM scores WHERE pk = 'a' AND sk = 1"))
        .transact_statements(tx("SELECT points FROM scores WHERE pk = 'b' AND sk = 1"))
        .send()
        .await
        .unwrap();
    let points: Vec<Option<&AttributeValue>> = read
        .responses()
        .iter()
        .map(|r| r.item().and_then(|i| i.get("points")))
        .collect();
    assert_eq!(
        points,
        [Some(&n("1")), Some(&n("2"))],
        "nothing was applied"
    );
    c.execute_transaction()
        .transact_statements(tx(
            "UPDATE scores SET points = 100 WHERE pk = 'a' AND sk = 1",
        ))
        .transact_statements(tx("DELETE FROM scores WHERE pk = 'b' AND sk = 1"))
        .client_request_token("t-1")
        .send()
        .await
        .unwrap();
    let all = c
        .execute_statement()
        .statement("SELECT pk, points FROM scores")
        .send()
        .await
        .unwrap();
    let mut seen: Vec<(String, String)> = all
        .items()
        .iter()
        .map(|i| {
            (
                i["pk"].as_s().unwrap().clone(),
                i.get("points")
                    .map_or("-".into(), |p| p.as_n().unwrap().clone()),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(seen, [("a".into(), "100".into()), ("c".into(), "-".into())]);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_describes_limits_and_endpoints() {
    let srv = TestServer::start().await;
    let c = common::dynamodb(&srv.url);
    let l = c.describe_limits().send().await.unwrap();
    assert_eq!(l.account_max_read_capacity_units(), Some(80000));
    assert_eq!(l.account_max_write_capacity_units(), Some(80000));
    assert_eq!(l.table_max_read_capacity_units(), Some(40000));
    assert_eq!(l.table_max_write_capacity_units(), Some(40000));
    let e = c.describe_endpoints().send().await.unwrap();
    let host = srv.url.trim_start_matches("http://");
    assert_eq!(e.endpoints().len(), 1);
    assert_eq!(e.endpoints()[0].address(), host);
    assert_eq!(e.endpoints()[0].cache_period_in_minutes(), 1440);
    srv.stop().await;
}
