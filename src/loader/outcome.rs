//! What reading a piece of the input gave, recorded in input order on the
//! thread that read it and replayed into a [`Loaded`] on the thread that
//! consumes the objects: a file read in chunks on several threads then
//! reports exactly what reading it whole, in one pass, reports.

use std::sync::Arc;

use super::{LoadError, Loaded, MAX_ERRORS_PER_FILE, Origin};

/// One thing that happened while reading the input.
#[derive(Debug)]
pub enum Outcome<T> {
    /// A problem met while finding the inputs (a missing path, an empty
    /// directory, standard input named twice).
    PlanError(LoadError),
    /// A directory that could not be listed.
    PlanWarning(LoadError),
    /// A file (or standard input) was read as text; its documents follow.
    FileRead,
    /// A file could not be read as text.
    Unreadable(LoadError, Origin),
    /// A document of the file was read, whatever it held.
    Document,
    /// A document that does not parse: it counts towards
    /// [`MAX_ERRORS_PER_FILE`].
    Invalid(LoadError),
    /// An unrendered template, skipped with a warning.
    Template(LoadError),
    /// A document or List item that is not a Kubernetes object.
    NonKubernetes,
    /// A Kubernetes object, scanned or not.
    KubernetesDocument,
    /// An object of a kind that is not scanned, by its qualified kind.
    SkippedKind(String),
    /// A Kubernetes object that cannot be decoded.
    Error(LoadError),
    /// A decoded object (or what the caller's `map` made of it).
    Object(T),
    /// The end of a file's documents.
    FileEnd { file: Arc<str>, origin: Origin },
}

/// Builds a [`Loaded`] from outcomes in input order.
#[derive(Debug, Default)]
pub struct Tally {
    loaded: Loaded,
    /// Kubernetes documents seen, scanned or not: none at all is an error.
    kubernetes_documents: usize,
    /// Documents of the current file.
    documents: usize,
    /// Documents of the current file that do not parse.
    invalid: usize,
}

impl Tally {
    /// Takes in one outcome; objects go to `on_item`.
    pub fn take<T>(&mut self, outcome: Outcome<T>, on_item: &mut impl FnMut(T)) {
        let loaded = &mut self.loaded;
        // After too many broken documents, the rest of the file is not read.
        let file_abandoned = self.invalid >= MAX_ERRORS_PER_FILE;
        match outcome {
            Outcome::PlanError(err) => loaded.errors.push(err),
            Outcome::PlanWarning(err) => loaded.warnings.push(err),
            Outcome::FileRead => {
                loaded.files += 1;
                self.documents = 0;
                self.invalid = 0;
            }
            Outcome::Unreadable(err, Origin::Named) => loaded.errors.push(err),
            Outcome::Unreadable(err, Origin::Walked) => {
                loaded.warnings.push(err);
                loaded.skipped.files += 1;
            }
            Outcome::FileEnd { file, origin } => {
                if self.documents == 0 && origin == Origin::Named {
                    loaded.warnings.push(LoadError::EmptyFile {
                        file: file.to_string(),
                    });
                }
                if self.invalid >= MAX_ERRORS_PER_FILE {
                    loaded.errors.push(LoadError::TooManyErrors {
                        file: file.to_string(),
                        shown: self.invalid,
                    });
                }
                self.documents = 0;
                self.invalid = 0;
            }
            _ if file_abandoned => {}
            Outcome::Document => self.documents += 1,
            Outcome::Invalid(err) => {
                loaded.errors.push(err);
                self.invalid += 1;
            }
            Outcome::Template(warning) => {
                loaded.skipped.templates += 1;
                loaded.warnings.push(warning);
            }
            Outcome::NonKubernetes => loaded.skipped.non_kubernetes += 1,
            Outcome::KubernetesDocument => self.kubernetes_documents += 1,
            Outcome::SkippedKind(kind) => *loaded.skipped.kinds.entry(kind).or_default() += 1,
            Outcome::Error(err) => loaded.errors.push(err),
            Outcome::Object(item) => on_item(item),
        }
    }

    /// The result; input with no Kubernetes object at all is an error.
    pub fn finish(mut self, inputs: &str) -> Loaded {
        if self.kubernetes_documents == 0 && self.loaded.errors.is_empty() {
            self.loaded.errors.push(LoadError::NoObjects {
                inputs: inputs.to_owned(),
            });
        }
        self.loaded
    }
}
