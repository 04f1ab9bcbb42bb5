//! `postgresql`: run a query that returns one number.

use autoscale::scaler::BoxFuture;
use autoscale::{MetricSample, Scaler, ScalerError};
use clock::Timestamp;
use model::keda::triggers::Postgresql;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

pub struct PostgresqlScaler {
    conninfo: String,
    cfg: Postgresql,
    /// Held across `.await` (the query), hence tokio's mutex.
    client: Mutex<Option<Client>>,
}

/// Quote a libpq keyword/value parameter.
fn kv(k: &str, v: &str) -> String {
    format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl PostgresqlScaler {
    pub fn new(cfg: Postgresql, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ScalerError> {
        let conninfo = match &cfg.connection {
            Some(src) => src.resolve(env).ok_or_else(|| {
                ScalerError::Config(format!("connection string {src:?} could not be resolved"))
            })?,
            None => {
                let mut parts = Vec::new();
                if let Some(h) = &cfg.host {
                    parts.push(kv("host", h));
                }
                if let Some(p) = &cfg.port {
                    parts.push(kv("port", p));
                }
                if let Some(u) = &cfg.user_name {
                    parts.push(kv("user", u));
                }
                if let Some(d) = &cfg.db_name {
                    parts.push(kv("dbname", d));
                }
                if let Some(s) = &cfg.sslmode {
                    if s != "disable" && s != "prefer" && s != "allow" {
                        return Err(ScalerError::Config(format!(
                            "sslmode {s:?} needs TLS, which kedge's postgresql scaler does not support yet; use disable or prefer"
                        )));
                    }
                    let s = if s == "allow" { "prefer" } else { s.as_str() };
                    parts.push(kv("sslmode", s));
                }
                if let Some(p) = &cfg.password {
                    let pw = p.resolve(env).ok_or_else(|| {
                        ScalerError::Config(format!("password {p:?} could not be resolved"))
                    })?;
                    parts.push(kv("password", &pw));
                }
                parts.join(" ")
            }
        };
        Ok(PostgresqlScaler {
            conninfo,
            cfg,
            client: Mutex::new(None),
        })
    }
}

impl Scaler for PostgresqlScaler {
    fn get_metric_and_activity(
        &self,
        _now: Timestamp,
    ) -> BoxFuture<'_, Result<MetricSample, ScalerError>> {
        Box::pin(async move {
            let mut guard = self.client.lock().await;
            if guard.as_ref().is_none_or(|c| c.is_closed()) {
                let (client, connection) = tokio_postgres::connect(&self.conninfo, NoTls)
                    .await
                    .map_err(|e| ScalerError::Connect(format!("postgresql: {e}")))?;
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "postgresql connection closed");
                    }
                });
                *guard = Some(client);
            }
            let Some(client) = guard.as_ref() else {
                return Err(ScalerError::Connect("postgresql: no connection".into()));
            };
            // The simple protocol returns text for every type (int, float, numeric), which
            // parses uniformly.
            let msgs = client
                .simple_query(&self.cfg.query)
                .await
                .map_err(|e| ScalerError::Query(format!("postgresql: {e}")))?;
            let text = msgs
                .iter()
                .find_map(|m| match m {
                    SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
                    _ => None,
                })
                .ok_or_else(|| ScalerError::Parse("the query returned no rows".into()))?;
            let v = match text {
                None => 0.0, // SQL NULL (e.g. SUM over no rows)
                Some(t) => t.trim().parse::<f64>().map_err(|_| {
                    ScalerError::Parse(format!("the query returned {t:?}, not a number"))
                })?,
            };
            Ok(MetricSample::with_threshold(
                v,
                self.cfg.activation_target_query_value,
            ))
        })
    }
}
