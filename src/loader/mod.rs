//! Reads Kubernetes manifests from files, directories and standard input
//! into typed [`Resource`]s, each with the place it came from.
//!
//! - Files: YAML streams (`---`-separated documents) and JSON files (one
//!   value or several concatenated). Directories are walked recursively for
//!   `.yaml`, `.yml` and `.json` files, in sorted order, skipping hidden
//!   files and directories. `-` is standard input.
//! - `kind: List` and every `*List` kind (`DeploymentList`) stand for their
//!   `items`; items of a typed list may omit `apiVersion` and `kind`.
//! - Documents without `apiVersion` and `kind` and kinds Palisade does not
//!   scan are skipped and counted; empty documents are ignored.
//!
//! Which problems stop a scan and which only skip a file is described on
//! [`Loaded`].

#[cfg(test)]
mod chunked_tests;
mod compose;
mod documents;
mod error;
mod fast;
mod jobs;
mod outcome;
mod parallel;
mod policy;
mod read;
mod reader;
mod sources;
mod split;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use documents::MAX_ERRORS_PER_FILE;

/// The line of the field at `path` in a one-document file (a policy), to
/// point an error at it; `None` when the file or the field cannot be read.
pub fn line_of_field(file: &Path, path: &[PathSegment]) -> Option<usize> {
    let text = std::fs::read_to_string(file).ok()?;
    documents::field_line(&text, 1, path)
}
pub use error::{ErrorEntry, LoadError};
pub use policy::read_policy;
pub use read::MAX_FILE_SIZE;
pub use sources::SourceIndex;
pub use split::{RawDocument, split_documents};

use crate::model::{KindTable, PathSegment, Resource};
use jobs::{Jobs, Step};
use outcome::Tally;

/// The name standard input is reported under.
pub const STDIN_NAME: &str = "<stdin>";

/// Where an object came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The file as given on the command line (joined with the path found
    /// under a directory), or `<stdin>`.
    pub file: Arc<str>,
    /// 1-based line where the object's document, or List item, starts.
    pub line: usize,
    /// 0-based index of the document in the file.
    pub document: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A decoded object and its source.
#[derive(Clone, Debug)]
pub struct LoadedObject {
    pub resource: Resource,
    pub source: Source,
    /// The `apiVersion` as written, which may be an old one
    /// (`extensions/v1beta1`) that [`Resource`] reads in its current shape.
    pub api_version: String,
}

/// Documents and files that were read but not scanned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Documents that are not Kubernetes objects (no `apiVersion` and `kind`).
    pub non_kubernetes: usize,
    /// Kubernetes objects of kinds Palisade does not scan, by `Kind` (core
    /// group) or `Kind.group`, as `kubectl` names them.
    pub kinds: BTreeMap<String, usize>,
    /// Files found in a directory walk that could not be read as manifests
    /// (each also gives a warning).
    pub files: usize,
    /// Unrendered templates (`{{ … }}`) that are not manifests (each also
    /// gives a warning).
    pub templates: usize,
}

impl Skipped {
    /// Skipped documents of every reason.
    pub fn documents(&self) -> usize {
        self.non_kubernetes + self.templates + self.kinds.values().sum::<usize>()
    }
}

/// One command-line input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Stdin,
    Path(PathBuf),
}

impl Input {
    /// `-` is standard input; anything else a path.
    pub fn from_arg(arg: impl Into<PathBuf>) -> Input {
        let path = arg.into();
        if path.as_os_str() == "-" {
            Input::Stdin
        } else {
            Input::Path(path)
        }
    }

    pub fn name(&self) -> String {
        match self {
            Input::Stdin => STDIN_NAME.to_owned(),
            Input::Path(path) => path.display().to_string(),
        }
    }
}

/// The result of reading every input.
///
/// `errors` are inputs that could not be read or decoded (every other
/// document is still loaded: one bad document never hides the others) and
/// problems with the inputs named; `palisade scan` reports them with the
/// findings and exits 2 (see [`LoadError::is_invalid_input`] for which
/// ones `--invalid=warn` lets through). `warnings` never change the status.
/// - A path named on the command line (or `-`) that is missing, unreadable,
///   binary, not UTF-8 or over [`MAX_FILE_SIZE`] is an error; a file found
///   while walking a directory with one of those problems is skipped with a
///   warning and counted in [`Skipped::files`].
/// - A directory with no manifest files is an error.
/// - Invalid YAML or JSON, a document with `kind` but no `apiVersion` (or
///   the reverse), and a scanned kind that does not decode are errors
///   wherever the file came from: a manifest that cannot be read cannot be
///   vouched for. When such a document has Go template actions (`{{ … }}`)
///   it is an unrendered template instead: a warning, counted in
///   [`Skipped::templates`].
/// - An empty file named on the command line is a warning; input with no
///   Kubernetes object at all is an error.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The decoded objects in input order (empty after [`Loader::load_each`]
    /// and [`Loader::load_each_mapped`], which hand them over one by one).
    pub objects: Vec<LoadedObject>,
    pub skipped: Skipped,
    /// Files (and standard input) read.
    pub files: usize,
    pub warnings: Vec<LoadError>,
    pub errors: Vec<LoadError>,
}

/// How an input file was found, which decides whether a problem reading it
/// is fatal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    Named,
    Walked,
}

/// Reads inputs into a [`Loaded`].
#[derive(Clone, Debug)]
pub struct Loader {
    max_file_size: u64,
    /// The workload kinds decoded (the built-in ones and a policy's).
    kinds: KindTable,
    /// Threads that parse; 0 for one per core.
    threads: usize,
    /// YAML texts longer than this are split into chunks of about this
    /// size, parsed in parallel.
    chunk_bytes: usize,
}

/// Large enough that handing out a chunk costs little beside parsing it
/// (a few hundred documents), small enough that two threads share even a
/// file of a few megabytes evenly and that the chunks in flight stay small.
const CHUNK_BYTES: usize = 128 * 1024;

impl Default for Loader {
    fn default() -> Self {
        Loader {
            max_file_size: MAX_FILE_SIZE,
            kinds: KindTable::default(),
            threads: 0,
            chunk_bytes: CHUNK_BYTES,
        }
    }
}

impl Loader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes the workload kinds of `kinds` (a policy's `workloadKinds`
    /// added to the built-in ones).
    pub fn kinds(mut self, kinds: KindTable) -> Self {
        self.kinds = kinds;
        self
    }

    /// Files larger than `bytes` are refused.
    pub fn max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = bytes;
        self
    }

    /// Reads every input; `-` reads the process's standard input.
    pub fn load(&self, inputs: &[Input]) -> Loaded {
        self.load_with_stdin(inputs, std::io::stdin().lock())
    }

    /// Reads every input, with `stdin` standing for `-`.
    pub fn load_with_stdin(&self, inputs: &[Input], stdin: impl Read) -> Loaded {
        let mut objects = Vec::new();
        let mut loaded = self.load_each(inputs, stdin, |object| objects.push(object));
        loaded.objects = objects;
        loaded
    }

    /// Reads every input, handing each object to `on_object` as soon as it
    /// is decoded instead of keeping it in [`Loaded::objects`]: a large
    /// input then never holds every decoded object twice.
    pub fn load_each(
        &self,
        inputs: &[Input],
        stdin: impl Read,
        on_object: impl FnMut(LoadedObject),
    ) -> Loaded {
        self.load_each_mapped(inputs, stdin, |object| object, on_object)
    }

    /// Like [`Loader::load_each`], but `map` runs on the parsing threads,
    /// right after each object is decoded; `on_item` gets map's results in
    /// input order (the same order `load_each` gives). Only a few chunks'
    /// results are held at once, however large the input.
    pub fn load_each_mapped<T: Send>(
        &self,
        inputs: &[Input],
        stdin: impl Read,
        map: impl Fn(LoadedObject) -> T + Sync,
        on_item: impl FnMut(T),
    ) -> Loaded {
        let mut steps = jobs::plan(inputs);
        jobs::read_stdin(&mut steps, stdin, self.max_file_size);
        let names: Vec<String> = inputs.iter().map(Input::name).collect();
        self.run(steps, map, on_item).finish(&names.join(", "))
    }

    /// Reads manifests from text, as if from a file called `name` (JSON
    /// when the text starts with `{` or `[`).
    pub fn load_text(&self, name: &str, text: &str) -> Loaded {
        let mut objects = Vec::new();
        let step = Step::Text {
            file: Arc::from(name),
            text: Ok(text.to_owned()),
        };
        let mut loaded = self
            .run(vec![step], |object| object, |object| objects.push(object))
            .finish(name);
        loaded.objects = objects;
        loaded
    }

    /// Parses threads at once (0, the default, for one per core).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    fn run<T: Send>(
        &self,
        steps: Vec<Step>,
        map: impl Fn(LoadedObject) -> T + Sync,
        mut on_item: impl FnMut(T),
    ) -> Tally {
        let mut tally = Tally::default();
        parallel::in_order(
            Jobs::new(steps, self.max_file_size, self.chunk_bytes),
            parallel::threads(self.threads),
            |job| jobs::run(self, &map, job),
            |outcomes| {
                for outcome in outcomes {
                    tally.take(outcome, &mut on_item);
                }
            },
        );
        tally
    }
}

/// Standard input and files without a `.json` extension are YAML unless
/// their first character opens a JSON object or array.
fn looks_like_json(text: &str) -> bool {
    text.trim_start().starts_with(['{', '['])
}

fn is_json_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn load(text: &str) -> Loaded {
        Loader::new().load_text("in.yaml", text)
    }

    fn lines(loaded: &Loaded) -> Vec<(String, usize, usize)> {
        loaded
            .objects
            .iter()
            .map(|o| {
                let r = o.resource.object_ref();
                (
                    format!("{}/{}", r.kind, r.name),
                    o.source.line,
                    o.source.document,
                )
            })
            .collect()
    }

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: NAME}\nspec: {containers: [{name: app, image: nginx}]}\n";

    fn pod(name: &str) -> String {
        POD.replace("NAME", name)
    }

    #[test]
    fn multi_document_lines_and_indexes() {
        let text = format!(
            "# header\n---\n{}---\n# empty\n---\n\n{}",
            pod("a"),
            pod("b")
        );
        let loaded = load(&text);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(
            lines(&loaded),
            [("Pod/a".into(), 3, 0), ("Pod/b".into(), 11, 2)]
        );
    }

    #[test]
    fn list_items_have_their_own_lines() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: b}\n";
        let loaded = load(text);
        assert_eq!(
            lines(&loaded),
            [("Pod/a".into(), 4, 0), ("Pod/b".into(), 10, 0)]
        );
        assert_eq!(loaded.skipped.kinds.get("Service"), Some(&1));
    }

    #[test]
    fn typed_list_items_inherit_their_type() {
        let text = "apiVersion: apps/v1\nkind: DeploymentList\nitems:\n- metadata: {name: web}\n  spec:\n    selector: {}\n    template: {spec: {containers: [{name: a}]}}\n";
        let loaded = load(text);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(lines(&loaded), [("Deployment/web".into(), 4, 0)]);
    }

    #[test]
    fn json_list() {
        let text = r#"{
  "apiVersion": "v1",
  "kind": "List",
  "items": [
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}},
    {
      "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"}
    }
  ]
}"#;
        let loaded = Loader::new().load_text("in.json", text);
        assert_eq!(
            lines(&loaded),
            [("Pod/a".into(), 5, 0), ("Pod/b".into(), 6, 0)]
        );
    }

    #[test]
    fn skipped_documents_are_counted() {
        let text = format!(
            "{}---\nfoo: bar\n---\n- a\n---\napiVersion: v1\nkind: Service\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\n---\napiVersion: v2\nname: chart\nversion: 1.0.0\n",
            pod("a")
        );
        let loaded = load(&text);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(loaded.objects.len(), 1);
        assert_eq!(loaded.skipped.non_kubernetes, 3);
        let kinds: Vec<_> = loaded.skipped.kinds.iter().collect();
        assert_eq!(
            kinds,
            [
                (&"Ingress.networking.k8s.io".to_owned(), &1),
                (&"Service".to_owned(), &1)
            ]
        );
        assert_eq!(loaded.skipped.documents(), 5);
    }

    #[test]
    fn half_typed_documents_are_errors() {
        let text = format!("{}---\nkind: Pod\nmetadata: {{name: x}}\n", pod("a"));
        let loaded = load(&text);
        assert_eq!(loaded.errors.len(), 1);
        assert_eq!(
            loaded.errors[0].to_string(),
            "in.yaml:6: document 1: has `kind` but no `apiVersion`"
        );
        let loaded = load("apiVersion: v1\nmetadata: {name: x}\n");
        assert_eq!(
            loaded.errors[0].to_string(),
            "in.yaml:1: document 0: has `apiVersion` and `metadata` but no `kind`"
        );
        let loaded = load("apiVersion: v1\nkind: 3\n");
        assert!(loaded.errors[0].to_string().contains("non-empty strings"));
    }

    #[test]
    fn decode_errors_name_the_field() {
        let text = format!(
            "{}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: many\n",
            pod("a")
        );
        let loaded = load(&text);
        assert_eq!(loaded.errors.len(), 1);
        // The line of the field, not of the document (6); the type, not the value.
        assert_eq!(
            loaded.errors[0].to_string(),
            "in.yaml:10: document 1: cannot decode Deployment web: field `spec.replicas`: invalid type: string, expected i32"
        );
    }

    #[test]
    fn decode_errors_in_list_items_point_at_the_field() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: b}\n  spec:\n    containers:\n    - name: c\n      ports:\n      - containerPort: \"80\"\n";
        let loaded = load(text);
        assert_eq!(loaded.errors.len(), 1);
        let entry = loaded.errors[0].entry();
        assert_eq!(entry.line, Some(14));
        assert_eq!(
            entry.field.as_deref(),
            Some("spec.containers[0].ports[0].containerPort")
        );
        assert_eq!(entry.object.as_deref(), Some("Pod b"));
        assert_eq!(loaded.objects.len(), 1, "the valid item is kept");
    }

    #[test]
    fn decode_errors_in_json_point_at_the_field() {
        let text = "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Pod\",\n  \"metadata\": {\"name\": \"p\"},\n  \"spec\": {\n    \"hostNetwork\": \"sure\"\n  }\n}\n";
        let loaded = Loader::new().load_text("in.json", text);
        let entry = loaded.errors[0].entry();
        assert_eq!(entry.line, Some(6), "{:?}", loaded.errors);
        assert_eq!(entry.field.as_deref(), Some("spec.hostNetwork"));
        assert!(!entry.message.contains("sure"), "{}", entry.message);
    }

    #[test]
    fn templates_are_skipped_not_errors() {
        let text = format!(
            "{}---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{{{ .Release.Name }}}}\nspec:\n  replicas: {{{{ .Values.replicas }}}}\n---\n{{{{- if .Values.x }}}}\nkind: [\n",
            pod("a")
        );
        let loaded = load(&text);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(loaded.skipped.templates, 2);
        assert_eq!(loaded.objects.len(), 1);
        assert!(matches!(
            loaded.warnings[0],
            LoadError::Template { line: 6, .. }
        ));
        // Braces in a valid object's strings are not a template.
        let alert = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {summary: '{{ $labels.pod }}'}}\n";
        let loaded = load(alert);
        assert_eq!((loaded.objects.len(), loaded.skipped.templates), (1, 0));
        // An invalid document without template actions is still an error.
        let loaded = load("apiVersion: v1\nkind: Pod\nmetadata: {name: [}\n");
        assert_eq!(loaded.errors.len(), 1);
    }

    #[test]
    fn empty_input_is_an_error() {
        for text in ["", "# only comments\n", "---\n---\n", "foo: bar\n"] {
            let loaded = load(text);
            let message = loaded.errors.last().expect("an error").to_string();
            assert_eq!(
                message, "no Kubernetes objects found in in.yaml",
                "{text:?}"
            );
        }
    }

    #[test]
    fn unscanned_kinds_alone_are_not_an_error() {
        let loaded = load("apiVersion: v1\nkind: Service\nmetadata: {name: c}\n");
        assert!(loaded.errors.is_empty());
        assert!(loaded.objects.is_empty());
    }

    #[test]
    fn directory_walks_are_sorted_skip_hidden_and_warn_about_unusable_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("b/.git")).unwrap();
        fs::create_dir_all(root.join("a")).unwrap();
        fs::write(root.join("b/z.yaml"), pod("z")).unwrap();
        // Not `y`: unquoted, go-yaml v2 (and so kubectl) reads it as `true`.
        fs::write(root.join("a/y.yml"), pod("w")).unwrap();
        fs::write(
            root.join("x.JSON"),
            r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}"#,
        )
        .unwrap();
        fs::write(root.join("b/.git/hidden.yaml"), "not: [valid").unwrap();
        fs::write(root.join(".hidden.yaml"), "not: [valid").unwrap();
        fs::write(root.join("notes.txt"), "not: [valid").unwrap();
        fs::write(root.join("big.yaml"), "#".repeat(2048)).unwrap();
        fs::write(root.join("blob.yaml"), b"\0").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(root, root.join("a/loop")).unwrap();
        let loader = Loader::new().max_file_size(1024);
        let loaded = loader.load_with_stdin(&[Input::Path(root.to_owned())], std::io::empty());
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let names: Vec<_> = loaded
            .objects
            .iter()
            .map(|o| o.resource.object_ref().name)
            .collect();
        assert_eq!(names, ["w", "z", "x"], "a/y.yml, b/z.yaml, x.JSON");
        assert_eq!(loaded.skipped.files, 2);
        let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
        assert!(
            warnings[0].contains("big.yaml: file exceeds the 1024 bytes size limit (2048 bytes)"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].contains("blob.yaml: binary file"),
            "{warnings:?}"
        );

        // The same files named on the command line are errors.
        let named = Input::Path(root.join("big.yaml"));
        let loaded = loader.load_with_stdin(&[named], std::io::empty());
        assert!(matches!(
            loaded.errors[0],
            LoadError::TooLarge { size: 2048, .. }
        ));
    }

    #[test]
    fn a_file_named_twice_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pod.yaml");
        fs::write(&file, pod("a")).unwrap();
        let inputs = [
            Input::Path(file.clone()),
            Input::Path(dir.path().to_owned()),
            Input::Path(file),
        ];
        let loaded = Loader::new().load_with_stdin(&inputs, std::io::empty());
        assert_eq!(loaded.objects.len(), 1);
        assert_eq!(loaded.files, 1);
    }

    #[test]
    fn stdin_is_read_once() {
        let loaded =
            Loader::new().load_with_stdin(&[Input::Stdin, Input::Stdin], pod("a").as_bytes());
        assert_eq!(loaded.objects.len(), 1);
        assert!(matches!(loaded.errors[..], [LoadError::StdinTwice]));
        assert_eq!(loaded.objects[0].source.file.as_ref(), "<stdin>");
    }
}
