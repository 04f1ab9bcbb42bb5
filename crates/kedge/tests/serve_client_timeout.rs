//! `kedge serve --client-timeout-secs`: the flag reaches the server (a silent connection is
//! closed after it), and a value out of range is refused with a message naming it.
#![allow(clippy::disallowed_methods)] // a real server's real timeout, measured on the wall clock

#[path = "common/serve.rs"]
mod serve;

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_silent_connection_is_closed_after_the_client_timeout() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kedge"))
        .args(["serve", "--in-memory", "--bind", "127.0.0.1:0"])
        .args(["--client-timeout-secs", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kedge serve");
    let url = serve::listening_url(&mut child);
    let addr = url.trim_start_matches("http://");
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let read = c.read_to_end(&mut got);
    let waited = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    read.expect("closed by the server (not a read timeout)");
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
}

#[test]
fn a_client_timeout_out_of_range_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_kedge"))
        .args(["serve", "--in-memory", "--bind", "127.0.0.1:0"])
        .args(["--client-timeout-secs", "100000"])
        .output()
        .expect("run kedge serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--client-timeout-secs") && err.contains("0..=86400"),
        "{err}"
    );
}
