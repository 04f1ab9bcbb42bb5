//! A progress bar for long work (`kedge bench` phases, building large runs, long simulations):
//! drawn on stderr when stderr is a terminal, nothing at all when it is a pipe or a file, so
//! the figures a command prints on stdout stay clean either way.
//!
//! ```ignore
//! let bar = Progress::new("send", 200_000);
//! // any number of tasks: the handle is cheap to clone
//! bar.inc(10);
//! bar.finish(); // or drop the last handle: the line is cleared
//! ```
//!
//! Redraws are throttled (at most every 100 ms) and each is one `write` of the whole line, so a
//! hot loop can call `inc` freely. For work measured in time rather than items, use seconds
//! as the unit (`Progress::new("run", secs)` and `set(elapsed)`).

// A progress bar measures the wall clock for people; no decision reads it.
#![allow(clippy::disallowed_methods)]

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REDRAW: Duration = Duration::from_millis(100);

/// A shared progress bar; clones update the same bar.
#[derive(Clone)]
pub struct Progress {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    label: String,
    total: AtomicU64,
    done: AtomicU64,
    start: Instant,
    last_draw: Mutex<Option<Instant>>,
    finished: AtomicBool,
}

impl Progress {
    /// A bar for `total` steps, shown only when stderr is a terminal.
    pub fn new(label: impl Into<String>, total: u64) -> Progress {
        Progress::shown_if(std::io::stderr().is_terminal(), label, total)
    }

    /// A bar that draws nothing (a pipe, or a caller that prints its own status).
    pub fn hidden() -> Progress {
        Progress { inner: None }
    }

    pub fn shown_if(shown: bool, label: impl Into<String>, total: u64) -> Progress {
        if !shown {
            return Progress::hidden();
        }
        let p = Progress {
            inner: Some(Arc::new(Inner {
                label: label.into(),
                total: AtomicU64::new(total),
                done: AtomicU64::new(0),
                start: Instant::now(),
                last_draw: Mutex::new(None),
                finished: AtomicBool::new(false),
            })),
        };
        p.draw(true);
        p
    }

    // Part of the helper's surface for callers to come (kedge simulate); tests use it now.
    #[allow(dead_code)]
    pub fn is_shown(&self) -> bool {
        self.inner.is_some()
    }

    pub fn inc(&self, n: u64) {
        if let Some(i) = &self.inner {
            i.done.fetch_add(n, Ordering::Relaxed);
            self.draw(false);
        }
    }

    pub fn set(&self, done: u64) {
        if let Some(i) = &self.inner {
            i.done.store(done, Ordering::Relaxed);
            self.draw(false);
        }
    }

    // For work whose size is learnt as it goes (a trace read while simulated).
    #[allow(dead_code)]
    pub fn set_total(&self, total: u64) {
        if let Some(i) = &self.inner {
            i.total.store(total, Ordering::Relaxed);
            self.draw(false);
        }
    }

    /// Clear the bar's line (the command's own output follows).
    pub fn finish(&self) {
        if let Some(i) = &self.inner {
            i.clear();
        }
    }

    fn draw(&self, force: bool) {
        let Some(i) = &self.inner else { return };
        if i.finished.load(Ordering::Relaxed) {
            return;
        }
        let now = Instant::now();
        {
            // Another thread drawing right now: skip, the next call draws.
            let Ok(mut last) = i.last_draw.try_lock() else {
                return;
            };
            if !force && last.is_some_and(|l| now.duration_since(l) < REDRAW) {
                return;
            }
            *last = Some(now);
        }
        let width = terminal_width().unwrap_or(80);
        let text = line(
            &i.label,
            i.done.load(Ordering::Relaxed),
            i.total.load(Ordering::Relaxed),
            now.duration_since(i.start),
            width,
        );
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(format!("\r\x1b[2K{text}").as_bytes());
        let _ = e.flush();
    }
}

impl Inner {
    fn clear(&self) {
        if !self.finished.swap(true, Ordering::Relaxed) {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(b"\r\x1b[2K");
            let _ = e.flush();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.clear();
    }
}

fn terminal_width() -> Option<usize> {
    ratatui::crossterm::terminal::size()
        .ok()
        .map(|(w, _)| usize::from(w))
        .filter(|w| *w > 0)
}

/// `1h02m`, `4m05s`, `12s`.
fn dur(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The bar's text for `width` columns: `send  [#########.........]  45%  4500/10000  12s, ~15s left`.
pub fn line(label: &str, done: u64, total: u64, elapsed: Duration, width: usize) -> String {
    let frac = if total == 0 {
        0.0
    } else {
        (done as f64 / total as f64).clamp(0.0, 1.0)
    };
    let eta = if done > 0 && done < total {
        let left = elapsed.as_secs_f64() * (total - done) as f64 / done as f64;
        format!(", ~{} left", dur(Duration::from_secs(left.round() as u64)))
    } else {
        String::new()
    };
    let tail = format!(
        " {:>3.0}%  {done}/{total}  {}{eta}",
        frac * 100.0,
        dur(elapsed)
    );
    let head = format!("{label} ");
    let room = width.saturating_sub(head.chars().count() + tail.chars().count() + 3);
    let bar_w = room.min(40);
    if bar_w < 5 {
        let mut t = format!("{head}{tail}");
        t.truncate(width.saturating_sub(1));
        return t;
    }
    let filled = (frac * bar_w as f64).round() as usize;
    format!(
        "{head}[{}{}]{tail}",
        "#".repeat(filled),
        ".".repeat(bar_w - filled)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_fits_the_terminal_and_says_how_far() {
        let l = line("send", 4500, 10_000, Duration::from_secs(12), 80);
        assert!(l.chars().count() <= 80, "{l}");
        assert!(l.starts_with("send ["), "{l}");
        assert!(l.contains(" 45%  4500/10000  12s, ~15s left"), "{l}");
        let narrow = line("receive+delete", 1, 3, Duration::from_secs(1), 30);
        assert!(narrow.chars().count() < 30, "{narrow}");
        assert!(line("x", 0, 0, Duration::ZERO, 80).contains("  0%"));
        assert!(!line("x", 10, 10, Duration::from_secs(75), 80).contains("left"));
        assert!(line("x", 10, 10, Duration::from_secs(75), 80).contains("1m15s"));
    }

    #[test]
    fn a_hidden_bar_counts_nothing_and_draws_nothing() {
        let p = Progress::hidden();
        p.inc(5);
        p.set(7);
        p.finish();
        assert!(!p.is_shown());
        assert!(!Progress::shown_if(false, "x", 10).is_shown());
    }
}
