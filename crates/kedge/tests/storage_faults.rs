//! Storage faults under a real endpoint: an fsync that fails and a disk that fills up. The
//! server refuses writes with AWS's error (SQS `ServiceUnavailable`, DynamoDB
//! `InternalServerError`, HTTP 5xx), logs why, loses nothing it acknowledged, and works again
//! after a restart on the same data directory.

#[path = "common/serve.rs"]
mod serve;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use clock::{Clock, SystemClock};
use store::journal::{Backend, BackendError, Journal, Record};

/// Every log line of this test binary, from every thread (the journal logs from its own).
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        let writer = move || LogWriter(buf);
        let _ = tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .try_init();
        buf
    })
}

struct LogWriter(&'static Mutex<Vec<u8>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The SQLite backend, failing every commit while `fail` is set, as a failed fsync does.
struct FlakyDisk {
    inner: store::sqlite::SqliteBackend,
    fail: Arc<AtomicBool>,
}

impl Backend for FlakyDisk {
    fn commit(&mut self, batch: &[Record]) -> Result<(), BackendError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(BackendError(
                "fsync of kedge.db-wal failed: Input/output error (os error 5) [injected]".into(),
            ));
        }
        self.inner.commit(batch)
    }
}

/// The store `Store::open` builds, with the flaky backend under the journal.
fn open_flaky(dir: &Path, fail: Arc<AtomicBool>) -> store::Store {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (conn, path) = store::sqlite::open(dir).expect("open sqlite");
    let mut queues = store::queue::persist::load(&conn, clock.now()).expect("load queues");
    let segments = std::mem::take(&mut queues.segments);
    let mut tables = store::table::load(&conn).expect("load tables");
    let items = std::mem::take(&mut tables.log);
    let journal = Journal::start(
        Box::new(FlakyDisk {
            inner: store::sqlite::SqliteBackend::new(conn, segments, items),
            fail,
        }),
        false,
    );
    store::Store {
        queues: Arc::new(store::queue::QueueEngine::from_state(
            queues,
            journal.clone(),
            clock.clone(),
        )),
        tables: Arc::new(store::table::TableEngine::from_state(
            tables,
            journal.clone(),
            clock,
        )),
        journal,
        path: Some(path),
    }
}

struct InProcess {
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn serve(store: store::Store) -> InProcess {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (state, stop_tx) = gateway::AppState::new(store, gateway::Config::default());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = gateway::serve(
            listener,
            state,
            async {
                let _ = rx.await;
            },
            stop_tx,
        )
        .await;
    });
    InProcess { url, stop, task }
}

impl InProcess {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn sdk(url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "a", "b", None, None, "t",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fsync_refuses_writes_logs_why_and_loses_nothing_acknowledged() {
    let logs = logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let fail = Arc::new(AtomicBool::new(false));
    let srv = serve(open_flaky(dir.path(), fail.clone())).await;
    let conf = sdk(&srv.url).await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let q = sqs
        .create_queue()
        .queue_name("jobs")
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("url");
    ddb.create_table()
        .table_name("orders")
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("def"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
    for i in 0..10 {
        sqs.send_message()
            .queue_url(&q)
            .message_body(format!("acked-{i}"))
            .send()
            .await
            .expect("send before the fault");
        ddb.put_item()
            .table_name("orders")
            .item("pk", AttributeValue::S(format!("k{i}")))
            .send()
            .await
            .expect("put before the fault");
    }

    fail.store(true, Ordering::SeqCst);
    let e = sqs
        .send_message()
        .queue_url(&q)
        .message_body("refused")
        .send()
        .await
        .expect_err("a send whose commit fails is refused");
    let raw = e.raw_response().expect("an HTTP answer");
    assert_eq!(raw.status().as_u16(), 503);
    assert_eq!(
        aws_sdk_sqs::error::ProvideErrorMetadata::code(&e),
        Some("ServiceUnavailable")
    );
    // Fail-stop: with the disk back, writes stay refused until a restart.
    fail.store(false, Ordering::SeqCst);
    let e = ddb
        .put_item()
        .table_name("orders")
        .item("pk", AttributeValue::S("refused".into()))
        .send()
        .await
        .expect_err("writes stay refused after a failed commit");
    assert_eq!(e.raw_response().expect("answer").status().as_u16(), 500);
    assert_eq!(
        aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&e),
        Some("InternalServerError")
    );
    let health = reqwest_like_get(&format!("{}/healthz", srv.url)).await;
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    let log = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        log.contains("journal commit failed; refusing further writes")
            && log.contains("Input/output error (os error 5) [injected]"),
        "the log says why writes are refused:\n{log}"
    );
    srv.stop().await;

    // Restart on the same directory (the real open path): everything acknowledged is there.
    let store = store::Store::open(
        &store::Durability::Disk(dir.path().to_path_buf()),
        Arc::new(SystemClock),
    )
    .expect("reopen");
    let srv = serve(store).await;
    let conf = sdk(&srv.url).await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let mut bodies = Vec::new();
    loop {
        let r = sqs
            .receive_message()
            .queue_url(&q)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive after restart");
        if r.messages().is_empty() {
            break;
        }
        bodies.extend(
            r.messages()
                .iter()
                .filter_map(|m| m.body().map(str::to_owned)),
        );
    }
    bodies.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("acked-{i}")).collect();
    want.sort();
    assert_eq!(
        bodies, want,
        "exactly the acknowledged messages, the refused one absent"
    );
    for i in 0..10 {
        let item = ddb
            .get_item()
            .table_name("orders")
            .key("pk", AttributeValue::S(format!("k{i}")))
            .send()
            .await
            .expect("get after restart");
        assert!(item.item().is_some(), "acknowledged item k{i} survived");
    }
    ddb.put_item()
        .table_name("orders")
        .item("pk", AttributeValue::S("after".into()))
        .send()
        .await
        .expect("writes work again after the restart");
    srv.stop().await;
}

/// A bare GET over a socket: status line and body.
async fn reqwest_like_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.trim_start_matches("http://");
    let (addr, path) = rest.split_once('/').expect("path");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET /{path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

/// A small tmpfs mounted for the test's life (needs root, as CI and this machine have).
struct Mount(std::path::PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Option<Mount> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(dir.to_path_buf()))
    }
    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remounting {} with {size}", self.0.display());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(data: &Path, log: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kedge"))
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env("KEDGE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("spawn kedge serve");
        let url = serve::listening_url(&mut child);
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_refuses_writes_logs_why_and_recovers_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(mount) = Mount::tmpfs(dir.path(), "3m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root); the full-disk case is untested"
        );
        return;
    };
    let data = dir.path().join("data");
    let logs = tempfile::tempdir().expect("log dir");
    let log = logs.path().join("serve.log");
    let server = Server::start(&data, &log);
    let sqs = aws_sdk_sqs::Client::new(&sdk(&server.url).await);
    let q = sqs
        .create_queue()
        .queue_name("fill")
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("url");
    let body = "x".repeat(200 * 1024);
    let mut acked = 0;
    let refusal = loop {
        match sqs
            .send_message()
            .queue_url(&q)
            .message_body(format!("{acked:04}{body}"))
            .send()
            .await
        {
            Ok(_) => acked += 1,
            Err(e) => break e,
        }
        assert!(acked < 100, "3 MB of tmpfs took 20 MB of messages");
    };
    assert!(acked > 0, "the disk filled before anything was written");
    assert_eq!(
        refusal.raw_response().map(|r| r.status().as_u16()),
        Some(503),
        "{refusal:?}"
    );
    assert_eq!(
        aws_sdk_sqs::error::ProvideErrorMetadata::code(&refusal),
        Some("ServiceUnavailable")
    );
    let log_text = std::fs::read_to_string(&log).expect("server log");
    assert!(
        log_text.contains("journal commit failed; refusing further writes")
            && log_text.contains("full"),
        "the log says the disk is full:\n{log_text}"
    );
    drop(server);

    // More room, a restart on the same directory: every acknowledged message is there.
    mount.resize("64m");
    let server = Server::start(&data, &log);
    let sqs = aws_sdk_sqs::Client::new(&sdk(&server.url).await);
    let mut got = Vec::new();
    loop {
        let r = sqs
            .receive_message()
            .queue_url(&q)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive after restart");
        if r.messages().is_empty() {
            break;
        }
        got.extend(
            r.messages()
                .iter()
                .filter_map(|m| m.body().and_then(|b| b.get(..4)).map(str::to_owned)),
        );
    }
    got.sort();
    got.dedup();
    let want: Vec<String> = (0..acked).map(|i| format!("{i:04}")).collect();
    assert!(
        want.iter().all(|w| got.contains(w)),
        "acknowledged {acked} messages, received back {got:?}"
    );
    sqs.send_message()
        .queue_url(&q)
        .message_body("after")
        .send()
        .await
        .expect("writes work again with room on the disk");
    drop(server);
    drop(mount);
}
