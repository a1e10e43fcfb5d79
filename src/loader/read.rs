//! Reading inputs as text: size limit, encoding checks, directory walks.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::LoadError;

/// Files larger than this are refused, not read: a manifest set that big is
/// almost certainly a mistake (a log, a dump), and reading it would cost
/// memory proportional to its size.
pub const MAX_FILE_SIZE: u64 = 32 * 1024 * 1024;

/// Reads at most `limit` bytes from `reader`, refusing anything longer.
pub fn read_limited(reader: impl Read, name: &str, limit: u64) -> Result<Vec<u8>, LoadError> {
    read_limited_sized(reader, name, limit, 0)
}

/// [`read_limited`] into a buffer of `expected` bytes to start with: the
/// size a file says it has, so that reading it does not double the buffer
/// past it (a 10 MB file would otherwise take 16 MB).
fn read_limited_sized(
    reader: impl Read,
    name: &str,
    limit: u64,
    expected: u64,
) -> Result<Vec<u8>, LoadError> {
    // One byte more: reading up to the end needs room to see the end.
    let capacity = usize::try_from(expected.min(limit)).map_or(0, |n| n.saturating_add(1));
    let mut bytes = Vec::with_capacity(capacity);
    reader
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| unreadable(name, source))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(name, bytes.len() as u64, limit));
    }
    Ok(bytes)
}

/// Reads a file, checking its size before reading it whole.
pub fn read_file(path: &Path, name: &str, limit: u64) -> Result<Vec<u8>, LoadError> {
    let file = fs::File::open(path).map_err(|source| unreadable(name, source))?;
    // Regular files say their size up front: refuse without reading. Pipes
    // and devices don't, and `read_limited` stops at the limit instead.
    let size = match file.metadata() {
        Ok(meta) if meta.is_file() => meta.len(),
        _ => 0,
    };
    if size > limit {
        return Err(too_large(name, size, limit));
    }
    read_limited_sized(file, name, limit, size)
}

fn too_large(name: &str, size: u64, limit: u64) -> LoadError {
    LoadError::TooLarge {
        file: name.to_owned(),
        size,
        limit,
    }
}

pub fn unreadable(name: &str, source: io::Error) -> LoadError {
    if source.kind() == io::ErrorKind::NotFound {
        LoadError::NotFound {
            file: name.to_owned(),
        }
    } else {
        LoadError::Unreadable {
            file: name.to_owned(),
            source,
        }
    }
}

/// Turns file content into text: UTF-8 only, no binary content, the
/// byte-order mark dropped.
pub fn decode_text(bytes: Vec<u8>, name: &str) -> Result<String, LoadError> {
    let wrong_encoding = |encoding| LoadError::WrongEncoding {
        file: name.to_owned(),
        encoding,
    };
    if bytes.starts_with(&[0xFF, 0xFE]) {
        return Err(wrong_encoding("UTF-16LE"));
    }
    if bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(wrong_encoding("UTF-16BE"));
    }
    if bytes.contains(&0) {
        return Err(LoadError::Binary {
            file: name.to_owned(),
        });
    }
    let text = String::from_utf8(bytes).map_err(|err| {
        let offset = err.utf8_error().valid_up_to();
        let (line, column) = line_column(err.as_bytes(), offset);
        LoadError::NotUtf8 {
            file: name.to_owned(),
            line,
            column,
            offset,
        }
    })?;
    Ok(match text.strip_prefix('\u{FEFF}') {
        Some(rest) => rest.to_owned(),
        None => text,
    })
}

/// 1-based line and column (in bytes) of `offset` in `bytes`.
fn line_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (line, offset - line_start + 1)
}

/// Whether a file found in a directory walk is a manifest by its name.
pub fn is_manifest_name(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["yaml", "yml", "json"]
            .iter()
            .any(|m| e.eq_ignore_ascii_case(m))
    })
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// The manifests under `dir`, recursively, sorted by path; hidden files and
/// directories are skipped. Directories that cannot be listed are reported
/// in `warnings` and skipped.
pub fn walk(dir: &Path, warnings: &mut Vec<LoadError>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut visited = BTreeSet::new();
    walk_into(dir, &mut files, &mut visited, warnings);
    files.sort();
    files
}

fn walk_into(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    visited: &mut BTreeSet<PathBuf>,
    warnings: &mut Vec<LoadError>,
) {
    // Symbolic links may form cycles: visit each real directory once.
    if let Ok(real) = fs::canonicalize(dir)
        && !visited.insert(real)
    {
        return;
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) => {
            warnings.push(unreadable(&dir.display().to_string(), source));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if is_hidden(&path) {
            continue;
        }
        // `metadata` follows symbolic links, so linked files and directories count.
        match fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => walk_into(&path, files, visited, warnings),
            Ok(meta) if meta.is_file() && is_manifest_name(&path) => files.push(path),
            Ok(_) => {}
            Err(source) if is_manifest_name(&path) => {
                warnings.push(unreadable(&path.display().to_string(), source));
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_of_offsets() {
        let bytes = b"ab\ncd\nef";
        assert_eq!(line_column(bytes, 0), (1, 1));
        assert_eq!(line_column(bytes, 4), (2, 2));
        assert_eq!(line_column(bytes, 6), (3, 1));
    }

    #[test]
    fn decode_text_rejects_binary_and_bad_utf8() {
        assert!(matches!(
            decode_text(b"a: 1\n\0\0".to_vec(), "f"),
            Err(LoadError::Binary { .. })
        ));
        let err = decode_text(b"a: 1\nb: \xff\n".to_vec(), "f").unwrap_err();
        assert_eq!(
            err.to_string(),
            "f:2:4: not valid UTF-8 (byte offset 8); manifests must be UTF-8"
        );
        assert!(matches!(
            decode_text(vec![0xFF, 0xFE, b'a', 0], "f"),
            Err(LoadError::WrongEncoding { .. })
        ));
        assert_eq!(decode_text("\u{FEFF}a: 1".into(), "f").unwrap(), "a: 1");
    }

    #[test]
    fn read_limited_refuses_long_input() {
        let data = [b'a'; 11];
        assert!(read_limited(&data[..], "f", 11).is_ok());
        let err = read_limited(&data[..], "f", 10).unwrap_err();
        assert!(matches!(err, LoadError::TooLarge { .. }), "{err}");
    }
}
