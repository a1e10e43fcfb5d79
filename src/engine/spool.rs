//! Findings in bounded memory: an external sort.
//!
//! A scan of a million objects finds millions of findings, far more than
//! should be held until the report is written. [`FindingSpool`] keeps them
//! in memory up to a budget; past it, it sorts what it holds and writes it
//! as a run to an unlinked temporary file. [`SpooledFindings::iter`] then
//! merges the runs back: the same findings in the same order as sorting
//! them all in memory, duplicates removed.
//!
//! A scan whose findings fit the budget never creates a file.
//!
//! Runs use a private binary encoding, written and read by this module
//! only: strings are length-prefixed, a check is an index into the spool's
//! table of checks (every check is `&'static`: built-in, custom and
//! admission checks alike), and an object or source file is written once
//! for the consecutive findings that share it.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Check, Finding, Severity, Suppression, SuppressionSource};
use crate::loader::Source;
use crate::model::ObjectRef;

/// What [`FindingSpool::new`] holds in memory before writing a run: the
/// findings of about 5,000 workloads (a scan of 10,000 objects writes a
/// few runs and stays near 50 MB all told).
pub const DEFAULT_BUDGET_BYTES: usize = 8 * 1024 * 1024;

/// Read buffer per run while merging, at most (shrunk when there are many
/// runs, so that the merge stays within the budget too).
const MAX_READ_BUFFER: usize = 64 * 1024;
const MIN_READ_BUFFER: usize = 4 * 1024;

/// Runs kept before they are merged into one: files open at once, and
/// inputs of the merge. The default budget reaches it past about
/// five million findings.
pub const MAX_RUNS: usize = 128;

/// A finding as the report carries it: which definition of its object it
/// was found in (0 the first) and where that definition was read.
#[derive(Clone, Debug)]
pub struct Reported {
    pub finding: Finding,
    pub definition: u32,
    pub source: Option<Source>,
}

impl Reported {
    /// The report's order: the finding's, then its definition; the source
    /// (which follows from the two) only makes the order total.
    fn order(&self, other: &Self) -> Ordering {
        self.finding
            .cmp(&other.finding)
            .then(self.definition.cmp(&other.definition))
            .then_with(|| source_key(&self.source).cmp(&source_key(&other.source)))
    }

    /// Bytes this finding holds in memory, its object's strings excluded
    /// (they are shared by the findings of the object).
    fn held_bytes(&self) -> usize {
        let f = &self.finding;
        let suppression = f.suppressed.as_deref().map_or(0, |s| {
            let policy = match &s.source {
                SuppressionSource::Policy(name) => name.capacity(),
                _ => 0,
            };
            size_of::<Suppression>() + s.reason.capacity() + policy
        });
        size_of::<Reported>()
            + f.message.capacity()
            + f.path.capacity()
            + f.container.as_ref().map_or(0, String::capacity)
            + suppression
    }
}

fn source_key(source: &Option<Source>) -> Option<(&str, usize, usize)> {
    source
        .as_ref()
        .map(|s| (s.file.as_ref(), s.line, s.document))
}

fn object_bytes(object: &ObjectRef) -> usize {
    size_of::<ObjectRef>()
        + object.api_version.capacity()
        + object.kind.capacity()
        + object.namespace.as_ref().map_or(0, String::capacity)
        + object.name.capacity()
        + object.uid.as_ref().map_or(0, String::capacity)
}

/// Collects findings in any order; [`FindingSpool::finish`] gives them back
/// sorted and deduplicated.
pub struct FindingSpool {
    budget: usize,
    held: Vec<Reported>,
    held_bytes: usize,
    runs: Vec<Run>,
    /// Times the findings held were written as a run.
    spills: usize,
    /// Where runs go; the system's temporary directory when `None`.
    dir: Option<PathBuf>,
    checks: CheckTable,
    /// The first write error: pushes after it are dropped, and
    /// [`FindingSpool::finish`] returns it.
    failed: Option<io::Error>,
}

impl Default for FindingSpool {
    fn default() -> Self {
        FindingSpool::new()
    }
}

impl FindingSpool {
    /// A spool that holds up to [`DEFAULT_BUDGET_BYTES`] of findings in memory.
    pub fn new() -> Self {
        FindingSpool::with_budget(DEFAULT_BUDGET_BYTES)
    }

    /// A spool that writes a run whenever the findings it holds exceed
    /// `bytes` (estimated from their strings).
    pub fn with_budget(bytes: usize) -> Self {
        FindingSpool {
            budget: bytes,
            held: Vec::new(),
            held_bytes: 0,
            runs: Vec::new(),
            spills: 0,
            dir: None,
            checks: CheckTable::default(),
            failed: None,
        }
    }

    /// Writes runs in `dir` instead of the system's temporary directory.
    pub fn in_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Adds one finding; past the budget, sorts the findings held and
    /// writes them as a run. A write error is kept for [`Self::finish`].
    pub fn push(&mut self, reported: Reported) {
        if self.failed.is_some() {
            return;
        }
        let shares_object = self
            .held
            .last()
            .is_some_and(|last| Arc::ptr_eq(&last.finding.object, &reported.finding.object));
        if !shares_object {
            self.held_bytes += object_bytes(&reported.finding.object);
        }
        self.held_bytes += reported.held_bytes();
        self.held.push(reported);
        if self.held_bytes > self.budget
            && let Err(e) = self.spill()
        {
            self.failed = Some(e);
            self.held = Vec::new();
        }
    }

    /// Times the findings held were written as a run so far.
    pub fn spills(&self) -> usize {
        self.spills
    }

    /// Sorts and deduplicates the findings held and writes them as a run;
    /// at [`MAX_RUNS`], merges the runs into one.
    fn spill(&mut self) -> io::Result<()> {
        sort_and_dedup(&mut self.held);
        let mut writer = RunWriter::new(self.dir.as_deref())?;
        for reported in &self.held {
            writer.push(reported, &mut self.checks)?;
        }
        self.runs.push(writer.finish()?);
        self.spills += 1;
        self.held.clear();
        self.held_bytes = 0;
        if self.runs.len() >= MAX_RUNS {
            self.compact()?;
        }
        Ok(())
    }

    /// Merges every run into one, so that the merge that reads them back
    /// has a bounded number of files open and of read buffers.
    fn compact(&mut self) -> io::Result<()> {
        let runs = std::mem::take(&mut self.runs);
        // Every check of the runs is in the table already.
        let checks = self.checks.checks.clone();
        let buffer = read_buffer(self.budget, runs.len());
        let mut writer = RunWriter::new(self.dir.as_deref())?;
        for reported in Merge::new(&runs, &[], &checks, buffer) {
            writer.push(&reported?, &mut self.checks)?;
        }
        self.runs.push(writer.finish()?);
        Ok(())
    }

    /// Every finding pushed, ready to be read in order; the first write
    /// error if a run could not be written.
    pub fn finish(mut self) -> io::Result<SpooledFindings> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        // The last findings stay in memory: they are merged with the runs
        // without being written.
        sort_and_dedup(&mut self.held);
        self.held.shrink_to_fit();
        let read_buffer = read_buffer(self.budget, self.runs.len());
        Ok(SpooledFindings {
            spills: self.spills,
            runs: self.runs,
            held: self.held,
            checks: self.checks.checks,
            read_buffer,
        })
    }
}

/// The read buffer of each of `runs` runs merged at once.
fn read_buffer(budget: usize, runs: usize) -> usize {
    (budget / runs.max(1)).clamp(MIN_READ_BUFFER, MAX_READ_BUFFER)
}

fn sort_and_dedup(findings: &mut Vec<Reported>) {
    findings.sort_unstable_by(Reported::order);
    findings.dedup_by(|a, b| a.order(b) == Ordering::Equal);
}

/// The findings of a [`FindingSpool`], sorted.
pub struct SpooledFindings {
    runs: Vec<Run>,
    spills: usize,
    /// The findings never written, sorted.
    held: Vec<Reported>,
    /// The checks runs refer to, by index.
    checks: Vec<&'static Check>,
    read_buffer: usize,
}

impl SpooledFindings {
    /// The findings in order, duplicates removed; may be called more than
    /// once. A read error ends the sequence.
    pub fn iter(&self) -> impl Iterator<Item = io::Result<Reported>> + '_ {
        Merge::new(&self.runs, &self.held, &self.checks, self.read_buffer)
    }

    /// Runs in temporary files, read back at once (none when every
    /// finding fit; at most [`MAX_RUNS`]).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Times findings were written as a run (none when every finding fit).
    pub fn spills(&self) -> usize {
        self.spills
    }

    /// Cuts the first run short, as a full disk or a damaged file would.
    #[cfg(test)]
    pub(crate) fn damage_for_test(&self) {
        if let Some(run) = self.runs.first() {
            run.file.set_len(5).expect("run truncated");
        }
    }
}

/// Checks by address, for their index in runs.
#[derive(Default)]
struct CheckTable {
    checks: Vec<&'static Check>,
    index: HashMap<usize, u32>,
}

impl CheckTable {
    fn index_of(&mut self, check: &'static Check) -> io::Result<u32> {
        let address = std::ptr::from_ref(check) as usize;
        if let Some(&index) = self.index.get(&address) {
            return Ok(index);
        }
        let index = u32::try_from(self.checks.len())
            .map_err(|_| invalid_data("too many checks to spool"))?;
        self.checks.push(check);
        self.index.insert(address, index);
        Ok(index)
    }
}

/// One sorted run in an unlinked temporary file.
struct Run {
    file: File,
    findings: usize,
}

/// Writes one run, record by record.
struct RunWriter {
    encoder: Encoder<BufWriter<File>>,
    findings: usize,
}

impl RunWriter {
    fn new(dir: Option<&Path>) -> io::Result<RunWriter> {
        // Unlinked at once: nothing is left behind, however the scan ends.
        let file = match dir {
            Some(dir) => tempfile::tempfile_in(dir)?,
            None => tempfile::tempfile()?,
        };
        Ok(RunWriter {
            encoder: Encoder {
                out: BufWriter::with_capacity(MAX_READ_BUFFER, file),
                last_object: None,
                last_file: None,
            },
            findings: 0,
        })
    }

    fn push(&mut self, reported: &Reported, checks: &mut CheckTable) -> io::Result<()> {
        self.encoder.reported(reported, checks)?;
        self.findings += 1;
        Ok(())
    }

    fn finish(self) -> io::Result<Run> {
        let file = self.encoder.out.into_inner().map_err(|e| e.into_error())?;
        Ok(Run {
            file,
            findings: self.findings,
        })
    }
}

// Record layout, in order: object (tag 0 = the previous record's, 1 = new,
// then apiVersion, kind, namespace?, name, uid?), check index, severity,
// message, path, container?, suppression (tag 0 none, 1 annotation,
// 2 policy + name, 3 builtin, then the reason), definition, source (tag 0
// none, 1 same file as the previous record, 2 new file + name; then line
// and document). Integers are LEB128; an optional string is a presence
// byte, then the string.

const SEVERITIES: [Severity; 5] = Severity::ALL_WORST_FIRST;

struct Encoder<W: Write> {
    out: W,
    last_object: Option<Arc<ObjectRef>>,
    last_file: Option<Arc<str>>,
}

impl<W: Write> Encoder<W> {
    fn reported(&mut self, r: &Reported, checks: &mut CheckTable) -> io::Result<()> {
        let f = &r.finding;
        self.object(&f.object)?;
        self.number(u64::from(checks.index_of(f.check)?))?;
        let severity = SEVERITIES.iter().position(|s| *s == f.severity);
        self.number(severity.unwrap_or(0) as u64)?;
        self.text(&f.message)?;
        self.text(&f.path)?;
        self.optional(f.container.as_deref())?;
        self.suppression(f.suppressed.as_deref())?;
        self.number(u64::from(r.definition))?;
        self.source(r.source.as_ref())
    }

    fn object(&mut self, object: &Arc<ObjectRef>) -> io::Result<()> {
        if self.last_object.as_ref().is_some_and(|last| last == object) {
            return self.byte(0);
        }
        self.last_object = Some(Arc::clone(object));
        self.byte(1)?;
        self.text(&object.api_version)?;
        self.text(&object.kind)?;
        self.optional(object.namespace.as_deref())?;
        self.text(&object.name)?;
        self.optional(object.uid.as_deref())
    }

    fn suppression(&mut self, suppression: Option<&Suppression>) -> io::Result<()> {
        let Some(s) = suppression else {
            return self.byte(0);
        };
        match &s.source {
            SuppressionSource::Annotation => self.byte(1)?,
            SuppressionSource::Policy(name) => {
                self.byte(2)?;
                self.text(name)?;
            }
            SuppressionSource::Builtin => self.byte(3)?,
        }
        self.text(&s.reason)
    }

    fn source(&mut self, source: Option<&Source>) -> io::Result<()> {
        let Some(source) = source else {
            return self.byte(0);
        };
        if self.last_file.as_ref() == Some(&source.file) {
            self.byte(1)?;
        } else {
            self.last_file = Some(Arc::clone(&source.file));
            self.byte(2)?;
            self.text(&source.file)?;
        }
        self.number(source.line as u64)?;
        self.number(source.document as u64)
    }

    fn byte(&mut self, byte: u8) -> io::Result<()> {
        self.out.write_all(&[byte])
    }

    fn number(&mut self, mut n: u64) -> io::Result<()> {
        let mut bytes = [0u8; 10];
        let mut len = 0;
        loop {
            let low = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                bytes[len] = low;
                len += 1;
                break;
            }
            bytes[len] = low | 0x80;
            len += 1;
        }
        self.out.write_all(&bytes[..len])
    }

    fn text(&mut self, text: &str) -> io::Result<()> {
        self.number(text.len() as u64)?;
        self.out.write_all(text.as_bytes())
    }

    fn optional(&mut self, text: Option<&str>) -> io::Result<()> {
        match text {
            None => self.byte(0),
            Some(text) => {
                self.byte(1)?;
                self.text(text)
            }
        }
    }
}

fn invalid_data(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

/// Reads a run from its start without moving the file's own offset, so
/// that several merges of the same runs can read at once.
struct RunReader<'a> {
    file: &'a File,
    offset: u64,
}

impl Read for RunReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = read_at(self.file, buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// Decodes the records of one run.
struct Decoder<'a> {
    input: BufReader<RunReader<'a>>,
    remaining: usize,
    checks: &'a [&'static Check],
    last_object: Option<Arc<ObjectRef>>,
    last_file: Option<Arc<str>>,
}

impl<'a> Decoder<'a> {
    fn new(run: &'a Run, checks: &'a [&'static Check], buffer: usize) -> Self {
        let reader = RunReader {
            file: &run.file,
            offset: 0,
        };
        Decoder {
            input: BufReader::with_capacity(buffer, reader),
            remaining: run.findings,
            checks,
            last_object: None,
            last_file: None,
        }
    }

    /// The next record; `None` after the last.
    fn next(&mut self) -> io::Result<Option<Reported>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        let object = self.object()?;
        let check = usize::try_from(self.number()?)
            .ok()
            .and_then(|i| self.checks.get(i).copied())
            .ok_or_else(|| invalid_data("spooled finding names an unknown check"))?;
        let severity = usize::try_from(self.number()?)
            .ok()
            .and_then(|i| SEVERITIES.get(i).copied())
            .ok_or_else(|| invalid_data("spooled finding has an unknown severity"))?;
        let message = self.text()?;
        let path = self.text()?;
        let container = self.optional()?;
        let suppressed = self.suppression()?.map(Box::new);
        let definition = u32::try_from(self.number()?)
            .map_err(|_| invalid_data("spooled definition out of range"))?;
        let source = self.source()?;
        Ok(Some(Reported {
            finding: Finding {
                object,
                check,
                severity,
                message,
                path,
                container,
                suppressed,
            },
            definition,
            source,
        }))
    }

    fn object(&mut self) -> io::Result<Arc<ObjectRef>> {
        if self.byte()? == 0 {
            return self
                .last_object
                .clone()
                .ok_or_else(|| invalid_data("spooled run starts with a repeated object"));
        }
        let object = Arc::new(ObjectRef {
            api_version: self.text()?,
            kind: self.text()?,
            namespace: self.optional()?,
            name: self.text()?,
            uid: self.optional()?,
        });
        self.last_object = Some(Arc::clone(&object));
        Ok(object)
    }

    fn suppression(&mut self) -> io::Result<Option<Suppression>> {
        let source = match self.byte()? {
            0 => return Ok(None),
            1 => SuppressionSource::Annotation,
            2 => SuppressionSource::Policy(self.text()?),
            3 => SuppressionSource::Builtin,
            _ => return Err(invalid_data("spooled suppression has an unknown source")),
        };
        let reason = self.text()?;
        Ok(Some(Suppression { source, reason }))
    }

    fn source(&mut self) -> io::Result<Option<Source>> {
        let file = match self.byte()? {
            0 => return Ok(None),
            1 => self
                .last_file
                .clone()
                .ok_or_else(|| invalid_data("spooled run starts with a repeated file"))?,
            2 => {
                let file: Arc<str> = self.text()?.into();
                self.last_file = Some(Arc::clone(&file));
                file
            }
            _ => return Err(invalid_data("spooled source has an unknown tag")),
        };
        let line = self.size()?;
        let document = self.size()?;
        Ok(Some(Source {
            file,
            line,
            document,
        }))
    }

    fn byte(&mut self) -> io::Result<u8> {
        let mut byte = [0u8; 1];
        self.input.read_exact(&mut byte)?;
        Ok(byte[0])
    }

    fn number(&mut self) -> io::Result<u64> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(invalid_data("spooled number too long"))
    }

    fn size(&mut self) -> io::Result<usize> {
        usize::try_from(self.number()?).map_err(|_| invalid_data("spooled size out of range"))
    }

    fn text(&mut self) -> io::Result<String> {
        let len = self.size()?;
        let buffered = self.input.buffer();
        let bytes = if buffered.len() >= len {
            // Most texts are in the read buffer already: one copy.
            let bytes = buffered[..len].to_vec();
            self.input.consume(len);
            bytes
        } else {
            // `take` reads no more than the run holds, whatever the length
            // says.
            let mut bytes = Vec::new();
            (&mut self.input).take(len as u64).read_to_end(&mut bytes)?;
            if bytes.len() != len {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            bytes
        };
        String::from_utf8(bytes).map_err(|_| invalid_data("spooled text is not UTF-8"))
    }

    fn optional(&mut self) -> io::Result<Option<String>> {
        match self.byte()? {
            0 => Ok(None),
            1 => self.text().map(Some),
            _ => Err(invalid_data("spooled optional text has an unknown tag")),
        }
    }
}

/// Where the merge takes findings from: a run, or the findings held.
enum Input<'a> {
    Run(Decoder<'a>),
    Held(std::slice::Iter<'a, Reported>),
}

impl Input<'_> {
    fn next(&mut self) -> io::Result<Option<Reported>> {
        match self {
            Input::Run(decoder) => decoder.next(),
            Input::Held(findings) => Ok(findings.next().cloned()),
        }
    }
}

/// The smallest finding of each input, in a min-heap.
struct Head {
    reported: Reported,
    input: usize,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: `BinaryHeap` is a max-heap.
        other
            .reported
            .order(&self.reported)
            .then(other.input.cmp(&self.input))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

/// A k-way merge of sorted, deduplicated inputs, removing the findings
/// several inputs hold.
struct Merge<'a> {
    inputs: Vec<Input<'a>>,
    heap: BinaryHeap<Head>,
    started: bool,
    done: bool,
    /// The last object and file given out: consecutive findings from
    /// different runs share them too.
    last_object: Option<Arc<ObjectRef>>,
    last_file: Option<Arc<str>>,
}

impl<'a> Merge<'a> {
    fn new(
        runs: &'a [Run],
        held: &'a [Reported],
        checks: &'a [&'static Check],
        read_buffer: usize,
    ) -> Self {
        let runs = runs
            .iter()
            .map(|run| Input::Run(Decoder::new(run, checks, read_buffer)));
        let inputs: Vec<Input<'a>> = runs
            .chain(std::iter::once(Input::Held(held.iter())))
            .collect();
        Merge {
            heap: BinaryHeap::with_capacity(inputs.len()),
            inputs,
            started: false,
            done: false,
            last_object: None,
            last_file: None,
        }
    }

    /// Puts the next finding of input `input` on the heap.
    fn refill(&mut self, input: usize) -> io::Result<()> {
        if let Some(reported) = self.inputs[input].next()? {
            self.heap.push(Head { reported, input });
        }
        Ok(())
    }

    fn next_reported(&mut self) -> io::Result<Option<Reported>> {
        if !self.started {
            self.started = true;
            for input in 0..self.inputs.len() {
                self.refill(input)?;
            }
        }
        let Some(head) = self.heap.pop() else {
            return Ok(None);
        };
        self.refill(head.input)?;
        // Each input is deduplicated, so a copy of this finding in another
        // input is at that input's head now.
        while let Some(next) = self.heap.peek()
            && next.reported.order(&head.reported) == Ordering::Equal
        {
            let input = next.input;
            self.heap.pop();
            self.refill(input)?;
        }
        Ok(Some(self.shared(head.reported)))
    }

    /// `reported` with the object and file of the previous finding when
    /// they are equal.
    fn shared(&mut self, mut reported: Reported) -> Reported {
        match &self.last_object {
            Some(last) if **last == *reported.finding.object => {
                reported.finding.object = Arc::clone(last);
            }
            _ => self.last_object = Some(Arc::clone(&reported.finding.object)),
        }
        if let Some(source) = &mut reported.source {
            match &self.last_file {
                Some(last) if **last == *source.file => source.file = Arc::clone(last),
                _ => self.last_file = Some(Arc::clone(&source.file)),
            }
        }
        reported
    }
}

impl Iterator for Merge<'_> {
    type Item = io::Result<Reported>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_reported() {
            Ok(Some(reported)) => Some(Ok(reported)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64: reproducible findings without a dependency.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn objects() -> Vec<Arc<ObjectRef>> {
        let mut objects = Vec::new();
        for i in 0..12 {
            objects.push(Arc::new(ObjectRef {
                api_version: "apps/v1".into(),
                kind: if i % 3 == 0 {
                    "Deployment"
                } else {
                    "StatefulSet"
                }
                .into(),
                namespace: (i % 4 != 0).then(|| format!("ns-{}", i % 3)),
                name: format!("app-{}", i % 5),
                uid: (i % 2 == 0).then(|| format!("uid-{i}")),
            }));
        }
        objects
    }

    fn random_reported(random: &mut Random, objects: &[Arc<ObjectRef>]) -> Reported {
        let catalog = crate::checks::catalog();
        let files: [Arc<str>; 2] = ["a.yaml".into(), "dir/b.yaml".into()];
        let suppressed = match random.below(5) {
            0 => Some(Suppression {
                source: SuppressionSource::Annotation,
                reason: "known".into(),
            }),
            1 => Some(Suppression {
                source: SuppressionSource::Policy(format!("exception-{}", random.below(2))),
                reason: "accepted risk é".into(),
            }),
            2 => Some(Suppression {
                source: SuppressionSource::Builtin,
                reason: String::new(),
            }),
            _ => None,
        };
        let definition = random.below(2) as u32;
        let source = (random.below(4) != 0).then(|| Source {
            file: Arc::clone(&files[random.below(2)]),
            line: random.below(3) * 1000 + 1,
            document: random.below(2),
        });
        Reported {
            finding: Finding {
                object: Arc::clone(&objects[random.below(objects.len())]),
                check: catalog[random.below(6)],
                severity: SEVERITIES[random.below(5)],
                message: format!("message {}", random.below(3)),
                path: format!("spec.containers[{}]", random.below(3)),
                container: (random.below(2) == 0).then(|| format!("c{}", random.below(2))),
                suppressed: suppressed.map(Box::new),
            },
            definition,
            source,
        }
    }

    /// What `palisade scan` does with findings held in memory: sort by the
    /// finding, then its definition, and drop repeats.
    fn in_memory(mut findings: Vec<Reported>) -> Vec<Reported> {
        let key = |r: &Reported| {
            (
                r.finding.clone(),
                r.definition,
                r.source.clone().map(|s| (s.file, s.line, s.document)),
            )
        };
        findings.sort_by_key(key);
        findings.dedup_by_key(|r| key(r));
        findings
    }

    fn spooled(findings: &[Reported], budget: usize) -> (Vec<Reported>, usize) {
        let mut spool = FindingSpool::with_budget(budget);
        for reported in findings {
            spool.push(reported.clone());
        }
        let spooled = spool.finish().expect("runs written");
        let read: Vec<Reported> = spooled
            .iter()
            .collect::<io::Result<_>>()
            .expect("runs read");
        assert!(spooled.runs() < MAX_RUNS, "{} runs", spooled.runs());
        (read, spooled.spills())
    }

    /// Every field, compared one by one (the order compares the check by id
    /// only, and severity is in it; this compares the check itself).
    fn assert_same(actual: &[Reported], expected: &[Reported]) {
        assert_eq!(actual.len(), expected.len());
        for (a, e) in actual.iter().zip(expected) {
            assert_eq!(a.order(e), Ordering::Equal, "{a:?} != {e:?}");
            assert!(std::ptr::eq(a.finding.check, e.finding.check));
            assert_eq!(a.finding.suppressed, e.finding.suppressed);
            assert_eq!(a.source, e.source);
            assert_eq!(*a.finding.object, *e.finding.object);
            assert_eq!(a.finding.object.uid, e.finding.object.uid);
        }
    }

    #[test]
    fn many_runs_give_the_order_of_an_in_memory_sort() {
        let objects = objects();
        for seed in 0..8 {
            let mut random = Random(seed);
            let count = 200 + random.below(800);
            let mut findings: Vec<Reported> = Vec::new();
            for _ in 0..count {
                // A quarter repeat an earlier finding, as a later definition
                // of an object evaluated again can.
                let repeat = !findings.is_empty() && random.below(4) == 0;
                let reported = match repeat {
                    true => findings[random.below(findings.len())].clone(),
                    false => random_reported(&mut random, &objects),
                };
                findings.push(reported);
            }
            let expected = in_memory(findings.clone());
            assert!(expected.len() < findings.len(), "the input has duplicates");
            let (actual, spills) = spooled(&findings, 2_000);
            assert!(spills > 10, "seed {seed}: {spills} spills");
            assert_same(&actual, &expected);
        }
    }

    #[test]
    fn a_run_per_finding_still_merges() {
        let objects = objects();
        let mut random = Random(99);
        let findings: Vec<Reported> = (0..300)
            .map(|_| random_reported(&mut random, &objects))
            .collect();
        let (actual, spills) = spooled(&findings, 0);
        assert_eq!(spills, findings.len(), "compacted past MAX_RUNS on the way");
        assert_same(&actual, &in_memory(findings));
    }

    #[test]
    fn duplicates_across_runs_are_removed() {
        let objects = objects();
        let mut random = Random(7);
        let one = random_reported(&mut random, &objects);
        let other = random_reported(&mut random, &objects);
        let findings = vec![one.clone(), other.clone(), one.clone(), one, other];
        let (actual, spills) = spooled(&findings, 0);
        assert_eq!(spills, 5);
        assert_same(&actual, &in_memory(findings));
        assert_eq!(actual.len(), 2);
    }

    #[test]
    fn empty_and_single() {
        let (actual, spills) = spooled(&[], 0);
        assert!(actual.is_empty());
        assert_eq!(spills, 0);
        let objects = objects();
        let one = random_reported(&mut Random(3), &objects);
        for budget in [0, DEFAULT_BUDGET_BYTES] {
            let (actual, _) = spooled(std::slice::from_ref(&one), budget);
            assert_same(&actual, std::slice::from_ref(&one));
        }
    }

    #[test]
    fn findings_within_the_budget_write_no_file() {
        let objects = objects();
        let mut random = Random(11);
        let findings: Vec<Reported> = (0..500)
            .map(|_| random_reported(&mut random, &objects))
            .collect();
        let (actual, spills) = spooled(&findings, DEFAULT_BUDGET_BYTES);
        assert_eq!(spills, 0);
        assert_same(&actual, &in_memory(findings));
    }

    #[test]
    fn a_run_that_cannot_be_written_is_an_error_and_fitting_findings_need_no_file() {
        let objects = objects();
        let mut random = Random(23);
        let nowhere = std::env::temp_dir().join("palisade-spool-test-no-such-directory");
        let mut spool = FindingSpool::with_budget(0).in_dir(&nowhere);
        spool.push(random_reported(&mut random, &objects));
        spool.push(random_reported(&mut random, &objects));
        assert!(spool.finish().is_err(), "no directory to write runs in");
        // Within the budget nothing is written: no directory is needed.
        let mut spool = FindingSpool::new().in_dir(&nowhere);
        let one = random_reported(&mut random, &objects);
        spool.push(one.clone());
        let spooled = spool.finish().expect("nothing written");
        let read: Vec<Reported> = spooled.iter().collect::<io::Result<_>>().expect("read");
        assert_same(&read, &[one]);
    }

    #[test]
    fn texts_longer_than_the_read_buffer_read_back_whole() {
        let objects = objects();
        let mut random = Random(29);
        let findings: Vec<Reported> = (0..40)
            .map(|i| {
                let mut reported = random_reported(&mut random, &objects);
                reported.finding.message = format!("{i}: {}", "é".repeat(MAX_READ_BUFFER / 3 + i));
                reported
            })
            .collect();
        let (actual, spills) = spooled(&findings, 0);
        assert_eq!(spills, findings.len());
        assert_same(&actual, &in_memory(findings));
        assert!(
            actual
                .iter()
                .all(|r| r.finding.message.len() > MAX_READ_BUFFER / 2)
        );
    }

    #[test]
    fn iterates_more_than_once_and_at_once() {
        let objects = objects();
        let mut random = Random(5);
        let mut spool = FindingSpool::with_budget(1_000);
        for _ in 0..400 {
            spool.push(random_reported(&mut random, &objects));
        }
        let spooled = spool.finish().expect("runs written");
        assert!(spooled.runs() > 1);
        let mut first = spooled.iter();
        let mut second = spooled.iter();
        // Interleaved reads: each merge reads the runs at its own offsets.
        loop {
            match (first.next(), second.next()) {
                (None, None) => break,
                (Some(a), Some(b)) => {
                    let (a, b) = (a.expect("read"), b.expect("read"));
                    assert_eq!(a.order(&b), Ordering::Equal);
                }
                _ => panic!("the two reads differ in length"),
            }
        }
    }

    #[test]
    fn findings_of_one_object_share_it_when_read_back() {
        let objects = objects();
        let mut random = Random(13);
        let findings: Vec<Reported> = (0..400)
            .map(|_| random_reported(&mut random, &objects))
            .collect();
        let (actual, spills) = spooled(&findings, 500);
        assert!(spills > 1);
        for pair in actual.windows(2) {
            let (a, b) = (&pair[0].finding.object, &pair[1].finding.object);
            assert_eq!(a == b, Arc::ptr_eq(a, b), "{a:?} {b:?}");
        }
    }

    #[test]
    fn a_damaged_run_is_an_error_not_a_panic() {
        let objects = objects();
        let mut random = Random(17);
        let mut spool = FindingSpool::with_budget(0);
        for _ in 0..3 {
            spool.push(random_reported(&mut random, &objects));
        }
        let spooled = spool.finish().expect("runs written");
        spooled.runs[1].file.set_len(5).expect("truncate");
        let results: Vec<io::Result<Reported>> = spooled.iter().collect();
        let error = results.last().expect("something read");
        assert!(error.is_err(), "{results:?}");
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
    }
}
