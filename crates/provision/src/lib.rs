//! Node provisioning and disruption decisions with Karpenter's NodePool semantics.
//!
//! Pure decision core: no wall clock, no Kubernetes client, no cloud SDK, no I/O beyond parsing
//! a catalog handed in as text. Time arrives as a [`clock::Timestamp`] argument and randomness
//! (benchmark fixtures only) from a seeded RNG; decisions leave as data.
//!
//! # Layout
//! - [`resources`]: the fixed-size resource vector the hot loops use.
//! - [`requirements`]: Karpenter's requirement algebra (In/NotIn/Exists/DoesNotExist/Gt/Lt/...).
//! - [`typeset`]: bitsets of instance-type indices (a NodeClaim's remaining candidates).
//! - [`catalog`]: instance types and offerings — built-in AWS catalog (embedded CSV, Karpenter's
//!   allocatable maths, documented spot model), user CSV, Karpenter's generated benchmark types.
//! - [`scheduler`]: the scheduling simulation shared by provisioning and consolidation.
//! - [`plan`]: provisioning — pending pods (and announced replicas) to NodeClaims, with cost,
//!   lower bound and one-line explanations; the batching window.
//! - [`disruption`]: emptiness, consolidation (single/multi-node, Balanced), expiry, drift,
//!   budgets, do-not-disrupt, PDBs → actions.
//! - [`bench`]: Karpenter's benchmark fixtures (diverse pods, a consolidation cluster) and the
//!   runs `kedge bench schedule|consolidate` time and print.
//! - [`DisruptionKind`] (here): why a node is disrupted, shared by disruption and its callers.

pub mod bench;
pub mod catalog;
pub mod disruption;
pub mod plan;
pub mod requirements;
pub mod resources;
pub mod scheduler;
pub mod typeset;

/// Why a node is disrupted (Karpenter's disruption reasons plus expiry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DisruptionKind {
    Empty,
    Underutilized,
    Drifted,
    Expired,
}
