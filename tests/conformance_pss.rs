//! Conformance with the Pod Security Standards reference fixtures
//! (`../shared/conformance/pss/v1.35`, from kubernetes/pod-security-admission).
//!
//! For every fixture pod, at the fixture's level (restricted = baseline
//! checks + restricted checks):
//! - a `pass/` pod gives no finding;
//! - a `fail/` pod gives at least one, and only from the check(s) that
//!   implement the control its file name names;
//! - the same pod template in a Deployment, StatefulSet, DaemonSet, Job and
//!   CronJob gives the same findings, at the same paths under the template.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use palisade::engine::{Category, Check, evaluate};
use palisade::model::{Inventory, Resource};
use palisade::policy::Policy;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Baseline,
    Restricted,
}

impl Level {
    fn dir(self) -> &'static str {
        match self {
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }

    /// The checks that make up the level.
    fn checks(self) -> Vec<&'static Check> {
        palisade::checks::catalog()
            .iter()
            .copied()
            .filter(|c| match self {
                Level::Baseline => c.category == Category::PodSecurityBaseline,
                Level::Restricted => matches!(
                    c.category,
                    Category::PodSecurityBaseline | Category::PodSecurityRestricted
                ),
            })
            .collect()
    }
}

/// Which checks may fail for a fixture about one control.
struct Expected {
    /// At least one of these must fail: the check(s) of the control.
    any_of: &'static [&'static str],
    /// These may fail too, because the fixture cannot avoid them (explained
    /// where they are listed).
    also_allowed: &'static [&'static str],
}

const fn only(any_of: &'static [&'static str]) -> Expected {
    Expected {
        any_of,
        also_allowed: &[],
    }
}

/// The check ids for a fixture's control, from its file name without the
/// trailing number (`capabilities_restricted2.yaml` → `capabilities_restricted`).
fn expected_for(control: &str) -> Expected {
    match control {
        "apparmorprofile" => only(&["apparmor-profile"]),
        "capabilities_baseline" => only(&["capabilities-baseline"]),
        "hostnamespaces" => only(&["host-network", "host-pid", "host-ipc"]),
        "hostpathvolumes" => only(&["host-path-volume"]),
        "hostports" => only(&["host-ports"]),
        "hostprobesandhostlifecycle" => only(&["host-probes-lifecycle"]),
        // At restricted level the fixture cannot set allowPrivilegeEscalation:
        // false next to privileged: true (API validation rejects the pair).
        "privileged" => Expected {
            any_of: &["privileged-container"],
            also_allowed: &["privilege-escalation-allowed"],
        },
        "procmount" => only(&["proc-mount"]),
        "seccompprofile_baseline" => only(&["seccomp-profile-baseline"]),
        "selinuxoptions" => only(&["selinux-options"]),
        "sysctls" => only(&["unsafe-sysctls"]),
        // HostProcess pods must use the host network (API validation).
        "windowshostprocess" => Expected {
            any_of: &["windows-host-process"],
            also_allowed: &["host-network"],
        },
        // One fixture has no securityContext at all, so no `drop: [ALL]` either.
        "allowprivilegeescalation" => Expected {
            any_of: &["privilege-escalation-allowed"],
            also_allowed: &["capabilities-restricted"],
        },
        "capabilities_restricted" => only(&["capabilities-restricted"]),
        "procmount_restricted" => only(&["proc-mount-restricted"]),
        // The admission's restricted controls below replace a baseline one;
        // the part they share is reported once, by the baseline check
        // (hostPath volumes, an explicit Unconfined seccomp profile).
        "restrictedvolumes" => only(&["restricted-volume-types", "host-path-volume"]),
        "seccompprofile_restricted" => {
            only(&["seccomp-profile-restricted", "seccomp-profile-baseline"])
        }
        "runasnonroot" => only(&["run-as-non-root"]),
        "runasuser" => only(&["run-as-user-root"]),
        other => panic!("fixture control `{other}` has no expected check: add it here"),
    }
}

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/pss/v1.35")
}

fn fixture_files(level: Level, verdict: &str) -> Vec<PathBuf> {
    let dir = fixtures_root().join(level.dir()).join(verdict);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read fixtures in {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

/// `capabilities_restricted2.yaml` → `capabilities_restricted`
fn control_of(file: &Path) -> String {
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("file name");
    stem.trim_end_matches(|c: char| c.is_ascii_digit())
        .to_owned()
}

fn read_pod(file: &Path) -> Value {
    let text = std::fs::read_to_string(file).expect("fixture is readable");
    let document = serde_norway::Deserializer::from_str(&text)
        .next()
        .expect("fixture has a document");
    Value::deserialize(document).expect("fixture is valid YAML")
}

/// The (check id, path) of every finding of the level's checks on one object.
fn evaluate_object(object: Value, level: Level) -> BTreeSet<(&'static str, String)> {
    let api_version = object["apiVersion"]
        .as_str()
        .expect("apiVersion")
        .to_owned();
    let kind = object["kind"].as_str().expect("kind").to_owned();
    let resource = Resource::decode(&api_version, &kind, object)
        .expect("object decodes")
        .expect("kind is scanned");
    let inventory = Inventory::from_resources([&resource]);
    evaluate(&inventory, &level.checks(), &Policy::default())
        .into_iter()
        .map(|finding| (finding.check.id, finding.path))
        .collect()
}

fn ids(findings: &BTreeSet<(&'static str, String)>) -> BTreeSet<&'static str> {
    findings.iter().map(|(id, _)| *id).collect()
}

/// The fixture pod's template in each workload kind, with the path prefix
/// of the template in that kind.
fn wrapped(pod: &Value) -> Vec<(Value, &'static str)> {
    let mut template_metadata = pod["metadata"].clone();
    if let Some(meta) = template_metadata.as_object_mut() {
        meta.remove("name");
        meta.insert("labels".into(), json!({"app": "fixture"}));
    }
    let template = json!({"metadata": template_metadata, "spec": pod["spec"]});
    let selector = json!({"matchLabels": {"app": "fixture"}});
    let metadata = json!({"name": "fixture", "namespace": "conformance"});
    vec![
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata,
                   "spec": {"selector": selector, "template": template}}),
            "spec.template",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": metadata,
                   "spec": {"selector": selector, "serviceName": "fixture", "template": template}}),
            "spec.template",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": metadata,
                   "spec": {"selector": selector, "template": template}}),
            "spec.template",
        ),
        (
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
                   "spec": {"template": template}}),
            "spec.template",
        ),
        (
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": metadata,
                   "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}}),
            "spec.jobTemplate.spec.template",
        ),
    ]
}

/// A Pod finding's path as it appears in a workload whose template is at `prefix`.
fn under_template(pod_path: &str, prefix: &str) -> String {
    format!("{prefix}.{pod_path}")
}

#[derive(Default)]
struct Report {
    checked: usize,
    agreed: usize,
    mismatches: Vec<String>,
}

impl Report {
    fn record(&mut self, problems: Vec<String>) {
        self.checked += 1;
        if problems.is_empty() {
            self.agreed += 1;
        }
        self.mismatches.extend(problems);
    }
}

/// Every problem with one fixture, empty when it conforms.
fn check_fixture(file: &Path, level: Level, should_fail: bool) -> Vec<String> {
    let name = file
        .strip_prefix(fixtures_root())
        .unwrap_or(file)
        .display()
        .to_string();
    let pod = read_pod(file);
    let found = evaluate_object(pod.clone(), level);
    let actual = ids(&found);
    let mut problems = Vec::new();

    if should_fail {
        let expected = expected_for(&control_of(file));
        let allowed: BTreeSet<&str> = expected
            .any_of
            .iter()
            .chain(expected.also_allowed)
            .copied()
            .collect();
        let hits_control = expected.any_of.iter().any(|id| actual.contains(id));
        let unexpected: Vec<_> = actual.difference(&allowed).collect();
        if !hits_control || !unexpected.is_empty() {
            problems.push(format!(
                "{name}: expected a finding from {:?} (also allowed {:?}), got {actual:?}",
                expected.any_of, expected.also_allowed
            ));
        }
    } else if !found.is_empty() {
        problems.push(format!("{name}: expected no finding, got {found:?}"));
    }

    for (workload, prefix) in wrapped(&pod) {
        let kind = workload["kind"].as_str().unwrap_or_default().to_owned();
        let expected: BTreeSet<(&str, String)> = found
            .iter()
            .map(|(id, path)| (*id, under_template(path, prefix)))
            .collect();
        let in_workload = evaluate_object(workload, level);
        if in_workload != expected {
            problems.push(format!(
                "{name} as a {kind}: expected {expected:?}, got {in_workload:?}"
            ));
        }
    }
    problems
}

fn run_level(level: Level) -> (Report, Report) {
    let mut passing = Report::default();
    for file in fixture_files(level, "pass") {
        passing.record(check_fixture(&file, level, false));
    }
    let mut failing = Report::default();
    for file in fixture_files(level, "fail") {
        failing.record(check_fixture(&file, level, true));
    }
    (passing, failing)
}

#[test]
fn pss_fixtures_give_the_reference_verdicts_in_every_workload_kind() {
    let mut summary = String::new();
    let mut mismatches = Vec::new();
    for level in [Level::Baseline, Level::Restricted] {
        let (passing, failing) = run_level(level);
        assert!(
            passing.checked > 0 && failing.checked > 0,
            "no fixtures for {level:?}"
        );
        writeln!(
            summary,
            "{level:?}: pass {}/{} files, fail {}/{} files",
            passing.agreed, passing.checked, failing.agreed, failing.checked
        )
        .expect("write to string");
        mismatches.extend(passing.mismatches);
        mismatches.extend(failing.mismatches);
    }
    println!("{summary}");
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}\n{summary}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn every_fixture_control_maps_to_checks_in_the_catalog() {
    for level in [Level::Baseline, Level::Restricted] {
        let level_checks = level.checks();
        for file in fixture_files(level, "fail") {
            let expected = expected_for(&control_of(&file));
            // A typo in the mapping would make the fixture unpassable or,
            // for `also_allowed`, silently lenient.
            for id in expected.any_of {
                assert!(
                    level_checks.iter().any(|c| c.id == *id),
                    "{}: check `{id}` is not a {level:?} check",
                    file.display()
                );
            }
            for id in expected.also_allowed {
                assert!(
                    palisade::checks::find(id).is_some_and(|c| c.id == *id),
                    "{}: no check `{id}` in the catalog",
                    file.display()
                );
            }
        }
    }
}
