//! The real-world corpus: public install manifests under `tests/corpus/`,
//! one folder per project (its `SOURCE` file names the repository, the
//! files' commits and the license).
//!
//! Each folder is scanned on its own, as its users would scan it, with the
//! built binary (`palisade scan <folder> --output json`). The test requires
//! that every document is read without an input error, and that the
//! findings are exactly the reviewed ones below: the check ids of every
//! object, and each folder's totals. The review of these findings (true
//! positive, false positive fixed, accepted divergence) is the corpus table
//! in `docs/conformance.md`; a change of semantics that moves any finding
//! fails here and has to be reviewed there.
//!
//! On a mismatch the test prints the whole table as it is now, ready to be
//! compared with (and, once reviewed, pasted over) `EXPECTED`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Per folder: one line per object with findings (`Kind/name` and
/// ` -n namespace` when it has one) and its check ids, sorted; a check
/// reported only as suppressed by default is written `~check`. Then the
/// folder's totals of unsuppressed findings by severity and of suppressed
/// ones.
const EXPECTED: &str = r#"
cilium-star-wars | Deployment/deathstar | capabilities-restricted cpu-limits-missing cpu-requests-missing default-service-account image-pull-policy-not-always linux-hardening liveness-probe-missing memory-limits-missing memory-requests-missing missing-network-policy net-raw-not-dropped privilege-escalation-allowed read-only-root-filesystem readiness-probe-missing run-as-non-root seccomp-profile-restricted service-account-token-automount
cilium-star-wars | Pod/tiefighter | bare-pod capabilities-restricted cpu-limits-missing cpu-requests-missing default-service-account image-pull-policy-not-always linux-hardening liveness-probe-missing memory-limits-missing memory-requests-missing missing-network-policy net-raw-not-dropped privilege-escalation-allowed read-only-root-filesystem readiness-probe-missing run-as-non-root seccomp-profile-restricted service-account-token-automount
cilium-star-wars | Pod/xwing | bare-pod capabilities-restricted cpu-limits-missing cpu-requests-missing default-service-account image-pull-policy-not-always linux-hardening liveness-probe-missing memory-limits-missing memory-requests-missing missing-network-policy net-raw-not-dropped privilege-escalation-allowed read-only-root-filesystem readiness-probe-missing run-as-non-root seccomp-profile-restricted service-account-token-automount
cilium-star-wars | total | critical=0 high=0 medium=17 low=36 info=0 suppressed=0
guestbook | Deployment/frontend | capabilities-restricted cpu-limits-missing default-service-account image-not-pinned-by-digest image-pull-policy-not-always linux-hardening liveness-probe-missing memory-limits-missing missing-network-policy net-raw-not-dropped privilege-escalation-allowed read-only-root-filesystem readiness-probe-missing run-as-non-root seccomp-profile-restricted service-account-token-automount
guestbook | Deployment/redis-master | capabilities-restricted cpu-limits-missing default-service-account image-not-pinned-by-digest image-pull-policy-not-always linux-hardening liveness-probe-missing memory-limits-missing missing-network-policy net-raw-not-dropped privilege-escalation-allowed read-only-root-filesystem readiness-probe-missing run-as-non-root seccomp-profile-restricted service-account-token-automount
guestbook | Deployment/redis-replica | capabilities-restricted cpu-limits-missing default-service-account image-not-pinned-by-digest image-pull-policy-not-always linux-hardening liveness-probe-missing memory-limits-missing missing-network-policy net-raw-not-dropped privilege-escalation-allowed read-only-root-filesystem readiness-probe-missing run-as-non-root seccomp-profile-restricted service-account-token-automount
guestbook | total | critical=0 high=0 medium=18 low=27 info=3 suppressed=0
ingress-nginx | ClusterRole/ingress-nginx | rbac-secrets-read
ingress-nginx | ClusterRole/ingress-nginx-admission | rbac-webhook-config-write
ingress-nginx | Deployment/ingress-nginx-controller -n ingress-nginx | cpu-limits-missing image-pull-policy-not-always memory-limits-missing missing-network-policy privilege-escalation-allowed rbac-workload-dangerous-permissions read-only-root-filesystem run-as-non-root seccomp-profile-restricted service-account-token-automount
ingress-nginx | Job/ingress-nginx-admission-create -n ingress-nginx | capabilities-restricted cpu-limits-missing cpu-requests-missing image-pull-policy-not-always linux-hardening memory-limits-missing memory-requests-missing missing-network-policy net-raw-not-dropped rbac-workload-dangerous-permissions read-only-root-filesystem seccomp-profile-restricted service-account-token-automount
ingress-nginx | Job/ingress-nginx-admission-patch -n ingress-nginx | capabilities-restricted cpu-limits-missing cpu-requests-missing image-pull-policy-not-always linux-hardening memory-limits-missing memory-requests-missing missing-network-policy net-raw-not-dropped rbac-workload-dangerous-permissions read-only-root-filesystem seccomp-profile-restricted service-account-token-automount
ingress-nginx | Namespace/ingress-nginx | namespace-missing-pod-security namespace-without-network-policy
ingress-nginx | Role/ingress-nginx -n ingress-nginx | rbac-secrets-read
ingress-nginx | Role/ingress-nginx-admission -n ingress-nginx | rbac-secrets-read rbac-secrets-write
ingress-nginx | ServiceAccount/ingress-nginx -n ingress-nginx | rbac-service-account-dangerous-permissions
ingress-nginx | ServiceAccount/ingress-nginx-admission -n ingress-nginx | rbac-service-account-dangerous-permissions
ingress-nginx | total | critical=0 high=13 medium=19 low=20 info=0 suppressed=0
kube-prometheus | DaemonSet/node-exporter -n monitoring | capabilities-baseline host-network host-path-volume host-pid host-ports image-not-pinned-by-digest image-pull-policy-not-always liveness-probe-missing readiness-probe-missing seccomp-profile-restricted sensitive-host-path service-account-token-automount
kube-prometheus | Deployment/blackbox-exporter -n monitoring | image-not-pinned-by-digest image-pull-policy-not-always liveness-probe-missing readiness-probe-missing seccomp-profile-restricted service-account-token-automount
kube-prometheus | total | critical=0 high=6 medium=4 low=18 info=5 suppressed=0
kube-state-metrics | ClusterRoleBinding/kube-state-metrics | rbac-binding-missing-role
kube-state-metrics | Deployment/kube-state-metrics -n kube-system | capabilities-restricted cpu-limits-missing cpu-requests-missing image-not-pinned-by-digest image-pull-policy-not-always linux-hardening memory-limits-missing memory-requests-missing missing-network-policy net-raw-not-dropped privilege-escalation-allowed read-only-root-filesystem run-as-non-root seccomp-profile-restricted
kube-state-metrics | total | critical=0 high=0 medium=5 low=9 info=1 suppressed=0
kubernetes-dashboard | Deployment/dashboard-metrics-scraper -n kubernetes-dashboard | capabilities-restricted cpu-limits-missing cpu-requests-missing image-not-pinned-by-digest image-pull-policy-not-always memory-limits-missing memory-requests-missing missing-network-policy rbac-workload-dangerous-permissions readiness-probe-missing run-as-non-root seccomp-profile-restricted service-account-token-automount
kubernetes-dashboard | Deployment/kubernetes-dashboard -n kube-system | capabilities-restricted cpu-limits-missing cpu-requests-missing image-not-pinned-by-digest image-pull-policy-not-always linux-hardening memory-limits-missing memory-requests-missing missing-network-policy net-raw-not-dropped privilege-escalation-allowed rbac-workload-dangerous-permissions read-only-root-filesystem readiness-probe-missing run-as-non-root seccomp-profile-restricted service-account-token-automount
kubernetes-dashboard | Deployment/kubernetes-dashboard -n kubernetes-dashboard | capabilities-restricted cpu-limits-missing cpu-requests-missing image-not-pinned-by-digest memory-limits-missing memory-requests-missing missing-network-policy rbac-workload-dangerous-permissions readiness-probe-missing run-as-non-root seccomp-profile-restricted service-account-token-automount
kubernetes-dashboard | Namespace/kubernetes-dashboard | namespace-missing-pod-security namespace-without-network-policy
kubernetes-dashboard | Role/kubernetes-dashboard -n kubernetes-dashboard | rbac-secrets-read rbac-secrets-write
kubernetes-dashboard | Role/kubernetes-dashboard-minimal -n kube-system | rbac-secrets-read rbac-secrets-write
kubernetes-dashboard | ServiceAccount/kubernetes-dashboard -n kube-system | rbac-service-account-dangerous-permissions
kubernetes-dashboard | ServiceAccount/kubernetes-dashboard -n kubernetes-dashboard | rbac-service-account-dangerous-permissions
kubernetes-dashboard | total | critical=0 high=0 medium=28 low=26 info=3 suppressed=0
metrics-server | Deployment/metrics-server -n kube-system | capabilities-restricted cpu-limits-missing cpu-requests-missing image-not-pinned-by-digest linux-hardening liveness-probe-missing memory-limits-missing memory-requests-missing missing-network-policy net-raw-not-dropped privilege-escalation-allowed read-only-root-filesystem readiness-probe-missing removed-api-version run-as-non-root seccomp-profile-restricted service-account-token-automount
metrics-server | total | critical=0 high=1 medium=6 low=9 info=1 suppressed=0
minio | StatefulSet/minio | capabilities-restricted cpu-limits-missing cpu-requests-missing default-service-account host-ports image-not-pinned-by-digest image-tag-latest linux-hardening liveness-probe-missing memory-limits-missing memory-requests-missing missing-network-policy net-raw-not-dropped privilege-escalation-allowed read-only-root-filesystem readiness-probe-missing removed-api-version run-as-non-root seccomp-profile-restricted secret-literal-in-env service-account-token-automount
minio | total | critical=0 high=3 medium=8 low=10 info=1 suppressed=0
"#;

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn projects() -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(corpus_root())
        .expect("tests/corpus exists")
        .map(|entry| entry.expect("readable corpus folder").path())
        .filter(|path| path.is_dir())
        .collect();
    folders.sort();
    folders
}

fn run_scan(folder: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["scan", "--output", "json"])
        .arg(folder)
        .output()
        .expect("palisade runs")
}

/// Runs `palisade scan <folder> --output json` and returns its report.
fn scan(folder: &Path) -> Value {
    let output = run_scan(folder);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // 0: no finding at the failing severity, 1: some; 2 means invalid input.
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}: exit status {:?}, stderr:\n{stderr}",
        folder.display(),
        output.status.code()
    );
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{}: JSON report: {e}\n{stderr}", folder.display()));
    let errors = report.get("errors").and_then(Value::as_array);
    assert!(
        errors.is_none_or(|e| e.is_empty()),
        "{}: input errors: {errors:?}",
        folder.display()
    );
    report
}

fn object_name(finding: &Value) -> String {
    let object = &finding["object"];
    let name = format!(
        "{}/{}",
        object["kind"].as_str().unwrap_or(""),
        object["name"].as_str().unwrap_or("")
    );
    match object["namespace"].as_str() {
        Some(namespace) => format!("{name} -n {namespace}"),
        None => name,
    }
}

/// The lines of `EXPECTED` that describe one folder's scan.
fn describe(project: &str, report: &Value) -> Vec<String> {
    let mut checks: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    let findings = report["findings"].as_array().expect("findings");
    for finding in findings {
        let check = finding["check"].as_str().expect("check").to_owned();
        let suppressed = !finding["suppressed"].is_null();
        let shown = checks.entry(object_name(finding)).or_default();
        // A check counts as unsuppressed once any of its findings is.
        let entry = shown.entry(check).or_insert(suppressed);
        *entry &= suppressed;
    }
    let mut lines: Vec<String> = checks
        .into_iter()
        .map(|(object, checks)| {
            let ids: Vec<String> = checks
                .into_iter()
                .map(|(id, suppressed)| if suppressed { format!("~{id}") } else { id })
                .collect();
            format!("{project} | {object} | {}", ids.join(" "))
        })
        .collect();
    let summary = &report["summary"];
    let count = |key: &str| summary[key].as_u64().unwrap_or(0);
    lines.push(format!(
        "{project} | total | critical={} high={} medium={} low={} info={} suppressed={}",
        count("critical"),
        count("high"),
        count("medium"),
        count("low"),
        count("info"),
        count("suppressed")
    ));
    lines
}

#[test]
fn corpus_scans_without_input_errors_and_gives_the_reviewed_findings() {
    let mut actual = Vec::new();
    for folder in projects() {
        assert!(
            folder.join("SOURCE").is_file(),
            "{} has no SOURCE file",
            folder.display()
        );
        let project = folder.file_name().unwrap().to_string_lossy().into_owned();
        actual.extend(describe(&project, &scan(&folder)));
    }
    let expected: Vec<&str> = EXPECTED.lines().filter(|l| !l.trim().is_empty()).collect();
    let actual_text = actual.join("\n");
    if expected != actual.iter().map(String::as_str).collect::<Vec<_>>() {
        let missing: Vec<_> = expected
            .iter()
            .filter(|line| !actual.iter().any(|a| a == *line))
            .collect();
        let new: Vec<_> = actual
            .iter()
            .filter(|line| !expected.contains(&line.as_str()))
            .collect();
        panic!(
            "the corpus findings changed; review them in docs/conformance.md.\n\
             no longer given: {missing:#?}\nnew: {new:#?}\nthe whole table now:\n{actual_text}\n"
        );
    }
}

#[test]
fn corpus_sources_name_repository_license_and_files() {
    for folder in projects() {
        let source = std::fs::read_to_string(folder.join("SOURCE")).unwrap_or_default();
        assert!(
            source.contains("repository: https://github.com/"),
            "{}",
            folder.display()
        );
        assert!(
            source.contains("license: Apache-2.0") || source.contains("license: MIT"),
            "{}",
            folder.display()
        );
        for file in std::fs::read_dir(&folder).unwrap() {
            let name = file.unwrap().file_name().to_string_lossy().into_owned();
            if name != "SOURCE" {
                assert!(
                    source.contains(&format!("  {name} ")),
                    "{}: {name} is not listed in SOURCE",
                    folder.display()
                );
            }
        }
    }
}
