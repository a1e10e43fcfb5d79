//! `palisade scan` and `palisade checks` with custom CEL checks and
//! ValidatingAdmissionPolicies among the inputs: findings in every output,
//! and expressions that do not compile reported with file, field and
//! position, with exit status 2.

use std::process::{Command, Output};

fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("palisade runs")
}

const POLICY: &str = "tests/fixtures/cel/policy.yaml";
const BROKEN_POLICY: &str = "tests/fixtures/cel/broken-policy.yaml";
const WORKLOADS: &str = "tests/fixtures/cel/workloads.yaml";
const ADMISSION: &str = "tests/fixtures/cel/admission.yaml";

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("JSON report")
}

/// `(check, object name, severity)` of the findings of custom checks and
/// admission policies.
fn custom_findings(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| {
            let check = f["check"].as_str().unwrap_or_default();
            check.starts_with("acme/") || check.starts_with("vap/")
        })
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_owned(),
                f["object"]["name"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn custom_checks_and_admission_policies_are_findings_of_the_scan() {
    let output = palisade(&[
        "scan", "--policy", POLICY, WORKLOADS, ADMISSION, "-o", "json",
    ]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let mut found = custom_findings(&json(&output));
    found.sort();
    let expected = [
        ("acme/allowed-registry", "report", "high"),
        ("acme/allowed-registry", "two", "high"),
        ("acme/allowed-registry", "two", "high"),
        ("acme/team-label", "report", "medium"),
        ("acme/team-label", "two", "medium"),
        ("acme/team-label", "two", "medium"),
        ("vap/no-latest", "two", "medium"),
        ("vap/replica-limit", "two", "high"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn a_custom_check_that_does_not_compile_stops_the_scan_with_its_position() {
    let output = palisade(&["scan", "--policy", BROKEN_POLICY, WORKLOADS]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(BROKEN_POLICY)
            && stderr.contains("spec.customChecks[0].validations[0].expression: line 1, column 41"),
        "{stderr}"
    );
    let output = palisade(&["checks", "--policy", BROKEN_POLICY]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn an_admission_policy_that_does_not_compile_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vap.yaml");
    std::fs::write(
        &file,
        "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: broken}
spec:
  validations:
    - expression: \"true\"
    - expression: \"object.spec.containers.all(c,\"
---
apiVersion: v1
kind: Namespace
metadata: {name: a}
",
    )
    .unwrap();
    let output = palisade(&["scan", file.to_str().unwrap(), "-o", "json"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let report = json(&output);
    let error = &report["errors"][0];
    assert_eq!(error["line"], 7, "{error}");
    assert_eq!(error["field"], "spec.validations[1].expression", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("line 1, column 31 of the expression"),
        "{error}"
    );
}

#[test]
fn the_catalog_lists_a_policy_s_custom_checks() {
    let output = palisade(&["checks", "--policy", POLICY, "-o", "json"]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("acme/team-label") && text.contains("acme/allowed-registry"));
}
