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
        "{file}:{line}: {object} is also defined at {first}; findings are reported at the first"
    )]
    DuplicateObject {
        file: String,
        line: usize,
        object: String,
        first: String,
    },

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
