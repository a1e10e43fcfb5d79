//! Parsing file text into documents (`serde_json::Value`s that know the line
//! they start on), for YAML streams and JSON files.

use granit_parser::{Event, Parser};
use serde::Deserialize;
use serde_json::Value;

use super::LoadError;
use super::compose::{ComposeError, compose};
use super::fast;
use super::split::{RawDocument, split_documents};
use crate::model::PathSegment;

/// A file with this many broken documents is not worth reading on: its
/// errors would drown everything else.
pub const MAX_ERRORS_PER_FILE: usize = 20;

/// Flow collections (`[`, `{`) nested deeper than this are refused before
/// parsing: the YAML parser's work grows with the square of the flow depth,
/// and real manifests nest a few dozen levels at most.
pub const MAX_FLOW_DEPTH: usize = 1000;

/// One non-empty document of a file.
#[derive(Debug)]
pub struct Document<'a> {
    pub value: Value,
    /// 0-based index of the document in its file.
    pub index: usize,
    /// 1-based line of the document's first content.
    pub line: usize,
    /// The document's source text, and the line that text begins on, for
    /// finding the lines of List items.
    pub text: &'a str,
    pub text_line: usize,
}

/// Parses every document of a YAML stream.
pub fn parse_yaml<'a>(file: &str, text: &'a str) -> Vec<Result<Document<'a>, LoadError>> {
    let mut documents = Vec::new();
    each_yaml_document(file, text, |d| documents.push(d));
    documents
}

/// Parses the documents of a YAML stream and hands each to `handle`, in
/// stream order, as soon as it is parsed (so a large stream is never held
/// parsed all at once). Each document is parsed on its own, so an error in
/// one is reported with the others still read.
pub fn each_yaml_document<'a>(
    file: &str,
    text: &'a str,
    mut handle: impl FnMut(Result<Document<'a>, LoadError>),
) {
    let mut errors = 0;
    for raw in split_documents(text) {
        match parse_raw_document(file, &raw) {
            Some(Err(err)) if !matches!(err, LoadError::Template { .. }) => {
                handle(Err(err));
                errors += 1;
                if errors == MAX_ERRORS_PER_FILE {
                    break;
                }
            }
            Some(document) => handle(document),
            None => {}
        }
    }
}

/// Parses one document of a YAML stream; `None` for an empty one. A
/// document that does not parse is an error, or [`LoadError::Template`]
/// when it has template actions.
pub fn parse_raw_document<'a>(
    file: &str,
    raw: &RawDocument<'a>,
) -> Option<Result<Document<'a>, LoadError>> {
    match parse_document(file, raw)? {
        Err(_) if is_template(raw.text) => Some(Err(LoadError::Template {
            file: file.to_owned(),
            line: raw.content_line.unwrap_or(raw.first_line),
        })),
        parsed => Some(parsed),
    }
}

/// Text with Go template actions (`{{ … }}`): a Helm chart's template, not
/// a manifest until it is rendered.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") && text.contains("}}")
}

/// Parses one document; `None` for an empty one.
fn parse_document<'a>(
    file: &str,
    raw: &RawDocument<'a>,
) -> Option<Result<Document<'a>, LoadError>> {
    let line = raw.content_line?;
    // Most manifests are plain block YAML, which the quick reading reads
    // alone; the rest, and every error, are the full parser's.
    if let Some(value) = fast::compose(raw.text) {
        return Some(Ok(Document {
            value,
            index: raw.index,
            line,
            text: raw.text,
            text_line: raw.first_line,
        }));
    }
    if let Some((line, column)) = flow_depth_exceeded(raw.text, raw.first_line) {
        return Some(Err(LoadError::InvalidYaml {
            file: file.to_owned(),
            line,
            column,
            message: format!("flow collections nested deeper than {MAX_FLOW_DEPTH} levels"),
        }));
    }
    match compose(raw.text) {
        Ok(Value::Null) => None,
        Ok(value) => Some(Ok(Document {
            value,
            index: raw.index,
            line,
            text: raw.text,
            text_line: raw.first_line,
        })),
        Err(err) => Some(Err(compose_error(file, raw, err))),
    }
}

/// A document that could not be composed. Syntax errors are reported with
/// libyaml's wording (through `serde_norway`), which names what it was
/// parsing; what only Kubernetes' reading refuses (a merge key on a list,
/// `.nan`) with the composer's.
fn compose_error(file: &str, raw: &RawDocument<'_>, err: ComposeError) -> LoadError {
    match Value::deserialize(serde_norway::Deserializer::from_str(raw.text)) {
        Err(syntax) => yaml_error(file, raw, syntax),
        Ok(_) => LoadError::InvalidYaml {
            file: file.to_owned(),
            line: err.line + raw.first_line - 1,
            column: err.column,
            message: err.message,
        },
    }
}

/// Where flow collections first nest deeper than [`MAX_FLOW_DEPTH`], as a
/// 1-based line and column of the file; `text` begins on `first_line`.
///
/// A quick scan, not a parser: brackets inside quoted scalars and comments
/// do not count, and a quote opens only where a scalar can start. Brackets in
/// block scalars do count, but text with a thousand unclosed brackets is not
/// a manifest.
fn flow_depth_exceeded(text: &str, first_line: usize) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let (mut depth, mut line, mut line_start) = (0usize, first_line, 0usize);
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        let previous = if i == line_start { b'\n' } else { bytes[i - 1] };
        match (quote, byte) {
            (_, b'\n') => {
                line += 1;
                line_start = i + 1;
            }
            // An escape, except an escaped line break, which still ends a line.
            (Some(b'"'), b'\\') if bytes.get(i + 1) != Some(&b'\n') => i += 1,
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') if b" \t\n[{,:'".contains(&previous) => quote = Some(byte),
            (None, b'#') if previous.is_ascii_whitespace() => {
                while i + 1 < bytes.len() && bytes[i + 1] != b'\n' {
                    i += 1;
                }
            }
            (None, b'[' | b'{') => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    let column = text[line_start..=i].chars().count();
                    return Some((line, column));
                }
            }
            (None, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The error of a document with its position in the whole file. The
/// document is parsed again behind as many empty lines as precede it, so
/// that every position in the parser's message is the file's own; this costs
/// time only for broken documents.
fn yaml_error(file: &str, raw: &RawDocument<'_>, first_err: serde_norway::Error) -> LoadError {
    let mut padded = "\n".repeat(raw.first_line - 1);
    padded.push_str(raw.text);
    let (err, line_shift) = match Value::deserialize(serde_norway::Deserializer::from_str(&padded))
    {
        Err(err) => (err, 0),
        // Not expected: the same text failed a moment ago. Shift by hand.
        Ok(_) => (first_err, raw.first_line - 1),
    };
    let (line, column) = err
        .location()
        .map_or((raw.first_line, 1), |l| (l.line() + line_shift, l.column()));
    let message = err.to_string();
    let message = strip_location(&message, " at line ", line - line_shift, column);
    LoadError::InvalidYaml {
        file: file.to_owned(),
        line,
        column,
        message,
    }
}

/// Removes the first `{prefix}{line} column {column}` from a parser message
/// whose position is reported separately.
fn strip_location(message: &str, prefix: &str, line: usize, column: usize) -> String {
    message.replacen(&format!("{prefix}{line} column {column}"), "", 1)
}

/// Parses a JSON file: one value or several concatenated ones.
#[cfg(test)]
pub fn parse_json<'a>(file: &str, text: &'a str) -> Vec<Result<Document<'a>, LoadError>> {
    let mut documents = Vec::new();
    each_json_document(file, text, |d| documents.push(d));
    documents
}

/// Parses the values of a JSON file one at a time, like [`each_yaml_document`].
pub fn each_json_document<'a>(
    file: &str,
    text: &'a str,
    mut handle: impl FnMut(Result<Document<'a>, LoadError>),
) {
    let mut lines = LineCounter::default();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut index = 0;
    loop {
        let start = skip_whitespace(text, stream.byte_offset());
        match stream.next() {
            None => break,
            Some(Ok(Value::Null)) => {}
            Some(Ok(value)) => {
                let line = lines.line_at(text, start);
                handle(Ok(Document {
                    value,
                    index,
                    line,
                    text: &text[start..stream.byte_offset()],
                    text_line: line,
                }));
            }
            Some(Err(err)) => {
                let message =
                    strip_location(&err.to_string(), " at line ", err.line(), err.column());
                handle(Err(LoadError::InvalidJson {
                    file: file.to_owned(),
                    line: err.line(),
                    column: err.column(),
                    message,
                }));
                // A JSON syntax error leaves no place to resume from.
                break;
            }
        }
        index += 1;
    }
}

fn skip_whitespace(text: &str, offset: usize) -> usize {
    // JSON's whitespace only: the parser fails on any other.
    let rest = &text[offset..];
    offset + (rest.len() - rest.trim_start_matches([' ', '\t', '\n', '\r']).len())
}

/// Line numbers of increasing byte offsets, in one pass over the text.
#[derive(Default)]
struct LineCounter {
    offset: usize,
    line: usize,
}

impl LineCounter {
    fn line_at(&mut self, text: &str, offset: usize) -> usize {
        self.line += text[self.offset..offset].matches('\n').count();
        self.offset = offset;
        self.line + 1
    }
}

/// The 1-based line of the field at `path` in a document's source text
/// (which begins on `text_line`): the line of its key, or of its list item.
/// Where the path leaves what the text spells out (a value copied from an
/// anchor, a field set by a merge key), the line of the last step found.
pub fn field_line(text: &str, text_line: usize, path: &[PathSegment]) -> Option<usize> {
    let mut events = Parser::new_from_str(text).map_while(Result::ok);
    let mut next_node = move || events.find(|(event, _)| event.is_node() || is_end(event));
    let (mut node, span) = next_node()?;
    let mut line = span.start.line();
    for segment in path {
        let found = match (segment, &node) {
            (PathSegment::Key(name), Event::MappingStart(..)) => find_key(&mut next_node, name),
            (PathSegment::Index(index), Event::SequenceStart(..)) => {
                find_item(&mut next_node, *index)
            }
            _ => None,
        };
        let Some((event, at)) = found else {
            break;
        };
        node = event;
        line = at;
    }
    Some(line + text_line - 1)
}

/// The value of key `name` in the mapping just started, and the key's line.
fn find_key<'a>(
    next_node: &mut impl FnMut() -> Option<(Event<'a>, granit_parser::Span)>,
    name: &str,
) -> Option<(Event<'a>, usize)> {
    loop {
        let (key, span) = next_node()?;
        let is_name = match &key {
            Event::Scalar(text, ..) => text == name,
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                skip_collection(next_node)?;
                false
            }
            _ if is_end(&key) => return None,
            _ => false,
        };
        let (value, _) = next_node()?;
        if is_name {
            return Some((value, span.start.line()));
        }
        if matches!(value, Event::MappingStart(..) | Event::SequenceStart(..)) {
            skip_collection(next_node)?;
        }
    }
}

/// Item `index` of the sequence just started, and its line.
fn find_item<'a>(
    next_node: &mut impl FnMut() -> Option<(Event<'a>, granit_parser::Span)>,
    index: usize,
) -> Option<(Event<'a>, usize)> {
    for _ in 0..index {
        let (item, _) = next_node()?;
        if is_end(&item) {
            return None;
        }
        if matches!(item, Event::MappingStart(..) | Event::SequenceStart(..)) {
            skip_collection(next_node)?;
        }
    }
    let (item, span) = next_node()?;
    (!is_end(&item)).then(|| (item, span.start.line()))
}

/// The 1-based lines on which the items of a List document start, read from
/// its source text (which begins on `text_line`). `None` when the text has no
/// top-level `items` sequence the parser can find; callers then use the
/// document's own line.
pub fn list_item_lines(text: &str, text_line: usize) -> Option<Vec<usize>> {
    let mut events = Parser::new_from_str(text).map_while(Result::ok);
    let mut next_node = move || events.find(|(event, _)| event.is_node() || is_end(event));
    let (top, _) = next_node()?;
    if !matches!(top, Event::MappingStart(..)) {
        return None;
    }
    loop {
        let (key, _) = next_node()?;
        let is_items = match &key {
            Event::Scalar(name, ..) => name == "items",
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                skip_collection(&mut next_node)?;
                false
            }
            _ if is_end(&key) => return None,
            _ => false,
        };
        let (value, _) = next_node()?;
        let is_collection = matches!(value, Event::MappingStart(..) | Event::SequenceStart(..));
        if is_items && matches!(value, Event::SequenceStart(..)) {
            return item_lines(&mut next_node, text_line);
        }
        if is_collection {
            skip_collection(&mut next_node)?;
        }
    }
}

fn item_lines<'a>(
    next_node: &mut impl FnMut() -> Option<(Event<'a>, granit_parser::Span)>,
    text_line: usize,
) -> Option<Vec<usize>> {
    let mut lines = Vec::new();
    loop {
        let (event, span) = next_node()?;
        match event {
            Event::SequenceEnd => return Some(lines),
            _ if is_end(&event) => return None,
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                lines.push(span.start.line() + text_line - 1);
                skip_collection(next_node)?;
            }
            _ => lines.push(span.start.line() + text_line - 1),
        }
    }
}

/// Consumes events up to the end of the collection just started.
fn skip_collection<'a>(
    next_node: &mut impl FnMut() -> Option<(Event<'a>, granit_parser::Span)>,
) -> Option<()> {
    let mut depth = 1usize;
    while depth > 0 {
        match next_node()?.0 {
            Event::MappingStart(..) | Event::SequenceStart(..) => depth += 1,
            Event::MappingEnd | Event::SequenceEnd => depth -= 1,
            Event::DocumentEnd | Event::StreamEnd => return None,
            _ => {}
        }
    }
    Some(())
}

fn is_end(event: &Event<'_>) -> bool {
    matches!(
        event,
        Event::MappingEnd | Event::SequenceEnd | Event::DocumentEnd | Event::StreamEnd
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_and_indexes(docs: &[Result<Document<'_>, LoadError>]) -> Vec<(usize, usize)> {
        docs.iter()
            .map(|d| {
                let d = d.as_ref().expect("parses");
                (d.line, d.index)
            })
            .collect()
    }

    #[test]
    fn yaml_documents_know_their_lines_and_indexes() {
        let text = "# header\n---\napiVersion: v1\nkind: A\n---\n---\n\n# c\nkind: B\n";
        let docs = parse_yaml("f.yaml", text);
        assert_eq!(lines_and_indexes(&docs), [(3, 0), (9, 2)]);
    }

    #[test]
    fn long_streams_keep_their_order_and_cap_errors() {
        let mut text = String::new();
        for i in 0..200 {
            text.push_str(&format!("---\nname: doc{i}\n"));
        }
        let docs = parse_yaml("f.yaml", &text);
        let names: Vec<String> = docs
            .iter()
            .map(|d| {
                d.as_ref().unwrap().value["name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let expected: Vec<String> = (0..200).map(|i| format!("doc{i}")).collect();
        assert_eq!(names, expected);
        assert_eq!(lines_and_indexes(&docs)[199], (400, 199));

        let broken = "---\na: [\n".repeat(100);
        let docs = parse_yaml("f.yaml", &broken);
        assert_eq!(docs.len(), MAX_ERRORS_PER_FILE);
        assert!(docs.iter().all(Result::is_err));
    }

    #[test]
    fn yaml_error_positions_are_absolute() {
        let text = "a: 1\n---\nb: 2\n---\nc: x\n  d: 4\n";
        let docs = parse_yaml("f.yaml", text);
        assert_eq!(docs.len(), 3);
        let err = docs[2].as_ref().unwrap_err();
        let LoadError::InvalidYaml { line, column, .. } = err else {
            panic!("{err}");
        };
        assert_eq!((*line, *column), (6, 4), "{err}");
        assert_eq!(
            err.to_string(),
            "f.yaml:6:4: invalid YAML: mapping values are not allowed in this context"
        );
        // Positions in the parser's context are the file's too.
        let docs = parse_yaml("f.yaml", "a: 1\n---\nb: [1,\nd: 4\n");
        let err = docs[1].as_ref().unwrap_err().to_string();
        assert!(
            err.ends_with("while parsing a flow sequence at line 3 column 4"),
            "{err}"
        );
    }

    #[test]
    fn yaml_error_does_not_hide_later_documents() {
        let text = "a: [\n---\nb: 2\n";
        let docs = parse_yaml("f.yaml", text);
        assert!(docs[0].is_err());
        assert_eq!(docs[1].as_ref().unwrap().line, 3);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let docs = parse_yaml("bomb.yaml", &text);
        let err = docs[0].as_ref().unwrap_err();
        assert!(err.to_string().contains("repetition limit"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("a: {}{}", "[".repeat(10_000), "]".repeat(10_000));
        let docs = parse_yaml("deep.yaml", &text);
        assert!(docs[0].is_err());
        let json = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let docs = parse_json("deep.json", &json);
        assert!(docs[0].is_err());
    }

    #[test]
    fn deep_flow_nesting_is_refused_before_parsing() {
        let deep = format!("a: 1\n---\nspec: {}", "[".repeat(MAX_FLOW_DEPTH + 5));
        let docs = parse_yaml("deep.yaml", &deep);
        let err = docs[1].as_ref().unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "deep.yaml:3:{}: invalid YAML: flow collections nested deeper than {MAX_FLOW_DEPTH} levels",
                MAX_FLOW_DEPTH + 7
            )
        );
        // Balanced, quoted and commented brackets do not add up.
        let fine = format!(
            "a: '{}'\nb: \"{}\"\nc: 1 # {}\nd: [{}]\ne: don't {}\n",
            "[".repeat(2000),
            "{\\\"".repeat(2000),
            "[".repeat(2000),
            "[], ".repeat(2000),
            "x",
        );
        assert_eq!(flow_depth_exceeded(&fine, 1), None);
        assert!(parse_yaml("fine.yaml", &fine)[0].is_ok());
    }

    #[test]
    fn json_values_know_their_lines() {
        let text = "\n\n{\"a\": 1}\n{\"b\": 2}\n\n  {\"c\": 3}";
        let docs = parse_json("f.json", text);
        assert_eq!(lines_and_indexes(&docs), [(3, 0), (4, 1), (6, 2)]);
    }

    #[test]
    fn json_error_position() {
        let docs = parse_json("f.json", "{\n  \"a\": 1,\n  \"b\" 2\n}");
        let err = docs[0].as_ref().unwrap_err();
        assert_eq!(err.to_string(), "f.json:3:7: invalid JSON: expected `:`");
    }

    #[test]
    fn list_item_lines_of_block_and_flow_items() {
        let text = "apiVersion: v1\nkind: List\nmetadata: {a: [1, 2]}\nitems:\n- apiVersion: v1\n  kind: Pod\n  spec:\n    containers: [{name: a}]\n-\n  kind: Pod\n- {kind: Pod}\n";
        assert_eq!(list_item_lines(text, 1), Some(vec![5, 10, 11]));
        assert_eq!(list_item_lines(text, 10), Some(vec![14, 19, 20]));
    }

    #[test]
    fn list_item_lines_in_json() {
        let text = "{\n  \"kind\": \"List\",\n  \"items\": [\n    {\n      \"kind\": \"Pod\"\n    },\n    {\"kind\": \"Pod\"}\n  ]\n}";
        assert_eq!(list_item_lines(text, 1), Some(vec![4, 7]));
    }

    #[test]
    fn list_item_lines_without_items() {
        assert_eq!(list_item_lines("kind: List\n", 1), None);
        assert_eq!(list_item_lines("kind: List\nitems: []\n", 1), Some(vec![]));
        assert_eq!(list_item_lines("- a\n", 1), None);
    }
}
