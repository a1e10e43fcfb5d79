//! Work on a stream of jobs spread over the machine's cores, with the
//! results handed on in the jobs' order: loading in parallel gives the same
//! objects, errors and warnings, in the same order, as loading one by one.
//! The threads run at most a few jobs ahead of the consumer, so however
//! large the input, only a few jobs' results are held at once.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;

/// More threads than this gain little: the rest of a scan is sequential.
pub const MAX_THREADS: usize = 4;

/// Results each thread may have ready ahead of the consumer.
const AHEAD_PER_THREAD: usize = 2;

/// The threads to use: `requested`, or the machine's cores (at most
/// [`MAX_THREADS`]) when it is 0.
pub fn threads(requested: usize) -> usize {
    match requested {
        0 => thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS),
        n => n,
    }
}

/// The jobs handed out so far, shared by the threads.
struct Dispatch<I> {
    jobs: I,
    /// Index of the next job handed out.
    next: usize,
    /// Results taken by the consumer.
    consumed: usize,
    /// No more jobs, or the consumer is gone.
    stopped: bool,
}

/// Runs `work` on every job on `threads` threads (in place for one), and
/// calls `consume` with the results in job order. Jobs are taken from
/// `jobs` as threads become free, and never more than a few per thread
/// beyond the last result consumed.
pub fn in_order<J, R: Send>(
    jobs: impl Iterator<Item = J> + Send,
    threads: usize,
    work: impl Fn(J) -> R + Sync,
    mut consume: impl FnMut(R),
) {
    if threads <= 1 {
        jobs.for_each(|job| consume(work(job)));
        return;
    }
    let window = threads * AHEAD_PER_THREAD;
    let dispatch = Mutex::new(Dispatch {
        jobs,
        next: 0,
        consumed: 0,
        stopped: false,
    });
    let turn = Condvar::new();
    let (sender, receiver) = mpsc::channel::<(usize, R)>();
    thread::scope(|scope| {
        for _ in 0..threads {
            let (sender, dispatch, turn, work) = (sender.clone(), &dispatch, &turn, &work);
            scope.spawn(move || {
                while let Some((index, job)) = take_job(dispatch, turn, window) {
                    if sender.send((index, work(job))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        // If `consume` panics, the threads waiting for their turn must still
        // stop, or the scope would wait for them forever.
        let _stop = StopOnDrop(&dispatch, &turn);
        // Results that arrived before their turn.
        let mut early: BTreeMap<usize, R> = BTreeMap::new();
        let mut wanted = 0;
        loop {
            let result = match early.remove(&wanted) {
                Some(result) => result,
                // Every thread gone: all jobs done (or one panicked, and
                // the scope re-raises that panic).
                None => match receiver.recv() {
                    Ok((index, result)) if index == wanted => result,
                    Ok((index, result)) => {
                        early.insert(index, result);
                        continue;
                    }
                    Err(_) => break,
                },
            };
            consume(result);
            wanted += 1;
            lock(&dispatch).consumed = wanted;
            turn.notify_all();
        }
    });
}

/// The next job and its index, once it is within `window` of the
/// consumer; `None` when there are no more.
fn take_job<J, I: Iterator<Item = J>>(
    dispatch: &Mutex<Dispatch<I>>,
    turn: &Condvar,
    window: usize,
) -> Option<(usize, J)> {
    let mut state = lock(dispatch);
    while !state.stopped && state.next >= state.consumed + window {
        state = turn.wait(state).unwrap_or_else(|e| e.into_inner());
    }
    if state.stopped {
        return None;
    }
    match state.jobs.next() {
        Some(job) => {
            let index = state.next;
            state.next += 1;
            Some((index, job))
        }
        None => {
            state.stopped = true;
            turn.notify_all();
            None
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

struct StopOnDrop<'a, I>(&'a Mutex<Dispatch<I>>, &'a Condvar);

impl<I> Drop for StopOnDrop<'_, I> {
    fn drop(&mut self) {
        lock(self.0).stopped = true;
        self.1.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn results_come_in_job_order() {
        let jobs: Vec<u64> = (0..200).collect();
        // Uneven work so that later jobs often finish first.
        let work = |n: u64| {
            let spin = (200 - n) * 500;
            (0..spin).fold(n, |acc, i| acc.wrapping_add(i % 3))
                - (0..spin).map(|i| i % 3).sum::<u64>()
        };
        for threads in [1, 2, 3] {
            let mut seen = Vec::new();
            in_order(jobs.clone().into_iter(), threads, work, |n| seen.push(n));
            assert_eq!(seen, jobs, "{threads} threads");
        }
    }

    #[test]
    fn threads_stay_within_a_window_of_the_consumer() {
        let started = AtomicUsize::new(0);
        let mut most_ahead = 0;
        let mut consumed = 0;
        in_order(
            0..100,
            2,
            |n| {
                started.fetch_add(1, Ordering::SeqCst);
                n
            },
            |_| {
                consumed += 1;
                // Let the threads run as far ahead as they may.
                thread::sleep(std::time::Duration::from_millis(1));
                most_ahead = most_ahead.max(started.load(Ordering::SeqCst) - consumed);
            },
        );
        assert_eq!(consumed, 100);
        assert!(most_ahead <= 2 * AHEAD_PER_THREAD, "{most_ahead} ahead");
        assert!(most_ahead >= 1, "the threads work ahead");
    }

    #[test]
    fn a_panicking_consumer_does_not_wedge_the_threads() {
        let result = std::panic::catch_unwind(|| {
            in_order(0..1000, 2, |n| n, |n| assert!(n < 10, "stop"));
        });
        assert!(result.is_err());
    }
}
