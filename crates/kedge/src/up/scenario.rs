//! The `kedge up` scenario file (YAML). See `examples/up/README.md` for the format.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

fn dur<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    workload::parse_duration(&s).map_err(serde::de::Error::custom)
}

fn opt_dur<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| workload::parse_duration(&s).map_err(serde::de::Error::custom))
        .transpose()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Whole run; defaults to the sum of the phases.
    #[serde(default, deserialize_with = "opt_dur")]
    pub duration: Option<Duration>,
    /// Control-loop period.
    #[serde(default = "default_tick", deserialize_with = "dur")]
    pub tick: Duration,
    /// Launch → Ready for a virtual node.
    #[serde(default = "default_boot", deserialize_with = "dur")]
    pub boot_delay: Duration,
    /// Joint decisions: request capacity in the same step as a scale-out (default), or only
    /// once the pods are Pending (as KEDA and Karpenter side by side).
    #[serde(default = "default_joint")]
    pub joint: bool,
    pub baseline: Baseline,
    pub pod: PodSpec,
    #[serde(default)]
    pub consumer: Consumer,
    #[serde(default)]
    pub queue: Queue,
    /// Manifest files (ScaledObject, TriggerAuthentication, NodePool), relative to the
    /// scenario file.
    pub manifests: Vec<PathBuf>,
    pub phases: Vec<Phase>,
    #[serde(default)]
    pub chaos: Vec<Chaos>,
}

fn default_tick() -> Duration {
    Duration::from_millis(250)
}
fn default_boot() -> Duration {
    Duration::from_secs(15)
}
fn default_joint() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub instance_type: String,
    pub count: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodSpec {
    pub cpu: String,
    pub memory: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Consumer {
    pub work: String,
    /// Messages per receive (1–10). Each one received is in flight until done, and the
    /// `aws-sqs-queue` trigger counts in-flight messages, so a batch of 10 worked one at a
    /// time makes a busy consumer look like five consumers' worth of backlog.
    pub batch: u8,
    pub concurrency: u16,
    pub visibility_timeout: String,
    pub wait_time: String,
    pub grace_period: String,
}

impl Default for Consumer {
    fn default() -> Self {
        Consumer {
            work: "1s".into(),
            batch: 10,
            concurrency: 1,
            visibility_timeout: "30s".into(),
            wait_time: "2s".into(),
            grace_period: "10s".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Queue {
    pub name: String,
    pub table: String,
    pub max_receive_count: u32,
    /// FIFO message groups the producers spread over (caps useful consumers).
    pub groups: u32,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            name: "payments-queue.fifo".into(),
            table: "payments".into(),
            max_receive_count: 5,
            groups: 256,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    #[serde(deserialize_with = "dur")]
    pub duration: Duration,
    pub producers: u32,
    /// Messages per second per producer.
    #[serde(default)]
    pub rate: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chaos {
    #[serde(deserialize_with = "dur")]
    pub at: Duration,
    /// SIGKILL this many busy consumers.
    pub sigkill_busy: usize,
}

/// The longest any scenario duration may be (30 days).
const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The built-in scenario (`examples/up/demo.yaml`) and its manifests.
pub const BUILTIN: &str = include_str!("../../../../examples/up/demo.yaml");
pub const BUILTIN_MANIFESTS: &str = include_str!("../../../../examples/up/demo-manifests.yaml");

/// A scenario with its manifests' text.
pub struct Loaded {
    pub scenario: Scenario,
    pub manifests: Vec<(String, String)>,
}

impl Scenario {
    pub fn total(&self) -> Duration {
        // Saturating: `validate` bounds the sum, but an unvalidated scenario must not panic.
        self.duration.unwrap_or_else(|| {
            self.phases
                .iter()
                .fold(Duration::ZERO, |t, p| t.saturating_add(p.duration))
        })
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.phases.is_empty(),
            "phases: at least one phase is needed"
        );
        anyhow::ensure!(
            self.tick >= Duration::from_millis(10),
            "tick: at least 10ms"
        );
        // Durations are added to clock readings while the scenario runs; beyond this bound
        // that arithmetic could overflow (a fuzzed scenario found it: phases of 1e19 s).
        let longest = [self.total(), self.tick, self.boot_delay]
            .into_iter()
            .chain(self.phases.iter().map(|p| p.duration))
            .chain(self.chaos.iter().map(|c| c.at))
            .max()
            .unwrap_or_default();
        anyhow::ensure!(
            longest <= MAX_DURATION,
            "durations (the phases' sum, duration, tick, boot_delay, chaos at) must be at most 30 days"
        );
        anyhow::ensure!(
            (1..=10).contains(&self.consumer.batch),
            "consumer.batch must be 1–10 (SQS's receive limit)"
        );
        for (i, p) in self.phases.iter().enumerate() {
            anyhow::ensure!(
                p.rate >= 0.0 && p.rate.is_finite(),
                "phases[{i}].rate must be a non-negative number"
            );
            anyhow::ensure!(
                p.producers == 0 || p.rate > 0.0,
                "phases[{i}]: producers need a rate > 0"
            );
        }
        Ok(())
    }
}

pub fn load(path: Option<&Path>) -> anyhow::Result<Loaded> {
    let (text, base, name) = match path {
        Some(p) => (
            std::fs::read_to_string(p)
                .with_context(|| format!("reading the scenario {}", p.display()))?,
            p.parent().map(Path::to_path_buf),
            p.display().to_string(),
        ),
        None => (BUILTIN.to_string(), None, "built-in scenario".to_string()),
    };
    let scenario: Scenario = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("{name}: not a valid scenario (see examples/up/README.md)"))?;
    scenario.validate().with_context(|| name.clone())?;
    let mut manifests = Vec::new();
    match base {
        None => manifests.push(("demo-manifests.yaml".into(), BUILTIN_MANIFESTS.into())),
        Some(base) => {
            for m in &scenario.manifests {
                let p = base.join(m);
                let t = std::fs::read_to_string(&p)
                    .with_context(|| format!("{name}: reading manifest {}", p.display()))?;
                manifests.push((p.display().to_string(), t));
            }
        }
    }
    Ok(Loaded {
        scenario,
        manifests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_parses_and_lasts_about_four_minutes() {
        let l = load(None).expect("built-in loads");
        let t = l.scenario.total().as_secs();
        assert!((200..=300).contains(&t), "{t}");
        assert_eq!(l.scenario.baseline.count, 2);
        assert_eq!(l.manifests.len(), 1);
    }

    #[test]
    fn durations_beyond_thirty_days_are_rejected_not_overflowed() {
        let mut s = serde_yaml_ng::from_str::<Scenario>(BUILTIN).expect("built-in");
        s.validate().expect("the built-in is valid");
        s.phases[0].duration = Duration::from_secs(u64::MAX);
        s.phases[1].duration = Duration::from_secs(u64::MAX);
        assert_eq!(s.total(), Duration::MAX);
        let e = s.validate().expect_err("too long");
        assert!(e.to_string().contains("at most 30 days"), "{e}");
        let mut s = serde_yaml_ng::from_str::<Scenario>(BUILTIN).expect("built-in");
        s.boot_delay = MAX_DURATION + Duration::from_secs(1);
        assert!(s.validate().is_err());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let bad = BUILTIN.replace("boot_delay:", "boot_dleay:");
        let e = serde_yaml_ng::from_str::<Scenario>(&bad).expect_err("unknown field");
        assert!(e.to_string().contains("boot_dleay"), "{e}");
    }
}
