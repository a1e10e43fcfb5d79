//! OpenReports output against the real OpenReports CRDs (from the Go module
//! `github.com/openreports/reports-api`, see scripts/openreports-crds.sh) on
//! the real test cluster: `palisade scan --output openreports` is accepted
//! by the API server, and the `palisade operator` binary with
//! `--emit-openreports`, running as its ServiceAccount with the RBAC of
//! `manifests/` plus the openreports.io rule, keeps a Report per namespace.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::{
    OPERATOR_ACCOUNT, TestNamespace, client, deployment, free_port, kubectl, kubectl_output,
    repo_root, token_kubeconfig, wait_for,
};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use palisade::crd::ScanPolicy;
use palisade::operator::{self, OpenReportsAvailability};
use palisade::output::openreports::{OpenReport, Outcome, ReportResult};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);
const PRIVILEGED: &str = "privileged-container";

/// The extra rule the operator needs for `--emit-openreports`.
const OPENREPORTS_RBAC: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: palisade-openreports
  labels: {app.kubernetes.io/name: palisade}
rules:
- apiGroups: [openreports.io]
  resources: [reports, clusterreports]
  verbs: [get, list, watch, create, patch, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: palisade-openreports
  labels: {app.kubernetes.io/name: palisade}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: palisade-openreports
subjects:
- kind: ServiceAccount
  name: palisade
  namespace: palisade-system
"#;

/// The directory of the OpenReports CRDs in the Go module cache.
fn openreports_crds() -> PathBuf {
    PathBuf::from(common::script_stdout("openreports-crds.sh").trim())
}

fn apply_file(path: &std::path::Path) {
    common::apply_server_side(path, "e2e");
}

/// Installs the real OpenReports CRDs (idempotent).
fn install_openreports_crds() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        apply_file(&openreports_crds());
        common::wait_established(&["reports.openreports.io", "clusterreports.openreports.io"]);
    });
}

/// Installs Palisade's CRDs, its ServiceAccount and RBAC from `manifests/`
/// and the openreports.io rule; returns a kubeconfig that authenticates as
/// that account.
fn operator_kubeconfig() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        install_openreports_crds();
        let root = repo_root();
        for file in [
            "crds/palisade.yaml",
            "manifests/namespace.yaml",
            "manifests/rbac.yaml",
        ] {
            apply_file(&root.join(file));
        }
        let dir = root.join("target/e2e-openreports");
        std::fs::create_dir_all(&dir).unwrap();
        let rbac = dir.join("openreports-rbac.yaml");
        std::fs::write(&rbac, OPENREPORTS_RBAC).unwrap();
        apply_file(&rbac);
        common::wait_established(&common::PALISADE_CRDS);
        wait_until_allowed();
        token_kubeconfig("palisade-system", "palisade")
    })
}

/// The authorizer reads RBAC from an informer: wait until the bindings are
/// in effect.
fn wait_until_allowed() {
    common::wait_until_allowed(
        OPERATOR_ACCOUNT,
        &[
            &["list", "pods", "-A"],
            &["patch", "scanreports.palisade.dev", "-A"],
            &["patch", "reports.openreports.io", "-A"],
            &["delete", "reports.openreports.io", "-A"],
            &["list", "clusterreports.openreports.io"],
        ],
    );
}

/// The `palisade operator` binary, limited to one namespace.
struct Operator {
    child: Option<tokio::process::Child>,
    port: u16,
    log: PathBuf,
}

impl Operator {
    async fn spawn(namespace: &str, extra: &[&str]) -> Operator {
        let port = free_port();
        let log = repo_root().join(format!("target/e2e-openreports/{namespace}-{port}.log"));
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
            .arg("operator")
            .args([
                "--kubeconfig",
                operator_kubeconfig().to_str().unwrap(),
                "--namespaces",
                namespace,
                "--metrics-addr",
                &format!("127.0.0.1:{port}"),
                "--policy-name",
                &format!("e2e-{namespace}"),
            ])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("palisade operator starts");
        let operator = Operator {
            child: Some(child),
            port,
            log,
        };
        wait_for("the operator's /healthz", TIMEOUT, || async {
            operator
                .get("/healthz")
                .await
                .filter(|b| b.contains("ok"))
                .map(|_| ())
        })
        .await;
        operator
    }

    async fn get(&self, path: &str) -> Option<String> {
        common::http_get(self.port, path).await
    }

    /// Sum of a metric's samples whose line contains every one of `filters`.
    async fn metric(&self, name: &str, filters: &[&str]) -> f64 {
        let text = self.get("/metrics").await.expect("metrics answer");
        common::metric_sum(&text, name, filters)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and a clean exit.
    async fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        let pid = child.id().expect("running").to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(TIMEOUT, child.wait())
            .await
            .expect("operator exits in time on SIGTERM")
            .unwrap();
        assert!(status.success(), "operator exit status: {status}");
    }
}

fn reports_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("openreports.io", "v1alpha1", "Report");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "reports");
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// The `palisade` Report of `namespace`, parsed, with its resourceVersion.
async fn get_report(client: &Client, namespace: &str) -> Option<(OpenReport, String)> {
    let object = reports_api(client, namespace)
        .get_opt("palisade")
        .await
        .expect("get report")?;
    let version = object.metadata.resource_version.clone().unwrap_or_default();
    let report = serde_json::from_value(serde_json::to_value(&object).unwrap())
        .expect("the Report has the documented shape");
    Some((report, version))
}

async fn wait_report(
    client: &Client,
    namespace: &str,
    what: &str,
    accept: impl Fn(&OpenReport) -> bool,
) -> (OpenReport, String) {
    wait_for(
        &format!("Report palisade in {namespace}: {what}"),
        TIMEOUT,
        || async {
            get_report(client, namespace)
                .await
                .filter(|(report, _)| accept(report))
        },
    )
    .await
}

/// The results of `policy` with `outcome` that list the object `name`.
fn results_for<'a>(
    report: &'a OpenReport,
    policy: &str,
    outcome: Outcome,
    name: &str,
) -> Vec<&'a ReportResult> {
    report
        .results
        .iter()
        .filter(|r| r.policy == policy && r.result == outcome)
        .filter(|r| r.resources.iter().any(|o| o.name == name))
        .collect()
}

async fn create_policy(client: &Client, name: &str, spec: Value) {
    let policy: ScanPolicy = serde_json::from_value(json!({
        "apiVersion": "palisade.dev/v1alpha1",
        "kind": "ScanPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap();
    Api::<ScanPolicy>::all(client.clone())
        .create(&PostParams::default(), &policy)
        .await
        .unwrap_or_else(|e| panic!("create ScanPolicy {name}: {e}"));
}

/// Deletes the test's ScanPolicy when the test ends.
struct PolicyCleanup(String);

impl Drop for PolicyCleanup {
    fn drop(&mut self) {
        let _ = kubectl_output(&["delete", "scanpolicy", &self.0, "--ignore-not-found"]);
    }
}

/// Write requests the operator sent for Reports.
async fn report_writes(operator: &Operator) -> f64 {
    operator
        .metric("palisade_api_writes_total", &["resource=\"reports\""])
        .await
}

/// Waits until the Report's resourceVersion and the operator's Report
/// writes stay the same over a few seconds; returns them.
async fn settle(client: &Client, operator: &Operator, namespace: &str) -> (String, f64) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut last = None;
    loop {
        let (_, version) = get_report(client, namespace)
            .await
            .expect("the Report exists");
        let now = (version, report_writes(operator).await);
        if last.as_ref() == Some(&now) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Report kept changing: {now:?}"
        );
        last = Some(now);
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_output_is_accepted_by_the_real_crds() {
    install_openreports_crds();
    let client = client().await;
    let ns = TestNamespace::create(&client, "or-scan").await;
    let manifests = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: app
        image: nginx:1.27
        securityContext: {{privileged: true}}
---
apiVersion: v1
kind: Pod
metadata:
  name: debug
  namespace: {ns}
  annotations:
    palisade.dev/ignore: privileged-container
    palisade.dev/ignore-reason: "a \"quoted\" reason: with colons"
spec:
  containers:
  - {{name: tool, image: busybox, securityContext: {{privileged: true}}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {ns}-everything}}
rules:
- {{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}}
"#,
        ns = ns.name
    );
    let dir = repo_root().join("target/e2e-openreports");
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join(format!("{}-input.yaml", ns.name));
    std::fs::write(&input, manifests).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["scan", "--output", "openreports", "--fail-on", "none"])
        .arg(&input)
        .output()
        .expect("palisade scan runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let reports = dir.join(format!("{}-reports.yaml", ns.name));
    std::fs::write(&reports, &text).unwrap();

    let applied = kubectl(&[
        "apply",
        "--dry-run=server",
        "--validate=strict",
        "-o",
        "json",
        "-f",
        reports.to_str().unwrap(),
    ]);
    let list: Value = serde_json::from_str(&applied).expect("kubectl prints JSON");
    let items = list["items"]
        .as_array()
        .expect("a list of the applied objects");
    let kinds: Vec<&str> = items.iter().filter_map(|i| i["kind"].as_str()).collect();
    assert_eq!(kinds, ["ClusterReport", "Report"], "{text}");
    let report: OpenReport =
        serde_json::from_value(items[1].clone()).expect("the stored Report parses");
    assert_eq!(report.metadata.namespace.as_deref(), Some(ns.name.as_str()));
    assert_eq!(
        results_for(&report, PRIVILEGED, Outcome::Fail, "web").len(),
        1
    );
    assert_eq!(
        results_for(&report, PRIVILEGED, Outcome::Skip, "debug").len(),
        1
    );
    assert!(report.summary.fail >= 1 && report.summary.skip >= 1 && report.summary.pass >= 1);
    let cluster: OpenReport = serde_json::from_value(items[0].clone()).unwrap();
    let everything = format!("{}-everything", ns.name);
    assert!(
        cluster
            .results
            .iter()
            .any(|r| r.result == Outcome::Fail && r.resources.iter().any(|o| o.name == everything)),
        "the wildcard ClusterRole fails a check: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_keeps_a_quiet_report_per_namespace() {
    // Installs the CRDs the ScanPolicy below needs.
    operator_kubeconfig();
    let client = client().await;
    let ns = TestNamespace::create(&client, "or-operator").await;
    let n = ns.name.as_str();
    let policy_name = format!("e2e-{n}");
    let _cleanup = PolicyCleanup(policy_name.clone());
    create_policy(&client, &policy_name, json!({})).await;
    let deployments = Api::<Deployment>::namespaced(client.clone(), n);
    deployments
        .create(&PostParams::default(), &deployment("web", true, None))
        .await
        .unwrap();
    deployments
        .create(&PostParams::default(), &deployment("api", false, None))
        .await
        .unwrap();
    let operator = Operator::spawn(n, &["--emit-openreports", "--resync-interval", "2s"]).await;

    // A failing check appears in the namespace's Report.
    let (report, _) = wait_report(&client, n, "web fails privileged-container", |r| {
        !results_for(r, PRIVILEGED, Outcome::Fail, "web").is_empty()
            && !results_for(r, PRIVILEGED, Outcome::Pass, "api").is_empty()
    })
    .await;
    assert_eq!(report.kind, "Report");
    assert_eq!(report.source, "palisade");
    let fail = results_for(&report, PRIVILEGED, Outcome::Fail, "web")[0];
    assert_eq!(fail.severity.map(|s| s.as_str()), Some("critical"));
    assert_eq!(fail.resources[0].kind, "Deployment");
    assert!(fail.resources[0].uid.is_some());
    assert!(fail.properties["path"].contains("securityContext.privileged"));
    assert!(fail.timestamp.is_some());
    let host_pid = |r: &OpenReport| results_for(r, "host-pid", Outcome::Pass, "web")[0].clone();
    let untouched = host_pid(&report);

    // The ScanPolicy says the API is there.
    wait_for(
        "ScanPolicy condition OpenReportsAvailable=True",
        TIMEOUT,
        || async {
            let policy = Api::<ScanPolicy>::all(client.clone())
                .get(&policy_name)
                .await
                .ok()?;
            policy
                .status?
                .conditions
                .iter()
                .any(|c| c.type_ == "OpenReportsAvailable" && c.status == "True")
                .then_some(())
        },
    )
    .await;

    // Fixing the workload turns its failure into a pass.
    let fix = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "securityContext": {"privileged": false}}
    ]}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(&fix))
        .await
        .unwrap();
    let (fixed, _) = wait_report(&client, n, "web passes privileged-container", |r| {
        results_for(r, PRIVILEGED, Outcome::Fail, "web").is_empty()
            && !results_for(r, PRIVILEGED, Outcome::Pass, "web").is_empty()
    })
    .await;
    assert_eq!(
        host_pid(&fixed).timestamp,
        untouched.timestamp,
        "a result that did not change keeps its timestamp"
    );

    // Idle: full resyncs every 2s re-evaluate everything and write nothing.
    let (version_before, writes_before) = settle(&client, &operator, n).await;
    let resync_before = operator
        .metric("palisade_last_full_resync_timestamp_seconds", &[])
        .await;
    wait_for("three more full resyncs", TIMEOUT, || async {
        let resync = operator
            .metric("palisade_last_full_resync_timestamp_seconds", &[])
            .await;
        (resync >= resync_before + 6.0).then_some(())
    })
    .await;
    // Past the writer's tick after the last resync.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, version_after) = get_report(&client, n).await.expect("report still there");
    assert_eq!(
        version_after, version_before,
        "the idle Report was not rewritten"
    );
    assert_eq!(
        report_writes(&operator).await,
        writes_before,
        "no write request for reports was sent"
    );
    assert!(writes_before >= 2.0, "created, then updated once fixed");

    // A restarted operator finds its Report current: no write.
    operator.stop().await;
    let operator = Operator::spawn(n, &["--emit-openreports", "--resync-interval", "2s"]).await;
    wait_for("two full resyncs of the new operator", TIMEOUT, || async {
        let evaluated = operator.metric("palisade_evaluations_total", &[]).await;
        (evaluated >= 8.0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (after_restart, version) = get_report(&client, n).await.expect("report still there");
    assert_eq!(version, version_before, "the restart rewrote the Report");
    assert_eq!(report_writes(&operator).await, 0.0);
    assert_eq!(host_pid(&after_restart).timestamp, untouched.timestamp);

    // Nothing left to scan in the namespace (the policy excludes it): the
    // Report goes.
    Api::<ScanPolicy>::all(client.clone())
        .patch(
            &policy_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"namespaces": {"exclude": [n]}}})),
        )
        .await
        .unwrap();
    wait_for("the Report to be deleted", TIMEOUT, || async {
        get_report(&client, n).await.is_none().then_some(())
    })
    .await;
    let log = operator.log();
    assert!(log.contains("OpenReports CRDs found"), "{log}");
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_tells_a_missing_api_from_a_served_one() {
    install_openreports_crds();
    let client = client().await;
    let missing =
        operator::detect_openreports(&client, "openreports-absent.palisade.dev/v1alpha1").await;
    match missing {
        OpenReportsAvailability::Unavailable(why) => {
            assert!(why.contains("does not serve"), "{why}");
            assert!(why.contains("install the OpenReports CRDs"), "{why}");
        }
        other => panic!("an absent group is unavailable, got {other:?}"),
    }
    assert_eq!(
        operator::detect_openreports(&client, "openreports.io/v1alpha1").await,
        OpenReportsAvailability::Available
    );
}
