//! Hostile and malformed inputs, run the way the `scan` fuzz target (see
//! fuzz/README.md) runs every input: bytes as a manifest file's content,
//! through the loader, the engine and every output format. None may panic;
//! every report must be well-formed and the same twice.
//!
//! An input the fuzzer finds that fails goes here as a new test, minimised,
//! with a comment saying what it broke.

use palisade::checks::catalog;
use palisade::cli::scan::{self, Scanned};
use palisade::engine::Check;
use palisade::loader::{Input, Loader, split_documents};
use palisade::output::{self, Evaluated, Format, Options, Report, ReportFindings};
use palisade::policy::Policy;

const FORMATS: [Format; 6] = [
    Format::Table,
    Format::Json,
    Format::Yaml,
    Format::Sarif,
    Format::Junit,
    Format::Openreports,
];

/// What became of an input.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Refused, with these messages.
    Errors(Vec<String>),
    /// Scanned: objects and findings.
    Scanned { objects: usize, findings: usize },
}

/// Runs `data` like the fuzz target does and says what happened.
fn scan_bytes(data: &[u8]) -> Outcome {
    let loaded = Loader::new().load_with_stdin(&[Input::Stdin], data);
    if !loaded.errors.is_empty() {
        return Outcome::Errors(loaded.errors.iter().map(|e| e.to_string()).collect());
    }
    let policy = Policy::default();
    let scanned = scan::evaluate(loaded, &policy);
    let evaluated = scan::evaluated_objects(&scanned.inventory);
    let checks: Vec<&'static Check> = catalog().to_vec();
    for format in FORMATS {
        let first = render(format, &scanned, &checks, &policy, &evaluated);
        check_syntax(format, &first);
        let second = render(format, &scanned, &checks, &policy, &evaluated);
        assert!(
            first == second,
            "{format:?} report differs between renderings"
        );
    }
    Outcome::Scanned {
        objects: scanned.summary.objects,
        findings: scanned.findings.len(),
    }
}

fn render(
    format: Format,
    scanned: &Scanned,
    checks: &[&'static Check],
    policy: &Policy,
    evaluated: &[Evaluated],
) -> String {
    let report = Report {
        errors: &[],
        skipped_inputs: &[],
        findings: ReportFindings::InMemory {
            findings: &scanned.findings,
            definitions: &scanned.definitions,
        },
        sources: &scanned.sources,
        checks,
        policy,
        evaluated,
        posture: &[],
        summary: scanned.summary.clone(),
        options: Options {
            show_suppressed: true,
            color: true,
            ..Options::default()
        },
    };
    let mut out = Vec::new();
    output::write(format, &report, &mut out).expect("writes to memory");
    String::from_utf8(out).expect("reports are UTF-8")
}

fn check_syntax(format: Format, text: &str) {
    match format {
        Format::Json | Format::Sarif => {
            serde_json::from_str::<serde_json::Value>(text)
                .unwrap_or_else(|e| panic!("{format:?} report is not JSON: {e}\n{text}"));
        }
        Format::Yaml => {
            serde_norway::from_str::<serde_json::Value>(text)
                .unwrap_or_else(|e| panic!("YAML report is not YAML: {e}\n{text}"));
        }
        Format::Junit => {
            roxmltree::Document::parse(text)
                .unwrap_or_else(|e| panic!("JUnit report is not XML: {e}\n{text}"));
        }
        Format::Openreports => {
            // A stream of `---`-separated documents, each one YAML object.
            for document in split_documents(text)
                .iter()
                .filter(|d| d.content_line.is_some())
            {
                serde_norway::from_str::<serde_json::Value>(document.text)
                    .unwrap_or_else(|e| panic!("OpenReports document is not YAML: {e}\n{text}"));
            }
        }
        Format::Table => {}
    }
}

fn errors(data: &[u8]) -> Vec<String> {
    match scan_bytes(data) {
        Outcome::Errors(errors) => errors,
        scanned => panic!("expected the input to be refused, got {scanned:?}"),
    }
}

fn scanned(data: &[u8]) -> (usize, usize) {
    match scan_bytes(data) {
        Outcome::Scanned { objects, findings } => (objects, findings),
        Outcome::Errors(errors) => panic!("expected the input to scan, got {errors:?}"),
    }
}

#[test]
fn empty_and_blank_inputs_are_refused() {
    for input in [
        "",
        "\n",
        "   \n\t\n",
        "---\n",
        "---\n...\n",
        "# comment\n",
        "null\n",
    ] {
        assert!(!errors(input.as_bytes()).is_empty(), "{input:?}");
    }
}

#[test]
fn binary_and_non_utf8_inputs_are_refused() {
    for input in [
        &b"apiVersion: v1\0kind: Pod\n"[..],
        &b"\xff\xfe\x00a\x00p\x00i"[..],
        &b"apiVersion: v1\nkind: Pod\nmetadata: {name: \xc3\x28}\n"[..],
    ] {
        assert!(!errors(input).is_empty(), "{input:?}");
    }
}

#[test]
fn alias_bombs_are_refused_quickly() {
    let mut text =
        String::from("apiVersion: v1\nkind: Pod\nmetadata:\n  name: lol\n  annotations:\n");
    text.push_str("    a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..9 {
        let previous = format!("*a{}", level - 1);
        let items = [previous.as_str(); 9].join(", ");
        text.push_str(&format!("    a{level}: &a{level} [{items}]\n"));
    }
    text.push_str("spec: {containers: [{name: app, image: nginx}]}\n");
    let started = std::time::Instant::now();
    let errors = errors(text.as_bytes());
    assert!(errors[0].contains("invalid YAML"), "{errors:?}");
    assert!(
        started.elapsed().as_secs() < 10,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn deep_nesting_is_refused() {
    // Standard input starting with `[` is read as JSON; in a YAML document
    // the same nesting is refused before parsing.
    let json_arrays = "[".repeat(100_000);
    assert!(!errors(json_arrays.as_bytes()).is_empty());
    let flow = format!("a: {}", "[".repeat(100_000));
    assert!(errors(flow.as_bytes())[0].contains("nested deeper"));

    let mut block =
        String::from("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  annotations:\n");
    for depth in 0..2_000 {
        block.push_str(&format!("{}k{depth}:\n", " ".repeat(4 + 2 * depth)));
    }
    assert!(errors(block.as_bytes())[0].contains("invalid YAML"));

    let json = format!(
        "{}{}",
        r#"{"apiVersion":"v1","kind":"List","items":["#.repeat(500),
        "]}".repeat(500)
    );
    assert!(!errors(json.as_bytes()).is_empty());
}

#[test]
fn lists_in_lists_and_odd_items() {
    let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n  - apiVersion: v1\n    kind: Pod\n    metadata: {name: inner}\n    spec: {containers: [{name: a, image: b}]}\n- 3\n- null\n- [1, 2]\n";
    assert_eq!(scanned(text.as_bytes()).0, 1);
    let not_an_array = "apiVersion: v1\nkind: List\nitems: {a: b}\n";
    let _ = scan_bytes(not_an_array.as_bytes());
}

#[test]
fn missing_and_null_fields_in_workloads() {
    for spec in [
        "spec: {containers: []}",
        "spec: {containers: null}",
        "spec: {}",
        "spec: null",
        "spec: {containers: [{name: ''}], initContainers: [], ephemeralContainers: [{name: e}]}",
        "spec: {containers: [{name: a, securityContext: {}, ports: [{containerPort: 0}]}]}",
        "spec: {volumes: [{name: v}], containers: [{name: a, volumeMounts: [{name: missing, mountPath: ''}]}]}",
    ] {
        let text =
            format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: n}}\n{spec}\n");
        let _ = scan_bytes(text.as_bytes());
    }
    for kind in ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"] {
        let text = format!(
            "apiVersion: apps/v1\nkind: {kind}\nmetadata: {{name: w}}\nspec: {{selector: {{}}, template: {{}}}}\n"
        );
        let _ = scan_bytes(text.as_bytes());
    }
    let cronjob = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec: {schedule: '', jobTemplate: {}}\n";
    let _ = scan_bytes(cronjob.as_bytes());
}

#[test]
fn out_of_range_numbers_are_errors_not_panics() {
    for value in ["99999999999999999999", "-1e400", "1e400", ".nan", "-.inf"] {
        let text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  securityContext: {{runAsUser: {value}}}\n  containers: [{{name: a, image: b}}]\n"
        );
        let _ = scan_bytes(text.as_bytes());
    }
}

#[test]
fn hostile_names_keep_every_report_well_formed() {
    // Quotes, markup, control characters, right-to-left override, and a
    // name that is all whitespace: every format must escape them.
    let names = [
        r#"'a"b<c>&d'"#,
        r#""tab\there""#,
        r#""bell\u0007 esc\u001b[31m""#,
        r#""rtl\u202eoverride""#,
        "' '",
        r#""]]>--><!--""#,
    ];
    for name in names {
        let text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {name}\n  annotations: {{palisade.dev/ignore: {name}, palisade.dev/ignore-reason: {name}}}\nspec:\n  containers:\n  - name: {name}\n    image: {name}\n    securityContext: {{privileged: true}}\n"
        );
        let (objects, findings) = scanned(text.as_bytes());
        assert_eq!(objects, 1, "{name}");
        assert!(findings > 0, "{name}");
    }
}

#[test]
fn rbac_objects_with_odd_references() {
    let text = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ''}
subjects: [{kind: ServiceAccount, name: ''}, {kind: Group, name: 'system:authenticated'}, {kind: Unknown, name: x}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: agg}
aggregationRule: {clusterRoleSelectors: [{}]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r}
rules: [{verbs: [], apiGroups: [], resources: []}, {verbs: ['*'], nonResourceURLs: ['*']}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}
subjects: [{kind: ServiceAccount, name: default}]
"#;
    let _ = scan_bytes(text.as_bytes());
}

#[test]
fn crlf_tabs_anchors_and_merge_keys() {
    let crlf = "apiVersion: v1\r\nkind: Pod\r\nmetadata: {name: p}\r\nspec: {containers: [{name: a, image: b}]}\r\n";
    assert_eq!(scanned(crlf.as_bytes()).0, 1);
    let merge = "base: &base {name: a, image: b}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - &c {name: a, image: b}\n  - {<<: *c, name: c}\n";
    let _ = scan_bytes(merge.as_bytes());
    let tabs = "apiVersion: v1\nkind: Pod\nmetadata:\n\tname: p\n";
    let _ = scan_bytes(tabs.as_bytes());
}

#[test]
fn concatenated_and_broken_json() {
    let two = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}} {"apiVersion":"v1","kind":"Pod","metadata":{"name":"b"}}"#;
    let _ = scan_bytes(two.as_bytes());
    for broken in [
        "{",
        "[",
        "{\"apiVersion\": \"v1\", \"kind\":",
        "[1, 2,]",
        "{}{}{}",
    ] {
        let _ = scan_bytes(broken.as_bytes());
    }
}

#[test]
fn yaml_1_1_scalars_and_merge_keys_are_errors_or_scans_not_panics() {
    for body in [
        "metadata: {name: p, labels: {<<: 3}}",
        "metadata: {name: p, labels: {<<: [1, {a: b}]}}",
        "metadata: {name: p, labels: {<<: null}}",
        "metadata: &m {name: p, labels: {<<: *m}}",
        "metadata: {name: p, labels: {~: a}}",
        "metadata: {name: p, labels: {[a]: b}}",
        "metadata: {name: p, labels: {? {a: b} : c}}",
        "metadata: {name: !!int yes}",
        "metadata: {name: !!bool 3}",
        "metadata: {name: !!float .nan}",
        "metadata: {name: !!null ''}",
        "metadata: {name: !custom yes}",
        "metadata: {name: ! yes}",
        "metadata: {name: 0x}",
        "metadata: {name: -0b}",
        "metadata: {name: 0o}",
        "metadata: {name: +.5e-3}",
        "metadata: {name: 9223372036854775808}",
        "metadata: {name: -9223372036854775808}",
        "metadata: {name: -9223372036854775809}",
        "metadata: {name: 1_}",
        "metadata: {name: _1}",
        "metadata: {name: '<<'}",
    ] {
        let text = format!(
            "apiVersion: v1\nkind: Pod\n{body}\nspec: {{containers: [{{name: a, image: b}}]}}\n"
        );
        let _ = scan_bytes(text.as_bytes());
    }
}

#[test]
fn merge_keys_copy_into_pod_templates() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - &c {name: a, image: b, securityContext: {privileged: yes}}\n  - {<<: *c, name: d}\n";
    let (objects, findings) = scanned(text.as_bytes());
    assert_eq!(objects, 1);
    assert!(findings > 0);
}
