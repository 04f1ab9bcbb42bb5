//! SigV4 verification of a raw request: the Authorization header's parameters, the signed
//! headers, and presigned query strings (`X-Amz-Credential`, `X-Amz-Expires`, ...).
//!
//! Input format: an HTTP/1.1 request head and body as they arrive on the wire:
//! `METHOD TARGET` on the first line, `Name: value` header lines, an empty line, the body.
//! Lines that hyper would refuse (bad method, URI or header bytes) end the input early, as
//! hyper's parser would refuse the request before the verifier sees it. The request is
//! verified for both services against fixed credentials (`AKIDEXAMPLE`, the AWS test suite's
//! secret) at a fixed time, 2015-08-30T12:36:00Z, the suite's date, so signed seeds verify.

use clock::Timestamp;
use gateway::sigv4::{self, Credentials, Expect};

/// The AWS SigV4 test suite's date, 2015-08-30T12:36:00Z.
pub const NOW: Timestamp = Timestamp(1_440_938_160_000);

pub fn run(data: &[u8]) {
    let Some((parts, body)) = parse(data) else {
        return;
    };
    let creds = Credentials {
        access_key: "AKIDEXAMPLE".into(),
        secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
    };
    for service in ["sqs", "dynamodb", "service"] {
        let expect = Expect {
            service,
            region: "us-east-1",
            now: NOW,
        };
        if let Err(e) = sigv4::verify(&creds, &parts, body, &expect) {
            std::hint::black_box((e.as_sqs(), e.as_dynamodb()));
        }
    }
    std::hint::black_box(sigv4::access_key_of(&parts.headers));
}

/// The request head and body, or `None` where hyper would refuse the request.
pub fn parse(data: &[u8]) -> Option<(hyper::http::request::Parts, &[u8])> {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let request_line = std::str::from_utf8(lines.next()?).ok()?;
    let mut words = request_line.split(' ');
    let (method, target) = (words.next()?, words.next()?);
    let mut builder = hyper::Request::builder()
        .method(hyper::Method::from_bytes(method.as_bytes()).ok()?)
        .uri(target.parse::<hyper::Uri>().ok()?);
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        let name = hyper::header::HeaderName::from_bytes(&line[..colon]).ok()?;
        let value = hyper::header::HeaderValue::from_bytes(line[colon + 1..].trim_ascii()).ok()?;
        builder = builder.header(name, value);
    }
    let (parts, ()) = builder.body(()).ok()?.into_parts();
    Some((parts, body))
}
