//! Shared helpers for the `kedge up` integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

pub const KEDGE: &str = env!("CARGO_BIN_EXE_kedge");

pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Processes whose command line mentions `needle` (our consumers carry the report dir in
/// their --status-file path).
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let p = e.path();
        if let Ok(c) = std::fs::read(p.join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(needle) {
                out.push(format!("{}: {c}", p.display()));
            }
        }
    }
    out
}

/// A fresh `kedge serve` on the run's data: the child and its URL.
fn serve(data_dir: &Path) -> (std::process::Child, String) {
    let mut child = std::process::Command::new(KEDGE)
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start kedge serve");
    let mut line = String::new();
    {
        use std::io::BufRead;
        let out = child.stdout.take().expect("stdout");
        std::io::BufReader::new(out)
            .read_line(&mut line)
            .expect("ready line");
    }
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .expect("url in the ready line")
        .to_string();
    (child, url)
}

async fn sdk(url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await
}

/// Messages in each named queue (visible + in flight + delayed), counted through the SQS
/// API of a fresh `kedge serve` on the run's data.
pub fn queue_counts(data_dir: &Path, queues: &[&str]) -> Vec<u64> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let (mut child, url) = serve(data_dir);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let counts = rt.block_on(async {
        let sqs = aws_sdk_sqs::Client::new(&sdk(&url).await);
        let mut out = Vec::new();
        for q in queues {
            let qurl = sqs
                .get_queue_url()
                .queue_name(*q)
                .send()
                .await
                .expect("queue url")
                .queue_url
                .expect("a url");
            let a = sqs
                .get_queue_attributes()
                .queue_url(qurl)
                .attribute_names(A::All)
                .send()
                .await
                .expect("attributes")
                .attributes
                .unwrap_or_default();
            let g = |k: A| {
                a.get(&k)
                    .and_then(|v| v.parse::<u64>().ok())
                    .expect("a count")
            };
            out.push(
                g(A::ApproximateNumberOfMessages)
                    + g(A::ApproximateNumberOfMessagesNotVisible)
                    + g(A::ApproximateNumberOfMessagesDelayed),
            );
        }
        out
    });
    let _ = child.kill();
    let _ = child.wait();
    counts
}

/// Every transaction id in the table, through a fresh `kedge serve` on the run's data.
pub fn table_ids(data_dir: &Path, table: &str) -> Vec<String> {
    let (mut child, url) = serve(data_dir);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ids = rt.block_on(async {
        let db = aws_sdk_dynamodb::Client::new(&sdk(&url).await);
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let r = db
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .expect("scan");
            for it in r.items.unwrap_or_default() {
                ids.push(
                    it.get("transaction_id")
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            match r.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        ids
    });
    let _ = child.kill();
    let _ = child.wait();
    ids
}

pub fn acked_ids(report_dir: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    for e in std::fs::read_dir(report_dir.join("acks"))
        .expect("acks dir")
        .flatten()
    {
        let t = std::fs::read_to_string(e.path()).expect("ack log");
        ids.extend(t.lines().filter(|l| !l.is_empty()).map(String::from));
    }
    ids
}

pub fn run_up(scenario: &str, dir: &Path) -> Value {
    run_up_with(scenario, dir, &[], Some("warn")).0
}

/// `kedge up --headless` with extra arguments and `KEDGE_LOG` (unset if `None`): report.json,
/// stdout and stderr.
pub fn run_up_with(
    scenario: &str,
    dir: &Path,
    args: &[&str],
    log: Option<&str>,
) -> (Value, String, String) {
    let mut cmd = Command::new(KEDGE);
    cmd.args(["up", "--headless", "--scenario", &fixture(scenario)])
        .arg("--report-dir")
        .arg(dir)
        .args(args)
        .env_remove("KEDGE_LOG")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE");
    if let Some(l) = log {
        cmd.env("KEDGE_LOG", l);
    }
    let out = cmd.output().expect("run kedge up");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "kedge up failed\n{stdout}\n{stderr}");
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    (
        serde_json::from_str(&text).expect("report.json is JSON"),
        stdout,
        stderr,
    )
}

pub fn num(r: &Value, k: &str) -> f64 {
    r.get(k)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("report.json has no number {k}: {r:#}"))
}
