//! The consumer's status file: busy/idle, and what a message costs it (the contract is
//! described in the crate docs).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Error;

/// Whether a consumer holds messages right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    /// Holds no message: waiting in a receive, between batches, or stopped. Terminating an
    /// idle consumer loses no work.
    #[default]
    Idle,
    /// Holds at least one received message it has not yet deleted or given back.
    Busy,
}

impl Status {
    /// The file's first line without its newline: `busy` or `idle`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Idle => "idle",
            Status::Busy => "busy",
        }
    }

    /// Parses a status file's content: its first line decides, surrounding whitespace is
    /// ignored, and the `key value` lines after it (see [`StatusReport`]) do not matter here.
    pub fn parse(s: &str) -> Option<Status> {
        match s.trim_start().lines().next().map(str::trim) {
            Some("idle") => Some(Status::Idle),
            Some("busy") => Some(Status::Busy),
            _ => None,
        }
    }
}

/// Everything a status file says: the status, and once the consumer has finished a message,
/// its mean work time per message and its concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusReport {
    pub status: Status,
    /// Mean wall time one message takes from the start of its work until it is deleted
    /// (`work-ms`); `None` until one is finished, or in a file of the one-line format.
    pub work: Option<Duration>,
    /// Messages worked on at once (`concurrency`); 1 when the file does not say.
    pub concurrency: u32,
}

impl StatusReport {
    /// Parses a status file's content: `None` unless the first line is `busy` or `idle`. Of
    /// the lines after it, `work-ms N` (N ≥ 1) and `concurrency N` (N ≥ 1) are read; others,
    /// and malformed values, are ignored, so a newer writer does not break an older reader.
    pub fn parse(s: &str) -> Option<StatusReport> {
        let status = Status::parse(s)?;
        let mut r = StatusReport {
            status,
            work: None,
            concurrency: 1,
        };
        for line in s.trim_start().lines().skip(1) {
            let Some((key, value)) = line.trim().split_once(' ') else {
                continue;
            };
            let n = value.trim().parse::<u64>().ok().filter(|&n| n > 0);
            match (key, n) {
                ("work-ms", Some(ms)) => r.work = Some(Duration::from_millis(ms)),
                ("concurrency", Some(c)) => r.concurrency = u32::try_from(c).unwrap_or(u32::MAX),
                _ => {}
            }
        }
        Some(r)
    }

    /// What one message costs the consumer: its work time ÷ its concurrency (the engine's
    /// `ConsumerPod::per_message`). `None` until it has reported a work time.
    pub fn per_message(&self) -> Option<Duration> {
        Some(self.work? / self.concurrency.max(1))
    }

    /// The file's content: the status line, then `work-ms` and `concurrency` once the work
    /// time is known (rounded to whole milliseconds, at least 1).
    fn render(&self) -> String {
        let mut s = format!("{}\n", self.status.as_str());
        if let Some(w) = self.work {
            s.push_str(&format!(
                "work-ms {}\nconcurrency {}\n",
                whole_millis(w),
                self.concurrency
            ));
        }
        s
    }
}

/// `d` rounded to whole milliseconds, at least 1: how the work time is published (status file,
/// `kedge.dev/work-time`), where 0 would read as "not a positive duration".
pub(crate) fn whole_millis(d: Duration) -> u64 {
    let ms = (d.as_nanos() + 500_000) / 1_000_000;
    u64::try_from(ms).unwrap_or(u64::MAX).max(1)
}

/// Reads a consumer's status file. `Ok(None)` if it does not exist yet or holds something
/// else (a reader should then treat the consumer as busy: deleting it first is not safe).
pub fn read_status_file(path: &Path) -> std::io::Result<Option<Status>> {
    Ok(read_status_report(path)?.map(|r| r.status))
}

/// Reads a consumer's status file with what it says beyond busy/idle; `Ok(None)` as for
/// [`read_status_file`].
pub fn read_status_report(path: &Path) -> std::io::Result<Option<StatusReport>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(StatusReport::parse(&s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the status file on transitions only, atomically (write a sibling, rename over).
#[derive(Debug)]
pub(crate) struct StatusFile {
    path: PathBuf,
    tmp: PathBuf,
    concurrency: u32,
    last: Option<Status>,
}

impl StatusFile {
    pub(crate) fn new(path: PathBuf, concurrency: usize) -> StatusFile {
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        StatusFile {
            path,
            tmp: tmp.into(),
            concurrency: u32::try_from(concurrency).unwrap_or(u32::MAX),
            last: None,
        }
    }

    /// Records `s`, with the mean work time per message `work` as it is now, unless `s` is
    /// already recorded: a change of the mean alone is not worth a write, and a working
    /// consumer changes status between batches anyway. A reader never sees a torn or empty
    /// file: rename is atomic on POSIX file systems.
    pub(crate) async fn set(&mut self, s: Status, work: Option<Duration>) -> Result<(), Error> {
        if self.last == Some(s) {
            return Ok(());
        }
        let io = |source| Error::StatusFile {
            path: self.path.clone(),
            source,
        };
        let report = StatusReport {
            status: s,
            work,
            concurrency: self.concurrency,
        };
        tokio::fs::write(&self.tmp, report.render())
            .await
            .map_err(io)?;
        tokio::fs::rename(&self.tmp, &self.path).await.map_err(io)?;
        self.last = Some(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn status_file_holds_the_latest_state_and_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("status");
        assert_eq!(read_status_file(&path).expect("read"), None);
        let mut f = StatusFile::new(path.clone(), 4);
        f.set(Status::Idle, None).await.expect("write");
        assert_eq!(read_status_file(&path).expect("read"), Some(Status::Idle));
        f.set(Status::Busy, None).await.expect("write");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "busy\n",
            "no work time yet: the one-line format"
        );
        // No write when nothing changed: removing the file proves it is not rewritten.
        std::fs::remove_file(&path).expect("rm");
        f.set(Status::Busy, Some(Duration::from_millis(7)))
            .await
            .expect("write");
        assert_eq!(read_status_file(&path).expect("read"), None);
        assert_eq!(Status::parse(" idle \n"), Some(Status::Idle));
        assert_eq!(Status::parse("busy-ish"), None);
    }

    #[tokio::test]
    async fn the_work_time_rides_along_on_transitions_and_reads_back_per_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("status");
        let mut f = StatusFile::new(path.clone(), 4);
        f.set(Status::Busy, None).await.expect("write");
        f.set(Status::Idle, Some(Duration::from_micros(1_234_400)))
            .await
            .expect("write");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "idle\nwork-ms 1234\nconcurrency 4\n",
            "the documented format"
        );
        let r = read_status_report(&path).expect("read").expect("a report");
        assert_eq!(r.status, Status::Idle);
        assert_eq!(r.work, Some(Duration::from_millis(1234)));
        assert_eq!(r.concurrency, 4);
        assert_eq!(r.per_message(), Some(Duration::from_micros(308_500)));
        // The old reader keeps working on the new format.
        assert_eq!(read_status_file(&path).expect("read"), Some(Status::Idle));
        // Sub-millisecond work is published as 1 ms, not as 0 (which reads as no figure).
        f.set(Status::Busy, Some(Duration::from_micros(300)))
            .await
            .expect("write");
        let r = read_status_report(&path).expect("read").expect("a report");
        assert_eq!(r.work, Some(Duration::from_millis(1)));
    }

    #[test]
    fn reports_parse_the_old_format_and_tolerate_what_they_do_not_know() {
        let old = StatusReport::parse("busy\n").expect("the one-line format");
        assert_eq!(
            (old.status, old.work, old.concurrency),
            (Status::Busy, None, 1)
        );
        assert_eq!(old.per_message(), None);
        // No concurrency line: one message at a time.
        let r = StatusReport::parse("idle\nwork-ms 900\n").expect("parses");
        assert_eq!(r.per_message(), Some(Duration::from_millis(900)));
        // Unknown keys, other order, bad values and zeros are skipped, not fatal.
        let r = StatusReport::parse("busy\nconcurrency 3\nqueue q1\nwork-ms 600\n").expect("ok");
        assert_eq!(r.per_message(), Some(Duration::from_millis(200)));
        let r = StatusReport::parse("busy\nwork-ms 0\nconcurrency 0\n").expect("ok");
        assert_eq!((r.work, r.concurrency), (None, 1));
        let r = StatusReport::parse("busy\nwork-ms 1.5s\nconcurrency x\n").expect("ok");
        assert_eq!((r.work, r.concurrency), (None, 1));
        // The first line still decides whether the file reads at all.
        assert_eq!(StatusReport::parse("work-ms 5\nbusy\n"), None);
        assert_eq!(StatusReport::parse(""), None);
        assert_eq!(Status::parse("busy-ish\nwork-ms 5\n"), None);
        assert_eq!(Status::parse("idle\nwork-ms 5\n"), Some(Status::Idle));
    }

    #[test]
    fn whole_millis_rounds_and_never_says_zero() {
        assert_eq!(whole_millis(Duration::from_micros(1_499)), 1);
        assert_eq!(whole_millis(Duration::from_micros(1_500)), 2);
        assert_eq!(whole_millis(Duration::ZERO), 1);
        assert_eq!(whole_millis(Duration::from_secs(2)), 2000);
    }
}
