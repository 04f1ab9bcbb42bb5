//! Triggers that need no server here: cron (pure time maths) and the aws-sqs-queue
//! scaler's settings and value computation (its end-to-end test runs against `kedge serve`).

use std::collections::{BTreeMap, HashMap};

use autoscale::Scaler;
use aws_sdk_sqs::types::QueueAttributeName;
use clock::Timestamp;
use model::keda::Trigger;
use model::keda::triggers::{AwsSqsQueue, TriggerConfig};
use scalers::aws_sqs::{SqsSettings, queue_length};
use scalers::cron::CronScaler;
use scalers::{ResolvedAuth, build_scaler};

fn trigger(ty: &str, md: &[(&str, &str)]) -> Trigger {
    Trigger {
        trigger_type: ty.into(),
        name: None,
        metadata: md
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        authentication_ref: None,
        metric_type: None,
        use_cached_metrics: false,
    }
}

fn cron(tz: &str, start: &str, end: &str) -> CronScaler {
    let t = trigger(
        "cron",
        &[
            ("timezone", tz),
            ("start", start),
            ("end", end),
            ("desiredReplicas", "10"),
        ],
    );
    let TriggerConfig::Cron(c) = TriggerConfig::parse(&t).unwrap() else {
        panic!()
    };
    CronScaler::new(&c).unwrap()
}

/// 2024-01-15 (a Monday) at hh:mm UTC.
fn monday_utc(h: u64, m: u64) -> Timestamp {
    Timestamp::from_secs(1_705_276_800 + h * 3600 + m * 60)
}

#[tokio::test]
async fn cron_window_in_a_time_zone() {
    // 08:00–18:00 Europe/Berlin on weekdays = 07:00–17:00 UTC in January.
    let c = cron("Europe/Berlin", "0 8 * * 1-5", "0 18 * * 1-5");
    let cases = [
        (6, 59, false),
        (7, 0, true),
        (12, 0, true),
        (16, 59, true),
        (17, 0, false),
        (23, 0, false),
    ];
    for (h, m, inside) in cases {
        let s = c.get_metric_and_activity(monday_utc(h, m)).await.unwrap();
        assert_eq!(s.active, inside, "{h:02}:{m:02} UTC");
        assert_eq!(s.value, if inside { 10.0 } else { 1.0 });
    }
    // Weekend: never inside.
    let saturday = Timestamp::from_secs(monday_utc(12, 0).as_secs() + 5 * 86_400);
    assert!(!c.in_window(saturday).unwrap());
}

#[test]
fn cron_rejects_unknown_time_zones() {
    let t = trigger(
        "cron",
        &[
            ("timezone", "Mars/Olympus"),
            ("start", "0 8 * * *"),
            ("end", "0 9 * * *"),
            ("desiredReplicas", "1"),
        ],
    );
    let e = build_scaler(&t, &ResolvedAuth::default(), &|_| None)
        .err()
        .unwrap();
    assert!(e.to_string().contains("Mars/Olympus"), "{e}");
}

fn sqs(md: &[(&str, &str)]) -> AwsSqsQueue {
    let TriggerConfig::AwsSqsQueue(c) =
        TriggerConfig::parse(&trigger("aws-sqs-queue", md)).unwrap()
    else {
        panic!()
    };
    c
}

#[test]
fn sqs_value_counts_visible_in_flight_and_delayed_as_configured() {
    let attrs: HashMap<QueueAttributeName, String> = [
        (
            QueueAttributeName::ApproximateNumberOfMessages,
            "10".to_string(),
        ),
        (
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            "3".to_string(),
        ),
        (
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
            "5".to_string(),
        ),
    ]
    .into_iter()
    .collect();
    let url = ("queueURL", "https://sqs.eu-west-1.amazonaws.com/1/q");
    assert_eq!(queue_length(&sqs(&[url]), &attrs).unwrap(), 13);
    assert_eq!(
        queue_length(&sqs(&[url, ("scaleOnInFlight", "false")]), &attrs).unwrap(),
        10
    );
    assert_eq!(
        queue_length(&sqs(&[url, ("scaleOnDelayed", "true")]), &attrs).unwrap(),
        18
    );
    let bad: HashMap<_, _> = [(
        QueueAttributeName::ApproximateNumberOfMessages,
        "x".to_string(),
    )]
    .into_iter()
    .collect();
    assert!(queue_length(&sqs(&[url]), &bad).is_err());
}

#[test]
fn sqs_settings_resolve_region_endpoint_and_credentials() {
    let env = |k: &str| match k {
        "QUEUE" => Some("http://127.0.0.1:4566/000000000000/jobs".to_string()),
        "KEY_ID" => Some("AKID".to_string()),
        "SECRET" => Some("shh".to_string()),
        _ => None,
    };
    // queueURLFromEnv + awsEndpoint + keys from env.
    let c = sqs(&[
        ("queueURLFromEnv", "QUEUE"),
        ("awsEndpoint", "http://127.0.0.1:4566"),
        ("awsRegion", "eu-central-1"),
        ("awsAccessKeyIDFromEnv", "KEY_ID"),
        ("awsSecretAccessKeyFromEnv", "SECRET"),
    ]);
    let s = SqsSettings::resolve(&c, &ResolvedAuth::default(), &env).unwrap();
    assert_eq!(s.queue_url, "http://127.0.0.1:4566/000000000000/jobs");
    assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:4566"));
    assert_eq!(s.region, "eu-central-1");
    assert_eq!(s.keys.as_ref().unwrap().access_key_id, "AKID");

    // Region from the queue URL; keys from TriggerAuthentication secretTargetRef params.
    let c = sqs(&[("queueURL", "https://sqs.ap-south-1.amazonaws.com/1/q")]);
    let mut params = BTreeMap::new();
    params.insert("awsAccessKeyID".to_string(), "FROMSECRET".to_string());
    params.insert("awsSecretAccessKey".to_string(), "s".to_string());
    params.insert(
        "awsRoleArn".to_string(),
        "arn:aws:iam::1:role/r".to_string(),
    );
    let s = SqsSettings::resolve(
        &c,
        &ResolvedAuth {
            params,
            ..Default::default()
        },
        &|_| None,
    )
    .unwrap();
    assert_eq!(s.region, "ap-south-1");
    assert_eq!(s.keys.as_ref().unwrap().access_key_id, "FROMSECRET");
    assert_eq!(s.role_arn.as_deref(), Some("arn:aws:iam::1:role/r"));
    assert!(
        !format!("{s:?}").contains("\"s\""),
        "secrets must not be printed"
    );

    // podIdentity aws: the default chain (no static keys).
    let c = sqs(&[
        ("queueURL", "https://sqs.us-west-2.amazonaws.com/1/q"),
        ("identityOwner", "operator"),
    ]);
    let auth = ResolvedAuth {
        pod_identity: Some("aws-eks".into()),
        ..Default::default()
    };
    assert_eq!(
        SqsSettings::resolve(&c, &auth, &|_| None).unwrap().keys,
        None
    );

    // queueURLFromEnv naming an unset variable is a configuration error.
    let c = sqs(&[("queueURLFromEnv", "NOPE"), ("awsRegion", "eu-west-1")]);
    let e = SqsSettings::resolve(&c, &ResolvedAuth::default(), &|_| None).unwrap_err();
    assert!(e.to_string().contains("NOPE"), "{e}");
}
