//! A throwaway Kubernetes control plane on loopback: etcd, kube-apiserver and (optionally)
//! kube-controller-manager and kube-scheduler, started from a directory of binaries built by
//! `../shared/k8s/build-control-plane.sh` (the same flags as its `up.sh`).
//!
//! Used by the integration tests (through `KEDGE_K8S_BIN`) and by `kedge bench operator`.
//! The ports are fixed (2379/2380/6443/10257/10259), so one control plane runs per machine at a
//! time: [`ControlPlane::start`] takes an exclusive lock on `/tmp/kedge-k8s.lock` first and
//! holds it until the control plane is dropped (or the process exits). The child processes are
//! started from a dedicated thread that never exits, with `PR_SET_PDEATHSIG`, so they die with
//! the process even when a test run is killed.

use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

/// The bearer token of the `admin` user (group `system:masters`).
pub const ADMIN_TOKEN: &str = "kedge-admin-token";
pub const SERVER: &str = "https://127.0.0.1:6443";

/// A running control plane; stopped on drop.
pub struct ControlPlane {
    dir: tempfile::TempDir,
    children: Mutex<Vec<Child>>,
    _lock: File,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Missing(String),
    #[error("starting {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the control plane did not become ready: {0}")]
    NotReady(String),
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> StartError + '_ {
    move |source| StartError::Io {
        what: what.to_string(),
        source,
    }
}

/// Spawns processes from one long-lived thread, so `PR_SET_PDEATHSIG` (which fires when the
/// *thread* that forked exits) only fires when the whole process goes away.
fn spawn_keeper(cmd: Command) -> std::io::Result<Child> {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static KEEPER: Mutex<Option<mpsc::Sender<Job>>> = Mutex::new(None);
    let mut guard = KEEPER.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("kedge-k8s-keeper".into())
            .spawn(move || {
                while let Ok((mut cmd, reply)) = rx.recv() {
                    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and
                    // exec.
                    unsafe {
                        cmd.pre_exec(|| {
                            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                            Ok(())
                        });
                    }
                    let _ = reply.send(cmd.spawn());
                }
                // Keep the thread alive for the children's sake.
                loop {
                    std::thread::park();
                }
            })?;
        *guard = Some(tx);
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    guard
        .as_ref()
        .expect("keeper started")
        .send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("keeper thread gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("keeper thread gone"))?
}

impl ControlPlane {
    /// Start etcd + kube-apiserver from `bin` (which holds `kube-apiserver`, and with
    /// `controllers` also `kube-controller-manager` and `kube-scheduler`; `etcd` is taken from
    /// `bin` or `PATH`). Blocks until `/readyz` answers (at most 90 s).
    pub fn start(bin: &Path, controllers: bool) -> Result<ControlPlane, StartError> {
        let apiserver = bin.join("kube-apiserver");
        if !apiserver.is_file() {
            return Err(StartError::Missing(format!(
                "{} not found (build it with W=<dir> ../shared/k8s/build-control-plane.sh)",
                apiserver.display()
            )));
        }
        let etcd = if bin.join("etcd").is_file() {
            bin.join("etcd")
        } else {
            which("etcd").ok_or_else(|| {
                StartError::Missing("etcd not found on PATH (apt-get install etcd-server)".into())
            })?
        };
        let lock = File::create("/tmp/kedge-k8s.lock").map_err(io("/tmp/kedge-k8s.lock"))?;
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
            return Err(io("flock")(std::io::Error::last_os_error()));
        }
        // Holding the lock, every earlier control plane's process is gone: clear its files.
        if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("kedge-k8s-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("kedge-k8s-")
            .tempdir()
            .map_err(io("temp dir"))?;
        let d = dir.path();
        std::fs::create_dir_all(d.join("pki")).map_err(io("pki dir"))?;
        let sa_key = d.join("pki/sa.key");
        let sa_pub = d.join("pki/sa.pub");
        run_ok(
            Command::new("openssl")
                .args(["genrsa", "-out"])
                .arg(&sa_key)
                .arg("2048"),
        )?;
        run_ok(
            Command::new("openssl")
                .args(["rsa", "-in"])
                .arg(&sa_key)
                .args(["-pubout", "-out"])
                .arg(&sa_pub),
        )?;
        std::fs::write(
            d.join("pki/tokens.csv"),
            format!("{ADMIN_TOKEN},admin,admin,system:masters\n"),
        )
        .map_err(io("tokens.csv"))?;
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: local, cluster: {{server: \"{SERVER}\", insecure-skip-tls-verify: true}}}}]\nusers: [{{name: admin, user: {{token: {ADMIN_TOKEN}}}}}]\ncontexts: [{{name: local, context: {{cluster: local, user: admin, namespace: default}}}}]\ncurrent-context: local\n"
        );
        std::fs::write(d.join("kubeconfig"), kubeconfig).map_err(io("kubeconfig"))?;

        let cp = ControlPlane {
            children: Mutex::new(Vec::new()),
            _lock: lock,
            dir,
        };
        let d = cp.dir.path().to_path_buf();
        let log = |name: &str| -> Result<Stdio, StartError> {
            Ok(Stdio::from(
                File::create(d.join(format!("{name}.log"))).map_err(io("log file"))?,
            ))
        };
        let mut etcd_cmd = Command::new(&etcd);
        etcd_cmd
            .arg("--data-dir")
            .arg(d.join("etcd"))
            .args([
                "--listen-client-urls=http://127.0.0.1:2379",
                "--advertise-client-urls=http://127.0.0.1:2379",
                "--listen-peer-urls=http://127.0.0.1:2380",
                "--initial-advertise-peer-urls=http://127.0.0.1:2380",
                "--initial-cluster=default=http://127.0.0.1:2380",
                "--unsafe-no-fsync",
            ])
            .stdout(log("etcd")?)
            .stderr(log("etcd.err")?);
        cp.spawn("etcd", etcd_cmd)?;

        let mut api = Command::new(&apiserver);
        api.args([
            "--etcd-servers=http://127.0.0.1:2379",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--secure-port=6443",
        ])
        .arg(format!("--cert-dir={}", d.join("pki").display()))
        .arg(format!(
            "--token-auth-file={}",
            d.join("pki/tokens.csv").display()
        ))
        .arg("--authorization-mode=RBAC")
        .arg(format!("--service-account-key-file={}", sa_pub.display()))
        .arg(format!(
            "--service-account-signing-key-file={}",
            sa_key.display()
        ))
        .args([
            "--service-account-issuer=https://kubernetes.default.svc",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount",
        ])
        .stdout(log("apiserver")?)
        .stderr(log("apiserver.err")?);
        cp.spawn("kube-apiserver", api)?;
        cp.wait_ready()?;
        // The API server generated a CA and a serving certificate for 127.0.0.1 into
        // pki/apiserver.crt (both certificates in one file): verify against it instead of
        // skipping verification.
        let crt = d.join("pki/apiserver.crt");
        if crt.is_file() {
            let verified = format!(
                "apiVersion: v1\nkind: Config\nclusters: [{{name: local, cluster: {{server: \"{SERVER}\", certificate-authority: \"{}\"}}}}]\nusers: [{{name: admin, user: {{token: {ADMIN_TOKEN}}}}}]\ncontexts: [{{name: local, context: {{cluster: local, user: admin, namespace: default}}}}]\ncurrent-context: local\n",
                crt.display()
            );
            std::fs::write(d.join("kubeconfig"), verified).map_err(io("kubeconfig"))?;
        }

        if controllers {
            let kc = d.join("kubeconfig");
            let mut kcm = Command::new(bin.join("kube-controller-manager"));
            kcm.arg(format!("--kubeconfig={}", kc.display()))
                .args([
                    "--bind-address=127.0.0.1",
                    "--secure-port=10257",
                    "--leader-elect=false",
                    "--controllers=*,-nodelifecycle",
                    // The default client-side limit (20 QPS, burst 30) makes creating 1,000
                    // pods take minutes; benchmarks should measure kedge, not that limit.
                    "--kube-api-qps=500",
                    "--kube-api-burst=1000",
                ])
                .arg(format!(
                    "--service-account-private-key-file={}",
                    sa_key.display()
                ))
                .stdout(log("kcm")?)
                .stderr(log("kcm.err")?);
            cp.spawn("kube-controller-manager", kcm)?;
            let mut sched = Command::new(bin.join("kube-scheduler"));
            sched
                .arg(format!("--kubeconfig={}", kc.display()))
                .args([
                    "--bind-address=127.0.0.1",
                    "--secure-port=10259",
                    "--leader-elect=false",
                    "--kube-api-qps=500",
                    "--kube-api-burst=1000",
                ])
                .arg(format!("--authentication-kubeconfig={}", kc.display()))
                .arg(format!("--authorization-kubeconfig={}", kc.display()))
                .stdout(log("scheduler")?)
                .stderr(log("scheduler.err")?);
            cp.spawn("kube-scheduler", sched)?;
        }
        Ok(cp)
    }

    fn spawn(&self, what: &str, cmd: Command) -> Result<(), StartError> {
        let child = spawn_keeper(cmd).map_err(io(what))?;
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(child);
        Ok(())
    }

    fn wait_ready(&self) -> Result<(), StartError> {
        let mut last = String::new();
        for _ in 0..180 {
            let out = Command::new("curl")
                .args(["-sk", "-m", "2", "-H"])
                .arg(format!("Authorization: Bearer {ADMIN_TOKEN}"))
                .arg(format!("{SERVER}/readyz"))
                .output()
                .map_err(io("curl"))?;
            last = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && last.trim() == "ok" {
                return Ok(());
            }
            for c in self
                .children
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter_mut()
            {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(StartError::NotReady(format!(
                        "a control-plane process exited ({status}); logs in {}",
                        self.dir.path().display()
                    )));
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Err(StartError::NotReady(format!(
            "/readyz still answers {last:?} after 90 s; logs in {}",
            self.dir.path().display()
        )))
    }

    /// Path of an admin kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Directory holding the logs of the control-plane processes.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A kube client authenticated as the admin user.
    pub async fn client(&self) -> Result<kube::Client, kube::Error> {
        crate::init_tls();
        let kc = kube::config::Kubeconfig::read_from(self.kubeconfig())
            .map_err(kube::Error::InferKubeconfig)?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .map_err(kube::Error::InferKubeconfig)?;
        kube::Client::try_from(cfg)
    }

    /// Stop every process (also done on drop).
    pub fn stop(&self) {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        for c in children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
        children.clear();
    }

    /// Write a line to a log next to the control-plane logs (test diagnostics).
    pub fn note(&self, line: &str) {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("notes.log"))
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    })
}

fn run_ok(cmd: &mut Command) -> Result<(), StartError> {
    let out = cmd.output().map_err(io("openssl"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(StartError::Missing(format!(
            "{:?} failed: {}",
            cmd,
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}
