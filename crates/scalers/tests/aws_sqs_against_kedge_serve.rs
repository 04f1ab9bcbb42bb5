//! The `aws-sqs-queue` trigger against a real SQS endpoint: an in-process `kedge serve`
//! gateway on a free port. The scaler reads the three `ApproximateNumberOf*` attributes
//! through aws-sdk-sqs, exactly as it would against AWS.

use std::collections::BTreeMap;
use std::sync::Arc;

use clock::{Clock, SystemClock};
use scalers::{ResolvedAuth, build_scaler};

struct Server {
    url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start() -> Server {
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
    Server {
        url: format!("http://{addr}"),
        _stop: tx,
    }
}

fn trigger(meta: &[(&str, &str)]) -> model::keda::Trigger {
    model::keda::Trigger {
        trigger_type: "aws-sqs-queue".into(),
        name: None,
        metadata: meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        authentication_ref: None,
        metric_type: None,
        use_cached_metrics: false,
    }
}

fn static_keys() -> ResolvedAuth {
    let mut params = BTreeMap::new();
    params.insert("awsAccessKeyID".to_string(), "test".to_string());
    params.insert("awsSecretAccessKey".to_string(), "test".to_string());
    ResolvedAuth {
        params,
        ..Default::default()
    }
}

async fn sqs_client(url: &str) -> aws_sdk_sqs::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "t", "t", None, None, "t",
        ))
        .load()
        .await;
    aws_sdk_sqs::Client::new(&conf)
}

#[tokio::test]
async fn queue_length_counts_visible_and_in_flight_not_delayed_by_default() {
    let s = start().await;
    let c = sqs_client(&s.url).await;
    let url = c
        .create_queue()
        .queue_name("payments")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let none = |_: &str| None;
    let scaler = build_scaler(
        &trigger(&[
            ("queueURL", &url),
            ("queueLength", "2"),
            ("awsRegion", "us-east-1"),
            ("awsEndpoint", &s.url),
        ]),
        &static_keys(),
        &none,
    )
    .expect("scaler");
    let now = SystemClock.now();
    let empty = scaler.get_metric_and_activity(now).await.unwrap();
    assert_eq!(empty.value, 0.0);
    assert!(
        !empty.active,
        "activationQueueLength 0: an empty queue is inactive"
    );

    for i in 0..5 {
        c.send_message()
            .queue_url(&url)
            .message_body(format!("m{i}"))
            .send()
            .await
            .unwrap();
    }
    c.send_message()
        .queue_url(&url)
        .message_body("later")
        .delay_seconds(600)
        .send()
        .await
        .unwrap();
    // Two in flight.
    c.receive_message()
        .queue_url(&url)
        .max_number_of_messages(2)
        .send()
        .await
        .unwrap();
    let m = scaler.get_metric_and_activity(now).await.unwrap();
    assert_eq!(
        m.value, 5.0,
        "3 visible + 2 in flight (scaleOnInFlight), delayed not counted"
    );
    assert!(m.active);

    let with_delayed = build_scaler(
        &trigger(&[
            ("queueURL", &url),
            ("awsRegion", "us-east-1"),
            ("awsEndpoint", &s.url),
            ("scaleOnInFlight", "false"),
            ("scaleOnDelayed", "true"),
        ]),
        &static_keys(),
        &none,
    )
    .unwrap();
    let m = with_delayed.get_metric_and_activity(now).await.unwrap();
    assert_eq!(m.value, 4.0, "3 visible + 1 delayed, in flight not counted");
}

#[tokio::test]
async fn a_missing_queue_is_a_scaler_error_not_zero() {
    let s = start().await;
    let none = |_: &str| None;
    let url = format!("{}/000000000000/does-not-exist", s.url);
    let scaler = build_scaler(
        &trigger(&[
            ("queueURL", &url),
            ("awsRegion", "us-east-1"),
            ("awsEndpoint", &s.url),
        ]),
        &static_keys(),
        &none,
    )
    .unwrap();
    let err = scaler
        .get_metric_and_activity(SystemClock.now())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("NonExistentQueue") || err.to_string().contains("does not exist"),
        "{err}"
    );
}
