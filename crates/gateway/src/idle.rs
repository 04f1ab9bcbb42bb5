//! A connection that sends no request is closed: one that is idle between requests, or has
//! not finished a request's head, for longer than the client timeout (a slow or silent
//! client would otherwise hold its socket, and a file descriptor, for ever).
//!
//! Per request this costs two atomic operations and a clock read: the watch is one timer per
//! connection, re-armed only when it falls due, not a timer per request (hyper's own
//! `header_read_timeout` arms and drops a timer for every request head). A request's body is
//! timed where it is read (`answer`); a request being answered (a 20-second long poll, say)
//! keeps its connection open.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// What the watch reads: requests in flight on the connection and when the last one began or
/// ended.
pub struct Activity {
    origin: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds from `origin` to the last request's start or end.
    last_ms: AtomicU64,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            origin: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// A request has begun; the guard marks its end when dropped (also when the request's
    /// future is dropped unfinished).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }

    /// When the connection may next be closed for idling (`None`: now).
    fn next_check(&self, limit: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Some(Instant::now() + limit);
        }
        let last = self.origin + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        let due = last + limit;
        (due > Instant::now()).then_some(due)
    }
}

/// One request in flight (see [`Activity::begin`]).
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Drive `conn` until it ends, or until no request has begun or ended for `limit` while none
/// was in flight; then drop it (closing the socket) and return `None`.
pub async fn watch<F: Future>(
    conn: F,
    activity: Arc<Activity>,
    limit: Duration,
) -> Option<F::Output> {
    // Instants plus the limit stay far from overflowing.
    let limit = limit.min(Duration::from_secs(365 * 86_400));
    tokio::pin!(conn);
    let check = tokio::time::sleep(limit);
    tokio::pin!(check);
    loop {
        tokio::select! {
            biased;
            out = &mut conn => return Some(out),
            () = &mut check => match activity.next_check(limit) {
                Some(at) => check.as_mut().reset(at),
                None => return None,
            },
        }
    }
}
