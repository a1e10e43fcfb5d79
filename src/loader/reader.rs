//! Turns documents into objects, on whichever thread reads them: each
//! document is parsed, its type read, List documents opened into their
//! items, and each object decoded and handed to the caller's `map` right
//! away, everything recorded as [`Outcome`]s in document order.

use std::sync::Arc;

use serde_json::Value;

use super::documents::{
    Document, each_json_document, field_line, is_template, list_item_lines, parse_raw_document,
};
use super::outcome::Outcome;
use super::split::RawDocument;
use super::{LoadError, LoadedObject, Source};
use crate::model::{KindTable, PathSegment, Resource};

/// Reads documents of one file into outcomes.
pub struct Reader<'r, M, T> {
    pub kinds: &'r KindTable,
    pub map: &'r M,
    pub file: &'r Arc<str>,
    pub out: &'r mut Vec<Outcome<T>>,
}

/// Where in a file a value is.
#[derive(Clone, Copy, Debug)]
struct At {
    line: usize,
    document: usize,
    item: Option<usize>,
}

impl<M: Fn(LoadedObject) -> T, T> Reader<'_, M, T> {
    /// Reads YAML documents, in order.
    pub fn yaml<'a>(&mut self, documents: impl IntoIterator<Item = RawDocument<'a>>) {
        for raw in documents {
            match parse_raw_document(self.file, &raw) {
                None => {}
                Some(parsed) => {
                    self.out.push(Outcome::Document);
                    self.parsed(parsed);
                }
            }
        }
    }

    /// Reads the values of a JSON text, in order.
    pub fn json(&mut self, text: &str) {
        let file = Arc::clone(self.file);
        each_json_document(&file, text, |parsed| {
            self.out.push(Outcome::Document);
            self.parsed(parsed);
        });
    }

    fn parsed(&mut self, parsed: Result<Document<'_>, LoadError>) {
        match parsed {
            Ok(document) => self.add_document(document),
            Err(template @ LoadError::Template { .. }) => {
                self.out.push(Outcome::Template(template))
            }
            Err(err) => self.out.push(Outcome::Invalid(err)),
        }
    }

    fn add_document(&mut self, mut document: Document<'_>) {
        let value = std::mem::take(&mut document.value);
        let at = At {
            line: document.line,
            document: document.index,
            item: None,
        };
        self.add_value(&document, value, at);
    }

    /// Adds one document or List item.
    fn add_value(&mut self, document: &Document<'_>, value: Value, at: At) {
        let Some((api_version, kind)) = self.type_meta(&value, at) else {
            return;
        };
        if is_list(&kind, &value) {
            self.add_list(document, value, at, &api_version, &kind);
            return;
        }
        self.out.push(Outcome::KubernetesDocument);
        match Resource::decode_with(self.kinds, &api_version, &kind, value) {
            Ok(Some(resource)) => {
                let object = LoadedObject {
                    resource,
                    source: Source {
                        file: Arc::clone(self.file),
                        line: at.line,
                        document: at.document,
                    },
                    api_version,
                };
                self.out.push(Outcome::Object((self.map)(object)));
            }
            Ok(None) => self
                .out
                .push(Outcome::SkippedKind(qualified_kind(&api_version, &kind))),
            Err(_) if is_template(document.text) => {
                self.out.push(Outcome::Template(LoadError::Template {
                    file: self.file.to_string(),
                    line: at.line,
                }));
            }
            Err(source) => {
                let line = decode_error_line(document, at, &source.segments);
                self.out.push(Outcome::Error(LoadError::Decode {
                    file: self.file.to_string(),
                    line,
                    document: at.document,
                    item: at.item,
                    source: Box::new(source),
                }));
            }
        }
    }

    /// `apiVersion` and `kind` of a Kubernetes object; `None` (counted or
    /// reported) for anything else.
    fn type_meta(&mut self, value: &Value, at: At) -> Option<(String, String)> {
        let Value::Object(map) = value else {
            self.out.push(Outcome::NonKubernetes);
            return None;
        };
        let error = |message: String| {
            Outcome::Error(LoadError::TypeMeta {
                file: self.file.to_string(),
                line: at.line,
                document: at.document,
                message: match at.item {
                    Some(i) => format!("List item {i}: {message}"),
                    None => message,
                },
            })
        };
        let (api_version, kind) = match (map.get("apiVersion"), map.get("kind")) {
            (None, None) => {
                self.out.push(Outcome::NonKubernetes);
                return None;
            }
            // Helm's Chart.yaml and other tools' files have an `apiVersion`
            // of their own but are not objects: no `kind`, no `metadata`.
            (Some(_), None) if !map.contains_key("metadata") => {
                self.out.push(Outcome::NonKubernetes);
                return None;
            }
            (Some(_), None) => {
                let outcome = error("has `apiVersion` and `metadata` but no `kind`".into());
                self.out.push(outcome);
                return None;
            }
            (None, Some(_)) => {
                let outcome = error("has `kind` but no `apiVersion`".into());
                self.out.push(outcome);
                return None;
            }
            (Some(api_version), Some(kind)) => (api_version, kind),
        };
        match (api_version, kind) {
            (Value::String(a), Value::String(k)) if !a.is_empty() && !k.is_empty() => {
                Some((a.clone(), k.clone()))
            }
            _ => {
                let outcome = error(format!(
                    "`apiVersion` and `kind` must be non-empty strings, found {api_version} and {kind}"
                ));
                self.out.push(outcome);
                None
            }
        }
    }

    fn add_list(
        &mut self,
        document: &Document<'_>,
        value: Value,
        at: At,
        api_version: &str,
        kind: &str,
    ) {
        let Value::Object(mut map) = value else {
            return;
        };
        let items = match map.remove("items") {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        // Items of a typed list (`DeploymentList`) may leave out their type.
        let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
        // Item lines come from the source text; a List nested in a List
        // item reports the outer item's line for its own items.
        let lines = match at.item {
            None => list_item_lines(document.text, document.text_line),
            Some(_) => None,
        };
        for (i, mut item) in items.into_iter().enumerate() {
            if let (Some(item_kind), Value::Object(fields)) = (item_kind, &mut item) {
                fields
                    .entry("apiVersion")
                    .or_insert_with(|| api_version.into());
                fields.entry("kind").or_insert_with(|| item_kind.into());
            }
            let line = lines
                .as_ref()
                .and_then(|lines| lines.get(i).copied())
                .unwrap_or(at.line);
            let item_at = At {
                line,
                document: at.document,
                item: Some(at.item.unwrap_or(i)),
            };
            self.add_value(document, item, item_at);
        }
    }
}

/// The line of the field that failed to decode; the object's own line when
/// the field cannot be found in the text.
fn decode_error_line(document: &Document<'_>, at: At, path: &[PathSegment]) -> usize {
    let in_document = match at.item {
        None => field_line(document.text, document.text_line, path),
        Some(item) => {
            let mut full = vec![PathSegment::Key("items".into()), PathSegment::Index(item)];
            full.extend_from_slice(path);
            field_line(document.text, document.text_line, &full)
        }
    };
    in_document
        .filter(|&line| line >= at.line)
        .unwrap_or(at.line)
}

/// A List document: `kind: List` always, `<Kind>List` when it has `items`
/// (a custom kind may end in `List` without being one).
fn is_list(kind: &str, value: &Value) -> bool {
    kind == "List"
        || (kind.ends_with("List")
            && matches!(value.get("items"), Some(Value::Array(_) | Value::Null)))
}

/// `Kind` for the core group, `Kind.group` otherwise.
fn qualified_kind(api_version: &str, kind: &str) -> String {
    match api_version.rsplit_once('/') {
        Some((group, _)) if !group.is_empty() => format!("{kind}.{group}"),
        _ => kind.to_owned(),
    }
}
