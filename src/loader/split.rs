//! Splits a YAML stream into its documents without parsing it, so that each
//! document can be parsed on its own (an error in one does not hide the
//! others) and so that every document knows the line it starts on.
//!
//! YAML forbids a line that starts with `---` or `...` followed by a space, a
//! tab or the end of the line anywhere inside content, even inside block
//! scalars and quoted strings (the spec's `c-forbidden`), so such a line at
//! column 0 is always a document marker and the split is exact.

/// One document of a YAML stream, as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawDocument<'a> {
    /// The document's text, including its `---` line if it has one.
    pub text: &'a str,
    /// 1-based line of the stream on which `text` begins.
    pub first_line: usize,
    /// 1-based line of the document's first content (not a comment, a blank
    /// line, a directive or a bare `---`); `None` for an empty document.
    pub content_line: Option<usize>,
    /// 0-based index of the document in the stream, as a YAML parser counts
    /// them: an explicit `---` always starts one, comments alone never do.
    pub index: usize,
}

/// A marker line: `---` or `...` at column 0, followed by whitespace or nothing.
fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// What follows a `---` on its line is content unless it is a comment.
fn marker_line_has_content(line: &str) -> bool {
    let rest = line[3..].trim();
    !rest.is_empty() && !rest.starts_with('#')
}

/// A line that holds YAML content, given whether the document has already
/// started (before that, a `%` line is a directive).
fn is_content(line: &str, started: bool) -> bool {
    let trimmed = line.trim_start_matches([' ', '\t']);
    !(trimmed.is_empty() || trimmed.starts_with('#') || (!started && line.starts_with('%')))
}

/// The document being accumulated.
struct Pending {
    start: usize,
    first_line: usize,
    /// Began with an explicit `---`, so it is a document even when empty.
    explicit: bool,
    content_line: Option<usize>,
}

impl Pending {
    fn at(start: usize, first_line: usize) -> Self {
        Pending {
            start,
            first_line,
            explicit: false,
            content_line: None,
        }
    }

    fn is_document(&self) -> bool {
        self.explicit || self.content_line.is_some()
    }
}

/// Splits `text` (without a byte-order mark) into its documents.
pub fn split_documents(text: &str) -> Vec<RawDocument<'_>> {
    let mut documents = Vec::new();
    let mut pending = Pending::at(0, 1);
    let mut offset = 0;
    for (i, raw_line) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        let line = raw_line.trim_end_matches(['\n', '\r']);
        let next_offset = offset + raw_line.len();
        if is_marker(line, "---") {
            if pending.is_document() {
                push(&mut documents, text, &pending, offset);
                pending = Pending::at(offset, line_no);
            }
            // Otherwise the comments and directives before the marker belong
            // to the document it starts.
            pending.explicit = true;
            if marker_line_has_content(line) {
                pending.content_line = Some(line_no);
            }
        } else if is_marker(line, "...") {
            if pending.is_document() {
                push(&mut documents, text, &pending, next_offset);
            }
            pending = Pending::at(next_offset, line_no + 1);
        } else if pending.content_line.is_none() && is_content(line, pending.explicit) {
            pending.content_line = Some(line_no);
        }
        offset = next_offset;
    }
    if pending.is_document() {
        push(&mut documents, text, &pending, text.len());
    }
    documents
}

fn push<'a>(documents: &mut Vec<RawDocument<'a>>, text: &'a str, pending: &Pending, end: usize) {
    documents.push(RawDocument {
        text: &text[pending.start..end],
        first_line: pending.first_line,
        content_line: pending.content_line,
        index: documents.len(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(first_line, content_line, text)` of every document.
    fn split(text: &str) -> Vec<(usize, Option<usize>, &str)> {
        split_documents(text)
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                assert_eq!(d.index, i);
                (d.first_line, d.content_line, d.text)
            })
            .collect()
    }

    #[test]
    fn single_document_without_marker() {
        assert_eq!(split("a: 1\nb: 2\n"), [(1, Some(1), "a: 1\nb: 2\n")]);
    }

    #[test]
    fn leading_marker_and_separators() {
        let text = "---\na: 1\n---\nb: 2\n--- \nc: 3";
        assert_eq!(
            split(text),
            [
                (1, Some(2), "---\na: 1\n"),
                (3, Some(4), "---\nb: 2\n"),
                (5, Some(6), "--- \nc: 3"),
            ]
        );
    }

    #[test]
    fn comments_before_the_first_marker_join_the_first_document() {
        let text = "# Source: chart/templates/a.yaml\n\n---\n# comment\napiVersion: v1\n";
        assert_eq!(split(text), [(1, Some(5), text)]);
    }

    #[test]
    fn empty_explicit_documents_count() {
        // Helm output often has empty documents between markers.
        let text = "---\n---\n# only a comment\n---\na: 1\n";
        let docs = split(text);
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0], (1, None, "---\n"));
        assert_eq!(docs[1], (2, None, "---\n# only a comment\n"));
        assert_eq!(docs[2], (4, Some(5), "---\na: 1\n"));
    }

    #[test]
    fn comment_only_stream_has_no_documents() {
        assert!(split("# nothing here\n\n   \n").is_empty());
        assert!(split("").is_empty());
    }

    #[test]
    fn content_on_the_marker_line() {
        let text = "--- {a: 1}\n--- # comment\nb: 2\n--- |\n  text\n";
        assert_eq!(
            split(text),
            [
                (1, Some(1), "--- {a: 1}\n"),
                (2, Some(3), "--- # comment\nb: 2\n"),
                (4, Some(4), "--- |\n  text\n"),
            ]
        );
    }

    #[test]
    fn indented_or_glued_dashes_are_content() {
        // Inside a block scalar, `---` is content when indented; `---x` is
        // never a marker.
        let text = "data:\n  script: |\n    echo\n    ---\n    done\nkey: ---x\n---x: 1\n";
        assert_eq!(split(text), [(1, Some(1), text)]);
    }

    #[test]
    fn hash_lines_inside_block_scalars_do_not_move_the_start() {
        let text = "---\nscript: |\n  # not a comment\n";
        assert_eq!(split(text), [(1, Some(2), text)]);
    }

    #[test]
    fn document_end_marker_and_bare_document_after_it() {
        let text = "a: 1\n...\n# between\nb: 2\n...\n";
        assert_eq!(
            split(text),
            [
                (1, Some(1), "a: 1\n...\n"),
                (3, Some(4), "# between\nb: 2\n...\n")
            ]
        );
    }

    #[test]
    fn directives_belong_to_the_next_document() {
        let text = "a: 1\n...\n%YAML 1.2\n---\nb: 2\n";
        assert_eq!(
            split(text),
            [
                (1, Some(1), "a: 1\n...\n"),
                (3, Some(5), "%YAML 1.2\n---\nb: 2\n")
            ]
        );
    }

    #[test]
    fn crlf_line_endings() {
        let text = "a: 1\r\n---\r\nb: 2\r\n";
        assert_eq!(
            split(text),
            [(1, Some(1), "a: 1\r\n"), (2, Some(3), "---\r\nb: 2\r\n")]
        );
    }

    #[test]
    fn tab_after_marker() {
        assert_eq!(split("a: 1\n---\t\nb: 2").len(), 2);
    }
}
