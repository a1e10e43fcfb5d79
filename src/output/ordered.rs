//! Writing a large report on every core, in order.
//!
//! Turning findings into JSON costs more than reading them back: for a
//! report of tens of thousands of findings it was a third of a scan's
//! time, all on one thread. (The table is cheap enough to stay on one.) [`write_in_order`]
//! keeps reading (a spool's merge) and writing on the calling thread and
//! hands batches of units to workers that render them into bytes; the
//! bytes are written in the units' order, so the report is the same as
//! rendering them one after another.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Mutex, PoisonError};

/// Units rendered by one worker at a time: a few hundred kilobytes of
/// text for findings, little enough that the batches in flight stay small.
const BATCH: usize = 512;

/// Renders `units` into `out` in their order. `render` gets each unit's
/// index (0 the first) and appends its text to the buffer it is given. A
/// unit that cannot be read ends the report with that error.
pub(crate) fn write_in_order<U: Send>(
    units: impl Iterator<Item = io::Result<U>>,
    render: impl Fn(usize, &U, &mut Vec<u8>) -> io::Result<()> + Sync,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut units = units.peekable();
    let (first, mut read_error) = next_batch(&mut units);
    if read_error.is_some() || units.peek().is_none() {
        // A small report: no threads.
        out.write_all(&render_batch(&render, 0, &first)?)?;
        return read_error.map_or(Ok(()), Err);
    }
    let workers = crate::engine::threads_for(usize::MAX);
    let (jobs, queue) = mpsc::sync_channel::<Job<U>>(workers);
    let queue = Mutex::new(queue);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (queue, render) = (&queue, &render);
            scope.spawn(move || work(queue, render));
        }
        let mut pending = VecDeque::new();
        let mut batch = first;
        let mut start = 0;
        loop {
            let (done, text) = mpsc::sync_channel(1);
            let units_sent = std::mem::take(&mut batch);
            let count = units_sent.len();
            // The workers only stop once `jobs` is dropped.
            let _ = jobs.send(Job {
                start,
                units: units_sent,
                done,
            });
            pending.push_back(text);
            start += count;
            // Keeps the rendered text in flight to a few batches.
            while pending.len() > 2 * workers {
                write_next(&mut pending, out)?;
            }
            if read_error.is_some() || units.peek().is_none() {
                break;
            }
            (batch, read_error) = next_batch(&mut units);
        }
        drop(jobs);
        // What was read before an error is written, as it would be one
        // unit after another.
        while !pending.is_empty() {
            write_next(&mut pending, out)?;
        }
        read_error.map_or(Ok(()), Err)
    })
}

/// A batch for a worker: units from index `start`, and where their text goes.
struct Job<U> {
    start: usize,
    units: Vec<U>,
    done: SyncSender<io::Result<Vec<u8>>>,
}

fn work<U>(
    queue: &Mutex<Receiver<Job<U>>>,
    render: &(impl Fn(usize, &U, &mut Vec<u8>) -> io::Result<()> + Sync),
) {
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else {
            return;
        };
        let text = render_batch(render, job.start, &job.units);
        // The writer is gone only after an error of its own.
        let _ = job.done.send(text);
    }
}

fn render_batch<U>(
    render: &impl Fn(usize, &U, &mut Vec<u8>) -> io::Result<()>,
    start: usize,
    units: &[U],
) -> io::Result<Vec<u8>> {
    let mut text = Vec::new();
    for (offset, unit) in units.iter().enumerate() {
        render(start + offset, unit, &mut text)?;
    }
    Ok(text)
}

/// Writes the oldest batch's text, waiting for it.
fn write_next(
    pending: &mut VecDeque<Receiver<io::Result<Vec<u8>>>>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let Some(text) = pending.pop_front() else {
        return Ok(());
    };
    let text = text
        .recv()
        .map_err(|_| io::Error::other("a report worker stopped"))??;
    out.write_all(&text)
}

/// Up to [`BATCH`] units, and the error that ended them early.
fn next_batch<U>(units: &mut impl Iterator<Item = io::Result<U>>) -> (Vec<U>, Option<io::Error>) {
    let mut batch = Vec::with_capacity(BATCH);
    for unit in units.by_ref() {
        match unit {
            Ok(unit) => batch.push(unit),
            Err(e) => return (batch, Some(e)),
        }
        if batch.len() == BATCH {
            break;
        }
    }
    (batch, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(count: usize) -> impl Iterator<Item = io::Result<usize>> {
        (0..count).map(Ok)
    }

    fn render(index: usize, unit: &usize, text: &mut Vec<u8>) -> io::Result<()> {
        let separator = if index == 0 { "" } else { "," };
        write!(text, "{separator}{unit}")
    }

    fn rendered(count: usize) -> String {
        let mut out = Vec::new();
        write_in_order(numbers(count), render, &mut out).expect("written");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn units_come_out_in_their_order_whatever_their_number() {
        for count in [0, 1, BATCH - 1, BATCH, BATCH + 1, 7 * BATCH + 3, 40 * BATCH] {
            let expected: Vec<String> = (0..count).map(|n| n.to_string()).collect();
            assert_eq!(rendered(count), expected.join(","), "{count} units");
        }
    }

    #[test]
    fn a_unit_that_cannot_be_read_ends_the_report_with_its_error() {
        let units = (0..5 * BATCH).map(|n| match n {
            n if n == 3 * BATCH + 7 => Err(io::Error::other("spool gone")),
            n => Ok(n),
        });
        let mut out = Vec::new();
        let error = write_in_order(units, render, &mut out).expect_err("read error");
        assert_eq!(error.to_string(), "spool gone");
        let before = String::from_utf8(out).expect("UTF-8");
        assert_eq!(before, rendered(3 * BATCH + 7), "what was read is written");
    }

    #[test]
    fn a_render_error_reaches_the_caller() {
        let failing = |index: usize, _: &usize, _: &mut Vec<u8>| match index {
            1500 => Err(io::Error::other("cannot render")),
            _ => Ok(()),
        };
        let error =
            write_in_order(numbers(4 * BATCH), failing, &mut Vec::new()).expect_err("render error");
        assert_eq!(error.to_string(), "cannot render");
    }
}
