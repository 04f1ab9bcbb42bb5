//! Reading the plain form of a request body straight into typed values, without a
//! `serde_json::Value` tree in between.
//!
//! The most frequent requests (PutItem of an item, GetItem of a key) are read by `serde`
//! straight into [`Item`]s. Only a body in the plain form is read this way: a JSON object
//! with exactly the members a reading names, each attribute value an object with exactly one
//! data type of its documented JSON type, and every value that DynamoDB would refuse
//! (a malformed number or base-64 value, an empty or duplicated set, `NULL` not `true`, a
//! duplicated name) refused here as not plain. Any body that is not plain is read as a
//! `Value` and checked as before, which gives DynamoDB's error for it: a reading here never
//! answers differently, it only answers sooner (`typed_tests` compares both).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use super::value::{AttrValue, Item, Number};

/// An item (or key) in the plain wire form.
pub struct PlainItem(pub Item);

/// One attribute value in the plain wire form.
struct PlainValue(AttrValue);

/// A string member, borrowed from the body unless it has escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(s))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(s.to_string()))
            }
        }
        d.deserialize_str(V).map(Text)
    }
}

fn not_plain<E: de::Error>() -> E {
    E::custom("not in the plain form")
}

impl<'de> Deserialize<'de> for PlainItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Item;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of attribute values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Item, A::Error> {
                let mut entries = Vec::with_capacity(m.size_hint().unwrap_or(0).min(64));
                while let Some(name) = m.next_key::<Text>()? {
                    let PlainValue(v) = m.next_value()?;
                    entries.push((name.0.into_owned(), v));
                }
                Item::from_distinct(entries).ok_or_else(not_plain)
            }
        }
        d.deserialize_map(V).map(PlainItem)
    }
}

impl<'de> Deserialize<'de> for PlainValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AttrValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an attribute value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<AttrValue, A::Error> {
                let Some(ty) = m.next_key::<Text>()? else {
                    return Err(not_plain());
                };
                let v = match &*ty.0 {
                    "S" => AttrValue::S(m.next_value::<Text>()?.0.into_owned()),
                    "N" => AttrValue::N(number(&m.next_value::<Text>()?.0)?),
                    "B" => AttrValue::B(binary(&m.next_value::<Text>()?.0)?),
                    "BOOL" => AttrValue::Bool(m.next_value::<bool>()?),
                    "NULL" => match m.next_value::<bool>()? {
                        true => AttrValue::Null,
                        false => return Err(not_plain()),
                    },
                    "M" => AttrValue::M(m.next_value::<PlainItem>()?.0),
                    "L" => AttrValue::L(
                        m.next_value::<Vec<PlainValue>>()?
                            .into_iter()
                            .map(|v| v.0)
                            .collect(),
                    ),
                    "SS" => {
                        AttrValue::SS(set(m.next_value::<Vec<Text>>()?, |t| Ok(t.0.into_owned()))?)
                    }
                    "NS" => AttrValue::NS(set(m.next_value::<Vec<Text>>()?, |t| number(&t.0))?),
                    "BS" => AttrValue::BS(set(m.next_value::<Vec<Text>>()?, |t| binary(&t.0))?),
                    _ => return Err(not_plain()),
                };
                // Exactly one data type.
                if m.next_key::<de::IgnoredAny>()?.is_some() {
                    return Err(not_plain());
                }
                Ok(v)
            }
        }
        d.deserialize_map(V).map(PlainValue)
    }
}

fn number<E: de::Error>(s: &str) -> Result<Number, E> {
    super::value::parse_number(s).map_err(|_| not_plain())
}

fn binary<E: de::Error>(s: &str) -> Result<Vec<u8>, E> {
    super::value::unb64(s).map_err(|_| not_plain())
}

/// A set: not empty, no two elements equal (as the set's type compares them).
fn set<T: Ord, E: de::Error>(
    raw: Vec<Text>,
    f: impl Fn(Text) -> Result<T, E>,
) -> Result<BTreeSet<T>, E> {
    let n = raw.len();
    let s = raw.into_iter().map(f).collect::<Result<BTreeSet<T>, E>>()?;
    if n == 0 || s.len() != n {
        return Err(not_plain());
    }
    Ok(s)
}

/// Whether a table name passes DynamoDB's constraints (3 to 255 of `[a-zA-Z0-9_.-]`); a
/// plain reading leaves any other name to the `Value` reading, which words the error.
fn plain_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// PutItem with only `TableName` and `Item`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutItemIn<'a> {
    #[serde(rename = "TableName", borrow)]
    table: Text<'a>,
    #[serde(rename = "Item")]
    item: PlainItem,
}

/// GetItem with only `TableName`, `Key` and (a JSON boolean) `ConsistentRead`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetItemIn<'a> {
    #[serde(rename = "TableName", borrow)]
    table: Text<'a>,
    #[serde(rename = "Key")]
    key: PlainItem,
    #[serde(rename = "ConsistentRead", default)]
    consistent: Option<bool>,
}

/// A body read the plain way: the parts each operation's typed request is built from.
pub enum Plain<'a> {
    PutItem {
        table: Cow<'a, str>,
        item: Item,
    },
    GetItem {
        table: Cow<'a, str>,
        key: Item,
        consistent: bool,
    },
}

/// `body` read the plain way as a request of `op`, or `None` when it is not plain (or `op`
/// has no plain reading).
pub fn read<'a>(op: &str, body: &'a [u8]) -> Option<Plain<'a>> {
    // Only an object can be plain; anything else is for the Value reading's error.
    if body.first() != Some(&b'{') {
        return None;
    }
    let plain = match op {
        "PutItem" => {
            let r: PutItemIn = serde_json::from_slice(body).ok()?;
            (!r.item.0.is_empty()).then_some(Plain::PutItem {
                table: r.table.0,
                item: r.item.0,
            })?
        }
        "GetItem" => {
            let r: GetItemIn = serde_json::from_slice(body).ok()?;
            (!r.key.0.is_empty()).then_some(Plain::GetItem {
                table: r.table.0,
                key: r.key.0,
                consistent: r.consistent.unwrap_or(false),
            })?
        }
        _ => return None,
    };
    let table = match &plain {
        Plain::PutItem { table, .. } | Plain::GetItem { table, .. } => table,
    };
    plain_table_name(table).then_some(plain)
}
