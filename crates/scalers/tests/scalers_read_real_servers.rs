//! Each scaler against a real server: redis-server, PostgreSQL and Prometheus (Debian
//! packages started by `common`), and a real HTTP listener for metrics-api.

mod common;

use std::collections::BTreeMap;

use autoscale::{Autoscaler, Config, Observation, Scaler};
use clock::Timestamp;
use model::keda::{ScaledObject, Trigger};
use model::manifest::parse_documents;
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

async fn measure(s: &dyn Scaler) -> (f64, bool) {
    let m = s
        .get_metric_and_activity(Timestamp::from_secs(1_700_000_000))
        .await
        .unwrap_or_else(|e| panic!("scaler failed: {e}"));
    (m.value, m.active)
}

#[tokio::test]
async fn redis_list_length() {
    let Some(server) = common::redis() else {
        return;
    };
    let port = server.port.to_string();
    let cli = common::redis_cli();
    let t = trigger(
        "redis",
        &[
            ("address", format!("127.0.0.1:{port}")),
            ("listName", "jobs".into()),
            ("listLength", "2".into()),
            ("activationListLength", "3".into()),
        ],
    );
    let s = build_scaler(&t, &ResolvedAuth::default(), &no_env).unwrap();
    assert_eq!(measure(s.as_ref()).await, (0.0, false));
    common::run(&cli, &["-p", &port, "RPUSH", "jobs", "a", "b", "c"]);
    // 3 is not above activationListLength 3.
    assert_eq!(measure(s.as_ref()).await, (3.0, false));
    common::run(&cli, &["-p", &port, "RPUSH", "jobs", "d"]);
    assert_eq!(measure(s.as_ref()).await, (4.0, true));

    // The whole path: a ScaledObject with this trigger scales 0 → 1 → ⌈4/2⌉ = 2.
    let y = format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: r\nspec:\n  scaleTargetRef:\n    name: w\n  triggers:\n  - type: redis\n    metadata:\n      address: 127.0.0.1:{port}\n      listName: jobs\n      listLength: \"2\"\n"
    );
    let so: ScaledObject = parse_documents(&y).unwrap()[0].decode().unwrap();
    let scaler = build_scaler(&so.spec.triggers[0], &ResolvedAuth::default(), &no_env).unwrap();
    let mut a = Autoscaler::new(Config::from_scaled_object(&so).unwrap(), Timestamp::ZERO);
    let mut current = 0;
    for secs in [0, 15] {
        let now = Timestamp::from_secs(secs);
        let r = scaler
            .get_metric_and_activity(now)
            .await
            .map_err(|e| e.to_string());
        let d = a.step(
            now,
            &Observation {
                current_replicas: current,
                ready_replicas: None,
                triggers: vec![r],
            },
        );
        current = d.desired_replicas;
    }
    assert_eq!(current, 2);
}

#[tokio::test]
async fn redis_streams_length_pending_and_lag() {
    let Some(server) = common::redis() else {
        return;
    };
    let port = server.port.to_string();
    let cli = common::redis_cli();
    for i in 0..5 {
        common::run(
            &cli,
            &["-p", &port, "XADD", "events", "*", "n", &i.to_string()],
        );
    }
    common::run(
        &cli,
        &["-p", &port, "XGROUP", "CREATE", "events", "workers", "0"],
    );
    // A consumer reads 3 entries and acknowledges none: 3 pending, lag 2.
    common::run(
        &cli,
        &[
            "-p",
            &port,
            "XREADGROUP",
            "GROUP",
            "workers",
            "c1",
            "COUNT",
            "3",
            "STREAMS",
            "events",
            ">",
        ],
    );
    let addr = format!("127.0.0.1:{port}");
    let base = |extra: &[(&str, &str)]| {
        let mut md = vec![("address", addr.clone()), ("stream", "events".to_string())];
        md.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        trigger("redis-streams", &md)
    };
    let auth = ResolvedAuth::default();
    let xlen = build_scaler(&base(&[]), &auth, &no_env).unwrap();
    assert_eq!(measure(xlen.as_ref()).await, (5.0, true));
    let pending = build_scaler(&base(&[("consumerGroup", "workers")]), &auth, &no_env).unwrap();
    assert_eq!(measure(pending.as_ref()).await, (3.0, true));
    let lag = build_scaler(
        &base(&[
            ("consumerGroup", "workers"),
            ("lagCount", "1"),
            ("activationLagCount", "2"),
        ]),
        &auth,
        &no_env,
    )
    .unwrap();
    // lag 2 is not above activationLagCount 2.
    assert_eq!(measure(lag.as_ref()).await, (2.0, false));
    let missing = build_scaler(
        &base(&[("consumerGroup", "nobody"), ("lagCount", "1")]),
        &auth,
        &no_env,
    )
    .unwrap();
    let e = missing
        .get_metric_and_activity(Timestamp::ZERO)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[tokio::test]
async fn redis_down_is_a_connect_error() {
    let t = trigger(
        "redis",
        &[("address", "127.0.0.1:1".into()), ("listName", "l".into())],
    );
    let s = build_scaler(&t, &ResolvedAuth::default(), &no_env).unwrap();
    let e = s
        .get_metric_and_activity(Timestamp::ZERO)
        .await
        .unwrap_err();
    assert_eq!(e.metric_label(), "connect", "{e}");
}

#[tokio::test]
async fn postgresql_query_value() {
    let Some(server) = common::postgres() else {
        return;
    };
    let port = server.port.to_string();
    let psql = common::psql();
    common::run(
        &psql,
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "CREATE TABLE jobs (id serial, state text); INSERT INTO jobs (state) SELECT 'queued' FROM generate_series(1, 7); INSERT INTO jobs (state) VALUES ('done');",
        ],
    );
    let md = |query: &str| {
        vec![
            ("host", "127.0.0.1".to_string()),
            ("port", port.clone()),
            ("userName", "postgres".into()),
            ("dbName", "postgres".into()),
            ("sslmode", "disable".into()),
            ("query", query.to_string()),
            ("targetQueryValue", "2".into()),
            ("activationTargetQueryValue", "7".into()),
        ]
    };
    let auth = ResolvedAuth::default();
    let s = build_scaler(
        &trigger(
            "postgresql",
            &md("SELECT count(*) FROM jobs WHERE state = 'queued'"),
        ),
        &auth,
        &no_env,
    )
    .unwrap();
    assert_eq!(measure(s.as_ref()).await, (7.0, false));
    common::run(
        &psql,
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "-c",
            "INSERT INTO jobs (state) VALUES ('queued')",
        ],
    );
    assert_eq!(measure(s.as_ref()).await, (8.0, true));
    // numeric and NULL results
    let s = build_scaler(
        &trigger("postgresql", &md("SELECT 2.5::numeric")),
        &auth,
        &no_env,
    )
    .unwrap();
    assert_eq!(measure(s.as_ref()).await.0, 2.5);
    let s = build_scaler(
        &trigger("postgresql", &md("SELECT sum(id) FROM jobs WHERE false")),
        &auth,
        &no_env,
    )
    .unwrap();
    assert_eq!(measure(s.as_ref()).await.0, 0.0);
    // a broken query is a query error, not a zero
    let s = build_scaler(
        &trigger("postgresql", &md("SELECT count(*) FROM missing_table")),
        &auth,
        &no_env,
    )
    .unwrap();
    let e = s
        .get_metric_and_activity(Timestamp::ZERO)
        .await
        .unwrap_err();
    assert_eq!(e.metric_label(), "query", "{e}");

    // The connection string can come from the TriggerAuthentication (`connection`).
    let mut params = BTreeMap::new();
    params.insert(
        "connection".to_string(),
        format!("postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable"),
    );
    let t = trigger(
        "postgresql",
        &[
            ("query", "SELECT 3".into()),
            ("targetQueryValue", "1".into()),
        ],
    );
    let s = build_scaler(
        &t,
        &ResolvedAuth {
            params,
            ..Default::default()
        },
        &no_env,
    )
    .unwrap();
    assert_eq!(measure(s.as_ref()).await, (3.0, true));
}

#[tokio::test]
async fn prometheus_instant_query() {
    let Some(server) = common::prometheus() else {
        return;
    };
    let addr = format!("http://127.0.0.1:{}", server.port);
    let md = |q: &str, ignore: &str| {
        vec![
            ("serverAddress", addr.clone()),
            ("query", q.to_string()),
            ("threshold", "10".into()),
            ("activationThreshold", "5".into()),
            ("ignoreNullValues", ignore.to_string()),
        ]
    };
    let auth = ResolvedAuth::default();
    let s = build_scaler(
        &trigger("prometheus", &md("vector(42)", "true")),
        &auth,
        &no_env,
    )
    .unwrap();
    assert_eq!(measure(s.as_ref()).await, (42.0, true));
    let s = build_scaler(
        &trigger("prometheus", &md("scalar(vector(3))", "true")),
        &auth,
        &no_env,
    )
    .unwrap();
    assert_eq!(measure(s.as_ref()).await, (3.0, false));
    // Empty result: 0 with ignoreNullValues, an error without.
    let s = build_scaler(
        &trigger("prometheus", &md("up{job=\"absent\"}", "true")),
        &auth,
        &no_env,
    )
    .unwrap();
    assert_eq!(measure(s.as_ref()).await, (0.0, false));
    let s = build_scaler(
        &trigger("prometheus", &md("up{job=\"absent\"}", "false")),
        &auth,
        &no_env,
    )
    .unwrap();
    assert!(s.get_metric_and_activity(Timestamp::ZERO).await.is_err());
    // Two series: KEDA refuses to pick one.
    let two = "vector(1) or label_replace(vector(2), \"x\", \"y\", \"\", \"\")";
    let s = build_scaler(&trigger("prometheus", &md(two, "true")), &auth, &no_env).unwrap();
    let e = s
        .get_metric_and_activity(Timestamp::from_secs(1_700_000_000))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("multiple elements"), "{e}");
    // A bad query is the server's error, passed through.
    let s = build_scaler(&trigger("prometheus", &md("sum(", "true")), &auth, &no_env).unwrap();
    assert_eq!(
        s.get_metric_and_activity(Timestamp::ZERO)
            .await
            .unwrap_err()
            .metric_label(),
        "query"
    );
}

/// A one-shot HTTP server answering every request with `body` and recording request heads.
async fn http_server(body: &'static str) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = vec![0u8; 4096];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        }
    });
    (format!("http://{addr}"), rx)
}

#[tokio::test]
async fn metrics_api_json_value_location_and_auth() {
    let (url, mut requests) =
        http_server(r#"{"components":{"worker":{"tasks":"12"}},"list":[1,2,3]}"#).await;
    let mut t = trigger(
        "metrics-api",
        &[
            ("url", format!("{url}/stats")),
            ("valueLocation", "components.worker.tasks".into()),
            ("targetValue", "4".into()),
            ("activationTargetValue", "12".into()),
            ("authMode", "bearer".into()),
        ],
    );
    t.authentication_ref = Some(model::keda::AuthenticationRef {
        name: "a".into(),
        kind: None,
    });
    let mut params = BTreeMap::new();
    params.insert("token".to_string(), "s3cret".to_string());
    let s = build_scaler(
        &t,
        &ResolvedAuth {
            params,
            ..Default::default()
        },
        &no_env,
    )
    .unwrap();
    assert_eq!(measure(s.as_ref()).await, (12.0, false));
    let head = requests.recv().await.unwrap();
    assert!(head.starts_with("GET /stats HTTP/1.1"), "{head}");
    assert!(
        head.to_lowercase().contains("authorization: bearer s3cret"),
        "{head}"
    );

    let t = trigger(
        "metrics-api",
        &[
            ("url", url.clone()),
            ("valueLocation", "list.#".into()),
            ("targetValue", "1".into()),
        ],
    );
    let s = build_scaler(&t, &ResolvedAuth::default(), &no_env).unwrap();
    assert_eq!(measure(s.as_ref()).await, (3.0, true));

    let t = trigger(
        "metrics-api",
        &[
            ("url", url),
            ("valueLocation", "nope".into()),
            ("targetValue", "1".into()),
        ],
    );
    let s = build_scaler(&t, &ResolvedAuth::default(), &no_env).unwrap();
    assert_eq!(
        s.get_metric_and_activity(Timestamp::ZERO)
            .await
            .unwrap_err()
            .metric_label(),
        "parse"
    );
}
