//! `kedge serve` on a non-loopback address without `--credentials` warns at start that anyone
//! who can reach it can use it; on loopback, or with credentials, it does not.

#[path = "common/serve.rs"]
mod serve;

use std::io::Read;
use std::process::{Command, Stdio};

/// The server's log from start until it is listening.
fn start_log(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kedge"))
        .args(["serve", "--in-memory"])
        .args(args)
        .env("KEDGE_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kedge serve");
    serve::listening_url(&mut child);
    let _ = child.kill();
    let _ = child.wait();
    let mut log = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("read the log");
    log
}

#[test]
fn open_bind_without_credentials_warns_at_start() {
    let log = start_log(&["--bind", "0.0.0.0:0"]);
    assert!(
        log.contains("WARN") && log.contains("without --credentials"),
        "no warning in:\n{log}"
    );
    for quiet in [
        vec!["--bind", "127.0.0.1:0"],
        vec!["--bind", "0.0.0.0:0", "--credentials", "AKID:secret"],
    ] {
        let log = start_log(&quiet);
        assert!(
            !log.contains("without --credentials"),
            "{quiet:?} warned:\n{log}"
        );
    }
}
