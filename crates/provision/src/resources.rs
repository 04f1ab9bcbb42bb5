//! A fixed-size resource vector for the scheduler's hot loops.
//!
//! The model keeps `BTreeMap<String, Quantity>` (what manifests say); the scheduler converts
//! once to [`Res`] — millicores, bytes, pod slots — so a fit check is three integer compares and
//! never allocates. Resources a pod requests beyond these three (GPUs, hugepages, ...) are kept
//! by name so the pod can be reported unschedulable with the reason, instead of being ignored.

use model::kube::{RESOURCE_CPU, RESOURCE_MEMORY, RESOURCE_PODS, ResourceList};
use model::quantity::Quantity;

/// CPU in millicores, memory in bytes, pods in slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Res {
    pub cpu: i64,
    pub mem: i64,
    pub pods: i64,
}

pub const MIB: i64 = 1024 * 1024;
pub const GIB: i64 = 1024 * MIB;

impl Res {
    pub const ZERO: Res = Res {
        cpu: 0,
        mem: 0,
        pods: 0,
    };

    pub const fn new(cpu_millis: i64, mem_bytes: i64, pods: i64) -> Res {
        Res {
            cpu: cpu_millis,
            mem: mem_bytes,
            pods,
        }
    }
    /// Does `self` fit inside `cap` on every dimension?
    #[inline]
    pub fn fits_in(&self, cap: &Res) -> bool {
        self.cpu <= cap.cpu && self.mem <= cap.mem && self.pods <= cap.pods
    }
    #[inline]
    pub fn plus(&self, o: &Res) -> Res {
        Res {
            cpu: self.cpu + o.cpu,
            mem: self.mem + o.mem,
            pods: self.pods + o.pods,
        }
    }
    #[inline]
    pub fn minus(&self, o: &Res) -> Res {
        Res {
            cpu: self.cpu - o.cpu,
            mem: self.mem - o.mem,
            pods: self.pods - o.pods,
        }
    }
    /// Per-dimension maximum.
    #[inline]
    pub fn max_each(&self, o: &Res) -> Res {
        Res {
            cpu: self.cpu.max(o.cpu),
            mem: self.mem.max(o.mem),
            pods: self.pods.max(o.pods),
        }
    }
    pub fn is_zero(&self) -> bool {
        *self == Res::ZERO
    }
    pub fn cpu_cores(&self) -> f64 {
        self.cpu as f64 / 1000.0
    }
    pub fn mem_gib(&self) -> f64 {
        self.mem as f64 / GIB as f64
    }

    /// Convert a resource list; returns the vector and the names of any other resources
    /// requested with a non-zero amount.
    pub fn from_list(list: &ResourceList) -> (Res, Vec<String>) {
        let mut r = Res::ZERO;
        let mut other = Vec::new();
        for (k, v) in list {
            match k.as_str() {
                RESOURCE_CPU => r.cpu = v.millis(),
                // Quantities are milli-units; a byte request of 1.5 needs 2 bytes.
                RESOURCE_MEMORY => r.mem = v.units_ceil(),
                RESOURCE_PODS => r.pods = v.units_ceil(),
                _ if v.millis() > 0 => other.push(k.clone()),
                _ => {}
            }
        }
        (r, other)
    }

    pub fn to_list(&self) -> ResourceList {
        let mut l = ResourceList::new();
        l.insert(RESOURCE_CPU.into(), Quantity::from_millis(self.cpu));
        l.insert(RESOURCE_MEMORY.into(), Quantity::from_units(self.mem));
        l.insert(RESOURCE_PODS.into(), Quantity::from_units(self.pods));
        l
    }
}

impl std::fmt::Display for Res {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cpu {}m, memory {}Mi, pods {}",
            self.cpu,
            self.mem / MIB,
            self.pods
        )
    }
}
