//! SigV4 under attack: with `--credentials`, forged, altered, replayed and expired requests
//! are refused with AWS's error codes, and genuine ones (signed by AWS's own signer,
//! `aws-sigv4`) still pass.
//!
//! Every request goes over a real socket to a real server whose clock is a `ManualClock`, so
//! "16 minutes later" is a clock step, not a wait. Prints
//! `sigv4: tried=… refused=… accepted_forged=0 genuine_accepted=…`
//! (`cargo test -p gateway --test sigv4_attacks -- --nocapture`).

mod common;

use std::time::{Duration, UNIX_EPOCH};

use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use clock::{ManualClock, Timestamp};
use common::{Options, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "AKIDGOOD";
const SECRET: &str = "goodsecret";
/// When the genuine requests are signed: 2025-01-01T00:00:00Z.
const T0: u64 = 1_735_689_600;

/// A request as bytes on the wire, built from parts so each attack can alter one of them.
#[derive(Clone, Debug)]
struct Raw {
    method: String,
    /// Path and query string, as sent.
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn set_header(mut self, name: &str, value: &str) -> Raw {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }
    fn without_header(mut self, name: &str) -> Raw {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }
    fn add_header(mut self, name: &str, value: &str) -> Raw {
        self.headers.push((name.into(), value.into()));
        self
    }
    fn auth_replace(self, from: &str, to: &str) -> Raw {
        let a = self
            .header("authorization")
            .expect("signed")
            .replace(from, to);
        self.set_header("authorization", &a)
    }
    fn bytes(&self, host: &str) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        if self.header("host").is_none() {
            out.push_str(&format!("host: {host}\r\n"));
        }
        for (n, v) in &self.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str(&format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut b = out.into_bytes();
        b.extend_from_slice(&self.body);
        b
    }
}

struct Signer {
    host: String,
}

#[derive(Clone, Copy)]
struct How {
    secret: &'static str,
    key: &'static str,
    region: &'static str,
    service: &'static str,
    at: u64,
    presign_secs: Option<u64>,
    content_sha256: bool,
}

impl Default for How {
    fn default() -> Self {
        How {
            secret: SECRET,
            key: KEY,
            region: "us-east-1",
            service: "sqs",
            at: T0,
            presign_secs: None,
            content_sha256: false,
        }
    }
}

impl Signer {
    /// Sign `req` with AWS's signer (every header it carries is signed).
    fn sign(&self, mut req: Raw, how: How) -> Raw {
        let identity =
            aws_credential_types::Credentials::new(how.key, how.secret, None, None, "t").into();
        let mut settings = SigningSettings::default();
        if let Some(secs) = how.presign_secs {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(Duration::from_secs(secs));
        }
        if how.content_sha256 {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(how.region)
            .name(how.service)
            .time(UNIX_EPOCH + Duration::from_secs(how.at))
            .settings(settings)
            .build()
            .expect("signing params")
            .into();
        let url = format!("http://{}{}", self.host, req.target);
        let mut headers = req.headers.clone();
        headers.push(("host".into(), self.host.clone()));
        let signable = SignableRequest::new(
            &req.method,
            &url,
            headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            SignableBody::Bytes(&req.body),
        )
        .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
        let mut http_req = hyper::Request::builder()
            .method(req.method.as_str())
            .uri(&url)
            .body(())
            .expect("request");
        instructions.apply_to_request_http1x(&mut http_req);
        for (n, v) in http_req.headers() {
            req = req.set_header(n.as_str(), v.to_str().expect("ascii"));
        }
        if how.presign_secs.is_some() {
            req.target = http_req
                .uri()
                .path_and_query()
                .expect("path")
                .as_str()
                .to_owned();
        }
        req
    }
}

fn sqs_json(action: &str, body: &str) -> Raw {
    Raw {
        method: "POST".into(),
        target: "/".into(),
        headers: vec![
            ("content-type".into(), "application/x-amz-json-1.0".into()),
            ("x-amz-target".into(), format!("AmazonSQS.{action}")),
        ],
        body: body.as_bytes().to_vec(),
    }
}

fn sqs_query(path_and_query: &str, form: &str) -> Raw {
    Raw {
        method: if form.is_empty() { "GET" } else { "POST" }.into(),
        target: path_and_query.into(),
        headers: if form.is_empty() {
            vec![]
        } else {
            vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )]
        },
        body: form.as_bytes().to_vec(),
    }
}

fn dynamodb(op: &str, body: &str) -> Raw {
    Raw {
        method: "POST".into(),
        target: "/".into(),
        headers: vec![
            ("content-type".into(), "application/x-amz-json-1.0".into()),
            ("x-amz-target".into(), format!("DynamoDB_20120810.{op}")),
        ],
        body: body.as_bytes().to_vec(),
    }
}

/// Status and the AWS error code (JSON `__type`'s last part or XML `<Code>`), if any.
async fn send(addr: &str, req: &Raw) -> (u16, Option<String>, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(&req.bytes(addr)).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    let code = if let Some(i) = body.find("<Code>") {
        body[i + 6..].split('<').next().map(str::to_owned)
    } else {
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["__type"].as_str().map(str::to_owned))
            .map(|t| t.rsplit('#').next().unwrap_or(&t).to_owned())
    };
    (status, code, body)
}

struct Case {
    name: &'static str,
    req: Raw,
    /// The server's clock when the request arrives.
    now: u64,
    /// `None`: a genuine request that must succeed; `Some(code)`: refused with this code.
    expect: Option<&'static str>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_requests_are_refused_with_aws_codes() {
    let clock = ManualClock::new(Timestamp::from_secs(T0));
    let srv = TestServer::with(Options {
        clock: Some(clock.clone()),
        credentials: Some(format!("{KEY}:{SECRET}").parse().expect("credentials")),
        ..Default::default()
    })
    .await;
    let addr = srv.url.trim_start_matches("http://").to_owned();
    let s = Signer { host: addr.clone() };
    let d = How::default();
    let ddb = How {
        service: "dynamodb",
        ..d
    };
    let min = 60;

    // Genuine requests first: the queue and the table the later ones address.
    let create_q = s.sign(sqs_json("CreateQueue", r#"{"QueueName":"jobs"}"#), d);
    let create_t = s.sign(
        dynamodb(
            "CreateTable",
            r#"{"TableName":"txns","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#,
        ),
        ddb,
    );
    let list = s.sign(sqs_json("ListQueues", "{}"), d);
    let send_msg = r#"{"QueueUrl":"/000000000000/jobs","MessageBody":"pay 10"}"#;
    let send_json = s.sign(sqs_json("SendMessage", send_msg), d);
    let send_sha = s.sign(
        sqs_json("SendMessage", send_msg),
        How {
            content_sha256: true,
            ..d
        },
    );
    let query_get = s.sign(
        sqs_query(
            "/000000000000/jobs?Action=ReceiveMessage&MaxNumberOfMessages=1",
            "",
        ),
        d,
    );
    let query_post = s.sign(
        sqs_query(
            "/000000000000/jobs",
            "Action=SendMessage&MessageBody=pay%2010&Version=2012-11-05",
        ),
        d,
    );
    let put = s.sign(
        dynamodb(
            "PutItem",
            r#"{"TableName":"txns","Item":{"pk":{"S":"a"},"amount":{"N":"10"}}}"#,
        ),
        ddb,
    );
    let presigned = s.sign(
        sqs_query(
            "/000000000000/jobs?Action=GetQueueAttributes&AttributeName.1=All",
            "",
        ),
        How {
            presign_secs: Some(60),
            ..d
        },
    );
    let ok = |name, req: &Raw, now| Case {
        name,
        req: req.clone(),
        now,
        expect: None,
    };
    let bad = |name, req: Raw, now, code| Case {
        name,
        req,
        now,
        expect: Some(code),
    };
    // An unsigned x-amz-target: sign a request without it, then add one.
    let untargeted = {
        let mut r = sqs_json("ListQueues", "{}");
        r.headers.retain(|(n, _)| n != "x-amz-target");
        s.sign(r, d)
            .add_header("x-amz-target", "AmazonSQS.DeleteQueue")
    };
    let good_sig = send_json
        .header("authorization")
        .and_then(|a| a.rsplit("Signature=").next())
        .expect("signature")
        .to_owned();
    let zeros = "0".repeat(64);

    let cases = vec![
        ok("genuine: CreateQueue (JSON)", &create_q, T0),
        ok("genuine: CreateTable", &create_t, T0),
        ok("genuine: ListQueues", &list, T0),
        ok("genuine: SendMessage (JSON)", &send_json, T0),
        ok("genuine: SendMessage with x-amz-content-sha256", &send_sha, T0),
        ok("genuine: ReceiveMessage (query, GET)", &query_get, T0),
        ok("genuine: SendMessage (query, POST)", &query_post, T0),
        ok("genuine: PutItem", &put, T0),
        ok("genuine: presigned GetQueueAttributes", &presigned, T0 + 30),
        ok("genuine: signed 14 minutes ago", &list, T0 + 14 * min),
        ok("genuine: signed 14 minutes ahead", &list, T0 - 14 * min),
        // Wrong key material.
        bad(
            "wrong secret (SQS)",
            s.sign(sqs_json("ListQueues", "{}"), How { secret: "guess", ..d }),
            T0,
            "SignatureDoesNotMatch",
        ),
        bad(
            "wrong secret (DynamoDB)",
            s.sign(dynamodb("ListTables", "{}"), How { secret: "guess", ..ddb }),
            T0,
            "InvalidSignatureException",
        ),
        bad(
            "unknown access key (SQS)",
            s.sign(sqs_json("ListQueues", "{}"), How { key: "AKIDEVIL", ..d }),
            T0,
            "InvalidClientTokenId",
        ),
        bad(
            "unknown access key (DynamoDB)",
            s.sign(dynamodb("ListTables", "{}"), How { key: "AKIDEVIL", ..ddb }),
            T0,
            "UnrecognizedClientException",
        ),
        bad(
            "no signature at all",
            sqs_json("ListQueues", "{}"),
            T0,
            "MissingAuthenticationToken",
        ),
        bad(
            "no signature at all (DynamoDB)",
            dynamodb("ListTables", "{}"),
            T0,
            "MissingAuthenticationTokenException",
        ),
        // Altered after signing.
        bad(
            "altered body (SQS JSON)",
            Raw {
                body: send_msg.replace("pay 10", "pay 99").into_bytes(),
                ..send_json.clone()
            },
            T0,
            "SignatureDoesNotMatch",
        ),
        bad(
            "altered body, x-amz-content-sha256 kept",
            Raw {
                body: send_msg.replace("pay 10", "pay 99").into_bytes(),
                ..send_sha.clone()
            },
            T0,
            "SignatureDoesNotMatch",
        ),
        bad(
            "altered body and x-amz-content-sha256 recomputed",
            {
                let body = send_msg.replace("pay 10", "pay 99");
                let h = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes()));
                Raw {
                    body: body.into_bytes(),
                    ..send_sha.clone()
                }
                .set_header("x-amz-content-sha256", &h)
            },
            T0,
            "SignatureDoesNotMatch",
        ),
        bad(
            "altered body (DynamoDB)",
            Raw {
                body: br#"{"TableName":"txns","Item":{"pk":{"S":"a"},"amount":{"N":"99"}}}"#.to_vec(),
                ..put.clone()
            },
            T0,
            "InvalidSignatureException",
        ),
        bad(
            "altered body (query POST)",
            Raw {
                body: b"Action=SendMessage&MessageBody=pay%2099&Version=2012-11-05".to_vec(),
                ..query_post.clone()
            },
            T0,
            "SignatureDoesNotMatch",
        ),
        bad(
            "altered signed header x-amz-target (SQS)",
            list.clone().set_header("x-amz-target", "AmazonSQS.PurgeQueue"),
            T0,
            "SignatureDoesNotMatch",
        ),
        bad(
            "altered signed header x-amz-target (DynamoDB)",
            put.clone().set_header("x-amz-target", "DynamoDB_20120810.DeleteItem"),
            T0,
            "InvalidSignatureException",
        ),
        bad(
            "altered signed header content-type",
            list.clone().set_header("content-type", "application/json"),
            T0,
            "SignatureDoesNotMatch",
        ),
        bad(
            "unsigned x-amz-target added",
            untargeted,
            T0,
            "IncompleteSignature",
        ),
        bad(
            "second x-amz-target header added",
            list.clone().add_header("x-amz-target", "AmazonSQS.PurgeQueue"),
            T0,
            "SignatureDoesNotMatch",
        ),
        bad(
            "altered query value",
            Raw {
                target: query_get.target.replace("MaxNumberOfMessages=1", "MaxNumberOfMessages=10"),
                ..query_get.clone()
            },
            T0,
            "SignatureDoesNotMatch",
        ),
        bad(
            "added query parameter",
            Raw {
                target: format!("{}&VisibilityTimeout=0", query_get.target),
                ..query_get.clone()
            },
            T0,
            "SignatureDoesNotMatch",
        ),
        bad(
            "altered path (another queue)",
            Raw {
                target: query_get.target.replace("/jobs?", "/other?"),
                ..query_get.clone()
            },
            T0,
            "SignatureDoesNotMatch",
        ),
        // Time.
        bad(
            "replay 16 minutes later (SQS)",
            list.clone(),
            T0 + 16 * min,
            "SignatureDoesNotMatch",
        ),
        bad(
            "replay a day later (DynamoDB)",
            put.clone(),
            T0 + 24 * 60 * min,
            "InvalidSignatureException",
        ),
        bad(
            "signed 20 minutes in the past",
            s.sign(sqs_json("ListQueues", "{}"), How { at: T0 - 20 * min, ..d }),
            T0,
            "SignatureDoesNotMatch",
        ),
        bad(
            "signed 20 minutes in the future",
            s.sign(sqs_json("ListQueues", "{}"), How { at: T0 + 20 * min, ..d }),
            T0,
            "SignatureDoesNotMatch",
        ),
        bad(
            "signed 20 minutes in the future (DynamoDB)",
            s.sign(dynamodb("ListTables", "{}"), How { at: T0 + 20 * min, ..ddb }),
            T0,
            "InvalidSignatureException",
        ),
        bad(
            "replay with a fresh x-amz-date",
            list.clone().set_header("x-amz-date", "20250101T002000Z"),
            T0 + 20 * min,
            "SignatureDoesNotMatch",
        ),
        bad(
            "x-amz-date of another day than the scope",
            list.clone().set_header("x-amz-date", "20250102T000000Z"),
            T0 + 24 * 60 * min,
            "SignatureDoesNotMatch",
        ),
        bad(
            "no x-amz-date",
            list.clone().without_header("x-amz-date"),
            T0,
            "IncompleteSignature",
        ),
        bad(
            "signed x-amz-content-sha256 missing",
            send_sha.clone().without_header("x-amz-content-sha256"),
            T0,
            "IncompleteSignature",
        ),
        // Presigned URLs.
        bad(
            "presigned URL past X-Amz-Expires",
            presigned.clone(),
            T0 + 61,
            "SignatureDoesNotMatch",
        ),
        bad(
            "presigned X-Amz-Expires stretched",
            Raw {
                target: presigned.target.replace("X-Amz-Expires=60", "X-Amz-Expires=3600"),
                ..presigned.clone()
            },
            T0 + 120,
            "SignatureDoesNotMatch",
        ),
        bad(
            "presigned X-Amz-Expires over 7 days",
            s.sign(
                sqs_query("/000000000000/jobs?Action=GetQueueAttributes", ""),
                How {
                    presign_secs: Some(604_801),
                    ..d
                },
            ),
            T0,
            "IncompleteSignature",
        ),
        bad(
            "presigned URL altered query",
            Raw {
                target: presigned.target.replace("GetQueueAttributes", "PurgeQueue"),
                ..presigned.clone()
            },
            T0,
            "SignatureDoesNotMatch",
        ),
        bad(
            "presigned URL and an Authorization header",
            presigned
                .clone()
                .add_header("authorization", list.header("authorization").expect("auth"))
                .add_header("x-amz-date", "20250101T000000Z"),
            T0,
            "IncompleteSignature",
        ),
        // Scope.
        bad(
            "scope for another region (SQS)",
            s.sign(sqs_json("ListQueues", "{}"), How { region: "eu-west-1", ..d }),
            T0,
            "SignatureDoesNotMatch",
        ),
        bad(
            "scope for another region (DynamoDB)",
            s.sign(dynamodb("ListTables", "{}"), How { region: "eu-west-1", ..ddb }),
            T0,
            "InvalidSignatureException",
        ),
        bad(
            "scope for another service (DynamoDB-signed to SQS)",
            s.sign(sqs_json("ListQueues", "{}"), How { service: "dynamodb", ..d }),
            T0,
            "SignatureDoesNotMatch",
        ),
        bad(
            "scope for another service (SQS-signed to DynamoDB)",
            s.sign(dynamodb("ListTables", "{}"), How { service: "sqs", ..ddb }),
            T0,
            "InvalidSignatureException",
        ),
        bad(
            "scope for another service (s3)",
            s.sign(sqs_json("ListQueues", "{}"), How { service: "s3", ..d }),
            T0,
            "SignatureDoesNotMatch",
        ),
        bad(
            "scope terminator other than aws4_request",
            list.clone().auth_replace("/aws4_request", "/aws4_request2"),
            T0,
            "IncompleteSignature",
        ),
        // Header injection in Authorization.
        bad(
            "second Signature parameter appended",
            list.clone().auth_replace(&good_sig_of(&list), &format!("{}, Signature={zeros}", good_sig_of(&list))),
            T0,
            "IncompleteSignature",
        ),
        bad(
            "second Credential parameter",
            list.clone().auth_replace(
                "Credential=",
                "Credential=AKIDEVIL/20250101/us-east-1/sqs/aws4_request, Credential=",
            ),
            T0,
            "IncompleteSignature",
        ),
        bad(
            "unknown parameter injected",
            list.clone().auth_replace("SignedHeaders=", "Evil=1, SignedHeaders="),
            T0,
            "IncompleteSignature",
        ),
        bad(
            "SignedHeaders shortened to host",
            list.clone().auth_replace(
                &signed_headers_of(&list),
                "host",
            ),
            T0,
            "IncompleteSignature",
        ),
        bad(
            "another request's signature",
            list.clone().auth_replace(&good_sig_of(&list), &good_sig),
            T0,
            "SignatureDoesNotMatch",
        ),
        bad(
            "two Authorization headers",
            list.clone().add_header(
                "authorization",
                &format!("AWS4-HMAC-SHA256 Credential={KEY}/20250101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature={zeros}"),
            ),
            T0,
            "IncompleteSignature",
        ),
        bad(
            "algorithm glued to the parameters",
            list.clone().auth_replace("AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256"),
            T0,
            "IncompleteSignature",
        ),
        bad(
            "upper-case signature",
            list.clone().auth_replace(&good_sig_of(&list), &good_sig_of(&list).to_uppercase()),
            T0,
            "IncompleteSignature",
        ),
        bad(
            "tab-separated injection in the Credential",
            list.clone().auth_replace(&format!("Credential={KEY}/"), &format!("Credential={KEY}\t/")),
            T0,
            "InvalidClientTokenId",
        ),
    ];

    let (mut tried, mut refused, mut accepted_forged, mut genuine_ok) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for c in &cases {
        clock.set(Timestamp::from_secs(c.now));
        let (status, code, body) = send(&addr, &c.req).await;
        match c.expect {
            None => {
                if status == 200 {
                    genuine_ok += 1;
                } else {
                    failures.push(format!(
                        "{}: genuine request refused: {status} {body}",
                        c.name
                    ));
                }
            }
            Some(want) => {
                tried += 1;
                if status == 200 {
                    accepted_forged += 1;
                    failures.push(format!("{}: ACCEPTED a forged request", c.name));
                } else if code.as_deref() == Some(want) && (400..500).contains(&status) {
                    refused += 1;
                } else {
                    failures.push(format!(
                        "{}: refused with {status} {code:?}, want {want}: {body}",
                        c.name
                    ));
                }
            }
        }
    }
    println!(
        "sigv4: tried={tried} refused={refused} accepted_forged={accepted_forged} genuine_accepted={genuine_ok}/{}",
        cases.len() - tried
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(accepted_forged, 0);
    srv.stop().await;
}

fn good_sig_of(r: &Raw) -> String {
    r.header("authorization")
        .and_then(|a| a.rsplit("Signature=").next())
        .expect("signature")
        .to_owned()
}

fn signed_headers_of(r: &Raw) -> String {
    let a = r.header("authorization").expect("auth");
    let i = a.find("SignedHeaders=").expect("signed headers") + "SignedHeaders=".len();
    a[i..].split(',').next().expect("list").to_owned()
}

/// The clock in the messages is the server's: a refusal says how far off the request was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_requests_say_why() {
    let clock = ManualClock::new(Timestamp::from_secs(T0 + 16 * 60));
    let srv = TestServer::with(Options {
        clock: Some(clock),
        credentials: Some(format!("{KEY}:{SECRET}").parse().expect("credentials")),
        ..Default::default()
    })
    .await;
    let addr = srv.url.trim_start_matches("http://").to_owned();
    let s = Signer { host: addr.clone() };
    let req = s.sign(sqs_json("ListQueues", "{}"), How::default());
    let (status, code, body) = send(&addr, &req).await;
    assert_eq!(
        (status, code.as_deref()),
        (403, Some("SignatureDoesNotMatch"))
    );
    assert!(
        body.contains(
            "Signature expired: 20250101T000000Z is now earlier than 20250101T000100Z (20250101T001600Z - 15 min.)"
        ),
        "{body}"
    );
    srv.stop().await;
}
