//! A bounded pool of idle threads for a listener's connections. A new connection goes to
//! an idle thread when there is one, else to a new thread; a thread that finishes its
//! connection waits a while for the next one instead of exiting. One thread still serves
//! one connection at a time, so nothing here changes how a connection is handled: it
//! only saves the thread creation (a `clone`, a stack `mmap` and its page faults) that
//! every new connection used to cost.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use std::{io, thread};

use crate::util::lock;

/// One connection's work, run on a pool thread.
pub type Job = Box<dyn FnOnce() + Send>;

pub struct Pool {
    name: &'static str,
    stack_bytes: usize,
    max_idle: usize,
    idle_timeout: Duration,
    queue: Mutex<Queue>,
    ready: Condvar,
}

struct Queue {
    jobs: VecDeque<Job>,
    /// Threads waiting for a job. Invariant: `jobs.len() <= idle`, so every queued job
    /// has a waiting thread that will take it (a waiting thread leaves only when no job
    /// is queued).
    idle: usize,
}

impl Pool {
    /// At most `max_idle` threads wait for work, each for at most `idle_timeout`; the
    /// number of busy threads is bounded by the caller (one per admitted connection).
    pub fn new(name: &'static str, stack_bytes: usize, max_idle: usize, idle_timeout: Duration) -> Arc<Pool> {
        let queue = Mutex::new(Queue { jobs: VecDeque::new(), idle: 0 });
        Arc::new(Pool { name, stack_bytes, max_idle, idle_timeout, queue, ready: Condvar::new() })
    }

    /// Runs `job` on an idle thread, or on a new one. Fails only when no thread can be
    /// started (the job is then dropped unrun).
    pub fn run(self: &Arc<Self>, job: Job) -> io::Result<()> {
        let mut q = lock(&self.queue);
        if q.idle > q.jobs.len() {
            q.jobs.push_back(job);
            self.ready.notify_one();
            return Ok(());
        }
        drop(q);
        let pool = self.clone();
        thread::Builder::new()
            .name(format!("{}-conn", self.name))
            .stack_size(self.stack_bytes)
            .spawn(move || pool.work(job))
            .map(drop)
    }

    fn work(&self, first: Job) {
        let mut next = Some(first);
        while let Some(job) = next {
            // A job's own failures are its business; the thread goes on to the next.
            if catch_unwind(AssertUnwindSafe(job)).is_err() {
                log::error!("{}: a connection thread panicked", self.name);
            }
            next = self.next_job();
        }
    }

    /// Waits (bounded) for the next job; `None`: the thread should end.
    fn next_job(&self) -> Option<Job> {
        let mut q = lock(&self.queue);
        if q.idle >= self.max_idle {
            return None;
        }
        q.idle += 1;
        let waited = self.ready.wait_timeout_while(q, self.idle_timeout, |q| q.jobs.is_empty());
        let mut q = waited.unwrap_or_else(|p| p.into_inner()).0;
        q.idle -= 1;
        q.jobs.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    impl Pool {
        fn idle(&self) -> usize {
            lock(&self.queue).idle
        }
    }

    fn thread_name() -> String {
        format!("{:?}", thread::current().id())
    }

    #[test]
    fn a_finished_thread_takes_the_next_job() {
        let pool = Pool::new("t", 64 * 1024, 4, Duration::from_secs(5));
        let (tx, rx) = mpsc::channel();
        let first = tx.clone();
        pool.run(Box::new(move || first.send(thread_name()).unwrap())).unwrap();
        let a = rx.recv().unwrap();
        // Bounded wait for the thread to become idle.
        for _ in 0..200 {
            if pool.idle() == 1 {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(pool.idle(), 1);
        pool.run(Box::new(move || tx.send(thread_name()).unwrap())).unwrap();
        assert_eq!(rx.recv().unwrap(), a, "the idle thread was reused");
    }

    #[test]
    fn idle_threads_are_bounded_and_time_out() {
        let pool = Pool::new("t", 64 * 1024, 2, Duration::from_millis(200));
        let (tx, rx) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        for _ in 0..5 {
            let (tx, gate) = (tx.clone(), gate.clone());
            pool.run(Box::new(move || {
                drop(gate.lock().unwrap());
                tx.send(()).unwrap();
            }))
            .unwrap();
        }
        drop(held);
        for _ in 0..5 {
            rx.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        thread::sleep(Duration::from_millis(50));
        assert!(pool.idle() <= 2, "{}", pool.idle());
        thread::sleep(Duration::from_millis(400));
        assert_eq!(pool.idle(), 0, "idle threads end after the timeout");
    }

    #[test]
    fn a_panicking_job_does_not_lose_the_thread() {
        let pool = Pool::new("t", 64 * 1024, 1, Duration::from_secs(5));
        pool.run(Box::new(|| panic!("job panics"))).unwrap();
        for _ in 0..200 {
            if pool.idle() == 1 {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(pool.idle(), 1);
        let (tx, rx) = mpsc::channel();
        pool.run(Box::new(move || tx.send(1).unwrap())).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 1);
    }
}
