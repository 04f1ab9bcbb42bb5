//! The kill -9 soak, short: `kedge bench crash` SIGKILLs a `kedge serve` child under mixed
//! SQS + DynamoDB load a few times and checks every restart against the clients' ledger of
//! acknowledged operations. The 100-cycle run is the benchmark (docs/benchmarks.md).

use std::process::Command;

#[test]
fn sigkilled_server_loses_nothing_acknowledged() {
    let data = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_kedge"))
        .args([
            "bench",
            "crash",
            "--cycles",
            "4",
            "--seed",
            "7",
            "--min-run",
            "150ms",
            "--max-run",
            "700ms",
            "--visibility-timeout",
            "2",
            "--clients",
            "2",
            "--data-dir",
        ])
        .arg(data.path().join("d"))
        .output()
        .expect("run kedge bench crash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "soak failed:\n{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("crash-soak: "))
        .unwrap_or_else(|| panic!("no crash-soak line:\n{stdout}\n{stderr}"));
    let field = |k: &str| -> u64 {
        line.split(' ')
            .find_map(|f| f.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {line}"))
    };
    assert_eq!(field("cycles"), 4);
    for zero in [
        "lost",
        "dup_in_visibility",
        "lost_writes",
        "torn_tx",
        "resurrected",
    ] {
        assert_eq!(field(zero), 0, "{zero} in {line}");
    }
    // The load really ran: messages and writes were acknowledged and checked.
    assert!(field("acked_msgs") > 0, "{line}");
    assert!(field("acked_writes") > 0, "{line}");
    assert!(field("receives") > 0, "{line}");
}

/// The checker can fail: a "server" that loses its data directory at every restart is caught.
#[test]
fn soak_catches_a_server_that_forgets() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wrapper = tmp.path().join("forgetful-kedge");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n# the last argument is the data directory: wipe it, then serve\nfor a; do dir=$a; done\nrm -f \"$dir\"/kedge.db*\nexec {} \"$@\"\n",
            env!("CARGO_BIN_EXE_kedge")
        ),
    )
    .expect("write wrapper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = Command::new(env!("CARGO_BIN_EXE_kedge"))
        .args([
            "bench",
            "crash",
            "--cycles",
            "1",
            "--min-run",
            "300ms",
            "--max-run",
            "300ms",
            "--visibility-timeout",
            "1",
            "--clients",
            "1",
            "--kedge-bin",
        ])
        .arg(&wrapper)
        .arg("--data-dir")
        .arg(tmp.path().join("d"))
        .output()
        .expect("run kedge bench crash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a forgetful server passed:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("violations") && !stdout.contains(" lost=0 "),
        "{stdout}\n{stderr}"
    );
}
