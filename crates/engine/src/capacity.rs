//! Offerings the cloud said it has no capacity for, remembered for a while.
//!
//! Models Karpenter's AWS provider: an `InsufficientInstanceCapacity` answer to a launch marks
//! the offering (instance type, zone, capacity type) unavailable in its unavailable-offerings
//! cache for `UnavailableOfferingsTTL` = 3 minutes (aws/karpenter-provider-aws,
//! `pkg/cache/cache.go`; the chart's `settings.unavailableOfferingsTTLSeconds` defaults to
//! 180). While an offering is in the cache its instance type is offered without it
//! (`Offering.available = false`), so the scheduler plans the next-cheapest offering instead
//! of asking for the same one again; after the TTL it is tried again.
//!
//! The engine applies the cache by planning against a view of the catalog in which the cached
//! offerings are unavailable ([`UnavailableOfferings::view`]); the same view serves
//! provisioning and consolidation, as in Karpenter.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use clock::Timestamp;
use provision::catalog::Catalog;
use provision::plan::InstanceOption;

/// Karpenter's `UnavailableOfferingsTTL`.
pub const UNAVAILABLE_OFFERINGS_TTL: Duration = Duration::from_secs(180);

/// (instance type, zone, capacity type).
type Key = (String, String, String);

fn key(o: &InstanceOption) -> Key {
    (
        o.instance_type.clone(),
        o.zone.clone(),
        o.capacity_type.clone(),
    )
}

/// The cache, and the catalog view it implies (rebuilt only when the cache changes).
#[derive(Debug, Clone, Default)]
pub struct UnavailableOfferings {
    until: BTreeMap<Key, Timestamp>,
    view: Option<Arc<Catalog>>,
}

impl UnavailableOfferings {
    /// The cloud had no capacity for `o` at `now`: unavailable until `now + ttl`.
    pub fn mark(&mut self, now: Timestamp, o: &InstanceOption, ttl: Duration) {
        self.until.insert(key(o), now.add(ttl));
        self.view = None;
    }

    /// Whether `o` is in the cache at `now`.
    pub fn is_unavailable(&self, now: Timestamp, o: &InstanceOption) -> bool {
        self.until.get(&key(o)).is_some_and(|&t| now < t)
    }

    /// Entries whose TTL is over are dropped.
    fn expire(&mut self, now: Timestamp) {
        let before = self.until.len();
        self.until.retain(|_, t| now < *t);
        if self.until.len() != before {
            self.view = None;
        }
    }

    /// When the next entry expires.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.until.values().copied().min()
    }

    /// How many offerings are unavailable (after expiring at `now`).
    pub fn len(&mut self, now: Timestamp) -> usize {
        self.expire(now);
        self.until.len()
    }

    pub fn is_empty(&mut self, now: Timestamp) -> bool {
        self.len(now) == 0
    }

    /// `base` with the cached offerings marked unavailable (`base` itself when the cache is
    /// empty).
    pub fn view(&mut self, now: Timestamp, base: &Arc<Catalog>) -> Arc<Catalog> {
        self.expire(now);
        if self.until.is_empty() {
            return base.clone();
        }
        if let Some(v) = &self.view {
            return v.clone();
        }
        let mut c = (**base).clone();
        for t in &mut c.types {
            for o in &mut t.offerings {
                let k = (
                    t.name.clone(),
                    o.zone.to_string(),
                    o.capacity_type.to_string(),
                );
                if self.until.contains_key(&k) {
                    o.available = false;
                }
            }
        }
        let v = Arc::new(c);
        self.view = Some(v.clone());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offering_is_unavailable_for_the_ttl_and_then_offered_again() {
        let base = Arc::new(Catalog::aws());
        let it = base.get("m5.xlarge").expect("m5.xlarge");
        let o = it
            .offerings
            .iter()
            .find(|o| &*o.capacity_type == "on-demand")
            .expect("on-demand offering");
        let opt = InstanceOption {
            instance_type: "m5.xlarge".into(),
            price: o.price,
            zone: o.zone.to_string(),
            capacity_type: "on-demand".into(),
        };
        let mut u = UnavailableOfferings::default();
        let t0 = Timestamp::from_secs(1_000);
        assert!(Arc::ptr_eq(&u.view(t0, &base), &base));
        u.mark(t0, &opt, UNAVAILABLE_OFFERINGS_TTL);
        assert!(u.is_unavailable(t0, &opt));
        let v = u.view(t0, &base);
        let seen = |c: &Catalog| {
            c.get("m5.xlarge")
                .and_then(|t| {
                    t.offerings
                        .iter()
                        .find(|x| x.zone == o.zone && &*x.capacity_type == "on-demand")
                })
                .map(|x| x.available)
        };
        assert_eq!(seen(&v), Some(false));
        // Other offerings of the type stay available.
        let others = v
            .get("m5.xlarge")
            .map(|t| t.offerings.iter().filter(|x| x.available).count());
        assert_eq!(others, Some(it.offerings.len() - 1));
        let almost = t0.add(UNAVAILABLE_OFFERINGS_TTL - Duration::from_millis(1));
        assert!(u.is_unavailable(almost, &opt));
        assert_eq!(seen(&u.view(almost, &base)), Some(false));
        let after = t0.add(UNAVAILABLE_OFFERINGS_TTL);
        assert!(!u.is_unavailable(after, &opt));
        assert!(Arc::ptr_eq(&u.view(after, &base), &base));
        assert!(u.is_empty(after));
    }
}
