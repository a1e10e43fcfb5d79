//! `palisade scan` and `palisade checks` as a CI pipeline runs them: the
//! built binary, real files, exit codes and every output format.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const FIXTURES: &str = "tests/fixtures/scan";

/// Runs the binary from the crate root (so reported file names are
/// `tests/fixtures/scan/…`), without colour, with `stdin` as standard input.
fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("palisade starts");
    let mut input = child.stdin.take().expect("stdin is piped");
    // The binary may exit before reading everything (an error elsewhere):
    // a broken pipe here is not the test's concern.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().expect("palisade runs")
}

fn run(args: &[&str]) -> Output {
    run_with_stdin(args, b"")
}

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 stdout")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 stderr")
}

/// Runs a scan that must succeed in producing a report (exit 0 or 1).
fn report(args: &[&str]) -> String {
    let output = run(args);
    assert!(
        matches!(code(&output), 0 | 1),
        "exit {}: {}",
        code(&output),
        stderr(&output)
    );
    stdout(&output)
}

fn json_report(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    serde_json::from_str(&report(&all)).expect("valid JSON")
}

fn findings(doc: &Value) -> &Vec<Value> {
    doc["findings"].as_array().expect("findings array")
}

/// The findings of `check` on the object called `name`.
fn findings_on<'a>(doc: &'a Value, name: &str, check: &str) -> Vec<&'a Value> {
    findings(doc)
        .iter()
        .filter(|f| f["object"]["name"] == name && f["check"] == check)
        .collect()
}

const ONLY_PRIVILEGED: [&str; 2] = ["--checks", "privileged-container"];

fn scan_args<'a>(paths: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["scan"];
    args.extend_from_slice(paths);
    args.extend_from_slice(extra);
    args
}

// ---------------------------------------------------------------- exit codes

#[test]
fn exit_codes_follow_fail_on() {
    let privileged = fixture("privileged.yaml");
    let clean = fixture("clean.yaml");
    let cases: &[(&str, &[&str], i32)] = &[
        (&privileged, &[], 1),
        (&privileged, &["--fail-on", "critical"], 1),
        (&privileged, &["--fail-on", "none"], 0),
        (&clean, &[], 0),
        (&clean, &["--fail-on", "info"], 0),
    ];
    for (path, extra, expected) in cases {
        let mut args = scan_args(&[path], extra);
        args.extend(ONLY_PRIVILEGED);
        let output = run(&args);
        assert_eq!(code(&output), *expected, "{args:?}: {}", stderr(&output));
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["scan"],
        vec!["scan", "x.yaml", "--output", "xml"],
        vec!["scan", "x.yaml", "--fail-on", "severe"],
        vec!["scan", "x.yaml", "--no-such-flag"],
    ] {
        let output = run(&args);
        assert_eq!(code(&output), 2, "{args:?}");
    }
    let privileged = fixture("privileged.yaml");
    let output = run(&["scan", &privileged, "--checks", "no-such-check"]);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("unknown check `no-such-check`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn check_selection_accepts_other_tools_ids() {
    let privileged = fixture("privileged.yaml");
    // KSV017 is trivy's id for privileged-container.
    let doc = json_report(&["scan", &privileged, "--checks", "KSV017"]);
    assert_eq!(findings_on(&doc, "web", "privileged-container").len(), 1);
    let doc = json_report(&["scan", &privileged, "--skip-checks", "KSV017,C-0057"]);
    assert!(findings_on(&doc, "web", "privileged-container").is_empty());
}

// ------------------------------------------------------------------- formats

#[test]
fn table_groups_findings_by_object() {
    let privileged = fixture("privileged.yaml");
    let text = report(&scan_args(&[&privileged], &ONLY_PRIVILEGED));
    assert!(
        text.starts_with(
            "Deployment/web -n shop  tests/fixtures/scan/privileged.yaml:14\n  CRITICAL  privileged-container  container `app` is privileged\n"
        ),
        "{text}"
    );
    assert!(text.contains("at spec.template.spec.containers[name=app].securityContext.privileged"));
    let summary = text.lines().last().expect("summary line");
    assert_eq!(
        summary,
        "1 critical, 0 high, 0 medium, 0 low, 0 info · 1 object scanned in 1 file · \
         2 documents skipped (1 Service, 1 not Kubernetes)"
    );
    assert!(!text.contains('\x1b'), "no colour when not a terminal");
}

#[test]
fn table_hides_suppressed_findings_unless_asked() {
    let suppressed = fixture("suppressed.yaml");
    let output = run(&scan_args(&[&suppressed], &ONLY_PRIVILEGED));
    assert_eq!(code(&output), 0, "a suppressed finding does not fail");
    let text = stdout(&output);
    assert!(text.starts_with("No findings.\n"), "{text}");
    assert!(text.contains("1 suppressed (--show-suppressed lists them)"));
    let text = report(&scan_args(
        &[&suppressed],
        &["--show-suppressed", "--checks", "privileged-container"],
    ));
    assert!(text.contains("Pod/node-debugger -n ops  tests/fixtures/scan/suppressed.yaml:1"));
    assert!(text.contains("[suppressed: node debugging needs <host> & \"device\" access]"));
}

#[test]
fn json_report_carries_every_field() {
    let privileged = fixture("privileged.yaml");
    let doc = json_report(&scan_args(&[&privileged], &ONLY_PRIVILEGED));
    let summary = &doc["summary"];
    assert_eq!(summary["findings"], 1);
    assert_eq!(summary["critical"], 1);
    assert_eq!(summary["suppressed"], 0);
    assert_eq!(summary["objects"], 1);
    assert_eq!(summary["files"], 1);
    assert_eq!(summary["skipped"]["documents"], 2);
    assert_eq!(summary["skipped"]["nonKubernetes"], 1);
    assert_eq!(summary["skipped"]["kinds"]["Service"], 1);
    let finding = findings_on(&doc, "web", "privileged-container")[0];
    let keys: Vec<&str> = finding
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "check",
        "title",
        "severity",
        "category",
        "message",
        "path",
        "container",
        "suppressed",
        "object",
        "source",
        "remediation",
        "frameworks",
    ] {
        assert!(keys.contains(&key), "finding has `{key}`");
    }
    assert_eq!(finding["severity"], "critical");
    assert_eq!(finding["category"], "pod-security-baseline");
    assert_eq!(finding["message"], "container `app` is privileged");
    assert_eq!(
        finding["path"],
        "spec.template.spec.containers[name=app].securityContext.privileged"
    );
    assert_eq!(finding["container"], "app");
    assert_eq!(finding["suppressed"], Value::Null);
    assert_eq!(
        finding["object"],
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "web"})
    );
    assert_eq!(
        finding["source"],
        serde_json::json!({"file": "tests/fixtures/scan/privileged.yaml", "line": 14, "document": 1})
    );
    assert!(
        finding["frameworks"]
            .as_array()
            .unwrap()
            .contains(&"pss:baseline".into())
    );
}

#[test]
fn json_field_order_is_fixed() {
    let privileged = fixture("privileged.yaml");
    let mut args = scan_args(&[&privileged], &ONLY_PRIVILEGED);
    args.extend(["-o", "json"]);
    let text = report(&args);
    let findings_start = text.find("\"findings\": [").expect("findings");
    let position = |key: &str| {
        let from = if key == "summary" { 0 } else { findings_start };
        from + text[from..]
            .find(&format!("\"{key}\":"))
            .unwrap_or_else(|| panic!("{key}"))
    };
    let order = [
        "summary",
        "findings",
        "check",
        "title",
        "severity",
        "category",
        "message",
        "path",
        "container",
        "suppressed",
        "object",
        "source",
        "remediation",
        "frameworks",
    ];
    for pair in order.windows(2) {
        assert!(position(pair[0]) < position(pair[1]), "{pair:?}");
    }
}

#[test]
fn yaml_report_is_the_json_document() {
    let privileged = fixture("privileged.yaml");
    let mut args = scan_args(&[&privileged], &ONLY_PRIVILEGED);
    args.extend(["-o", "yaml"]);
    let yaml: Value = serde_norway::from_str(&report(&args)).expect("valid YAML");
    let json = json_report(&scan_args(&[&privileged], &ONLY_PRIVILEGED));
    assert_eq!(yaml, json);
}

#[test]
fn sarif_is_what_github_code_scanning_accepts() {
    let privileged = fixture("privileged.yaml");
    let list = fixture("list.yaml");
    let mut args = scan_args(&[&privileged, &list], &ONLY_PRIVILEGED);
    args.extend(["-o", "sarif"]);
    let sarif: Value = serde_json::from_str(&report(&args)).expect("valid JSON");
    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let runs = sarif["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "palisade");
    assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
    let rules = driver["rules"].as_array().unwrap();
    let rule = &rules[0];
    assert_eq!(rule["id"], "privileged-container");
    for key in [
        "name",
        "shortDescription",
        "fullDescription",
        "help",
        "defaultConfiguration",
    ] {
        assert!(rule.get(key).is_some(), "rule has {key}");
    }
    assert!(
        rule["help"]["text"]
            .as_str()
            .unwrap()
            .contains("Remediation")
    );
    assert!(rule["help"]["markdown"].as_str().is_some());
    assert_eq!(rule["properties"]["security-severity"], "9.5");
    assert_eq!(rule["defaultConfiguration"]["level"], "error");
    let tags = rule["properties"]["tags"].as_array().unwrap();
    assert!(tags.contains(&"pod-security-baseline".into()));

    let results = runs[0]["results"].as_array().unwrap();
    // One per privileged workload: web (line 14), list items first and
    // second (the second's `-` is alone on line 13, its content on 14).
    let located: Vec<(String, u64)> = results
        .iter()
        .map(|r| {
            assert_eq!(r["ruleId"], "privileged-container");
            assert_eq!(r["level"], "error");
            assert!(
                r["message"]["text"]
                    .as_str()
                    .unwrap()
                    .contains("privileged")
            );
            assert!(r["partialFingerprints"].as_object().unwrap().len() == 1);
            let location = &r["locations"][0]["physicalLocation"];
            (
                location["artifactLocation"]["uri"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                location["region"]["startLine"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        located,
        [
            ("tests/fixtures/scan/privileged.yaml".to_owned(), 14),
            ("tests/fixtures/scan/list.yaml".to_owned(), 7),
            ("tests/fixtures/scan/list.yaml".to_owned(), 14),
        ]
    );
}

#[test]
fn sarif_marks_suppressed_findings() {
    let suppressed = fixture("suppressed.yaml");
    let deployments = fixture("deployments.json");
    let policy = fixture("policy.yaml");
    let mut args = scan_args(&[&suppressed, &deployments], &ONLY_PRIVILEGED);
    args.extend(["--policy", &policy, "-o", "sarif"]);
    let sarif: Value = serde_json::from_str(&report(&args)).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let suppression = |name: &str| {
        let result = results
            .iter()
            .find(|r| r["properties"]["object"]["name"] == name)
            .unwrap_or_else(|| panic!("{name}"));
        result["suppressions"][0].clone()
    };
    assert_eq!(suppression("node-debugger")["kind"], "inSource");
    assert_eq!(suppression("api")["kind"], "external");
    assert!(
        suppression("api")["justification"]
            .as_str()
            .unwrap()
            .contains("replacement tracked in OPS-12")
    );
}

#[test]
fn junit_has_a_case_per_object_and_check() {
    let privileged = fixture("privileged.yaml");
    let clean = fixture("clean.yaml");
    let suppressed = fixture("suppressed.yaml");
    let mut args = scan_args(&[&privileged, &clean, &suppressed], &ONLY_PRIVILEGED);
    args.extend(["-o", "junit"]);
    let xml = report(&args);
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("3"));
    assert_eq!(root.attribute("failures"), Some("1"));
    assert_eq!(root.attribute("skipped"), Some("1"));
    let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    let names: Vec<_> = suites
        .iter()
        .map(|s| s.attribute("name").unwrap())
        .collect();
    // Objects in report order: by namespace, kind, name.
    assert_eq!(
        names,
        [
            "Pod/node-debugger -n ops",
            "Deployment/web -n shop",
            "Pod/clean -n shop"
        ]
    );
    let case = |suite: usize| {
        suites[suite]
            .children()
            .find(|n| n.has_tag_name("testcase"))
            .expect("a test case")
    };
    let web = case(1);
    assert_eq!(web.attribute("name"), Some("privileged-container"));
    assert_eq!(
        web.attribute("file"),
        Some("tests/fixtures/scan/privileged.yaml")
    );
    assert_eq!(web.attribute("line"), Some("14"));
    let failure = web.children().find(|n| n.has_tag_name("failure")).unwrap();
    assert_eq!(
        failure.attribute("message"),
        Some("container `app` is privileged")
    );
    assert_eq!(failure.attribute("type"), Some("critical"));
    assert!(case(2).children().all(|n| !n.is_element()), "clean passes");
    let skipped = case(0)
        .children()
        .find(|n| n.has_tag_name("skipped"))
        .unwrap();
    assert_eq!(
        skipped.attribute("message"),
        Some("suppressed: node debugging needs <host> & \"device\" access")
    );
}

#[test]
fn every_format_is_byte_identical_across_runs() {
    let tree = fixture("tree");
    let list = fixture("list.yaml");
    let privileged = fixture("privileged.yaml");
    for format in ["table", "json", "yaml", "sarif", "junit"] {
        let args = scan_args(
            &[&tree, &list, &privileged],
            &["-o", format, "--show-suppressed"],
        );
        let first = run(&args);
        let second = run(&args);
        assert!(!first.stdout.is_empty(), "{format}");
        assert_eq!(first.stdout, second.stdout, "{format}");
        assert_eq!(code(&first), code(&second));
    }
}

// -------------------------------------------------------------------- inputs

#[test]
fn stdin_is_read_for_dash() {
    let text = fs::read(fixture("privileged.yaml")).unwrap();
    let mut args = scan_args(&["-"], &ONLY_PRIVILEGED);
    args.extend(["-o", "json"]);
    let output = run_with_stdin(&args, &text);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let doc: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let finding = findings_on(&doc, "web", "privileged-container")[0];
    assert_eq!(
        finding["source"],
        serde_json::json!({"file": "<stdin>", "line": 14, "document": 1})
    );
}

#[test]
fn json_on_stdin() {
    let text = fs::read(fixture("deployments.json")).unwrap();
    let output = run_with_stdin(
        &[
            "scan",
            "-",
            "-o",
            "json",
            "--checks",
            "privileged-container",
        ],
        &text,
    );
    let doc: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        findings_on(&doc, "api", "privileged-container")[0]["source"]["line"],
        5
    );
}

#[test]
fn lists_stand_for_their_items() {
    let list = fixture("list.yaml");
    let deployments = fixture("deployments.json");
    let doc = json_report(&scan_args(&[&list, &deployments], &ONLY_PRIVILEGED));
    // The List's ConfigMap item is an object too (the credential checks read it).
    assert_eq!(doc["summary"]["objects"], 4);
    assert!(
        doc["summary"]["skipped"]["kinds"]
            .get("ConfigMap")
            .is_none()
    );
    let line = |name: &str| findings_on(&doc, name, "privileged-container")[0]["source"].clone();
    assert_eq!(
        line("first"),
        serde_json::json!({"file": "tests/fixtures/scan/list.yaml", "line": 7, "document": 0})
    );
    // An item whose `-` stands alone starts at its first field.
    assert_eq!(line("second")["line"], 14);
    // Items of a DeploymentList inherit apiVersion and kind from the list.
    let api = findings_on(&doc, "api", "privileged-container")[0];
    assert_eq!(api["object"]["kind"], "Deployment");
    assert_eq!(api["source"]["line"], 5);
}

#[test]
fn directories_are_walked_in_order_skipping_hidden_and_other_files() {
    let tree = fixture("tree");
    let doc = json_report(&scan_args(&[&tree], &ONLY_PRIVILEGED));
    // web.yaml, worker.yml, role.json; not .hidden/ignored.yaml (invalid
    // YAML that would fail the scan) nor README.md.
    assert_eq!(doc["summary"]["files"], 3);
    assert_eq!(doc["summary"]["objects"], 3);
    let web = findings_on(&doc, "web", "privileged-container")[0];
    assert_eq!(
        web["source"]["file"],
        "tests/fixtures/scan/tree/apps/web.yaml"
    );
}

#[test]
fn the_same_file_twice_is_read_once() {
    let privileged = fixture("privileged.yaml");
    let output = run(&scan_args(&[&privileged, &privileged], &ONLY_PRIVILEGED));
    assert_eq!(code(&output), 1);
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
    assert!(stdout(&output).contains("1 object scanned in 1 file"));
}

#[test]
fn duplicate_objects_give_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.yaml");
    fs::copy(fixture_path("privileged.yaml"), &copy).unwrap();
    let privileged = fixture("privileged.yaml");
    let output = run(&scan_args(
        &[&privileged, copy.to_str().unwrap()],
        &ONLY_PRIVILEGED,
    ));
    assert_eq!(code(&output), 1);
    let err = stderr(&output);
    assert!(
        err.contains("copy.yaml:14: Deployment/web -n shop is also defined at tests/fixtures/scan/privileged.yaml:14; each definition is checked on its own"),
        "{err}"
    );
}

fn fixture_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(FIXTURES)
        .join(name)
}

// ----------------------------------------------------------------- bad input

/// Scans `paths`, expecting exit 2 and each of `messages` on stderr.
fn assert_input_error(paths: &[&str], messages: &[&str]) {
    let output = run(&scan_args(paths, &[]));
    let err = stderr(&output);
    assert_eq!(code(&output), 2, "{paths:?}: {err}");
    for message in messages {
        assert!(
            err.contains(message),
            "{paths:?}: expected `{message}` in:\n{err}"
        );
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn invalid_yaml_names_file_line_and_column() {
    assert_input_error(
        &[&fixture("invalid.yaml")],
        &[
            "error: tests/fixtures/scan/invalid.yaml:10:13: invalid YAML: mapping values are not allowed in this context",
        ],
    );
}

#[test]
fn half_typed_document_names_file_and_document() {
    assert_input_error(
        &[&fixture("half-typed.yaml")],
        &[
            "error: tests/fixtures/scan/half-typed.yaml:6: document 1: has `kind` but no `apiVersion`",
        ],
    );
}

#[test]
fn decode_error_names_object_and_field() {
    assert_input_error(
        &[&fixture("decode-error.yaml")],
        &[
            "error: tests/fixtures/scan/decode-error.yaml:6: document 0: cannot decode Deployment web: field `spec.replicas`: invalid type: string, expected i32",
        ],
    );
}

#[test]
fn unusable_files_are_errors_when_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();

    // 50 MB, written here rather than committed.
    let big = path("big.yaml");
    let mut file = fs::File::create(&big).unwrap();
    let line = "# padding padding padding padding padding padding padding padding\n";
    let mut written = 0;
    while written < 50_000_000 {
        file.write_all(line.as_bytes()).unwrap();
        written += line.len();
    }
    drop(file);
    assert_input_error(&[&big], &["big.yaml: file exceeds the 32 MiB size limit"]);

    let binary = path("image.yaml");
    fs::write(&binary, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
    assert_input_error(
        &[&binary],
        &["image.yaml: binary file (contains NUL bytes)"],
    );

    let latin1 = path("latin1.yaml");
    fs::write(
        &latin1,
        b"apiVersion: v1\nkind: ConfigMap\ndata: {city: M\xfcnchen}\n",
    )
    .unwrap();
    assert_input_error(&[&latin1], &["latin1.yaml:3:15: not valid UTF-8"]);

    let utf16 = path("utf16.yaml");
    fs::write(&utf16, b"\xff\xfek\0i\0n\0d\0").unwrap();
    assert_input_error(&[&utf16], &["utf16.yaml: file is UTF-16LE encoded"]);

    let empty = path("empty.yaml");
    fs::write(&empty, "").unwrap();
    assert_input_error(&[&empty], &["no Kubernetes objects found in", "empty.yaml"]);

    let comments = path("comments.yaml");
    fs::write(&comments, "# nothing yet\n---\n---\n").unwrap();
    assert_input_error(&[&comments], &["no Kubernetes objects found in"]);

    let missing = path("missing.yaml");
    assert_input_error(&[&missing], &["missing.yaml: no such file or directory"]);

    // A path through a regular file cannot be opened.
    let through_file = format!("{}/child.yaml", fixture("clean.yaml"));
    assert_input_error(&[&through_file], &["clean.yaml/child.yaml: cannot read"]);

    let empty_dir = path("nothing-here");
    fs::create_dir(&empty_dir).unwrap();
    fs::write(dir.path().join("nothing-here/notes.txt"), "not a manifest").unwrap();
    assert_input_error(
        &[&empty_dir],
        &["nothing-here: no .yaml, .yml or .json files"],
    );
}

#[test]
fn empty_stdin_is_an_error() {
    let output = run_with_stdin(&["scan", "-"], b"");
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("no Kubernetes objects found in <stdin>"));
    let output = run(&["scan", "-", "-"]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("more than once"));
}

#[test]
fn yaml_bombs_and_deep_nesting_are_refused() {
    let mut bomb = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..12 {
        let p = i - 1;
        let refs = vec![format!("*a{p}"); 9].join(", ");
        bomb.push_str(&format!("  a{i}: &a{i} [{refs}]\n"));
    }
    let output = run_with_stdin(&["scan", "-"], bomb.as_bytes());
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(stderr(&output).contains("<stdin>:"), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("repetition limit exceeded"),
        "{}",
        stderr(&output)
    );

    let deep = format!(
        "apiVersion: v1\nkind: Pod\nspec: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let output = run_with_stdin(&["scan", "-"], deep.as_bytes());
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "<stdin>:3:1007: invalid YAML: flow collections nested deeper than 1000 levels"
        ),
        "{}",
        stderr(&output)
    );
}

#[test]
fn unusable_files_in_a_directory_walk_are_warnings() {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(fixture_path("privileged.yaml"), dir.path().join("app.yaml")).unwrap();
    fs::write(dir.path().join("blob.yaml"), b"\0\0\0").unwrap();
    fs::write(dir.path().join("old.yaml"), b"name: Andr\xe9\n").unwrap();
    let root = dir.path().to_str().unwrap();
    let mut args = scan_args(&[root], &ONLY_PRIVILEGED);
    args.extend(["-o", "json"]);
    let output = run(&args);
    assert_eq!(code(&output), 1, "the rest is scanned: {}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("warning: ") && err.contains("blob.yaml: binary file"),
        "{err}"
    );
    assert!(err.contains("old.yaml:1:11: not valid UTF-8"), "{err}");
    assert_eq!(
        err.matches("blob.yaml: binary file").count(),
        1,
        "once: {err}"
    );
    let doc: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(doc["summary"]["skipped"]["files"], 2);
    assert_eq!(doc["summary"]["objects"], 1);
}

#[test]
fn invalid_yaml_in_a_directory_walk_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(fixture_path("privileged.yaml"), dir.path().join("app.yaml")).unwrap();
    fs::copy(fixture_path("invalid.yaml"), dir.path().join("broken.yaml")).unwrap();
    let output = run(&["scan", dir.path().to_str().unwrap()]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("broken.yaml:10:13: invalid YAML"));
}

// -------------------------------------------------------------------- policy

#[test]
fn policy_overrides_severity_and_min_severity_only_filters_output() {
    let privileged = fixture("privileged.yaml");
    let policy = fixture("policy.yaml");
    // The policy lowers privileged-container to low.
    let args = scan_args(
        &[&privileged],
        &["--policy", &policy, "--checks", "privileged-container"],
    );
    assert_eq!(
        code(&run(&args)),
        0,
        "low is below the default --fail-on high"
    );
    let mut failing = args.clone();
    failing.extend(["--fail-on", "low"]);
    assert_eq!(code(&run(&failing)), 1);

    let mut filtered = failing.clone();
    filtered.extend(["--min-severity", "medium", "-o", "json"]);
    let output = run(&filtered);
    assert_eq!(
        code(&output),
        1,
        "--min-severity does not change the exit status"
    );
    let doc: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(findings(&doc).is_empty());
    assert_eq!(doc["summary"]["low"], 1, "counts include filtered findings");
}

#[test]
fn policy_exceptions_suppress_with_their_name() {
    let deployments = fixture("deployments.json");
    let policy = fixture("policy.yaml");
    let doc = json_report(&scan_args(&[&deployments], &["--policy", &policy]));
    let api = findings_on(&doc, "api", "privileged-container")[0];
    assert_eq!(
        api["suppressed"],
        serde_json::json!({"source": "policy", "exception": "legacy-api", "reason": "vendor image, replacement tracked in OPS-12"})
    );
}

#[test]
fn bad_policies_name_file_and_field() {
    let privileged = fixture("privileged.yaml");
    let unknown = fixture("policy-unknown-check.yaml");
    let output = run(&["scan", &privileged, "--policy", &unknown]);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains(
            "tests/fixtures/scan/policy-unknown-check.yaml: spec.exceptions[0].checks[0]: unknown check `no-such-check`"
        ),
        "{}",
        stderr(&output)
    );
    let not_a_policy = fixture("clean.yaml");
    let output = run(&["scan", &privileged, "--policy", &not_a_policy]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("expected `apiVersion: palisade.dev/v1alpha1`"));
    let output = run(&["scan", &privileged, "--policy", "no-such-policy.yaml"]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("no-such-policy.yaml: no such file or directory"));
}

// -------------------------------------------------------------------- checks

#[test]
fn checks_lists_the_catalog() {
    let output = run(&["checks"]);
    assert_eq!(code(&output), 0);
    let text = stdout(&output);
    assert!(text.starts_with("ID "));
    assert!(
        text.lines()
            .any(|l| l.starts_with("privileged-container ") && l.contains("critical"))
    );

    let output = run(&["checks", "-o", "json"]);
    let doc: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let check = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "privileged-container")
        .unwrap();
    assert_eq!(check["aliases"]["trivy"], serde_json::json!(["KSV017"]));
    for field in [
        "title",
        "category",
        "severity",
        "applies",
        "description",
        "remediation",
        "frameworks",
    ] {
        assert!(check.get(field).is_some(), "{field}");
    }
}

#[test]
fn docs_checks_md_is_up_to_date() {
    let output = run(&["checks", "--output", "markdown"]);
    assert_eq!(code(&output), 0);
    let committed =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/checks.md"))
            .expect("docs/checks.md exists");
    assert!(
        committed == stdout(&output),
        "docs/checks.md is stale: run scripts/gen-docs.sh"
    );
}

// ------------------------------------------------ invalid input among valid

/// Runs a scan and returns its exit code, stdout and stderr.
fn scan_output(args: &[&str]) -> (i32, String, String) {
    let output = run(args);
    (code(&output), stdout(&output), stderr(&output))
}

#[test]
fn invalid_documents_never_hide_the_others() {
    let dir = fixture("mixed");
    let (status, out, err) = scan_output(&[
        "scan",
        &dir,
        "-o",
        "json",
        "--checks",
        "privileged-container",
    ]);
    assert_eq!(status, 2, "invalid input exits 2 after the report: {err}");
    let doc: Value = serde_json::from_str(&out).expect("the full report is printed");
    let agent = findings_on(&doc, "agent", "privileged-container");
    assert_eq!(agent.len(), 1, "the privileged DaemonSet is reported");
    let errors = doc["errors"].as_array().expect("errors array");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let error = &errors[0];
    assert_eq!(error["file"], "tests/fixtures/scan/mixed/quoted-port.yaml");
    assert_eq!(error["line"], 14, "the line of the offending field");
    assert_eq!(error["field"], "spec.containers[0].env[0].value");
    assert_eq!(error["object"], "Pod api");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("invalid type: integer, expected a string"),
        "{error}"
    );
    assert!(
        !out.contains("8675309") && !err.contains("8675309"),
        "the value is never echoed"
    );
    let skipped = doc["skippedInputs"].as_array().expect("skipped inputs");
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        skipped[0]["file"],
        "tests/fixtures/scan/mixed/chart/templates/deployment.yaml"
    );
    assert_eq!(doc["summary"]["skipped"]["templates"], 1);
    assert!(
        err.contains("error: tests/fixtures/scan/mixed/quoted-port.yaml:14:"),
        "{err}"
    );

    // --invalid=warn keeps the findings' exit status.
    let (status, _, _) = scan_output(&[
        "scan",
        &dir,
        "--invalid",
        "warn",
        "--checks",
        "privileged-container",
    ]);
    assert_eq!(status, 1);
    let (status, _, _) = scan_output(&[
        "scan",
        &dir,
        "--invalid=warn",
        "--checks",
        "privileged-container",
        "--fail-on",
        "none",
    ]);
    assert_eq!(status, 0);
    // A usage error still exits 2 with --invalid=warn.
    let (status, _, _) = scan_output(&["scan", &dir, "no-such-dir", "--invalid=warn"]);
    assert_eq!(status, 2);
}

#[test]
fn a_valid_directory_has_no_error_entries() {
    let (status, out, _) = scan_output(&["scan", &fixture("tree"), "-o", "json"]);
    assert!(matches!(status, 0 | 1));
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["errors"], serde_json::json!([]));
    assert_eq!(doc["skippedInputs"], serde_json::json!([]));
}

#[test]
fn error_entries_in_every_format() {
    let dir = fixture("mixed");
    let base = [
        "scan",
        dir.as_str(),
        "--checks",
        "privileged-container",
        "-o",
    ];
    let with = |format: &str| {
        let mut args = base.to_vec();
        args.push(format);
        let (status, out, _) = scan_output(&args);
        assert_eq!(status, 2, "{format}");
        assert!(!out.contains("8675309"), "{format}: {out}");
        out
    };
    let table = with("table");
    assert!(table.contains("Input errors (not scanned):"), "{table}");
    assert!(
        table.contains("tests/fixtures/scan/mixed/quoted-port.yaml:14: document 0: cannot decode Pod api: field `spec.containers[0].env[0].value`"),
        "{table}"
    );
    assert!(table.contains("Skipped inputs:"), "{table}");
    assert!(table.contains("1 input error"), "{table}");
    assert!(table.contains("DaemonSet/agent -n kube-system"), "{table}");

    let yaml: Value = serde_norway::from_str(&with("yaml")).unwrap();
    assert_eq!(yaml["errors"][0]["line"], 14);

    let sarif: Value = serde_json::from_str(&with("sarif")).unwrap();
    let invocation = &sarif["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    let notifications = invocation["toolExecutionNotifications"].as_array().unwrap();
    let error = notifications
        .iter()
        .find(|n| n["level"] == "error")
        .expect("an error");
    let location = &error["locations"][0]["physicalLocation"];
    assert_eq!(
        location["artifactLocation"]["uri"],
        "tests/fixtures/scan/mixed/quoted-port.yaml"
    );
    assert_eq!(location["region"]["startLine"], 14);
    assert_eq!(
        error["properties"]["field"],
        "spec.containers[0].env[0].value"
    );
    assert!(
        notifications.iter().any(|n| n["level"] == "note"),
        "the skipped template"
    );
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), 1);

    let junit = with("junit");
    assert!(junit.contains(r#"errors="1""#), "{junit}");
    assert!(
        junit.contains(r#"<testcase name="tests/fixtures/scan/mixed/quoted-port.yaml:14" classname="input" file="tests/fixtures/scan/mixed/quoted-port.yaml" line="14"><error message="document 0: cannot decode Pod api"#),
        "{junit}"
    );

    let reports = with("openreports");
    let cluster: Value = reports
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_norway::from_str::<Value>(d).unwrap())
        .find(|d| d["kind"] == "ClusterReport")
        .expect("a ClusterReport");
    let error = cluster["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["result"] == "error")
        .expect("an error result");
    assert_eq!(error["properties"]["line"], "14");
    assert_eq!(
        error["properties"]["file"],
        "tests/fixtures/scan/mixed/quoted-port.yaml"
    );
    assert_eq!(cluster["summary"]["error"], 1);
}

#[test]
fn a_template_named_alone_is_skipped_not_invalid() {
    let template = fixture("mixed/chart/templates/deployment.yaml");
    let (status, _, err) = scan_output(&["scan", &template]);
    assert!(err.contains("skipped: a template"), "{err}");
    // Nothing to scan is still a usage error.
    assert_eq!(status, 2, "{err}");
    assert!(err.contains("no Kubernetes objects found"), "{err}");
}

// ------------------------------------------------------------ YAML 1.1 and merge keys

#[test]
fn yaml_1_1_booleans_read_as_kubectl_reads_them() {
    let doc = json_report(&[
        "scan",
        &fixture("yaml11.yaml"),
        "--checks",
        "privileged-container,host-network",
    ]);
    assert_eq!(
        findings_on(&doc, "yes-pod", "privileged-container").len(),
        1
    );
    assert_eq!(findings_on(&doc, "yes-pod", "host-network").len(), 1);
    assert!(findings_on(&doc, "no-pod", "privileged-container").is_empty());
    assert!(findings_on(&doc, "no-pod", "host-network").is_empty());
}

#[test]
fn yes_in_a_string_field_is_invalid_as_in_kubernetes() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: nginx\n    env:\n    - {name: DEBUG, value: yes}\n";
    let output = run_with_stdin(&["scan", "-", "-o", "json"], pod.as_bytes());
    assert_eq!(code(&output), 2);
    let doc: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(doc["errors"][0]["field"], "spec.containers[0].env[0].value");
    assert_eq!(doc["errors"][0]["line"], 9);
    let quoted = pod.replace("value: yes", "value: 'yes'");
    let output = run_with_stdin(&["scan", "-", "--fail-on", "none"], quoted.as_bytes());
    assert_eq!(code(&output), 0, "{}", stderr(&output));
}

#[test]
fn merge_keys_are_resolved_before_checks() {
    let doc = json_report(&[
        "scan",
        &fixture("merge-keys.yaml"),
        "--checks",
        "privileged-container,cpu-limits-missing,memory-limits-missing",
    ]);
    let privileged: Vec<&str> = findings_on(&doc, "web", "privileged-container")
        .iter()
        .map(|f| f["container"].as_str().unwrap())
        .collect();
    assert_eq!(
        privileged,
        ["app", "sidecar"],
        "the sidecar through its merge key; the logger's own `privileged: false` wins"
    );
    let limits: Vec<_> = findings(&doc)
        .iter()
        .filter(|f| f["check"] == "cpu-limits-missing" || f["check"] == "memory-limits-missing")
        .collect();
    assert!(
        limits.is_empty(),
        "resources set through a merge key count: {limits:?}"
    );
}

// ------------------------------------------------------------- old API versions

#[test]
fn old_api_versions_are_scanned_and_reported() {
    let path = fixture("old-apis.yaml");
    let doc = json_report(&[
        "scan",
        &path,
        "--checks",
        "privileged-container,host-pid,rbac-wildcard-everything,removed-api-version,deprecated-api-version",
    ]);
    assert_eq!(findings_on(&doc, "legacy", "privileged-container").len(), 1);
    assert_eq!(findings_on(&doc, "nightly", "host-pid").len(), 1);
    assert_eq!(
        findings_on(&doc, "legacy-admin", "rbac-wildcard-everything").len(),
        1
    );
    let removed: Vec<&str> = findings(&doc)
        .iter()
        .filter(|f| f["check"] == "removed-api-version")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(removed.len(), 3, "{removed:?}");
    assert!(removed.contains(
        &"batch/v1beta1 CronJob is not served since Kubernetes 1.25 (target 1.35); use batch/v1"
    ));
    let legacy = findings_on(&doc, "legacy", "removed-api-version");
    assert_eq!(legacy[0]["path"], "apiVersion");
    assert_eq!(legacy[0]["source"]["line"], 2);

    // On Kubernetes 1.21 the CronJob and the ClusterRole are only deprecated.
    let doc = json_report(&[
        "scan",
        &path,
        "--kubernetes-version",
        "1.21",
        "--checks",
        "removed-api-version,deprecated-api-version",
    ]);
    let ids: Vec<(&str, &str)> = findings(&doc)
        .iter()
        .map(|f| {
            (
                f["object"]["name"].as_str().unwrap(),
                f["check"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("legacy-admin", "deprecated-api-version"),
            ("nightly", "deprecated-api-version"),
            ("legacy", "removed-api-version"),
        ]
    );
    let output = run(&["scan", &path, "--kubernetes-version", "one.two"]);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("not a Kubernetes version"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn retired_api_versions_of_other_kinds_are_reported() {
    let path = fixture("retired-kinds.yaml");
    let doc = json_report(&["scan", &path]);
    let found: Vec<(&str, &str, &str)> = findings(&doc)
        .iter()
        .map(|f| {
            (
                f["object"]["kind"].as_str().unwrap(),
                f["check"].as_str().unwrap(),
                f["message"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "PodSecurityPolicy",
                "removed-api-version",
                "policy/v1beta1 PodSecurityPolicy is not served since Kubernetes 1.25 (target 1.35); use no replacement: Pod Security Admission (namespace labels)"
            ),
            (
                "HorizontalPodAutoscaler",
                "removed-api-version",
                "autoscaling/v2beta2 HorizontalPodAutoscaler is not served since Kubernetes 1.26 (target 1.35); use autoscaling/v2"
            ),
            (
                "Ingress",
                "removed-api-version",
                "extensions/v1beta1 Ingress is not served since Kubernetes 1.22 (target 1.35); use networking.k8s.io/v1"
            ),
        ]
    );
    assert_eq!(findings(&doc)[2]["source"]["line"], 3);
    assert_eq!(doc["summary"]["objects"], 3);
    assert_eq!(
        doc["summary"]["skipped"]["kinds"]["Ingress.networking.k8s.io"],
        1
    );
    // On 1.21 only the Ingress is gone; the other two are deprecated or current.
    let doc = json_report(&["scan", &path, "--kubernetes-version", "1.21"]);
    let found: Vec<(&str, &str)> = findings(&doc)
        .iter()
        .map(|f| {
            (
                f["object"]["kind"].as_str().unwrap(),
                f["check"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("PodSecurityPolicy", "deprecated-api-version"),
            ("Ingress", "deprecated-api-version"),
        ]
    );
}

#[test]
fn current_api_versions_get_no_api_version_finding() {
    let doc = json_report(&[
        "scan",
        &fixture("privileged.yaml"),
        "--checks",
        "removed-api-version,deprecated-api-version",
    ]);
    assert!(findings(&doc).is_empty());
}

// ------------------------------------------------------------ DeploymentConfig

#[test]
fn deployment_configs_are_workloads() {
    let doc = json_report(&[
        "scan",
        &fixture("deploymentconfig.yaml"),
        "--checks",
        "privileged-container",
    ]);
    let frontend = findings_on(&doc, "frontend", "privileged-container");
    assert_eq!(frontend.len(), 1);
    assert_eq!(frontend[0]["object"]["kind"], "DeploymentConfig");
    assert_eq!(frontend[0]["object"]["apiVersion"], "apps.openshift.io/v1");
    assert_eq!(
        frontend[0]["path"],
        "spec.template.spec.containers[name=web].securityContext.privileged"
    );
    assert!(findings_on(&doc, "backend", "privileged-container").is_empty());
    assert_eq!(doc["summary"]["objects"], 2);
}

// ------------------------------------------------------------------ duplicates

#[test]
fn each_definition_of_an_object_is_evaluated_where_it_is() {
    let a = fixture("dupes/a.yaml");
    let b = fixture("dupes/b.yaml");
    let checks = ["--checks", "rbac-wildcard-everything,privileged-container"];
    for (order, wildcard_file, privileged_file) in [([&a, &b], &a, &b), ([&b, &a], &a, &b)] {
        let mut args = vec!["scan", order[0].as_str(), order[1].as_str(), "-o", "json"];
        args.extend(checks);
        let (status, out, err) = scan_output(&args);
        assert_eq!(
            status, 1,
            "the wildcard ClusterRole fails --fail-on high: {err}"
        );
        assert!(err.contains("is also defined at"), "{err}");
        let doc: Value = serde_json::from_str(&out).unwrap();
        let wildcard = findings_on(&doc, "ops", "rbac-wildcard-everything");
        assert_eq!(wildcard.len(), 1, "{order:?}");
        assert_eq!(
            wildcard[0]["source"]["file"],
            wildcard_file.as_str(),
            "{order:?}"
        );
        let privileged = findings_on(&doc, "web", "privileged-container");
        assert_eq!(privileged.len(), 1, "{order:?}");
        assert_eq!(
            privileged[0]["source"]["file"],
            privileged_file.as_str(),
            "{order:?}"
        );
        assert_eq!(privileged[0]["source"]["line"], 9);
    }
    // SARIF puts the annotation on the file that has the field.
    let mut args = vec!["scan", a.as_str(), b.as_str(), "-o", "sarif"];
    args.extend(checks);
    let sarif: Value = serde_json::from_str(&scan_output(&args).1).unwrap();
    let privileged = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "privileged-container")
        .unwrap();
    assert_eq!(
        privileged["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "tests/fixtures/scan/dupes/b.yaml"
    );
    // The same finding in both definitions: two results, each at its file,
    // with fingerprints that do not merge them.
    let args = [
        "scan",
        a.as_str(),
        b.as_str(),
        "-o",
        "sarif",
        "--checks",
        "run-as-non-root",
    ];
    let sarif: Value = serde_json::from_str(&scan_output(&args).1).unwrap();
    let results: Vec<(&str, &str)> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["properties"]["object"]["name"] == "web")
        .map(|r| {
            (
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                    .as_str()
                    .unwrap(),
                r["partialFingerprints"]["palisadeFinding/v1"]
                    .as_str()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(results[0].0, "tests/fixtures/scan/dupes/a.yaml");
    assert_eq!(results[1].0, "tests/fixtures/scan/dupes/b.yaml");
    assert_ne!(results[0].1, results[1].1);
    // The table says where a later definition's finding is.
    let mut args = vec!["scan", a.as_str(), b.as_str()];
    args.extend(checks);
    let table = scan_output(&args).1;
    assert!(
        table.contains("in tests/fixtures/scan/dupes/b.yaml:9"),
        "{table}"
    );
}

/// Findings past the spool's budget go to temporary files; where none can
/// be written, the scan says so and still writes the whole report, the
/// same as with them.
#[test]
fn findings_that_cannot_be_spooled_still_give_the_whole_report() {
    let work = tempfile::tempdir().expect("temp dir");
    let corpus = work.path().join("corpus");
    let generated = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/gen.py"))
        .args(["--seed", "3", "10000"])
        .arg(&corpus)
        .output()
        .expect("python3 runs bench/gen.py");
    assert!(generated.status.success(), "{generated:?}");
    let scan_with_tmpdir = |tmpdir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["scan", "-o", "json", "--fail-on", "none"])
            .arg(&corpus)
            .env("TMPDIR", tmpdir)
            .output()
            .expect("palisade runs")
    };
    let spooled = scan_with_tmpdir(work.path());
    let nowhere = scan_with_tmpdir(&work.path().join("no-such-directory"));
    let warning = "cannot write findings to a temporary file";
    assert_eq!(code(&spooled), 0, "{}", stderr(&spooled));
    assert!(!stderr(&spooled).contains(warning), "{}", stderr(&spooled));
    assert_eq!(code(&nowhere), 0, "{}", stderr(&nowhere));
    assert!(stderr(&nowhere).contains(warning), "{}", stderr(&nowhere));
    assert!(stdout(&spooled) == stdout(&nowhere), "the reports differ");
    let report: Value = serde_json::from_str(&stdout(&spooled)).expect("JSON report");
    let findings = report["findings"].as_array().map_or(0, Vec::len);
    assert!(findings > 50_000, "only {findings} findings");
}
