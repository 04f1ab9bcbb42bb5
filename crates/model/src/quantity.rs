//! Kubernetes resource quantities (`125m`, `1.5`, `32Mi`, `2G`, `1e3`).
//!
//! A [`Quantity`] is stored as an integer number of *milli-units* (`i128`). That covers every
//! value a manifest meets exactly — CPU in millicores, memory in milli-bytes, pod counts — even
//! the "effectively unlimited" `10000000Gi` limits Karpenter's own examples use (which overflow
//! 64-bit milli-bytes). Integer arithmetic keeps packing decisions exact and deterministic (no float
//! rounding can make a pod "fit" by 1e-12). Values finer than a milli-unit are rounded up, as
//! Kubernetes does when it canonicalises a quantity.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A resource amount in milli-units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Quantity(i128);

/// Why a string is not a Kubernetes quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("empty quantity; write a number with an optional suffix such as 500m, 2, 4Gi")]
    Empty,
    #[error(
        "`{0}` is not a quantity; write a number with an optional suffix (m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei), e.g. 500m or 4Gi"
    )]
    Invalid(String),
    #[error("`{0}` is too large to represent")]
    Overflow(String),
}

impl Quantity {
    pub const ZERO: Quantity = Quantity(0);

    /// From milli-units (e.g. millicores).
    pub const fn from_millis(m: i64) -> Self {
        Quantity(m as i128)
    }
    /// From whole units (cores, bytes, pods).
    pub const fn from_units(u: i64) -> Self {
        Quantity(u as i128 * 1000)
    }
    /// From mebibytes.
    pub const fn from_mebibytes(mi: i64) -> Self {
        Quantity(mi as i128 * 1024 * 1024 * 1000)
    }
    /// From gibibytes.
    pub const fn from_gibibytes(gi: i64) -> Self {
        Quantity(gi as i128 * 1024 * 1024 * 1024 * 1000)
    }
    /// Milli-units, saturating at the `i64` range (±9.2e18: ~9 EB of memory).
    pub fn millis(self) -> i64 {
        self.0.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }
    pub const fn millis_exact(self) -> i128 {
        self.0
    }
    /// Whole units, rounded up (a request of 1.5 bytes needs 2 bytes), saturating at `i64`.
    pub fn units_ceil(self) -> i64 {
        let v = self.0.div_euclid(1000) + i128::from(self.0.rem_euclid(1000) != 0);
        v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
    pub fn saturating_add(self, o: Quantity) -> Quantity {
        Quantity(self.0.saturating_add(o.0))
    }
    pub fn saturating_sub(self, o: Quantity) -> Quantity {
        Quantity(self.0.saturating_sub(o.0))
    }
}

impl std::ops::Add for Quantity {
    type Output = Quantity;
    fn add(self, o: Quantity) -> Quantity {
        self.saturating_add(o)
    }
}
impl std::ops::Sub for Quantity {
    type Output = Quantity;
    fn sub(self, o: Quantity) -> Quantity {
        self.saturating_sub(o)
    }
}
impl std::ops::AddAssign for Quantity {
    fn add_assign(&mut self, o: Quantity) {
        *self = self.saturating_add(o);
    }
}

/// (multiplier numerator as power, base) for each suffix. Binary suffixes are powers of 1024.
fn suffix_factor(s: &str) -> Option<i128> {
    Some(match s {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        _ => return None,
    })
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(QuantityError::Empty);
        }
        let invalid = || QuantityError::Invalid(raw.to_string());
        let (neg, body) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let num_end = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (num, suffix) = body.split_at(num_end);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(invalid());
        }
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        // Mantissa as an integer plus a decimal exponent: "1.25" = 125e-2.
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 24 {
            return Err(QuantityError::Overflow(raw.to_string()));
        }
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| invalid())?
        };
        let mut exp10: i32 = -(frac_part.len() as i32);
        let mut factor: i128 = 1;
        if suffix == "m" {
            exp10 -= 3;
        } else if let Some(rest) = suffix.strip_prefix(['e', 'E']) {
            let e: i32 = rest.parse().map_err(|_| invalid())?;
            if !(-24..=18).contains(&e) {
                return Err(QuantityError::Overflow(raw.to_string()));
            }
            exp10 += e;
        } else {
            factor = suffix_factor(suffix).ok_or_else(invalid)?;
        }
        // Value in milli-units = mantissa * factor * 10^(exp10 + 3), rounded up.
        exp10 += 3;
        let mut v = mantissa
            .checked_mul(factor)
            .ok_or_else(|| QuantityError::Overflow(raw.to_string()))?;
        if exp10 >= 0 {
            for _ in 0..exp10 {
                v = v
                    .checked_mul(10)
                    .ok_or_else(|| QuantityError::Overflow(raw.to_string()))?;
            }
        } else {
            let d = 10i128.pow(exp10.unsigned_abs().min(38));
            v = v / d + i128::from(v % d != 0);
        }
        Ok(Quantity(if neg { -v } else { v }))
    }
}

impl fmt::Display for Quantity {
    /// Canonical-ish form: milli-units when fractional, binary suffix when an exact multiple
    /// of Ki/Mi/Gi (memory reads naturally), plain units otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        if m % 1000 != 0 {
            return write!(f, "{m}m");
        }
        let u = m / 1000;
        for (suffix, k) in [
            ("Ti", 1i128 << 40),
            ("Gi", 1 << 30),
            ("Mi", 1 << 20),
            ("Ki", 1 << 10),
        ] {
            if u != 0 && u % k == 0 && u.abs() >= k {
                return write!(f, "{}{suffix}", u / k);
            }
        }
        write!(f, "{u}")
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Kubernetes accepts both `cpu: 2` and `cpu: "2"`.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            I(i64),
            F(f64),
        }
        match Raw::deserialize(d)? {
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
            Raw::I(i) => Ok(Quantity::from_units(i)),
            Raw::F(x) => format!("{x}").parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Kubernetes publishes `resource.Quantity` as int-or-string; a CRD schema must say the same.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for Quantity {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Quantity".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "x-kubernetes-int-or-string": true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> i128 {
        s.parse::<Quantity>().unwrap().millis_exact()
    }

    #[test]
    fn parses_kubernetes_forms() {
        assert_eq!(q("125m"), 125);
        assert_eq!(q("1.5"), 1500);
        assert_eq!(q("2"), 2000);
        assert_eq!(q("1Ki"), 1024 * 1000);
        assert_eq!(q("32Mi"), 32 * (1 << 20) * 1000);
        assert_eq!(q("2G"), 2_000_000_000_000);
        assert_eq!(q("1e3"), 1_000_000);
        assert_eq!(q("0.1m"), 1, "sub-milli rounds up");
        assert_eq!(q("-1"), -1000);
        assert_eq!(
            q("10000000Gi"),
            10_000_000i128 * (1 << 30) * 1000,
            "Karpenter's 'unlimited' limit"
        );
    }

    #[test]
    fn rejects_garbage_with_a_hint() {
        for bad in ["", "abc", "1.2.3", "5Q", "1x"] {
            let e = bad.parse::<Quantity>().unwrap_err();
            assert!(e.to_string().contains("quantity"), "{bad}: {e}");
        }
        assert!(matches!(
            "1e40".parse::<Quantity>(),
            Err(QuantityError::Overflow(_))
        ));
    }

    #[test]
    fn display_round_trips() {
        for s in ["125m", "2", "4Gi", "512Mi", "3"] {
            let v: Quantity = s.parse().unwrap();
            assert_eq!(v.to_string(), s);
            assert_eq!(v.to_string().parse::<Quantity>().unwrap(), v);
        }
    }
}
