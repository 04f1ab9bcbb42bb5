//! A real gateway on a free loopback port, in-process, for client tests.
#![allow(dead_code)]

use std::sync::Arc;

use clock::{Clock, ManualClock, SystemClock};

pub struct TestServer {
    pub url: String,
    pub state: Arc<gateway::AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

pub struct Options {
    pub clock: Option<ManualClock>,
    pub credentials: Option<gateway::sigv4::Credentials>,
    pub durable: bool,
    pub client_timeout: Option<std::time::Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clock: None,
            credentials: None,
            durable: true,
            client_timeout: gateway::Config::default().client_timeout,
        }
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::with(Options::default()).await
    }

    pub async fn with(o: Options) -> TestServer {
        let clock: Arc<dyn Clock> = match o.clock {
            Some(c) => Arc::new(c),
            None => Arc::new(SystemClock),
        };
        let dir = o.durable.then(|| tempfile::tempdir().expect("tempdir"));
        let durability = match &dir {
            Some(d) => store::Durability::Disk(d.path().to_path_buf()),
            None => store::Durability::InMemory,
        };
        let store = store::Store::open(&durability, clock).expect("open store");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (state, stop_tx) = gateway::AppState::new(
            store,
            gateway::Config {
                credentials: o.credentials,
                region: "us-east-1".into(),
                client_timeout: o.client_timeout,
            },
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let task = tokio::spawn(async move {
            gateway::serve(
                listener,
                st,
                async {
                    let _ = rx.await;
                },
                stop_tx,
            )
            .await
            .expect("serve");
        });
        TestServer {
            url: format!("http://{addr}"),
            state,
            stop: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

pub async fn sdk_config(url: &str, key: &str, secret: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            key, secret, None, None, "test",
        ))
        .load()
        .await
}

pub async fn sqs(url: &str) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk_config(url, "AKIDTEST", "secret").await)
}

/// An aws-sdk-dynamodb client for `url` with static test credentials.
pub fn dynamodb(url: &str) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// A DynamoDB string value.
pub fn s(v: &str) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::S(v.to_string())
}

/// A DynamoDB number value.
pub fn n(v: &str) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::N(v.to_string())
}

/// A CreateTable request for `name` keyed by a string `pk`, billed per request; callers add
/// what their table needs and send it.
pub fn pk_table(
    c: &aws_sdk_dynamodb::Client,
    name: &str,
) -> aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    c.create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
}
