//! The instance catalog: what can be launched, what it offers the scheduler, what it costs.
//!
//! - [`Catalog::aws`]: the built-in AWS catalog, embedded from `data/ec2-instance-types.csv`
//!   (provenance in `data/README.md`). Allocatable resources follow Karpenter's AWS provider:
//!   VM memory overhead 7.5 % (rounded up to a MiB), kube-reserved CPU by the per-core table,
//!   kube-reserved memory `11 MiB × max pods + 255 MiB`, eviction threshold 100 MiB.
//! - [`Catalog::from_csv`]: the same format supplied by the user.
//! - [`Catalog::generated`]: Karpenter's benchmark catalog `fake.InstanceTypes(n)`.
//!
//! # Spot prices (a model, not data)
//! The CSV has no spot prices. kedge models the spot price of type `t` in zone `z` as
//! `on_demand(t) × (0.30 + 0.25 × h(t, z))`, where `h` is a stable hash mapped to [0, 1): spot
//! costs 30–55 % of on-demand (the 45–70 % discounts AWS's spot advisor typically shows), varies
//! by zone so zone choice matters as it does on AWS, and is identical on every run and machine.
//! Supply a catalog file with real prices when cost accuracy matters.

use std::collections::BTreeSet;
use std::sync::Arc;

use model::karpenter::{
    CAPACITY_TYPE_ON_DEMAND, CAPACITY_TYPE_SPOT, LABEL_ARCH, LABEL_CAPACITY_TYPE,
    LABEL_INSTANCE_CATEGORY, LABEL_INSTANCE_CPU, LABEL_INSTANCE_FAMILY, LABEL_INSTANCE_GENERATION,
    LABEL_INSTANCE_MEMORY, LABEL_INSTANCE_SIZE, LABEL_INSTANCE_TYPE, LABEL_OS, LABEL_ZONE,
};

use crate::requirements::{Requirement, Requirements};
use crate::resources::{GIB, MIB, Res};

/// The embedded AWS data.
pub const AWS_CSV: &str = include_str!("../data/ec2-instance-types.csv");
/// Zones the built-in catalog offers in us-east-1.
pub const AWS_ZONES: &[&str] = &["us-east-1a", "us-east-1b", "us-east-1c"];
/// Capacity types, in the order a tie on price is broken (reserved first, spot before
/// on-demand, as Karpenter prefers them).
pub const CAPACITY_TYPES: &[&str] = &["reserved", CAPACITY_TYPE_SPOT, CAPACITY_TYPE_ON_DEMAND];

/// Where and how an instance type can be bought. Zone and capacity type are shared strings:
/// a catalog holds thousands of offerings over a few zones and two or three capacity types.
#[derive(Debug, Clone, PartialEq)]
pub struct Offering {
    pub zone: Arc<str>,
    pub capacity_type: Arc<str>,
    /// USD per hour.
    pub price: f64,
    pub available: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceType {
    pub name: String,
    /// Well-known labels (instance type, arch, os, family, ... and, from the offerings,
    /// zone and capacity type).
    pub requirements: Requirements,
    pub capacity: Res,
    /// kube-reserved + system-reserved + eviction threshold.
    pub overhead: Res,
    pub allocatable: Res,
    pub offerings: Vec<Offering>,
}

impl InstanceType {
    /// Cheapest available offering whose zone and capacity type `reqs` allow.
    pub fn cheapest_offering(&self, reqs: &Requirements) -> Option<&Offering> {
        self.offerings
            .iter()
            .filter(|o| o.available && offering_allowed(o, reqs))
            .min_by(|a, b| offering_order(a, b))
    }
}

pub fn offering_allowed(o: &Offering, reqs: &Requirements) -> bool {
    reqs.get(LABEL_ZONE).is_none_or(|r| r.has(&o.zone))
        && reqs
            .get(LABEL_CAPACITY_TYPE)
            .is_none_or(|r| r.has(&o.capacity_type))
}

/// Price, then capacity type preference, then zone name: a total order so the choice is
/// deterministic.
pub fn offering_order(a: &Offering, b: &Offering) -> std::cmp::Ordering {
    let rank = |c: &str| CAPACITY_TYPES.iter().position(|x| *x == c).unwrap_or(9);
    a.price
        .total_cmp(&b.price)
        .then(rank(&a.capacity_type).cmp(&rank(&b.capacity_type)))
        .then(a.zone.cmp(&b.zone))
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog line {line}: {message}")]
    Line { line: usize, message: String },
    #[error(
        "catalog header is missing column `{0}`; expected name,family,category,generation,size,arch,vcpu,memory_mib,max_pods,<price column>"
    )]
    MissingColumn(String),
    #[error("catalog is empty: it has no instance types")]
    Empty,
}

#[derive(Debug, Default)]
pub struct Catalog {
    pub types: Vec<InstanceType>,
    /// What the scheduler derives from `types`, computed on first use ([`Catalog::index`]).
    /// A clone starts without it, so the usual "clone, then mark offerings unavailable" keeps
    /// it right; change `types` in place only before the catalog is first used.
    index: std::sync::OnceLock<Arc<CatalogIndex>>,
}

impl Clone for Catalog {
    fn clone(&self) -> Catalog {
        Catalog {
            types: self.types.clone(),
            index: Default::default(),
        }
    }
}

impl PartialEq for Catalog {
    fn eq(&self, o: &Catalog) -> bool {
        self.types == o.types
    }
}

/// Facts about a catalog that every scheduling pass needs, computed once per catalog rather
/// than on every pass (a simulated day runs tens of thousands of passes).
#[derive(Debug)]
pub struct CatalogIndex {
    pub zone_index: std::collections::HashMap<String, usize>,
    /// Per type: the offering bits (zone × capacity type) it has available.
    pub type_masks: Vec<u64>,
    /// Per type: (offering bit, price) of its available offerings.
    pub type_offers: Vec<Vec<(u64, f64)>>,
    /// Every label key some type defines.
    pub type_keys: BTreeSet<String>,
}

/// An offering's bit: zone index × (capacity types + 1) + capacity-type index (`None` past 64).
pub fn offer_bit(zone: usize, capacity_type: &str) -> Option<u32> {
    let nct = CAPACITY_TYPES.len() + 1;
    let ct = CAPACITY_TYPES
        .iter()
        .position(|x| *x == capacity_type)
        .unwrap_or(CAPACITY_TYPES.len());
    let bit = zone * nct + ct;
    (bit < 64).then_some(bit as u32)
}

/// Karpenter's AWS kube-reserved CPU: 6 % of the first core, 1 % of the second, 0.5 % of
/// cores 3–4, 0.25 % of the rest; each range truncated to whole millicores as upstream does.
pub fn aws_kube_reserved_cpu_millis(vcpu: i64) -> i64 {
    let cpu = vcpu * 1000;
    // (start, end, numerator, denominator) in millicores.
    let ranges: [(i64, i64, i64, i64); 4] = [
        (0, 1000, 6, 100),
        (1000, 2000, 1, 100),
        (2000, 4000, 5, 1000),
        (4000, i64::MAX, 25, 10_000),
    ];
    let mut total = 0;
    for (start, end, num, den) in ranges {
        if cpu >= start {
            let r = cpu.min(end) - start;
            total += r * num / den;
        }
    }
    total
}

/// Allocatable resources of an AWS instance type as Karpenter computes them.
/// Returns (capacity, overhead, allocatable).
pub fn aws_allocatable(vcpu: i64, memory_mib: i64, max_pods: i64) -> (Res, Res, Res) {
    // VM overhead: 7.5 % of nominal memory, rounded up to a whole MiB.
    let vm_overhead_mib = (memory_mib * 75 + 999) / 1000;
    let capacity = Res::new(vcpu * 1000, (memory_mib - vm_overhead_mib) * MIB, max_pods);
    let kube_reserved_mem = (11 * max_pods + 255) * MIB;
    let eviction = 100 * MIB;
    let overhead = Res::new(
        aws_kube_reserved_cpu_millis(vcpu),
        kube_reserved_mem + eviction,
        0,
    );
    (capacity, overhead, capacity.minus(&overhead))
}

/// Stable hash in [0, 1) for the spot model (FNV-1a; std's hasher is randomly seeded).
fn unit_hash(a: &str, b: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in a.bytes().chain([0u8]).chain(b.bytes()) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The documented spot model (see the module docs).
pub fn modelled_spot_price(instance_type: &str, zone: &str, on_demand: f64) -> f64 {
    on_demand * (0.30 + 0.25 * unit_hash(instance_type, zone))
}

impl Catalog {
    /// A catalog kept for the process's life: no spare capacity, one copy of each distinct
    /// requirement value set.
    fn of(mut types: Vec<InstanceType>) -> Catalog {
        let mut pool = std::collections::HashSet::new();
        for t in &mut types {
            t.requirements.intern(&mut pool);
        }
        types.shrink_to_fit();
        Catalog {
            types,
            index: Default::default(),
        }
    }

    /// A catalog of these types.
    pub fn new(types: Vec<InstanceType>) -> Catalog {
        Catalog {
            types,
            index: Default::default(),
        }
    }

    /// The scheduler's index of this catalog (computed once).
    pub fn index(&self) -> Arc<CatalogIndex> {
        self.index
            .get_or_init(|| {
                let zone_index: std::collections::HashMap<String, usize> = self
                    .zones()
                    .into_iter()
                    .enumerate()
                    .map(|(i, z)| (z, i))
                    .collect();
                let type_offers: Vec<Vec<(u64, f64)>> = self
                    .types
                    .iter()
                    .map(|t| {
                        t.offerings
                            .iter()
                            .filter(|o| o.available)
                            .filter_map(|o| {
                                offer_bit(zone_index[&*o.zone], &o.capacity_type)
                                    .map(|b| (1u64 << b, o.price))
                            })
                            .collect()
                    })
                    .collect();
                let type_masks = type_offers
                    .iter()
                    .map(|v| v.iter().fold(0u64, |m, (b, _)| m | b))
                    .collect();
                let type_keys: BTreeSet<&str> = self
                    .types
                    .iter()
                    .flat_map(|t| t.requirements.keys())
                    .collect();
                Arc::new(CatalogIndex {
                    zone_index,
                    type_masks,
                    type_offers,
                    type_keys: type_keys.into_iter().map(String::from).collect(),
                })
            })
            .clone()
    }

    /// The built-in AWS catalog: us-east-1 on-demand prices, zones a–c, spot by the model.
    pub fn aws() -> Catalog {
        // The embedded file is part of the build and covered by a test; a parse failure here
        // would be a packaging bug, so an empty catalog (which plans nothing) is the fallback.
        Catalog::from_csv(AWS_CSV, "od_price_us_east_1", AWS_ZONES).unwrap_or_default()
    }

    /// Parse the catalog CSV format (header row required; columns found by name). Types with an
    /// empty price get no offerings: they are listed but never launched.
    pub fn from_csv(
        text: &str,
        price_column: &str,
        zones: &[&str],
    ) -> Result<Catalog, CatalogError> {
        let shared_zones: Vec<Arc<str>> = zones.iter().map(|z| Arc::from(*z)).collect();
        let spot: Arc<str> = Arc::from(CAPACITY_TYPE_SPOT);
        let on_demand: Arc<str> = Arc::from(CAPACITY_TYPE_ON_DEMAND);
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next().ok_or(CatalogError::Empty)?;
        let cols: Vec<&str> = header.split(',').map(str::trim).collect();
        let col = |name: &str| {
            cols.iter()
                .position(|c| *c == name)
                .ok_or_else(|| CatalogError::MissingColumn(name.into()))
        };
        let (c_name, c_family, c_cat, c_gen, c_size, c_arch, c_vcpu, c_mem, c_pods, c_price) = (
            col("name")?,
            col("family")?,
            col("category")?,
            col("generation")?,
            col("size")?,
            col("arch")?,
            col("vcpu")?,
            col("memory_mib")?,
            col("max_pods")?,
            col(price_column)?,
        );
        let mut types = Vec::new();
        for (i, line) in lines {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let lineno = i + 1;
            let get = |c: usize| {
                f.get(c).copied().ok_or(CatalogError::Line {
                    line: lineno,
                    message: format!("expected {} columns, found {}", cols.len(), f.len()),
                })
            };
            let int = |c: usize, what: &str| -> Result<i64, CatalogError> {
                get(c)?
                    .parse::<i64>()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or(CatalogError::Line {
                        line: lineno,
                        message: format!(
                            "{what} must be a positive integer, found `{}`",
                            f.get(c).unwrap_or(&"")
                        ),
                    })
            };
            let name = get(c_name)?.to_string();
            let vcpu = int(c_vcpu, "vcpu")?;
            let mem = int(c_mem, "memory_mib")?;
            let pods = int(c_pods, "max_pods")?;
            let price = match get(c_price)? {
                "" => None,
                p => Some(
                    p.parse::<f64>()
                        .ok()
                        .filter(|v| *v >= 0.0 && v.is_finite())
                        .ok_or(CatalogError::Line {
                            line: lineno,
                            message: format!(
                                "{price_column} must be a non-negative number or empty, found `{p}`"
                            ),
                        })?,
                ),
            };
            let (capacity, overhead, allocatable) = aws_allocatable(vcpu, mem, pods);
            let mut offerings = Vec::with_capacity(zones.len() * 2);
            if let Some(od) = price {
                for (z, zone) in zones.iter().zip(&shared_zones) {
                    offerings.push(Offering {
                        zone: zone.clone(),
                        capacity_type: spot.clone(),
                        price: modelled_spot_price(&name, z, od),
                        available: true,
                    });
                    offerings.push(Offering {
                        zone: zone.clone(),
                        capacity_type: on_demand.clone(),
                        price: od,
                        available: true,
                    });
                }
            }
            let mut r = Requirements::new();
            let labels = [
                (LABEL_INSTANCE_TYPE, name.clone()),
                (LABEL_ARCH, get(c_arch)?.to_string()),
                (LABEL_OS, "linux".to_string()),
                (LABEL_INSTANCE_FAMILY, get(c_family)?.to_string()),
                (LABEL_INSTANCE_CATEGORY, get(c_cat)?.to_string()),
                (LABEL_INSTANCE_GENERATION, get(c_gen)?.to_string()),
                (LABEL_INSTANCE_SIZE, get(c_size)?.to_string()),
                (LABEL_INSTANCE_CPU, vcpu.to_string()),
                (LABEL_INSTANCE_MEMORY, mem.to_string()),
            ];
            for (k, v) in labels {
                r.add(k, Requirement::in_values([v]));
            }
            types.push(finish(name, r, capacity, overhead, allocatable, offerings));
        }
        if types.is_empty() {
            return Err(CatalogError::Empty);
        }
        Ok(Catalog::of(types))
    }

    /// [`Catalog::from_csv`] over any reader (a file the user supplied).
    pub fn from_reader<R: std::io::Read>(
        mut r: R,
        price_column: &str,
        zones: &[&str],
    ) -> Result<Catalog, CatalogError> {
        let mut text = String::new();
        r.read_to_string(&mut text)
            .map_err(|e| CatalogError::Line {
                line: 0,
                message: format!("cannot read the catalog: {e}"),
            })?;
        Catalog::from_csv(&text, price_column, zones)
    }

    /// Karpenter's benchmark catalog `fake.InstanceTypes(n)`: type `i` (`fake-it-i`) has `i+1`
    /// vCPU, `2(i+1)` GiB and `10(i+1)` pods; kube-reserved 100m CPU and 10 MiB; price
    /// `0.1 × cpu + 0.1 × memory bytes / 1e9` (upstream's `PriceFromResources`, which divides by
    /// 1e9 — so "0.1 per GiB" is really 0.1 per GB); offerings spot in test-zone-1/2 and
    /// on-demand in test-zone-1/2/3, all at that price; amd64; linux, windows and darwin.
    pub fn generated(n: usize) -> Catalog {
        let mut types = Vec::with_capacity(n);
        for i in 0..n as i64 {
            let name = format!("fake-it-{i}");
            let capacity = Res::new((i + 1) * 1000, (i + 1) * 2 * GIB, (i + 1) * 10);
            let overhead = Res::new(100, 10 * MIB, 0);
            let price = 0.1 * (i + 1) as f64 + 0.1 * capacity.mem as f64 / 1e9;
            let offerings = [
                ("test-zone-1", "spot"),
                ("test-zone-2", "spot"),
                ("test-zone-1", "on-demand"),
                ("test-zone-2", "on-demand"),
                ("test-zone-3", "on-demand"),
            ]
            .iter()
            .map(|(z, c)| Offering {
                zone: (*z).into(),
                capacity_type: (*c).into(),
                price,
                available: true,
            })
            .collect();
            let mut r = Requirements::new();
            r.add(LABEL_INSTANCE_TYPE, Requirement::in_values([name.clone()]));
            r.add(LABEL_ARCH, Requirement::in_values(["amd64"]));
            r.add(
                LABEL_OS,
                Requirement::in_values(["linux", "windows", "darwin"]),
            );
            r.add("integer", Requirement::in_values([(i + 1).to_string()]));
            types.push(finish(
                name,
                r,
                capacity,
                overhead,
                capacity.minus(&overhead),
                offerings,
            ));
        }
        Catalog::of(types)
    }

    pub fn get(&self, name: &str) -> Option<&InstanceType> {
        self.types.iter().find(|t| t.name == name)
    }

    /// All zones any offering mentions, sorted.
    pub fn zones(&self) -> Vec<String> {
        let s: BTreeSet<&str> = self
            .types
            .iter()
            .flat_map(|t| t.offerings.iter().map(|o| &*o.zone))
            .collect();
        s.into_iter().map(String::from).collect()
    }
}

fn finish(
    name: String,
    mut r: Requirements,
    capacity: Res,
    overhead: Res,
    allocatable: Res,
    offerings: Vec<Offering>,
) -> InstanceType {
    let zones: Vec<String> = offerings
        .iter()
        .filter(|o| o.available)
        .map(|o| o.zone.to_string())
        .collect();
    let cts: Vec<String> = offerings
        .iter()
        .filter(|o| o.available)
        .map(|o| o.capacity_type.to_string())
        .collect();
    r.add(LABEL_ZONE, Requirement::in_values(zones));
    r.add(LABEL_CAPACITY_TYPE, Requirement::in_values(cts));
    r.shrink_to_fit();
    InstanceType {
        name,
        requirements: r,
        capacity,
        overhead,
        allocatable,
        offerings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_keeps_one_copy_of_each_distinct_value_set() {
        let c = Catalog::aws();
        let set =
            |t: &InstanceType, k: &str| t.requirements.get(k).unwrap().values().unwrap().clone();
        let (a, b) = (c.get("m5.large").unwrap(), c.get("c6g.xlarge").unwrap());
        assert!(set(a, LABEL_ZONE).is_shared_with(&set(b, LABEL_ZONE)));
        assert!(set(a, LABEL_CAPACITY_TYPE).is_shared_with(&set(b, LABEL_CAPACITY_TYPE)));
        assert!(set(a, LABEL_OS).is_shared_with(&set(b, LABEL_OS)));
        assert!(!set(a, LABEL_ARCH).is_shared_with(&set(b, LABEL_ARCH)));
        assert_eq!(set(a, LABEL_ARCH).iter().collect::<Vec<_>>(), ["amd64"]);
        assert_eq!(set(b, LABEL_ARCH).iter().collect::<Vec<_>>(), ["arm64"]);
        assert_eq!(c.types.len(), c.types.capacity());
    }

    #[test]
    fn kube_reserved_cpu_table() {
        assert_eq!(aws_kube_reserved_cpu_millis(1), 60);
        assert_eq!(aws_kube_reserved_cpu_millis(2), 70);
        assert_eq!(aws_kube_reserved_cpu_millis(4), 80);
        assert_eq!(aws_kube_reserved_cpu_millis(8), 90);
        assert_eq!(aws_kube_reserved_cpu_millis(96), 80 + 230);
    }

    #[test]
    fn m5_large_allocatable_matches_karpenter() {
        // m5.large: 2 vCPU, 8192 MiB, 29 pods. VM overhead ceil(614.4) = 615 MiB;
        // kube-reserved 11*29+255 = 574 MiB; eviction 100 MiB.
        let c = Catalog::aws();
        let t = c.get("m5.large").unwrap();
        assert_eq!(t.capacity, Res::new(2000, 7577 * MIB, 29));
        assert_eq!(t.allocatable, Res::new(1930, (7577 - 574 - 100) * MIB, 29));
        let od = t
            .offerings
            .iter()
            .find(|o| &*o.capacity_type == "on-demand")
            .unwrap();
        assert_eq!(od.price, 0.096);
        for o in t.offerings.iter().filter(|o| &*o.capacity_type == "spot") {
            assert!(o.price >= 0.3 * 0.096 && o.price < 0.55 * 0.096, "{o:?}");
        }
    }

    #[test]
    fn builtin_catalog_loads_every_row_and_skips_unpriced_offerings() {
        let c = Catalog::aws();
        assert_eq!(c.types.len(), 1363);
        assert_eq!(
            c.types.iter().filter(|t| !t.offerings.is_empty()).count(),
            1345
        );
        assert!(
            c.get("hpc6a.48xlarge").unwrap().offerings.is_empty(),
            "no price, never launched"
        );
        assert_eq!(c.zones(), AWS_ZONES);
    }

    #[test]
    fn generated_catalog_matches_karpenters_fake() {
        let c = Catalog::generated(400);
        assert_eq!(c.types.len(), 400);
        let t = &c.types[3];
        assert_eq!(t.name, "fake-it-3");
        assert_eq!(t.capacity, Res::new(4000, 8 * GIB, 40));
        assert_eq!(t.allocatable, Res::new(3900, 8 * GIB - 10 * MIB, 40));
        let p = 0.4 + 0.1 * (8 * GIB) as f64 / 1e9;
        assert!(t.offerings.iter().all(|o| (o.price - p).abs() < 1e-12));
        assert_eq!(t.offerings.len(), 5);
    }

    #[test]
    fn user_catalog_errors_name_the_line() {
        let bad = "name,family,category,generation,size,arch,vcpu,memory_mib,max_pods,price\nx.large,x,x,1,large,amd64,two,1024,8,0.1\n";
        let e = Catalog::from_csv(bad, "price", &["z"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "catalog line 2: vcpu must be a positive integer, found `two`"
        );
        let e = Catalog::from_csv("name,vcpu\n", "price", &["z"]).unwrap_err();
        assert!(matches!(e, CatalogError::MissingColumn(_)));
        let ok = "name,family,category,generation,size,arch,vcpu,memory_mib,max_pods,price\nx.large,x,x,1,large,amd64,2,4096,8,0.1\n";
        let c = Catalog::from_reader(ok.as_bytes(), "price", &["z1", "z2"]).unwrap();
        assert_eq!(c.types[0].offerings.len(), 4);
    }
}
