//! `redis` (list length) and `redis-streams` (stream length, pending entries, consumer-group
//! lag), on the `redis` crate's async multiplexed connection.

use std::collections::BTreeMap;

use autoscale::scaler::BoxFuture;
use autoscale::{MetricSample, Scaler, ScalerError};
use clock::Timestamp;
use model::keda::triggers::{RedisConnection, RedisList, RedisStreams, Source, StreamScaleFactor};
use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

/// Lazily connected, reconnecting after an error. A tokio mutex because the connection is
/// used across `.await` while held.
struct Conn {
    info: redis::ConnectionInfo,
    conn: Mutex<Option<MultiplexedConnection>>,
}

impl Conn {
    fn new(c: &RedisConnection, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ScalerError> {
        if c.enable_tls {
            return Err(ScalerError::Config(
                "enableTLS is not supported by kedge's redis scaler yet".into(),
            ));
        }
        let resolve = |s: &Option<Source>, what: &str| -> Result<Option<String>, ScalerError> {
            match s {
                None => Ok(None),
                Some(src) => src.resolve(env).map(Some).ok_or_else(|| {
                    ScalerError::Config(format!("{what}: {src:?} could not be resolved"))
                }),
            }
        };
        let addr = match resolve(&c.address, "address")? {
            Some(a) => a,
            None => {
                let host = resolve(&c.host, "host")?
                    .ok_or_else(|| ScalerError::Config("address or host is required".into()))?;
                let port = resolve(&c.port, "port")?.unwrap_or_else(|| "6379".into());
                format!("{host}:{port}")
            }
        };
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| ScalerError::Config(format!("address {addr:?} must be host:port")))?;
        let port: u16 = port
            .parse()
            .map_err(|_| ScalerError::Config(format!("address {addr:?}: bad port")))?;
        let info = redis::ConnectionInfo {
            addr: redis::ConnectionAddr::Tcp(host.to_string(), port),
            redis: redis::RedisConnectionInfo {
                db: c.database_index,
                username: resolve(&c.username, "username")?,
                password: resolve(&c.password, "password")?,
                ..Default::default()
            },
        };
        Ok(Conn {
            info,
            conn: Mutex::new(None),
        })
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, ScalerError> {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            let client = redis::Client::open(self.info.clone())
                .map_err(|e| ScalerError::Config(e.to_string()))?;
            let c = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| ScalerError::Connect(format!("redis: {e}")))?;
            *guard = Some(c);
        }
        let Some(conn) = guard.as_mut() else {
            return Err(ScalerError::Connect("redis: no connection".into()));
        };
        match cmd.query_async::<T>(conn).await {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.is_io_error() || e.is_connection_dropped() {
                    *guard = None;
                    Err(ScalerError::Connect(format!("redis: {e}")))
                } else {
                    Err(ScalerError::Query(format!("redis: {e}")))
                }
            }
        }
    }
}

pub struct RedisListScaler {
    cfg: RedisList,
    conn: Conn,
}

impl RedisListScaler {
    pub fn new(cfg: RedisList, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ScalerError> {
        let conn = Conn::new(&cfg.connection, env)?;
        Ok(RedisListScaler { cfg, conn })
    }
}

impl Scaler for RedisListScaler {
    fn get_metric_and_activity(
        &self,
        _now: Timestamp,
    ) -> BoxFuture<'_, Result<MetricSample, ScalerError>> {
        Box::pin(async move {
            let n: i64 = self
                .conn
                .query(redis::cmd("LLEN").arg(&self.cfg.list_name))
                .await?;
            Ok(MetricSample::with_threshold(
                n as f64,
                self.cfg.activation_list_length as f64,
            ))
        })
    }
}

pub struct RedisStreamsScaler {
    cfg: RedisStreams,
    conn: Conn,
}

impl RedisStreamsScaler {
    pub fn new(
        cfg: RedisStreams,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ScalerError> {
        let conn = Conn::new(&cfg.connection, env)?;
        Ok(RedisStreamsScaler { cfg, conn })
    }

    async fn measure(&self) -> Result<f64, ScalerError> {
        let group = self.cfg.consumer_group.clone().unwrap_or_default();
        match self.cfg.factor {
            StreamScaleFactor::StreamLength => {
                let n: i64 = self
                    .conn
                    .query(redis::cmd("XLEN").arg(&self.cfg.stream))
                    .await?;
                Ok(n as f64)
            }
            StreamScaleFactor::PendingEntries => {
                // Summary form: [count, smallest id, greatest id, [[consumer, count]...]].
                let v: redis::Value = self
                    .conn
                    .query(redis::cmd("XPENDING").arg(&self.cfg.stream).arg(&group))
                    .await?;
                match v {
                    redis::Value::Array(items) if !items.is_empty() => {
                        let n: i64 = redis::from_redis_value(&items[0])
                            .map_err(|e| ScalerError::Parse(format!("XPENDING: {e}")))?;
                        Ok(n as f64)
                    }
                    other => Err(ScalerError::Parse(format!("XPENDING answered {other:?}"))),
                }
            }
            StreamScaleFactor::Lag => {
                let groups: Vec<BTreeMap<String, redis::Value>> = self
                    .conn
                    .query(redis::cmd("XINFO").arg("GROUPS").arg(&self.cfg.stream))
                    .await?;
                let g = groups
                    .iter()
                    .find(|g| {
                        g.get("name")
                            .and_then(|n| redis::from_redis_value::<String>(n).ok())
                            .as_deref()
                            == Some(group.as_str())
                    })
                    .ok_or_else(|| {
                        ScalerError::Query(format!(
                            "consumer group {group:?} does not exist on stream {:?}",
                            self.cfg.stream
                        ))
                    })?;
                match g.get("lag") {
                    Some(redis::Value::Nil) | None => Err(ScalerError::Query(format!(
                        "redis cannot report the lag of group {group:?} (Redis 7+ is needed, and the lag is unknown after deletions)"
                    ))),
                    Some(v) => {
                        let n: i64 = redis::from_redis_value(v)
                            .map_err(|e| ScalerError::Parse(format!("XINFO GROUPS lag: {e}")))?;
                        Ok(n as f64)
                    }
                }
            }
        }
    }
}

impl Scaler for RedisStreamsScaler {
    fn get_metric_and_activity(
        &self,
        _now: Timestamp,
    ) -> BoxFuture<'_, Result<MetricSample, ScalerError>> {
        Box::pin(async move {
            let v = self.measure().await?;
            let activation = match self.cfg.factor {
                StreamScaleFactor::Lag => self.cfg.activation_lag_count as f64,
                _ => 0.0,
            };
            Ok(MetricSample::with_threshold(v, activation))
        })
    }
}
