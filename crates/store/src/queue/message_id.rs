//! A message's id: a version-4 UUID kept as its 16 bytes, written as SQS writes it.

use super::md5::hex_into;

/// A message id. Kept inline in a queued message (no allocation of its own, as its 36
/// characters of text were: 64 bytes a queued message, in mimalloc's size classes) and
/// written as text only where an answer, a journal record or a segment carries it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageId([u8; 16]);

impl MessageId {
    /// A version-4 UUID from 16 random bytes (the version and variant bits are set).
    pub fn v4(mut b: [u8; 16]) -> MessageId {
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        MessageId(b)
    }

    /// The id as written: lower-case hex in groups of 8-4-4-4-12, on the stack.
    pub fn text(&self) -> IdText {
        let mut hex = [0u8; 32];
        hex_into(&self.0, &mut hex);
        let mut out = [b'-'; 36];
        let mut at = 0;
        for (i, part) in [0..8, 8..12, 12..16, 16..20, 20..32]
            .into_iter()
            .enumerate()
        {
            let len = part.len();
            out[at..at + len].copy_from_slice(&hex[part]);
            at += len + usize::from(i < 4);
        }
        IdText(out)
    }

    /// The id written as [`text`](Self::text) writes it; `None` for anything else (so that
    /// reading and writing an id back gives the same text).
    pub fn parse(s: &str) -> Option<MessageId> {
        let s = s.as_bytes();
        if s.len() != 36 {
            return None;
        }
        let mut b = [0u8; 16];
        let mut nibbles = 0;
        for (i, &c) in s.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return None;
                }
                continue;
            }
            let v = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                _ => return None,
            };
            b[nibbles / 2] |= if nibbles % 2 == 0 { v << 4 } else { v };
            nibbles += 1;
        }
        Some(MessageId(b))
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

/// A message id's text, on the stack.
#[derive(Clone, Copy)]
pub struct IdText([u8; 36]);

impl std::ops::Deref for IdText {
    type Target = str;
    fn deref(&self) -> &str {
        // Only ASCII hex digits and dashes are ever written into it.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl serde::Serialize for IdText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::MessageId;

    #[test]
    fn an_id_is_a_version_4_uuid_in_lower_case_and_reads_back() {
        let id = MessageId::v4([0xab; 16]);
        assert_eq!(&*id.text(), "abababab-abab-4bab-abab-abababababab");
        assert_eq!(id.to_string(), "abababab-abab-4bab-abab-abababababab");
        assert_eq!(MessageId::parse(&id.text()), Some(id));
        let zero = MessageId::v4([0; 16]);
        assert_eq!(&*zero.text(), "00000000-0000-4000-8000-000000000000");
        let known = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(&*MessageId::parse(known).unwrap().text(), known);
    }

    #[test]
    fn anything_but_the_written_form_is_refused() {
        for bad in [
            "",
            "id-1",
            "0F8FAD5B-D9CB-469F-A165-70867728950E",
            "0f8fad5bd9cb469fa16570867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950",
            "0f8fad5b-d9cb-469f-a165-70867728950e0",
            "0f8fad5b_d9cb-469f-a165-70867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950g",
            "0f8fad5b-d9cb-469f-a165-7086772895é",
        ] {
            assert_eq!(MessageId::parse(bad), None, "{bad}");
        }
    }
}
