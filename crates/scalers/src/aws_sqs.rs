//! `aws-sqs-queue`: queue depth from `GetQueueAttributes` (the three
//! `ApproximateNumberOf*` attributes), through aws-sdk-sqs, so it works unchanged against
//! AWS and against `kedge serve`.
//!
//! Credentials, in KEDA's order: static keys from the TriggerAuthentication
//! (`awsAccessKeyID` / `awsSecretAccessKey` / `awsSessionToken`), keys from the environment
//! named by `awsAccessKeyIDFromEnv` / `awsSecretAccessKeyFromEnv`, else the SDK's default
//! chain (what `podIdentity.provider: aws` / `aws-eks` and `identityOwner: operator` mean
//! for a process outside a pod); `awsRoleArn` is assumed on top through STS.

use std::collections::HashMap;

use autoscale::scaler::BoxFuture;
use autoscale::{MetricSample, Scaler, ScalerError};
use aws_sdk_sqs::types::QueueAttributeName;
use clock::Timestamp;
use model::keda::triggers::{AwsSqsQueue, Source, region_from_url};
use tokio::sync::OnceCell;

use crate::ResolvedAuth;

/// Static credentials, when configured.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        f.debug_struct("StaticKeys")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Everything needed to build the SQS client, resolved from metadata, auth and environment.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsSettings {
    pub queue_url: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub keys: Option<StaticKeys>,
    pub role_arn: Option<String>,
}

impl SqsSettings {
    pub fn resolve(
        cfg: &AwsSqsQueue,
        auth: &ResolvedAuth,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ScalerError> {
        let queue_url = match &cfg.queue_url {
            Source::FromEnv(name) => env(name).ok_or_else(|| {
                ScalerError::Config(format!(
                    "queueURLFromEnv: environment variable {name:?} is not set"
                ))
            })?,
            other => other.resolve(env).ok_or_else(|| {
                ScalerError::Config(
                    "queueURL is not set (nor provided by the TriggerAuthentication)".into(),
                )
            })?,
        };
        let region = cfg
            .aws_region
            .clone()
            .or_else(|| auth.params.get("awsRegion").cloned())
            .or_else(|| region_from_url(&queue_url))
            .unwrap_or_else(|| "us-east-1".into());
        let p = &auth.params;
        let keys = match (p.get("awsAccessKeyID"), p.get("awsSecretAccessKey")) {
            (Some(id), Some(secret)) => Some(StaticKeys {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: p.get("awsSessionToken").cloned(),
            }),
            _ => match (&cfg.access_key_id_from_env, &cfg.secret_access_key_from_env) {
                (Some(id_env), Some(secret_env)) => Some(StaticKeys {
                    access_key_id: env(id_env).ok_or_else(|| {
                        ScalerError::Config(format!("awsAccessKeyIDFromEnv: {id_env:?} is not set"))
                    })?,
                    secret_access_key: env(secret_env).ok_or_else(|| {
                        ScalerError::Config(format!(
                            "awsSecretAccessKeyFromEnv: {secret_env:?} is not set"
                        ))
                    })?,
                    session_token: cfg.session_token_from_env.as_deref().and_then(env),
                }),
                _ => None,
            },
        };
        let role_arn = p
            .get("awsRoleArn")
            .cloned()
            .or_else(|| cfg.aws_role_arn.clone())
            .or_else(|| auth.role_arn.clone());
        Ok(SqsSettings {
            queue_url,
            region,
            endpoint: cfg.aws_endpoint.clone(),
            keys,
            role_arn,
        })
    }
}

/// The queue length KEDA scales on, from a `GetQueueAttributes` answer.
pub fn queue_length(
    cfg: &AwsSqsQueue,
    attrs: &HashMap<QueueAttributeName, String>,
) -> Result<i64, ScalerError> {
    let get = |name: QueueAttributeName| -> Result<i64, ScalerError> {
        match attrs.get(&name) {
            None => Ok(0),
            Some(v) => v.parse::<i64>().map_err(|_| {
                ScalerError::Parse(format!("{}: {v:?} is not a number", name.as_str()))
            }),
        }
    };
    Ok(cfg.queue_length_from(
        get(QueueAttributeName::ApproximateNumberOfMessages)?,
        get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)?,
        get(QueueAttributeName::ApproximateNumberOfMessagesDelayed)?,
    ))
}

pub struct AwsSqsScaler {
    cfg: AwsSqsQueue,
    settings: SqsSettings,
    client: OnceCell<aws_sdk_sqs::Client>,
}

impl AwsSqsScaler {
    pub fn new(
        cfg: AwsSqsQueue,
        auth: &ResolvedAuth,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ScalerError> {
        let settings = SqsSettings::resolve(&cfg, auth, env)?;
        Ok(AwsSqsScaler {
            cfg,
            settings,
            client: OnceCell::new(),
        })
    }

    pub fn settings(&self) -> &SqsSettings {
        &self.settings
    }

    async fn client(&self) -> Result<&aws_sdk_sqs::Client, ScalerError> {
        self.client
            .get_or_try_init(|| async {
                let s = &self.settings;
                let conf = sdk_config(
                    &s.region,
                    s.endpoint.as_deref(),
                    s.keys.as_ref(),
                    s.role_arn.as_deref(),
                )
                .await;
                Ok(aws_sdk_sqs::Client::new(&conf))
            })
            .await
    }
}

/// The SDK configuration every AWS scaler uses: region, optional endpoint, static keys or the
/// default chain, and `roleArn` assumed through STS on top; one shared HTTPS client.
pub(crate) async fn sdk_config(
    region: &str,
    endpoint: Option<&str>,
    keys: Option<&StaticKeys>,
    role_arn: Option<&str>,
) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .http_client(shared_http_client());
    if let Some(e) = endpoint {
        loader = loader.endpoint_url(e);
    }
    if let Some(k) = keys {
        loader = loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
            k.access_key_id.clone(),
            k.secret_access_key.clone(),
            k.session_token.clone(),
            None,
            "kedge-trigger-authentication",
        ));
    }
    let base = loader.load().await;
    match role_arn {
        None => base,
        Some(arn) => {
            let provider = aws_config::sts::AssumeRoleProvider::builder(arn)
                .session_name("kedge")
                .configure(&base)
                .build()
                .await;
            base.into_builder()
                .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(
                    provider,
                ))
                .build()
        }
    }
}

thread_local! {
    /// One HTTPS client (connection pool, TLS configuration with its root store) per thread
    /// for every SQS scaler, instead of the SDK's default of one per `Client`: with 1,000
    /// ScaledObjects that default is 1,000 pools and root stores. Per thread because a pooled
    /// connection's task runs on the runtime that opened it (tests run one runtime each).
    static SHARED_HTTP: std::cell::RefCell<Option<aws_sdk_sqs::config::SharedHttpClient>> =
        const { std::cell::RefCell::new(None) };
}

fn shared_http_client() -> aws_sdk_sqs::config::SharedHttpClient {
    SHARED_HTTP.with(|c| {
        c.borrow_mut()
            .get_or_insert_with(|| {
                use aws_smithy_http_client::tls;
                aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(
                        tls::rustls_provider::CryptoMode::AwsLc,
                    ))
                    .build_https()
            })
            .clone()
    })
}

impl Scaler for AwsSqsScaler {
    fn get_metric_and_activity(
        &self,
        _now: Timestamp,
    ) -> BoxFuture<'_, Result<MetricSample, ScalerError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let out = client
                .get_queue_attributes()
                .queue_url(&self.settings.queue_url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
                .send()
                .await
                .map_err(|e| {
                    let e = aws_sdk_sqs::error::DisplayErrorContext(e);
                    ScalerError::Query(format!(
                        "GetQueueAttributes {}: {e}",
                        self.settings.queue_url
                    ))
                })?;
            let n = queue_length(&self.cfg, out.attributes().unwrap_or(&HashMap::new()))?;
            Ok(MetricSample::with_threshold(
                n as f64,
                self.cfg.activation_queue_length as f64,
            ))
        })
    }
}
