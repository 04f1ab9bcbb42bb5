//! KEDA manifests: the formats, defaults and admission checks `kedge check` relies on.

use model::keda::triggers::{IdentityOwner, TriggerConfig};
use model::keda::{FallbackBehavior, ScaledObject, TriggerAuthentication};
use model::manifest::{check_text, parse_documents};

const SEED: &str = include_str!("fixtures/keda/seed-sqs.yaml");
const FULL: &str = include_str!("fixtures/keda/full.yaml");

fn errors(yaml: &str) -> Vec<String> {
    check_text("t.yaml", yaml)
        .iter()
        .map(|e| e.to_string())
        .collect()
}

/// A minimal valid ScaledObject with `extra` spliced into its spec.
fn so(spec_extra: &str, trigger: &str) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: t\nspec:\n  scaleTargetRef:\n    name: app\n{spec_extra}  triggers:\n{trigger}"
    )
}

const SQS_TRIGGER: &str =
    "  - type: aws-sqs-queue\n    metadata:\n      queueURL: q\n      awsRegion: eu-west-1\n";

#[test]
fn seed_manifests_are_valid_and_typed() {
    assert_eq!(errors(SEED), Vec::<String>::new());
    let docs = parse_documents(SEED).unwrap();
    let auth: TriggerAuthentication = docs[0].decode().unwrap();
    assert_eq!(auth.spec.pod_identity.unwrap().provider, "aws-eks");
    let so: ScaledObject = docs[1].decode().unwrap();
    assert_eq!(so.metadata.namespace.as_deref(), Some("keda-test"));
    assert_eq!(so.spec.scale_target_ref.name, "sqs-app");
    assert_eq!(so.spec.scale_target_ref.kind_or_default(), "Deployment");
    assert_eq!((so.spec.min_replicas(), so.spec.max_replicas()), (1, 2000));
    assert_eq!(so.spec.polling_interval_secs(), 30);
    assert_eq!(so.spec.cooldown_period_secs(), 10);
    let TriggerConfig::AwsSqsQueue(sqs) = TriggerConfig::parse(&so.spec.triggers[0]).unwrap()
    else {
        panic!("expected an aws-sqs-queue trigger");
    };
    assert_eq!(sqs.queue_length, 2);
    assert_eq!(sqs.identity_owner, IdentityOwner::Operator);
    assert_eq!(sqs.aws_region.as_deref(), Some("us-west-2"));
}

#[test]
fn defaults_equal_keda_defaults() {
    let docs = parse_documents(&so("", SQS_TRIGGER)).unwrap();
    let so: ScaledObject = docs[0].decode().unwrap();
    assert_eq!(so.spec.polling_interval_secs(), 30);
    assert_eq!(so.spec.cooldown_period_secs(), 300);
    assert_eq!(so.spec.initial_cooldown_period_secs(), 0);
    assert_eq!(so.spec.min_replicas(), 0);
    assert_eq!(so.spec.max_replicas(), 100);
    assert_eq!(so.spec.idle_replica_count, None);
    assert_eq!(so.polling_interval_ms(), 30_000);
    assert!(!so.event_driven());
    assert!(!so.spec.restore_to_original_replica_count());
}

#[test]
fn every_documented_field_is_accepted() {
    assert_eq!(errors(FULL), Vec::<String>::new());
    let docs = parse_documents(FULL).unwrap();
    let so: ScaledObject = docs[0].decode().unwrap();
    assert_eq!(
        so.spec.fallback.as_ref().unwrap().behavior,
        Some(FallbackBehavior::CurrentReplicasIfHigher)
    );
    assert_eq!(so.spec.triggers.len(), 7);
    assert!(so.spec.restore_to_original_replica_count());
}

#[test]
fn bad_metadata_reports_file_document_and_path() {
    let text = include_str!("fixtures/keda/broken.yaml");
    let errs: Vec<String> = check_text("payments.yaml", text)
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        errs,
        vec![
            r#"payments.yaml[1] spec.triggers[0].metadata.queueLength: expected an integer, got "two""#
        ]
    );
}

#[test]
fn unknown_fields_are_named() {
    let errs = errors(&so("  pollingIntervall: 5\n", SQS_TRIGGER));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("t.yaml[0] spec.pollingIntervall: unknown field"),
        "{errs:?}"
    );
    let errs = errors(&so(
        "  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleUp:\n          window: 3\n",
        SQS_TRIGGER,
    ));
    assert!(
        errs[0].contains(
            "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp.window: unknown field"
        ),
        "{errs:?}"
    );
}

#[test]
fn unsupported_trigger_type_is_named() {
    let errs = errors(&so(
        "",
        "  - type: solace-event-queue\n    metadata:\n      queueName: q\n",
    ));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with(
            "t.yaml[0] spec.triggers[0].type: trigger type \"solace-event-queue\" is not supported"
        ),
        "{errs:?}"
    );
}

#[test]
fn replica_bounds_as_keda_webhook() {
    let e = errors(&so(
        "  minReplicaCount: 5\n  maxReplicaCount: 2\n",
        SQS_TRIGGER,
    ));
    assert!(e.iter().any(|e| e.contains("spec.minReplicaCount: MinReplicaCount=5 must be less than or equal to MaxReplicaCount=2")), "{e:?}");
    let e = errors(&so(
        "  minReplicaCount: 1\n  idleReplicaCount: 1\n",
        SQS_TRIGGER,
    ));
    assert!(
        e.iter().any(|e| e.contains(
            "spec.idleReplicaCount: IdleReplicaCount=1 must be less than MinReplicaCount=1"
        )),
        "{e:?}"
    );
    // idle below min is fine; min == max is fine
    assert!(
        errors(&so(
            "  minReplicaCount: 2\n  idleReplicaCount: 0\n",
            SQS_TRIGGER
        ))
        .is_empty()
    );
    assert!(
        errors(&so(
            "  minReplicaCount: 3\n  maxReplicaCount: 3\n",
            SQS_TRIGGER
        ))
        .is_empty()
    );
    // default max is 100: min 150 without max is an error
    assert!(!errors(&so("  minReplicaCount: 150\n", SQS_TRIGGER)).is_empty());
}

#[test]
fn duplicate_trigger_names_rejected() {
    let t = "  - type: cron\n    name: a\n    metadata:\n      timezone: UTC\n      start: 0 8 * * *\n      end: 0 9 * * *\n      desiredReplicas: \"1\"\n";
    let e = errors(&so("", &format!("{t}{t}")));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("spec.triggers[1].name: triggerName \"a\" is defined multiple times"));
}

#[test]
fn fallback_needs_an_average_value_trigger() {
    let value_trigger = "  - type: aws-sqs-queue\n    metricType: Value\n    metadata:\n      queueURL: q\n      awsRegion: eu-west-1\n";
    let e = errors(&so(
        "  fallback:\n    failureThreshold: 3\n    replicas: 6\n",
        value_trigger,
    ));
    assert!(
        e.iter()
            .any(|e| e.contains("spec.fallback: at least one trigger")),
        "{e:?}"
    );
    assert!(
        errors(&so(
            "  fallback:\n    failureThreshold: 3\n    replicas: 6\n",
            SQS_TRIGGER
        ))
        .is_empty()
    );
    let e = errors(&so(
        "  fallback:\n    failureThreshold: 3\n    replicas: 6\n    behavior: sometimes\n",
        SQS_TRIGGER,
    ));
    assert!(
        e[0].contains("spec.fallback.behavior: unknown variant `sometimes`"),
        "{e:?}"
    );
    let e = errors(&so("  fallback:\n    replicas: 6\n", SQS_TRIGGER));
    assert!(
        e[0].contains("spec.fallback.failureThreshold: is required"),
        "{e:?}"
    );
}

#[test]
fn scaling_modifiers_checked() {
    let named = "  - type: aws-sqs-queue\n    name: q\n    metadata:\n      queueURL: q\n      awsRegion: eu-west-1\n";
    let adv = |f: &str, target: &str| {
        format!("  advanced:\n    scalingModifiers:\n      formula: \"{f}\"\n{target}")
    };
    assert!(errors(&so(&adv("q * 2", "      target: \"4\"\n"), named)).is_empty());
    let e = errors(&so(&adv("q * 2", ""), named));
    assert!(
        e.iter()
            .any(|e| e.contains("scalingModifiers.target: is required")),
        "{e:?}"
    );
    let e = errors(&so(&adv("x * 2", "      target: \"4\"\n"), named));
    assert!(
        e.iter()
            .any(|e| e.contains("scalingModifiers.formula: \\\"x\\\"")
                || e.contains("\"x\" is not the name of a trigger")),
        "{e:?}"
    );
    let e = errors(&so(&adv("q * 2", "      target: four\n"), named));
    assert!(
        e.iter()
            .any(|e| e.contains("scalingModifiers.target: expected a number")),
        "{e:?}"
    );
}

#[test]
fn behavior_policies_checked() {
    let b = "  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown:\n          stabilizationWindowSeconds: 4000\n          selectPolicy: Sometimes\n";
    let e = errors(&so(b, SQS_TRIGGER));
    assert!(
        e[0].contains("scaleDown.selectPolicy: unknown variant"),
        "{e:?}"
    );
    let b = "  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown:\n          stabilizationWindowSeconds: 4000\n          policies:\n          - type: Pods\n            value: 0\n            periodSeconds: 15\n";
    let e = errors(&so(b, SQS_TRIGGER));
    assert!(e.iter().any(|e| e.contains("scaleDown.stabilizationWindowSeconds: must be between 0 and 3600")), "{e:?}");
    assert!(
        e.iter()
            .any(|e| e.contains("scaleDown.policies[0].value: must be greater than zero")),
        "{e:?}"
    );
}

#[test]
fn pause_annotations_parsed_and_validated() {
    let y = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: t\n  annotations:\n    autoscaling.keda.sh/paused-replicas: \"3\"\n    autoscaling.keda.sh/paused-scale-in: \"true\"\nspec:\n  scaleTargetRef:\n    name: app\n  triggers:\n".to_string() + SQS_TRIGGER;
    let so: ScaledObject = parse_documents(&y).unwrap()[0].decode().unwrap();
    let p = so.pause_annotations();
    assert_eq!(p.paused_replicas, Some(3));
    assert!(p.paused_scale_in && !p.paused_scale_out && !p.paused);
    let bad = y.replace("\"3\"", "three");
    let e = errors(&bad);
    assert!(e[0].contains("metadata.annotations.autoscaling.keda.sh/paused-replicas: expected a non-negative integer"), "{e:?}");
}

#[test]
fn the_latency_objective_annotation_is_a_positive_duration() {
    let y = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: t\n  annotations:\n    autoscaling.kedge.dev/latency-objective: \"45s\"\nspec:\n  scaleTargetRef:\n    name: app\n  triggers:\n".to_string() + SQS_TRIGGER;
    let so: ScaledObject = parse_documents(&y).unwrap()[0].decode().unwrap();
    assert_eq!(so.latency_objective_ms(), Some(45_000));
    assert!(errors(&y).is_empty());
    assert_eq!(
        parse_documents(&y.replace("45s", "2m")).unwrap()[0]
            .decode::<ScaledObject>()
            .unwrap()
            .latency_objective_ms(),
        Some(120_000)
    );
    for bad in ["soon", "0s", "-5s"] {
        let e = errors(&y.replace("45s", bad));
        assert!(
            e.iter().any(|e| e.contains(
                "metadata.annotations.autoscaling.kedge.dev/latency-objective: expected a positive duration"
            )),
            "{bad}: {e:?}"
        );
    }
}

#[test]
fn metadata_values_must_be_strings_as_in_kubernetes() {
    let t = "  - type: aws-sqs-queue\n    metadata:\n      queueURL: q\n      awsRegion: eu-west-1\n      queueLength: 2\n";
    let e = errors(&so("", t));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("t.yaml[0] spec.triggers[0].metadata.queueLength: invalid type"),
        "{e:?}"
    );
}

#[test]
fn trigger_auth_unsupported_sources_named() {
    let y = "apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata:\n  name: a\nspec:\n  hashiCorpVault:\n    address: http://vault\n";
    let e = errors(y);
    assert_eq!(
        e,
        vec![
            "t.yaml[0] spec.hashiCorpVault: not supported by kedge: use secretTargetRef, configMapTargetRef, env or podIdentity"
        ]
    );
    let y = "apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata:\n  name: a\nspec:\n  podIdentity:\n    provider: magic\n";
    assert!(errors(y)[0].contains("spec.podIdentity.provider: unknown provider \"magic\""));
}

#[test]
fn wrong_api_version_reported() {
    let y = so("", SQS_TRIGGER).replace("keda.sh/v1alpha1", "keda.k8s.io/v1alpha1");
    let e = errors(&y);
    assert!(
        e[0].starts_with("t.yaml[0] apiVersion: expected keda.sh/v1alpha1"),
        "{e:?}"
    );
}

#[test]
fn trigger_metadata_per_type() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "cron",
            "timezone: UTC\n      start: 0 8 * * *\n      end: 0 8 * * *\n      desiredReplicas: \"2\"",
            "metadata.end: start and end should not be the same",
        ),
        (
            "cron",
            "timezone: UTC\n      start: 0 8 * *\n      end: 0 9 * * *\n      desiredReplicas: \"2\"",
            "metadata.start: invalid cron expression",
        ),
        (
            "prometheus",
            "serverAddress: http://p:9090\n      query: up",
            "metadata.threshold: is required",
        ),
        (
            "metrics-api",
            "url: http://x\n      valueLocation: a.b\n      targetValue: lots",
            "metadata.targetValue: expected a number, got \"lots\"",
        ),
        (
            "metrics-api",
            "url: http://x\n      valueLocation: a.b\n      targetValue: \"1\"\n      format: xml",
            "metadata.format: format \"xml\" is not supported",
        ),
        ("redis", "address: a:6379", "metadata.listName: is required"),
        (
            "redis-streams",
            "address: a:6379\n      stream: s\n      enableTLS: maybe",
            "metadata.enableTLS: expected \"true\" or \"false\"",
        ),
        (
            "postgresql",
            "host: db\n      query: select 1",
            "metadata.targetQueryValue: is required",
        ),
        (
            "aws-sqs-queue",
            "awsRegion: eu-west-1",
            "metadata.queueURL: is required",
        ),
        (
            "aws-sqs-queue",
            "queueURL: q\n      awsRegion: eu-west-1\n      scaleOnInFlight: nope",
            "metadata.scaleOnInFlight: expected \"true\" or \"false\"",
        ),
    ];
    for (ty, md, want) in cases {
        let t = format!("  - type: {ty}\n    metadata:\n      {md}\n");
        let e = errors(&so("", &t));
        assert!(
            e.iter()
                .any(|e| e.contains(&format!("spec.triggers[0].{want}"))),
            "{ty}: expected {want:?} in {e:?}"
        );
    }
}

#[test]
fn two_scaled_objects_for_one_workload_rejected() {
    let a = so("", SQS_TRIGGER);
    let b = a.replace("name: t\n", "name: u\n");
    let e = errors(&format!("{a}---\n{b}"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("t.yaml[1] spec.scaleTargetRef: the workload \"app\" of type apps/v1.Deployment is already managed by the ScaledObject \"t\""),
        "{e:?}"
    );
    // Different namespaces do not clash.
    let b = b.replace("  name: u\n", "  name: u\n  namespace: other\n");
    assert!(errors(&format!("{a}---\n{b}")).is_empty());
}

#[test]
fn unquoted_metadata_value_gets_a_hint() {
    let t = "  - type: aws-sqs-queue\n    metadata:\n      queueURL: q\n      awsRegion: eu-west-1\n      queueLength: 2\n";
    let e = errors(&so("", t));
    assert!(e[0].contains("quote the value"), "{e:?}");
}
