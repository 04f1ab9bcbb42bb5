//! Slow and silent clients against a real server over TCP: a connection that sends no
//! request (nothing at all, half a request head, or nothing more after an answer) is closed
//! after the client timeout, a body that stops coming is answered 408, and neither a client
//! that keeps sending (requests, or the parts of one body) nor a long poll longer than the
//! timeout is cut off.

mod common;

use std::time::Duration;

use common::{Options, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(1);
/// How far apart a client that keeps going sends: far enough inside `LIMIT` that a loaded
/// machine's stall does not make a busy client look silent.
const GAP: Duration = Duration::from_millis(125);
/// How long a test waits for something that must happen (far beyond `LIMIT`).
const PATIENCE: Duration = Duration::from_secs(30);

async fn server() -> TestServer {
    TestServer::with(Options {
        client_timeout: Some(LIMIT),
        durable: false,
        ..Default::default()
    })
    .await
}

async fn connect(srv: &TestServer) -> TcpStream {
    TcpStream::connect(srv.url.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Everything the server sends until it closes the connection.
async fn until_closed(c: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, c.read_to_end(&mut out))
        .await
        .expect("the server closed the connection")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

fn list_tables() -> Vec<u8> {
    let body = "{}";
    format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Read one answer to `list_tables` (its body is short and comes with its head).
async fn one_answer(c: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("TableNames") {
        let n = tokio::time::timeout(PATIENCE, c.read(&mut buf))
            .await
            .expect("an answer")
            .expect("read");
        assert!(
            n > 0,
            "closed before answering: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let srv = server().await;
    let mut c = connect(&srv).await;
    assert_eq!(until_closed(&mut c).await, "");
    srv.stop().await;
}

#[tokio::test]
async fn half_a_request_head_is_not_waited_for() {
    let srv = server().await;
    let mut c = connect(&srv).await;
    c.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert_eq!(until_closed(&mut c).await, "");
    // Half of HTTP/2's preface, where HTTP/1 and HTTP/2 cannot yet be told apart.
    let mut c = connect(&srv).await;
    c.write_all(b"PRI * HTTP/2").await.unwrap();
    assert_eq!(until_closed(&mut c).await, "");
    srv.stop().await;
}

#[tokio::test]
async fn a_body_that_stops_coming_is_answered_408() {
    let srv = server().await;
    let mut c = connect(&srv).await;
    c.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Length: 100\r\n\r\n{\"Limit\"")
        .await
        .unwrap();
    let answer = until_closed(&mut c).await;
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(
        answer.contains("no part of the request body received for 1 s"),
        "{answer}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_body_that_keeps_coming_is_read_however_long_it_takes() {
    let srv = server().await;
    let mut c = connect(&srv).await;
    // A JSON body of spaces between its braces, a piece every eighth of the limit for three
    // times the limit.
    let pieces = 24;
    let body = format!("{{{}}}", " ".repeat(pieces));
    c.write_all(format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Length: {}\r\n\r\n{{", body.len()).as_bytes())
        .await
        .unwrap();
    for _ in 0..pieces {
        tokio::time::sleep(GAP).await;
        c.write_all(b" ").await.unwrap();
    }
    c.write_all(b"}").await.unwrap();
    assert!(one_answer(&mut c).await.starts_with("HTTP/1.1 200 "));
    srv.stop().await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_its_last_answer_and_a_busy_one_is_not() {
    let srv = server().await;
    let mut c = connect(&srv).await;
    // Requests an eighth of the limit apart for three times the limit: all on one connection.
    let started = tokio::time::Instant::now();
    let mut answered = 0;
    while started.elapsed() < LIMIT * 3 {
        c.write_all(&list_tables()).await.unwrap();
        assert!(one_answer(&mut c).await.starts_with("HTTP/1.1 200 "));
        answered += 1;
        tokio::time::sleep(GAP).await;
    }
    assert!(answered >= 8, "{answered}");
    // Then silence: the server closes it.
    assert_eq!(until_closed(&mut c).await, "");
    srv.stop().await;
}

#[tokio::test]
async fn a_long_poll_outlasting_the_limit_is_answered() {
    let srv = server().await;
    let create = "{\"QueueName\":\"q\"}";
    let mut c = connect(&srv).await;
    c.write_all(format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AmazonSQS.CreateQueue\r\nContent-Length: {}\r\n\r\n{create}", create.len()).as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = c.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200 "));
    let url = format!("{}/000000000000/q", srv.url);
    let recv = format!("{{\"QueueUrl\":\"{url}\",\"WaitTimeSeconds\":2}}");
    let started = tokio::time::Instant::now();
    c.write_all(format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AmazonSQS.ReceiveMessage\r\nContent-Length: {}\r\n\r\n{recv}", recv.len()).as_bytes())
        .await
        .unwrap();
    let n = tokio::time::timeout(PATIENCE, c.read(&mut buf))
        .await
        .expect("answered")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the poll waited its 2 s"
    );
    srv.stop().await;
}

#[tokio::test]
async fn without_a_limit_a_silent_connection_stays_open() {
    let srv = TestServer::with(Options {
        client_timeout: None,
        durable: false,
        ..Default::default()
    })
    .await;
    let mut c = connect(&srv).await;
    let mut buf = [0u8; 16];
    let waited = tokio::time::timeout(LIMIT * 3, c.read(&mut buf)).await;
    assert!(waited.is_err(), "closed or answered: {waited:?}");
    c.write_all(&list_tables()).await.unwrap();
    assert!(one_answer(&mut c).await.starts_with("HTTP/1.1 200 "));
    srv.stop().await;
}
