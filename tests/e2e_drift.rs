//! GitOps drift against a real API server: a Deployment applied from "Git"
//! by server-side apply as `argocd-controller`, then made privileged by a
//! patch as another field manager. The operator (as its own ServiceAccount)
//! marks the privileged finding as drift and names the manager;
//! `palisade drift` on the original manifest (read-only, with the
//! operator's RBAC) lists it as live-only; applying Git's version again
//! clears both.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{
    OPERATOR_ACCOUNT, OperatorProcess, TestNamespace, client, kubectl, repo_root, token_kubeconfig,
    wait_for,
};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use palisade::crd::{ReportFinding, ReportStatus, ScanReport};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(90);
const PRIVILEGED: &str = "privileged-container";
const PRIVILEGED_PATH: &str = "spec.template.spec.containers[name=app].securityContext.privileged";
const GITOPS: &str = "argocd-controller";
const EDITOR: &str = "kubectl-edit";

/// The Deployment as the repository has it: explicitly not privileged.
fn git_manifest(namespace: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {namespace}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: app
          image: registry.k8s.io/pause:3.10
          securityContext:
            privileged: false
"
    )
}

fn write_manifest(namespace: &str) -> PathBuf {
    let dir = repo_root().join("target/e2e-drift");
    std::fs::create_dir_all(&dir).expect("manifest directory");
    let path = dir.join(format!("{namespace}.yaml"));
    std::fs::write(&path, git_manifest(namespace)).expect("manifest written");
    path
}

/// `kubectl apply --server-side` as the GitOps tool, taking every field
/// back (as Argo CD's sync with server-side apply does).
fn sync_from_git(manifest: &Path) {
    common::apply_server_side(manifest, GITOPS);
}

/// A change made outside Git: the container made privileged by a patch
/// recorded under another field manager.
fn edit_privileged(namespace: &str) {
    kubectl(&[
        "patch",
        "deployment",
        "web",
        "-n",
        namespace,
        "--type=json",
        "--field-manager",
        EDITOR,
        "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/containers/0/securityContext/privileged","value":true}]"#,
    ]);
}

/// The operator's RBAC installed, and a kubeconfig that authenticates as
/// its ServiceAccount (also what `palisade drift` runs with: read-only).
fn operator_kubeconfig() -> PathBuf {
    common::install_operator_manifests();
    common::wait_until_allowed(
        OPERATOR_ACCOUNT,
        &[
            &["list", "deployments.apps", "-A"],
            &["list", "scanreports.palisade.dev", "-A"],
            &["patch", "scanreports.palisade.dev", "-A"],
        ],
    );
    token_kubeconfig("palisade-system", "palisade")
}

async fn report_status(reports: &Api<ScanReport>) -> Option<ReportStatus> {
    reports.get_opt("deployment-web").await.ok()??.status
}

fn privileged_finding(status: &ReportStatus) -> Option<&ReportFinding> {
    status
        .findings
        .iter()
        .find(|f| f.check == PRIVILEGED && f.path == PRIVILEGED_PATH)
}

fn drift(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("drift")
        .args(args)
        .output()
        .expect("palisade drift runs")
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "drift output is JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The live-only findings of the JSON output, as (check, path, setBy).
fn live_only(report: &Value) -> Vec<(String, String, String)> {
    report["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .flat_map(|o| o["liveOnly"].as_array().cloned().unwrap_or_default())
        .map(|f| {
            (
                f["check"].as_str().unwrap_or_default().to_owned(),
                f["path"].as_str().unwrap_or_default().to_owned(),
                f["setBy"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_outside_git_is_drift_in_the_report_and_in_palisade_drift_until_git_is_applied_again()
 {
    let client = client().await;
    let kubeconfig = operator_kubeconfig();
    let ns = TestNamespace::create(&client, "drift").await;
    let manifest = write_manifest(&ns.name);
    sync_from_git(&manifest);
    let operator = OperatorProcess::spawn(&kubeconfig, &ns.name, &[]).await;
    let reports: Api<ScanReport> = Api::namespaced(client.clone(), &ns.name);

    // As Git has it: findings attributed to the GitOps tool, none drifted.
    let synced = wait_for("the report of the synced Deployment", TIMEOUT, || async {
        report_status(&reports)
            .await
            .filter(|s| !s.findings.is_empty())
    })
    .await;
    assert_eq!(synced.summary.drift, 0, "{:?}", synced.findings);
    assert!(privileged_finding(&synced).is_none());
    assert!(
        synced
            .findings
            .iter()
            .all(|f| f.set_by.as_deref() == Some(GITOPS) && !f.drift),
        "{:?}",
        synced.findings
    );
    let repo = manifest.to_str().unwrap();
    let reader = kubeconfig.to_str().unwrap();
    let in_sync = drift(&[repo, "--kubeconfig", reader, "-o", "json"]);
    assert_eq!(
        in_sync.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&in_sync.stdout),
        String::from_utf8_lossy(&in_sync.stderr)
    );
    assert_eq!(live_only(&json_of(&in_sync)), vec![]);

    // Made privileged outside Git.
    edit_privileged(&ns.name);
    let drifted = wait_for("the privileged finding marked drift", TIMEOUT, || async {
        report_status(&reports)
            .await
            .filter(|s| privileged_finding(s).is_some_and(|f| f.drift))
    })
    .await;
    let finding = privileged_finding(&drifted).unwrap();
    assert_eq!(finding.set_by.as_deref(), Some(EDITOR));
    assert!(finding.set_at.is_some());
    assert_eq!(drifted.summary.drift, 1, "{:?}", drifted.findings);
    let columns = kubectl(&["get", "scanreports", "-n", &ns.name]);
    assert!(
        columns.lines().next().unwrap().contains("DRIFT"),
        "{columns}"
    );

    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    let event = wait_for("a DriftDetected Event", TIMEOUT, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("DriftDetected"))
    })
    .await;
    let note = event.note.unwrap_or_default();
    assert!(note.contains(EDITOR) && note.contains(PRIVILEGED), "{note}");
    let gauge = format!("namespace=\"{}\"", ns.name);
    wait_for("palisade_drift_findings", TIMEOUT, || async {
        let value = operator.metric("palisade_drift_findings", &[&gauge]).await;
        (value == 1.0).then_some(())
    })
    .await;

    // `palisade drift` on Git's manifest: live-only, naming the manager,
    // from the live objects and from the reports alike.
    for source in [&[][..], &["--from-reports"][..]] {
        let mut args = vec![repo, "--kubeconfig", reader, "-o", "json"];
        args.extend_from_slice(source);
        let output = drift(&args);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{source:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            live_only(&json_of(&output)),
            vec![(
                PRIVILEGED.to_owned(),
                PRIVILEGED_PATH.to_owned(),
                EDITOR.to_owned()
            )],
            "{source:?}"
        );
    }
    let table = drift(&[repo, "--kubeconfig", reader]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("live only") && l.contains(PRIVILEGED) && l.contains(EDITOR)),
        "{text}"
    );

    // Git's version applied again: the finding is gone, and so is the drift.
    sync_from_git(&manifest);
    let cleared = wait_for("the drift cleared", TIMEOUT, || async {
        report_status(&reports)
            .await
            .filter(|s| privileged_finding(s).is_none() && s.summary.drift == 0)
    })
    .await;
    assert!(cleared.findings.iter().all(|f| !f.drift));
    let after = drift(&[repo, "--kubeconfig", reader, "-o", "json"]);
    assert_eq!(after.status.code(), Some(0));
    assert_eq!(live_only(&json_of(&after)), vec![]);
    wait_for("palisade_drift_findings back to none", TIMEOUT, || async {
        let value = operator.metric("palisade_drift_findings", &[&gauge]).await;
        (value == 0.0).then_some(())
    })
    .await;
}

#[test]
fn a_manifest_that_cannot_be_read_exits_2_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: many\n",
    )
    .unwrap();
    let kubeconfig = common::kubeconfig().to_str().unwrap().to_owned();
    let output = drift(&[
        broken.to_str().unwrap(),
        "--kubeconfig",
        &kubeconfig,
        "-n",
        "default",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken.yaml") && stderr.contains("spec.replicas"),
        "{stderr}"
    );
}

#[test]
fn an_unreadable_kubeconfig_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("web.yaml");
    std::fs::write(&manifest, git_manifest("default")).unwrap();
    let missing = dir.path().join("no-such-kubeconfig");
    let output = drift(&[
        manifest.to_str().unwrap(),
        "--kubeconfig",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-such-kubeconfig"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_that_may_not_read_the_namespace_exits_2_naming_what_was_refused() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "drift-refused").await;
    kubectl(&["create", "serviceaccount", "nobody", "-n", &ns.name]);
    let nobody = token_kubeconfig(&ns.name, "nobody");
    let manifest = write_manifest(&ns.name);
    let output = drift(&[
        manifest.to_str().unwrap(),
        "--kubeconfig",
        nobody.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("in namespace {}", ns.name)) && stderr.contains("forbidden"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "no report without the live side");
}
