//! A corpus of manifests written after KEDA's and Karpenter's docs, examples and CEL tests
//! (`tests/fixtures/corpus`): every file under `valid/` passes `kedge check` on its own, and
//! every file under `invalid/` fails at the field named by its `# expect: <path>` line.

use std::path::{Path, PathBuf};

use model::manifest::check_files;

fn files(dir: &str) -> Vec<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/corpus")
        .join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn valid_corpus_passes() {
    let valid = files("valid");
    assert!(valid.len() >= 10);
    let mut failures = Vec::new();
    for f in &valid {
        let r = check_files(&[f]);
        if !r.ok() {
            failures.extend(r.errors.iter().map(|e| e.to_string()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn invalid_corpus_fails_at_the_named_field() {
    let invalid = files("invalid");
    assert!(invalid.len() >= 10);
    let mut wrong = Vec::new();
    for f in &invalid {
        let text = std::fs::read_to_string(f).unwrap();
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: no `# expect:` line", f.display()))
            .trim();
        let r = check_files(&[f]);
        if !r.errors.iter().any(|e| e.path == expect) {
            wrong.push(format!(
                "{}: expected an error at {expect}, got {:?}",
                f.display(),
                r.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn other_kinds_are_listed_as_skipped_and_strict_rejects_them() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/corpus/valid/keda-whole-file.yaml");
    let r = check_files(&[&f]);
    assert!(r.ok(), "{:?}", r.errors);
    let skipped: Vec<String> = r
        .skipped
        .iter()
        .map(|s| {
            s.to_string()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        skipped,
        [
            "keda-whole-file.yaml[0] kind Secret: skipped",
            "keda-whole-file.yaml[1] kind Deployment: skipped"
        ]
    );
    let strict =
        model::manifest::check_files_with(&[&f], &model::manifest::CheckOptions { strict: true });
    assert!(strict.skipped.is_empty());
    let paths: Vec<(Option<usize>, &str)> = strict
        .errors
        .iter()
        .map(|e| (e.doc, e.path.as_str()))
        .collect();
    assert_eq!(paths, [(Some(0), "kind"), (Some(1), "kind")]);
}
