//! The unavailable-offerings cache (Karpenter's `UnavailableOfferings`): an (instance type,
//! zone, capacity type) that EC2 just refused for lack of capacity is not offered again for
//! a while (3 minutes, Karpenter's constant), so the next launch goes straight to the
//! offerings that may work. Time comes from the injected clock.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clock::{Clock, Timestamp};

/// Karpenter's `UnavailableOfferingsTTL`.
pub const UNAVAILABLE_OFFERINGS_TTL: Duration = Duration::from_secs(180);

/// Matches every instance type or zone in a key (a whole capacity type is unavailable, e.g.
/// after `MaxSpotInstanceCountExceeded`).
pub const ANY: &str = "*";

/// `(instance type, zone, capacity type)`.
pub type OfferingKey = (String, String, String);

#[derive(Debug)]
pub struct UnavailableOfferings {
    ttl: Duration,
    clock: Arc<dyn Clock>,
    entries: Mutex<BTreeMap<OfferingKey, Timestamp>>,
}

impl UnavailableOfferings {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_ttl(clock, UNAVAILABLE_OFFERINGS_TTL)
    }

    pub fn with_ttl(clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        UnavailableOfferings {
            ttl,
            clock,
            entries: Mutex::new(BTreeMap::new()),
        }
    }

    /// Mark one offering unavailable until `now + ttl`.
    pub fn mark(&self, instance_type: &str, zone: &str, capacity_type: &str, reason: &str) {
        let until = self.clock.now().add(self.ttl);
        tracing::info!(
            instance_type,
            zone,
            capacity_type,
            reason,
            ttl_s = self.ttl.as_secs(),
            "removing offering from offerings"
        );
        self.lock().insert(
            (
                instance_type.to_string(),
                zone.to_string(),
                capacity_type.to_string(),
            ),
            until,
        );
    }

    /// Mark every offering of a capacity type unavailable.
    pub fn mark_capacity_type(&self, capacity_type: &str, reason: &str) {
        self.mark(ANY, ANY, capacity_type, reason)
    }

    pub fn is_unavailable(&self, instance_type: &str, zone: &str, capacity_type: &str) -> bool {
        let now = self.clock.now();
        let entries = self.lock();
        [
            (instance_type, zone),
            (ANY, ANY),
            (instance_type, ANY),
            (ANY, zone),
        ]
        .iter()
        .any(|(t, z)| {
            entries
                .get(&(t.to_string(), z.to_string(), capacity_type.to_string()))
                .is_some_and(|until| now < *until)
        })
    }

    /// The entries that have not expired (expired ones are dropped).
    pub fn live(&self) -> Vec<OfferingKey> {
        let now = self.clock.now();
        let mut entries = self.lock();
        entries.retain(|_, until| now < *until);
        entries.keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<OfferingKey, Timestamp>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clock::ManualClock;

    #[test]
    fn entries_expire_after_the_ttl() {
        let clock = ManualClock::new(Timestamp::from_secs(1000));
        let c = UnavailableOfferings::new(Arc::new(clock.clone()));
        c.mark(
            "m5.large",
            "us-east-1a",
            "spot",
            "InsufficientInstanceCapacity",
        );
        assert!(c.is_unavailable("m5.large", "us-east-1a", "spot"));
        assert!(!c.is_unavailable("m5.large", "us-east-1a", "on-demand"));
        assert!(!c.is_unavailable("m5.large", "us-east-1b", "spot"));
        clock.advance(Duration::from_secs(179));
        assert!(c.is_unavailable("m5.large", "us-east-1a", "spot"));
        clock.advance(Duration::from_secs(1));
        assert!(!c.is_unavailable("m5.large", "us-east-1a", "spot"));
        assert!(c.live().is_empty());
    }

    #[test]
    fn a_whole_capacity_type_can_be_unavailable() {
        let clock = ManualClock::new(Timestamp::from_secs(0));
        let c = UnavailableOfferings::new(Arc::new(clock));
        c.mark_capacity_type("spot", "MaxSpotInstanceCountExceeded");
        assert!(c.is_unavailable("c5.xlarge", "us-east-1c", "spot"));
        assert!(!c.is_unavailable("c5.xlarge", "us-east-1c", "on-demand"));
    }
}
