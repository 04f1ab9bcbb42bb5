//! `kedge check`: output format and exit codes on valid and broken manifests.

use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/keda")
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
fn valid_manifests_exit_zero() {
    let (code, stdout, stderr) = check(&["seed-sqs.yaml", "full.yaml"]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("2 file(s), 5 document(s) valid"),
        "{stderr}"
    );
}

#[test]
fn broken_manifest_prints_file_document_and_path_and_exits_one() {
    let dir = tempdir();
    let path = dir.join("payments.yaml");
    std::fs::copy(fixtures().join("broken.yaml"), &path).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kedge"))
        .args(["check", "payments.yaml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "payments.yaml[1] spec.triggers[0].metadata.queueLength: expected an integer, got \"two\"\n"
    );
}

#[test]
fn mixed_valid_and_invalid_files_report_only_problems() {
    let (code, stdout, _) = check(&["seed-sqs.yaml", "payments.json", "missing.yaml"]);
    assert_eq!(code, 1);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(
        lines[0],
        "payments.json[0] spec.minReplicaCount: MinReplicaCount=5 must be less than or equal to MaxReplicaCount=2"
    );
    assert!(
        lines[1].starts_with("missing.yaml: cannot read file"),
        "{stdout}"
    );
}

#[test]
fn no_files_is_a_usage_error() {
    let (code, _, stderr) = check(&[]);
    assert_eq!(code, 2, "{stderr}");
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("kedge-check-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn duplicate_scale_target_across_files_is_reported() {
    let dir = tempdir().join("dup");
    std::fs::create_dir_all(&dir).unwrap();
    let seed = std::fs::read_to_string(fixtures().join("seed-sqs.yaml")).unwrap();
    std::fs::write(dir.join("a.yaml"), &seed).unwrap();
    std::fs::write(
        dir.join("b.yaml"),
        seed.replace("name: aws-sqs-queue-scaledobject", "name: second"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kedge"))
        .args(["check", "a.yaml", "b.yaml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "b.yaml[1] spec.scaleTargetRef: the workload \"sqs-app\" of type apps/v1.Deployment is already managed by the ScaledObject \"aws-sqs-queue-scaledobject\"\n"
    );
}

#[test]
fn other_kinds_are_skipped_unless_strict() {
    let dir = tempdir().join("whole");
    std::fs::create_dir_all(&dir).unwrap();
    let seed = std::fs::read_to_string(fixtures().join("seed-sqs.yaml")).unwrap();
    std::fs::write(
        dir.join("app.yaml"),
        format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n---\n{seed}"),
    )
    .unwrap();
    let run = |strict: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kedge"));
        c.arg("check");
        if strict {
            c.arg("--strict");
        }
        let out = c.arg("app.yaml").current_dir(&dir).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(
        run(false),
        (Some(0), "app.yaml[0] kind Secret: skipped\n".to_string())
    );
    let (code, stdout) = run(true);
    assert_eq!(code, Some(1));
    assert!(
        stdout.starts_with("app.yaml[0] kind: Secret (v1) is not a KEDA or Karpenter kind"),
        "{stdout}"
    );
}
