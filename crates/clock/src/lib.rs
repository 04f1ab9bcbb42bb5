//! Injected time for kedge.
//!
//! Every decision in kedge (message visibility, scaling windows, consolidation delays) is a
//! function of "now". Code that must stay deterministic never reads the wall clock; it takes a
//! [`Clock`] (or a [`Timestamp`] argument) instead. Production wires in [`SystemClock`]; tests
//! wire in [`ManualClock`] and step it.
//!
//! # Layout
//! - [`Timestamp`]: milliseconds since the Unix epoch, the one time type shared by the crates.
//! - [`Clock`]: the trait; [`SystemClock`] and [`ManualClock`] implement it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A point in time: milliseconds since the Unix epoch (UTC).
///
/// Milliseconds are the resolution AWS uses for SQS timestamps and are fine-grained enough
/// for scaling decisions; a plain integer keeps arithmetic exact and serialisation trivial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }
    pub fn from_secs(s: u64) -> Self {
        Timestamp(s.saturating_mul(1000))
    }
    pub fn as_millis(self) -> u64 {
        self.0
    }
    pub fn as_secs(self) -> u64 {
        self.0 / 1000
    }
    /// `self + d`, saturating at the far future instead of overflowing. (Named like
    /// `Add::add` on purpose; saturation is the point, so it is not an operator.)
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(d.as_millis().min(u64::MAX as u128) as u64),
        )
    }
    /// `self - d`, saturating at the epoch.
    #[allow(clippy::should_implement_trait)]
    pub fn sub(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_sub(d.as_millis().min(u64::MAX as u128) as u64),
        )
    }
    /// Time elapsed from `earlier` to `self`; zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1000, self.0 % 1000)
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The wall clock. The only place in kedge that reads `SystemTime::now`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned read of the wall clock
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_millis() as u64)
    }
}

/// A clock that only moves when told to. Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    ms: Arc<AtomicU64>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            ms: Arc::new(AtomicU64::new(start.0)),
        }
    }
    pub fn advance(&self, d: Duration) {
        self.ms
            .fetch_add(d.as_millis().min(u64::MAX as u128) as u64, Ordering::SeqCst);
    }
    pub fn set(&self, t: Timestamp) {
        self.ms.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.ms.load(Ordering::SeqCst))
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_time() {
        let c = ManualClock::new(Timestamp::from_secs(10));
        let c2 = c.clone();
        assert_eq!(c.now(), Timestamp(10_000));
        c.advance(Duration::from_millis(1500));
        assert_eq!(c2.now(), Timestamp(11_500));
        c2.set(Timestamp(5));
        assert_eq!(c.now(), Timestamp(5));
    }

    #[test]
    fn timestamp_arithmetic_saturates() {
        let t = Timestamp(1000);
        assert_eq!(t.sub(Duration::from_secs(5)), Timestamp::ZERO);
        assert_eq!(
            Timestamp(u64::MAX).add(Duration::from_secs(1)),
            Timestamp(u64::MAX)
        );
        assert_eq!(Timestamp(3000).since(t), Duration::from_secs(2));
        assert_eq!(t.since(Timestamp(3000)), Duration::ZERO);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > Timestamp::from_secs(1_577_836_800));
    }
}
