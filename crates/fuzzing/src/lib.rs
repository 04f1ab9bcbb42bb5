//! kedge's fuzz harnesses: one function per kind of input that a peer or a user sends.
//!
//! Each harness takes arbitrary bytes and drives the real code through its public entry
//! point; it must return for every input, without a panic, a hang or an unbounded
//! allocation. The same functions serve two callers:
//! - the AFL++ binaries in `fuzz/` (`cargo afl`, built outside the workspace because they need
//!   AFL's instrumentation flags), run by `scripts/fuzz` for N executions per target;
//! - `tests/corpus_replay.rs`, an ordinary `cargo test` that feeds every file of
//!   `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through its harness, so a crash
//!   once found and fixed stays fixed in CI.
//!
//! # Layout
//! - this file: [`TARGETS`], the registry of harnesses by name, and the input splitting shared
//!   by the multi-request targets.
//! - [`sqs`]: the SQS JSON 1.0 protocol (`sqs_json`) and the query protocol (`sqs_query`)
//!   through the gateway's handlers, over a fresh in-memory store per input.
//! - [`dynamodb`]: DynamoDB requests (`dynamodb`) through the gateway's handler.
//! - [`expr`]: the DynamoDB expression language (`ddb_expr`): parse as every expression kind,
//!   then evaluate, project and apply updates against a fixed item.
//! - [`sigv4`]: SigV4 verification (`sigv4`) of a raw request head: Authorization headers and
//!   presigned query strings.
//! - [`manifest`]: KEDA / Karpenter manifests (`manifest`) through `model`'s checker, the code
//!   behind `kedge check`.
//! - [`scenario`]: the `kedge up` scenario format (`scenario`).

pub mod dynamodb;
pub mod expr;
pub mod manifest;
pub mod scenario;
pub mod sigv4;
pub mod sqs;

/// One fuzz target: its name (the corpus directory and the AFL binary's suffix) and harness.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, by name.
pub const TARGETS: &[Target] = &[
    Target {
        name: "sqs_json",
        run: sqs::json,
    },
    Target {
        name: "sqs_query",
        run: sqs::query,
    },
    Target {
        name: "dynamodb",
        run: dynamodb::run,
    },
    Target {
        name: "ddb_expr",
        run: expr::run,
    },
    Target {
        name: "sigv4",
        run: sigv4::run,
    },
    Target {
        name: "manifest",
        run: manifest::run,
    },
    Target {
        name: "scenario",
        run: scenario::run,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Separates requests inside one input of the multi-request targets, so the fuzzer can reach
/// state that only a sequence builds (a send, then a receive, then a delete).
pub const SEPARATOR: &[u8] = b"\n~~\n";

/// At most this many requests per input: keeps one execution short.
pub const MAX_REQUESTS: usize = 16;

/// Split an input into at most [`MAX_REQUESTS`] requests at [`SEPARATOR`].
pub fn requests(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() < MAX_REQUESTS {
        match find(rest, SEPARATOR) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + SEPARATOR.len()..];
            }
            None => {
                out.push(rest);
                break;
            }
        }
    }
    out
}

/// Split one request at its first newline: (first line, rest).
pub fn first_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// With `KEDGE_FUZZ_DEBUG` set, the multi-request harnesses print each request's answer
/// status and body (for checking that seeds reach past validation).
pub(crate) fn debug(what: &str, resp: &gateway::HttpResponse) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("KEDGE_FUZZ_DEBUG").is_some()) {
        let body = body_of(resp);
        let body = String::from_utf8_lossy(&body);
        eprintln!(
            "{what}: {} {}",
            resp.status(),
            body.chars().take(300).collect::<String>()
        );
    }
}

/// A response's body (the gateway's bodies are complete in memory).
pub(crate) fn body_of(resp: &gateway::HttpResponse) -> bytes::Bytes {
    use http_body_util::BodyExt;
    block_on(resp.body().clone().collect())
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

/// A current-thread runtime per thread, reused across executions (building one costs more
/// than most executions).
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime");
    }
    RT.with(|rt| rt.block_on(f))
}

/// A fresh in-memory store on a fixed clock, and the gateway state over it. Long polls are
/// told the server is stopping, so a `WaitTimeSeconds` answers at once instead of waiting.
pub(crate) fn fresh_state() -> std::sync::Arc<gateway::AppState> {
    let clock = clock::ManualClock::new(clock::Timestamp::from_secs(1_700_000_000));
    let store = store::Store::open(&store::Durability::InMemory, std::sync::Arc::new(clock))
        .expect("an in-memory store opens");
    let (state, stop) = gateway::AppState::new(store, gateway::Config::default());
    let _ = stop.send(true);
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_split_at_the_separator_and_stop_at_the_bound() {
        assert_eq!(requests(b"a\n~~\nb"), vec![&b"a"[..], &b"b"[..]]);
        assert_eq!(requests(b""), vec![&b""[..]]);
        let many = "x\n~~\n".repeat(40);
        assert_eq!(requests(many.as_bytes()).len(), MAX_REQUESTS);
        assert_eq!(first_line(b"Op\n{}"), (&b"Op"[..], &b"{}"[..]));
    }

    #[test]
    fn every_target_has_a_unique_name() {
        let mut names: Vec<_> = TARGETS.iter().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), TARGETS.len());
        assert!(target("sigv4").is_some());
        assert!(target("nope").is_none());
    }
}
