//! The `aws-dynamodb` trigger against a real DynamoDB endpoint: an in-process `kedge serve`
//! gateway on a free port; the scaler runs one `Query` with `Select=COUNT` semantics through
//! aws-sdk-dynamodb, exactly as it would against AWS.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use clock::{Clock, SystemClock, Timestamp};
use scalers::{ResolvedAuth, build_scaler};

async fn start() -> (String, tokio::sync::oneshot::Sender<()>) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = store::Store::open(&store::Durability::InMemory, clock).expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (state, stop_tx) = gateway::AppState::new(store, gateway::Config::default());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = gateway::serve(
            listener,
            state,
            async {
                let _ = rx.await;
            },
            stop_tx,
        )
        .await;
    });
    (format!("http://{addr}"), tx)
}

#[tokio::test]
async fn query_count_with_key_condition_and_filter() {
    let (url, _stop) = start().await;
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&url)
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "t", "t", None, None, "t",
        ))
        .load()
        .await;
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    ddb.create_table()
        .table_name("jobs")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("state")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::N)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("state")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Range)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    for (state, id, prio) in [
        ("queued", 1, 1),
        ("queued", 2, 5),
        ("queued", 3, 7),
        ("done", 4, 9),
    ] {
        ddb.put_item()
            .table_name("jobs")
            .item("state", AttributeValue::S(state.into()))
            .item("id", AttributeValue::N(id.to_string()))
            .item("prio", AttributeValue::N(prio.to_string()))
            .send()
            .await
            .unwrap();
    }
    let mut params = BTreeMap::new();
    params.insert("awsAccessKeyID".to_string(), "test".to_string());
    params.insert("awsSecretAccessKey".to_string(), "test".to_string());
    let auth = ResolvedAuth {
        params,
        ..Default::default()
    };
    let trigger = |extra: &[(&str, &str)]| {
        let mut md: BTreeMap<String, String> = [
            ("tableName", "jobs"),
            ("awsRegion", "eu-west-1"),
            ("awsEndpoint", url.as_str()),
            ("keyConditionExpression", "#k = :v"),
            ("expressionAttributeNames", r##"{"#k": "state"}"##),
            ("expressionAttributeValues", r#"{":v": {"S": "queued"}}"#),
            ("targetValue", "2"),
            ("activationTargetValue", "2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            md.insert(k.to_string(), v.to_string());
        }
        model::keda::Trigger {
            trigger_type: "aws-dynamodb".into(),
            name: None,
            metadata: md,
            authentication_ref: None,
            metric_type: None,
            use_cached_metrics: false,
        }
    };
    let all = build_scaler(&trigger(&[]), &auth, &|_| None).unwrap();
    let m = all
        .get_metric_and_activity(Timestamp::from_secs(1))
        .await
        .unwrap();
    assert_eq!((m.value, m.active), (3.0, true));
    let filtered = build_scaler(
        &trigger(&[
            ("filterExpression", "prio > :p"),
            (
                "expressionAttributeValues",
                r#"{":v": {"S": "queued"}, ":p": {"N": "4"}}"#,
            ),
        ]),
        &auth,
        &|_| None,
    )
    .unwrap();
    let m = filtered
        .get_metric_and_activity(Timestamp::from_secs(1))
        .await
        .unwrap();
    // Two queued items have prio > 4: not above activationTargetValue 2.
    assert_eq!((m.value, m.active), (2.0, false));
    let missing = build_scaler(&trigger(&[("tableName", "absent")]), &auth, &|_| None).unwrap();
    let e = missing
        .get_metric_and_activity(Timestamp::from_secs(1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ResourceNotFound"), "{e}");
}
