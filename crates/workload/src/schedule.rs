//! The producer's send schedule as a pure function of elapsed time.
//!
//! A [`Schedule`] answers two questions: how many messages should have been sent `t` after
//! the start ([`Schedule::due`]), and from when on the `n`-th message is due
//! ([`Schedule::next_due_at`]). The producer sleeps until the next due time and sends what is
//! due, so pacing never busy-loops, catches up after a slow send instead of drifting, and is
//! unit-tested here without sleeping.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Float slack when flooring the cumulative count: 10 msg/s for 0.3 s is 2.9999999999999996
/// in binary floating point, and must count as 3.
const EPSILON: f64 = 1e-9;

/// Beyond this horizon a message is considered never due (a rate of 0 forever).
const HORIZON: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The steady part of the schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Base {
    /// A fixed number of messages per second.
    Constant(f64),
    /// A linear ramp from one rate to another, then the end rate for good.
    Ramp(Ramp),
}

/// `--ramp FROM:TO:SECONDS`: the rate moves linearly from `from` to `to` msgs/s over `over`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    pub from: f64,
    pub to: f64,
    pub over: Duration,
}

/// `--burst N@SECONDS`: `count` extra messages, all due at `at` after the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Burst {
    pub count: u64,
    pub at: Duration,
}

/// A rate shape plus bursts on top of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub base: Base,
    pub bursts: Vec<Burst>,
}

/// A schedule argument that does not parse; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(pub String);

impl Schedule {
    /// A constant rate and no bursts.
    pub fn constant(rate: f64) -> Schedule {
        Schedule {
            base: Base::Constant(rate),
            bursts: Vec::new(),
        }
    }

    /// Rejects rates that are negative or not finite, and zero-length ramps.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        let ok = |r: f64| r.is_finite() && r >= 0.0;
        match self.base {
            Base::Constant(r) if !ok(r) => Err(ScheduleError(format!(
                "rate {r} must be a finite number of messages per second >= 0"
            ))),
            Base::Ramp(Ramp { from, to, .. }) if !ok(from) || !ok(to) => Err(ScheduleError(
                format!("ramp rates {from}:{to} must be finite and >= 0"),
            )),
            Base::Ramp(Ramp { over, .. }) if over.is_zero() => Err(ScheduleError(
                "ramp duration must be > 0 seconds (use --rate for a constant rate)".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The instantaneous base rate (msgs/s) at `t`; bursts are not rates and are excluded.
    pub fn rate_at(&self, t: Duration) -> f64 {
        match self.base {
            Base::Constant(r) => r,
            Base::Ramp(Ramp { from, to, over }) => {
                let f = (t.as_secs_f64() / over.as_secs_f64()).min(1.0);
                from + (to - from) * f
            }
        }
    }

    /// Messages due by `elapsed` since the start (cumulative, monotonically non-decreasing).
    pub fn due(&self, elapsed: Duration) -> u64 {
        let t = elapsed.as_secs_f64();
        let integral = match self.base {
            Base::Constant(r) => r * t,
            Base::Ramp(Ramp { from, to, over }) => {
                let s = over.as_secs_f64();
                if t <= s {
                    from * t + (to - from) * t * t / (2.0 * s)
                } else {
                    (from + to) * s / 2.0 + to * (t - s)
                }
            }
        };
        let steady = if integral.is_finite() && integral > 0.0 {
            // Saturating float-to-int cast: an absurd rate saturates instead of wrapping.
            (integral + EPSILON).floor() as u64
        } else {
            0
        };
        self.bursts
            .iter()
            .filter(|b| b.at <= elapsed)
            .fold(steady, |acc, b| acc.saturating_add(b.count))
    }

    /// The earliest elapsed time at which `due` reaches `n`, or `None` if it never does.
    ///
    /// A bisection over [`Schedule::due`] rather than a closed-form inverse: it stays correct
    /// for any combination of ramp and bursts, and ~100 evaluations per wake-up cost nothing
    /// next to a network send.
    pub fn next_due_at(&self, n: u64) -> Option<Duration> {
        if self.due(Duration::ZERO) >= n {
            return Some(Duration::ZERO);
        }
        let mut hi = Duration::from_millis(1);
        while self.due(hi) < n {
            if hi > HORIZON {
                return None;
            }
            hi *= 2;
        }
        let (mut lo, mut hi) = (hi.as_nanos() / 2, hi.as_nanos());
        // Invariant: due(lo) < n <= due(hi).
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.due(nanos(mid)) >= n {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(nanos(hi))
    }
}

fn nanos(n: u128) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))
}

fn number(s: &str, what: &str) -> Result<f64, ScheduleError> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| ScheduleError(format!("{what} {s:?} is not a number >= 0")))
}

impl FromStr for Ramp {
    type Err = ScheduleError;
    fn from_str(s: &str) -> Result<Ramp, ScheduleError> {
        let parts: Vec<&str> = s.split(':').collect();
        let [from, to, secs] = parts[..] else {
            return Err(ScheduleError(format!(
                "ramp {s:?} must be FROM:TO:SECONDS, e.g. 1:50:60 (1 to 50 msgs/s over a minute)"
            )));
        };
        let over = Duration::try_from_secs_f64(number(secs, "ramp seconds")?)
            .map_err(|e| ScheduleError(format!("ramp seconds {secs:?}: {e}")))?;
        if over.is_zero() {
            return Err(ScheduleError(format!("ramp {s:?}: SECONDS must be > 0")));
        }
        Ok(Ramp {
            from: number(from, "ramp start rate")?,
            to: number(to, "ramp end rate")?,
            over,
        })
    }
}

impl fmt::Display for Ramp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.from, self.to, self.over.as_secs_f64())
    }
}

impl FromStr for Burst {
    type Err = ScheduleError;
    fn from_str(s: &str) -> Result<Burst, ScheduleError> {
        let usage = || {
            ScheduleError(format!(
                "burst {s:?} must be N@SECONDS, e.g. 500@30 (500 messages at once, 30 s in)"
            ))
        };
        let (n, at) = s.split_once('@').ok_or_else(usage)?;
        let count = n.trim().parse::<u64>().map_err(|_| usage())?;
        let at = Duration::try_from_secs_f64(number(at, "burst time")?).map_err(|_| usage())?;
        Ok(Burst { count, at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Within a microsecond: the schedule counts in floating point and forgives 1e-9 of a
    /// message, which at a few msgs/s moves a due time by nanoseconds.
    fn assert_close(got: Option<Duration>, want_secs: f64) {
        let got = got.expect("due eventually").as_secs_f64();
        assert!(
            (got - want_secs).abs() < 1e-6,
            "{got} s, want {want_secs} s"
        );
    }

    #[test]
    fn constant_rate_counts_whole_messages_without_float_drift() {
        let s = Schedule::constant(10.0);
        assert_eq!(s.due(Duration::ZERO), 0);
        assert_eq!(s.due(secs(0.099)), 0);
        assert_eq!(s.due(secs(0.1)), 1);
        assert_eq!(s.due(secs(0.3)), 3);
        assert_eq!(s.due(secs(60.0)), 600);
        assert_close(s.next_due_at(1), 0.1);
        assert_close(s.next_due_at(600), 60.0);
        assert_eq!(s.next_due_at(0), Some(Duration::ZERO));
    }

    #[test]
    fn next_due_at_is_the_exact_inverse_of_due() {
        let s = Schedule {
            base: Base::Ramp(Ramp {
                from: 2.0,
                to: 40.0,
                over: secs(10.0),
            }),
            bursts: vec![Burst {
                count: 25,
                at: secs(3.5),
            }],
        };
        for n in 1..500 {
            let t = s.next_due_at(n).expect("due eventually");
            assert!(s.due(t) >= n, "n={n} t={t:?}");
            assert!(
                s.due(t - Duration::from_nanos(1)) < n,
                "n={n} t={t:?} not earliest"
            );
        }
    }

    #[test]
    fn ramp_integrates_the_linear_rate_and_then_holds_the_end_rate() {
        let s = Schedule {
            base: Base::Ramp(Ramp {
                from: 0.0,
                to: 10.0,
                over: secs(10.0),
            }),
            bursts: vec![],
        };
        // Area under a line from 0 to 10 msgs/s over 10 s is 50 messages.
        assert_eq!(s.due(secs(10.0)), 50);
        // Halfway the rate is 5 and the area is a quarter of the triangle's.
        assert_eq!(s.due(secs(5.0)), 12);
        assert!((s.rate_at(secs(5.0)) - 5.0).abs() < 1e-12);
        // After the ramp the end rate holds.
        assert_eq!(s.due(secs(12.0)), 70);
        assert_eq!(s.rate_at(secs(100.0)), 10.0);
        // Ramping down works too.
        let down = Schedule {
            base: Base::Ramp("10:0:10".parse().expect("ramp")),
            bursts: vec![],
        };
        assert_eq!(down.due(secs(10.0)), 50);
        assert_eq!(down.due(secs(1000.0)), 50);
        assert_eq!(down.next_due_at(51), None);
    }

    #[test]
    fn bursts_land_all_at_once_on_top_of_the_rate() {
        let s = Schedule {
            base: Base::Constant(1.0),
            bursts: vec![
                "100@5".parse().expect("burst"),
                "7@0".parse().expect("burst"),
            ],
        };
        assert_eq!(s.due(Duration::ZERO), 7);
        assert_eq!(s.due(secs(4.999)), 7 + 4);
        assert_eq!(s.due(secs(5.0)), 7 + 5 + 100);
        assert_close(s.next_due_at(12), 5.0);
        assert_close(s.next_due_at(112), 5.0);
        assert_close(s.next_due_at(113), 6.0);
    }

    #[test]
    fn a_zero_rate_is_never_due_and_monotonicity_holds() {
        let s = Schedule::constant(0.0);
        assert_eq!(s.due(secs(1e6)), 0);
        assert_eq!(s.next_due_at(1), None);
        let s = Schedule {
            base: Base::Ramp("3:17:4".parse().expect("ramp")),
            bursts: vec!["9@2.5".parse().expect("burst")],
        };
        let mut prev = 0;
        for ms in 0..10_000 {
            let d = s.due(Duration::from_millis(ms));
            assert!(d >= prev, "due went backwards at {ms} ms");
            prev = d;
        }
    }

    #[test]
    fn arguments_parse_or_say_what_was_expected() {
        assert_eq!(
            "1:50:60".parse::<Ramp>(),
            Ok(Ramp {
                from: 1.0,
                to: 50.0,
                over: secs(60.0)
            })
        );
        assert!(
            "1:50"
                .parse::<Ramp>()
                .unwrap_err()
                .0
                .contains("FROM:TO:SECONDS")
        );
        assert!("1:50:0".parse::<Ramp>().unwrap_err().0.contains("> 0"));
        assert!("-1:5:3".parse::<Ramp>().unwrap_err().0.contains(">= 0"));
        assert_eq!(
            "500@30".parse::<Burst>(),
            Ok(Burst {
                count: 500,
                at: secs(30.0)
            })
        );
        assert!("500".parse::<Burst>().unwrap_err().0.contains("N@SECONDS"));
        assert!("x@1".parse::<Burst>().is_err());
        assert!(Schedule::constant(f64::NAN).validate().is_err());
        assert!(Schedule::constant(-1.0).validate().is_err());
        assert!(Schedule::constant(3.0).validate().is_ok());
    }
}
