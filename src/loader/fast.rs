//! A quick reading of the plain block YAML that nearly every manifest is
//! written in: block mappings and sequences, one-line plain and quoted
//! scalars, comments, and empty `{}` and `[]`. It builds the same value as
//! [`compose`](super::compose::compose) at a fraction of the cost, and
//! declines (returns `None`) at the first sign of anything else — anchors,
//! tags, flow collections, block or multi-line scalars, merge keys, quoted
//! keys, tabs, non-ASCII text, a document marker with content, anything
//! that might be an error — so that the full parser reads those documents
//! and reports their errors exactly as before.

use serde_json::{Map, Value};

use super::compose::{MAX_DEPTH, key_text, plain_scalar};

/// A content line: its indentation and its text after the indentation.
#[derive(Clone, Copy)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

/// Why the quick reading gives up; the full parser takes over.
struct Decline;

type Read<T> = Result<T, Decline>;

/// The value of the one document in `text`, when the quick reading can
/// read it; `None` to leave it to the full parser.
pub fn compose(text: &str) -> Option<Value> {
    let lines = content_lines(text).ok()?;
    let mut reader = Reader {
        lines,
        next: 0,
        depth: 0,
    };
    let first = *reader.lines.first()?;
    let value = reader.block(first.indent).ok()?;
    // Anything left over is not where a block of this shape may continue.
    (reader.next == reader.lines.len()).then_some(value)
}

/// The lines with content, without blank and comment lines and without the
/// document's leading `---`.
fn content_lines(text: &str) -> Read<Vec<Line<'_>>> {
    let bytes = text.as_bytes();
    let mut lines = Vec::with_capacity(bytes.len() / 32);
    let mut started = false;
    let mut start = 0;
    while start < bytes.len() {
        // One pass finds the end of the line and refuses tabs, carriage
        // returns, control and non-ASCII characters, which all have rules
        // of their own.
        let mut end = start;
        while let Some(&byte) = bytes.get(end) {
            if byte == b'\n' {
                break;
            }
            if !(0x20..0x7F).contains(&byte) {
                return Err(Decline);
            }
            end += 1;
        }
        let raw = &text[start..end];
        start = end + 1;
        let text = raw.trim_start_matches(' ');
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if is_marker(raw, "---") {
            // The document's own marker, with nothing after it but a comment.
            let rest = raw[3..].trim_start_matches(' ');
            if started || !(rest.is_empty() || rest.starts_with('#')) {
                return Err(Decline);
            }
            started = true;
            continue;
        }
        if is_marker(raw, "...") || (!started && raw.starts_with('%')) {
            return Err(Decline);
        }
        started = true;
        lines.push(Line {
            indent: raw.len() - text.len(),
            text: text.trim_end_matches(' '),
        });
    }
    Ok(lines)
}

struct Reader<'a> {
    lines: Vec<Line<'a>>,
    next: usize,
    /// Collections open around the current one.
    depth: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<Line<'a>> {
        self.lines.get(self.next).copied()
    }

    /// The mapping or sequence whose first line is the next one, at `indent`.
    fn block(&mut self, indent: usize) -> Read<Value> {
        self.depth += 1;
        if self.depth >= MAX_DEPTH {
            return Err(Decline);
        }
        let line = self.peek().ok_or(Decline)?;
        let value = if is_item(line.text) {
            self.sequence(indent)
        } else {
            self.mapping(indent)
        };
        self.depth -= 1;
        value
    }

    fn mapping(&mut self, indent: usize) -> Read<Value> {
        let mut map = Map::new();
        while let Some(line) = self.peek() {
            if line.indent < indent {
                break;
            }
            if line.indent > indent || is_item(line.text) {
                return Err(Decline);
            }
            let (key, rest) = split_entry(line.text).ok_or(Decline)?;
            self.next += 1;
            let value = match rest {
                Some(rest) => self.scalar_alone(rest, indent)?,
                None => self.nested(indent, true)?,
            };
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }

    fn sequence(&mut self, indent: usize) -> Read<Value> {
        let mut items = Vec::new();
        while let Some(line) = self.peek() {
            if line.indent < indent {
                break;
            }
            if line.indent > indent || !is_item(line.text) {
                // A sequence that is a mapping's value at the mapping's own
                // indentation ends where the mapping's next key begins.
                if line.indent == indent && !is_item(line.text) {
                    break;
                }
                return Err(Decline);
            }
            let after_dash = &line.text[1..];
            let rest = after_dash.trim_start_matches(' ');
            if rest.is_empty() || rest.starts_with('#') {
                self.next += 1;
                items.push(self.nested(indent, false)?);
                continue;
            }
            if is_item(rest) {
                return Err(Decline);
            }
            if split_entry(rest).is_some() {
                // `- key: value`: a mapping whose keys are indented to
                // where this first one starts.
                let inner = indent + 1 + (after_dash.len() - rest.len());
                self.lines[self.next] = Line {
                    indent: inner,
                    text: rest,
                };
                items.push(self.block(inner)?);
                continue;
            }
            self.next += 1;
            items.push(self.scalar_alone(rest, indent)?);
        }
        Ok(Value::Array(items))
    }

    /// The value of a key or item with nothing after it on its line: a
    /// block indented below it, a sequence at a mapping key's own
    /// indentation, or null.
    fn nested(&mut self, indent: usize, in_mapping: bool) -> Read<Value> {
        match self.peek() {
            Some(next) if next.indent > indent => self.block(next.indent),
            Some(next) if in_mapping && next.indent == indent && is_item(next.text) => {
                self.depth += 1;
                if self.depth >= MAX_DEPTH {
                    return Err(Decline);
                }
                let value = self.sequence(indent);
                self.depth -= 1;
                value
            }
            _ => Ok(Value::Null),
        }
    }

    /// A scalar that must end on its line: a more indented line after it
    /// would continue it.
    fn scalar_alone(&mut self, text: &str, indent: usize) -> Read<Value> {
        if self.peek().is_some_and(|next| next.indent > indent) {
            return Err(Decline);
        }
        scalar(text)
    }
}

/// A sequence item's line: `-` alone or followed by a space.
fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// `---` or `...` at column 0, followed by a space or nothing.
fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

/// `key: value` or `key:` (then `None` for the value), with a plain key; a
/// comment ends the line. `None` when the line is not such an entry.
fn split_entry(text: &str) -> Option<(String, Option<&str>)> {
    if text.starts_with(['\'', '"']) {
        return None;
    }
    // The first `: ` or final `:`; a comment before it means no entry.
    let bytes = text.as_bytes();
    let colon = (0..bytes.len()).find(|&i| match bytes[i] {
        b':' => bytes.get(i + 1).is_none_or(|&b| b == b' '),
        b'#' => i > 0 && bytes[i - 1] == b' ',
        _ => false,
    })?;
    if bytes[colon] != b':' {
        return None;
    }
    let key = text[..colon].trim_end_matches(' ');
    let rest = text[colon + 1..].trim_start_matches(' ');
    // Long keys, indicators, merge keys and anything that needs quoting
    // rules are for the parser.
    if key.is_empty() || key.len() > 1000 || key == "<<" || !plain_start(key) {
        return None;
    }
    let key = key_text(plain_scalar(key)?)?;
    let rest = (!rest.is_empty() && !rest.starts_with('#')).then_some(rest);
    Some((key, rest))
}

/// A plain scalar's text before a comment, and whether that text holds a
/// `: ` (which a plain scalar in a value cannot).
fn plain_text(text: &str) -> (&str, bool) {
    let bytes = text.as_bytes();
    let mut colon = false;
    for i in 0..bytes.len() {
        match bytes[i] {
            b'#' if i > 0 && bytes[i - 1] == b' ' => {
                return (text[..i].trim_end_matches(' '), colon);
            }
            b':' if bytes.get(i + 1) == Some(&b' ') => colon = true,
            _ => {}
        }
    }
    (text, colon)
}

/// A plain scalar may start with this text: not an indicator, or `-`, `?`
/// and `:` followed by something else than a space.
fn plain_start(text: &str) -> bool {
    let bytes = text.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    match first {
        b'[' | b']' | b'{' | b'}' | b',' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\'' | b'"'
        | b'%' | b'@' | b'`' | b'#' => false,
        b'-' | b'?' | b':' => bytes.get(1).is_some_and(|&b| b != b' '),
        _ => true,
    }
}

/// A one-line scalar value (the text after `key: ` or `- `).
fn scalar(text: &str) -> Read<Value> {
    match text.as_bytes().first().ok_or(Decline)? {
        b'\'' => single_quoted(text).map(Value::String),
        b'"' => double_quoted(text).map(Value::String),
        _ => {
            let (text, colon) = plain_text(text);
            match text {
                "{}" => return Ok(Value::Object(Map::new())),
                "[]" => return Ok(Value::Array(Vec::new())),
                _ => {}
            }
            if !plain_start(text) || colon || text.ends_with(':') {
                return Err(Decline);
            }
            plain_scalar(text).ok_or(Decline)
        }
    }
}

/// What may follow a closing quote: nothing, or a comment after a space.
fn ends_line(rest: &str) -> bool {
    let comment = rest.trim_start_matches(' ');
    rest.is_empty() || (rest.starts_with(' ') && (comment.is_empty() || comment.starts_with('#')))
}

fn single_quoted(text: &str) -> Read<String> {
    let body = &text[1..];
    let mut value = String::with_capacity(body.len());
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if chars.peek().is_some_and(|&(_, next)| next == '\'') {
                chars.next();
                value.push('\'');
                continue;
            }
            let rest = &body[i + 1..];
            // A comment must be separated from the quote by a space.
            return if ends_line(rest) {
                Ok(value)
            } else {
                Err(Decline)
            };
        }
        value.push(c);
    }
    // Continues on the next line.
    Err(Decline)
}

fn double_quoted(text: &str) -> Read<String> {
    let body = &text[1..];
    let mut value = String::with_capacity(body.len());
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let rest = &body[i + 1..];
                return if ends_line(rest) {
                    Ok(value)
                } else {
                    Err(Decline)
                };
            }
            '\\' => {
                let escaped = match chars.next().ok_or(Decline)?.1 {
                    '\\' => '\\',
                    '"' => '"',
                    '/' => '/',
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '0' => '\0',
                    ' ' => ' ',
                    // Unicode escapes and the rest: the parser's.
                    _ => return Err(Decline),
                };
                value.push(escaped);
            }
            c => value.push(c),
        }
    }
    Err(Decline)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use serde_json::json;

    use super::super::compose;
    use super::super::split::split_documents;
    use super::*;

    /// The quick reading reads `text`, to the full parser's value.
    fn same(text: &str) -> Value {
        let quick = compose(text).unwrap_or_else(|| panic!("declined {text:?}"));
        let full = compose::compose(text).unwrap_or_else(|e| panic!("{text:?}: {}", e.message));
        assert_eq!(quick, full, "{text:?}");
        quick
    }

    #[test]
    fn reads_block_yaml_as_the_parser_does() {
        let doc = same(
            "# c\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web # trailing\n  labels: {}\n  annotations:\n    a.b/c: 'it''s: #1'\n    d: \"x\\ny \\\"q\\\" #2\"  # c\nspec:\n  replicas: 0644\n  paused: yes\n  list:\n  - a\n  -   b: 1\n      c: ~\n  -\n  empty: []\n  n:\n  on: -1.5e3\n  url: http://x:80/y#z\n",
        );
        assert_eq!(doc["metadata"]["annotations"]["a.b/c"], json!("it's: #1"));
        assert_eq!(doc["spec"]["replicas"], json!(420));
        assert_eq!(doc["spec"]["true"], json!(-1500));
        same("- a\n- b: c\n  d:\n    - 1\n    - 2\n-\n  - x\n");
        same("  indented: top\n  level: 1\n");
        same("a:\n- 1\nb:\n  - 2\nc:\n");
    }

    #[test]
    fn declines_what_only_the_parser_reads() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: [1, 2]\n",
            "a: {b: 1}\n",
            "a: |\n  text\n",
            "a: >\n  text\n",
            "a: multi\n  line\n",
            "a: 'multi\n  line'\n",
            "<<: {a: 1}\n",
            "'quoted': key\n",
            "a:\tb\n",
            "a: b\r\n",
            "a: caf\u{e9}\n",
            "a: .nan\n",
            "~: a\n",
            "a: b: c\n",
            "a: b:\n",
            "a: 'x'y\n",
            "a: \"\\u00e9\"\n",
            "a: 1\n b: 2\n",
            "a:\n  b: 1\n c: 2\n",
            "- a\nb: 1\n",
            "--- a: 1\n",
            "%YAML 1.1\n---\na: 1\n",
            "a: 1\n...\n",
            "scalar\n",
            "? a\n: b\n",
            "a: - b\n",
            "a: @b\n",
            "- - a\n",
        ] {
            assert!(compose(text).is_none(), "{text:?}");
        }
    }

    #[test]
    fn nesting_beyond_the_limit_is_left_to_the_parser() {
        let mut text = String::new();
        for depth in 0..MAX_DEPTH + 5 {
            text.push_str(&format!("{}k:\n", " ".repeat(depth)));
        }
        assert!(compose(&text).is_none());
        assert!(compose::compose(&text).is_err());
    }

    fn yaml_files(dir: &Path, files: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
            if path.is_dir() {
                yaml_files(&path, files);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }

    /// Every document of the repository's manifests and the conformance
    /// fixtures that the quick reading reads gets the parser's value.
    #[test]
    fn agrees_with_the_parser_on_real_manifests() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in [
            "tests",
            "examples",
            "manifests",
            "crds",
            "charts",
            "../shared/conformance",
        ] {
            yaml_files(&root.join(dir), &mut files);
        }
        let (mut read, mut declined) = (0, 0);
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            for raw in split_documents(&text) {
                match compose(raw.text) {
                    Some(quick) => {
                        read += 1;
                        let full = compose::compose(raw.text);
                        assert!(
                            full.as_ref().is_ok_and(|full| *full == quick),
                            "{}:{}",
                            file.display(),
                            raw.first_line
                        );
                    }
                    None => declined += 1,
                }
            }
        }
        assert!(read > 100, "{read} documents read, {declined} declined");
    }
}
