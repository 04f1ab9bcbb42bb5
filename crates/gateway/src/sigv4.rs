//! AWS Signature Version 4 verification.
//!
//! By default kedge accepts any credentials (like other local AWS endpoints) and only reads
//! the access key id for `SenderId`. With `--credentials KEY:SECRET` every request must be
//! signed with that key pair: the canonical request is rebuilt from what arrived and the
//! signature recomputed, exactly as AWS documents the algorithm.

use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use hyper::http::request::Parts;
use sha2::{Digest, Sha256};

use store::queue::{SqsError, SqsErrorKind};

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Malformed(String),
    UnknownAccessKey(String),
    SignatureMismatch,
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
            AuthError::SignatureMismatch => SqsError::new(
                SqsErrorKind::SignatureDoesNotMatch,
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            ),
        }
    }
}

struct AuthHeader<'a> {
    access_key: &'a str,
    scope: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_auth(v: &str) -> Result<AuthHeader<'_>, AuthError> {
    let rest = v.strip_prefix("AWS4-HMAC-SHA256").ok_or_else(|| {
        AuthError::Malformed("Authorization header must use AWS4-HMAC-SHA256.".into())
    })?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(c) = part.strip_prefix("Credential=") {
            credential = Some(c);
        } else if let Some(s) = part.strip_prefix("SignedHeaders=") {
            signed = Some(s);
        } else if let Some(s) = part.strip_prefix("Signature=") {
            signature = Some(s);
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(AuthError::Malformed(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.".into(),
        ));
    };
    let (access_key, scope) = credential.split_once('/').ok_or_else(|| {
        AuthError::Malformed("Credential must be KEY/DATE/REGION/SERVICE/aws4_request.".into())
    })?;
    if scope.split('/').count() != 4 {
        return Err(AuthError::Malformed(
            "Credential must be KEY/DATE/REGION/SERVICE/aws4_request.".into(),
        ));
    }
    Ok(AuthHeader {
        access_key,
        scope,
        signed_headers: signed.split(';').collect(),
        signature,
    })
}

/// The access key id a request names, without checking anything.
pub fn access_key_of(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("authorization")?.to_str().ok()?;
    parse_auth(v).ok().map(|a| a.access_key.to_owned())
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

fn canonical_query(q: Option<&str>) -> String {
    let Some(q) = q else { return String::new() };
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    pairs.sort();
    pairs
        .into_iter()
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

/// Verify the request's SigV4 signature; returns the access key id on success.
pub fn verify(creds: &Credentials, parts: &Parts, body: &[u8]) -> Result<String, AuthError> {
    let auth = parts
        .headers
        .get("authorization")
        .ok_or(AuthError::Missing)?
        .to_str()
        .map_err(|_| AuthError::Malformed("Authorization header is not ASCII.".into()))?;
    let a = parse_auth(auth)?;
    if a.access_key != creds.access_key {
        return Err(AuthError::UnknownAccessKey(a.access_key.to_owned()));
    }
    let amz_date = parts
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            AuthError::Malformed("Authorization requires the X-Amz-Date header.".into())
        })?;
    let mut canonical_headers = String::new();
    for h in &a.signed_headers {
        let values: Vec<String> = parts
            .headers
            .get_all(*h)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        let value = if values.is_empty() && *h == "host" {
            parts
                .uri
                .authority()
                .map(|a| a.to_string())
                .unwrap_or_default()
        } else {
            values.join(",")
        };
        canonical_headers.push_str(h);
        canonical_headers.push(':');
        canonical_headers.push_str(&value);
        canonical_headers.push('\n');
    }
    let payload_hash = match parts
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        Some(h) => h.to_owned(),
        None => hex::encode(Sha256::digest(body)),
    };
    let path = parts.uri.path();
    let path = if path.is_empty() { "/" } else { path };
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        parts.method.as_str(),
        uri_encode(path, true),
        canonical_query(parts.uri.query()),
        canonical_headers,
        a.signed_headers.join(";"),
        payload_hash
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{}\n{}",
        a.scope,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut scope = a.scope.split('/');
    let (date, region, service) = (
        scope.next().unwrap_or(""),
        scope.next().unwrap_or(""),
        scope.next().unwrap_or(""),
    );
    let k_date = hmac(
        format!("AWS4{}", creds.secret_key).as_bytes(),
        date.as_bytes(),
    );
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let expected = hex::encode(hmac(&k_signing, string_to_sign.as_bytes()));
    if constant_time_eq(expected.as_bytes(), a.signature.as_bytes()) {
        Ok(a.access_key.to_owned())
    } else {
        Err(AuthError::SignatureMismatch)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AWS SigV4 test suite's "get-vanilla" case.
    #[test]
    fn aws_test_suite_get_vanilla() {
        let creds = Credentials {
            access_key: "AKIDEXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        };
        let req = hyper::Request::builder()
            .method("GET")
            .uri("/")
            .header("host", "example.amazonaws.com")
            .header("x-amz-date", "20150830T123600Z")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            )
            .body(())
            .unwrap();
        let (parts, _) = req.into_parts();
        assert_eq!(verify(&creds, &parts, b"").unwrap(), "AKIDEXAMPLE");

        let wrong = Credentials {
            secret_key: "other".into(),
            ..creds.clone()
        };
        assert_eq!(
            verify(&wrong, &parts, b""),
            Err(AuthError::SignatureMismatch)
        );
        let other_key = Credentials {
            access_key: "AKIDOTHER".into(),
            ..creds
        };
        assert!(matches!(
            verify(&other_key, &parts, b""),
            Err(AuthError::UnknownAccessKey(_))
        ));
    }

    #[test]
    fn credentials_parse_and_reject_bad_forms() {
        assert!("a:b".parse::<Credentials>().is_ok());
        assert!("ab".parse::<Credentials>().is_err());
        assert!(":b".parse::<Credentials>().is_err());
    }
}
