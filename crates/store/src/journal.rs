//! The group-commit journal: how every engine makes its changes durable.
//!
//! Engines keep their working state in memory (so reads and receives never touch the disk and
//! their cost does not grow with the amount of data) and describe every change as a
//! [`Record`]. Records go to one journal thread, which applies everything that queued up while
//! the previous commit was running as one transaction on the [`Backend`] (one fsync for many
//! requests: group commit), then resolves the [`Ticket`]s. A request is acknowledged only after
//! its ticket resolves.
//!
//! Ordering: engines submit records while still holding their own lock, so the journal order
//! equals the order in which changes were applied in memory. A ticket resolving therefore means
//! that every earlier change is durable too.
//!
//! In memory (`kedge serve --in-memory`) there is nothing to make durable and no thread: a
//! ticket is ready as soon as it is made.
//!
//! Fail-stop: after the first failed commit the journal refuses all further work. The in-memory
//! state may then be ahead of the disk, and the only honest answer is an error until restart
//! (recovery rebuilds memory from the disk).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use crate::StoreError;

/// One durable change. Each engine owns its variant.
#[derive(Debug, Clone)]
pub enum Record {
    Queue(crate::queue::persist::QueueRecord),
    Table(crate::table_record::TableRecord),
}

/// Where committed records go. The SQLite backend is the real one; tests inject failures.
pub trait Backend: Send + 'static {
    /// Make `batch` durable atomically: all of it or none of it.
    fn commit(&mut self, batch: &[Record]) -> Result<(), BackendError>;
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

impl From<rusqlite::Error> for BackendError {
    fn from(e: rusqlite::Error) -> Self {
        BackendError(e.to_string())
    }
}

/// A backend that keeps nothing: the explicit `--in-memory` mode.
pub struct NullBackend;

impl Backend for NullBackend {
    fn commit(&mut self, _batch: &[Record]) -> Result<(), BackendError> {
        Ok(())
    }
}

struct Entry {
    records: Vec<Record>,
    done: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

#[derive(Default)]
struct Shared {
    failed: AtomicBool,
    commits: AtomicU64,
    records: AtomicU64,
}

/// Handle to the journal thread. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    /// To the journal thread; `None` in memory, where there is nothing to wait for and every
    /// ticket is ready at once (no thread, no hand-off per request).
    tx: Option<std::sync::mpsc::Sender<Entry>>,
    shared: Arc<Shared>,
    in_memory: bool,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("failed", &self.is_failed())
            .field("in_memory", &self.in_memory)
            .finish()
    }
}

/// The most records one transaction takes; bounds commit latency under extreme load.
const MAX_BATCH_RECORDS: usize = 50_000;

impl Journal {
    /// Start the journal thread over `backend`. The thread ends when every handle is dropped.
    /// In memory (`in_memory`, the backend then keeps nothing) no thread is started.
    pub fn start(mut backend: Box<dyn Backend>, in_memory: bool) -> Journal {
        let shared = Arc::new(Shared::default());
        if in_memory {
            return Journal {
                tx: None,
                shared,
                in_memory,
            };
        }
        let (tx, rx) = std::sync::mpsc::channel::<Entry>();
        let sh = shared.clone();
        std::thread::Builder::new()
            .name("kedge-journal".into())
            .spawn(move || {
                let mut batch: Vec<Record> = Vec::new();
                let mut waiters = Vec::new();
                while let Ok(first) = rx.recv() {
                    batch.extend(first.records);
                    waiters.push(first.done);
                    while batch.len() < MAX_BATCH_RECORDS {
                        match rx.try_recv() {
                            Ok(e) => {
                                batch.extend(e.records);
                                waiters.push(e.done);
                            }
                            Err(_) => break,
                        }
                    }
                    let result = if sh.failed.load(Ordering::SeqCst) {
                        Err(StoreError::Unavailable(
                            "storage failed earlier; restart kedge serve to recover".into(),
                        ))
                    } else if batch.is_empty() {
                        // Only barriers: everything before them was committed by earlier
                        // batches.
                        Ok(())
                    } else {
                        match backend.commit(&batch) {
                            Ok(()) => {
                                sh.commits.fetch_add(1, Ordering::Relaxed);
                                sh.records.fetch_add(batch.len() as u64, Ordering::Relaxed);
                                Ok(())
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "journal commit failed; refusing further writes");
                                sh.failed.store(true, Ordering::SeqCst);
                                Err(StoreError::Unavailable(format!("storage commit failed: {e}")))
                            }
                        }
                    };
                    batch.clear();
                    for w in waiters.drain(..) {
                        let _ = w.send(result.clone());
                    }
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| {
                // Without a journal thread nothing can be made durable: fail every request.
                tracing::error!(error = %e, "could not start the journal thread");
                shared.failed.store(true, Ordering::SeqCst);
            });
        Journal {
            tx: Some(tx),
            shared,
            in_memory,
        }
    }

    /// Queue `records` for the next commit. Call while holding the engine lock that applied
    /// them, so journal order equals apply order.
    pub fn submit(&self, records: Vec<Record>) -> Ticket {
        if records.is_empty() {
            return Ticket::ready(self.check());
        }
        let Some(tx) = &self.tx else {
            self.shared.commits.fetch_add(1, Ordering::Relaxed);
            self.shared
                .records
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            return Ticket::ready(Ok(()));
        };
        let (done, rx) = tokio::sync::oneshot::channel();
        if tx.send(Entry { records, done }).is_err() {
            return Ticket::ready(Err(StoreError::Unavailable("journal stopped".into())));
        }
        Ticket {
            inner: TicketInner::Pending(rx),
        }
    }

    /// A ticket that resolves once every change submitted before it is durable (for an
    /// answer that changes nothing but must not run ahead of the changes it reports).
    pub fn barrier(&self) -> Ticket {
        let Some(tx) = &self.tx else {
            return Ticket::ready(Ok(()));
        };
        let (done, rx) = tokio::sync::oneshot::channel();
        if tx
            .send(Entry {
                records: Vec::new(),
                done,
            })
            .is_err()
        {
            return Ticket::ready(Err(StoreError::Unavailable("journal stopped".into())));
        }
        Ticket {
            inner: TicketInner::Pending(rx),
        }
    }

    /// An error if the journal has failed (fail-stop), else Ok.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.is_failed() {
            Err(StoreError::Unavailable(
                "storage failed earlier; restart kedge serve to recover".into(),
            ))
        } else {
            Ok(())
        }
    }

    pub fn is_failed(&self) -> bool {
        self.shared.failed.load(Ordering::SeqCst)
    }

    pub fn is_in_memory(&self) -> bool {
        self.in_memory
    }

    /// (commits, records) made durable so far (in memory: submissions and their records);
    /// exported as metrics.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.shared.commits.load(Ordering::Relaxed),
            self.shared.records.load(Ordering::Relaxed),
        )
    }
}

/// Resolves once the records it stands for are durable (or the journal failed).
#[must_use = "a change is acknowledged only after its ticket resolves"]
#[derive(Debug)]
pub struct Ticket {
    inner: TicketInner,
}

#[derive(Debug)]
enum TicketInner {
    Ready(Option<Result<(), StoreError>>),
    Pending(tokio::sync::oneshot::Receiver<Result<(), StoreError>>),
}

impl Ticket {
    pub fn ready(r: Result<(), StoreError>) -> Ticket {
        Ticket {
            inner: TicketInner::Ready(Some(r)),
        }
    }

    /// Block the current thread until durable (for tests and non-async callers).
    pub fn wait(self) -> Result<(), StoreError> {
        match self.inner {
            TicketInner::Ready(r) => r.unwrap_or(Ok(())),
            TicketInner::Pending(rx) => rx
                .blocking_recv()
                .unwrap_or_else(|_| Err(StoreError::Unavailable("journal stopped".into()))),
        }
    }
}

impl Future for Ticket {
    type Output = Result<(), StoreError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.inner {
            TicketInner::Ready(r) => Poll::Ready(r.take().unwrap_or(Ok(()))),
            TicketInner::Pending(rx) => Pin::new(rx).poll(cx).map(|r| {
                r.unwrap_or_else(|_| Err(StoreError::Unavailable("journal stopped".into())))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A backend whose every commit waits for the test to let it through.
    struct Gated {
        started: mpsc::Sender<usize>,
        go: mpsc::Receiver<()>,
    }

    impl Backend for Gated {
        fn commit(&mut self, batch: &[Record]) -> Result<(), BackendError> {
            let _ = self.started.send(batch.len());
            self.go.recv().map_err(|_| BackendError("test over".into()))
        }
    }

    fn record() -> Record {
        Record::Queue(crate::queue::persist::QueueRecord::Meta {
            next_seq: 1,
            next_queue_id: 1,
        })
    }

    fn pending(t: &mut Ticket) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        Pin::new(t).poll(&mut cx).is_pending()
    }

    #[test]
    fn in_memory_tickets_are_ready_at_once_and_counted() {
        let j = Journal::start(Box::new(NullBackend), true);
        let mut t = j.submit(vec![record(), record()]);
        assert!(!pending(&mut t));
        let mut b = j.barrier();
        assert!(!pending(&mut b));
        assert_eq!(j.stats(), (1, 2));
    }

    #[test]
    fn a_barrier_resolves_once_everything_before_it_is_durable() {
        let (started, commits) = mpsc::channel();
        let (go, gate) = mpsc::channel();
        let j = Journal::start(Box::new(Gated { started, go: gate }), false);
        let mut write = j.submit(vec![record()]);
        assert_eq!(commits.recv_timeout(Duration::from_secs(30)), Ok(1));
        let mut barrier = j.barrier();
        assert!(pending(&mut write) && pending(&mut barrier));
        go.send(()).unwrap();
        write.wait().unwrap();
        // The barrier commits nothing of its own.
        barrier.wait().unwrap();
        assert!(commits.try_recv().is_err());
        assert_eq!(j.stats(), (1, 1));
    }
}
