//! The work queue: debounced, deduplicated, and never hands out a key that
//! is already being evaluated.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::target::TargetKey;

pub struct WorkQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    debounce: Duration,
}

#[derive(Default)]
struct Inner {
    /// Keys ordered by when they are due.
    due: BTreeSet<(Instant, TargetKey)>,
    /// When each queued key is due.
    pending: HashMap<TargetKey, Instant>,
    in_flight: HashSet<TargetKey>,
}

impl WorkQueue {
    pub fn new(debounce: Duration) -> WorkQueue {
        WorkQueue {
            inner: Mutex::default(),
            notify: Notify::new(),
            debounce,
        }
    }

    /// Queues `key` after the debounce delay; a burst of changes to one
    /// object becomes one evaluation.
    pub fn enqueue(&self, key: TargetKey) {
        self.enqueue_at(key, Instant::now() + self.debounce);
    }

    /// Queues `key` to run now.
    pub fn enqueue_now(&self, key: TargetKey) {
        self.enqueue_at(key, Instant::now());
    }

    /// Queues `key` for `at`, or keeps it at its earlier time if it is queued.
    pub fn enqueue_at(&self, key: TargetKey, at: Instant) {
        let mut inner = self.inner.lock().expect("queue lock");
        match inner.pending.get(&key) {
            Some(current) if *current <= at => return,
            Some(current) => {
                let current = *current;
                inner.due.remove(&(current, key.clone()));
            }
            None => {}
        }
        inner.pending.insert(key.clone(), at);
        inner.due.insert((at, key));
        drop(inner);
        self.notify.notify_one();
    }

    /// Waits for the next due key that is not in flight and marks it in
    /// flight; call [`WorkQueue::done`] when finished with it.
    pub async fn next(&self) -> TargetKey {
        loop {
            let wake_at = {
                let mut inner = self.inner.lock().expect("queue lock");
                match inner.take_due(Instant::now()) {
                    Ok(key) => return key,
                    Err(wake_at) => wake_at,
                }
            };
            let notified = self.notify.notified();
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    pub fn done(&self, key: &TargetKey) {
        let mut inner = self.inner.lock().expect("queue lock");
        inner.in_flight.remove(key);
        let requeued = inner.pending.contains_key(key);
        drop(inner);
        if requeued {
            self.notify.notify_one();
        }
    }

    /// Queued keys (not counting those in flight).
    pub fn len(&self) -> usize {
        self.inner.lock().expect("queue lock").pending.len()
    }

    /// Whether nothing is queued or being evaluated.
    pub fn is_idle(&self) -> bool {
        let inner = self.inner.lock().expect("queue lock");
        inner.pending.is_empty() && inner.in_flight.is_empty()
    }
}

impl Inner {
    /// The first due key not in flight, or when to look again.
    fn take_due(&mut self, now: Instant) -> Result<TargetKey, Option<Instant>> {
        let mut found = None;
        for (at, key) in &self.due {
            if *at > now {
                return Err(Some(*at));
            }
            if !self.in_flight.contains(key) {
                found = Some((*at, key.clone()));
                break;
            }
        }
        let Some((at, key)) = found else {
            // Everything due is in flight; `done` wakes a worker.
            return Err(None);
        };
        self.due.remove(&(at, key.clone()));
        self.pending.remove(&key);
        self.in_flight.insert(key.clone());
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::target::TargetKind;

    fn key(name: &str) -> TargetKey {
        TargetKey::new(TargetKind::Deployment, Some("ns"), name)
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_are_debounced_into_one() {
        let queue = WorkQueue::new(Duration::from_millis(100));
        for _ in 0..10 {
            queue.enqueue(key("a"));
        }
        assert_eq!(queue.len(), 1);
        let start = Instant::now();
        assert_eq!(queue.next().await, key("a"));
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert_eq!(queue.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_in_flight_is_not_handed_out_twice() {
        let queue = WorkQueue::new(Duration::ZERO);
        queue.enqueue_now(key("a"));
        let first = queue.next().await;
        queue.enqueue_now(key("a"));
        queue.enqueue_now(key("b"));
        // `a` is in flight, so `b` comes next although `a` was queued first.
        assert_eq!(queue.next().await, key("b"));
        queue.done(&key("b"));
        let again = tokio::time::timeout(Duration::from_secs(1), queue.next()).await;
        assert!(again.is_err(), "a second `a` must wait for the first");
        queue.done(&first);
        assert_eq!(queue.next().await, key("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_time_wins() {
        let queue = WorkQueue::new(Duration::from_secs(10));
        queue.enqueue(key("a"));
        queue.enqueue_now(key("a"));
        let start = Instant::now();
        queue.next().await;
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
