//! Reading a file in chunks on several threads gives exactly what reading
//! it whole on one thread gives.

use std::fs;

use super::*;

/// Everything a [`Loaded`] says, comparable.
#[derive(Debug, PartialEq)]
struct Summary {
    objects: Vec<(String, String, usize, usize, String)>,
    skipped: Skipped,
    files: usize,
    warnings: Vec<String>,
    errors: Vec<String>,
}

fn summary(loaded: &Loaded) -> Summary {
    Summary {
        objects: loaded.objects.iter().map(object_line).collect(),
        skipped: loaded.skipped.clone(),
        files: loaded.files,
        warnings: loaded.warnings.iter().map(|w| w.to_string()).collect(),
        errors: loaded.errors.iter().map(|e| e.to_string()).collect(),
    }
}

fn object_line(object: &LoadedObject) -> (String, String, usize, usize, String) {
    let r = object.resource.object_ref();
    (
        format!("{}/{}", r.kind, r.name),
        object.source.file.to_string(),
        object.source.line,
        object.source.document,
        object.api_version.clone(),
    )
}

/// One thread, nothing split.
fn whole() -> Loader {
    let mut loader = Loader::new().threads(1);
    loader.chunk_bytes = usize::MAX;
    loader
}

/// Several threads, chunks of about `chunk_bytes`.
fn chunked(threads: usize, chunk_bytes: usize) -> Loader {
    let mut loader = Loader::new().threads(threads);
    loader.chunk_bytes = chunk_bytes;
    loader
}

const SPLITS: [(usize, usize); 4] = [(2, 1), (2, 150), (3, 700), (2, 4096)];

/// A stream with every kind of document, `copies` times over.
fn mixed_stream(copies: usize) -> String {
    let mut text = String::from("# header comment\n");
    for i in 0..copies {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nspec: {{containers: [{{name: a, image: nginx}}]}}\n\
             ---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}}}\n\
             ---\n# empty\n\
             ---\nfoo: bar\n\
             ---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {{name: l{i}}}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {{name: c{i}}}\n  data: {{a: b}}\n\
             ---\napiVersion: apps/v1\nkind: DeploymentList\nitems:\n- metadata: {{name: d{i}}}\n  spec:\n    selector: {{}}\n    template: {{spec: {{containers: [{{name: a}}]}}}}\n"
        ));
        if i % 7 == 3 {
            text.push_str("---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad}\nspec:\n  replicas: many\n");
        }
        if i % 11 == 5 {
            text.push_str("---\napiVersion: v1\nkind: Pod\nmetadata: {name: [}\n");
        }
        if i % 13 == 6 {
            text.push_str(
                "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}\n",
            );
            text.push_str("---\nkind: Pod\nmetadata: {name: half}\n");
        }
    }
    text
}

#[test]
fn a_chunked_stream_reads_as_a_whole_one() {
    let text = mixed_stream(60);
    let expected = summary(&whole().load_text("in.yaml", &text));
    assert_eq!(expected.objects.len(), 60 * 3 + 60);
    assert!(expected.errors.len() > 10, "{:?}", expected.errors);
    assert!(expected.skipped.templates > 0);
    for (threads, chunk_bytes) in SPLITS {
        let loaded = chunked(threads, chunk_bytes).load_text("in.yaml", &text);
        assert_eq!(
            summary(&loaded),
            expected,
            "{threads} threads, {chunk_bytes}-byte chunks"
        );
    }
}

#[test]
fn too_many_errors_stop_a_chunked_file_at_the_same_document() {
    let mut text = String::new();
    for i in 0..80 {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\n"
        ));
        if i % 3 == 0 {
            text.push_str("---\na: [\n");
        }
    }
    let expected = summary(&whole().load_text("in.yaml", &text));
    assert_eq!(
        expected.errors.len(),
        MAX_ERRORS_PER_FILE + 1,
        "{:?}",
        expected.errors
    );
    assert!(
        expected.objects.len() < 80,
        "the rest of the file is not read"
    );
    for (threads, chunk_bytes) in SPLITS {
        let loaded = chunked(threads, chunk_bytes).load_text("in.yaml", &text);
        assert_eq!(summary(&loaded), expected, "{threads}, {chunk_bytes}");
    }
}

#[test]
fn files_json_and_stdin_read_in_chunks_as_whole() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::write(root.join("a.yaml"), mixed_stream(30)).unwrap();
    fs::write(root.join("b.yaml"), "# nothing\n").unwrap();
    fs::write(root.join("c.yaml"), mixed_stream(2)).unwrap();
    let mut json = String::new();
    for i in 0..40 {
        json.push_str(&format!(
            "{{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {{\"name\": \"j{i}\"}}}}\n"
        ));
    }
    json.push_str("{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [\n  {\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"ji\"}}\n]}\n");
    fs::write(root.join("d.json"), &json).unwrap();
    fs::write(root.join("e.yaml"), b"\0").unwrap();
    let named = root.join("c.yaml");
    let inputs = [
        Input::Path(root.to_owned()),
        Input::Stdin,
        Input::Path(root.join("missing.yaml")),
        Input::Path(named),
        Input::Stdin,
    ];
    let stdin = mixed_stream(20);
    let expected = summary(&whole().load_with_stdin(&inputs, stdin.as_bytes()));
    assert_eq!(expected.files, 5, "a, b, c, d and standard input");
    assert!(expected.objects.iter().any(|o| o.1 == STDIN_NAME));
    assert!(expected.objects.iter().any(|o| o.0 == "Pod/ji"));
    for (threads, chunk_bytes) in SPLITS {
        let loaded = chunked(threads, chunk_bytes).load_with_stdin(&inputs, stdin.as_bytes());
        assert_eq!(summary(&loaded), expected, "{threads}, {chunk_bytes}");
    }
}

#[test]
fn mapped_items_come_in_input_order() {
    let text = mixed_stream(40);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.yaml");
    fs::write(&file, &text).unwrap();
    let inputs = [Input::Path(file)];
    let expected: Vec<_> = whole()
        .load_with_stdin(&inputs, std::io::empty())
        .objects
        .iter()
        .map(object_line)
        .collect();
    for (threads, chunk_bytes) in SPLITS {
        let mut items = Vec::new();
        let loaded = chunked(threads, chunk_bytes).load_each_mapped(
            &inputs,
            std::io::empty(),
            |object| object_line(&object),
            |item| items.push(item),
        );
        assert!(loaded.objects.is_empty());
        assert_eq!(items, expected, "{threads}, {chunk_bytes}");
    }
}
