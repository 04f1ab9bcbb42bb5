//! `kedge bench crash`: the kill -9 soak.
//!
//! A `kedge serve` child (durable storage) runs under mixed load — SQS sends (single and
//! batch), receives, deletes and visibility changes; DynamoDB PutItem, UpdateItem and
//! TransactWriteItems — and is SIGKILLed at a random moment, then restarted on the same data
//! directory, `--cycles` times. The load's clients keep a ledger of what they attempted and
//! what was acknowledged (a 200 answer), and after every restart the server's state is checked
//! against it:
//!
//! - messages: the queue holds at least every acknowledged message that no delete was tried on,
//!   and at most every attempted one that no acknowledged delete removed (the counters after
//!   each restart); at the end every such message is received by name (a drain after one
//!   visibility timeout) and no message whose delete was acknowledged comes back;
//! - no message is delivered twice within one visibility timeout: a second receive answered
//!   before the first receive was even sent plus the timeout, with no visibility change tried
//!   on it in between, is counted in `dup_in_visibility`;
//! - writes: every acknowledged PutItem is readable with its value; each UpdateItem counter is
//!   at least its last acknowledged version and at most its last attempted one;
//! - transactions: each TransactWriteItems writes two items and bumps a counter; both items
//!   exist or neither does, the counter equals the number of complete pairs, and every
//!   acknowledged one is there.
//!
//! Prints `crash-soak: cycles=… acked_msgs=… lost=0 dup_in_visibility=0 acked_writes=…
//! lost_writes=0 …` and exits non-zero on any violation.

#![allow(clippy::disallowed_methods)] // delivery times and run lengths are wall-clock by nature

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

#[derive(Args, Debug, Clone)]
pub struct CrashArgs {
    /// Kill/restart cycles.
    #[arg(long, default_value_t = 100)]
    pub cycles: u32,
    /// Seed for the kill moments and the clients' choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Shortest load between a (re)start and the kill.
    #[arg(long, default_value = "200ms", value_parser = workload::parse_duration)]
    pub min_run: Duration,
    /// Longest load between a (re)start and the kill.
    #[arg(long, default_value = "1500ms", value_parser = workload::parse_duration)]
    pub max_run: Duration,
    /// The queue's visibility timeout in seconds (receives ask for it explicitly).
    #[arg(long, default_value_t = 20)]
    pub visibility_timeout: u32,
    /// Concurrent clients per kind of load (senders, receivers, writers).
    #[arg(long, default_value_t = 3)]
    pub clients: usize,
    /// Data directory (default: a fresh one under the temp dir, removed after a clean run).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The kedge binary to run as the server (default: this one).
    #[arg(long)]
    pub kedge_bin: Option<PathBuf>,
}

/// What the clients attempted and what was acknowledged.
#[derive(Default)]
struct Ledger {
    sent: HashSet<u64>,
    sent_acked: HashSet<u64>,
    delete_tried: HashSet<u64>,
    delete_acked: HashSet<u64>,
    /// Receipt handles a visibility change was tried on.
    visibility_changed: HashSet<String>,
    receives: Vec<Receive>,
    /// PutItem `p-<n>` → value, acknowledged.
    puts_acked: HashMap<u64, u64>,
    /// UpdateItem counter per writer: (last acknowledged version, last attempted version).
    updates: HashMap<usize, (u64, u64)>,
    updates_acked: u64,
    tx_tried: HashSet<u64>,
    tx_acked: HashSet<u64>,
}

struct Receive {
    msg: u64,
    handle: String,
    /// Wall-clock ms when the request was sent and when its answer arrived.
    sent_at: u64,
    answered_at: u64,
}

#[derive(Default, Debug)]
struct Violations {
    lost: usize,
    resurrected: usize,
    dup_in_visibility: usize,
    lost_writes: usize,
    torn_tx: usize,
    details: Vec<String>,
}

impl Violations {
    fn total(&self) -> usize {
        self.lost + self.resurrected + self.dup_in_visibility + self.lost_writes + self.torn_tx
    }
    fn note(&mut self, s: String) {
        if self.details.len() < 20 {
            self.details.push(s);
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A `kedge serve` child on a free loopback port.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(bin: &Path, dir: &Path, log: &Path) -> anyhow::Result<Server> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut child = Command::new(bin)
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            // The server's own log filter: KEDGE_SOAK_SERVER_LOG (default warn).
            .env(
                "KEDGE_LOG",
                std::env::var("KEDGE_SOAK_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} serve", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(url) = line.trim().strip_prefix("kedge serve listening on http://") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("kedge serve did not start (first line {line:?}); see the server log");
        };
        Ok(Server {
            addr: url.to_owned(),
            child,
        })
    }

    fn kill(mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "kedge serve exited by itself ({status}) before it was killed; see the server log"
            );
        }
        // `Child::kill` is SIGKILL on Unix: no shutdown path runs.
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

/// One keep-alive HTTP/1.1 connection speaking AWS JSON 1.0.
struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    addr: String,
}

enum Answer {
    Ok(Value),
    /// An AWS error: the request was refused and changed nothing.
    Refused(String),
    /// No answer (connection failed or closed): it may or may not have happened.
    Unknown(String),
}

impl Conn {
    async fn open(addr: &str) -> Option<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .ok()?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Some(Conn {
            sender,
            addr: addr.to_owned(),
        })
    }

    async fn call(&mut self, target: &str, body: &Value) -> Answer {
        let Ok(req) = hyper::Request::post("/")
            .header("host", &self.addr)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", target)
            .body(Full::new(Bytes::from(body.to_string())))
        else {
            return Answer::Unknown("could not build the request".into());
        };
        // The previous exchange must be finished on the connection's side first.
        if let Err(e) = self.sender.ready().await {
            return Answer::Unknown(format!("{e:?}"));
        }
        let resp = match self.sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => return Answer::Unknown(format!("{e:?}")),
        };
        let status = resp.status();
        let body = match resp.into_body().collect().await {
            Ok(b) => b,
            Err(e) => return Answer::Unknown(e.to_string()),
        };
        let v: Value = serde_json::from_slice(&body.to_bytes()).unwrap_or(Value::Null);
        if status.is_success() {
            Answer::Ok(v)
        } else {
            Answer::Refused(format!("{status} {v}"))
        }
    }
}

impl Shared {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        // A poisoned ledger only means a worker panicked; its entries are still sound.
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }
}

const QUEUE: &str = "soak";
const TABLE: &str = "soak";

struct Shared {
    ledger: std::sync::Mutex<Ledger>,
    next_msg: AtomicU64,
    next_put: AtomicU64,
    next_tx: AtomicU64,
    stop: AtomicBool,
    vt: u32,
    queue_url: String,
}

pub fn run(args: &CrashArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.min_run <= args.max_run,
        "--min-run is longer than --max-run"
    );
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    let bin = match &args.kedge_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("locating this kedge binary")?,
    };
    let (dir, temporary) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("kedge-crash-soak-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = dir.with_extension("server.log");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let result = rt.block_on(soak(args, &bin, &dir, &log));
    let v = result?;
    println!(
        "crash-soak: cycles={} acked_msgs={} lost={} dup_in_visibility={} acked_writes={} lost_writes={} torn_tx={} resurrected={} receives={} seconds={:.0}",
        args.cycles,
        v.1.acked_msgs,
        v.0.lost,
        v.0.dup_in_visibility,
        v.1.acked_writes,
        v.0.lost_writes,
        v.0.torn_tx,
        v.0.resurrected,
        v.1.receives,
        started.elapsed().as_secs_f64()
    );
    if v.0.total() > 0 {
        for d in &v.0.details {
            eprintln!("  {d}");
        }
        bail!(
            "crash soak found {} violations (data dir {}, server log {})",
            v.0.total(),
            dir.display(),
            log.display()
        );
    }
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&log);
    }
    Ok(())
}

struct Totals {
    acked_msgs: usize,
    acked_writes: u64,
    receives: usize,
}

async fn soak(
    args: &CrashArgs,
    bin: &Path,
    dir: &Path,
    log: &Path,
) -> anyhow::Result<(Violations, Totals)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut server = Server::start(bin, dir, log)?;
    let mut c = Conn::open(&server.addr)
        .await
        .context("connecting to kedge serve")?;
    let queue_url = match c
        .call(
            "AmazonSQS.CreateQueue",
            &json!({"QueueName": QUEUE, "Attributes": {"VisibilityTimeout": args.visibility_timeout.to_string()}}),
        )
        .await
    {
        Answer::Ok(v) => v["QueueUrl"].as_str().unwrap_or_default().to_owned(),
        Answer::Refused(e) => bail!("CreateQueue refused: {e}"),
        Answer::Unknown(e) => bail!("CreateQueue got no answer: {e}"),
    };
    let create_table = json!({
        "TableName": TABLE,
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST"
    });
    match c.call("DynamoDB_20120810.CreateTable", &create_table).await {
        Answer::Ok(_) => {}
        // A data directory from an earlier run.
        Answer::Refused(e) if e.contains("ResourceInUse") => {}
        Answer::Refused(e) => bail!("CreateTable refused: {e}"),
        Answer::Unknown(e) => bail!("CreateTable got no answer: {e}"),
    }
    let shared = Arc::new(Shared {
        ledger: std::sync::Mutex::new(Ledger::default()),
        next_msg: AtomicU64::new(0),
        next_put: AtomicU64::new(0),
        next_tx: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        vt: args.visibility_timeout,
        queue_url,
    });
    let mut violations = Violations::default();
    for cycle in 0..args.cycles {
        shared.stop.store(false, Ordering::SeqCst);
        let mut tasks = Vec::new();
        for w in 0..args.clients {
            let seed = args.seed ^ (u64::from(cycle) << 20) ^ (w as u64) << 8;
            let addr = server.addr.clone();
            for role in [Role::Send, Role::Receive, Role::Put, Role::Update, Role::Tx] {
                let sh = shared.clone();
                let addr = addr.clone();
                tasks.push(tokio::spawn(async move {
                    worker(sh, addr, role, w, seed ^ role as u64).await
                }));
            }
        }
        let span = args.max_run.saturating_sub(args.min_run).as_millis() as u64;
        let run = args.min_run + Duration::from_millis(rng.random_range(0..=span));
        tokio::time::sleep(run).await;
        server.kill()?;
        shared.stop.store(true, Ordering::SeqCst);
        for t in tasks {
            let _ = t.await;
        }
        server = Server::start(bin, dir, log)
            .with_context(|| format!("restarting after kill {}", cycle + 1))?;
        check(&server.addr, &shared, &mut violations, cycle + 1).await?;
        if (cycle + 1) % 10 == 0 {
            let l = shared.ledger();
            eprintln!(
                "crash-soak: {}/{} kills, {} messages and {} puts acknowledged, {} violations so far",
                cycle + 1,
                args.cycles,
                l.sent_acked.len(),
                l.puts_acked.len(),
                violations.total()
            );
        }
    }
    // The final drain: once every message received before the last kill is visible again,
    // every message that must exist is received by name.
    // (Clients set visibility timeouts of up to twice the queue's.)
    tokio::time::sleep(
        Duration::from_secs(2 * u64::from(args.visibility_timeout)) + Duration::from_millis(500),
    )
    .await;
    drain(&server.addr, &shared, &mut violations).await?;
    check_duplicates(&shared, &mut violations);
    server.kill()?;
    let l = shared.ledger();
    let totals = Totals {
        acked_msgs: l.sent_acked.len(),
        acked_writes: l.puts_acked.len() as u64 + l.updates_acked + l.tx_acked.len() as u64,
        receives: l.receives.len(),
    };
    Ok((violations, totals))
}

#[derive(Clone, Copy, Debug)]
enum Role {
    Send = 1,
    Receive = 2,
    Put = 3,
    Update = 4,
    Tx = 5,
}

async fn worker(sh: Arc<Shared>, addr: String, role: Role, w: usize, seed: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut conn: Option<Conn> = None;
    while !sh.stop.load(Ordering::SeqCst) {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::open(&addr).await {
                Some(c) => conn.insert(c),
                None => {
                    // The server is gone (killed); wait for the stop flag.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
        };
        let alive = match role {
            Role::Send => send(&sh, c, &mut rng).await,
            Role::Receive => receive(&sh, c, &mut rng).await,
            Role::Put => put(&sh, c).await,
            Role::Update => update(&sh, c, w).await,
            Role::Tx => tx(&sh, c).await,
        };
        if !alive {
            conn = None;
        }
    }
}

/// Send one message or a batch; false when the connection is gone.
async fn send(sh: &Shared, c: &mut Conn, rng: &mut rand::rngs::StdRng) -> bool {
    let n = if rng.random_bool(0.3) { 5 } else { 1 };
    let ids: Vec<u64> = (0..n)
        .map(|_| sh.next_msg.fetch_add(1, Ordering::SeqCst))
        .collect();
    sh.ledger().sent.extend(&ids);
    let answer = if n == 1 {
        c.call(
            "AmazonSQS.SendMessage",
            &json!({"QueueUrl": sh.queue_url, "MessageBody": format!("m-{}", ids[0])}),
        )
        .await
    } else {
        let entries: Vec<Value> = ids
            .iter()
            .map(|i| json!({"Id": format!("e{i}"), "MessageBody": format!("m-{i}")}))
            .collect();
        c.call(
            "AmazonSQS.SendMessageBatch",
            &json!({"QueueUrl": sh.queue_url, "Entries": entries}),
        )
        .await
    };
    match answer {
        Answer::Ok(v) => {
            let mut l = sh.ledger();
            if n == 1 {
                l.sent_acked.insert(ids[0]);
            } else {
                for e in v["Successful"].as_array().into_iter().flatten() {
                    if let Some(i) = e["Id"].as_str().and_then(|s| s[1..].parse().ok()) {
                        l.sent_acked.insert(i);
                    }
                }
            }
            true
        }
        Answer::Refused(_) => true,
        Answer::Unknown(_) => false,
    }
}

async fn receive(sh: &Shared, c: &mut Conn, rng: &mut rand::rngs::StdRng) -> bool {
    let sent_at = now_ms();
    let answer = c
        .call(
            "AmazonSQS.ReceiveMessage",
            &json!({"QueueUrl": sh.queue_url, "MaxNumberOfMessages": 10, "VisibilityTimeout": sh.vt}),
        )
        .await;
    let answered_at = now_ms();
    let msgs = match answer {
        Answer::Ok(v) => v["Messages"].as_array().cloned().unwrap_or_default(),
        Answer::Refused(_) => return true,
        Answer::Unknown(_) => return false,
    };
    let mut got = Vec::new();
    {
        let mut l = sh.ledger();
        for m in &msgs {
            let (Some(body), Some(handle)) = (m["Body"].as_str(), m["ReceiptHandle"].as_str())
            else {
                continue;
            };
            let Some(id) = body.strip_prefix("m-").and_then(|s| s.parse::<u64>().ok()) else {
                continue;
            };
            l.receives.push(Receive {
                msg: id,
                handle: handle.to_owned(),
                sent_at,
                answered_at,
            });
            got.push((id, handle.to_owned()));
        }
    }
    for (id, handle) in got {
        let r: f64 = rng.random();
        if r < 0.7 {
            sh.ledger().delete_tried.insert(id);
            match c
                .call(
                    "AmazonSQS.DeleteMessage",
                    &json!({"QueueUrl": sh.queue_url, "ReceiptHandle": handle}),
                )
                .await
            {
                Answer::Ok(_) => {
                    sh.ledger().delete_acked.insert(id);
                }
                Answer::Refused(_) => {}
                Answer::Unknown(_) => return false,
            }
        } else if r < 0.85 {
            let timeout = if rng.random_bool(0.5) { 0 } else { sh.vt * 2 };
            sh.ledger().visibility_changed.insert(handle.clone());
            if let Answer::Unknown(_) = c
                .call(
                    "AmazonSQS.ChangeMessageVisibility",
                    &json!({"QueueUrl": sh.queue_url, "ReceiptHandle": handle, "VisibilityTimeout": timeout}),
                )
                .await
            {
                return false;
            }
        }
        // Otherwise left alone: it comes back after the visibility timeout.
    }
    true
}

async fn put(sh: &Shared, c: &mut Conn) -> bool {
    let n = sh.next_put.fetch_add(1, Ordering::SeqCst);
    let value = n * 7 + 1;
    match c
        .call(
            "DynamoDB_20120810.PutItem",
            &json!({"TableName": TABLE, "Item": {"pk": {"S": format!("p-{n}")}, "v": {"N": value.to_string()}}}),
        )
        .await
    {
        Answer::Ok(_) => {
            sh.ledger().puts_acked.insert(n, value);
            true
        }
        Answer::Refused(_) => true,
        Answer::Unknown(_) => false,
    }
}

async fn update(sh: &Shared, c: &mut Conn, w: usize) -> bool {
    let version = {
        let mut l = sh.ledger();
        let e = l.updates.entry(w).or_default();
        e.1 += 1;
        e.1
    };
    match c
        .call(
            "DynamoDB_20120810.UpdateItem",
            &json!({
                "TableName": TABLE,
                "Key": {"pk": {"S": format!("u-{w}")}},
                "UpdateExpression": "SET v = :v",
                "ConditionExpression": "attribute_not_exists(v) OR v < :v",
                "ExpressionAttributeValues": {":v": {"N": version.to_string()}}
            }),
        )
        .await
    {
        Answer::Ok(_) => {
            let mut l = sh.ledger();
            l.updates_acked += 1;
            let e = l.updates.entry(w).or_default();
            e.0 = e.0.max(version);
            true
        }
        Answer::Refused(_) => true,
        Answer::Unknown(_) => false,
    }
}

async fn tx(sh: &Shared, c: &mut Conn) -> bool {
    let n = sh.next_tx.fetch_add(1, Ordering::SeqCst);
    sh.ledger().tx_tried.insert(n);
    let item = |side: &str| {
        json!({"Put": {
            "TableName": TABLE,
            "Item": {"pk": {"S": format!("t-{n}-{side}")}, "n": {"N": n.to_string()}},
            "ConditionExpression": "attribute_not_exists(pk)"
        }})
    };
    match c
        .call(
            "DynamoDB_20120810.TransactWriteItems",
            &json!({"TransactItems": [
                item("a"),
                item("b"),
                {"Update": {
                    "TableName": TABLE,
                    "Key": {"pk": {"S": "tx-count"}},
                    "UpdateExpression": "ADD c :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}
                }}
            ]}),
        )
        .await
    {
        Answer::Ok(_) => {
            sh.ledger().tx_acked.insert(n);
            true
        }
        Answer::Refused(_) => true,
        Answer::Unknown(_) => false,
    }
}

/// After a restart: the queue's counters and the whole table against the ledger.
async fn check(addr: &str, sh: &Shared, v: &mut Violations, cycle: u32) -> anyhow::Result<()> {
    let mut c = Conn::open(addr).await.context("connecting after restart")?;
    let counts = match c
        .call(
            "AmazonSQS.GetQueueAttributes",
            &json!({"QueueUrl": sh.queue_url, "AttributeNames": ["All"]}),
        )
        .await
    {
        Answer::Ok(a) => a,
        // The queue itself is gone: every message in it is lost (counted below).
        Answer::Refused(e) if e.contains("QueueDoesNotExist") => {
            v.note(format!("after restart {cycle}: the queue is gone"));
            Value::Null
        }
        Answer::Refused(e) => bail!("GetQueueAttributes refused after restart {cycle}: {e}"),
        Answer::Unknown(e) => bail!("GetQueueAttributes got no answer after restart {cycle}: {e}"),
    };
    let count = |k: &str| -> usize {
        counts["Attributes"][k]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let in_queue = count("ApproximateNumberOfMessages")
        + count("ApproximateNumberOfMessagesNotVisible")
        + count("ApproximateNumberOfMessagesDelayed");
    {
        let l = sh.ledger();
        let must = l.sent_acked.difference(&l.delete_tried).count();
        let may = l.sent.difference(&l.delete_acked).count();
        if in_queue < must {
            v.lost += must - in_queue;
            v.note(format!(
                "after restart {cycle}: {in_queue} messages in the queue, but {must} acknowledged ones were never deleted"
            ));
        }
        if in_queue > may {
            v.resurrected += in_queue - may;
            v.note(format!(
                "after restart {cycle}: {in_queue} messages in the queue, at most {may} can exist"
            ));
        }
    }
    let items = match scan(&mut c).await {
        Ok(items) => items,
        // The table itself is gone: every write to it is lost (counted below).
        Err(e) if e.to_string().contains("ResourceNotFound") => {
            v.note(format!("after restart {cycle}: the table is gone"));
            HashMap::new()
        }
        Err(e) => return Err(e),
    };
    let l = sh.ledger();
    for (n, value) in &l.puts_acked {
        let got = items
            .get(&format!("p-{n}"))
            .and_then(|i| i["v"]["N"].as_str().map(str::to_owned));
        if got.as_deref() != Some(value.to_string().as_str()) {
            v.lost_writes += 1;
            v.note(format!(
                "after restart {cycle}: acknowledged PutItem p-{n} = {value} reads {got:?}"
            ));
        }
    }
    for (w, (acked, tried)) in &l.updates {
        let got: u64 = items
            .get(&format!("u-{w}"))
            .and_then(|i| i["v"]["N"].as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0);
        if got < *acked || got > *tried {
            v.lost_writes += 1;
            v.note(format!(
                "after restart {cycle}: counter u-{w} reads {got}, acknowledged {acked}, tried up to {tried}"
            ));
        }
    }
    let mut complete = 0u64;
    for n in &l.tx_tried {
        let a = items.contains_key(&format!("t-{n}-a"));
        let b = items.contains_key(&format!("t-{n}-b"));
        if a != b {
            v.torn_tx += 1;
            v.note(format!(
                "after restart {cycle}: transaction {n} is torn (a: {a}, b: {b})"
            ));
        }
        if a && b {
            complete += 1;
        }
        if l.tx_acked.contains(n) && !(a && b) {
            v.lost_writes += 1;
            v.note(format!(
                "after restart {cycle}: acknowledged transaction {n} is missing"
            ));
        }
    }
    let counter: u64 = items
        .get("tx-count")
        .and_then(|i| i["c"]["N"].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0);
    if counter != complete {
        v.torn_tx += 1;
        v.note(format!(
            "after restart {cycle}: the transactions' counter reads {counter}, {complete} transactions are complete"
        ));
    }
    Ok(())
}

/// Every item of the table by key (all pages).
async fn scan(c: &mut Conn) -> anyhow::Result<HashMap<String, Value>> {
    let mut items = HashMap::new();
    let mut start: Option<Value> = None;
    loop {
        let mut req = json!({"TableName": TABLE});
        if let Some(s) = start.take() {
            req["ExclusiveStartKey"] = s;
        }
        let page = match c.call("DynamoDB_20120810.Scan", &req).await {
            Answer::Ok(p) => p,
            Answer::Refused(e) => bail!("Scan refused: {e}"),
            Answer::Unknown(e) => bail!("Scan got no answer: {e}"),
        };
        for it in page["Items"].as_array().into_iter().flatten() {
            if let Some(pk) = it["pk"]["S"].as_str() {
                items.insert(pk.to_owned(), it.clone());
            }
        }
        match page.get("LastEvaluatedKey") {
            Some(k) if !k.is_null() => start = Some(k.clone()),
            _ => return Ok(items),
        }
    }
}

/// Receive everything left; every message that must exist is among it, and no message whose
/// delete was acknowledged.
async fn drain(addr: &str, sh: &Shared, v: &mut Violations) -> anyhow::Result<()> {
    let mut c = Conn::open(addr).await.context("connecting for the drain")?;
    let mut seen = HashSet::new();
    let mut empty = 0;
    while empty < 3 {
        let sent_at = now_ms();
        let msgs = match c
            .call(
                "AmazonSQS.ReceiveMessage",
                &json!({"QueueUrl": sh.queue_url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 3600}),
            )
            .await
        {
            Answer::Ok(a) => a["Messages"].as_array().cloned().unwrap_or_default(),
            // The queue is gone: nothing to drain, and every message that must exist is lost.
            Answer::Refused(e) if e.contains("QueueDoesNotExist") => Vec::new(),
            Answer::Refused(e) => bail!("drain: ReceiveMessage refused: {e}"),
            Answer::Unknown(e) => bail!("drain: ReceiveMessage got no answer: {e}"),
        };
        let answered_at = now_ms();
        if msgs.is_empty() {
            empty += 1;
            continue;
        }
        let mut l = sh.ledger();
        for m in msgs {
            let Some(id) = m["Body"]
                .as_str()
                .and_then(|b| b.strip_prefix("m-"))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            l.receives.push(Receive {
                msg: id,
                handle: m["ReceiptHandle"].as_str().unwrap_or_default().to_owned(),
                sent_at,
                answered_at,
            });
            seen.insert(id);
        }
    }
    let l = sh.ledger();
    for id in l.sent_acked.difference(&l.delete_tried) {
        if !seen.contains(id) {
            v.lost += 1;
            v.note(format!(
                "message m-{id} was acknowledged, never deleted, and is gone"
            ));
        }
    }
    for id in seen.intersection(&l.delete_acked) {
        v.resurrected += 1;
        v.note(format!(
            "message m-{id} came back after its delete was acknowledged"
        ));
    }
    for id in seen.difference(&l.sent) {
        v.resurrected += 1;
        v.note(format!("message m-{id} was never sent"));
    }
    Ok(())
}

/// A second delivery answered before the first receive was sent plus the visibility timeout
/// (so certainly inside it), with no visibility change tried on the first delivery.
fn check_duplicates(sh: &Shared, v: &mut Violations) {
    let l = sh.ledger();
    let vt_ms = u64::from(sh.vt) * 1000;
    let mut by_msg: HashMap<u64, Vec<&Receive>> = HashMap::new();
    for r in &l.receives {
        by_msg.entry(r.msg).or_default().push(r);
    }
    for (id, mut rs) in by_msg {
        rs.sort_by_key(|r| r.answered_at);
        for pair in rs.windows(2) {
            let (first, second) = (pair[0], pair[1]);
            if l.visibility_changed.contains(&first.handle) {
                continue;
            }
            if second.answered_at < first.sent_at + vt_ms {
                v.dup_in_visibility += 1;
                v.note(format!(
                    "message m-{id} delivered at {} and again at {} (visibility timeout {} s)",
                    first.answered_at, second.answered_at, sh.vt
                ));
            }
        }
    }
}
