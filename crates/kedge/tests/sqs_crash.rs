//! Crash safety: a `kedge serve` child is killed with SIGKILL while clients send; after a
//! restart on the same data directory every acknowledged message is receivable exactly as
//! sent, and no message whose deletion was acknowledged comes back.

#[path = "common/serve.rs"]
mod serve;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Server {
    child: Child,
    url: String,
}

fn start(dir: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kedge"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("KEDGE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn kedge serve");
    let url = serve::listening_url(&mut child);
    Server { child, url }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn client(url: &str) -> aws_sdk_sqs::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "a", "b", None, None, "t",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    aws_sdk_sqs::Client::new(&conf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let c = client(&server.url).await;
    let url = c
        .create_queue()
        .queue_name("crash")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();

    // Some messages acknowledged, received and deleted before the crash: must not return.
    let mut deleted = HashSet::new();
    for i in 0..20 {
        c.send_message()
            .queue_url(&url)
            .message_body(format!("del-{i}"))
            .send()
            .await
            .unwrap();
    }
    let got = c
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    for m in got.messages() {
        c.delete_message()
            .queue_url(&url)
            .receipt_handle(m.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
        deleted.insert(m.body().unwrap().to_owned());
    }
    assert_eq!(deleted.len(), 10);

    // Writers send until the server dies; record what was acknowledged.
    let acked: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..8 {
        let (c, url, acked) = (c.clone(), url.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let body = format!("w{w}-{i}-{}", "p".repeat(i % 50));
                match c
                    .send_message()
                    .queue_url(&url)
                    .message_body(&body)
                    .send()
                    .await
                {
                    Ok(r) => {
                        acked.lock().unwrap().insert(body, r.message_id.unwrap());
                    }
                    Err(_) => break, // the server is gone
                }
            }
        }));
    }
    // Kill once a fair number of sends were acknowledged (no fixed sleep).
    while acked.lock().unwrap().len() < 2000 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 2000);

    let server2 = start(dir.path());
    let c = client(&server2.url).await;
    let url = c
        .get_queue_url()
        .queue_name("crash")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let mut found: HashMap<String, String> = HashMap::new();
    loop {
        let r = c
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .send()
            .await
            .unwrap();
        if r.messages().is_empty() {
            break;
        }
        for m in r.messages() {
            let body = m.body().unwrap().to_owned();
            assert!(!deleted.contains(&body), "deleted message {body} came back");
            assert!(
                found
                    .insert(body, m.message_id().unwrap().to_owned())
                    .is_none()
            );
        }
    }
    for (body, id) in &acked {
        assert_eq!(
            found.get(body),
            Some(id),
            "acknowledged message {body} lost or changed"
        );
    }
    // Also the 10 sent-but-not-deleted ones survive.
    assert_eq!(found.keys().filter(|b| b.starts_with("del-")).count(), 10);
}
