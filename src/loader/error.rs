use crate::model::DecodeError;

/// Everything that can go wrong reading manifests. Every message starts with
/// the file (or `<stdin>`), and with the line and column where one is known,
/// in the `file:line:column:` form editors and CI logs link.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: no such file or directory")]
    NotFound { file: String },

    #[error("{file}: cannot read: {source}")]
    Unreadable {
        file: String,
        source: std::io::Error,
    },

    #[error(
        "{file}: file exceeds the {limit} size limit ({size} bytes); split it into smaller files",
        limit = human_size(*.limit)
    )]
    TooLarge { file: String, size: u64, limit: u64 },

    #[error("{file}: binary file (contains NUL bytes), not a YAML or JSON manifest")]
    Binary { file: String },

    #[error("{file}: file is {encoding} encoded; manifests must be UTF-8")]
    WrongEncoding {
        file: String,
        encoding: &'static str,
    },

    #[error(
        "{file}:{line}:{column}: not valid UTF-8 (byte offset {offset}); manifests must be UTF-8"
    )]
    NotUtf8 {
        file: String,
        line: usize,
        column: usize,
        offset: usize,
    },

    #[error("{dir}: no .yaml, .yml or .json files in this directory")]
    EmptyDirectory { dir: String },

    #[error("{file}: empty file, nothing to scan")]
    EmptyFile { file: String },

    #[error("{file}:{line}:{column}: invalid YAML: {message}")]
    InvalidYaml {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{file}:{line}:{column}: invalid JSON: {message}")]
    InvalidJson {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },

    /// A document that has one of `apiVersion` and `kind` but not the other,
    /// or has them with a value that is not a string.
    #[error("{file}:{line}: document {document}: {message}")]
    TypeMeta {
        file: String,
        line: usize,
        document: usize,
        message: String,
    },

    /// `line` is the line of the field that failed, when it can be found
    /// in the text, else of the document.
    #[error("{file}:{line}: document {document}{item}: cannot decode {source}", item = item_suffix(*.item))]
    Decode {
        file: String,
        line: usize,
        document: usize,
        /// Index in the `items` of a List document.
        item: Option<usize>,
        source: Box<DecodeError>,
    },

    #[error(
        "{file}:{line}: {object} is also defined at {first}; each definition is checked on its own and its findings reported where it is"
    )]
    DuplicateObject {
        file: String,
        line: usize,
        object: String,
        first: String,
    },

    /// A document with Go template actions that is not valid YAML or does
    /// not decode: an unrendered Helm template, skipped.
    #[error(
        "{file}:{line}: skipped: a template (`{{{{ … }}}}`), not a Kubernetes manifest; scan its rendered output (`helm template … | palisade scan -`)"
    )]
    Template { file: String, line: usize },

    #[error("{file}: stopped after {shown} errors")]
    TooManyErrors { file: String, shown: usize },

    #[error("`-` (standard input) is given more than once")]
    StdinTwice,

    #[error("no Kubernetes objects found in {inputs}")]
    NoObjects { inputs: String },

    #[error("{file}: {message}")]
    Policy { file: String, message: String },
}

/// `32 MiB` for whole mebibytes, bytes otherwise.
fn human_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

fn item_suffix(item: Option<usize>) -> String {
    item.map(|i| format!(", List item {i}")).unwrap_or_default()
}

/// An input problem as reports show it: where, which object and field, and
/// why, never the offending value.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorEntry {
    /// The file, `<stdin>`, or none for a problem with the command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line of the offending field (or document).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// 0-based index of the document in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    /// `Kind name` of the object that failed to decode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Path of the offending field, e.g. `spec.replicas`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Why, without the location.
    pub message: String,
}

impl ErrorEntry {
    /// `file:line:column`, as much of it as is known.
    pub fn location(&self) -> Option<String> {
        let file = self.file.as_deref()?;
        Some(match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{file}:{line}:{column}"),
            (Some(line), None) => format!("{file}:{line}"),
            _ => file.to_owned(),
        })
    }
}

impl LoadError {
    /// A manifest that could not be read or decoded, as opposed to a
    /// problem with the command line (a missing path, `-` twice, nothing to
    /// scan) or the policy. `--invalid=warn` lets the scan's exit status
    /// ignore these.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            LoadError::Unreadable { .. }
                | LoadError::TooLarge { .. }
                | LoadError::Binary { .. }
                | LoadError::WrongEncoding { .. }
                | LoadError::NotUtf8 { .. }
                | LoadError::InvalidYaml { .. }
                | LoadError::InvalidJson { .. }
                | LoadError::TypeMeta { .. }
                | LoadError::Decode { .. }
                | LoadError::TooManyErrors { .. }
        )
    }

    /// Where the problem is: the file (or directory), line and column, as
    /// far as they are known.
    fn location(&self) -> (Option<&str>, Option<usize>, Option<usize>) {
        match self {
            LoadError::NotUtf8 {
                file, line, column, ..
            }
            | LoadError::InvalidYaml {
                file, line, column, ..
            }
            | LoadError::InvalidJson {
                file, line, column, ..
            } => (Some(file), Some(*line), Some(*column)),
            LoadError::TypeMeta { file, line, .. }
            | LoadError::Decode { file, line, .. }
            | LoadError::DuplicateObject { file, line, .. }
            | LoadError::Template { file, line } => (Some(file), Some(*line), None),
            LoadError::NotFound { file }
            | LoadError::Unreadable { file, .. }
            | LoadError::TooLarge { file, .. }
            | LoadError::Binary { file }
            | LoadError::WrongEncoding { file, .. }
            | LoadError::EmptyFile { file }
            | LoadError::TooManyErrors { file, .. }
            | LoadError::Policy { file, .. }
            | LoadError::EmptyDirectory { dir: file } => (Some(file), None, None),
            LoadError::StdinTwice | LoadError::NoObjects { .. } => (None, None, None),
        }
    }

    /// The report entry of this problem.
    pub fn entry(&self) -> ErrorEntry {
        let (file, line, column) = self.location();
        let mut entry = ErrorEntry {
            file: file.map(str::to_owned),
            line,
            column,
            message: self.reason(),
            ..ErrorEntry::default()
        };
        match self {
            LoadError::TypeMeta { document, .. } => entry.document = Some(*document),
            LoadError::Decode {
                document, source, ..
            } => {
                entry.document = Some(*document);
                entry.object = Some(format!("{} {}", source.kind, source.name));
                entry.field = Some(source.path.clone());
            }
            _ => {}
        }
        entry
    }

    /// The message without the `file:line:column: ` it starts with.
    fn reason(&self) -> String {
        let text = self.to_string();
        let location = match self.location() {
            (Some(file), Some(line), Some(column)) => format!("{file}:{line}:{column}: "),
            (Some(file), Some(line), None) => format!("{file}:{line}: "),
            (Some(file), _, _) => format!("{file}: "),
            (None, _, _) => String::new(),
        };
        text.strip_prefix(&location).unwrap_or(&text).to_owned()
    }
}
