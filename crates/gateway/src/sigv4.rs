//! AWS Signature Version 4 verification.
//!
//! By default kedge accepts any credentials (like other local AWS endpoints) and only reads
//! the access key id for `SenderId`. With `--credentials KEY:SECRET` every request must be
//! signed with that key pair, either in the `Authorization` header or as a presigned URL
//! (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
//! `X-Amz-SignedHeaders`, `X-Amz-Signature` in the query string). The canonical request is
//! rebuilt from what arrived and the signature recomputed, as AWS documents the algorithm, and
//! everything around the signature is checked the way AWS checks it:
//!
//! - the request time (`X-Amz-Date`) is within 15 minutes of the server's clock, either way
//!   (AWS: "Signature expired" / "Signature not yet current"); a presigned URL is refused once
//!   `X-Amz-Date + X-Amz-Expires` has passed, and `X-Amz-Expires` is at most 7 days;
//! - the credential scope names the request's date, the server's region, the service that the
//!   request addresses (`sqs` or `dynamodb`) and ends in `aws4_request`;
//! - the Authorization header has exactly the three parameters, each once, a 64-digit hex
//!   signature and sorted, lower-case signed headers that include `host`;
//! - every header that decides what the request does is signed: `host`, `x-amz-target` and
//!   every other `x-amz-*` header present; a signed header must be present and plain ASCII;
//! - `x-amz-content-sha256`, when sent, equals the SHA-256 of the body that arrived (the body
//!   is always hashed here, so a body altered after signing never verifies).
//!
//! Time comes in as an argument ([`Expect::now`], from the store's clock), so every check is
//! deterministic under test. Errors map to AWS's codes for each protocol: SQS answers
//! `SignatureDoesNotMatch` / `IncompleteSignature` / `InvalidClientTokenId` /
//! `MissingAuthenticationToken`, DynamoDB `InvalidSignatureException` /
//! `IncompleteSignatureException` / `UnrecognizedClientException` /
//! `MissingAuthenticationTokenException`.

use std::time::Duration;

use clock::Timestamp;
use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use hyper::http::request::Parts;
use sha2::{Digest, Sha256};

use store::queue::{SqsError, SqsErrorKind};

/// How far a request's date may be from the server's clock, either way (AWS's 15 minutes).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);
/// The longest validity a presigned URL may ask for (AWS's 7 days).
pub const MAX_PRESIGNED_EXPIRES_SECS: u64 = 7 * 24 * 3600;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl std::str::FromStr for Credentials {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok(Credentials {
                access_key: a.to_owned(),
                secret_key: b.to_owned(),
            }),
            _ => Err(format!(
                "expected ACCESS_KEY:SECRET_KEY, got {s:?} (both parts non-empty)"
            )),
        }
    }
}

/// What a request must be signed for: the service it addresses, the server's region, and the
/// server's current time.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The signing name of the service: `sqs` or `dynamodb`.
    pub service: &'a str,
    pub region: &'a str,
    pub now: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No Authorization header and no presigned query string.
    Missing,
    /// The signature's parts are missing or not in AWS's form (`IncompleteSignature`).
    Malformed(String),
    UnknownAccessKey(String),
    /// The signature does not match the request.
    SignatureMismatch,
    /// Well-formed, but refused for the reason given: expired, not yet current, a scope for
    /// another region or service, a body that does not match its declared hash.
    Refused(String),
}

impl AuthError {
    pub fn as_sqs(&self) -> SqsError {
        match self {
            AuthError::Missing => SqsError::new(
                SqsErrorKind::MissingAuthenticationToken,
                "Request is missing Authentication Token",
            ),
            AuthError::Malformed(m) => SqsError::new(SqsErrorKind::IncompleteSignature, m.clone()),
            AuthError::UnknownAccessKey(_) => SqsError::new(
                SqsErrorKind::InvalidClientTokenId,
                "The security token included in the request is invalid.",
            ),
            AuthError::SignatureMismatch => {
                SqsError::new(SqsErrorKind::SignatureDoesNotMatch, SIGNATURE_MISMATCH)
            }
            AuthError::Refused(m) => SqsError::new(SqsErrorKind::SignatureDoesNotMatch, m.clone()),
        }
    }

    /// DynamoDB's `__type` and message for this error (answered with status 400).
    pub fn as_dynamodb(&self) -> (&'static str, String) {
        match self {
            AuthError::UnknownAccessKey(_) => (
                "com.amazon.coral.service#UnrecognizedClientException",
                "The security token included in the request is invalid.".into(),
            ),
            AuthError::SignatureMismatch => (
                "com.amazon.coral.service#InvalidSignatureException",
                SIGNATURE_MISMATCH.into(),
            ),
            AuthError::Refused(m) => (
                "com.amazon.coral.service#InvalidSignatureException",
                m.clone(),
            ),
            AuthError::Missing => (
                "com.amazon.coral.service#MissingAuthenticationTokenException",
                "Request is missing Authentication Token".into(),
            ),
            AuthError::Malformed(m) => (
                "com.amazon.coral.service#IncompleteSignatureException",
                m.clone(),
            ),
        }
    }
}

fn malformed(m: impl Into<String>) -> AuthError {
    AuthError::Malformed(m.into())
}

/// The signature's parts, from the Authorization header or the presigned query string.
struct Signed<'a> {
    access_key: &'a str,
    /// `DATE/REGION/SERVICE/aws4_request`.
    scope: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

/// `KEY/DATE/REGION/SERVICE/aws4_request`, checked for form only.
fn parse_credential(c: &str) -> Result<(&str, &str, [&str; 3]), AuthError> {
    let bad = || {
        malformed(format!(
            "Credential {c:?} must have the form ACCESS_KEY/YYYYMMDD/REGION/SERVICE/aws4_request."
        ))
    };
    let (access_key, scope) = c.split_once('/').ok_or_else(bad)?;
    let parts: Vec<&str> = scope.split('/').collect();
    let [date, region, service, terminator] = parts[..] else {
        return Err(bad());
    };
    if access_key.is_empty()
        || region.is_empty()
        || service.is_empty()
        || terminator != "aws4_request"
        || date.len() != 8
        || !date.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    Ok((access_key, scope, [date, region, service]))
}

/// `host;x-amz-date;...`: lower-case header names, sorted, each once, `host` among them.
fn parse_signed_headers(s: &str) -> Result<Vec<&str>, AuthError> {
    let names: Vec<&str> = s.split(';').collect();
    let valid_name = |n: &&str| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
    };
    if !names.iter().all(valid_name) {
        return Err(malformed(format!(
            "SignedHeaders {s:?} must be lower-case header names separated by ';'."
        )));
    }
    if !names.windows(2).all(|w| w[0] < w[1]) {
        return Err(malformed(format!(
            "SignedHeaders {s:?} must be sorted, each header named once."
        )));
    }
    if !names.contains(&"host") {
        return Err(malformed(format!(
            "SignedHeaders {s:?} must include 'host'."
        )));
    }
    Ok(names)
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn parse_auth(v: &str) -> Result<Signed<'_>, AuthError> {
    let rest = v
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| malformed("Authorization header must use AWS4-HMAC-SHA256."))?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim_matches(' ');
        let (key, value) = part.split_once('=').ok_or_else(|| {
            malformed(format!(
                "'{part}' not a valid key=value pair (missing equal-sign) in Authorization header."
            ))
        })?;
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => {
                return Err(malformed(format!(
                    "Authorization header has an unknown parameter {key:?}: only Credential, SignedHeaders and Signature are allowed."
                )));
            }
        };
        if slot.replace(value).is_some() {
            return Err(malformed(format!(
                "Authorization header names {key} more than once."
            )));
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(malformed(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.",
        ));
    };
    let (access_key, scope, [date, region, service]) = parse_credential(credential)?;
    if !is_hex64(signature) {
        return Err(malformed(
            "Signature must be 64 lower-case hexadecimal digits.",
        ));
    }
    Ok(Signed {
        access_key,
        scope,
        date,
        region,
        service,
        signed_headers: parse_signed_headers(signed)?,
        signature,
    })
}

/// The access key id a request names, without checking anything.
pub fn access_key_of(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("authorization")?.to_str().ok()?;
    parse_auth(v).ok().map(|a| a.access_key.to_owned())
}

/// The service named in the Authorization header's credential scope
/// (`Credential=KEY/DATE/REGION/SERVICE/aws4_request`), without verifying anything.
pub fn scope_service(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let cred = v.split("Credential=").nth(1)?;
    let cred = cred.split([',', ' ']).next()?;
    let mut parts = cred.rsplit('/');
    (parts.next()? == "aws4_request").then_some(())?;
    parts.next()
}

/// AWS's URI encoding: everything but unreserved characters is %XX (uppercase).
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The decoded query parameters.
fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// Sorted, re-encoded `k=v&...`, leaving out `X-Amz-Signature` (a presigned URL's own).
fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut enc: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    enc.sort();
    enc.into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// `YYYYMMDDTHHMMSSZ` as a time, or `None` if it is not one.
pub fn parse_amz_date(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let d = &b[r];
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| d.iter().fold(0u64, |acc, c| acc * 10 + u64::from(c - b'0')))
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&mo) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if d == 0 || d > month_days[(mo - 1) as usize] {
        return None;
    }
    // Days since the epoch (Howard Hinnant's days_from_civil).
    let (y, mo) = if mo <= 2 { (y - 1, mo + 12) } else { (y, mo) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * (mo - 3) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(Timestamp::from_secs(days * 86_400 + h * 3600 + mi * 60 + s))
}

/// `t` as `YYYYMMDDTHHMMSSZ`, for messages.
pub fn format_amz_date(t: Timestamp) -> String {
    let (y, m, d, h, mi, s) = store::civil::utc(t.as_secs());
    format!("{y:04}{m:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// The one value of header `name`, if present; two or more is an error (a second copy could
/// say something the first did not).
fn single_header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, AuthError> {
    let mut all = headers.get_all(name).iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(malformed(format!(
            "The request has more than one {name} header."
        )));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| malformed(format!("The {name} header is not plain ASCII.")))
}

/// Verify the request's SigV4 signature; returns the access key id on success.
pub fn verify(
    creds: &Credentials,
    parts: &Parts,
    body: &[u8],
    expect: &Expect<'_>,
) -> Result<String, AuthError> {
    let auth = single_header(&parts.headers, "authorization")?;
    let pairs = query_pairs(parts.uri.query());
    let presigned = pairs.iter().any(|(k, _)| {
        matches!(
            k.as_str(),
            "X-Amz-Algorithm" | "X-Amz-Credential" | "X-Amz-Signature"
        )
    });
    let (signed, amz_date, expires) = match (auth, presigned) {
        (Some(_), true) => {
            return Err(malformed(
                "Only one authentication mechanism is allowed: the Authorization header or X-Amz-* query parameters, not both.",
            ));
        }
        (None, false) => return Err(AuthError::Missing),
        (Some(auth), false) => {
            let signed = parse_auth(auth)?;
            let date = single_header(&parts.headers, "x-amz-date")?
                .ok_or_else(|| malformed("Authorization requires the X-Amz-Date header."))?;
            (signed, date, None)
        }
        (None, true) => parse_presigned(&pairs)?,
    };
    if signed.access_key != creds.access_key {
        return Err(AuthError::UnknownAccessKey(signed.access_key.to_owned()));
    }
    let when = parse_amz_date(amz_date).ok_or_else(|| {
        malformed(format!(
            "X-Amz-Date {amz_date:?} must be an ISO 8601 basic date-time, YYYYMMDD'T'HHMMSS'Z'."
        ))
    })?;
    check_scope(&signed, amz_date, expect)?;
    check_time(when, amz_date, expires, expect.now)?;

    // Headers that decide what the request does must be signed, and what is signed must be
    // there as plain ASCII.
    for name in parts.headers.keys() {
        let n = name.as_str();
        if (n == "host" || n.starts_with("x-amz-")) && !signed.signed_headers.contains(&n) {
            return Err(malformed(format!(
                "The {n} header must be signed (listed in SignedHeaders)."
            )));
        }
    }
    let body_hash = hex::encode(Sha256::digest(body));
    if let Some(declared) = single_header(&parts.headers, "x-amz-content-sha256")?
        && declared != body_hash
    {
        return Err(AuthError::Refused(
            "The provided 'x-amz-content-sha256' header does not match what was computed.".into(),
        ));
    }
    let mut canonical_headers = String::new();
    for h in &signed.signed_headers {
        let mut values = Vec::new();
        for v in parts.headers.get_all(*h) {
            let v = v
                .to_str()
                .map_err(|_| malformed(format!("The signed header {h} is not plain ASCII.")))?;
            values.push(v.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        if values.is_empty() {
            match (*h, parts.uri.authority()) {
                // HTTP/2 carries the host in the :authority pseudo-header.
                ("host", Some(a)) => values.push(a.to_string()),
                _ => {
                    return Err(malformed(format!(
                        "The signed header {h} is missing from the request."
                    )));
                }
            }
        }
        canonical_headers.push_str(h);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    let path = parts.uri.path();
    let path = if path.is_empty() { "/" } else { path };
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        parts.method.as_str(),
        uri_encode(path, true),
        canonical_query(&pairs),
        canonical_headers,
        signed.signed_headers.join(";"),
        body_hash
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        signed.scope,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(
        format!("AWS4{}", creds.secret_key).as_bytes(),
        signed.date.as_bytes(),
    );
    let k_region = hmac(&k_date, signed.region.as_bytes());
    let k_service = hmac(&k_region, signed.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let expected = hex::encode(hmac(&k_signing, string_to_sign.as_bytes()));
    if constant_time_eq(expected.as_bytes(), signed.signature.as_bytes()) {
        Ok(signed.access_key.to_owned())
    } else {
        Err(AuthError::SignatureMismatch)
    }
}

/// The signature's parts from a presigned URL's query, with its date and X-Amz-Expires.
fn parse_presigned(
    pairs: &[(String, String)],
) -> Result<(Signed<'_>, &str, Option<u64>), AuthError> {
    let get = |name: &str| -> Result<&str, AuthError> {
        let mut found = pairs.iter().filter(|(k, _)| k == name);
        match (found.next(), found.next()) {
            (Some((_, v)), None) => Ok(v.as_str()),
            (None, _) => Err(malformed(format!(
                "A presigned URL requires the {name} query parameter."
            ))),
            (Some(_), Some(_)) => Err(malformed(format!(
                "A presigned URL names {name} more than once."
            ))),
        }
    };
    if get("X-Amz-Algorithm")? != ALGORITHM {
        return Err(malformed("X-Amz-Algorithm must be AWS4-HMAC-SHA256."));
    }
    let (access_key, scope, [date, region, service]) = parse_credential(get("X-Amz-Credential")?)?;
    let expires_raw = get("X-Amz-Expires")?;
    let expires = expires_raw
        .parse::<u64>()
        .ok()
        .filter(|e| (1..=MAX_PRESIGNED_EXPIRES_SECS).contains(e))
        .ok_or_else(|| {
            malformed(format!(
                "X-Amz-Expires {expires_raw:?} must be a number of seconds from 1 to {MAX_PRESIGNED_EXPIRES_SECS} (7 days)."
            ))
        })?;
    let signature = get("X-Amz-Signature")?;
    if !is_hex64(signature) {
        return Err(malformed(
            "X-Amz-Signature must be 64 lower-case hexadecimal digits.",
        ));
    }
    let signed = Signed {
        access_key,
        scope,
        date,
        region,
        service,
        signed_headers: parse_signed_headers(get("X-Amz-SignedHeaders")?)?,
        signature,
    };
    Ok((signed, get("X-Amz-Date")?, Some(expires)))
}

fn check_scope(s: &Signed<'_>, amz_date: &str, expect: &Expect<'_>) -> Result<(), AuthError> {
    if !amz_date.starts_with(s.date) {
        return Err(AuthError::Refused(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
            s.date,
            amz_date.get(..8).unwrap_or(amz_date)
        )));
    }
    if s.region != expect.region {
        return Err(AuthError::Refused(format!(
            "Credential should be scoped to a valid region, not '{}': this endpoint serves '{}'.",
            s.region, expect.region
        )));
    }
    if s.service != expect.service {
        return Err(AuthError::Refused(format!(
            "Credential should be scoped to correct service: '{}'.",
            expect.service
        )));
    }
    Ok(())
}

fn check_time(
    when: Timestamp,
    amz_date: &str,
    expires: Option<u64>,
    now: Timestamp,
) -> Result<(), AuthError> {
    let latest = now.add(MAX_CLOCK_SKEW);
    if when > latest {
        return Err(AuthError::Refused(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            format_amz_date(latest),
            format_amz_date(now)
        )));
    }
    match expires {
        None => {
            let earliest = now.sub(MAX_CLOCK_SKEW);
            if when < earliest {
                return Err(AuthError::Refused(format!(
                    "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
                    format_amz_date(earliest),
                    format_amz_date(now)
                )));
            }
        }
        Some(secs) => {
            let until = when.add(Duration::from_secs(secs));
            if now > until {
                return Err(AuthError::Refused(format!(
                    "Request has expired: the presigned URL was valid until {} (X-Amz-Date {amz_date} + X-Amz-Expires {secs} s); it is now {}.",
                    format_amz_date(until),
                    format_amz_date(now)
                )));
            }
        }
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite_creds() -> Credentials {
        Credentials {
            access_key: "AKIDEXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        }
    }

    fn expect_at(now: &str) -> Expect<'static> {
        Expect {
            service: "service",
            region: "us-east-1",
            now: parse_amz_date(now).unwrap(),
        }
    }

    fn get_vanilla() -> Parts {
        hyper::Request::builder()
            .method("GET")
            .uri("/")
            .header("host", "example.amazonaws.com")
            .header("x-amz-date", "20150830T123600Z")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            )
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    /// The AWS SigV4 test suite's "get-vanilla" case.
    #[test]
    fn aws_test_suite_get_vanilla() {
        let creds = suite_creds();
        let parts = get_vanilla();
        let at = expect_at("20150830T123600Z");
        assert_eq!(verify(&creds, &parts, b"", &at).unwrap(), "AKIDEXAMPLE");

        let wrong = Credentials {
            secret_key: "other".into(),
            ..creds.clone()
        };
        assert_eq!(
            verify(&wrong, &parts, b"", &at),
            Err(AuthError::SignatureMismatch)
        );
        let other_key = Credentials {
            access_key: "AKIDOTHER".into(),
            ..creds
        };
        assert!(matches!(
            verify(&other_key, &parts, b"", &at),
            Err(AuthError::UnknownAccessKey(_))
        ));
    }

    #[test]
    fn requests_outside_fifteen_minutes_are_refused_either_way() {
        let creds = suite_creds();
        let parts = get_vanilla();
        for ok in ["20150830T122100Z", "20150830T125100Z"] {
            assert!(verify(&creds, &parts, b"", &expect_at(ok)).is_ok(), "{ok}");
        }
        let late = verify(&creds, &parts, b"", &expect_at("20150830T125101Z")).unwrap_err();
        assert_eq!(
            late,
            AuthError::Refused(
                "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T125101Z - 15 min.)".into()
            )
        );
        let early = verify(&creds, &parts, b"", &expect_at("20150830T122059Z")).unwrap_err();
        assert_eq!(
            early,
            AuthError::Refused(
                "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z (20150830T122059Z + 15 min.)".into()
            )
        );
    }

    #[test]
    fn scope_must_name_this_region_and_service() {
        let creds = suite_creds();
        let parts = get_vanilla();
        let mut at = expect_at("20150830T123600Z");
        at.service = "sqs";
        assert!(matches!(
            verify(&creds, &parts, b"", &at),
            Err(AuthError::Refused(m)) if m.contains("correct service: 'sqs'")
        ));
        let mut at = expect_at("20150830T123600Z");
        at.region = "eu-west-1";
        assert!(matches!(
            verify(&creds, &parts, b"", &at),
            Err(AuthError::Refused(m)) if m.contains("valid region, not 'us-east-1'")
        ));
    }

    #[test]
    fn authorization_header_form_is_strict() {
        let good = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        assert!(parse_auth(good).is_ok());
        let bad = [
            good.replace("AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256"),
            good.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"),
            format!("{good}, Signature=00"),
            format!("{good}, Extra=1"),
            good.replace("host;x-amz-date", "x-amz-date;host"),
            good.replace("host;x-amz-date", "x-amz-date"),
            good.replace("host;x-amz-date", "host;host;x-amz-date"),
            good.replace("host;x-amz-date", "Host;x-amz-date"),
            good.replace("aws4_request", "aws4_request/x"),
            good.replace("/aws4_request", ""),
            good.replace("20150830", "2015083"),
            good.replace("5fa00fa3", "5FA00FA3"),
            good.replace("5fa00fa3", "5fa00fa"),
        ];
        for b in bad {
            assert!(
                matches!(parse_auth(&b), Err(AuthError::Malformed(_))),
                "accepted {b:?}"
            );
        }
    }

    #[test]
    fn amz_dates_parse_and_print_back() {
        for s in [
            "19700101T000000Z",
            "20150830T123600Z",
            "20240229T235959Z",
            "99991231T235959Z",
        ] {
            let t = parse_amz_date(s).unwrap();
            assert_eq!(format_amz_date(t), s);
        }
        assert_eq!(
            parse_amz_date("20150830T123600Z").unwrap().as_secs(),
            1_440_938_160
        );
        for bad in [
            "20150830T123600",
            "20150230T000000Z",
            "20150830X123600Z",
            "2015083aT123600Z",
            "20151301T000000Z",
            "20150830T246000Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn credentials_parse_and_reject_bad_forms() {
        assert!("a:b".parse::<Credentials>().is_ok());
        assert!("ab".parse::<Credentials>().is_err());
        assert!(":b".parse::<Credentials>().is_err());
    }
}
