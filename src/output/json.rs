//! The JSON report (and the same document as YAML). Field order is fixed by
//! the structs below; docs/ci.md documents every field.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, Write};

use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

use super::{Report, Summary};
use crate::engine::{Check, Finding, Severity, SuppressionSource};
use crate::loader::{ErrorEntry, Source};
use crate::model::ObjectRef;

/// The report. Findings are serialized one at a time, never all held as
/// serializable records at once. [`write_json`] writes the same document
/// with the findings rendered in parallel; YAML serializes this.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a, 'r> {
    summary: &'a Summary,
    findings: Findings<'a, 'r>,
    /// Inputs that could not be read or decoded.
    errors: &'a [ErrorEntry],
    /// Inputs that are not manifests (unrendered templates).
    skipped_inputs: &'a [ErrorEntry],
    /// The Pod Security posture of each namespace of the input.
    namespaces: Vec<super::posture::JsonPosture<'a>>,
}

/// The shown findings, serialized as they are read; a read error stops
/// the document and is kept for [`write_json`] to return.
struct Findings<'a, 'r> {
    report: &'a Report<'r>,
    read_error: &'a ReadError,
}

impl Serialize for Findings<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for item in self.report.shown_with_sources() {
            let (f, source) = item.map_err(|e| self.read_error.keep::<S::Error>(e))?;
            seq.serialize_element(&finding(&f, source.as_deref()))?;
        }
        seq.end()
    }
}

/// An error reading findings while a serializer writes them: serializers
/// only carry their own error type, so the original is kept here.
#[derive(Default)]
pub(crate) struct ReadError(Cell<Option<io::Error>>);

impl ReadError {
    /// Keeps `error`; the serializer gets a copy of its message.
    pub(crate) fn keep<E: serde::ser::Error>(&self, error: io::Error) -> E {
        let custom = E::custom(&error);
        self.0.set(Some(error));
        custom
    }

    /// The read error if there was one, else `error` as an I/O error.
    pub(crate) fn or(self, error: impl Into<io::Error>) -> io::Error {
        self.0.into_inner().unwrap_or_else(|| error.into())
    }
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    check: &'a str,
    title: &'a str,
    severity: Severity,
    category: &'a str,
    message: &'a str,
    path: &'a str,
    container: Option<&'a str>,
    suppressed: Option<JsonSuppression<'a>>,
    object: JsonObject<'a>,
    source: Option<JsonSource<'a>>,
    remediation: &'a str,
    frameworks: &'a [&'a str],
}

#[derive(Serialize)]
struct JsonSuppression<'a> {
    /// `annotation`, `policy` or `builtin`.
    source: &'a str,
    /// The ScanPolicy exception's name, for `policy`.
    exception: Option<&'a str>,
    reason: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonObject<'a> {
    api_version: &'a str,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
}

#[derive(Serialize)]
struct JsonSource<'a> {
    file: &'a str,
    line: usize,
    document: usize,
}

fn document<'a, 'r>(report: &'a Report<'r>, read_error: &'a ReadError) -> Document<'a, 'r> {
    Document {
        summary: &report.summary,
        findings: Findings { report, read_error },
        errors: report.errors,
        skipped_inputs: report.skipped_inputs,
        namespaces: super::posture::json(report.posture),
    }
}

fn finding<'a>(f: &'a Finding, source: Option<&'a Source>) -> JsonFinding<'a> {
    JsonFinding {
        check: f.check.id,
        title: f.check.title,
        severity: f.severity,
        category: f.check.category.as_str(),
        message: &f.message,
        path: &f.path,
        container: f.container.as_deref(),
        suppressed: f.suppressed.as_ref().map(|s| {
            let (source, exception) = suppression_source(&s.source);
            JsonSuppression {
                source,
                exception,
                reason: &s.reason,
            }
        }),
        object: object(&f.object),
        source: source.map(|s| JsonSource {
            file: &s.file,
            line: s.line,
            document: s.document,
        }),
        remediation: f.check.remediation,
        frameworks: f.check.frameworks,
    }
}

/// The suppression's source as a word, and the exception name for policies.
pub(crate) fn suppression_source(source: &SuppressionSource) -> (&'static str, Option<&str>) {
    match source {
        SuppressionSource::Annotation => ("annotation", None),
        SuppressionSource::Policy(name) => ("policy", Some(name)),
        SuppressionSource::Builtin => ("builtin", None),
    }
}

fn object(o: &ObjectRef) -> JsonObject<'_> {
    JsonObject {
        api_version: &o.api_version,
        kind: &o.kind,
        namespace: o.namespace.as_deref(),
        name: &o.name,
    }
}

/// The JSON report, as `serde_json`'s pretty printer writes [`Document`]:
/// written field by field so that the findings, most of its bytes, are
/// rendered on every core ([`super::ordered`]).
pub fn write_json(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(b"{\n  \"summary\": ")?;
    write_nested(&report.summary, 1, out)?;
    out.write_all(b",\n  \"findings\": [")?;
    let mut any = false;
    let findings = report.shown_with_sources().inspect(|_| any = true);
    let texts = CheckTexts::of(report.checks);
    let render = |index: usize, item: &SourcedFinding<'_>, text: &mut Vec<u8>| {
        render_finding(index, item, &texts, text)
    };
    super::ordered::write_in_order(findings, render, out)?;
    out.write_all(if any { b"\n  ]" } else { b"]" })?;
    out.write_all(b",\n  \"errors\": ")?;
    write_nested(&report.errors, 1, out)?;
    out.write_all(b",\n  \"skippedInputs\": ")?;
    write_nested(&report.skipped_inputs, 1, out)?;
    out.write_all(b",\n  \"namespaces\": ")?;
    write_nested(&super::posture::json(report.posture), 1, out)?;
    out.write_all(b"\n}\n")
}

/// A finding of the report and where its definition was read.
type SourcedFinding<'r> = (Cow<'r, Finding>, Option<Cow<'r, Source>>);

/// Element `index` of the findings array, two levels into the document:
/// the bytes the pretty printer writes for [`JsonFinding`] (the tests
/// compare them), written directly, with the check's own text printed
/// once per check rather than once per finding.
fn render_finding(
    index: usize,
    (f, source): &SourcedFinding<'_>,
    texts: &CheckTexts,
    text: &mut Vec<u8>,
) -> io::Result<()> {
    text.extend_from_slice(if index == 0 { b"\n    " } else { b",\n    " });
    let Some((head, tail)) = texts.of_check(f.check) else {
        return write_nested(&finding(f, source.as_deref()), 2, text);
    };
    text.extend_from_slice(head);
    serde_json::to_writer(&mut *text, &f.severity)?;
    text.extend_from_slice(b",\n      \"category\": ");
    string(text, f.check.category.as_str())?;
    field(text, 6, "message", Some(&f.message))?;
    field(text, 6, "path", Some(&f.path))?;
    field(text, 6, "container", f.container.as_deref())?;
    text.extend_from_slice(b",\n      \"suppressed\": ");
    match &f.suppressed {
        None => text.extend_from_slice(b"null"),
        Some(s) => {
            let (source, exception) = suppression_source(&s.source);
            text.extend_from_slice(b"{\n        \"source\": ");
            string(text, source)?;
            field(text, 8, "exception", exception)?;
            field(text, 8, "reason", Some(&s.reason))?;
            text.extend_from_slice(b"\n      }");
        }
    }
    let object = &f.object;
    text.extend_from_slice(b",\n      \"object\": {\n        \"apiVersion\": ");
    string(text, &object.api_version)?;
    field(text, 8, "kind", Some(&object.kind))?;
    field(text, 8, "namespace", object.namespace.as_deref())?;
    field(text, 8, "name", Some(&object.name))?;
    text.extend_from_slice(b"\n      },\n      \"source\": ");
    match source {
        None => text.extend_from_slice(b"null"),
        Some(source) => {
            text.extend_from_slice(b"{\n        \"file\": ");
            string(text, &source.file)?;
            write!(
                text,
                ",\n        \"line\": {},\n        \"document\": {}\n      }}",
                source.line, source.document
            )?;
        }
    }
    text.extend_from_slice(tail);
    Ok(())
}

/// `,` then `"key": value` on a new line `indent` spaces in (`null` for `None`).
fn field(text: &mut Vec<u8>, indent: usize, key: &str, value: Option<&str>) -> io::Result<()> {
    text.extend_from_slice(b",\n");
    text.extend(std::iter::repeat_n(b' ', indent));
    string(text, key)?;
    text.extend_from_slice(b": ");
    match value {
        Some(value) => string(text, value),
        None => {
            text.extend_from_slice(b"null");
            Ok(())
        }
    }
}

/// A JSON string.
fn string(text: &mut Vec<u8>, value: &str) -> io::Result<()> {
    serde_json::to_writer(text, value).map_err(io::Error::from)
}

/// The text of each check's findings that comes from the check alone: from
/// the opening brace to `"severity": `, and from `"remediation"` to the
/// closing brace.
struct CheckTexts(HashMap<usize, (Vec<u8>, Vec<u8>)>);

impl CheckTexts {
    fn of(checks: &[&'static Check]) -> CheckTexts {
        let texts = checks.iter().filter_map(|check| {
            let key = std::ptr::from_ref(*check) as usize;
            Some((key, (Self::head(check).ok()?, Self::tail(check).ok()?)))
        });
        CheckTexts(texts.collect())
    }

    /// `None` for a check not among those of the report.
    fn of_check(&self, check: &Check) -> Option<(&[u8], &[u8])> {
        let texts = self.0.get(&(std::ptr::from_ref(check) as usize))?;
        Some((&texts.0, &texts.1))
    }

    fn head(check: &Check) -> io::Result<Vec<u8>> {
        let mut head = b"{\n      \"check\": ".to_vec();
        string(&mut head, check.id)?;
        field(&mut head, 6, "title", Some(check.title))?;
        head.extend_from_slice(b",\n      \"severity\": ");
        Ok(head)
    }

    fn tail(check: &Check) -> io::Result<Vec<u8>> {
        let mut tail = Vec::new();
        field(&mut tail, 6, "remediation", Some(check.remediation))?;
        tail.extend_from_slice(b",\n      \"frameworks\": ");
        write_nested(&check.frameworks, 3, &mut tail)?;
        tail.extend_from_slice(b"\n    }");
        Ok(tail)
    }
}

/// `value` pretty-printed as if `depth` levels into a document.
fn write_nested(value: &impl Serialize, depth: usize, out: &mut dyn Write) -> io::Result<()> {
    let formatter = Nested {
        depth,
        has_value: false,
    };
    let mut serializer = serde_json::Serializer::with_formatter(out, formatter);
    value.serialize(&mut serializer).map_err(io::Error::from)
}

/// `serde_json`'s pretty printer (`PrettyFormatter`, two spaces), starting
/// `depth` levels into a document, so that a part of the document prints
/// as it would inside the whole.
struct Nested {
    depth: usize,
    /// Whether the array or object being written has an element yet.
    has_value: bool,
}

impl Nested {
    fn new_line<W: ?Sized + Write>(&self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b"\n")?;
        for _ in 0..self.depth {
            writer.write_all(b"  ")?;
        }
        Ok(())
    }

    fn open<W: ?Sized + Write>(&mut self, writer: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        writer.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, writer: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        if self.has_value {
            self.new_line(writer)?;
        }
        writer.write_all(bracket)
    }

    fn element<W: ?Sized + Write>(&self, writer: &mut W, first: bool) -> io::Result<()> {
        if !first {
            writer.write_all(b",")?;
        }
        self.new_line(writer)
    }
}

impl serde_json::ser::Formatter for Nested {
    fn begin_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open(writer, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.close(writer, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.element(writer, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open(writer, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.close(writer, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.element(writer, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

pub fn write_yaml(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    let read_error = ReadError::default();
    let written = serde_norway::to_writer(&mut *out, &document(report, &read_error));
    written.map_err(|e| read_error.or(io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use std::sync::Arc;

    use crate::engine::{Severity, Suppression, SuppressionSource};
    use crate::output::testing::{fixture, fixture_with_posture};
    use crate::output::{Format, Options};

    /// The report as `serde_json` prints [`super::Document`] whole: what
    /// [`super::write_json`] must match byte for byte.
    fn printed_whole(fixture: &crate::output::testing::Fixture, options: Options) -> String {
        let report = fixture.report(options);
        let read_error = super::ReadError::default();
        let mut text = serde_json::to_string_pretty(&super::document(&report, &read_error))
            .expect("serializes");
        text.push('\n');
        text
    }

    #[test]
    fn findings_rendered_in_parallel_print_as_the_whole_document_would() {
        let small = fixture_with_posture();
        let mut many = fixture_with_posture();
        // Enough findings for several batches, on several objects, some
        // with sources and suppressions, some without.
        let template = many.findings.clone();
        for copy in 0..900 {
            for finding in &template {
                let mut finding = finding.clone();
                let mut object = (*finding.object).clone();
                object.name = format!("{}-{copy:04}", object.name);
                finding.object = object.into();
                finding.message = format!("{} \"{copy}\"\n", finding.message);
                // Every shape of the optional fields.
                match copy % 4 {
                    0 => finding.container = None,
                    1 => {
                        finding.suppressed = Some(Box::new(Suppression {
                            source: SuppressionSource::Policy(format!("exception-{copy}")),
                            reason: "reviewed\t\"ok\"".into(),
                        }));
                    }
                    2 => Arc::make_mut(&mut finding.object).namespace = None,
                    _ => {}
                }
                many.findings.push(finding);
            }
        }
        many.findings.sort();
        assert!(many.findings.len() > 1500);
        let mut none = fixture();
        none.findings.clear();
        for fixture in [&small, &many, &none] {
            for min_severity in [Severity::Info, Severity::Critical] {
                let options = Options {
                    min_severity,
                    ..Options::default()
                };
                let text = fixture.render(Format::Json, options.clone());
                assert_eq!(text, printed_whole(fixture, options));
            }
        }
    }

    #[test]
    fn json_report_fields() {
        let text = fixture().render(Format::Json, Options::default());
        let doc: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(doc["summary"]["critical"], 1);
        assert_eq!(doc["summary"]["suppressed"], 1);
        assert_eq!(doc["summary"]["objects"], 3);
        let findings = doc["findings"].as_array().expect("array");
        assert_eq!(findings.len(), 2, "suppressed findings are listed too");
        let web = findings
            .iter()
            .find(|f| f["object"]["name"] == "web")
            .expect("web");
        assert_eq!(web["check"], "privileged-container");
        assert_eq!(web["severity"], "critical");
        assert_eq!(web["container"], "app");
        assert_eq!(web["suppressed"], Value::Null);
        assert_eq!(
            web["path"],
            "spec.template.spec.containers[name=app].securityContext.privileged"
        );
        assert_eq!(web["object"]["apiVersion"], "apps/v1");
        assert_eq!(web["object"]["namespace"], "shop");
        assert_eq!(web["source"]["file"], "deploy/app.yaml");
        assert_eq!(web["source"]["line"], 1);
        assert_eq!(web["source"]["document"], 0);
        let debug = findings
            .iter()
            .find(|f| f["object"]["name"] == "debug")
            .expect("debug");
        assert_eq!(debug["suppressed"]["source"], "annotation");
        assert_eq!(debug["suppressed"]["reason"], "needs <host> & \"devices\"");
        assert_eq!(debug["source"]["line"], 16);
        let keys: Vec<_> = web.as_object().unwrap().keys().cloned().collect();
        assert!(keys.contains(&"frameworks".to_owned()));
    }

    #[test]
    fn yaml_report_is_the_same_document() {
        let fixture = fixture();
        let json: Value =
            serde_json::from_str(&fixture.render(Format::Json, Options::default())).unwrap();
        let yaml: Value =
            serde_norway::from_str(&fixture.render(Format::Yaml, Options::default())).unwrap();
        assert_eq!(json, yaml);
    }
}
