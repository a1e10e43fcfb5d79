//! The work queue: debounced, deduplicated, and never hands out a key that
//! is already being evaluated. Changes come first: a full pass queues every
//! target at once, and a change made meanwhile would otherwise wait for
//! the rest of the pass (minutes on a large cluster).

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

/// Why a key is queued; a due key of the first class is handed out before
/// any of the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// A change to an object, or a retry after a failed evaluation.
    Change,
    /// A full pass over every target (at start and every resync).
    Pass,
}

#[derive(Default)]
struct Inner {
    /// Changed keys, ordered by when they are due.
    changes: BTreeSet<(Instant, TargetKey)>,
    /// Keys of a full pass, ordered by when they are due.
    pass: BTreeSet<(Instant, TargetKey)>,
    /// When each queued key is due, and why it is queued.
    pending: HashMap<TargetKey, (Instant, Class)>,
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

    /// Queues `key` to run now, as part of a full pass: after any change
    /// that is due.
    pub fn enqueue_in_pass(&self, key: TargetKey) {
        self.queue(key, Instant::now(), Class::Pass);
    }

    /// Queues `key` for `at` as a change, or keeps it at its earlier time
    /// if it is queued.
    pub fn enqueue_at(&self, key: TargetKey, at: Instant) {
        self.queue(key, at, Class::Change);
    }

    /// Queues `key`; a key already queued keeps the earlier time and the
    /// first class of the two.
    fn queue(&self, key: TargetKey, at: Instant, class: Class) {
        let mut inner = self.inner.lock().expect("queue lock");
        let (at, class) = match inner.pending.get(&key).copied() {
            Some((current_at, current_class)) => {
                let merged = (current_at.min(at), current_class.min(class));
                if merged == (current_at, current_class) {
                    return;
                }
                inner.of(current_class).remove(&(current_at, key.clone()));
                merged
            }
            None => (at, class),
        };
        inner.pending.insert(key.clone(), (at, class));
        inner.of(class).insert((at, key));
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

/// The first due key of one class that is not in flight, or when the
/// next key of that class is due (`None`: every due key is in flight, and
/// `done` wakes a worker).
fn first_due(
    queued: &BTreeSet<(Instant, TargetKey)>,
    in_flight: &HashSet<TargetKey>,
    now: Instant,
) -> Result<(Instant, TargetKey), Option<Instant>> {
    for (at, key) in queued {
        if *at > now {
            return Err(Some(*at));
        }
        if !in_flight.contains(key) {
            return Ok((*at, key.clone()));
        }
    }
    Err(None)
}

impl Inner {
    fn of(&mut self, class: Class) -> &mut BTreeSet<(Instant, TargetKey)> {
        match class {
            Class::Change => &mut self.changes,
            Class::Pass => &mut self.pass,
        }
    }

    /// The first due key not in flight, changes first, or when to look
    /// again.
    fn take_due(&mut self, now: Instant) -> Result<TargetKey, Option<Instant>> {
        let mut wake_at: Option<Instant> = None;
        for class in [Class::Change, Class::Pass] {
            let queued = match class {
                Class::Change => &self.changes,
                Class::Pass => &self.pass,
            };
            match first_due(queued, &self.in_flight, now) {
                Ok((at, key)) => {
                    self.of(class).remove(&(at, key.clone()));
                    self.pending.remove(&key);
                    self.in_flight.insert(key.clone());
                    return Ok(key);
                }
                Err(Some(at)) => wake_at = Some(wake_at.map_or(at, |w| w.min(at))),
                Err(None) => {}
            }
        }
        Err(wake_at)
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
        queue.enqueue_in_pass(key("a"));
        let first = queue.next().await;
        queue.enqueue_in_pass(key("a"));
        queue.enqueue_in_pass(key("b"));
        // `a` is in flight, so `b` comes next although `a` was queued first.
        assert_eq!(queue.next().await, key("b"));
        queue.done(&key("b"));
        let again = tokio::time::timeout(Duration::from_secs(1), queue.next()).await;
        assert!(again.is_err(), "a second `a` must wait for the first");
        queue.done(&first);
        assert_eq!(queue.next().await, key("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_during_a_pass_comes_before_the_rest_of_the_pass() {
        let queue = WorkQueue::new(Duration::from_millis(250));
        for i in 0..50 {
            queue.enqueue_in_pass(key(&format!("pass-{i:02}")));
        }
        let first = queue.next().await;
        assert_eq!(first, key("pass-00"));
        queue.enqueue(key("changed"));
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(queue.next().await, key("changed"));
        assert_eq!(queue.next().await, key("pass-01"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_not_yet_due_does_not_hold_up_the_pass() {
        let queue = WorkQueue::new(Duration::from_secs(10));
        queue.enqueue(key("changed"));
        queue.enqueue_in_pass(key("pass"));
        let start = Instant::now();
        assert_eq!(queue.next().await, key("pass"));
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(queue.next().await, key("changed"));
        assert!(start.elapsed() >= Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_of_the_pass_that_changes_moves_ahead_of_it() {
        let queue = WorkQueue::new(Duration::from_millis(250));
        for name in ["a", "b", "c"] {
            queue.enqueue_in_pass(key(name));
        }
        queue.enqueue(key("c"));
        assert_eq!(queue.len(), 3);
        let start = Instant::now();
        // Queued with the pass, it is already due: no debounce.
        assert_eq!(queue.next().await, key("c"));
        assert!(start.elapsed() < Duration::from_millis(250));
        assert_eq!(queue.next().await, key("a"));
        assert_eq!(queue.next().await, key("b"));
        assert_eq!(queue.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_time_wins() {
        let queue = WorkQueue::new(Duration::from_secs(10));
        queue.enqueue(key("a"));
        queue.enqueue_in_pass(key("a"));
        let start = Instant::now();
        queue.next().await;
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
