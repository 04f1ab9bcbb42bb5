//! MD5 digests exactly as SQS computes them; SDKs recompute and compare them.

use std::collections::BTreeMap;

use md5::{Digest, Md5};

use super::MessageAttributeValue;

pub fn md5_hex(data: &[u8]) -> String {
    hex_lower(&Md5::digest(data))
}

/// An MD5 digest as SQS writes it: 32 lower-case hex characters, kept without allocating
/// (the engine keeps each message's body digest from its send, so a receive does not hash).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HexDigest([u8; 32]);

impl HexDigest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> HexDigest {
        RawDigest::of(data).hex()
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written into it.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::ops::Deref for HexDigest {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for HexDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for HexDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An MD5 digest's 16 bytes: how a queued message keeps its body's digest until a receive
/// answers it (half the room of the hex text; with it a queued message fits mimalloc's 256-byte
/// size class instead of the 320-byte one).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RawDigest([u8; 16]);

impl RawDigest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> RawDigest {
        RawDigest(Md5::digest(data).into())
    }

    /// The digest as SQS writes it.
    pub fn hex(self) -> HexDigest {
        let mut out = [0u8; 32];
        hex_into(&self.0, &mut out);
        HexDigest(out)
    }
}

/// Lower-case hex of `b` into `out` (twice as long), written by hand (it runs for every
/// message sent).
pub(super) fn hex_into(b: &[u8], out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (x, pair) in b.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = HEX[(x >> 4) as usize];
        pair[1] = HEX[(x & 15) as usize];
    }
}

/// Lower-case hex of `b`.
pub(super) fn hex_lower(b: &[u8]) -> String {
    let mut out = vec![0u8; b.len() * 2];
    hex_into(b, &mut out);
    // Only ASCII hex digits were written.
    String::from_utf8(out).unwrap_or_default()
}

/// The digest of message (or system) attributes: for each attribute in name order, the name,
/// the data type and the value, each as a 4-byte big-endian length followed by the bytes, with a
/// one-byte transport marker (1 = string, 2 = binary) before the value.
pub fn md5_of_attributes<'a>(
    attrs: impl IntoIterator<Item = (&'a String, &'a MessageAttributeValue)>,
) -> String {
    let mut sorted: BTreeMap<&[u8], &MessageAttributeValue> = BTreeMap::new();
    for (k, v) in attrs {
        sorted.insert(k.as_bytes(), v);
    }
    let mut h = Md5::new();
    let put = |h: &mut Md5, b: &[u8]| {
        h.update((b.len() as u32).to_be_bytes());
        h.update(b);
    };
    for (name, v) in sorted {
        put(&mut h, name);
        put(&mut h, v.data_type.as_bytes());
        if let Some(bin) = &v.binary_value {
            h.update([2u8]);
            put(&mut h, bin);
        } else {
            h.update([1u8]);
            put(&mut h, v.string_value.as_deref().unwrap_or("").as_bytes());
        }
    }
    hex_lower(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_kept_as_bytes_gives_back_its_hex() {
        for data in [&b""[..], b"hello", "é ✓".as_bytes(), &[0xff; 300]] {
            assert_eq!(RawDigest::of(data).hex().as_str(), md5_hex(data));
        }
        assert_eq!(
            RawDigest::of(b"hello"),
            RawDigest([
                0x5d, 0x41, 0x40, 0x2a, 0xbc, 0x4b, 0x2a, 0x76, 0xb9, 0x71, 0x9d, 0x91, 0x10, 0x17,
                0xc5, 0x92
            ])
        );
    }

    #[test]
    fn body_digest_matches_known_value() {
        assert_eq!(md5_hex(b"hello"), "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(
            HexDigest::of(b"hello").as_str(),
            "5d41402abc4b2a76b9719d911017c592"
        );
        assert_eq!(
            HexDigest::of("é ✓".as_bytes()).as_str(),
            md5_hex("é ✓".as_bytes())
        );
    }

    #[test]
    fn attribute_digest_matches_aws_documented_example() {
        // From the AWS SQS developer guide / SDK tests: one String attribute.
        let mut m = BTreeMap::new();
        m.insert(
            "test".to_string(),
            MessageAttributeValue {
                data_type: "String".into(),
                string_value: Some("test".into()),
                binary_value: None,
            },
        );
        // Computed by hand over 00000004 'test' 00000006 'String' 01 00000004 'test'.
        let mut raw = Vec::new();
        raw.extend_from_slice(&4u32.to_be_bytes());
        raw.extend_from_slice(b"test");
        raw.extend_from_slice(&6u32.to_be_bytes());
        raw.extend_from_slice(b"String");
        raw.push(1);
        raw.extend_from_slice(&4u32.to_be_bytes());
        raw.extend_from_slice(b"test");
        assert_eq!(md5_of_attributes(m.iter()), md5_hex(&raw));
    }
}
