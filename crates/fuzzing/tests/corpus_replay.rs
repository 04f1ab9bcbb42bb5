//! Every file of the fuzz corpus (`fuzz/corpus/<target>/`) and every input that once crashed a
//! harness (`fuzz/regressions/<target>/`) goes through its harness: a crash that was fixed
//! stays fixed, and the seeds keep exercising the code in an ordinary `cargo test`.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.retain(|p| p.is_file());
    out.sort();
    out
}

fn replay(target: &str) {
    let t = fuzzing::target(target).expect("a registered target");
    let corpus = files(&root().join("corpus").join(target));
    assert!(
        corpus.len() >= 5,
        "fuzz/corpus/{target} has {} seeds; it should have a handful at least",
        corpus.len()
    );
    let regressions = files(&root().join("regressions").join(target));
    for f in corpus.iter().chain(&regressions) {
        let data = std::fs::read(f).expect("a readable corpus file");
        // A panic here names the file, which reproduces it: `scripts/fuzz --replay FILE`.
        eprintln!("{target}: {}", f.display());
        (t.run)(&data);
    }
}

#[test]
fn sqs_json_corpus_replays() {
    replay("sqs_json");
}

#[test]
fn sqs_query_corpus_replays() {
    replay("sqs_query");
}

#[test]
fn dynamodb_corpus_replays() {
    replay("dynamodb");
}

#[test]
fn ddb_expr_corpus_replays() {
    replay("ddb_expr");
}

#[test]
fn sigv4_corpus_replays() {
    replay("sigv4");
}

#[test]
fn manifest_corpus_replays() {
    replay("manifest");
}

#[test]
fn scenario_corpus_replays() {
    replay("scenario");
}

#[test]
fn every_target_has_a_corpus() {
    for t in fuzzing::TARGETS {
        assert!(
            root().join("corpus").join(t.name).is_dir(),
            "fuzz/corpus/{} is missing",
            t.name
        );
    }
}

/// The signed seeds verify (so the fuzzer starts from requests that reach the end of the
/// verifier), and the expired one is refused for its age.
#[test]
fn sigv4_signed_seeds_verify_at_the_harness_time() {
    use gateway::sigv4::{AuthError, Credentials, Expect, verify};
    let creds = Credentials {
        access_key: "AKIDEXAMPLE".into(),
        secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
    };
    let dir = root().join("corpus/sigv4");
    let check = |name: &str, service: &str| {
        let data = std::fs::read(dir.join(name)).expect("seed");
        let (parts, body) = fuzzing::sigv4::parse(&data).expect("a parseable request");
        verify(
            &creds,
            &parts,
            body,
            &Expect {
                service,
                region: "us-east-1",
                now: fuzzing::sigv4::NOW,
            },
        )
    };
    for (name, service) in [
        ("valid-sqs-json", "sqs"),
        ("valid-sqs-json-sha256", "sqs"),
        ("valid-sqs-query", "sqs"),
        ("valid-sqs-query-get", "sqs"),
        ("valid-dynamodb", "dynamodb"),
        ("valid-presigned", "sqs"),
        ("valid-presigned-dynamodb", "dynamodb"),
        ("suite-get-vanilla", "service"),
    ] {
        assert_eq!(check(name, service), Ok("AKIDEXAMPLE".into()), "{name}");
    }
    assert!(matches!(
        check("expired", "sqs"),
        Err(AuthError::Refused(m)) if m.starts_with("Signature expired")
    ));
}
