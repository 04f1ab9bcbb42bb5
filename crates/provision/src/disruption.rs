//! Disruption: which nodes to remove or replace, and when — Karpenter's expiration, drift,
//! emptiness, multi-node and single-node consolidation, evaluated by re-running the same
//! scheduler ([`crate::scheduler`]) on a copy of the cluster.
//!
//! One call to [`disrupt`] is one pass of Karpenter's disruption controller: expired nodes are
//! always returned (expiry is forceful in karpenter.sh/v1: no budgets), then the first method
//! that finds something wins, in Karpenter's order — drift, emptiness, multi-node
//! consolidation, single-node consolidation. Before acting, the caller waits (Karpenter: 15 s)
//! and calls [`validate`] with the cluster as it is then; a command that no longer holds is
//! dropped.
//!
//! # Rules applied
//! - Candidates: nodes of a known NodePool, initialized (not in flight), not cordoned, without
//!   `karpenter.sh/do-not-disrupt` on the node or any of its pods, whose pods' PDBs allow the
//!   eviction, and — for consolidation — idle for `consolidateAfter` (no pod added or removed).
//! - Budgets per NodePool and reason (`Empty`, `Underutilized`, `Drifted`), cron windows with
//!   durations, percentages rounded up, minus nodes already being disrupted; a budget that does
//!   not parse allows 0 (fail closed).
//! - `WhenEmpty` only removes empty nodes. `WhenEmptyOrUnderutilized` also consolidates.
//!   `Balanced` (v1.14) approves a consolidation only when
//!   `(savings / pool cost) / (disruption / pool disruption) >= 1 / k` (k = consolidationThreshold,
//!   default 2), disruption being the pods' eviction costs plus 1 per node.
//! - A replacement must be strictly cheaper, and by default at least
//!   [`DisruptionOptions::min_savings_fraction`] (10 %) cheaper: marginal replace moves are the
//!   churn Karpenter users complain about. All-spot candidates are only deleted, never replaced
//!   (Karpenter's default with the SpotToSpotConsolidation gate off).

use std::collections::{BTreeMap, BTreeSet};

use clock::Timestamp;
use model::karpenter::{
    CAPACITY_TYPE_SPOT, ConsolidationPolicy, DisruptionReason, LABEL_CAPACITY_TYPE, NodePool,
};
use model::kube::{DaemonSet, PodDisruptionBudget};

use crate::DisruptionKind;
use crate::catalog::Catalog;
use crate::plan::{InstanceOption, PlannedClaim};
use crate::requirements::Requirements;
use crate::scheduler::{ExistingNode, PodId, Scheduler, SolveOptions, State};

#[derive(Debug, Clone, Default)]
pub struct DisruptionInput {
    pub nodepools: Vec<NodePool>,
    pub daemonsets: Vec<DaemonSet>,
    /// Every node (and in-flight NodeClaim) with its pods, price, creation time, hash.
    pub nodes: Vec<ExistingNode>,
    pub pdbs: Vec<PodDisruptionBudget>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DisruptionOptions {
    /// A replacement must cost at most `(1 - this) ×` the candidates' price. 0 gives
    /// Karpenter's "strictly cheaper".
    pub min_savings_fraction: f64,
    /// Multi-node consolidation looks at this many candidates at most (Karpenter: 100).
    pub multi_node_max: usize,
    /// Allow replacing spot nodes with spot nodes (Karpenter's SpotToSpotConsolidation gate).
    pub spot_to_spot: bool,
    /// Where a NodePool sets no budgets, empty nodes are removed outside Karpenter's default
    /// budget (`nodes: 10%`): deleting a node no pod runs on disrupts nothing, and 10 % of a
    /// shrinking pool lets a burst's emptied nodes go a few at a time for minutes. Budgets a
    /// NodePool sets bind as written; other reasons keep the default.
    pub empty_outside_default_budget: bool,
}

impl Default for DisruptionOptions {
    fn default() -> Self {
        DisruptionOptions {
            min_savings_fraction: 0.10,
            multi_node_max: 100,
            spot_to_spot: false,
            empty_outside_default_budget: false,
        }
    }
}

/// How a command disrupts its candidates.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    Delete,
    Replace(Box<PlannedClaim>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub kind: DisruptionKind,
    pub method: Method,
    /// Node names.
    pub candidates: Vec<String>,
    /// USD/hour saved (0 for expiry and drift, which are not about cost).
    pub savings_per_hour: f64,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    pub commands: Vec<Command>,
    /// Nodes of a NodePool that cannot be disrupted now, with why (do-not-disrupt, a PDB).
    pub skipped: Vec<Skipped>,
    /// One line per decision, including why candidates were skipped.
    pub explanations: Vec<String>,
}

/// A node the pass could not consider, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub node: String,
    pub why: String,
}

struct Ctx<'a, 'c> {
    s: Scheduler<'c>,
    base: State,
    input: &'a DisruptionInput,
    now: u64,
    pools: BTreeMap<String, usize>,
    opts: DisruptionOptions,
}

/// One disruption pass at `now`.
pub fn disrupt(
    catalog: &Catalog,
    input: &DisruptionInput,
    now: Timestamp,
    opts: DisruptionOptions,
) -> Decision {
    let mut d = Decision::default();
    // Only a NodePool's nodes are ever disrupted: without one there is nothing to decide,
    // and no reason to build the simulation (every node and pod of the cluster).
    if !input.nodes.iter().any(|n| {
        n.nodepool()
            .is_some_and(|p| input.nodepools.iter().any(|np| np.name() == p))
    }) {
        return d;
    }
    let ctx = build(catalog, input, now, opts);
    // Expiry: forceful, outside budgets.
    for (i, n) in input.nodes.iter().enumerate() {
        let Some(pool) = ctx.pool_of(i) else { continue };
        if n.in_flight || n.unschedulable {
            continue;
        }
        if let Some(ms) = pool.spec.template.spec.expire_after.or_never().millis()
            && now.as_millis() >= n.created_ms.saturating_add(ms)
        {
            let c = Command {
                kind: DisruptionKind::Expired,
                method: Method::Delete,
                candidates: vec![n.name.clone()],
                savings_per_hour: 0.0,
                explanation: format!(
                    "node {} expired: older than expireAfter {} (expiry ignores budgets)",
                    n.name, pool.spec.template.spec.expire_after.raw
                ),
            };
            d.commands.push(c);
        }
    }
    let expired: BTreeSet<String> = d
        .commands
        .iter()
        .flat_map(|c| c.candidates.clone())
        .collect();
    let (cands, skipped) = ctx.candidates(&expired);
    d.explanations.extend(
        skipped
            .iter()
            .map(|s| format!("node {} is not disrupted: {}", s.node, s.why)),
    );
    d.skipped = skipped;
    let mut budget = ctx.budgets();
    let method = ctx
        .drift(&cands, &mut budget)
        .or_else(|| ctx.emptiness(&cands, &mut budget))
        .or_else(|| ctx.multi_node(&cands, &mut budget))
        .or_else(|| ctx.single_node(&cands, &mut budget));
    if let Some(c) = method {
        d.commands.push(c);
    }
    for c in &d.commands {
        d.explanations.push(c.explanation.clone());
    }
    d
}

/// Re-check a command against the cluster as it is now (Karpenter's validation after its
/// 15 s delay): candidates must still be candidates and the simulation must still succeed
/// (with a replacement no more expensive than the one planned).
pub fn validate(
    catalog: &Catalog,
    input: &DisruptionInput,
    now: Timestamp,
    opts: DisruptionOptions,
    cmd: &Command,
) -> Result<(), String> {
    if cmd.kind == DisruptionKind::Expired {
        return Ok(());
    }
    let ctx = build(catalog, input, now, opts);
    let (cands, _) = ctx.candidates(&BTreeSet::new());
    let mut idx = Vec::new();
    for name in &cmd.candidates {
        let Some(c) = cands.iter().find(|c| &ctx.input.nodes[c.node].name == name) else {
            return Err(format!("{name} is no longer a disruption candidate"));
        };
        if cmd.kind == DisruptionKind::Drifted && !c.drifted {
            return Err(format!("{name} is no longer drifted"));
        }
        if cmd.kind == DisruptionKind::Empty && !c.empty {
            return Err(format!("{name} is no longer empty"));
        }
        idx.push(c.node);
    }
    let budget_reason = reason_of(cmd.kind);
    let mut budget = ctx.budgets();
    if let Some(r) = budget_reason {
        for &n in &idx {
            let pool = ctx.input.nodes[n]
                .nodepool()
                .unwrap_or_default()
                .to_string();
            let left = budget.entry((pool.clone(), r)).or_insert(0);
            if *left == 0 {
                return Err(format!(
                    "disruption budget of NodePool {pool} for {r:?} is exhausted"
                ));
            }
            *left -= 1;
        }
    }
    if matches!(
        cmd.kind,
        DisruptionKind::Underutilized | DisruptionKind::Drifted
    ) {
        let max_new = usize::from(matches!(cmd.method, Method::Replace(_)));
        match ctx.simulate(&idx, max_new) {
            Some(sim) => {
                if let (Method::Replace(planned), Some(new)) = (&cmd.method, sim.replacement_price)
                    && new > planned.price() + 1e-9
                {
                    return Err("the replacement would now cost more than planned".into());
                }
            }
            None => return Err("the candidates' pods no longer fit elsewhere".into()),
        }
    }
    Ok(())
}

fn reason_of(k: DisruptionKind) -> Option<DisruptionReason> {
    match k {
        DisruptionKind::Empty => Some(DisruptionReason::Empty),
        DisruptionKind::Underutilized => Some(DisruptionReason::Underutilized),
        DisruptionKind::Drifted => Some(DisruptionReason::Drifted),
        DisruptionKind::Expired => None,
    }
}

fn build<'a>(
    catalog: &'a Catalog,
    input: &'a DisruptionInput,
    now: Timestamp,
    opts: DisruptionOptions,
) -> Ctx<'a, 'a> {
    let mut s = Scheduler::from_nodes(catalog, &input.nodepools, &input.daemonsets, &input.nodes);
    let base = s.initial_state();
    let pools = input
        .nodepools
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name().to_string(), i))
        .collect();
    Ctx {
        s,
        base,
        input,
        now: now.as_millis(),
        pools,
        opts,
    }
}

#[derive(Debug, Clone)]
struct Candidate {
    node: usize,
    empty: bool,
    drifted: bool,
    consolidatable: bool,
    /// Karpenter's disruption cost: eviction costs × remaining lifetime fraction.
    cost: f64,
    pool: String,
}

struct Sim {
    replacement: Option<PlannedClaim>,
    replacement_price: Option<f64>,
}

impl Ctx<'_, '_> {
    fn pool_of(&self, n: usize) -> Option<&NodePool> {
        self.input.nodes[n]
            .nodepool()
            .and_then(|p| self.pools.get(p))
            .map(|&i| &self.input.nodepools[i])
    }

    fn candidates(&self, exclude: &BTreeSet<String>) -> (Vec<Candidate>, Vec<Skipped>) {
        let mut out = Vec::new();
        let mut skipped = Vec::new();
        // Pods covered per PDB across the cluster, to know what each allows.
        let mut pdb_allowed: Vec<i64> = self
            .input
            .pdbs
            .iter()
            .map(|b| {
                let healthy = self
                    .input
                    .nodes
                    .iter()
                    .flat_map(|n| &n.pods)
                    .filter(|p| b.covers(p))
                    .count() as i64;
                b.disruptions_allowed(healthy)
            })
            .collect();
        for (i, n) in self.input.nodes.iter().enumerate() {
            if exclude.contains(&n.name) || n.in_flight || n.unschedulable {
                continue;
            }
            let Some(pool) = self.pool_of(i) else {
                continue;
            };
            let why_not = if n.do_not_disrupt() {
                Some("node has karpenter.sh/do-not-disrupt".to_string())
            } else if let Some(p) = n.pods.iter().find(|p| p.do_not_disrupt()) {
                Some(format!(
                    "pod {}/{} has karpenter.sh/do-not-disrupt",
                    p.metadata.ns(),
                    p.metadata.name
                ))
            } else {
                let mut blocked = None;
                for (bi, b) in self.input.pdbs.iter().enumerate() {
                    let covered = n.pods.iter().filter(|p| b.covers(p)).count() as i64;
                    if covered > 0 && covered > pdb_allowed[bi] {
                        blocked = Some(format!(
                            "PodDisruptionBudget {}/{} allows {} eviction(s), node has {covered} covered pod(s)",
                            b.metadata.ns(),
                            b.metadata.name,
                            pdb_allowed[bi]
                        ));
                        break;
                    }
                }
                blocked
            };
            if let Some(w) = why_not {
                skipped.push(Skipped {
                    node: n.name.clone(),
                    why: w,
                });
                continue;
            }
            // Reserve this node's PDB evictions so that multi-node commands cannot exceed
            // what each PDB allows in total. (Conservative: also for single-node commands.)
            for (bi, b) in self.input.pdbs.iter().enumerate() {
                pdb_allowed[bi] -= n.pods.iter().filter(|p| b.covers(p)).count() as i64;
            }
            let hash_drift = n
                .nodepool_hash
                .as_ref()
                .is_some_and(|h| *h != pool.template_hash());
            let req_drift =
                requirements_drifted(&Requirements::from_nodepool(pool.requirements()), &n.labels);
            let consolidate_after = pool.spec.disruption.consolidate_after.or_never();
            let consolidatable = consolidate_after
                .millis()
                .is_some_and(|ms| self.now >= n.last_pod_event_ms.saturating_add(ms));
            let lifetime = match pool.spec.template.spec.expire_after.or_never().millis() {
                Some(ms) if ms > 0 => {
                    (1.0 - self.now.saturating_sub(n.created_ms) as f64 / ms as f64).clamp(0.0, 1.0)
                }
                _ => 1.0,
            };
            let cost = n.pods.iter().map(|p| p.eviction_cost()).sum::<f64>() * lifetime;
            out.push(Candidate {
                node: i,
                empty: n.pods.is_empty(),
                drifted: hash_drift || req_drift,
                consolidatable,
                cost,
                pool: pool.name().to_string(),
            });
        }
        out.sort_by(|a, b| a.cost.total_cmp(&b.cost).then(a.node.cmp(&b.node)));
        (out, skipped)
    }

    /// Remaining disruptions allowed per (NodePool, reason) now.
    fn budgets(&self) -> BTreeMap<(String, DisruptionReason), u64> {
        let mut out = BTreeMap::new();
        for p in &self.input.nodepools {
            let nodes: Vec<&ExistingNode> = self
                .input
                .nodes
                .iter()
                .filter(|n| n.nodepool() == Some(p.name()))
                .collect();
            let total = nodes.len() as u64;
            let disrupting = nodes.iter().filter(|n| n.unschedulable).count() as u64;
            let spare_empty =
                self.opts.empty_outside_default_budget && !p.spec.disruption.budgets.is_set();
            for reason in [
                DisruptionReason::Empty,
                DisruptionReason::Underutilized,
                DisruptionReason::Drifted,
            ] {
                let mut allowed = u64::MAX;
                if spare_empty && reason == DisruptionReason::Empty {
                    out.insert((p.name().to_string(), reason), allowed);
                    continue;
                }
                for b in p
                    .spec
                    .disruption
                    .budgets
                    .iter()
                    .filter(|b| b.applies_to(reason))
                {
                    match (b.active_at(self.now), b.allowed(total)) {
                        (Some(true), Some(a)) => allowed = allowed.min(a),
                        (Some(false), Some(_)) => {}
                        // Unparsable budget: fail closed.
                        _ => allowed = 0,
                    }
                }
                out.insert(
                    (p.name().to_string(), reason),
                    allowed.saturating_sub(disrupting),
                );
            }
        }
        out
    }

    fn take_budget(
        budget: &mut BTreeMap<(String, DisruptionReason), u64>,
        pool: &str,
        r: DisruptionReason,
    ) -> bool {
        match budget.get_mut(&(pool.to_string(), r)) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }

    fn policy(&self, pool: &str) -> ConsolidationPolicy {
        self.pools
            .get(pool)
            .map(|&i| self.input.nodepools[i].spec.disruption.consolidation_policy)
            .unwrap_or_default()
    }

    /// Schedule the candidates' pods elsewhere with at most `max_new` new NodeClaims.
    fn simulate(&self, nodes: &[usize], max_new: usize) -> Option<Sim> {
        let mut st = self.base.clone();
        let mut pods: Vec<PodId> = Vec::new();
        for &n in nodes {
            self.s.remove_node(&mut st, n);
            pods.extend(self.s.node_pods[n].iter().copied());
        }
        let sol = self.s.solve(
            &mut st,
            &pods,
            SolveOptions {
                max_new: Some(max_new),
            },
        );
        if !sol.failures.is_empty() {
            return None;
        }
        self.s.attach(&mut st, &sol);
        let bin = st.new.first();
        let replacement = bin.map(|b| {
            let pool = self.s.pools[b.pool].pool.name().to_string();
            let options: Vec<InstanceOption> = self
                .s
                .priced_options(b)
                .into_iter()
                .map(|(t, price, zone, ct)| InstanceOption {
                    instance_type: self.s.catalog.types[t].name.clone(),
                    price,
                    zone,
                    capacity_type: ct,
                })
                .collect();
            PlannedClaim {
                name: format!("{pool}-replacement"),
                nodepool: pool,
                pods: b
                    .pods
                    .iter()
                    .map(|p| self.s.pod_name(*p).to_string())
                    .collect(),
                intent_pods: 0,
                requests: b.requests,
                requirements: b.reqs.clone(),
                options,
                explanation: String::new(),
            }
        });
        let replacement_price = replacement.as_ref().map(|r| r.price());
        Some(Sim {
            replacement,
            replacement_price,
        })
    }

    fn drift(
        &self,
        cands: &[Candidate],
        budget: &mut BTreeMap<(String, DisruptionReason), u64>,
    ) -> Option<Command> {
        for c in cands.iter().filter(|c| c.drifted) {
            if !Self::take_budget(budget, &c.pool, DisruptionReason::Drifted) {
                continue;
            }
            let n = &self.input.nodes[c.node];
            // Drift replaces regardless of cost: the node no longer matches its NodePool.
            let sim = if c.empty {
                Some(Sim {
                    replacement: None,
                    replacement_price: None,
                })
            } else {
                self.simulate(&[c.node], 1)
            };
            let Some(sim) = sim else { continue };
            let method = match sim.replacement {
                Some(r) => Method::Replace(Box::new(r)),
                None => Method::Delete,
            };
            return Some(Command {
                kind: DisruptionKind::Drifted,
                explanation: format!(
                    "node {} drifted from NodePool {} (template or requirements changed): {}",
                    n.name,
                    c.pool,
                    describe(&method)
                ),
                method,
                candidates: vec![n.name.clone()],
                savings_per_hour: 0.0,
            });
        }
        None
    }

    fn emptiness(
        &self,
        cands: &[Candidate],
        budget: &mut BTreeMap<(String, DisruptionReason), u64>,
    ) -> Option<Command> {
        let mut names = Vec::new();
        let mut savings = 0.0;
        for c in cands.iter().filter(|c| c.empty && c.consolidatable) {
            if Self::take_budget(budget, &c.pool, DisruptionReason::Empty) {
                names.push(self.input.nodes[c.node].name.clone());
                savings += self.input.nodes[c.node].price;
            }
        }
        (!names.is_empty()).then(|| Command {
            kind: DisruptionKind::Empty,
            method: Method::Delete,
            explanation: format!(
                "{} empty node(s) deleted after consolidateAfter ({}), saving ${savings:.4}/h",
                names.len(),
                names.join(", ")
            ),
            candidates: names,
            savings_per_hour: savings,
        })
    }

    fn consolidation_candidates(&self, cands: &[Candidate]) -> Vec<Candidate> {
        cands
            .iter()
            .filter(|c| {
                c.consolidatable
                    && !c.empty
                    && self.policy(&c.pool) != ConsolidationPolicy::WhenEmpty
            })
            .cloned()
            .collect()
    }

    /// Evaluate deleting or replacing `nodes`: the command, or why not.
    fn evaluate(&self, nodes: &[usize]) -> Result<Command, String> {
        let price: f64 = nodes.iter().map(|&n| self.input.nodes[n].price).sum();
        let all_spot = nodes.iter().all(|&n| {
            self.input.nodes[n]
                .labels
                .get(LABEL_CAPACITY_TYPE)
                .map(String::as_str)
                == Some(CAPACITY_TYPE_SPOT)
        });
        let names: Vec<String> = nodes
            .iter()
            .map(|&n| self.input.nodes[n].name.clone())
            .collect();
        let (method, savings) = if let Some(_sim) = self.simulate(nodes, 0) {
            (Method::Delete, price)
        } else {
            if all_spot && !self.opts.spot_to_spot {
                return Err(
                    "spot nodes are only deleted, not replaced (SpotToSpotConsolidation off)"
                        .into(),
                );
            }
            let sim = self
                .simulate(nodes, 1)
                .ok_or("their pods do not fit the rest of the cluster plus one new node")?;
            let mut r = sim.replacement.ok_or("no replacement")?;
            // Only options cheap enough to be worth it remain, so launch cannot pick a pricier one.
            let ceiling = price * (1.0 - self.opts.min_savings_fraction);
            r.options.retain(|o| o.price < price && o.price <= ceiling);
            if r.options.is_empty() {
                return Err(format!(
                    "no replacement saves at least {:.0}% of ${price:.4}/h",
                    self.opts.min_savings_fraction * 100.0
                ));
            }
            let savings = price - r.price();
            (Method::Replace(Box::new(r)), savings)
        };
        // Balanced: savings must justify the disruption.
        let pools: BTreeSet<&str> = nodes
            .iter()
            .filter_map(|&n| self.input.nodes[n].nodepool())
            .collect();
        if pools
            .iter()
            .any(|p| self.policy(p) == ConsolidationPolicy::Balanced)
        {
            let k = pools
                .iter()
                .filter_map(|p| self.pools.get(*p))
                .map(|&i| self.input.nodepools[i].spec.disruption.balanced_k())
                .fold(f64::INFINITY, f64::min);
            let in_pools = |n: &&ExistingNode| n.nodepool().is_some_and(|p| pools.contains(p));
            let pool_cost: f64 = self
                .input
                .nodes
                .iter()
                .filter(in_pools)
                .map(|n| n.price)
                .sum();
            let pool_disruption: f64 = self
                .input
                .nodes
                .iter()
                .filter(in_pools)
                .map(|n| 1.0 + n.pods.iter().map(|p| p.eviction_cost()).sum::<f64>())
                .sum();
            let disruption: f64 = nodes
                .iter()
                .map(|&n| {
                    1.0 + self.input.nodes[n]
                        .pods
                        .iter()
                        .map(|p| p.eviction_cost())
                        .sum::<f64>()
                })
                .sum();
            let score =
                (savings / pool_cost.max(1e-12)) / (disruption / pool_disruption.max(1e-12));
            if score < 1.0 / k {
                return Err(format!(
                    "Balanced: score {score:.3} below 1/{k} (saves {:.1}% of the pool's cost for {:.1}% of its disruption)",
                    100.0 * savings / pool_cost.max(1e-12),
                    100.0 * disruption / pool_disruption.max(1e-12)
                ));
            }
        }
        Ok(Command {
            kind: DisruptionKind::Underutilized,
            explanation: format!(
                "consolidate {} (${price:.4}/h): {}, saving ${savings:.4}/h",
                names.join(", "),
                describe(&method)
            ),
            method,
            candidates: names,
            savings_per_hour: savings,
        })
    }

    fn within_budget(
        &self,
        cands: &[Candidate],
        budget: &BTreeMap<(String, DisruptionReason), u64>,
    ) -> Vec<Candidate> {
        let mut left = budget.clone();
        cands
            .iter()
            .filter(|c| Self::take_budget(&mut left, &c.pool, DisruptionReason::Underutilized))
            .cloned()
            .collect()
    }

    fn multi_node(
        &self,
        cands: &[Candidate],
        budget: &mut BTreeMap<(String, DisruptionReason), u64>,
    ) -> Option<Command> {
        let cs = self.within_budget(&self.consolidation_candidates(cands), budget);
        let cs: Vec<Candidate> = cs.into_iter().take(self.opts.multi_node_max).collect();
        if cs.len() < 2 {
            return None;
        }
        // Binary search for the longest prefix that consolidates (Karpenter's
        // firstNConsolidationOption); a prefix of one is single-node's job.
        let (mut lo, mut hi) = (2usize, cs.len());
        let mut best = None;
        while lo <= hi {
            let mid = (lo + hi) / 2;
            let idx: Vec<usize> = cs[..mid].iter().map(|c| c.node).collect();
            match self.evaluate(&idx) {
                Ok(cmd) => {
                    best = Some(cmd);
                    lo = mid + 1;
                }
                Err(_) => hi = mid - 1,
            }
        }
        let cmd = best?;
        for name in &cmd.candidates {
            if let Some(c) = cs.iter().find(|c| &self.input.nodes[c.node].name == name) {
                Self::take_budget(budget, &c.pool, DisruptionReason::Underutilized);
            }
        }
        Some(cmd)
    }

    fn single_node(
        &self,
        cands: &[Candidate],
        budget: &mut BTreeMap<(String, DisruptionReason), u64>,
    ) -> Option<Command> {
        for c in self.within_budget(&self.consolidation_candidates(cands), budget) {
            if let Ok(cmd) = self.evaluate(&[c.node]) {
                Self::take_budget(budget, &c.pool, DisruptionReason::Underutilized);
                return Some(cmd);
            }
        }
        None
    }
}

/// Karpenter's requirement drift: a NodePool requirement the node's labels no longer satisfy.
/// A well-known label the node does not carry is not drift (older nodes may lack newer
/// labels), as upstream checks with `AllowUndefinedWellKnownLabels`.
fn requirements_drifted(reqs: &Requirements, labels: &model::kube::Labels) -> bool {
    reqs.iter().any(|(k, r)| match labels.get(k) {
        Some(v) => !r.has(v),
        None => {
            !(model::karpenter::is_well_known_label(k)
                || matches!(
                    r.operator(),
                    model::kube::Operator::NotIn | model::kube::Operator::DoesNotExist
                ))
        }
    })
}

fn describe(m: &Method) -> String {
    match m {
        Method::Delete => "delete (its pods fit on other nodes)".into(),
        Method::Replace(r) => match r.options.first() {
            Some(o) => format!("replace with {} at ${:.4}/h", o.instance_type, o.price),
            None => "replace".into(),
        },
    }
}
