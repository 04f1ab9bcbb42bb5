//! `aws-dynamodb`: the `Count` of one `Query` (key condition, optional filter and index) through
//! aws-sdk-dynamodb, as KEDA's scaler does — one page, so a query matching more than 1 MB of
//! items counts the first page only, exactly as upstream. Works unchanged against AWS and
//! against `kedge serve`. Credentials as for `aws-sqs-queue`.

use std::collections::HashMap;

use autoscale::scaler::BoxFuture;
use autoscale::{MetricSample, Scaler, ScalerError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use clock::Timestamp;
use model::keda::triggers::AwsDynamoDb;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::ResolvedAuth;
use crate::aws_sqs::{StaticKeys, sdk_config};

pub struct AwsDynamoDbScaler {
    cfg: AwsDynamoDb,
    region: String,
    keys: Option<StaticKeys>,
    role_arn: Option<String>,
    values: HashMap<String, AttributeValue>,
    client: OnceCell<aws_sdk_dynamodb::Client>,
}

/// DynamoDB JSON (`{"S": "x"}`, `{"N": "1"}`, `{"M": {...}}`, ...) as an SDK attribute value.
pub fn attribute_value(v: &Value) -> Result<AttributeValue, String> {
    let obj = v
        .as_object()
        .filter(|o| o.len() == 1)
        .ok_or_else(|| format!("{v} is not a DynamoDB attribute value such as {{\"S\": \"x\"}}"))?;
    let (t, x) = obj.iter().next().ok_or("empty attribute value")?;
    let str_of = |x: &Value| {
        x.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{t}: expected a string, got {x}"))
    };
    let list_of = |x: &Value| -> Result<Vec<String>, String> {
        x.as_array()
            .ok_or_else(|| format!("{t}: expected a list, got {x}"))?
            .iter()
            .map(str_of)
            .collect()
    };
    let blob = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(Blob::new)
            .map_err(|e| format!("{t}: not base64: {e}"))
    };
    Ok(match t.as_str() {
        "S" => AttributeValue::S(str_of(x)?),
        "N" => AttributeValue::N(str_of(x)?),
        "B" => AttributeValue::B(blob(&str_of(x)?)?),
        "BOOL" => AttributeValue::Bool(x.as_bool().ok_or("BOOL: expected true or false")?),
        "NULL" => AttributeValue::Null(true),
        "SS" => AttributeValue::Ss(list_of(x)?),
        "NS" => AttributeValue::Ns(list_of(x)?),
        "BS" => AttributeValue::Bs(
            list_of(x)?
                .iter()
                .map(|s| blob(s))
                .collect::<Result<_, _>>()?,
        ),
        "L" => AttributeValue::L(
            x.as_array()
                .ok_or("L: expected a list")?
                .iter()
                .map(attribute_value)
                .collect::<Result<_, _>>()?,
        ),
        "M" => AttributeValue::M(
            x.as_object()
                .ok_or("M: expected a map")?
                .iter()
                .map(|(k, v)| attribute_value(v).map(|a| (k.clone(), a)))
                .collect::<Result<_, _>>()?,
        ),
        other => return Err(format!("unknown DynamoDB type {other:?}")),
    })
}

impl AwsDynamoDbScaler {
    pub fn new(
        cfg: AwsDynamoDb,
        auth: &ResolvedAuth,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ScalerError> {
        let p = &auth.params;
        let region = cfg
            .aws_region
            .clone()
            .or_else(|| p.get("awsRegion").cloned())
            .ok_or_else(|| ScalerError::Config("awsRegion is not set".into()))?;
        let keys = match (p.get("awsAccessKeyID"), p.get("awsSecretAccessKey")) {
            (Some(id), Some(secret)) => Some(StaticKeys {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: p.get("awsSessionToken").cloned(),
            }),
            _ => match (&cfg.access_key_id_from_env, &cfg.secret_access_key_from_env) {
                (Some(i), Some(s)) => Some(StaticKeys {
                    access_key_id: env(i).ok_or_else(|| {
                        ScalerError::Config(format!("awsAccessKeyIDFromEnv: {i:?} is not set"))
                    })?,
                    secret_access_key: env(s).ok_or_else(|| {
                        ScalerError::Config(format!("awsSecretAccessKeyFromEnv: {s:?} is not set"))
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
        let values = cfg
            .expression_attribute_values
            .iter()
            .map(|(k, v)| attribute_value(v).map(|a| (k.clone(), a)))
            .collect::<Result<_, _>>()
            .map_err(|e| ScalerError::Config(format!("expressionAttributeValues: {e}")))?;
        Ok(AwsDynamoDbScaler {
            cfg,
            region,
            keys,
            role_arn,
            values,
            client: OnceCell::new(),
        })
    }

    async fn client(&self) -> Result<&aws_sdk_dynamodb::Client, ScalerError> {
        self.client
            .get_or_try_init(|| async {
                let conf = sdk_config(
                    &self.region,
                    self.cfg.aws_endpoint.as_deref(),
                    self.keys.as_ref(),
                    self.role_arn.as_deref(),
                )
                .await;
                Ok(aws_sdk_dynamodb::Client::new(&conf))
            })
            .await
    }
}

impl Scaler for AwsDynamoDbScaler {
    fn get_metric_and_activity(
        &self,
        _now: Timestamp,
    ) -> BoxFuture<'_, Result<MetricSample, ScalerError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let mut q = client
                .query()
                .table_name(&self.cfg.table_name)
                .key_condition_expression(&self.cfg.key_condition_expression)
                .set_expression_attribute_names(Some(
                    self.cfg
                        .expression_attribute_names
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ))
                .set_expression_attribute_values(Some(self.values.clone()));
            if let Some(f) = &self.cfg.filter_expression {
                q = q.filter_expression(f);
            }
            if let Some(i) = &self.cfg.index_name {
                q = q.index_name(i);
            }
            let out = q.send().await.map_err(|e| {
                let e = aws_sdk_dynamodb::error::DisplayErrorContext(e);
                ScalerError::Query(format!("Query {}: {e}", self.cfg.table_name))
            })?;
            let count = f64::from(out.count());
            Ok(MetricSample::with_threshold(
                count,
                self.cfg.activation_target_value as f64,
            ))
        })
    }
}
