//! Where log lines go.
//!
//! Two outputs, each with its own filter, both set up once at start:
//! - the **console** (stderr): coloured only when stderr is a terminal (`NO_COLOR` turns
//!   colour off, `CLICOLOR_FORCE=1` on). It can be muted while a full-screen view owns the
//!   terminal ([`mute_console`]): a log line written under a ratatui screen splits it.
//! - a **log file**, plain text, opened later ([`to_file`]: `kedge up` writes `kedge.log` in its
//!   report directory) or at start from `KEDGE_LOG_FILE` (what `kedge up` hands its consumer
//!   processes, so their lines land in the same file, each prefixed with the consumer's name).
//!   The file is opened for appending: every line is one `write` of a whole event, so lines
//!   from several processes interleave but are never cut.
//!
//! Filters: `--log-level` / `KEDGE_LOG` when given, otherwise `info`; `kedge up` keeps the console
//! at `warn` unless a filter was asked for, so its status lines stay readable, and writes `info`
//! to the file.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// The environment variable naming a log file (appended to) instead of stderr.
pub const LOG_FILE_ENV: &str = "KEDGE_LOG_FILE";

static CONSOLE_MUTED: AtomicBool = AtomicBool::new(false);
static FILE: Mutex<Option<LogFile>> = Mutex::new(None);

struct LogFile {
    file: File,
    /// Put before every line (`c-3 | `): which process wrote it.
    prefix: String,
}

/// What the command wants from logging.
pub struct Setup<'a> {
    /// `--log-level` / `KEDGE_LOG`, if given.
    pub asked: Option<&'a str>,
    /// The console's filter when none was asked for.
    pub console_default: &'a str,
    /// The command may log to a file later ([`to_file`]); without it, and without
    /// `KEDGE_LOG_FILE`, no file output is set up at all.
    pub file_later: bool,
    /// Lines written to `KEDGE_LOG_FILE` start with this.
    pub file_prefix: Option<String>,
}

fn filter(spec: &str) -> EnvFilter {
    EnvFilter::try_new(spec).unwrap_or_else(|e| {
        eprintln!("kedge: ignoring the log filter {spec:?}: {e}");
        EnvFilter::new("info")
    })
}

/// Colour on the console: only on a terminal, unless `NO_COLOR` / `CLICOLOR_FORCE` say otherwise.
fn console_colour() -> bool {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty() && v != "0");
    if set("NO_COLOR") {
        return false;
    }
    set("CLICOLOR_FORCE") || io::stderr().is_terminal()
}

pub fn init(s: Setup<'_>) {
    let env_file = std::env::var_os(LOG_FILE_ENV).filter(|p| !p.is_empty());
    let mut console_spec = s.asked.unwrap_or(s.console_default).to_string();
    let mut file_spec = if s.file_later {
        s.asked.unwrap_or("info")
    } else {
        "off"
    };
    if let Some(p) = &env_file {
        match open_append(Path::new(p)) {
            Ok(file) => {
                set_file(file, s.file_prefix.clone().unwrap_or_default());
                // One place for the lines: the file. Panics still reach stderr.
                console_spec = "off".into();
                file_spec = s.asked.unwrap_or("info");
            }
            Err(e) => eprintln!(
                "kedge: cannot open {LOG_FILE_ENV}={}: {e}; logging to stderr",
                Path::new(p).display()
            ),
        }
    }
    let console = tracing_subscriber::fmt::layer()
        .with_writer(Console)
        .with_ansi(console_colour())
        .with_filter(filter(&console_spec));
    let file = tracing_subscriber::fmt::layer()
        .with_writer(FileOut)
        .with_ansi(false)
        .with_filter(filter(file_spec));
    tracing_subscriber::registry()
        .with(console)
        .with(file)
        .init();
}

fn open_append(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

fn set_file(file: File, prefix: String) {
    if let Ok(mut f) = FILE.lock() {
        *f = Some(LogFile { file, prefix });
    }
}

/// From now on, write log lines (at the file's filter) to `path` too, appending, each line
/// starting with `prefix` (`kedge | `, beside the consumers' `consumer-3 | `).
pub fn to_file(path: &Path, prefix: &str) -> io::Result<()> {
    set_file(open_append(path)?, prefix.to_string());
    Ok(())
}

/// Stop (or resume) writing log lines to the console; they still go to the file.
pub fn mute_console(muted: bool) {
    CONSOLE_MUTED.store(muted, Ordering::SeqCst);
}

#[derive(Clone, Copy)]
struct Console;

enum ConsoleOut {
    Stderr(io::Stderr),
    Muted,
}

impl Write for ConsoleOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ConsoleOut::Stderr(e) => e.write(buf),
            ConsoleOut::Muted => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            ConsoleOut::Stderr(e) => e.flush(),
            ConsoleOut::Muted => Ok(()),
        }
    }
}

impl<'a> MakeWriter<'a> for Console {
    type Writer = ConsoleOut;
    fn make_writer(&'a self) -> ConsoleOut {
        if CONSOLE_MUTED.load(Ordering::SeqCst) {
            ConsoleOut::Muted
        } else {
            ConsoleOut::Stderr(io::stderr())
        }
    }
}

#[derive(Clone, Copy)]
struct FileOut;

/// One event's text; written to the file (prefix and all) in one `write` when dropped.
struct FileLine(Vec<u8>);

impl Write for FileLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for FileLine {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        if let Ok(mut guard) = FILE.lock()
            && let Some(f) = guard.as_mut()
        {
            let mut line = Vec::with_capacity(f.prefix.len() + self.0.len());
            line.extend_from_slice(f.prefix.as_bytes());
            line.extend_from_slice(&self.0);
            // Nowhere left to report a failed log write.
            let _ = f.file.write_all(&line);
        }
    }
}

impl<'a> MakeWriter<'a> for FileOut {
    type Writer = FileLine;
    fn make_writer(&'a self) -> FileLine {
        FileLine(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_lines_carry_the_prefix_and_are_written_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kedge.log");
        to_file(&path, "consumer-3 | ").expect("open");
        {
            let mut w = FileOut.make_writer();
            // fmt writes an event in pieces sometimes; the file gets one line.
            w.write_all(b"2026-01-01T00:00:00Z  INFO x: ")
                .expect("write");
            w.write_all(b"hello\n").expect("write");
        }
        mute_console(true);
        assert!(matches!(Console.make_writer(), ConsoleOut::Muted));
        mute_console(false);
        assert!(matches!(Console.make_writer(), ConsoleOut::Stderr(_)));
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "consumer-3 | 2026-01-01T00:00:00Z  INFO x: hello\n");
    }
}
