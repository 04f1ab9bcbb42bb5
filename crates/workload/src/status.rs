//! The consumer's busy/idle status file (the contract is described in the crate docs).

use std::path::{Path, PathBuf};

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
    /// The file's content without the trailing newline: `busy` or `idle`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Idle => "idle",
            Status::Busy => "busy",
        }
    }

    /// Parses a status file's content; surrounding whitespace is ignored.
    pub fn parse(s: &str) -> Option<Status> {
        match s.trim() {
            "idle" => Some(Status::Idle),
            "busy" => Some(Status::Busy),
            _ => None,
        }
    }
}

/// Reads a consumer's status file. `Ok(None)` if it does not exist yet or holds something
/// else (a reader should then treat the consumer as busy: deleting it first is not safe).
pub fn read_status_file(path: &Path) -> std::io::Result<Option<Status>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Status::parse(&s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the status file on transitions only, atomically (write a sibling, rename over).
#[derive(Debug)]
pub(crate) struct StatusFile {
    path: PathBuf,
    tmp: PathBuf,
    last: Option<Status>,
}

impl StatusFile {
    pub(crate) fn new(path: PathBuf) -> StatusFile {
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        StatusFile {
            path,
            tmp: tmp.into(),
            last: None,
        }
    }

    /// Records `s` unless it is already recorded. A reader never sees a torn or empty file:
    /// rename is atomic on POSIX file systems.
    pub(crate) async fn set(&mut self, s: Status) -> Result<(), Error> {
        if self.last == Some(s) {
            return Ok(());
        }
        let io = |source| Error::StatusFile {
            path: self.path.clone(),
            source,
        };
        tokio::fs::write(&self.tmp, format!("{}\n", s.as_str()))
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
        let mut f = StatusFile::new(path.clone());
        f.set(Status::Idle).await.expect("write");
        assert_eq!(read_status_file(&path).expect("read"), Some(Status::Idle));
        f.set(Status::Busy).await.expect("write");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "busy\n",
            "the documented format"
        );
        // No write when nothing changed: removing the file proves it is not rewritten.
        std::fs::remove_file(&path).expect("rm");
        f.set(Status::Busy).await.expect("write");
        assert_eq!(read_status_file(&path).expect("read"), None);
        assert_eq!(Status::parse(" idle \n"), Some(Status::Idle));
        assert_eq!(Status::parse("busy-ish"), None);
    }
}
