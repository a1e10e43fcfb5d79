//! Work on a list of items spread over the machine's cores, with the
//! results handed on in the items' order: loading many files in parallel
//! gives the same objects, errors and warnings, in the same order, as
//! loading them one by one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;

/// More threads than this gain little: the rest of a scan is sequential.
const MAX_THREADS: usize = 4;

/// Runs `work` on every item, in parallel when there are several items and
/// cores, and calls `consume` with a function that returns the results one
/// by one in item order (blocking until the next one is ready). `consume`
/// must not ask for more results than there are items.
pub fn in_order<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&T) -> R + Sync,
    consume: impl FnOnce(&mut dyn FnMut() -> R),
) {
    let threads = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS)
        .min(items.len());
    if threads <= 1 {
        let mut remaining = items.iter();
        consume(&mut || work(remaining.next().expect("no more items than results")));
        return;
    }
    let next_item = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel::<(usize, R)>();
    thread::scope(|scope| {
        for _ in 0..threads {
            let (sender, next_item, work) = (sender.clone(), &next_item, &work);
            scope.spawn(move || {
                loop {
                    let index = next_item.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else { break };
                    if sender.send((index, work(item))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        // Results that arrived before their turn.
        let mut early: BTreeMap<usize, R> = BTreeMap::new();
        let mut wanted = 0;
        consume(&mut || {
            let result = loop {
                if let Some(result) = early.remove(&wanted) {
                    break result;
                }
                // Every worker gone without the wanted result means one
                // panicked; the scope re-raises that panic.
                let Ok((index, result)) = receiver.recv() else {
                    panic!("a loader thread stopped before item {wanted}");
                };
                early.insert(index, result);
            };
            wanted += 1;
            result
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_item_order() {
        let items: Vec<u64> = (0..200).collect();
        // Uneven work so that later items often finish first.
        let work = |&n: &u64| {
            let spin = (200 - n) * 500;
            (0..spin).fold(n, |acc, i| acc.wrapping_add(i % 3))
                - (0..spin).map(|i| i % 3).sum::<u64>()
        };
        let mut seen = Vec::new();
        in_order(&items, work, |next| {
            for _ in 0..items.len() {
                seen.push(next());
            }
        });
        assert_eq!(seen, items);
    }

    #[test]
    fn one_item_runs_in_place() {
        let mut seen = Vec::new();
        in_order(&["only"], |s: &&str| s.len(), |next| seen.push(next()));
        assert_eq!(seen, vec![4]);
    }
}
