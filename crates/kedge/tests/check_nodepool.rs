//! `kedge check` on Karpenter NodePools (v1 and v1beta1): valid files pass, broken ones print
//! `file[doc] field.path: message` and exit 1.

use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/karpenter")
}

fn check(files: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kedge"))
        .arg("check")
        .args(files)
        .current_dir(fixtures())
        .output()
        .expect("run kedge");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn v1_and_v1beta1_nodepools_are_valid() {
    let (code, stdout, stderr) = check(&["nodepools.yaml"]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("2 document(s) valid"), "{stderr}");
}

#[test]
fn broken_nodepool_reports_every_field_path() {
    let (code, stdout, _) = check(&["broken-nodepool.yaml"]);
    assert_eq!(code, 1);
    for line in [
        "broken-nodepool.yaml[0] spec.template.spec.requirements[0].values: requirements with operator 'Gt' must have a single positive integer value",
        "broken-nodepool.yaml[0] spec.disruption.budgets[0].nodes:",
        "broken-nodepool.yaml[0] spec.weight: 101 is out of range; use 1 to 100",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
}

#[test]
fn unknown_nodepool_field_is_named() {
    let (code, stdout, _) = check(&["typo-nodepool.yaml"]);
    assert_eq!(code, 1);
    assert!(
        stdout.starts_with("typo-nodepool.yaml[0] spec.disruption"),
        "{stdout}"
    );
    assert!(stdout.contains("consolidateAftr"), "{stdout}");
}
