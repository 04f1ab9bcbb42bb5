//! Attribute values: the ten DynamoDB types, exact decimal numbers, the wire (JSON) form,
//! item sizes and the validation rules AWS applies to them.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::error::DdbError;

/// Most significant digits a DynamoDB number keeps.
pub const MAX_DIGITS: usize = 38;
/// Largest item (attribute names plus values), in bytes.
pub const MAX_ITEM_SIZE: usize = 400 * 1024;

/// An exact decimal: `(-1)^neg * 0.d1d2..dn * 10^exp`, normalised (no leading or trailing
/// zero digits; zero has no digits and is never negative). Normalising makes derived
/// equality numeric equality ("1.0" == "1"), which sets and key lookups rely on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Number {
    neg: bool,
    digits: Vec<u8>,
    exp: i32,
}

/// Why a string is not an acceptable DynamoDB number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberError {
    Syntax,
    Precision,
    Overflow,
    Underflow,
}

impl NumberError {
    pub fn message(&self) -> &'static str {
        match self {
            NumberError::Syntax => "A value provided cannot be converted into a number",
            NumberError::Precision => {
                "Attempting to store more than 38 significant digits in a Number"
            }
            NumberError::Overflow => {
                "Number overflow. Attempting to store a number with magnitude larger than supported range"
            }
            NumberError::Underflow => {
                "Number underflow. Attempting to store a number with magnitude smaller than supported range"
            }
        }
    }
}

impl Number {
    pub fn zero() -> Number {
        Number::default()
    }

    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// Parse DynamoDB's number syntax (`-12.5e3`, `.5`, `5.`), checking precision and range.
    pub fn parse(s: &str) -> Result<Number, NumberError> {
        let b = s.as_bytes();
        let mut i = 0;
        let mut neg = false;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            neg = b[i] == b'-';
            i += 1;
        }
        let mut all = Vec::new();
        let mut int_len: i64 = 0;
        let mut seen_point = false;
        while i < b.len() {
            match b[i] {
                c @ b'0'..=b'9' => {
                    all.push(c - b'0');
                    if !seen_point {
                        int_len += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => break,
            }
            i += 1;
        }
        if all.is_empty() {
            return Err(NumberError::Syntax);
        }
        let mut e10: i64 = 0;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let mut eneg = false;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                eneg = b[i] == b'-';
                i += 1;
            }
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                e10 = (e10 * 10 + i64::from(b[i] - b'0')).min(1_000_000_000);
                i += 1;
            }
            if start == i {
                return Err(NumberError::Syntax);
            }
            if eneg {
                e10 = -e10;
            }
        }
        if i != b.len() {
            return Err(NumberError::Syntax);
        }
        let mut exp = int_len + e10;
        let lead = all.iter().take_while(|d| **d == 0).count();
        all.drain(..lead);
        exp -= lead as i64;
        while all.last() == Some(&0) {
            all.pop();
        }
        if all.is_empty() {
            return Ok(Number::zero());
        }
        Number::checked(neg, all, exp)
    }

    fn checked(neg: bool, digits: Vec<u8>, exp: i64) -> Result<Number, NumberError> {
        if digits.is_empty() {
            return Ok(Number::zero());
        }
        // Magnitude in [1e-130, 1e126): the adjusted exponent (exp - 1) is in [-130, 125].
        if exp - 1 > 125 {
            return Err(NumberError::Overflow);
        }
        if exp - 1 < -130 {
            return Err(NumberError::Underflow);
        }
        if digits.len() > MAX_DIGITS {
            return Err(NumberError::Precision);
        }
        Ok(Number {
            neg,
            digits,
            exp: exp as i32,
        })
    }

    pub fn from_i64(v: i64) -> Number {
        Number::parse(&v.to_string()).unwrap_or_default()
    }

    /// Bytes DynamoDB counts for this number: its base-100 digits (pairs of decimal digits
    /// aligned on the decimal point) plus one, and one more when negative.
    pub fn size(&self) -> usize {
        if self.is_zero() {
            return 1;
        }
        let n = self.digits.len();
        // With an odd adjusted exponent the digits pair up evenly; otherwise an even digit
        // count straddles one more base-100 digit.
        let straddles = n.is_multiple_of(2) && (self.exp - 1) % 2 == 0;
        1 + n.div_ceil(2) + usize::from(straddles) + usize::from(self.neg)
    }

    /// DynamoDB's internal byte encoding of a number (what its key hash is computed over): an
    /// exponent byte, then base-100 digits; negative numbers are complemented and, when short,
    /// terminated by 102, so that byte order is numeric order.
    pub fn key_bytes(&self) -> Vec<u8> {
        if self.is_zero() {
            return vec![0x80];
        }
        let pad = usize::from(self.exp.rem_euclid(2) == 1);
        let mut padded = Vec::with_capacity(self.digits.len() + 1);
        padded.resize(pad, 0u8);
        padded.extend_from_slice(&self.digits);
        let pairs: Vec<u8> = padded
            .chunks(2)
            .map(|c| c[0] * 10 + c.get(1).copied().unwrap_or(0))
            .collect();
        let exp_byte = ((self.exp + pad as i32).div_euclid(2) - 64) as u8;
        let mut out = Vec::with_capacity(pairs.len() + 2);
        if self.neg {
            out.push(!exp_byte);
            out.extend(pairs.iter().map(|p| 101 - p));
            if pairs.len() < 20 {
                out.push(102);
            }
        } else {
            out.push(exp_byte);
            out.extend(pairs.iter().map(|p| p + 1));
        }
        out
    }

    /// Significant digits, for size accounting.
    pub fn digit_count(&self) -> usize {
        self.digits.len()
    }

    fn cmp_abs(&self, o: &Number) -> Ordering {
        match (self.is_zero(), o.is_zero()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => self
                .exp
                .cmp(&o.exp)
                .then_with(|| self.digits.cmp(&o.digits)),
        }
    }

    /// `self + o` (or `self - o` when `negate_o`), exact, with DynamoDB's limits.
    pub fn add(&self, o: &Number, negate_o: bool) -> Result<Number, NumberError> {
        let o_neg = o.neg ^ negate_o;
        if o.is_zero() {
            return Ok(self.clone());
        }
        if self.is_zero() {
            let mut r = o.clone();
            r.neg = o_neg;
            return Ok(r);
        }
        // Lay both out as integers over the common lowest power of ten.
        let low =
            (self.exp as i64 - self.digits.len() as i64).min(o.exp as i64 - o.digits.len() as i64);
        let high = (self.exp as i64).max(o.exp as i64);
        let width = (high - low) as usize + 1;
        let layout = |n: &Number| {
            let mut v = vec![0u8; width];
            // digit i (0-based) has weight 10^(exp-1-i); index from the low end.
            for (i, d) in n.digits.iter().enumerate() {
                let pow = n.exp as i64 - 1 - i as i64;
                v[(pow - low) as usize] = *d;
            }
            v
        };
        let a = layout(self);
        let b = layout(o);
        let (res, neg) = if self.neg == o_neg {
            let mut r = vec![0u8; width];
            let mut carry = 0;
            for i in 0..width {
                let s = a[i] + b[i] + carry;
                r[i] = s % 10;
                carry = s / 10;
            }
            (r, self.neg)
        } else {
            let (big, small, neg) = match self.cmp_abs(o) {
                Ordering::Equal => return Ok(Number::zero()),
                Ordering::Greater => (&a, &b, self.neg),
                Ordering::Less => (&b, &a, o_neg),
            };
            let mut r = vec![0u8; width];
            let mut borrow = 0i8;
            for i in 0..width {
                let mut s = big[i] as i8 - small[i] as i8 - borrow;
                borrow = 0;
                if s < 0 {
                    s += 10;
                    borrow = 1;
                }
                r[i] = s as u8;
            }
            (r, neg)
        };
        // res is little-endian with weight 10^(low + i); convert to normalised form.
        let top = match res.iter().rposition(|d| *d != 0) {
            Some(t) => t,
            None => return Ok(Number::zero()),
        };
        let bottom = res.iter().position(|d| *d != 0).unwrap_or(0);
        let digits: Vec<u8> = res[bottom..=top].iter().rev().copied().collect();
        let exp = low + top as i64 + 1;
        Number::checked(neg, digits, exp)
    }

    /// The value as f64 (inexact; only for TTL seconds and sizes).
    pub fn to_f64(&self) -> f64 {
        self.to_string().parse().unwrap_or(0.0)
    }
}

impl Ord for Number {
    fn cmp(&self, o: &Number) -> Ordering {
        let sign = |n: &Number| {
            if n.is_zero() {
                0
            } else if n.neg {
                -1
            } else {
                1
            }
        };
        match sign(self).cmp(&sign(o)) {
            Ordering::Equal => {}
            other => return other,
        }
        let abs = self.cmp_abs(o);
        if self.neg { abs.reverse() } else { abs }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, o: &Number) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl fmt::Display for Number {
    /// DynamoDB answers numbers in plain notation without exponent and without trailing zeros.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

/// The longest plain text of a number: a sign, `0.`, 129 zeros and 38 digits (1E-130 with
/// full precision); a large number is at most a sign and 126 digits.
const MAX_NUMBER_TEXT: usize = 1 + 2 + 129 + MAX_DIGITS;

/// A number's plain text, written without allocating (answers write every number they hold).
pub struct NumberText {
    buf: [u8; MAX_NUMBER_TEXT],
    len: usize,
}

impl NumberText {
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, '-', '0' and '.' are written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("0")
    }
}

impl Number {
    /// The number in plain notation without exponent and without trailing zeros, as DynamoDB
    /// answers it.
    pub fn text(&self) -> NumberText {
        let mut t = NumberText {
            buf: [b'0'; MAX_NUMBER_TEXT],
            len: 0,
        };
        if self.is_zero() {
            t.len = 1;
            return t;
        }
        let mut at = 0;
        if self.neg {
            t.buf[at] = b'-';
            at += 1;
        }
        let n = self.digits.len() as i32;
        if self.exp <= 0 {
            // 0.000ddd: the buffer is '0'-filled, so the zeros are stepped over.
            t.buf[at + 1] = b'.';
            at += 2 + (-self.exp) as usize;
            for d in &self.digits {
                t.buf[at] = b'0' + d;
                at += 1;
            }
        } else {
            for (i, d) in self.digits.iter().enumerate() {
                if i as i32 == self.exp {
                    t.buf[at] = b'.';
                    at += 1;
                }
                t.buf[at] = b'0' + d;
                at += 1;
            }
            // ddd000: zeros up to the decimal point, already in the buffer.
            if self.exp > n {
                at += (self.exp - n) as usize;
            }
        }
        t.len = at;
        t
    }
}

/// One attribute value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttrValue {
    S(String),
    N(Number),
    B(Vec<u8>),
    Bool(bool),
    Null,
    M(AttrMap),
    L(Vec<AttrValue>),
    SS(BTreeSet<String>),
    NS(BTreeSet<Number>),
    BS(BTreeSet<Vec<u8>>),
}

/// An item: attribute name to value.
pub type Item = AttrMap;
pub use super::attr_map::AttrMap;

impl AttrValue {
    /// The type descriptor as DynamoDB spells it (`S`, `BOOL`, `SS` ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            AttrValue::S(_) => "S",
            AttrValue::N(_) => "N",
            AttrValue::B(_) => "B",
            AttrValue::Bool(_) => "BOOL",
            AttrValue::Null => "NULL",
            AttrValue::M(_) => "M",
            AttrValue::L(_) => "L",
            AttrValue::SS(_) => "SS",
            AttrValue::NS(_) => "NS",
            AttrValue::BS(_) => "BS",
        }
    }

    /// Bytes this value counts for in the 400 KB item limit (AWS's documented sizing).
    pub fn size(&self) -> usize {
        match self {
            AttrValue::S(s) => s.len(),
            AttrValue::N(n) => n.size(),
            AttrValue::B(b) => b.len(),
            AttrValue::Bool(_) | AttrValue::Null => 1,
            AttrValue::M(m) => 3 + m.iter().map(|(k, v)| k.len() + v.size() + 1).sum::<usize>(),
            AttrValue::L(l) => 3 + l.iter().map(|v| v.size() + 1).sum::<usize>(),
            AttrValue::SS(s) => s.iter().map(|x| x.len()).sum(),
            AttrValue::NS(s) => s.iter().map(Number::size).sum(),
            AttrValue::BS(s) => s.iter().map(|x| x.len()).sum(),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::with_capacity(1);
        let (k, v) = match self {
            AttrValue::S(s) => ("S", Value::String(s.clone())),
            AttrValue::N(n) => ("N", Value::String(n.to_string())),
            AttrValue::B(b) => ("B", Value::String(b64(b))),
            AttrValue::Bool(b) => ("BOOL", Value::Bool(*b)),
            AttrValue::Null => ("NULL", Value::Bool(true)),
            AttrValue::M(m) => ("M", item_to_json(m)),
            AttrValue::L(l) => ("L", Value::Array(l.iter().map(|v| v.to_json()).collect())),
            AttrValue::SS(s) => ("SS", s.iter().map(|x| Value::String(x.clone())).collect()),
            AttrValue::NS(s) => (
                "NS",
                s.iter().map(|x| Value::String(x.to_string())).collect(),
            ),
            AttrValue::BS(s) => ("BS", s.iter().map(|x| Value::String(b64(x))).collect()),
        };
        m.insert(k.to_string(), v);
        Value::Object(m)
    }

    /// Parse the wire form `{"S": "x"}`, applying DynamoDB's validation. Members that are
    /// not a data type (or are null) are ignored; each value is checked before the count of
    /// types, as DynamoDB does (`{"S": "a", "N": "b"}` fails on the number).
    pub fn from_json(v: &Value) -> Result<AttrValue, DdbError> {
        const TYPES: [&str; 10] = ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"];
        let obj = v
            .as_object()
            .ok_or_else(|| DdbError::serialization("Unexpected value type in payload"))?;
        let mut parsed = None;
        let mut count = 0;
        for (k, v) in obj {
            if v.is_null() || !TYPES.contains(&k.as_str()) {
                continue;
            }
            count += 1;
            let one = Self::one_from_json(k, v)?;
            parsed.get_or_insert(one);
        }
        match (parsed, count) {
            (Some(v), 1) => Ok(v),
            (None, _) => Err(DdbError::validation(
                "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
            )),
            _ => Err(DdbError::validation(
                "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
            )),
        }
    }

    fn one_from_json(k: &str, v: &Value) -> Result<AttrValue, DdbError> {
        let ser =
            || DdbError::serialization(format!("Unexpected value type for AttributeValue {k}"));
        // Booleans may arrive as strings ("true", "1", "yes", "false", "0", "no").
        let boolean = |v: &Value| match v {
            Value::Bool(b) => Ok(*b),
            Value::String(s) => super::shape::boolean_text(s).ok_or_else(ser),
            _ => Err(ser()),
        };
        let invalid = |m: &str| {
            DdbError::validation(format!("One or more parameter values were invalid: {m}"))
        };
        Ok(match k {
            "S" => AttrValue::S(v.as_str().ok_or_else(ser)?.to_string()),
            "N" => AttrValue::N(parse_number(v.as_str().ok_or_else(ser)?)?),
            "B" => AttrValue::B(unb64(v.as_str().ok_or_else(ser)?)?),
            "BOOL" => AttrValue::Bool(boolean(v)?),
            "NULL" => {
                if boolean(v)? {
                    AttrValue::Null
                } else {
                    return Err(invalid(
                        "Null attribute value types must have the value of true",
                    ));
                }
            }
            "M" => AttrValue::M(item_from_json(v)?),
            "L" => AttrValue::L(
                v.as_array()
                    .ok_or_else(ser)?
                    .iter()
                    .map(AttrValue::from_json)
                    .collect::<Result<_, _>>()?,
            ),
            _ => {
                let arr = v.as_array().ok_or_else(ser)?;
                if arr.is_empty() {
                    return Err(invalid(match k {
                        "SS" => "An string set  may not be empty",
                        "NS" => "An number set  may not be empty",
                        _ => "Binary sets should not be empty",
                    }));
                }
                let mut raw = Vec::with_capacity(arr.len());
                for e in arr {
                    raw.push(e.as_str().ok_or_else(ser)?);
                }
                // DynamoDB words the duplicate error differently per set type.
                match k {
                    "SS" => {
                        let s: BTreeSet<String> = raw.iter().map(|x| x.to_string()).collect();
                        if s.len() != raw.len() {
                            return Err(invalid(&format!(
                                "Input collection [{}] contains duplicates.",
                                raw.join(", ")
                            )));
                        }
                        AttrValue::SS(s)
                    }
                    "NS" => {
                        let mut s = BTreeSet::new();
                        for x in &raw {
                            s.insert(parse_number(x)?);
                        }
                        if s.len() != raw.len() {
                            // The one duplicate message DynamoDB sends without the usual prefix.
                            return Err(DdbError::validation(
                                "Input collection contains duplicates",
                            ));
                        }
                        AttrValue::NS(s)
                    }
                    _ => {
                        let mut s = BTreeSet::new();
                        for x in &raw {
                            s.insert(unb64(x)?);
                        }
                        if s.len() != raw.len() {
                            return Err(invalid(&format!(
                                "Input collection [{}]of type BS contains duplicates.",
                                raw.join(", ")
                            )));
                        }
                        AttrValue::BS(s)
                    }
                }
            }
        })
    }

    /// A short rendering for error messages, as DynamoDB prints a BETWEEN bound: `{S:x}`.
    pub fn describe(&self) -> String {
        match self {
            AttrValue::S(s) => format!("{{S:{s}}}"),
            AttrValue::N(n) => format!("{{N:{n}}}"),
            AttrValue::B(b) => format!("{{B:{}}}", b64(b)),
            other => other.to_json().to_string(),
        }
    }
}

/// A number sent as an attribute value; a malformed one is named as DynamoDB names it.
pub fn parse_number(s: &str) -> Result<Number, DdbError> {
    Number::parse(s).map_err(|e| match e {
        NumberError::Syntax if s.is_empty() => {
            DdbError::validation("The parameter cannot be converted to a numeric value")
        }
        NumberError::Syntax => DdbError::validation(format!(
            "The parameter cannot be converted to a numeric value: {s}"
        )),
        e => DdbError::validation(e.message()),
    })
}

pub fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

pub(crate) fn unb64(s: &str) -> Result<Vec<u8>, DdbError> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| DdbError::serialization("Base64 encoded value could not be decoded"))
}

/// The wire form written straight out, byte for byte what serialising
/// [`AttrValue::to_json`] gives (maps in key order, sets in their order), without building
/// the `Value` tree: answers that carry items write them this way.
impl serde::Serialize for AttrValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        /// A sequence of values shown through `Display` or base64.
        struct Seq<I>(I);
        impl<I, T> serde::Serialize for Seq<I>
        where
            I: Iterator<Item = T> + Clone,
            T: fmt::Display,
        {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.clone().map(|x| x.to_string()))
            }
        }
        let mut m = s.serialize_map(Some(1))?;
        match self {
            AttrValue::S(x) => m.serialize_entry("S", x)?,
            AttrValue::N(n) => m.serialize_entry("N", n.text().as_str())?,
            AttrValue::B(b) => m.serialize_entry("B", &b64(b))?,
            AttrValue::Bool(b) => m.serialize_entry("BOOL", b)?,
            AttrValue::Null => m.serialize_entry("NULL", &true)?,
            AttrValue::M(x) => m.serialize_entry("M", x)?,
            AttrValue::L(l) => m.serialize_entry("L", l)?,
            AttrValue::SS(x) => m.serialize_entry("SS", x)?,
            AttrValue::NS(x) => m.serialize_entry("NS", &NumberSeq(x))?,
            AttrValue::BS(x) => m.serialize_entry("BS", &Seq(x.iter().map(|b| B64(b))))?,
        }
        m.end()
    }
}

/// A number set as the strings of its numbers.
struct NumberSeq<'a>(&'a BTreeSet<Number>);

impl serde::Serialize for NumberSeq<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut q = s.serialize_seq(Some(self.0.len()))?;
        for n in self.0 {
            q.serialize_element(n.text().as_str())?;
        }
        q.end()
    }
}

/// Bytes shown as base64.
struct B64<'a>(&'a [u8]);

impl fmt::Display for B64<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&b64(self.0))
    }
}

/// A key value in the wire form of the attribute value it is (`{"S": "x"}`), as
/// [`KeyVal::to_attr`] would serialise, without the copy.
impl serde::Serialize for KeyVal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        match self {
            KeyVal::S(x) => m.serialize_entry("S", x)?,
            KeyVal::N(n) => m.serialize_entry("N", n.text().as_str())?,
            KeyVal::B(b) => m.serialize_entry("B", &b64(b))?,
            KeyVal::Tuple(t) => m.serialize_entry("L", t)?,
        }
        m.end()
    }
}

pub fn item_to_json(item: &Item) -> Value {
    let mut m = Map::with_capacity(item.len());
    for (k, v) in item {
        m.insert(k.clone(), v.to_json());
    }
    Value::Object(m)
}

pub fn item_from_json(v: &Value) -> Result<Item, DdbError> {
    let obj = v.as_object().ok_or_else(|| {
        DdbError::serialization("Unexpected value type in payload: expected a map")
    })?;
    let mut item = Item::new();
    for (k, v) in obj {
        item.insert(k.clone(), AttrValue::from_json(v)?);
    }
    Ok(item)
}

/// How deep DynamoDB lets documents nest: an item and 31 levels of maps and lists in it.
pub const MAX_NESTING: usize = 32;

/// How many levels of maps and lists `v` is (0 for a scalar or a set).
pub fn nesting(v: &AttrValue) -> usize {
    match v {
        AttrValue::M(m) => 1 + m.values().map(nesting).max().unwrap_or(0),
        AttrValue::L(l) => 1 + l.iter().map(nesting).max().unwrap_or(0),
        _ => 0,
    }
}

/// The longest attribute name DynamoDB accepts, in bytes (a key attribute's: 255).
pub const MAX_ATTR_NAME: usize = 65535;

/// What is wrong with attribute name `name`, if anything: DynamoDB's names are 1 to
/// [`MAX_ATTR_NAME`] bytes.
pub fn attr_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("Empty attribute name".into())
    } else if name.len() > MAX_ATTR_NAME {
        Some(format!(
            "Attribute name is too large, must be less than {} bytes",
            MAX_ATTR_NAME + 1
        ))
    } else {
        None
    }
}

/// Size of a whole item as DynamoDB counts it: names plus values.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size()).sum()
}

/// How much of a Query or Scan page's 1 MB an item uses. DynamoDB counts its stored form
/// here, not the documented item size: one byte per attribute name, a length prefix per
/// value, and a per-item overhead that grows with every 3 KB and includes the sort key
/// (measured against DynamoDB; what makes `Limit`-free pages end where DynamoDB's do).
pub fn page_size(item: &Item, range_key: Option<&str>) -> usize {
    let mut range_size = 0;
    let mut size = 0;
    for (k, v) in item {
        if Some(k.as_str()) == range_key {
            range_size = v.size();
        } else {
            size += stored_size(v) + 1;
        }
    }
    2 + size + (1 + (1 + size) / 3072) * (18 + range_size)
}

/// A value's size in DynamoDB's stored form (see [`page_size`]).
fn stored_size(v: &AttrValue) -> usize {
    match v {
        AttrValue::S(s) => {
            let n = s.len();
            n + if n < 128 {
                1
            } else if n < 16384 {
                2
            } else {
                3
            }
        }
        AttrValue::B(_) | AttrValue::N(_) => v.size() + 1,
        AttrValue::SS(x) => v.size() + x.len() + 1,
        AttrValue::NS(x) => v.size() + x.len() + 1,
        AttrValue::BS(x) => v.size() + x.len() + 1,
        AttrValue::Null => 0,
        AttrValue::Bool(_) => 1,
        AttrValue::L(l) => 3 + l.iter().map(|e| 1 + stored_size(e)).sum::<usize>(),
        AttrValue::M(m) => 3 + m.len() + m.values().map(|e| stored_size(e) + 1).sum::<usize>(),
    }
}

/// The scalar types a key attribute can have; ordered like DynamoDB sorts keys: numbers
/// numerically, strings and binaries bytewise (Rust's `str` order is UTF-8 byte order).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyVal {
    N(Number),
    S(String),
    B(Vec<u8>),
    /// A multi-attribute index key: its attributes' values in KeySchema order, compared
    /// attribute by attribute (a shorter tuple sorts before the tuples it begins). Only
    /// index entries hold tuples; table keys and request values are scalars.
    Tuple(Vec<KeyVal>),
}

impl KeyVal {
    pub fn from_attr(v: &AttrValue) -> Option<KeyVal> {
        match v {
            AttrValue::S(s) => Some(KeyVal::S(s.clone())),
            AttrValue::N(n) => Some(KeyVal::N(n.clone())),
            AttrValue::B(b) => Some(KeyVal::B(b.clone())),
            _ => None,
        }
    }
    pub fn to_attr(&self) -> AttrValue {
        match self {
            KeyVal::S(s) => AttrValue::S(s.clone()),
            KeyVal::N(n) => AttrValue::N(n.clone()),
            KeyVal::B(b) => AttrValue::B(b.clone()),
            KeyVal::Tuple(t) => AttrValue::L(t.iter().map(KeyVal::to_attr).collect()),
        }
    }
    /// The bytes DynamoDB hashes for a key value (a tuple's: each value's, length-prefixed).
    fn hash_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            KeyVal::S(s) => std::borrow::Cow::Borrowed(s.as_bytes()),
            KeyVal::B(b) => std::borrow::Cow::Borrowed(b),
            KeyVal::N(n) => std::borrow::Cow::Owned(n.key_bytes()),
            KeyVal::Tuple(t) => {
                let mut out = Vec::new();
                for v in t {
                    let b = v.hash_bytes();
                    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
                    out.extend_from_slice(&b);
                }
                std::borrow::Cow::Owned(out)
            }
        }
    }
}

/// Where a partition key sits in DynamoDB's hash space: the first 24 bits of an MD5 over a
/// fixed salt and the key's bytes (and, for index entries, the table key's). Scans return
/// partitions in this order and parallel-scan segments split it, as DynamoDB does (the order
/// clients observe from DynamoDB; the salt is what makes it match).
pub fn hash_prefix(hash: &KeyVal, range: Option<&KeyVal>) -> u32 {
    use md5::Digest as _;
    let mut h = md5::Md5::new();
    h.update(b"Outliers");
    h.update(hash.hash_bytes());
    if let Some(r) = range {
        h.update(r.hash_bytes());
    }
    let d = h.finalize();
    u32::from_be_bytes([0, d[0], d[1], d[2]])
}

/// Where a table key sits among index entries that share one index key: an MD5 over the
/// same salt, the partition key's bytes and the sort key's. DynamoDB returns such entries in
/// this order (dynalite's query tests on global indexes, checked against DynamoDB).
pub fn key_order(hash: &KeyVal, range: Option<&KeyVal>) -> u128 {
    use md5::Digest as _;
    let mut h = md5::Md5::new();
    h.update(b"Outliers");
    h.update(hash.hash_bytes());
    if let Some(r) = range {
        h.update(r.hash_bytes());
    }
    u128::from_be_bytes(h.finalize().into())
}

/// The 12-bit bucket (of 4096) a hash prefix falls in; parallel scan segments are ranges of
/// buckets: segment `s` of `n` holds buckets `ceil(4096 s / n) ..= ceil(4096 (s + 1) / n) - 1`.
pub fn segment_buckets(segment: u64, total: u64) -> (u32, u32) {
    let lo = (4096 * segment).div_ceil(total);
    let hi = (4096 * (segment + 1)).div_ceil(total);
    (lo as u32, hi as u32)
}

/// A partition key in scan order: its hash prefix first, then the value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartKey {
    pub prefix: u32,
    pub key: KeyVal,
}

impl PartKey {
    pub fn new(key: KeyVal) -> PartKey {
        PartKey {
            prefix: hash_prefix(&key, None),
            key,
        }
    }

    /// Below every partition whose prefix is at least `prefix`.
    pub fn lower_bound(prefix: u32) -> PartKey {
        PartKey {
            prefix,
            key: KeyVal::N(Number {
                neg: true,
                digits: vec![9; MAX_DIGITS],
                exp: 126,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number {
        Number::parse(s).unwrap()
    }

    fn s(v: &str) -> KeyVal {
        KeyVal::S(v.into())
    }

    #[test]
    fn an_item_written_directly_reads_back_as_the_same_item() {
        let wire = serde_json::json!({
            "s": {"S": "a \"quoted\" \u{e9}"},
            "n": {"N": "-12.50"},
            "b": {"B": "AAEC"},
            "t": {"BOOL": true},
            "z": {"NULL": true},
            "m": {"M": {"inner": {"N": "1"}, "l": {"L": [{"S": "x"}, {"N": "2"}]}}},
            "ss": {"SS": ["b", "a"]},
            "ns": {"NS": ["10", "9.5"]},
            "bs": {"BS": ["AQ==", "Ag=="]}
        });
        let item = item_from_json(&wire).unwrap();
        let direct = serde_json::to_string(&item).unwrap();
        assert_eq!(direct, item_to_json(&item).to_string());
        let back: Value = serde_json::from_str(&direct).unwrap();
        assert_eq!(item_from_json(&back).unwrap(), item);
    }

    #[test]
    fn partitions_scan_in_dynamodb_hash_order() {
        // The order and segments DynamoDB itself returns for these keys.
        let mut keys: Vec<&str> = vec![
            "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "aardman", "hello", "zapf", "äáöü",
        ];
        keys.sort_by_key(|k| PartKey::new(s(k)));
        assert_eq!(
            keys,
            [
                "2", "8", "9", "1", "6", "hello", "0", "5", "4", "äáöü", "aardman", "7", "3",
                "zapf"
            ]
        );
        let mut nums = vec![
            "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "-0.09", "999.9", "0.012345",
            "-999.9",
        ];
        nums.sort_by_key(|k| PartKey::new(KeyVal::N(n(k))));
        assert_eq!(
            nums,
            [
                "7", "999.9", "8", "3", "2", "-999.9", "9", "4", "-0.09", "6", "1", "0",
                "0.012345", "5"
            ]
        );
        let bucket = |k: KeyVal| PartKey::new(k).prefix >> 12;
        assert_eq!(bucket(s("3635")), 0);
        assert_eq!(bucket(s("228")), 0);
        assert_eq!(bucket(s("1668")), 1);
        assert_eq!(bucket(s("3435")), 4);
        assert_eq!(bucket(KeyVal::N(n("251"))), 1);
        assert_eq!(bucket(KeyVal::N(n("2388"))), 4095);
        assert_eq!(segment_buckets(0, 2), (0, 2048));
        assert_eq!(segment_buckets(1, 3), (1366, 2731));
    }

    #[test]
    fn number_sizes_follow_dynamodb() {
        assert_eq!(n("0").size(), 1);
        assert_eq!(n("12").size(), 2);
        assert_eq!(n("1.2").size(), 3);
        assert_eq!(n("-12").size(), 3);
        assert_eq!(n("123").size(), 3);
    }

    #[test]
    fn numbers_normalise_and_print_plain() {
        assert_eq!(n("1.50").to_string(), "1.5");
        assert_eq!(n("1e2").to_string(), "100");
        assert_eq!(n("-0.000").to_string(), "0");
        assert_eq!(n(".5").to_string(), "0.5");
        assert_eq!(n("5.").to_string(), "5");
        assert_eq!(n("-12.345E1").to_string(), "-123.45");
        assert_eq!(n("0012.0"), n("12"));
        assert_eq!(n("1E-130").to_string(), format!("0.{}1", "0".repeat(129)));
    }

    /// The plain text of `x` worked out on decimal strings: digits shifted by the exponent,
    /// zeros padded, the point placed, trailing zeros after it and leading zeros dropped.
    fn plain_by_strings(x: &str) -> String {
        let (neg, rest) = x.strip_prefix('-').map_or((false, x), |r| (true, r));
        let (mant, e10) = match rest.split_once(['e', 'E']) {
            Some((m, e)) => (m, e.parse::<i64>().unwrap()),
            None => (rest, 0),
        };
        let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
        let digits = format!("{int}{frac}");
        let point = int.len() as i64 + e10;
        let (int, frac) = if point <= 0 {
            (
                "0".to_string(),
                format!("{}{digits}", "0".repeat((-point) as usize)),
            )
        } else if point as usize >= digits.len() {
            (
                format!("{digits}{}", "0".repeat(point as usize - digits.len())),
                String::new(),
            )
        } else {
            (
                digits[..point as usize].to_string(),
                digits[point as usize..].to_string(),
            )
        };
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        let body = match (int.is_empty(), frac.is_empty()) {
            (true, true) => return "0".into(),
            (true, false) => format!("0.{frac}"),
            (false, true) => int.to_string(),
            (false, false) => format!("{int}.{frac}"),
        };
        if neg { format!("-{body}") } else { body }
    }

    #[test]
    fn a_numbers_text_is_its_plain_decimal_notation_at_every_exponent_and_length() {
        let mut cases = vec![
            "0".to_string(),
            "-0.0".into(),
            format!("1E-130"),
            format!("-{}E-93", "9".repeat(38)),
            format!("{}E88", "9".repeat(38)),
            format!("-9.{}E125", "9".repeat(37)),
            "123.45e-2".into(),
        ];
        for mant in ["1", "12", "105", "1.5", "-7", "-3.25", &"31".repeat(19)] {
            for e in [
                -130, -129, -100, -40, -5, -3, -2, -1, 0, 1, 2, 3, 5, 40, 87, 100, 120,
            ] {
                cases.push(format!("{mant}e{e}"));
            }
        }
        let mut checked = 0;
        for c in &cases {
            let Ok(v) = Number::parse(c) else { continue };
            let text = v.text();
            assert_eq!(text.as_str(), plain_by_strings(c), "{c}");
            assert_eq!(v.to_string(), text.as_str(), "{c}");
            assert_eq!(Number::parse(text.as_str()), Ok(v), "{c}");
            checked += 1;
        }
        assert!(checked > 100, "only {checked} cases in range");
    }

    #[test]
    fn numbers_reject_bad_syntax_precision_and_range() {
        for bad in [
            "", "-", "abc", "1e", "1.2.3", "1 ", " 1", "0x10", "e5", "NaN", "Infinity",
        ] {
            assert_eq!(Number::parse(bad), Err(NumberError::Syntax), "{bad:?}");
        }
        assert_eq!(Number::parse(&"1".repeat(39)), Err(NumberError::Precision));
        assert!(Number::parse(&"1".repeat(38)).is_ok());
        assert!(Number::parse(&format!("1{}", "0".repeat(60))).is_ok());
        assert_eq!(Number::parse("1E126"), Err(NumberError::Overflow));
        assert!(Number::parse("9.9999999999999999999999999999999999999E+125").is_ok());
        assert_eq!(Number::parse("1E-131"), Err(NumberError::Underflow));
    }

    #[test]
    fn numbers_compare_numerically() {
        let mut v: Vec<Number> = ["10", "9", "-1", "-10", "0", "0.5", "1e3", "-0.01"]
            .iter()
            .map(|s| n(s))
            .collect();
        v.sort();
        let s: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        assert_eq!(s, ["-10", "-1", "-0.01", "0", "0.5", "9", "10", "1000"]);
    }

    #[test]
    fn addition_is_exact() {
        assert_eq!(n("0.1").add(&n("0.2"), false).unwrap().to_string(), "0.3");
        assert_eq!(n("1").add(&n("1"), true).unwrap().to_string(), "0");
        assert_eq!(n("100").add(&n("0.01"), true).unwrap().to_string(), "99.99");
        assert_eq!(n("-5").add(&n("3"), false).unwrap().to_string(), "-2");
        let big = "9".repeat(38);
        assert_eq!(
            n(&big).add(&n("1"), false).unwrap().to_string(),
            format!("1{}", "0".repeat(38))
        );
        assert_eq!(n(&big).add(&n("0.1"), false), Err(NumberError::Precision));
        assert_eq!(
            n("9.9999999999999999999999999999999999999E+125").add(&n("1E+125"), false),
            Err(NumberError::Overflow)
        );
    }

    #[test]
    fn sets_reject_empty_and_duplicates() {
        let e = AttrValue::from_json(&serde_json::json!({"SS": []})).unwrap_err();
        assert!(
            e.message.contains("An string set  may not be empty"),
            "{}",
            e.message
        );
        let e = AttrValue::from_json(&serde_json::json!({"NS": ["1", "1.0"]})).unwrap_err();
        assert!(e.message.contains("contains duplicates"), "{}", e.message);
        let v = AttrValue::from_json(
            &serde_json::json!({"M": {"a": {"L": [{"NULL": true}, {"B": "AAE="}]}}}),
        )
        .unwrap();
        assert_eq!(AttrValue::from_json(&v.to_json()).unwrap(), v);
    }

    #[test]
    fn written_straight_out_is_the_wire_form_byte_for_byte() {
        let item = item_from_json(&serde_json::json!({
            "s": {"S": "plain"},
            "esc": {"S": "quote \" backslash \\ newline \n tab \t é 😀 \u{1}"},
            "n": {"N": "-0012.3400"},
            "big": {"N": "1.5E+30"},
            "small": {"N": "-1e-120"},
            "zero": {"N": "-0.0"},
            "b": {"B": "AAEC/w=="},
            "t": {"BOOL": true},
            "f": {"BOOL": false},
            "null": {"NULL": true},
            "ss": {"SS": ["b", "a", "é"]},
            "ns": {"NS": ["10", "9.5", "-1", "1e3"]},
            "bs": {"BS": ["AQ==", "AA==", "/w=="]},
            "l": {"L": [{"S": "x"}, {"N": "1"}, {"L": []}, {"M": {}}, {"NULL": true}]},
            "m": {"M": {"z": {"S": "last"}, "a": {"M": {"deep": {"SS": ["q"]}}}, "": {"S": "empty name"}}}
        }))
        .unwrap();
        for (k, v) in &item {
            assert_eq!(
                serde_json::to_string(v).unwrap(),
                v.to_json().to_string(),
                "{k}"
            );
        }
        assert_eq!(
            serde_json::to_string(&item).unwrap(),
            item_to_json(&item).to_string()
        );
    }
}
