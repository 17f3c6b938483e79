//! Bounded heavy work. A request that must look at many features (a filter or sort over a
//! large collection, counting a large box, an uncached low-zoom tile) runs on a blocking
//! thread, at most `concurrent` at once with at most `queue` more waiting; past that it is
//! answered 503 with `Retry-After` at once, never queued without bound. Each has a deadline:
//! past it the scan is told to stop (`Query::cancel`) and the client gets a 503. Cheap requests
//! (one item, a small box, a cached tile) stay on the HTTP workers, which heavy work no longer
//! occupies, so their latency holds while heavy ones run.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ApiError;

#[derive(Debug, Clone, Copy)]
pub struct HeavyOptions {
    /// Heavy requests running at once.
    pub concurrent: usize,
    /// Heavy requests waiting for a turn; one more is refused.
    pub queue: usize,
    /// Longest a heavy request may take, waiting included.
    pub deadline: Duration,
    /// A request that must look at more features than this (by `Snapshot::estimate`) is heavy.
    pub threshold: usize,
}

impl Default for HeavyOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            concurrent: cores,
            queue: 4 * cores,
            deadline: Duration::from_secs(30),
            threshold: 50_000,
        }
    }
}

pub struct HeavyPool {
    options: HeavyOptions,
    permits: tokio::sync::Semaphore,
    /// Running and waiting.
    admitted: AtomicUsize,
    pub rejected: AtomicU64,
    pub timed_out: AtomicU64,
    pub completed: AtomicU64,
}

impl HeavyPool {
    pub fn new(options: HeavyOptions) -> Self {
        let concurrent = options.concurrent.max(1);
        Self {
            options: HeavyOptions {
                concurrent,
                ..options
            },
            permits: tokio::sync::Semaphore::new(concurrent),
            admitted: AtomicUsize::new(0),
            rejected: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            completed: AtomicU64::new(0),
        }
    }

    pub fn is_heavy(&self, estimate: usize) -> bool {
        estimate > self.options.threshold
    }

    /// Heavy requests running or waiting now.
    pub fn admitted(&self) -> usize {
        self.admitted.load(Relaxed)
    }

    /// Runs `work` on a blocking thread under the limits; `cancel` is set when the deadline
    /// passes, and `work` (which reads it through its query) should then stop soon.
    pub async fn run<T: Send + 'static>(
        &self,
        cancel: Arc<AtomicBool>,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let cap = self.options.concurrent + self.options.queue;
        if self.admitted.fetch_add(1, Relaxed) >= cap {
            self.admitted.fetch_sub(1, Relaxed);
            self.rejected.fetch_add(1, Relaxed);
            return Err(ApiError::Overloaded(format!(
                "{cap} heavy requests (large filters, sorts or low-zoom tiles) are running or waiting; try again shortly"
            )));
        }
        let _admitted = Admitted(&self.admitted);
        let started = Instant::now();
        let deadline = self.options.deadline;
        let timed_out = || {
            self.timed_out.fetch_add(1, Relaxed);
            ApiError::Overloaded(format!(
                "the request did not finish within {} s; narrow it (a bbox, a tighter filter) or try later",
                deadline.as_secs()
            ))
        };
        let Ok(Ok(_permit)) = tokio::time::timeout(deadline, self.permits.acquire()).await else {
            return Err(timed_out());
        };
        let left = deadline.saturating_sub(started.elapsed());
        let result = within(left, actix_web::web::block(work)).await;
        match result {
            Some(Ok(value)) => {
                self.completed.fetch_add(1, Relaxed);
                Ok(value)
            }
            Some(Err(e)) => Err(ApiError::Overloaded(format!(
                "the request's work could not run: {e}"
            ))),
            None => {
                cancel.store(true, Relaxed);
                Err(timed_out())
            }
        }
    }
}

async fn within<F: Future>(limit: Duration, f: F) -> Option<F::Output> {
    tokio::time::timeout(limit, f).await.ok()
}

/// Counts a request out of `admitted` however it ends (a client gone mid-wait included).
struct Admitted<'a>(&'a AtomicUsize);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(concurrent: usize, queue: usize, deadline_ms: u64) -> Arc<HeavyPool> {
        Arc::new(HeavyPool::new(HeavyOptions {
            concurrent,
            queue,
            deadline: Duration::from_millis(deadline_ms),
            threshold: 0,
        }))
    }

    #[actix_web::test]
    async fn past_concurrency_and_queue_requests_are_refused_at_once() {
        let p = pool(1, 1, 5_000);
        let gate = Arc::new(std::sync::Barrier::new(2));
        let slow = |gate: Arc<std::sync::Barrier>| {
            move || {
                gate.wait();
            }
        };
        let running = {
            let (p, g) = (p.clone(), gate.clone());
            actix_web::rt::spawn(async move { p.run(Arc::default(), slow(g)).await })
        };
        while p.admitted() < 1 {
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
        let waiting = {
            let p = p.clone();
            actix_web::rt::spawn(async move { p.run(Arc::default(), || 7).await })
        };
        while p.admitted() < 2 {
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
        let t = Instant::now();
        let refused = p.run(Arc::default(), || 1).await;
        assert!(matches!(refused, Err(ApiError::Overloaded(_))));
        assert!(t.elapsed() < Duration::from_millis(500), "refused at once");
        gate.wait();
        assert!(running.await.expect("join").is_ok());
        assert_eq!(waiting.await.expect("join").expect("ran"), 7);
        assert_eq!(p.admitted(), 0);
        assert_eq!(p.rejected.load(Relaxed), 1);
    }

    #[actix_web::test]
    async fn past_the_deadline_the_work_is_cancelled_and_refused() {
        let p = pool(1, 1, 100);
        let cancel = Arc::new(AtomicBool::new(false));
        let seen = cancel.clone();
        let stopped = Arc::new(AtomicBool::new(false));
        let stopped_w = stopped.clone();
        let r = p
            .run(cancel, move || {
                while !seen.load(Relaxed) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                stopped_w.store(true, Relaxed);
            })
            .await;
        assert!(matches!(r, Err(ApiError::Overloaded(_))));
        let t = Instant::now();
        while !stopped.load(Relaxed) {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "work never saw the cancel"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(p.timed_out.load(Relaxed), 1);
    }
}
