//! The scale loops' API permits: a bound on their concurrent API calls (like client-go's
//! QPS/burst limits, it protects the API server and keeps the HTTP/1.1 connection pool — one
//! TLS connection per request in flight — small), served by priority.
//!
//! Two classes share the permits. [`Class::Scale`] is the work the loops exist for: reading a
//! target's `/scale`, marking the victims of a scale-in and writing the count. [`Class::Report`]
//! is what they tell people about it: Events and status. A free permit goes to the longest
//! waiting `Scale` call first, to a `Report` call only when no `Scale` call waits. With one
//! first-come queue, 1,000 objects scaling out at once queued each `/scale` write behind the
//! Events and status writes of every object that had polled before it (measured at 1,000
//! ScaledObjects: a write waited up to 5 s for its permit, its status up to 16 s), so the
//! count reached the target seconds after the decision. Reports cannot starve for long: the
//! loops make at most one `Scale` call per object and poll.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Which queue a call waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `/scale` reads and writes and the victims' marks: served first.
    Scale,
    /// Events and status writes: served when no `Scale` call waits.
    Report,
}

/// A fixed number of permits, handed out by [`Class`] (see the module doc). Cheap to clone.
#[derive(Clone)]
pub struct ApiPermits {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
}

struct State {
    /// Permits nobody holds; while any call waits this is 0.
    free: usize,
    /// Waiting calls by class (`Scale` first), each in arrival order.
    waiting: [VecDeque<oneshot::Sender<Permit>>; 2],
}

/// One call's permit; given back when dropped.
#[must_use = "the permit is given back at once when dropped"]
pub struct Permit {
    /// `None` only for a permit that never counted (see [`Inner::release`]).
    pool: Option<Arc<Inner>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            Inner::release(pool);
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hand a given-back permit to the first waiting call by priority, else keep it free.
    fn release(pool: Arc<Inner>) {
        let mut state = pool.lock();
        for queue in state.waiting.iter_mut() {
            while let Some(waiter) = queue.pop_front() {
                match waiter.send(Permit {
                    pool: Some(pool.clone()),
                }) {
                    Ok(()) => return,
                    // That call stopped waiting: the permit goes to the next (it is not
                    // dropped as a permit, which would give it back again under this lock).
                    Err(mut unused) => unused.pool = None,
                }
            }
        }
        state.free += 1;
    }
}

impl ApiPermits {
    pub fn new(permits: usize) -> ApiPermits {
        ApiPermits {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    free: permits,
                    waiting: [VecDeque::new(), VecDeque::new()],
                }),
            }),
        }
    }

    /// Wait for a permit in `class`'s queue. Cancel-safe: a call that stops waiting takes no
    /// permit with it.
    pub async fn acquire(&self, class: Class) -> Permit {
        let waiting = {
            let mut state = self.inner.lock();
            if state.free > 0 {
                state.free -= 1;
                return Permit {
                    pool: Some(self.inner.clone()),
                };
            }
            let (tx, rx) = oneshot::channel();
            state.waiting[class as usize].push_back(tx);
            rx
        };
        // The sender lives in the pool's queue until a permit is sent: it cannot be dropped
        // unsent while `self` holds the pool.
        waiting.await.unwrap_or(Permit { pool: None })
    }

    /// Permits nobody holds now.
    pub fn available(&self) -> usize {
        self.inner.lock().free
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt as _;

    #[tokio::test]
    async fn a_scale_call_is_served_before_reports_that_waited_longer() {
        let permits = ApiPermits::new(1);
        let held = permits.acquire(Class::Report).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for (i, class) in [Class::Report, Class::Report, Class::Scale, Class::Scale]
            .into_iter()
            .enumerate()
        {
            let (permits, order) = (permits.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let p = permits.acquire(class).await;
                order.lock().unwrap().push(i);
                tokio::task::yield_now().await;
                drop(p);
            }));
            // Each call queues before the next one starts.
            tokio::task::yield_now().await;
        }
        assert!(order.lock().unwrap().is_empty());
        drop(held);
        for w in waiters {
            w.await.unwrap();
        }
        // Scale calls first in their order, then the reports in theirs.
        assert_eq!(*order.lock().unwrap(), [2, 3, 0, 1]);
        assert_eq!(permits.available(), 1);
    }

    #[tokio::test]
    async fn a_call_that_stops_waiting_takes_no_permit() {
        let permits = ApiPermits::new(2);
        let a = permits.acquire(Class::Scale).await;
        let b = permits.acquire(Class::Report).await;
        assert_eq!(permits.available(), 0);
        // Gives up while queued.
        let mut gave_up = Box::pin(permits.acquire(Class::Scale));
        assert!((&mut gave_up).now_or_never().is_none());
        drop(gave_up);
        // Served but never polled again: the permit comes back when the future goes.
        let mut served = Box::pin(permits.acquire(Class::Report));
        assert!((&mut served).now_or_never().is_none());
        drop(a);
        drop(served);
        assert_eq!(permits.available(), 1);
        drop(b);
        assert_eq!(permits.available(), 2);
        // And a later call is served at once.
        let _c = permits.acquire(Class::Report).await;
        assert_eq!(permits.available(), 1);
    }
}
