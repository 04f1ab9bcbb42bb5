//! `kafka`: a consumer group's lag, as KEDA's (sarama-based) scaler computes it: per partition
//! `latest offset − committed offset`, with KEDA's rules for partitions without a committed
//! offset (`offsetResetPolicy`, `scaleToZeroOnInvalidOffset`), `excludePersistentLag`,
//! `partitionLimitation`, and the cap at one consumer per partition unless
//! `allowIdleConsumers` (`limitToPartitionsWithLag`, `ensureEvenDistributionOfPartitions`).
//!
//! The client is the few Kafka protocol requests this needs, written here over a TCP stream
//! instead of pulling a Kafka client crate: Metadata v4 (partitions and their leaders),
//! FindCoordinator v1 (the group's coordinator), OffsetFetch v2 (committed offsets; all of the
//! group's topics when no topic is set) and ListOffsets v1 (latest offsets, asked of each
//! partition's leader). These versions are within every broker's supported range since Kafka 1.0
//! (and after Kafka 4.0's removal of old versions). TLS and SASL other than none are refused as
//! configuration errors.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use autoscale::scaler::BoxFuture;
use autoscale::{MetricSample, Scaler, ScalerError};
use clock::Timestamp;
use model::keda::triggers::{Kafka, KafkaSasl, OffsetResetPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Kafka protocol encoding and decoding (big-endian, length-prefixed strings and arrays).
pub mod wire {
    use super::*;

    pub const METADATA: i16 = 3;
    pub const LIST_OFFSETS: i16 = 2;
    pub const OFFSET_COMMIT: i16 = 8;
    pub const OFFSET_FETCH: i16 = 9;
    pub const FIND_COORDINATOR: i16 = 10;

    #[derive(Default)]
    pub struct Enc(pub Vec<u8>);

    impl Enc {
        pub fn i8(&mut self, v: i8) -> &mut Self {
            self.0.push(v as u8);
            self
        }
        pub fn i16(&mut self, v: i16) -> &mut Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        pub fn i32(&mut self, v: i32) -> &mut Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        pub fn i64(&mut self, v: i64) -> &mut Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        pub fn bool(&mut self, v: bool) -> &mut Self {
            self.0.push(u8::from(v));
            self
        }
        pub fn str(&mut self, s: &str) -> &mut Self {
            self.i16(s.len() as i16);
            self.0.extend_from_slice(s.as_bytes());
            self
        }
        pub fn null_str(&mut self) -> &mut Self {
            self.i16(-1)
        }
        pub fn len(&mut self, n: usize) -> &mut Self {
            self.i32(n as i32)
        }
    }

    pub struct Dec<'a> {
        pub b: &'a [u8],
        pub i: usize,
    }

    fn short() -> ScalerError {
        ScalerError::Parse("kafka: truncated response".into())
    }

    impl<'a> Dec<'a> {
        pub fn new(b: &'a [u8]) -> Self {
            Dec { b, i: 0 }
        }
        fn take(&mut self, n: usize) -> Result<&'a [u8], ScalerError> {
            let s = self.b.get(self.i..self.i + n).ok_or_else(short)?;
            self.i += n;
            Ok(s)
        }
        pub fn i8(&mut self) -> Result<i8, ScalerError> {
            Ok(self.take(1)?[0] as i8)
        }
        pub fn i16(&mut self) -> Result<i16, ScalerError> {
            let b = self.take(2)?;
            Ok(i16::from_be_bytes([b[0], b[1]]))
        }
        pub fn i32(&mut self) -> Result<i32, ScalerError> {
            let b = self.take(4)?;
            Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        }
        pub fn i64(&mut self) -> Result<i64, ScalerError> {
            let b = self.take(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Ok(i64::from_be_bytes(a))
        }
        pub fn bool(&mut self) -> Result<bool, ScalerError> {
            Ok(self.take(1)?[0] != 0)
        }
        /// A (nullable) string; null reads as empty.
        pub fn str(&mut self) -> Result<String, ScalerError> {
            let n = self.i16()?;
            if n < 0 {
                return Ok(String::new());
            }
            Ok(String::from_utf8_lossy(self.take(n as usize)?).into_owned())
        }
        /// An array length (null reads as 0).
        pub fn array_len(&mut self) -> Result<usize, ScalerError> {
            Ok(self.i32()?.max(0) as usize)
        }
    }

    /// One connection to one broker; requests are sent one at a time.
    pub struct Conn {
        stream: TcpStream,
        correlation: i32,
    }

    impl Conn {
        pub async fn connect(addr: &str) -> Result<Conn, ScalerError> {
            let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
                .await
                .map_err(|_| ScalerError::Connect(format!("kafka {addr}: connect timed out")))?
                .map_err(|e| ScalerError::Connect(format!("kafka {addr}: {e}")))?;
            Ok(Conn {
                stream,
                correlation: 0,
            })
        }

        /// Send a request (header v1, client id `kedge`) and return the response body.
        pub async fn call(
            &mut self,
            api_key: i16,
            version: i16,
            body: &[u8],
        ) -> Result<Vec<u8>, ScalerError> {
            self.correlation = self.correlation.wrapping_add(1);
            let mut h = Enc::default();
            h.i16(api_key)
                .i16(version)
                .i32(self.correlation)
                .str("kedge");
            let len = (h.0.len() + body.len()) as i32;
            let mut frame = len.to_be_bytes().to_vec();
            frame.extend_from_slice(&h.0);
            frame.extend_from_slice(body);
            let io = |e: std::io::Error| ScalerError::Connect(format!("kafka: {e}"));
            let fut = async {
                self.stream.write_all(&frame).await.map_err(io)?;
                let mut len = [0u8; 4];
                self.stream.read_exact(&mut len).await.map_err(io)?;
                let n = i32::from_be_bytes(len);
                if !(4..=64 << 20).contains(&n) {
                    return Err(ScalerError::Parse(format!("kafka: response of {n} bytes")));
                }
                let mut buf = vec![0u8; n as usize];
                self.stream.read_exact(&mut buf).await.map_err(io)?;
                Ok(buf)
            };
            let mut buf = tokio::time::timeout(Duration::from_secs(30), fut)
                .await
                .map_err(|_| ScalerError::Connect("kafka: no answer within 30s".into()))??;
            let corr = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
            if corr != self.correlation {
                return Err(ScalerError::Parse(format!(
                    "kafka: correlation id {corr}, expected {}",
                    self.correlation
                )));
            }
            Ok(buf.split_off(4))
        }
    }
}

use wire::{Conn, Dec, Enc};

fn kafka_error(what: &str, code: i16) -> ScalerError {
    let name = match code {
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        6 => "NOT_LEADER_OR_FOLLOWER",
        14 => "COORDINATOR_LOAD_IN_PROGRESS",
        15 => "COORDINATOR_NOT_AVAILABLE",
        16 => "NOT_COORDINATOR",
        25 => "UNKNOWN_MEMBER_ID",
        29 => "TOPIC_AUTHORIZATION_FAILED",
        30 => "GROUP_AUTHORIZATION_FAILED",
        69 => "GROUP_ID_NOT_FOUND",
        _ => "error",
    };
    ScalerError::Query(format!("kafka {what}: {name} ({code})"))
}

/// The partitions of a topic and their leaders.
#[derive(Debug, Clone, Default)]
struct ClusterMeta {
    brokers: HashMap<i32, String>,
    /// topic → partition → leader node id
    topics: BTreeMap<String, BTreeMap<i32, i32>>,
}

async fn metadata(conn: &mut Conn, topics: &[String]) -> Result<ClusterMeta, ScalerError> {
    let mut e = Enc::default();
    e.len(topics.len());
    for t in topics {
        e.str(t);
    }
    e.bool(false);
    let body = conn.call(wire::METADATA, 4, &e.0).await?;
    let mut d = Dec::new(&body);
    d.i32()?; // throttle
    let mut m = ClusterMeta::default();
    for _ in 0..d.array_len()? {
        let id = d.i32()?;
        let host = d.str()?;
        let port = d.i32()?;
        d.str()?; // rack
        m.brokers.insert(id, format!("{host}:{port}"));
    }
    d.str()?; // cluster id
    d.i32()?; // controller
    for _ in 0..d.array_len()? {
        let err = d.i16()?;
        let name = d.str()?;
        d.bool()?;
        let mut parts = BTreeMap::new();
        for _ in 0..d.array_len()? {
            d.i16()?;
            let p = d.i32()?;
            let leader = d.i32()?;
            for _ in 0..d.array_len()? {
                d.i32()?;
            }
            for _ in 0..d.array_len()? {
                d.i32()?;
            }
            parts.insert(p, leader);
        }
        if err != 0 {
            return Err(kafka_error(&format!("describing topic {name:?}"), err));
        }
        m.topics.insert(name, parts);
    }
    Ok(m)
}

pub struct KafkaScaler {
    cfg: Kafka,
    servers: Vec<String>,
    group: String,
    topic: Option<String>,
    /// `excludePersistentLag`: each partition's committed offset at the previous poll.
    previous: StdMutex<HashMap<(String, i32), i64>>,
}

impl KafkaScaler {
    pub fn new(cfg: Kafka, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ScalerError> {
        if cfg.tls {
            return Err(ScalerError::Config(
                "kafka tls: enable is not supported by kedge yet".into(),
            ));
        }
        if cfg.sasl != KafkaSasl::None {
            return Err(ScalerError::Config(format!(
                "kafka sasl {:?} is not supported by kedge yet",
                cfg.sasl
            )));
        }
        let resolve = |s: &model::keda::triggers::Source, what: &str| {
            s.resolve(env)
                .ok_or_else(|| ScalerError::Config(format!("{what} {s:?} could not be resolved")))
        };
        let servers: Vec<String> = resolve(&cfg.bootstrap_servers, "bootstrapServers")?
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if servers.is_empty() {
            return Err(ScalerError::Config("bootstrapServers is empty".into()));
        }
        let group = resolve(&cfg.consumer_group, "consumerGroup")?;
        let topic = cfg
            .topic
            .as_ref()
            .map(|t| resolve(t, "topic"))
            .transpose()?;
        Ok(KafkaScaler {
            cfg,
            servers,
            group,
            topic,
            previous: StdMutex::new(HashMap::new()),
        })
    }

    async fn bootstrap(&self) -> Result<Conn, ScalerError> {
        let mut last = None;
        for s in &self.servers {
            match Conn::connect(s).await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ScalerError::Connect("kafka: no bootstrap server".into())))
    }

    async fn coordinator(&self, conn: &mut Conn, meta: &ClusterMeta) -> Result<Conn, ScalerError> {
        let mut e = Enc::default();
        e.str(&self.group).i8(0);
        let body = conn.call(wire::FIND_COORDINATOR, 1, &e.0).await?;
        let mut d = Dec::new(&body);
        d.i32()?;
        let err = d.i16()?;
        d.str()?;
        let node = d.i32()?;
        let host = d.str()?;
        let port = d.i32()?;
        if err != 0 {
            return Err(kafka_error("finding the group coordinator", err));
        }
        let addr = meta
            .brokers
            .get(&node)
            .cloned()
            .unwrap_or_else(|| format!("{host}:{port}"));
        Conn::connect(&addr).await
    }

    /// Committed offsets: topic → partition → offset (-1: none).
    async fn committed(
        &self,
        coord: &mut Conn,
        topics: Option<&BTreeMap<String, Vec<i32>>>,
    ) -> Result<BTreeMap<String, BTreeMap<i32, i64>>, ScalerError> {
        let mut e = Enc::default();
        e.str(&self.group);
        match topics {
            None => {
                e.i32(-1);
            }
            Some(t) => {
                e.len(t.len());
                for (name, parts) in t {
                    e.str(name).len(parts.len());
                    for p in parts {
                        e.i32(*p);
                    }
                }
            }
        }
        let body = coord.call(wire::OFFSET_FETCH, 2, &e.0).await?;
        // Tansu 0.6 answers an all-topics fetch with only an error code: no topics.
        if topics.is_none() && body.len() < 6 {
            return Ok(BTreeMap::new());
        }
        let mut d = Dec::new(&body);
        let mut out: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
        for _ in 0..d.array_len()? {
            let name = d.str()?;
            for _ in 0..d.array_len()? {
                let p = d.i32()?;
                let off = d.i64()?;
                d.str()?;
                let err = d.i16()?;
                if err != 0 {
                    return Err(kafka_error(
                        &format!("fetching the offset of {name}[{p}]"),
                        err,
                    ));
                }
                out.entry(name.clone()).or_default().insert(p, off);
            }
        }
        let err = d.i16()?;
        if err != 0 {
            return Err(kafka_error("fetching committed offsets", err));
        }
        Ok(out)
    }

    /// Latest offsets, asked of each partition's leader.
    async fn latest(
        &self,
        meta: &ClusterMeta,
        topics: &BTreeMap<String, Vec<i32>>,
    ) -> Result<BTreeMap<String, BTreeMap<i32, i64>>, ScalerError> {
        let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        for (t, parts) in topics {
            for p in parts {
                let leader = meta
                    .topics
                    .get(t)
                    .and_then(|ps| ps.get(p))
                    .copied()
                    .unwrap_or(-1);
                by_leader
                    .entry(leader)
                    .or_default()
                    .entry(t.clone())
                    .or_default()
                    .push(*p);
            }
        }
        let mut out: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
        for (leader, ts) in by_leader {
            let mut conn = match meta.brokers.get(&leader) {
                Some(addr) => Conn::connect(addr).await?,
                None => self.bootstrap().await?,
            };
            let mut e = Enc::default();
            e.i32(-1).len(ts.len());
            for (name, parts) in &ts {
                e.str(name).len(parts.len());
                for p in parts {
                    e.i32(*p).i64(-1);
                }
            }
            let body = conn.call(wire::LIST_OFFSETS, 1, &e.0).await?;
            let mut d = Dec::new(&body);
            for _ in 0..d.array_len()? {
                let name = d.str()?;
                for _ in 0..d.array_len()? {
                    let p = d.i32()?;
                    let err = d.i16()?;
                    d.i64()?;
                    let off = d.i64()?;
                    // KEDA treats a partition missing from the answer as lag 0.
                    if err == 0 {
                        out.entry(name.clone()).or_default().insert(p, off);
                    }
                }
            }
        }
        Ok(out)
    }

    /// `(lag, lag including persistent lag)`: KEDA's getTotalLag.
    async fn total_lag(&self) -> Result<(i64, i64), ScalerError> {
        let mut conn = self.bootstrap().await?;
        let all = metadata(&mut conn, &[]).await?;
        let mut coord = self.coordinator(&mut conn, &all).await?;
        let topic_names: Vec<String> = match &self.topic {
            Some(t) => vec![t.clone()],
            None => self
                .committed(&mut coord, None)
                .await?
                .into_keys()
                .collect(),
        };
        let meta = if topic_names.is_empty() {
            ClusterMeta::default()
        } else {
            metadata(&mut conn, &topic_names).await?
        };
        let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, parts) in &meta.topics {
            let ps: Vec<i32> = parts
                .keys()
                .copied()
                .filter(|p| {
                    self.cfg.partition_limitation.is_empty()
                        || self.cfg.partition_limitation.contains(p)
                })
                .collect();
            if ps.is_empty() {
                return Err(ScalerError::Query(format!(
                    "expected at least one active partition within the topic '{t}'"
                )));
            }
            topics.insert(t.clone(), ps);
        }
        let committed = self.committed(&mut coord, Some(&topics)).await?;
        let latest = self.latest(&meta, &topics).await?;
        let mut total = 0i64;
        let mut total_persistent = 0i64;
        let mut partitions = 0i64;
        let mut with_lag = 0i64;
        let mut previous = self.previous.lock().unwrap_or_else(|p| p.into_inner());
        for (t, parts) in &topics {
            partitions += parts.len() as i64;
            for p in parts {
                let consumer = committed
                    .get(t)
                    .and_then(|m| m.get(p))
                    .copied()
                    .unwrap_or(-1);
                let latest_off = latest.get(t).and_then(|m| m.get(p)).copied();
                let (lag, persistent) = partition_lag(
                    &self.cfg,
                    consumer,
                    latest_off,
                    &mut previous,
                    (t.clone(), *p),
                );
                total += lag;
                total_persistent += persistent;
                if lag > 0 {
                    with_lag += 1;
                }
            }
        }
        Ok((
            cap_lag(&self.cfg, total, partitions, with_lag),
            total_persistent,
        ))
    }
}

/// KEDA's getLagForPartition: `(lag, lag counting persistent lag)` for one partition.
fn partition_lag(
    cfg: &Kafka,
    consumer: i64,
    latest: Option<i64>,
    previous: &mut HashMap<(String, i32), i64>,
    key: (String, i32),
) -> (i64, i64) {
    if consumer == -1 {
        if cfg.offset_reset_policy == OffsetResetPolicy::Latest {
            let v = if cfg.scale_to_zero_on_invalid_offset {
                0
            } else {
                1
            };
            return (v, v);
        }
        if cfg.scale_to_zero_on_invalid_offset {
            return (0, 0);
        }
    }
    let Some(latest) = latest else {
        return (0, 0);
    };
    if consumer == -1 {
        return (latest, latest);
    }
    let lag = latest - consumer;
    if cfg.exclude_persistent_lag {
        match previous.insert(key, consumer) {
            Some(prev) if prev == consumer => return (0, lag),
            _ => {}
        }
    }
    (lag, lag)
}

/// KEDA: without `allowIdleConsumers` no more consumers than partitions (or partitions with
/// lag), optionally rounded to a factor of the partition count.
fn cap_lag(cfg: &Kafka, mut total: i64, partitions: i64, with_lag: i64) -> i64 {
    let threshold = cfg.lag_threshold.max(1);
    if !cfg.allow_idle_consumers
        || cfg.limit_to_partitions_with_lag
        || cfg.ensure_even_distribution_of_partitions
    {
        let mut upper = partitions;
        if cfg.ensure_even_distribution_of_partitions {
            total = next_factor(total, partitions, threshold) * threshold;
        }
        if cfg.limit_to_partitions_with_lag {
            upper = with_lag;
        }
        if total / threshold > upper {
            total = upper * threshold;
        }
    }
    total
}

/// KEDA's getNextFactorThatBalancesConsumersToTopicPartitions.
fn next_factor(total_lag: i64, partitions: i64, threshold: i64) -> i64 {
    (1..=partitions)
        .find(|f| partitions % f == 0 && f * threshold >= total_lag)
        .unwrap_or(partitions)
}

impl Scaler for KafkaScaler {
    fn get_metric_and_activity(
        &self,
        _now: Timestamp,
    ) -> BoxFuture<'_, Result<MetricSample, ScalerError>> {
        Box::pin(async move {
            let (lag, persistent) = self.total_lag().await?;
            Ok(MetricSample {
                value: lag as f64,
                active: persistent > self.cfg.activation_lag_threshold,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Kafka {
        let t = model::keda::Trigger {
            trigger_type: "kafka".into(),
            name: None,
            metadata: [
                ("bootstrapServers", "k:9092"),
                ("consumerGroup", "g"),
                ("topic", "t"),
                ("lagThreshold", "10"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            authentication_ref: None,
            metric_type: None,
            use_cached_metrics: false,
        };
        match model::keda::triggers::TriggerConfig::parse(&t) {
            Ok(model::keda::triggers::TriggerConfig::Kafka(k)) => k,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_offsets_follow_the_reset_policy() {
        let mut c = cfg();
        let mut prev = HashMap::new();
        let k = ("t".to_string(), 0);
        assert_eq!(
            partition_lag(&c, -1, Some(50), &mut prev, k.clone()),
            (1, 1)
        );
        c.offset_reset_policy = OffsetResetPolicy::Earliest;
        assert_eq!(
            partition_lag(&c, -1, Some(50), &mut prev, k.clone()),
            (50, 50)
        );
        c.scale_to_zero_on_invalid_offset = true;
        assert_eq!(
            partition_lag(&c, -1, Some(50), &mut prev, k.clone()),
            (0, 0)
        );
        c.exclude_persistent_lag = true;
        assert_eq!(
            partition_lag(&c, 40, Some(50), &mut prev, k.clone()),
            (10, 10)
        );
        assert_eq!(partition_lag(&c, 40, Some(60), &mut prev, k), (0, 20));
    }

    #[test]
    fn lag_is_capped_at_one_consumer_per_partition() {
        let mut c = cfg();
        assert_eq!(cap_lag(&c, 100, 3, 3), 30);
        c.allow_idle_consumers = true;
        assert_eq!(cap_lag(&c, 100, 3, 3), 100);
        c.allow_idle_consumers = false;
        c.ensure_even_distribution_of_partitions = true;
        // 35 lag wants 4 consumers; 4 divides 12 partitions → 40.
        assert_eq!(cap_lag(&c, 35, 12, 12), 40);
    }
}
