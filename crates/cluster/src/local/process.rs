//! Pods as OS processes: spawn a consumer, read its status file (busy/idle, what a message
//! costs it), SIGTERM / SIGKILL.
//!
//! Every child is started with `kill_on_drop(true)` and, on Linux, `PR_SET_PDEATHSIG(SIGKILL)`,
//! so no consumer outlives the twin: not on a normal exit, not on Ctrl-C, not even when the
//! twin itself is killed with SIGKILL. Children get their own process group so a Ctrl-C in
//! the terminal reaches the twin only, which then drains them in order.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};
use workload::Status;

use super::Error;

/// How to start one consumer: `program args… --status-file PATH --consumer-id NAME
/// --crash-file PATH` (the crash file exists while a `consumer-crash` fault is active).
#[derive(Debug, Clone)]
pub struct ConsumerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// A running consumer process.
#[derive(Debug)]
pub struct PodProcess {
    child: Child,
    pub pid: u32,
    pub status_file: PathBuf,
    /// What one message costs the consumer (ns) as of the last [`PodProcess::status`] read;
    /// [`NO_FIGURE`] when that read had none. Kept from that read so the figure costs no
    /// read of its own (an atomic because `status` takes `&self`).
    per_message_ns: AtomicU64,
}

/// `per_message_ns` before the consumer has reported a work time.
const NO_FIGURE: u64 = u64::MAX;

/// The file that makes consumers started in `dir` crash (see `kedge consume --crash-file`).
pub fn crash_file(dir: &Path) -> PathBuf {
    dir.join("consumer-crash")
}

impl PodProcess {
    /// Start the consumer for pod `name`; its status file and log go to `dir`.
    pub fn spawn(cmd: &ConsumerCommand, name: &str, dir: &Path) -> Result<PodProcess, Error> {
        let status_file = dir.join(format!("{name}.status"));
        let log =
            std::fs::File::create(dir.join(format!("{name}.log"))).map_err(|e| Error::Spawn {
                pod: name.into(),
                source: e,
            })?;
        let mut c = Command::new(&cmd.program);
        c.args(&cmd.args)
            .arg("--status-file")
            .arg(&status_file)
            .arg("--consumer-id")
            .arg(name)
            .arg("--crash-file")
            .arg(crash_file(dir))
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .process_group(0);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent. The death
        // signal follows the spawning thread: consumers are spawned from the runtime's worker
        // threads, which live as long as the twin.
        unsafe {
            c.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = c.spawn().map_err(|e| Error::Spawn {
            pod: name.into(),
            source: e,
        })?;
        let pid = child.id().unwrap_or(0);
        Ok(PodProcess {
            child,
            pid,
            status_file,
            per_message_ns: AtomicU64::new(NO_FIGURE),
        })
    }

    /// Busy unless the status file says `idle` (a missing or unreadable file counts as busy,
    /// as the contract requires). The same read refreshes [`PodProcess::per_message`]; a file
    /// that cannot be read leaves the last figure (the consumer's cost has not changed
    /// because its file is being replaced).
    pub fn status(&self) -> Status {
        match workload::read_status_report(&self.status_file) {
            Ok(Some(r)) => {
                let ns = r.per_message().map_or(NO_FIGURE, |d| {
                    u64::try_from(d.as_nanos()).unwrap_or(NO_FIGURE - 1)
                });
                self.per_message_ns.store(ns, Ordering::Relaxed);
                r.status
            }
            _ => Status::Busy,
        }
    }

    /// What one message costs this consumer (its mean work time ÷ its concurrency) as of the
    /// last [`PodProcess::status`]; `None` until its status file has carried a work time.
    pub fn per_message(&self) -> Option<Duration> {
        match self.per_message_ns.load(Ordering::Relaxed) {
            NO_FIGURE => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// `Some(code)` once the process has exited.
    pub fn exited(&mut self) -> Option<Option<i32>> {
        match self.child.try_wait() {
            Ok(Some(s)) => Some(s.code()),
            Ok(None) => None,
            Err(_) => Some(None),
        }
    }

    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    pub fn signal(&self, sig: i32) {
        if self.pid != 0 {
            // SAFETY: plain syscall; the pid is our own child, not yet reaped (we hold the
            // Child and reap only through it), so it cannot have been reused.
            unsafe {
                libc::kill(self.pid as i32, sig);
            }
        }
    }

    /// Wait for the process to exit.
    pub async fn wait(&mut self) {
        let _ = self.child.wait().await;
    }
}
