//! The Helm chart in `helm/palisade`: `helm lint`, the values schema, both
//! renders (defaults and `ci/full-values.yaml`) applied with a server-side
//! dry run to the real test API server, `manifests/` equal to the default
//! render, a real `helm install` whose ServiceAccount and RBAC run the
//! operator, Palisade's own scan of what it installs, and the metric names
//! of the PrometheusRule and the Grafana dashboard.
//!
//! Helm is built from Go modules by `scripts/helm.sh` (or taken from
//! `PALISADE_TEST_HELM`); the ServiceMonitor and PrometheusRule CRDs come from
//! the prometheus-operator Go module through the module proxy.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{
    TestNamespace, can_i, client, free_port, kubeconfig, kubectl, kubectl_output, repo_root,
    token_kubeconfig, wait_for, wait_until_allowed,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use palisade::crd::ScanReport;
use serde::Deserialize;
use serde_json::{Value, json};

const CHART: &str = "helm/palisade";
const FULL_VALUES: &str = "helm/palisade/ci/full-values.yaml";
const DASHBOARD: &str = "helm/palisade/dashboards/palisade.json";
/// The Go module whose `example/prometheus-operator-crd/` holds the
/// ServiceMonitor and PrometheusRule CRDs.
const PROMETHEUS_OPERATOR: &str = "github.com/prometheus-operator/prometheus-operator@v0.85.0";
const TIMEOUT: Duration = Duration::from_secs(90);
/// The field manager of this suite's applies, and the flag that names it.
const MANAGER: &str = "helm-chart-test";
const FIELD_MANAGER: &str = "--field-manager=helm-chart-test";

// ---------------------------------------------------------------- helpers

/// The helm binary: `PALISADE_TEST_HELM`, else built (or found up to date)
/// by `scripts/helm.sh`.
fn helm_path() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        if let Some(path) = std::env::var_os("PALISADE_TEST_HELM") {
            return PathBuf::from(path);
        }
        let script = repo_root().join("scripts/helm.sh");
        let output = Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            output.status.success(),
            "scripts/helm.sh failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
}

/// Runs helm in the repository against the test cluster.
fn helm_output(args: &[&str]) -> Output {
    Command::new(helm_path())
        .current_dir(repo_root())
        .env("KUBECONFIG", kubeconfig())
        .env("HELM_CACHE_HOME", repo_root().join("target/helm/cache"))
        .env("HELM_CONFIG_HOME", repo_root().join("target/helm/config"))
        .env("HELM_DATA_HOME", repo_root().join("target/helm/data"))
        .args(args)
        .output()
        .expect("helm runs")
}

/// Runs helm and returns its stdout; panics with stderr on failure.
fn helm(args: &[&str]) -> String {
    let output = helm_output(args);
    assert!(
        output.status.success(),
        "helm {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `helm template` of the chart (CRDs included) as release `release` in
/// `namespace`, with extra helm flags.
fn render(release: &str, namespace: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "template",
        release,
        CHART,
        "-n",
        namespace,
        "--include-crds",
    ];
    args.extend_from_slice(extra);
    helm(&args)
}

/// The objects of a multi-document YAML stream (empty documents left out).
fn documents(yaml: &str, origin: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| {
            Value::deserialize(doc).unwrap_or_else(|e| panic!("{origin} is not valid YAML: {e}"))
        })
        .filter(|doc| !doc.is_null())
        .collect()
}

/// kind/namespace/name of an object.
fn object_key(object: &Value) -> String {
    let meta = &object["metadata"];
    format!(
        "{}/{}/{}",
        object["kind"].as_str().unwrap_or("?"),
        meta["namespace"].as_str().unwrap_or(""),
        meta["name"].as_str().unwrap_or("?")
    )
}

fn by_key(objects: Vec<Value>) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    for object in objects {
        let key = object_key(&object);
        assert!(map.insert(key.clone(), object).is_none(), "{key} twice");
    }
    map
}

fn scratch_dir() -> PathBuf {
    let dir = repo_root().join("target/helm-chart-test");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A file name unique to this process and call.
fn scratch_file(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    scratch_dir().join(format!("{}-{n}-{name}", std::process::id()))
}

/// Applies CRD files for real and waits until they are established.
fn install_crds(files: &[PathBuf], names: &[&str]) {
    for file in files {
        common::apply_server_side(file, MANAGER);
    }
    common::wait_established(names);
}

fn install_palisade_crds() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        install_crds(
            &[repo_root().join("crds/palisade.yaml")],
            &common::PALISADE_CRDS,
        );
    });
}

/// The ServiceMonitor and PrometheusRule CRDs of prometheus-operator,
/// fetched as a Go module (no network besides the module proxy).
fn install_prometheus_operator_crds() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let output = Command::new(go_path())
            .args(["mod", "download", "-json", PROMETHEUS_OPERATOR])
            .current_dir(std::env::temp_dir())
            .env("GO111MODULE", "on")
            .output()
            .expect("go runs");
        assert!(
            output.status.success(),
            "go mod download {PROMETHEUS_OPERATOR} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let info: Value = serde_json::from_slice(&output.stdout).expect("go mod download -json");
        let dir = Path::new(info["Dir"].as_str().expect("module directory"))
            .join("example/prometheus-operator-crd");
        install_crds(
            &[
                dir.join("monitoring.coreos.com_servicemonitors.yaml"),
                dir.join("monitoring.coreos.com_prometheusrules.yaml"),
            ],
            &[
                "servicemonitors.monitoring.coreos.com",
                "prometheusrules.monitoring.coreos.com",
            ],
        );
    });
}

fn go_path() -> PathBuf {
    let in_path = Command::new("go")
        .arg("version")
        .stdout(Stdio::null())
        .status();
    if in_path.is_ok_and(|s| s.success()) {
        PathBuf::from("go")
    } else {
        PathBuf::from("/usr/local/go/bin/go")
    }
}

/// A unique release name, so tests running at once never share the
/// cluster-scoped objects (named after the release).
fn release_name(test: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("pal-{test}-{}-{n}", std::process::id() % 100_000)
}

// ------------------------------------------------------ lint and schema

#[test]
fn the_chart_lints_with_default_and_full_values() {
    for extra in [&[][..], &["-f", FULL_VALUES][..]] {
        let mut args = vec!["lint", "--strict", CHART];
        args.extend_from_slice(extra);
        let out = helm(&args);
        assert!(out.contains("0 chart(s) failed"), "helm lint: {out}");
    }
}

#[test]
fn bad_values_are_refused_by_the_schema_naming_the_field() {
    let cases = [
        ("replicaCount: two\n", "replicaCount"),
        ("replicaCount: 0\n", "replicaCount"),
        ("operator:\n  logFormat: xml\n", "logFormat"),
        ("operator:\n  resyncInterval: 6 hours\n", "resyncInterval"),
        ("image:\n  pullPolicy: Sometimes\n", "pullPolicy"),
        // A misspelt key would silently do nothing.
        ("replicas: 2\n", "replicas"),
    ];
    for (values, field) in cases {
        let file = scratch_file("bad-values.yaml");
        std::fs::write(&file, values).unwrap();
        let file = file.to_str().unwrap();
        for command in ["template", "lint"] {
            let args: Vec<&str> = if command == "template" {
                vec!["template", "x", CHART, "-f", file]
            } else {
                vec!["lint", CHART, "-f", file]
            };
            let out = helm_output(&args);
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                !out.status.success(),
                "helm {command} accepted {values:?}: {text}"
            );
            assert!(
                text.contains("schema") && text.contains(field),
                "helm {command} with {values:?} should name the schema and `{field}`: {text}"
            );
        }
    }
}

#[test]
fn chart_versions_and_crds_follow_the_crate() {
    let chart: Value = serde_norway::from_str(
        &std::fs::read_to_string(repo_root().join(CHART).join("Chart.yaml")).unwrap(),
    )
    .unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(chart["appVersion"], version, "Chart.yaml appVersion");
    assert_eq!(chart["version"], version, "Chart.yaml version");
    let crds = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("crds")
        .output()
        .expect("palisade crds runs");
    assert!(crds.status.success());
    let chart_crds = std::fs::read(repo_root().join(CHART).join("crds/palisade.yaml")).unwrap();
    assert!(
        chart_crds == crds.stdout,
        "helm/palisade/crds/palisade.yaml is stale: copy crds/palisade.yaml (`palisade crds`)"
    );
    let default = by_key(documents(
        &render("palisade", "palisade-system", &[]),
        "render",
    ));
    let image = &default["Deployment/palisade-system/palisade"]["spec"]["template"]["spec"]["containers"]
        [0]["image"];
    assert_eq!(
        image,
        &json!(format!("ghcr.io/palisade-dev/palisade:{version}"))
    );
}

// ----------------------------------------------------------- manifests/

/// `manifests/` is the chart's default render as release `palisade` in
/// `palisade-system`, object by object. Its Namespace is what the chart
/// renders with `namespace.create=true` (Helm normally creates the
/// namespace itself).
#[test]
fn manifests_equal_the_default_render() {
    let root = repo_root().join("manifests");
    let kustomization: Value =
        serde_norway::from_str(&std::fs::read_to_string(root.join("kustomization.yaml")).unwrap())
            .unwrap();
    let mut from_manifests = Vec::new();
    for file in kustomization["resources"].as_array().expect("resources") {
        let file = file.as_str().unwrap();
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        from_manifests.extend(documents(&text, file));
    }
    let manifests = by_key(from_manifests);
    let mut rendered = documents(
        &render("palisade", "palisade-system", &[]),
        "default render",
    );
    rendered.extend(documents(
        &helm(&[
            "template",
            "palisade",
            CHART,
            "-n",
            "palisade-system",
            "--set",
            "namespace.create=true",
            "--show-only",
            "templates/namespace.yaml",
        ]),
        "namespace render",
    ));
    let rendered = by_key(rendered);
    assert_eq!(
        manifests.keys().collect::<Vec<_>>(),
        rendered.keys().collect::<Vec<_>>(),
        "objects of manifests/ (left) and of the default render (right)"
    );
    for (key, object) in &manifests {
        assert!(
            object == &rendered[key],
            "{key} differs between manifests/ and the chart:\nmanifests/: {}\nchart: {}",
            serde_json::to_string_pretty(object).unwrap(),
            serde_json::to_string_pretty(&rendered[key]).unwrap()
        );
    }
}

// ------------------------------------------------- server-side dry run

#[tokio::test]
async fn both_renders_pass_a_server_side_dry_run() {
    let client = client().await;
    install_palisade_crds();
    install_prometheus_operator_crds();
    let cases: [(&str, &[&str]); 2] = [
        ("defaults", &["--set", "namespace.create=true"]),
        ("full", &["-f", FULL_VALUES]),
    ];
    for (name, extra) in cases {
        let ns = TestNamespace::create(&client, &format!("helm-dry-{name}")).await;
        let release = release_name("dry");
        let yaml = render(&release, &ns.name, extra);
        let objects = documents(&yaml, name);
        let file = scratch_file(&format!("{name}.yaml"));
        std::fs::write(&file, &yaml).unwrap();
        let out = kubectl(&[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--force-conflicts",
            FIELD_MANAGER,
            "-f",
            file.to_str().unwrap(),
        ]);
        let applied = out
            .lines()
            .filter(|l| l.contains("(server dry run)"))
            .count();
        assert_eq!(
            applied,
            objects.len(),
            "every object of the {name} render: {out}"
        );
        if name == "full" {
            let kinds: BTreeSet<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
            for kind in [
                "PodDisruptionBudget",
                "ServiceMonitor",
                "PrometheusRule",
                "NetworkPolicy",
                "ConfigMap",
                "ScanPolicy",
            ] {
                assert!(
                    kinds.contains(kind),
                    "the full render has a {kind}: {kinds:?}"
                );
            }
            let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
            let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
            assert!(
                env.as_array()
                    .unwrap()
                    .contains(&json!({"name": "PALISADE_LEADER_ELECTION", "value": "true"})),
                "two replicas turn leader election on: {env}"
            );
        }
    }
}

/// `kubectl apply -k manifests/` keeps working (the kustomize base of the
/// default render).
#[test]
fn the_kustomize_base_passes_a_server_side_dry_run() {
    install_palisade_crds();
    // Namespaced objects need their namespace to exist for a dry run.
    let namespace = repo_root().join("manifests/namespace.yaml");
    kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        FIELD_MANAGER,
        "-f",
        namespace.to_str().unwrap(),
    ]);
    let manifests = repo_root().join("manifests");
    let out = kubectl(&[
        "apply",
        "--server-side",
        "--dry-run=server",
        "--force-conflicts",
        FIELD_MANAGER,
        "-k",
        manifests.to_str().unwrap(),
    ]);
    let applied = out
        .lines()
        .filter(|l| l.contains("(server dry run)"))
        .count();
    let rendered = documents(
        &render("palisade", "palisade-system", &[]),
        "default render",
    );
    // The render has every object but the Namespace.
    assert_eq!(
        applied,
        rendered.len() + 1,
        "kubectl apply -k manifests/: {out}"
    );
}

// ------------------------------------------------------ a real install

/// The `palisade operator` binary as a process, killed when dropped.
struct OperatorProcess {
    child: tokio::process::Child,
    port: u16,
}

impl OperatorProcess {
    /// Starts the binary with `env` and `args` and waits for /healthz.
    async fn start(env: &[(String, String)], args: &[String], port: u16, log: &Path) -> Self {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("palisade operator starts");
        let operator = OperatorProcess { child, port };
        wait_for("the operator's /healthz", TIMEOUT, || async {
            operator.get("/healthz").await.filter(|b| b.contains("ok"))
        })
        .await;
        operator
    }

    async fn get(&self, path: &str) -> Option<String> {
        common::http_get(self.port, path).await
    }

    async fn stop(mut self) {
        let pid = self.child.id().expect("running").to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .expect("operator exits in time on SIGTERM")
            .unwrap();
        assert!(
            status.success(),
            "operator exit status on SIGTERM: {status}"
        );
    }
}

/// The environment the chart gives the operator container, with the
/// downward-API fields filled in as the kubelet would.
fn container_env(deployment: &Value, pod_name: &str, namespace: &str) -> Vec<(String, String)> {
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("container env");
    env.iter()
        .map(|var| {
            let name = var["name"].as_str().unwrap().to_owned();
            let value = match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.name") => pod_name.to_owned(),
                Some("metadata.namespace") => namespace.to_owned(),
                Some(other) => panic!("unexpected fieldRef {other} in {name}"),
                None => var["value"].as_str().expect("env value").to_owned(),
            };
            (name, value)
        })
        .collect()
}

/// `helm install` into a fresh namespace creates every object; the operator
/// binary, run with the installed Deployment's environment and a token of
/// the chart's ServiceAccount, holds the chart's Lease and writes a report.
/// `helm uninstall` removes the cluster-scoped objects again.
#[tokio::test]
async fn the_installed_chart_runs_the_operator_with_its_rbac() {
    let client = client().await;
    install_palisade_crds();
    let release_ns = TestNamespace::create(&client, "helm-install").await;
    let workloads = TestNamespace::create(&client, "helm-workloads").await;
    let release = release_name("it");
    let ns = release_ns.name.as_str();
    let out = helm(&["install", &release, CHART, "-n", ns, "--timeout", "2m"]);
    assert!(
        out.contains("kubectl get scanreports -A"),
        "NOTES.txt: {out}"
    );

    // Every object of the release exists.
    let manifest = helm(&["get", "manifest", &release, "-n", ns]);
    let objects = documents(&manifest, "release manifest");
    let file = scratch_file("release.yaml");
    std::fs::write(&file, &manifest).unwrap();
    let found = kubectl(&["get", "-f", file.to_str().unwrap(), "-o", "name"]);
    assert_eq!(
        found.lines().count(),
        objects.len(),
        "objects of the release: {found}"
    );
    let cluster_role = kubectl(&["get", "clusterrole", &release, "-o", "name"]);
    assert_eq!(
        cluster_role.trim(),
        format!("clusterrole.rbac.authorization.k8s.io/{release}")
    );

    // The chart's RBAC, as the authorizer sees it.
    let account = format!("system:serviceaccount:{ns}:{release}");
    let workloads_ns = workloads.name.as_str();
    wait_until_allowed(
        &account,
        &[
            &["list", "deployments", "-A"],
            &["watch", "scanreports.palisade.dev", "-A"],
            &["patch", "scanreports.palisade.dev", "-A"],
            &["create", "leases.coordination.k8s.io", "-n", ns],
            &[
                "update",
                &format!("leases.coordination.k8s.io/{release}"),
                "-n",
                ns,
            ],
        ],
    );
    assert!(
        !can_i(&account, &["list", "secrets", "-A"]),
        "the chart must not grant Secrets"
    );
    assert!(
        !can_i(
            &account,
            &["update", "leases.coordination.k8s.io/other", "-n", ns]
        ),
        "only its own Lease"
    );

    // The operator, configured exactly as the installed Deployment.
    let deployment: Value = serde_json::from_str(&kubectl(&[
        "get",
        "deployment",
        &release,
        "-n",
        ns,
        "-o",
        "json",
    ]))
    .unwrap();
    let port = free_port();
    let pod = format!("{release}-test-pod");
    let mut env = container_env(&deployment, &pod, ns);
    for (name, value) in &mut env {
        if name == "PALISADE_METRICS_ADDR" {
            *value = format!("127.0.0.1:{port}");
        }
    }
    let token = token_kubeconfig(ns, &release);
    let mut args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    args.extend(
        [
            "--kubeconfig",
            token.to_str().unwrap(),
            "--namespaces",
            workloads_ns,
            "--policy-name",
            &format!("helm-{ns}"),
        ]
        .map(String::from),
    );
    let log = scratch_file("operator.log");
    let operator = OperatorProcess::start(&env, &args, port, &log).await;

    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    wait_for(
        "the chart's Lease held by the operator",
        TIMEOUT,
        || async {
            let lease = leases.get_opt(&release).await.ok()??;
            (lease.spec?.holder_identity? == pod).then_some(())
        },
    )
    .await;

    Api::<Deployment>::namespaced(client.clone(), workloads_ns)
        .create(
            &PostParams::default(),
            &common::deployment("web", true, None),
        )
        .await
        .expect("create deployment web");
    let reports: Api<ScanReport> = Api::namespaced(client.clone(), workloads_ns);
    wait_for("a report with the privileged finding", TIMEOUT, || async {
        let report = reports.get_opt("deployment-web").await.ok()??;
        report
            .status?
            .findings
            .iter()
            .any(|f| f.check == "privileged-container")
            .then_some(())
    })
    .await;
    operator.stop().await;

    helm(&["uninstall", &release, "-n", ns, "--wait", "--timeout", "2m"]);
    let gone = kubectl_output(&["get", "clusterrole,clusterrolebinding", &release]);
    assert!(
        !gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains("NotFound"),
        "helm uninstall removes the cluster-scoped objects: {}",
        String::from_utf8_lossy(&gone.stdout)
    );
}

// ------------------------------------------------------------- dogfood

fn scan(input: &[u8], path: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "scan",
            "--fail-on",
            "medium",
            "--min-severity",
            "medium",
            path,
        ])
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("palisade scan runs");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// What Palisade installs passes Palisade's own scan at `--fail-on medium`.
#[test]
fn palisade_scan_finds_nothing_at_medium_or_above_in_what_it_installs() {
    let default = render("palisade", "palisade-system", &[]);
    let full = render("palisade", "palisade-system", &["-f", FULL_VALUES]);
    let cases = [
        ("default render", default.as_bytes(), "-"),
        ("full render", full.as_bytes(), "-"),
        ("manifests/", &b""[..], "manifests"),
    ];
    for (what, input, path) in cases {
        let out = scan(input, path);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "palisade scan of the {what} ({}): {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("objects scanned") && !stdout.contains(" 0 objects scanned"),
            "the scan of the {what} saw objects: {stdout}"
        );
    }
}

// -------------------------------------------------------------- PromQL

/// PromQL words that are not metric names.
const PROMQL_KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "limitk",
    "limit_ratio",
    "inf",
    "nan",
];
/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

#[derive(Debug, PartialEq)]
enum Token {
    Ident(String),
    Open,
    Close,
    Other,
}

/// Tokens of a PromQL expression, with label matchers (`{...}`), ranges
/// and subqueries (`[...]`) and string literals dropped.
fn promql_tokens(expr: &str) -> Vec<Token> {
    let chars: Vec<char> = expr.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '"' {
                        i = skip_string(&chars, i) + 1;
                    } else {
                        i += 1;
                    }
                }
                i += 1;
                tokens.push(Token::Other);
            }
            '"' | '\'' | '`' => {
                i = skip_string(&chars, i) + 1;
                tokens.push(Token::Other);
            }
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                tokens.push(Token::Ident(chars[start..i].iter().collect()));
            }
            c if c.is_ascii_digit() || c == '.' || c == '$' => {
                // Numbers, durations (`1h`) and Grafana variables.
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || "._$".contains(chars[i]))
                {
                    i += 1;
                }
                tokens.push(Token::Other);
            }
            _ => {
                if !c.is_whitespace() {
                    tokens.push(Token::Other);
                }
                i += 1;
            }
        }
    }
    tokens
}

/// Index of the quote that closes the string starting at `start`.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() && chars[i] != quote {
        i += if chars[i] == '\\' { 2 } else { 1 };
    }
    i
}

/// The metric names an expression selects: identifiers that are not
/// functions, keywords, or label names in `by (...)`-style lists.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let tokens = promql_tokens(expr);
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < tokens.len() {
        if let Token::Ident(word) = &tokens[i] {
            let next = tokens.get(i + 1);
            if LABEL_LISTS.contains(&word.as_str()) && next == Some(&Token::Open) {
                while i < tokens.len() && tokens[i] != Token::Close {
                    i += 1;
                }
            } else if next != Some(&Token::Open) && !PROMQL_KEYWORDS.contains(&word.as_str()) {
                names.insert(word.clone());
            }
        }
        i += 1;
    }
    names
}

/// Whether every `(`, `{` and `[` outside string literals is closed in order
/// (a cheap guard against a broken expression; Prometheus parses the rest).
fn balanced(expr: &str) -> bool {
    let chars: Vec<char> = expr.chars().collect();
    let mut open = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => i = skip_string(&chars, i),
            c @ ('(' | '{' | '[') => open.push(c),
            c @ (')' | '}' | ']') => {
                let expected = match c {
                    ')' => '(',
                    '}' => '{',
                    _ => '[',
                };
                if open.pop() != Some(expected) {
                    return false;
                }
            }
            _ => {}
        }
        i += 1;
    }
    open.is_empty()
}

/// Grafana's `label_values(metric{...}, label)` variable query, as the
/// PromQL selector it wraps.
fn grafana_query_selector(query: &str) -> Option<&str> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    Some(
        inner
            .rsplit_once(',')
            .map_or(inner, |(selector, _label)| selector),
    )
}

/// Every `expr` of the rules, and every query of the dashboard (panels,
/// nested panels, template variables), with where it comes from.
fn promql_expressions() -> Vec<(String, String)> {
    let full = documents(
        &render("palisade", "palisade-system", &["-f", FULL_VALUES]),
        "full render",
    );
    let rule = full
        .iter()
        .find(|o| o["kind"] == "PrometheusRule")
        .expect("a PrometheusRule in the full render");
    let mut exprs = Vec::new();
    for group in rule["spec"]["groups"].as_array().unwrap() {
        for r in group["rules"].as_array().unwrap() {
            let name = r["alert"].as_str().or(r["record"].as_str()).unwrap();
            exprs.push((
                format!("rule {name}"),
                r["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join(DASHBOARD)).unwrap())
            .expect("the dashboard is JSON");
    collect_panel_exprs(&dashboard["panels"], &mut exprs);
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] != "query" {
            continue;
        }
        let query = variable["query"]["query"]
            .as_str()
            .or(variable["query"].as_str());
        let selector = query
            .and_then(grafana_query_selector)
            .unwrap_or_else(|| panic!("variable {} has no label_values() query", variable["name"]));
        exprs.push((
            format!("variable {}", variable["name"]),
            selector.to_owned(),
        ));
    }
    exprs
}

fn collect_panel_exprs(panels: &Value, exprs: &mut Vec<(String, String)>) {
    for panel in panels.as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("every target has an expr");
            exprs.push((format!("panel {}", panel["title"]), expr.to_owned()));
        }
        collect_panel_exprs(&panel["panels"], exprs);
    }
}

/// Sample names a Prometheus scrape of this text yields: `# TYPE` lines
/// (counters get `_total`, histograms `_bucket`/`_sum`/`_count`) and every
/// sample line.
fn exposed_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            match kind {
                "counter" => {
                    names.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
                _ => {
                    names.insert(name.to_owned());
                }
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let name = line.split(['{', ' ']).next().unwrap();
            names.insert(name.to_owned());
        }
    }
    names
}

/// `(where, unknown names)` of every expression naming a metric that is
/// not in `exported`.
fn unknown_metrics(
    exprs: &[(String, String)],
    exported: &BTreeSet<String>,
) -> Vec<(String, BTreeSet<String>)> {
    exprs
        .iter()
        .filter_map(|(origin, expr)| {
            let unknown: BTreeSet<String> =
                metric_names(expr).difference(exported).cloned().collect();
            (!unknown.is_empty()).then(|| (origin.clone(), unknown))
        })
        .collect()
}

#[test]
fn promql_metric_names_are_extracted() {
    let expr = r#"sum by (namespace, severity) (rate(palisade_x_total{job="a",b=~"c|d"}[5m] offset 1h))
        > on (namespace) group_left (kind) histogram_quantile(0.99, palisade_y_bucket{le!="1"}) * 2
        or absent(palisade_z) unless topk(3, palisade_w[$__rate_interval])"#;
    let names: Vec<String> = metric_names(expr).into_iter().collect();
    assert_eq!(
        names,
        [
            "palisade_w",
            "palisade_x_total",
            "palisade_y_bucket",
            "palisade_z"
        ]
    );
    assert_eq!(
        grafana_query_selector(r#"label_values(palisade_findings{job=~"$job"}, namespace)"#),
        Some(r#"palisade_findings{job=~"$job"}"#)
    );
    assert!(balanced(expr));
    assert!(!balanced("sum(rate(x[5m])"));
    assert!(!balanced("x{a=\"b\"]"));
    // A wrong name is reported; a known one is not.
    let exported: BTreeSet<String> = ["palisade_findings".to_owned()].into();
    let exprs = [
        ("good".to_owned(), "sum(palisade_findings)".to_owned()),
        ("bad".to_owned(), "sum(palisade_finding)".to_owned()),
    ];
    let unknown = unknown_metrics(&exprs, &exported);
    assert_eq!(
        unknown,
        [("bad".to_owned(), ["palisade_finding".to_owned()].into())]
    );
}

/// Every name the alerts and the dashboard query is one a running operator
/// exposes on /metrics.
#[tokio::test]
async fn rules_and_dashboard_query_only_metrics_the_operator_exports() {
    let client = client().await;
    install_palisade_crds();
    let ns = TestNamespace::create(&client, "helm-metrics").await;
    let port = free_port();
    let args: Vec<String> = [
        "operator",
        "--kubeconfig",
        kubeconfig().to_str().unwrap(),
        "--namespaces",
        &ns.name,
        "--metrics-addr",
        &format!("127.0.0.1:{port}"),
        "--policy-name",
        &format!("helm-{}", ns.name),
    ]
    .map(String::from)
    .to_vec();
    let log = scratch_file("metrics-operator.log");
    let operator = OperatorProcess::start(&[], &args, port, &log).await;
    let text = wait_for(
        "/metrics after the first full re-evaluation",
        TIMEOUT,
        || async {
            let text = operator.get("/metrics").await?;
            let body = text.split_once("\r\n\r\n")?.1.to_owned();
            body.contains("palisade_last_full_resync_timestamp_seconds")
                .then_some(body)
        },
    )
    .await;
    operator.stop().await;
    // A scrape shows only families with samples; the operator's own list
    // has them all, and must agree with what was scraped.
    let scraped = exposed_names(&text);
    let exported = palisade::operator::metric_names();
    let missing: Vec<&String> = scraped.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "scraped but not in operator::metric_names(): {missing:?}"
    );
    let exprs = promql_expressions();
    assert!(exprs.iter().filter(|(o, _)| o.starts_with("rule ")).count() >= 4);
    assert!(
        exprs
            .iter()
            .filter(|(o, _)| o.starts_with("panel "))
            .count()
            >= 10
    );
    for (origin, expr) in &exprs {
        assert!(
            !metric_names(expr).is_empty(),
            "{origin} names no metric: {expr}"
        );
        assert!(balanced(expr), "{origin} has unbalanced brackets: {expr}");
    }
    let unknown = unknown_metrics(&exprs, &exported);
    assert!(
        unknown.is_empty(),
        "metrics not exported by the operator: {unknown:#?}\nexported: {exported:#?}"
    );
}
