//! Compressed DynamoDB requests and responses, as DynamoDB handles them.
//!
//! Requests: a body sent with `Content-Encoding: gzip` (one or more gzip members, RFC 1952)
//! or `deflate` (zlib, RFC 1950) is decompressed before it is read (the signature covers the
//! bytes sent, so it is checked first); `identity` is no encoding. Any other coding, or a body
//! that does not decompress, is answered HTTP 500 `InternalServerError`, as DynamoDB answers;
//! a body that decompresses past the 16 MB request limit is answered 413.
//!
//! Responses: an answer over 4 KB (DynamoDB's threshold) is compressed ([`pack`]) with the
//! coding the first `Accept-Encoding` header prefers among `gzip` and `deflate` (see
//! [`negotiate`]); its `x-amz-crc32` is then that of the bytes sent.

use std::io::Read;

use bytes::Bytes;
use hyper::HeaderMap;
use hyper::header::{ACCEPT_ENCODING, CONTENT_ENCODING, HeaderValue};

/// Answers this size or smaller are never compressed.
pub const COMPRESSION_THRESHOLD: usize = 4096;

/// A coding kedge compresses answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Deflate,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
        }
    }
}

/// Why a request body could not be decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A coding other than gzip, deflate or identity.
    Unsupported(String),
    /// The body is not valid in its coding.
    Corrupt(String),
    /// The decoded body is larger than `limit`.
    TooLarge,
}

/// The body as sent, decoded by its `Content-Encoding`; at most `limit` bytes once decoded.
pub fn decode_request(
    headers: &HeaderMap,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, DecodeError> {
    let Some(v) = headers.get(CONTENT_ENCODING) else {
        return Ok(body);
    };
    let coding = v.to_str().unwrap_or("").trim().to_ascii_lowercase();
    let reader: Box<dyn Read + '_> = match coding.as_str() {
        "" | "identity" => return Ok(body),
        "gzip" => Box::new(flate2::read::MultiGzDecoder::new(&body[..])),
        "deflate" => Box::new(flate2::read::ZlibDecoder::new(&body[..])),
        other => return Err(DecodeError::Unsupported(other.to_string())),
    };
    if body.is_empty() {
        return Err(DecodeError::Corrupt(format!("empty {coding} body")));
    }
    // One byte past the limit tells an oversized body from one exactly at it.
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Corrupt(format!("{coding} body: {e}")))?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge);
    }
    Ok(Bytes::from(out))
}

/// The coding the request's `Accept-Encoding` prefers, as DynamoDB chooses it: only the first
/// `Accept-Encoding` header counts; its comma-separated entries are a coding name (any case,
/// spaces around it ignored) and parameters after `;`, whose quality is the number after the
/// first `q=` (up to the next `;`, spaces trimmed; above 1 counts as 1, a value that is not a
/// number as 1, and 0 or less as not acceptable); a coding named more than once takes its
/// highest quality. `*` stands for a coding not named otherwise; `identity` and unknown codings
/// are ignored. The highest quality wins; on a tie a named coding beats one accepted through
/// `*`, then the coding named first wins, then gzip.
pub fn negotiate(headers: &HeaderMap) -> Option<Coding> {
    let value = headers.get(ACCEPT_ENCODING)?.to_str().ok()?;
    // (quality, position named) for gzip, deflate and `*`.
    let mut named: [Option<(f64, usize)>; 3] = [None; 3];
    for (pos, entry) in value.split(',').enumerate() {
        let (name, params) = match entry.split_once(';') {
            Some((n, p)) => (n, Some(p)),
            None => (entry, None),
        };
        let slot = match name.trim().to_ascii_lowercase().as_str() {
            "gzip" => 0,
            "deflate" => 1,
            "*" => 2,
            _ => continue,
        };
        let q = params.map_or(1.0, quality);
        named[slot] = Some(match named[slot] {
            Some((old, first)) => (old.max(q), first),
            None => (q, pos),
        });
    }
    let star = named[2];
    let candidates = [Coding::Gzip, Coding::Deflate]
        .into_iter()
        .zip(named)
        .filter_map(|(coding, n)| match (n, star) {
            (Some((q, pos)), _) => Some((coding, q, true, pos)),
            (None, Some((q, _))) => Some((coding, q, false, usize::MAX)),
            (None, None) => None,
        })
        .filter(|c| c.1 > 0.0);
    // Higher quality, then named over `*`, then earlier; `max_by` keeps the last of equals,
    // so gzip (first) must compare greater on a full tie.
    candidates
        .max_by(|a, b| {
            a.1.total_cmp(&b.1)
                .then(a.2.cmp(&b.2))
                .then(b.3.cmp(&a.3))
                .then(std::cmp::Ordering::Greater)
        })
        .map(|c| c.0)
}

/// The quality in an entry's parameters (the text after its first `;`).
fn quality(params: &str) -> f64 {
    let Some(at) = params.find("q=") else {
        return 1.0;
    };
    let v = params[at + 2..].split(';').next().unwrap_or("").trim();
    match v.parse::<f64>() {
        Ok(q) if q.is_nan() => 1.0,
        Ok(q) => q.min(1.0),
        Err(_) => 1.0,
    }
}

/// `body` compressed with `coding` when it is over the threshold (`None`: send it as it is).
pub fn pack(body: &[u8], coding: Coding) -> Option<Vec<u8>> {
    use std::io::Write;
    if body.len() <= COMPRESSION_THRESHOLD {
        return None;
    }
    let level = flate2::Compression::default();
    let packed = match coding {
        Coding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
            e.write_all(body).and_then(|_| e.finish())
        }
        Coding::Deflate => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), level);
            e.write_all(body).and_then(|_| e.finish())
        }
    };
    packed.ok()
}

/// The `Content-Encoding` value of `coding`.
pub fn header(coding: Coding) -> HeaderValue {
    HeaderValue::from_static(coding.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    /// The choices DynamoDB makes for these headers, as ScyllaDB's suite records them.
    #[test]
    fn accept_encoding_is_read_as_dynamodb_reads_it() {
        let cases: &[(&str, Option<Coding>)] = &[
            ("identity", None),
            ("", None),
            ("br", None),
            ("x-gzip", None),
            ("gzip, deflate", Some(Coding::Gzip)),
            ("br, identity, deflate, gzip", Some(Coding::Deflate)),
            ("GZIP, identity", Some(Coding::Gzip)),
            ("dog, gzip ,, cat", Some(Coding::Gzip)),
            ("gzip;q=0.8, deflate;q=0.5", Some(Coding::Gzip)),
            (
                "br, gzip;q=0, deflate; q = 0.5 , identity;q=0",
                Some(Coding::Deflate),
            ),
            ("*", Some(Coding::Gzip)),
            ("*, deflate;q=0.5", Some(Coding::Gzip)),
            ("*, deflate", Some(Coding::Deflate)),
            ("*, identity", Some(Coding::Gzip)),
            ("*, gzip;q=0.5", Some(Coding::Deflate)),
            ("gzip ;q=0", None),
            ("identity;q=0", None),
            ("*;q=0", None),
            ("*;q=0.5,identity", Some(Coding::Gzip)),
            ("gzip;q=0.5,identity;q=0.8", Some(Coding::Gzip)),
            ("br;q=0.8,identity;q=0.5,*;q=0", None),
            ("\"gzip\"", None),
            ("gzip br", None),
            ("gzip:q=1", None),
            ("deflate;q=0.5, gzip;q=31", Some(Coding::Gzip)),
            ("gzip;q=31,deflate;q=51", Some(Coding::Gzip)),
            ("deflate;q=0.5, gzip;q=0.2", Some(Coding::Deflate)),
            ("deflate;q=0.5, gzip;q=1;q=0.2", Some(Coding::Gzip)),
            ("deflate;q=0.5,gzip;q=0.", Some(Coding::Deflate)),
            ("deflate;q=0.5,gzip;q=0.x", Some(Coding::Gzip)),
            ("deflate;q=0.5,gzip;q=0. x", Some(Coding::Gzip)),
            ("deflate;q=-0.5,gzip;q=0.2", Some(Coding::Gzip)),
            ("gzip;q= 0;q=1", None),
            ("gzip;q =0;q=1", Some(Coding::Gzip)),
            ("gzip; q=0;q=1", None),
            ("gzip;nq=0;q=1", None),
            ("gzip;q=0, gzip;q=1, gzip;q=0", Some(Coding::Gzip)),
            ("br,identity;q=0.5,gzip;q=0.0001", Some(Coding::Gzip)),
        ];
        for (header, want) in cases {
            assert_eq!(
                negotiate(&with("accept-encoding", header)),
                *want,
                "{header:?}"
            );
        }
        assert_eq!(negotiate(&HeaderMap::new()), None);
    }

    #[test]
    fn request_bodies_decode_by_their_content_encoding() {
        use std::io::Write;
        let text = br#"{"TableName":"t"}"#;
        let gz = |b: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(b).unwrap();
            e.finish().unwrap()
        };
        let decode = |coding: &'static str, body: Vec<u8>| {
            decode_request(&with("content-encoding", coding), Bytes::from(body), 1024)
        };
        assert_eq!(decode("gzip", gz(text)).unwrap(), &text[..]);
        // Two gzip members are one body.
        let mut two = gz(&text[..5]);
        two.extend(gz(&text[5..]));
        assert_eq!(decode("GZip", two).unwrap(), &text[..]);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(text).unwrap();
        assert_eq!(decode("deflate", z.finish().unwrap()).unwrap(), &text[..]);
        assert_eq!(decode("identity", text.to_vec()).unwrap(), &text[..]);
        assert!(matches!(
            decode("garbage", text.to_vec()),
            Err(DecodeError::Unsupported(_))
        ));
        assert!(matches!(
            decode("gzip", text.to_vec()),
            Err(DecodeError::Corrupt(_))
        ));
        assert!(matches!(
            decode("deflate", text.to_vec()),
            Err(DecodeError::Corrupt(_))
        ));
        assert!(matches!(
            decode("gzip", Vec::new()),
            Err(DecodeError::Corrupt(_))
        ));
        let mut cut = gz(text);
        cut.pop();
        assert!(matches!(decode("gzip", cut), Err(DecodeError::Corrupt(_))));
        // Small when sent, too large once decoded.
        assert_eq!(
            decode("gzip", gz(&[b' '; 1025])),
            Err(DecodeError::TooLarge)
        );
        assert_eq!(decode("gzip", gz(&[b' '; 1024])).unwrap().len(), 1024);
    }
}
