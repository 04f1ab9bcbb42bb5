//! The Kubernetes HPA algorithm (autoscaling/v2, `pkg/controller/podautoscaler`), as pure
//! functions over an explicit history: replica proposals per metric with tolerance, then
//! `behavior` (stabilization window over the recommendation history, then the rate limit
//! from scale events, policies and `selectPolicy`), then the `[min, max]` clamp.
//!
//! Names and rounding follow the upstream controller so the examples in the Kubernetes
//! documentation come out the same (`calculateScaleUpLimitWithScalingRules` rounds up a
//! Percent scale-up, `calculateScaleDownLimitWithBehaviors` truncates a Percent scale-down).

use clock::Timestamp;
use model::keda::{HpaBehavior, HpaScalingRules, MetricType, PolicyType, SelectPolicy};

/// The HPA's default tolerance (`--horizontal-pod-autoscaler-tolerance`).
pub const DEFAULT_TOLERANCE: f64 = 0.1;
/// The HPA's default scale-down stabilization (`--horizontal-pod-autoscaler-downscale-stabilization`).
pub const DEFAULT_SCALE_DOWN_WINDOW_SECS: u32 = 300;

/// One scaling policy: at most `value` pods (or percent) per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub kind: PolicyType,
    pub value: u32,
    pub period_secs: u32,
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            PolicyType::Pods => write!(f, "Pods {} per {}s", self.value, self.period_secs),
            PolicyType::Percent => write!(f, "Percent {}% per {}s", self.value, self.period_secs),
        }
    }
}

/// `HPAScalingRules` with every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub window_secs: u32,
    pub select: SelectPolicy,
    pub policies: Vec<Policy>,
    pub tolerance: f64,
}

impl Rules {
    /// Scale-up defaults: no window; max(4 pods, 100 %) per 15 s.
    pub fn default_up() -> Rules {
        Rules {
            window_secs: 0,
            select: SelectPolicy::Max,
            policies: vec![
                Policy {
                    kind: PolicyType::Pods,
                    value: 4,
                    period_secs: 15,
                },
                Policy {
                    kind: PolicyType::Percent,
                    value: 100,
                    period_secs: 15,
                },
            ],
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// Scale-down defaults: 300 s window; 100 % per 15 s.
    pub fn default_down() -> Rules {
        Rules {
            window_secs: DEFAULT_SCALE_DOWN_WINDOW_SECS,
            select: SelectPolicy::Max,
            policies: vec![Policy {
                kind: PolicyType::Percent,
                value: 100,
                period_secs: 15,
            }],
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// Fill unset fields of user rules with the defaults (as the API server's defaulting
    /// does for `autoscaling/v2`).
    pub fn resolve(user: Option<&HpaScalingRules>, up: bool) -> Rules {
        let mut r = if up {
            Rules::default_up()
        } else {
            Rules::default_down()
        };
        let Some(u) = user else { return r };
        if let Some(w) = u.stabilization_window_seconds {
            r.window_secs = w.max(0) as u32;
        }
        if let Some(s) = u.select_policy {
            r.select = s;
        }
        if let Some(p) = &u.policies
            && !p.is_empty()
        {
            r.policies = p
                .iter()
                .map(|p| Policy {
                    kind: p.policy_type,
                    value: p.value.max(0) as u32,
                    period_secs: p.period_seconds.max(1) as u32,
                })
                .collect();
        }
        if let Some(t) = u.tolerance.as_ref().and_then(|t| t.as_f64()) {
            r.tolerance = t.max(0.0);
        }
        r
    }

    fn longest_period(&self) -> u32 {
        self.policies
            .iter()
            .map(|p| p.period_secs)
            .max()
            .unwrap_or(0)
    }
}

/// Both directions.
#[derive(Debug, Clone, PartialEq)]
pub struct Behavior {
    pub up: Rules,
    pub down: Rules,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            up: Rules::default_up(),
            down: Rules::default_down(),
        }
    }
}

impl Behavior {
    pub fn resolve(b: Option<&HpaBehavior>) -> Behavior {
        Behavior {
            up: Rules::resolve(b.and_then(|b| b.scale_up.as_ref()), true),
            down: Rules::resolve(b.and_then(|b| b.scale_down.as_ref()), false),
        }
    }
}

/// Replica proposal for one metric, or `None` when the change is inside the tolerance band
/// (the HPA then keeps the current count for this metric).
///
/// - `AverageValue`: usage ratio = value / (target × current); proposal ⌈value / target⌉.
/// - `Value`: usage ratio = value / target; proposal ⌈ratio × ready⌉.
pub fn proposal(
    metric_type: MetricType,
    value: f64,
    target: f64,
    current: u32,
    ready: u32,
    tol_up: f64,
    tol_down: f64,
) -> u32 {
    if target <= 0.0 || !value.is_finite() {
        return current;
    }
    let (ratio, raw) = match metric_type {
        MetricType::Value | MetricType::Utilization => {
            let ratio = value / target;
            (ratio, ratio * ready as f64)
        }
        MetricType::AverageValue => {
            let ratio = if current == 0 {
                f64::INFINITY
            } else {
                value / (target * current as f64)
            };
            (ratio, value / target)
        }
    };
    if current > 0 {
        let within = if ratio >= 1.0 {
            ratio - 1.0 <= tol_up
        } else {
            1.0 - ratio <= tol_down
        };
        if within {
            return current;
        }
    }
    ceil_u32(raw)
}

fn ceil_u32(v: f64) -> u32 {
    // Tiny float noise (e.g. 0.1 * 3) must not add a replica.
    let c = (v - 1e-9).ceil();
    if c <= 0.0 {
        0
    } else if c >= u32::MAX as f64 {
        u32::MAX
    } else {
        c as u32
    }
}

/// `at` is strictly after `now - secs` (Go's `t.After(now.Add(-d))`), computed without
/// saturating at the epoch so histories near time zero behave like any other.
fn after(at: Timestamp, now: Timestamp, secs: u32) -> bool {
    at.as_millis() as u128 + secs as u128 * 1000 > now.as_millis() as u128
}

/// `at` is strictly before `now - secs`.
fn before(at: Timestamp, now: Timestamp, secs: u32) -> bool {
    (at.as_millis() as u128 + secs as u128 * 1000) < now.as_millis() as u128
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Recommendation {
    at: Timestamp,
    replicas: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ScaleEvent {
    at: Timestamp,
    change: u32,
    outdated: bool,
}

/// What limited the final count (for the decision's reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limit {
    /// Nothing: the desired count is within range.
    None,
    /// A stabilization window kept the count from moving (`ScaleUpStabilized` / `ScaleDownStabilized`).
    Stabilized {
        up: bool,
        window_secs: u32,
        from: u32,
    },
    /// The rate limit of the policies (`ScaleUpLimit` / `ScaleDownLimit`).
    Rate {
        up: bool,
        policy: String,
        select: SelectPolicy,
        from: u32,
    },
    /// `selectPolicy: Disabled` in that direction.
    Disabled { up: bool },
    /// Clamped to `maxReplicas` (`TooManyReplicas`).
    Max,
    /// Clamped to `minReplicas` (`TooFewReplicas`).
    Min,
}

/// The HPA's per-object memory: recommendation history and scale events.
#[derive(Debug, Clone, Default)]
pub struct HpaState {
    recommendations: Vec<Recommendation>,
    up_events: Vec<ScaleEvent>,
    down_events: Vec<ScaleEvent>,
    initialized: bool,
}

impl HpaState {
    /// Forget everything (the HPA is deleted when KEDA scales to zero and recreated on
    /// activation; kedge keeps the object but resets its memory the same way).
    pub fn reset(&mut self) {
        *self = HpaState::default();
    }

    /// `normalizeDesiredReplicasWithBehaviors`: stabilize, then rate-limit and clamp.
    /// Returns the final count and what limited it.
    pub fn normalize(
        &mut self,
        now: Timestamp,
        behavior: &Behavior,
        current: u32,
        prenormalized: u32,
        min: u32,
        max: u32,
    ) -> (u32, Limit) {
        if !self.initialized {
            // maybeInitScaleDownStabilizationWindow: a fresh HPA starts with the current
            // count as its only recommendation, so it cannot scale down before the window.
            self.recommendations.push(Recommendation {
                at: now,
                replicas: current,
            });
            self.initialized = true;
        }
        let (stabilized, stab_limit) = self.stabilize(now, behavior, current, prenormalized);
        let (desired, rate_limit) = self.rate_limit(now, behavior, current, stabilized, min, max);
        let limit = match rate_limit {
            Limit::None => stab_limit,
            other => other,
        };
        (desired, limit)
    }

    fn stabilize(
        &mut self,
        now: Timestamp,
        b: &Behavior,
        current: u32,
        desired: u32,
    ) -> (u32, Limit) {
        // Upstream (`stabilizeRecommendationWithBehaviors`, kubernetes
        // pkg/controller/podautoscaler/horizontal.go): the lowest recommendation of the
        // scale-up window and the highest of the scale-down window bound the count, which
        // starts from the current one. So a count already below the scale-down window's
        // highest recommendation (something else lowered it) is never raised by that window.
        let up = desired >= current;
        let window = if up {
            b.up.window_secs
        } else {
            b.down.window_secs
        };
        let max_window = b.up.window_secs.max(b.down.window_secs);
        let (mut up_rec, mut down_rec) = (desired, desired);
        let mut old_index = None;
        for (i, r) in self.recommendations.iter().enumerate() {
            if after(r.at, now, b.up.window_secs) {
                up_rec = up_rec.min(r.replicas);
            }
            if after(r.at, now, b.down.window_secs) {
                down_rec = down_rec.max(r.replicas);
            }
            if before(r.at, now, max_window) {
                old_index = Some(i);
            }
        }
        let rec = current.max(up_rec).min(down_rec);
        let new = Recommendation {
            at: now,
            replicas: desired,
        };
        match old_index {
            Some(i) => self.recommendations[i] = new,
            None => self.recommendations.push(new),
        }
        let limit = if rec != desired {
            Limit::Stabilized {
                up,
                window_secs: window,
                from: desired,
            }
        } else {
            Limit::None
        };
        (rec, limit)
    }

    fn change_in_period(events: &[ScaleEvent], now: Timestamp, period_secs: u32) -> u32 {
        events
            .iter()
            .filter(|e| after(e.at, now, period_secs))
            .map(|e| e.change)
            .sum()
    }

    fn rate_limit(
        &self,
        now: Timestamp,
        b: &Behavior,
        current: u32,
        desired: u32,
        min: u32,
        max: u32,
    ) -> (u32, Limit) {
        let cur = current as i64;
        if desired > current {
            let rules = &b.up;
            let (limit, policy) = if rules.select == SelectPolicy::Disabled {
                (cur, None)
            } else {
                let mut best: Option<(i64, Policy)> = None;
                for p in &rules.policies {
                    let added = Self::change_in_period(&self.up_events, now, p.period_secs) as i64;
                    let removed =
                        Self::change_in_period(&self.down_events, now, p.period_secs) as i64;
                    let start = cur - added + removed;
                    let proposed = match p.kind {
                        PolicyType::Pods => start + p.value as i64,
                        PolicyType::Percent => {
                            (start as f64 * (1.0 + p.value as f64 / 100.0)).ceil() as i64
                        }
                    };
                    let better = match (&best, rules.select) {
                        (None, _) => true,
                        (Some((b, _)), SelectPolicy::Min) => proposed < *b,
                        (Some((b, _)), _) => proposed > *b,
                    };
                    if better {
                        best = Some((proposed, *p));
                    }
                }
                match best {
                    Some((v, p)) => (v, Some(p)),
                    None => (cur, None),
                }
            };
            // We shouldn't scale up further until old events expire.
            let limit = limit.max(cur);
            let (allowed, why) = if (max as i64) > limit {
                (
                    limit,
                    if rules.select == SelectPolicy::Disabled {
                        Limit::Disabled { up: true }
                    } else {
                        Limit::Rate {
                            up: true,
                            policy: policy.map(|p| p.to_string()).unwrap_or_default(),
                            select: rules.select,
                            from: desired,
                        }
                    },
                )
            } else {
                (max as i64, Limit::Max)
            };
            if desired as i64 > allowed {
                return (allowed.max(0) as u32, why);
            }
        } else if desired < current {
            let rules = &b.down;
            let (limit, policy) = if rules.select == SelectPolicy::Disabled {
                (cur, None)
            } else {
                let mut best: Option<(i64, Policy)> = None;
                for p in &rules.policies {
                    let added = Self::change_in_period(&self.up_events, now, p.period_secs) as i64;
                    let removed =
                        Self::change_in_period(&self.down_events, now, p.period_secs) as i64;
                    let start = cur - added + removed;
                    let proposed = match p.kind {
                        PolicyType::Pods => start - p.value as i64,
                        // Go's int32(float) truncates toward zero.
                        PolicyType::Percent => {
                            (start as f64 * (1.0 - p.value as f64 / 100.0)).trunc() as i64
                        }
                    };
                    let better = match (&best, rules.select) {
                        (None, _) => true,
                        (Some((b, _)), SelectPolicy::Min) => proposed > *b,
                        (Some((b, _)), _) => proposed < *b,
                    };
                    if better {
                        best = Some((proposed, *p));
                    }
                }
                match best {
                    Some((v, p)) => (v, Some(p)),
                    None => (cur, None),
                }
            };
            let limit = limit.min(cur);
            let (allowed, why) = if (min as i64) < limit {
                (
                    limit,
                    if rules.select == SelectPolicy::Disabled {
                        Limit::Disabled { up: false }
                    } else {
                        Limit::Rate {
                            up: false,
                            policy: policy.map(|p| p.to_string()).unwrap_or_default(),
                            select: rules.select,
                            from: desired,
                        }
                    },
                )
            } else {
                (min as i64, Limit::Min)
            };
            if (desired as i64) < allowed {
                return (allowed.max(0) as u32, why);
            }
        }
        (desired, Limit::None)
    }

    /// The rescale from `from` to `decided` recorded at `now` was carried out only to
    /// `written` (the caller held part of it back): the policies' periods count what was
    /// written.
    pub fn amend_scale(
        &mut self,
        now: Timestamp,
        behavior: &Behavior,
        from: u32,
        decided: u32,
        written: u32,
    ) {
        if decided == written {
            return;
        }
        let (events, change) = if decided > from {
            (&mut self.up_events, decided - from)
        } else {
            (&mut self.down_events, from.saturating_sub(decided))
        };
        if let Some(e) = events
            .iter_mut()
            .rev()
            .find(|e| !e.outdated && e.at == now && e.change == change)
        {
            e.change = 0;
            e.outdated = true;
        }
        self.record_scale(now, behavior, from, written);
    }

    /// `storeScaleEvent`: remember a rescale the HPA carried out, for the policies' periods.
    pub fn record_scale(&mut self, now: Timestamp, behavior: &Behavior, from: u32, to: u32) {
        let (events, rules, change) = if to > from {
            (&mut self.up_events, &behavior.up, to - from)
        } else if to < from {
            (&mut self.down_events, &behavior.down, from - to)
        } else {
            return;
        };
        let longest = rules.longest_period();
        for e in events.iter_mut() {
            if !after(e.at, now, longest) {
                e.outdated = true;
            }
        }
        let new = ScaleEvent {
            at: now,
            change,
            outdated: false,
        };
        match events.iter_mut().find(|e| e.outdated) {
            Some(slot) => *slot = new,
            None => events.push(new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposal_average_value() {
        // 100 messages, 2 per replica, 1 replica → 50.
        assert_eq!(
            proposal(MetricType::AverageValue, 100.0, 2.0, 1, 1, 0.1, 0.1),
            50
        );
        // 21 over 10 replicas with target 2: ratio 1.05 → inside tolerance.
        assert_eq!(
            proposal(MetricType::AverageValue, 21.0, 2.0, 10, 10, 0.1, 0.1),
            10
        );
        // 23 over 10 at target 2: ratio 1.15 → ⌈11.5⌉ = 12.
        assert_eq!(
            proposal(MetricType::AverageValue, 23.0, 2.0, 10, 10, 0.1, 0.1),
            12
        );
    }

    #[test]
    fn proposal_value_uses_ready_pods() {
        // Value 300 target 100 → ratio 3, 4 ready → 12.
        assert_eq!(
            proposal(MetricType::Value, 300.0, 100.0, 5, 4, 0.1, 0.1),
            12
        );
    }

    #[test]
    fn the_windows_bound_the_current_count_and_never_raise_one_lowered_by_someone_else() {
        // Upstream's stabilization: the count starts from the current one and is bounded by
        // the lowest recommendation of the scale-up window and the highest of the scale-down
        // window. Something else lowered the count from 20 to 5 while the 60 s window still
        // holds a recommendation of 20: a lower recommendation keeps 5, it does not go back
        // to 20.
        let b = Behavior {
            up: Rules {
                window_secs: 0,
                ..Rules::default_up()
            },
            down: Rules {
                window_secs: 60,
                ..Rules::default_down()
            },
        };
        let mut h = HpaState::default();
        let at = |s: u64| Timestamp::from_millis(s * 1000);
        assert_eq!(h.normalize(at(0), &b, 20, 20, 1, 100).0, 20);
        assert_eq!(h.normalize(at(10), &b, 5, 3, 1, 100).0, 5);
        // The window still holds the count it bounds from above: 20 → 3 waits.
        let mut h = HpaState::default();
        assert_eq!(h.normalize(at(0), &b, 20, 20, 1, 100).0, 20);
        assert_eq!(h.normalize(at(10), &b, 20, 3, 1, 100).0, 20);
        // And a scale-up above the window's highest is not held by it.
        assert_eq!(h.normalize(at(20), &b, 20, 30, 1, 100).0, 30);
    }
}
