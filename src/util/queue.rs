//! A bounded queue from threads that must never wait (a request thread, the state's
//! observer) to one worker thread: at capacity the oldest item is dropped, since a worker
//! that is that far behind has a target that is down, and the newest news matters most.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::util::lock;

pub struct DropOldest<T> {
    items: Mutex<VecDeque<T>>,
    ready: Condvar,
    capacity: usize,
}

impl<T> DropOldest<T> {
    pub fn new(capacity: usize) -> DropOldest<T> {
        DropOldest { items: Mutex::new(VecDeque::new()), ready: Condvar::new(), capacity }
    }

    /// Queues `item`; never blocks. Returns the item dropped to make room, if any.
    pub fn push(&self, item: T) -> Option<T> {
        let mut items = lock(&self.items);
        let dropped = if items.len() >= self.capacity { items.pop_front() } else { None };
        items.push_back(item);
        self.ready.notify_one();
        dropped
    }

    /// The oldest item, waiting for one as long as it takes.
    pub fn pop(&self) -> T {
        let mut items = lock(&self.items);
        loop {
            if let Some(item) = items.pop_front() {
                return item;
            }
            items = self.ready.wait(items).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The oldest item, waiting for one at most `wait` (`None`: none came).
    pub fn pop_within(&self, wait: Duration) -> Option<T> {
        let waited = self.ready.wait_timeout_while(lock(&self.items), wait, |items| items.is_empty());
        waited.unwrap_or_else(|p| p.into_inner()).0.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_full_queue_drops_its_oldest_and_keeps_the_order() {
        let q = DropOldest::new(2);
        assert_eq!((q.push(1), q.push(2), q.push(3)), (None, None, Some(1)));
        assert_eq!((q.pop(), q.pop_within(Duration::ZERO)), (2, Some(3)));
        assert_eq!(q.pop_within(Duration::from_millis(1)), None);
    }

    #[test]
    fn a_waiting_worker_wakes_for_an_item() {
        let q = Arc::new(DropOldest::new(4));
        let worker = std::thread::spawn({
            let q = q.clone();
            move || (q.pop(), q.pop_within(Duration::from_secs(5)))
        });
        q.push("a");
        q.push("b");
        assert_eq!(worker.join().unwrap(), ("a", Some("b")));
    }
}
