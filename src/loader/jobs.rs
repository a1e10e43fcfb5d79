//! The input cut into pieces of work for the loader's threads: whole small
//! files, and large YAML files split into chunks of whole documents, so
//! that both cores parse one big file. Each piece's [`Outcome`]s are
//! replayed in input order, which makes the result the same as reading
//! everything in one pass.

use std::collections::{BTreeSet, VecDeque};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::outcome::Outcome;
use super::reader::Reader;
use super::split::{RawDocument, split_documents};
use super::{
    Input, LoadError, LoadedObject, Loader, Origin, STDIN_NAME, is_json_name, looks_like_json, read,
};

/// One thing to do, in input order, when loading.
#[derive(Debug)]
pub enum Step {
    File(PathBuf, Origin),
    Stdin,
    /// Text already read (standard input), or why it could not be.
    Text {
        file: Arc<str>,
        text: Result<String, LoadError>,
    },
    Error(LoadError),
    Warning(LoadError),
}

/// What to read, in input order: files named or found by walking
/// directories (each real file once), standard input, and the problems met
/// on the way.
pub fn plan(inputs: &[Input]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut seen = BTreeSet::new();
    let mut add_file = |steps: &mut Vec<Step>, path: PathBuf, origin: Origin| {
        let real = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if seen.insert(real) {
            steps.push(Step::File(path, origin));
        }
    };
    for input in inputs {
        let path = match input {
            Input::Stdin => {
                steps.push(Step::Stdin);
                continue;
            }
            Input::Path(path) => path,
        };
        let name = path.display().to_string();
        match fs::metadata(path) {
            Err(source) => steps.push(Step::Error(read::unreadable(&name, source))),
            Ok(meta) if meta.is_dir() => {
                let mut warnings = Vec::new();
                let found = read::walk(path, &mut warnings);
                steps.extend(warnings.into_iter().map(Step::Warning));
                if found.is_empty() {
                    steps.push(Step::Error(LoadError::EmptyDirectory { dir: name }));
                }
                for file in found {
                    add_file(&mut steps, file, Origin::Walked);
                }
            }
            Ok(_) => add_file(&mut steps, path.clone(), Origin::Named),
        }
    }
    steps
}

/// Reads standard input for its first step (on the calling thread: a
/// locked standard input cannot move to another), and makes any later one
/// an error.
pub fn read_stdin(steps: &mut [Step], stdin: impl Read, max_file_size: u64) {
    let mut stdin = Some(stdin);
    for step in steps.iter_mut().filter(|s| matches!(s, Step::Stdin)) {
        *step = match stdin.take() {
            Some(reader) => Step::Text {
                file: Arc::from(STDIN_NAME),
                text: read::read_limited(reader, STDIN_NAME, max_file_size)
                    .and_then(|bytes| read::decode_text(bytes, STDIN_NAME)),
            },
            None => Step::Error(LoadError::StdinTwice),
        };
    }
}

/// A document of a text, by its place in the text.
#[derive(Clone, Copy, Debug)]
pub struct DocumentSpan {
    start: usize,
    end: usize,
    first_line: usize,
    content_line: Option<usize>,
    index: usize,
}

impl DocumentSpan {
    fn of(text: &str, raw: &RawDocument<'_>) -> Self {
        let start = raw.text.as_ptr() as usize - text.as_ptr() as usize;
        DocumentSpan {
            start,
            end: start + raw.text.len(),
            first_line: raw.first_line,
            content_line: raw.content_line,
            index: raw.index,
        }
    }

    fn raw<'a>(&self, text: &'a str) -> RawDocument<'a> {
        RawDocument {
            text: &text[self.start..self.end],
            first_line: self.first_line,
            content_line: self.content_line,
            index: self.index,
        }
    }
}

/// One piece of work.
#[derive(Debug)]
pub enum Job {
    Error(LoadError),
    Warning(LoadError),
    /// A file to read and parse whole.
    File(PathBuf, Origin),
    /// A file that could not be read.
    Unreadable(LoadError, Origin),
    /// A text to parse whole.
    Text {
        file: Arc<str>,
        text: Arc<String>,
        json: bool,
        origin: Origin,
    },
    /// Some documents of a large YAML text, in order.
    Chunk {
        file: Arc<str>,
        text: Arc<String>,
        documents: Vec<DocumentSpan>,
        /// The text's first chunk: the file counts as read.
        first: bool,
        /// The text's last chunk: the file's end.
        last: Option<Origin>,
    },
}

/// The jobs of a plan, produced as the threads ask for them: a large file
/// is read (and split) only when its turn comes.
pub struct Jobs {
    steps: std::vec::IntoIter<Step>,
    /// Chunks of the file being handed out.
    pending: VecDeque<Job>,
    max_file_size: u64,
    chunk_bytes: usize,
}

impl Jobs {
    pub fn new(steps: Vec<Step>, max_file_size: u64, chunk_bytes: usize) -> Self {
        Jobs {
            steps: steps.into_iter(),
            pending: VecDeque::new(),
            max_file_size,
            chunk_bytes: chunk_bytes.max(1),
        }
    }

    /// A file: small ones are read by the thread that parses them; a large
    /// one is read here and split among the threads.
    fn file(&mut self, path: PathBuf, origin: Origin) -> Job {
        let large = fs::metadata(&path)
            .is_ok_and(|meta| meta.is_file() && meta.len() > self.chunk_bytes as u64);
        if !large {
            return Job::File(path, origin);
        }
        match read_text(&path, self.max_file_size) {
            Err(err) => Job::Unreadable(err, origin),
            Ok((text, json)) => {
                let file = Arc::from(path.display().to_string());
                self.text(file, text, json, origin)
            }
        }
    }

    fn text(&mut self, file: Arc<str>, text: String, json: bool, origin: Origin) -> Job {
        let text = Arc::new(text);
        // JSON values cannot be found without parsing: a JSON file is read
        // by one thread.
        if json || text.len() <= self.chunk_bytes {
            return Job::Text {
                file,
                text,
                json,
                origin,
            };
        }
        let mut chunks: Vec<Vec<DocumentSpan>> = vec![Vec::new()];
        let mut bytes = 0;
        for raw in split_documents(&text) {
            if bytes >= self.chunk_bytes {
                chunks.push(Vec::new());
                bytes = 0;
            }
            bytes += raw.text.len();
            chunks
                .last_mut()
                .expect("one chunk")
                .push(DocumentSpan::of(&text, &raw));
        }
        let count = chunks.len();
        self.pending.extend(
            chunks
                .into_iter()
                .enumerate()
                .map(|(i, documents)| Job::Chunk {
                    file: Arc::clone(&file),
                    text: Arc::clone(&text),
                    documents,
                    first: i == 0,
                    last: (i + 1 == count).then_some(origin),
                }),
        );
        self.pending.pop_front().expect("one chunk")
    }
}

impl Iterator for Jobs {
    type Item = Job;

    fn next(&mut self) -> Option<Job> {
        if let Some(job) = self.pending.pop_front() {
            return Some(job);
        }
        Some(match self.steps.next()? {
            Step::Error(err) => Job::Error(err),
            Step::Warning(err) => Job::Warning(err),
            Step::File(path, origin) => self.file(path, origin),
            Step::Text { file, text } => match text {
                Ok(text) => {
                    let json = looks_like_json(&text);
                    self.text(file, text, json, Origin::Named)
                }
                Err(err) => Job::Unreadable(err, Origin::Named),
            },
            // `read_stdin` leaves none.
            Step::Stdin => Job::Error(LoadError::StdinTwice),
        })
    }
}

/// A file's text, and whether it is JSON.
fn read_text(path: &Path, max_file_size: u64) -> Result<(String, bool), LoadError> {
    let name = path.display().to_string();
    let text = read::read_file(path, &name, max_file_size)
        .and_then(|bytes| read::decode_text(bytes, &name))?;
    let json = is_json_name(path) || (!read::is_manifest_name(path) && looks_like_json(&text));
    Ok((text, json))
}

/// Does one job, objects mapped by `map`.
pub fn run<T>(loader: &Loader, map: &impl Fn(LoadedObject) -> T, job: Job) -> Vec<Outcome<T>> {
    let mut out = Vec::new();
    match job {
        Job::Error(err) => out.push(Outcome::PlanError(err)),
        Job::Warning(err) => out.push(Outcome::PlanWarning(err)),
        Job::Unreadable(err, origin) => out.push(Outcome::Unreadable(err, origin)),
        Job::File(path, origin) => match read_text(&path, loader.max_file_size) {
            Err(err) => out.push(Outcome::Unreadable(err, origin)),
            Ok((text, json)) => {
                let file = Arc::from(path.display().to_string());
                read_whole(loader, map, &file, &text, json, origin, &mut out);
            }
        },
        Job::Text {
            file,
            text,
            json,
            origin,
        } => read_whole(loader, map, &file, &text, json, origin, &mut out),
        Job::Chunk {
            file,
            text,
            documents,
            first,
            last,
        } => {
            if first {
                out.push(Outcome::FileRead);
            }
            let mut reader = Reader {
                kinds: &loader.kinds,
                map,
                file: &file,
                out: &mut out,
            };
            reader.yaml(documents.iter().map(|span| span.raw(&text)));
            if let Some(origin) = last {
                out.push(Outcome::FileEnd { file, origin });
            }
        }
    }
    out
}

fn read_whole<T>(
    loader: &Loader,
    map: &impl Fn(LoadedObject) -> T,
    file: &Arc<str>,
    text: &str,
    json: bool,
    origin: Origin,
    out: &mut Vec<Outcome<T>>,
) {
    out.push(Outcome::FileRead);
    let mut reader = Reader {
        kinds: &loader.kinds,
        map,
        file,
        out,
    };
    if json {
        reader.json(text);
    } else {
        reader.yaml(split_documents(text));
    }
    out.push(Outcome::FileEnd {
        file: Arc::clone(file),
        origin,
    });
}
