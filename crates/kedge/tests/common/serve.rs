//! `kedge serve` started as a process by the integration tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::Child;

/// The URL a just-spawned `kedge serve` (stdout piped) says it listens on: its first line of
/// stdout, `kedge serve listening on http://HOST:PORT`.
pub fn listening_url(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout piped"))
        .read_line(&mut line)
        .expect("read the listening line");
    line.trim()
        .strip_prefix("kedge serve listening on ")
        .filter(|url| url.starts_with("http://"))
        .unwrap_or_else(|| panic!("kedge serve did not start: {line:?}"))
        .to_owned()
}
