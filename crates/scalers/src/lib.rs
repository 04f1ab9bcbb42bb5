//! The I/O side of kedge's pod autoscaling: one [`autoscale::Scaler`] per KEDA trigger
//! type, and the scale loop that polls them and feeds the pure decision core.
//!
//! Heavy client libraries (HTTP, Redis, PostgreSQL, the AWS SDK) live here so `autoscale`
//! stays dependency-light and deterministic.
//!
//! # Layout
//! - [`runner`]: the scale loop: one task per ScaledObject, polling on its interval (or
//!   woken early by event-driven triggers), stepping the [`autoscale::Autoscaler`], applying
//!   the decision to a [`runner::ScaleTarget`], recording metrics and loop lateness.
//! - [`memory`]: in-process metric sources and scale targets (bench, tests, simulation).
//! - one module per trigger type: [`aws_sqs`], [`aws_dynamodb`], [`cron`], [`metrics_api`],
//!   [`prometheus`], [`redis`] (lists and streams), [`postgresql`], [`mysql`], [`rabbitmq`]
//!   (AMQP and the management API), [`nats_jetstream`], [`kafka`] (consumer-group lag),
//!   [`external`] (KEDA's gRPC ExternalScaler protocol), [`pods`] (`kubernetes-workload`,
//!   `cpu`, `memory` over a substrate's [`pods::PodSource`]); [`http`] is their shared HTTP GET.
//! - [`build_scaler`]: trigger + resolved auth → `Box<dyn Scaler>`.

pub mod aws_dynamodb;
pub mod aws_sqs;
pub mod cron;
pub mod external;
pub mod http;
pub mod kafka;
pub mod memory;
pub mod metrics_api;
pub mod mysql;
pub mod nats_jetstream;
pub mod pods;
pub mod postgresql;
pub mod prometheus;
pub mod rabbitmq;
pub mod redis;
pub mod runner;

use std::collections::BTreeMap;

use autoscale::{Scaler, ScalerError};
use model::keda::Trigger;
use model::keda::triggers::TriggerConfig;

/// A trigger's resolved TriggerAuthentication: the parameters its `secretTargetRef`,
/// `configMapTargetRef` and `env` entries produced, and its pod identity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolvedAuth {
    pub params: BTreeMap<String, String>,
    /// `podIdentity.provider`, e.g. `aws`.
    pub pod_identity: Option<String>,
    /// `podIdentity.roleArn`.
    pub role_arn: Option<String>,
}

/// Build the scaler for one trigger. `env` resolves `...FromEnv` names (the scale target's
/// container environment upstream; the substrate decides here).
pub fn build_scaler(
    trigger: &Trigger,
    auth: &ResolvedAuth,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Box<dyn Scaler>, ScalerError> {
    build_scaler_for(trigger, auth, env, "default", "")
}

/// [`build_scaler`] for a named ScaledObject: the `external` scalers send its name and
/// namespace to the external scaler.
pub fn build_scaler_for(
    trigger: &Trigger,
    auth: &ResolvedAuth,
    env: &dyn Fn(&str) -> Option<String>,
    namespace: &str,
    name: &str,
) -> Result<Box<dyn Scaler>, ScalerError> {
    build_scaler_with_pods(trigger, auth, env, namespace, name, None)
}

/// [`build_scaler_for`] with the substrate's [`pods::PodSource`], which `kubernetes-workload`,
/// `cpu` and `memory` need.
pub fn build_scaler_with_pods(
    trigger: &Trigger,
    auth: &ResolvedAuth,
    env: &dyn Fn(&str) -> Option<String>,
    namespace: &str,
    name: &str,
    pods: Option<std::sync::Arc<dyn pods::PodSource>>,
) -> Result<Box<dyn Scaler>, ScalerError> {
    let need_pods = |what: &str| {
        pods.clone().ok_or_else(|| {
            ScalerError::Config(format!(
                "trigger type {what} needs the pods of the cluster, which this substrate does not provide yet"
            ))
        })
    };
    let cfg = TriggerConfig::parse_with_auth(trigger, Some(&auth.params)).map_err(|errs| {
        ScalerError::Config(
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    Ok(match cfg {
        TriggerConfig::AwsSqsQueue(c) => Box::new(aws_sqs::AwsSqsScaler::new(c, auth, env)?),
        TriggerConfig::Cron(c) => Box::new(cron::CronScaler::new(&c)?),
        TriggerConfig::MetricsApi(c) => {
            Box::new(metrics_api::MetricsApiScaler::new(c, &auth.params)?)
        }
        TriggerConfig::Prometheus(c) => Box::new(prometheus::PrometheusScaler::new(c)),
        TriggerConfig::Redis(c) => Box::new(redis::RedisListScaler::new(c, env)?),
        TriggerConfig::RedisStreams(c) => Box::new(redis::RedisStreamsScaler::new(c, env)?),
        TriggerConfig::Postgresql(c) => Box::new(postgresql::PostgresqlScaler::new(c, env)?),
        TriggerConfig::NatsJetStream(c) => Box::new(nats_jetstream::NatsJetStreamScaler::new(c)?),
        TriggerConfig::RabbitMq(c) => {
            Box::new(rabbitmq::RabbitMqScaler::new(c, &auth.params, env)?)
        }
        TriggerConfig::Mysql(c) => Box::new(mysql::MysqlScaler::new(c, env)?),
        TriggerConfig::Kafka(c) => Box::new(kafka::KafkaScaler::new(c, env)?),
        TriggerConfig::External(c) => Box::new(external::ExternalScaler::new(c, name, namespace)?),
        TriggerConfig::KubernetesWorkload(c) => Box::new(pods::WorkloadScaler::new(
            c,
            namespace,
            need_pods("kubernetes-workload")?,
        )),
        TriggerConfig::Resource(c) => {
            let source = need_pods(&trigger.trigger_type)?;
            Box::new(pods::ResourceScaler::new(c, source))
        }
        TriggerConfig::AwsDynamoDb(c) => {
            Box::new(aws_dynamodb::AwsDynamoDbScaler::new(c, auth, env)?)
        }
    })
}

impl ResolvedAuth {
    /// Resolve a TriggerAuthentication's parameters. `secret(name, key)` and
    /// `config_map(name, key)` read the referenced objects (Kubernetes Secrets/ConfigMaps in a
    /// cluster, files or the environment in the local twin); `env(name)` resolves `env`
    /// entries. A reference that cannot be resolved is an error naming it, so a scaler never
    /// runs with a silently missing credential.
    pub fn resolve(
        spec: &model::keda::TriggerAuthenticationSpec,
        secret: &dyn Fn(&str, &str) -> Option<String>,
        config_map: &dyn Fn(&str, &str) -> Option<String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ResolvedAuth, ScalerError> {
        let mut params = BTreeMap::new();
        for r in &spec.config_map_target_ref {
            let v = config_map(&r.name, &r.key).ok_or_else(|| {
                ScalerError::Config(format!(
                    "configMapTargetRef {:?}: key {:?} of ConfigMap {:?} not found",
                    r.parameter, r.key, r.name
                ))
            })?;
            params.insert(r.parameter.clone(), v);
        }
        for r in &spec.secret_target_ref {
            let v = secret(&r.name, &r.key).ok_or_else(|| {
                ScalerError::Config(format!(
                    "secretTargetRef {:?}: key {:?} of Secret {:?} not found",
                    r.parameter, r.key, r.name
                ))
            })?;
            params.insert(r.parameter.clone(), v);
        }
        for r in &spec.env {
            let v = env(&r.name).ok_or_else(|| {
                ScalerError::Config(format!(
                    "env {:?}: environment variable {:?} is not set",
                    r.parameter, r.name
                ))
            })?;
            params.insert(r.parameter.clone(), v);
        }
        Ok(ResolvedAuth {
            params,
            pod_identity: spec.pod_identity.as_ref().map(|p| p.provider.clone()),
            role_arn: spec.pod_identity.as_ref().and_then(|p| p.role_arn.clone()),
        })
    }
}
