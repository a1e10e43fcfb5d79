//! Workload kinds outside Kubernetes' own groups, end to end, with the real
//! CRDs of Argo Rollouts, Knative Serving and KEDA (from their Go modules,
//! see scripts/workload-crds.sh) on the real API server: each object gets
//! one report, what it controls gets none, the watch follows its CRD
//! appearing and disappearing, and `palisade scan` finds what the operator
//! finds.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::{OPERATOR_ACCOUNT, TestNamespace, kubectl, kubectl_output, repo_root, wait_for};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);

const ROLLOUTS_CRD: &str = "rollouts.argoproj.io";
const CRDS: [&str; 5] = [
    ROLLOUTS_CRD,
    "services.serving.knative.dev",
    "configurations.serving.knative.dev",
    "revisions.serving.knative.dev",
    "scaledjobs.keda.sh",
];

/// The CRD files, from the Go module cache.
fn crd_files() -> &'static Vec<PathBuf> {
    static FILES: OnceLock<Vec<PathBuf>> = OnceLock::new();
    FILES.get_or_init(|| {
        common::script_stdout("workload-crds.sh")
            .lines()
            .map(PathBuf::from)
            .collect()
    })
}

fn install_crds() {
    for file in crd_files() {
        common::apply_server_side(file, "e2e");
    }
    common::wait_established(&CRDS);
}

/// The operator's manifests, the workload CRDs, and a kubeconfig of the
/// operator's ServiceAccount once its rules are in effect.
fn operator_kubeconfig() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        install_crds();
        common::install_operator_manifests();
        common::wait_until_allowed(
            OPERATOR_ACCOUNT,
            &[
                &["list", "pods", "-A"],
                &["watch", "rollouts.argoproj.io", "-A"],
                &["watch", "scaledjobs.keda.sh", "-A"],
                &["watch", "services.serving.knative.dev", "-A"],
                &["patch", "scanreports.palisade.dev", "-A"],
            ],
        );
        common::token_kubeconfig("palisade-system", "palisade")
    })
}

/// `palisade operator`, limited to one namespace; killed when dropped.
struct Operator {
    _child: std::process::Child,
}

impl Operator {
    fn start(namespace: &str) -> Operator {
        let port = common::free_port();
        let logs = repo_root().join("target/e2e-kinds");
        std::fs::create_dir_all(&logs).unwrap();
        let log = std::fs::File::create(logs.join(format!("{namespace}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["operator", "--kubeconfig"])
            .arg(operator_kubeconfig())
            .args(["--namespaces", namespace, "--metrics-addr"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--policy-name", &format!("{namespace}-policy")])
            .args(["--resync-interval", "1h"])
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("palisade operator starts");
        Operator { _child: child }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self._child.kill();
        let _ = self._child.wait();
    }
}

/// Applies objects given as JSON (a file in target/, then `kubectl apply`).
fn apply(namespace: &str, name: &str, objects: &[Value]) -> PathBuf {
    let dir = repo_root().join("target/e2e-kinds");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{namespace}-{name}.json"));
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    std::fs::write(&path, serde_json::to_vec_pretty(&list).unwrap()).unwrap();
    kubectl(&["apply", "-n", namespace, "-f", path.to_str().unwrap()]);
    path
}

fn privileged_pod_spec() -> Value {
    json!({"containers": [{"name": "app", "image": "nginx:1.27",
        "securityContext": {"privileged": true}}]})
}

fn rollout(name: &str) -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
            "strategy": {"canary": {}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": privileged_pod_spec()}}})
}

fn scaled_job(name: &str) -> Value {
    json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob",
        "metadata": {"name": name},
        "spec": {"jobTargetRef": {"template": {"spec": {
                "containers": [{"name": "worker", "image": "busybox:1.36",
                    "securityContext": {"allowPrivilegeEscalation": true}}],
                "restartPolicy": "Never"}}},
            "triggers": [{"type": "cron", "metadata": {"timezone": "UTC",
                "start": "0 * * * *", "end": "5 * * * *", "desiredReplicas": "1"}}]}})
}

fn knative_service(name: &str) -> Value {
    json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"containerConcurrency": 10,
            "containers": [{"image": "nginx:latest"}]}}}})
}

/// The report `name` in `namespace`, once it has findings.
fn report(namespace: &str, name: &str) -> Option<Value> {
    let out = kubectl_output(&["get", "scanreport", name, "-n", namespace, "-o", "json"]);
    if !out.status.success() {
        return None;
    }
    let report: Value = serde_json::from_slice(&out.stdout).ok()?;
    report
        .pointer("/status/findings")
        .is_some()
        .then_some(report)
}

fn report_names(namespace: &str) -> BTreeSet<String> {
    let out = kubectl(&["get", "scanreports", "-n", namespace, "-o", "json"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r.pointer("/metadata/name")?.as_str().map(str::to_owned))
        .collect()
}

async fn wait_report(namespace: &str, name: &str) -> Value {
    wait_for(&format!("report {name}"), TIMEOUT, || async {
        report(namespace, name)
    })
    .await
}

/// (check, path) of every unsuppressed finding of a report.
fn report_findings(report: &Value) -> BTreeSet<(String, String)> {
    report["status"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f.get("suppressed").is_none_or(Value::is_null))
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_owned(),
                f["path"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// (check, path) of the unsuppressed findings `palisade scan` reports on
/// `kind`/`name` in `file`.
fn scan_findings(file: &Path, kind: &str, name: &str) -> BTreeSet<(String, String)> {
    let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["scan", "-o", "json", "--fail-on", "none"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["object"]["kind"] == kind && f["object"]["name"] == name)
        .filter(|f| f.get("suppressed").is_none_or(Value::is_null))
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_owned(),
                f["path"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn table_kinds_get_one_report_each_and_agree_with_the_cli() {
    operator_kubeconfig();
    let client = common::client().await;
    let ns = TestNamespace::create(&client, "kinds").await;
    let _operator = Operator::start(&ns.name);
    let file = apply(
        &ns.name,
        "workloads",
        &[
            rollout("web"),
            scaled_job("queue"),
            knative_service("hello"),
        ],
    );

    let rollout_report = wait_report(&ns.name, "rollout-web").await;
    assert_eq!(rollout_report["spec"]["target"]["kind"], "Rollout");
    assert_eq!(
        rollout_report["spec"]["target"]["apiVersion"],
        "argoproj.io/v1alpha1"
    );
    let found = report_findings(&rollout_report);
    assert!(
        found.contains(&(
            "privileged-container".to_owned(),
            "spec.template.spec.containers[name=app].securityContext.privileged".to_owned()
        )),
        "{found:?}"
    );
    let scaled_job_report = wait_report(&ns.name, "scaledjob-queue").await;
    let knative_report = wait_report(&ns.name, "service-hello").await;
    assert_eq!(
        knative_report["spec"]["target"]["apiVersion"],
        "serving.knative.dev/v1"
    );

    // The CLI finds the same on the same objects.
    for (report, kind, name) in [
        (&rollout_report, "Rollout", "web"),
        (&scaled_job_report, "ScaledJob", "queue"),
        (&knative_report, "Service", "hello"),
    ] {
        let cli = scan_findings(&file, kind, name);
        assert!(!cli.is_empty(), "{kind} {name}: the CLI finds something");
        assert_eq!(report_findings(report), cli, "{kind} {name}");
    }
}

#[tokio::test]
async fn what_a_rollout_controls_gets_no_report_of_its_own() {
    operator_kubeconfig();
    let client = common::client().await;
    let ns = TestNamespace::create(&client, "kinds-owned").await;
    let _operator = Operator::start(&ns.name);
    apply(&ns.name, "rollout", &[rollout("canary")]);
    wait_report(&ns.name, "rollout-canary").await;
    let uid = kubectl(&[
        "get",
        "rollout",
        "canary",
        "-n",
        &ns.name,
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let owned_by = |api_version: &str, kind: &str, name: &str, uid: &str| {
        json!([{"apiVersion": api_version, "kind": kind, "name": name, "uid": uid,
            "controller": true}])
    };
    let replica_set = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "canary-5f7d", "labels": {"app": "canary"},
            "ownerReferences": owned_by("argoproj.io/v1alpha1", "Rollout", "canary", &uid)},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "canary"}},
            "template": {"metadata": {"labels": {"app": "canary"}}, "spec": privileged_pod_spec()}}});
    apply(&ns.name, "owned", &[replica_set]);
    // A bare ReplicaSet created after it: once it has its report, the owned
    // one has been evaluated too.
    let bare = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "bare"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "bare"}},
            "template": {"metadata": {"labels": {"app": "bare"}}, "spec": privileged_pod_spec()}}});
    apply(&ns.name, "bare", &[bare]);
    wait_report(&ns.name, "replicaset-bare").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let names = report_names(&ns.name);
    assert!(!names.contains("replicaset-canary-5f7d"), "{names:?}");
    assert!(names.contains("rollout-canary"), "{names:?}");
}

#[tokio::test]
async fn the_watch_follows_the_crd_and_the_policy_lists_the_kinds() {
    operator_kubeconfig();
    let client = common::client().await;
    let ns = TestNamespace::create(&client, "kinds-crd").await;
    let policy = format!("{}-policy", ns.name);
    let policy_file = repo_root().join(format!("target/e2e-kinds/{policy}.yaml"));
    std::fs::create_dir_all(policy_file.parent().unwrap()).unwrap();
    std::fs::write(
        &policy_file,
        format!("apiVersion: palisade.dev/v1alpha1\nkind: ScanPolicy\nmetadata:\n  name: {policy}\nspec: {{}}\n"),
    )
    .unwrap();
    kubectl(&["apply", "-f", policy_file.to_str().unwrap()]);
    let _operator = Operator::start(&ns.name);
    apply(&ns.name, "rollout", &[rollout("web")]);
    wait_report(&ns.name, "rollout-web").await;
    // The message of the WorkloadKinds condition, once `want` holds for it.
    let condition = |want: fn(&str) -> bool| {
        let policy = policy.clone();
        move || {
            let policy = policy.clone();
            async move {
                let out = kubectl(&["get", "scanpolicy", &policy, "-o", "json"]);
                let object: Value = serde_json::from_str(&out).ok()?;
                let message = object["status"]["conditions"]
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == "WorkloadKinds")?["message"]
                    .as_str()?
                    .to_owned();
                want(&message).then_some(message)
            }
        }
    };
    wait_for(
        "WorkloadKinds lists the Rollout watched",
        TIMEOUT,
        condition(|m| m.starts_with("watched: Rollout.argoproj.io/v1alpha1")),
    )
    .await;

    // The CRD goes: the watch stops and the report is removed.
    kubectl(&["delete", "crd", ROLLOUTS_CRD, "--wait=true"]);
    wait_for("the Rollout's report removed", TIMEOUT, || async {
        (!report_names(&ns.name).contains("rollout-web")).then_some(())
    })
    .await;
    let absent = |m: &str| {
        m.split_once("absent (CRD not served): ")
            .is_some_and(|(watched, absent)| {
                absent.contains("Rollout.argoproj.io") && !watched.contains("Rollout")
            })
    };
    wait_for(
        "WorkloadKinds lists the Rollout absent",
        TIMEOUT,
        condition(absent),
    )
    .await;

    // It comes back: the watch resumes without a restart.
    install_crds();
    apply(&ns.name, "rollout-again", &[rollout("web")]);
    wait_report(&ns.name, "rollout-web").await;
    kubectl(&["delete", "scanpolicy", &policy, "--ignore-not-found"]);
}

#[tokio::test]
async fn a_rollout_with_a_workload_ref_is_checked_on_the_deployments_template() {
    operator_kubeconfig();
    let client = common::client().await;
    let ns = TestNamespace::create(&client, "kinds-ref").await;
    let _operator = Operator::start(&ns.name);
    let deployment = |privileged: bool| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "base"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "base"}},
                "template": {"metadata": {"labels": {"app": "base"}},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                        "securityContext": {"privileged": privileged}}]}}}})
    };
    let referencing = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "ref"},
        "spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "base"},
            "strategy": {"canary": {}}}});
    apply(&ns.name, "ref", &[deployment(true), referencing]);
    let privileged = (
        "privileged-container".to_owned(),
        "spec.template.spec.containers[name=app].securityContext.privileged".to_owned(),
    );
    let first = wait_report(&ns.name, "rollout-ref").await;
    assert!(report_findings(&first).contains(&privileged));
    // The Deployment changes: the Rollout is evaluated again.
    apply(&ns.name, "ref-fixed", &[deployment(false)]);
    wait_for(
        "the Rollout's report follows the Deployment",
        TIMEOUT,
        || async {
            let report = report(&ns.name, "rollout-ref")?;
            (!report_findings(&report).contains(&privileged)).then_some(())
        },
    )
    .await;
}

/// `palisade scan` with a policy: (exit status, stdout, stderr).
fn scan_with_policy(manifest: &str, policy: &str, test: &str) -> (i32, String, String) {
    let dir = repo_root().join("target/e2e-kinds").join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let (manifest_file, policy_file) = (dir.join("objects.yaml"), dir.join("policy.yaml"));
    std::fs::write(&manifest_file, manifest).unwrap();
    std::fs::write(&policy_file, policy).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["scan", "-o", "json", "--fail-on", "none", "--policy"])
        .arg(&policy_file)
        .arg(&manifest_file)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const WIDGET: &str = "apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: a}
spec:
  runner:
    spec:
      containers:
      - name: app
        image: nginx:1.27
        securityContext: {privileged: true}
";

#[test]
fn the_cli_scans_a_users_kind_from_the_policy() {
    let policy = "apiVersion: palisade.dev/v1alpha1
kind: ScanPolicy
metadata: {name: default}
spec:
  workloadKinds:
  - group: example.com
    versions: [v1]
    kind: Widget
    plural: widgets
    podTemplate: spec.runner
";
    let (status, stdout, stderr) = scan_with_policy(WIDGET, policy, "user-kind");
    assert_eq!(status, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let paths: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "privileged-container")
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        ["spec.runner.spec.containers[name=app].securityContext.privileged"]
    );
}

#[test]
fn a_bad_kind_entry_is_a_usage_error_naming_line_and_field() {
    let policy = "apiVersion: palisade.dev/v1alpha1
kind: ScanPolicy
metadata: {name: default}
spec:
  workloadKinds:
  - group: example.com
    versions: [v1]
    kind: Widget
    plural: widgets
    podTemplate: spec.runner
  - group: example.com
    versions: [v1]
    kind: Gadget
    plural: Gadgets
    podTemplate: spec.runner
";
    let (status, _, stderr) = scan_with_policy(WIDGET, policy, "bad-kind");
    assert_eq!(status, 2, "{stderr}");
    assert!(
        stderr.contains("policy.yaml:14: spec.workloadKinds[1].plural:"),
        "{stderr}"
    );
}

/// `(group, resource)` of every rule that lets the operator list and watch.
fn watch_rules(rules: &[Value]) -> BTreeSet<(String, String)> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    rules
        .iter()
        .filter(|rule| {
            let verbs = strings(&rule["verbs"]);
            verbs.iter().any(|v| v == "list") && verbs.iter().any(|v| v == "watch")
        })
        .flat_map(|rule| {
            let resources = strings(&rule["resources"]);
            strings(&rule["apiGroups"])
                .into_iter()
                .flat_map(move |g| resources.clone().into_iter().map(move |r| (g.clone(), r)))
        })
        .collect()
}

#[test]
fn the_operators_rbac_covers_every_kind_of_the_table() {
    use serde::Deserialize;
    let table = palisade::model::KindTable::built_in();
    let wanted: Vec<(String, String)> = table
        .iter()
        .filter(|k| k.kind != "PodTemplate")
        .map(|k| (k.group.to_owned(), k.plural.to_owned()))
        .collect();

    let manifests = std::fs::read_to_string(repo_root().join("manifests/rbac.yaml")).unwrap();
    let cluster_role = serde_norway::Deserializer::from_str(&manifests)
        .map(|d| Value::deserialize(d).unwrap())
        .find(|d| d["kind"] == "ClusterRole")
        .expect("a ClusterRole in manifests/rbac.yaml");
    let granted = watch_rules(cluster_role["rules"].as_array().unwrap());
    for rule in &wanted {
        assert!(granted.contains(rule), "manifests/rbac.yaml lacks {rule:?}");
    }

    // The chart's default list of extra kinds: those outside the core groups.
    let values = std::fs::read_to_string(repo_root().join("helm/palisade/values.yaml")).unwrap();
    let values: Value = serde_norway::from_str(&values).unwrap();
    let listed: BTreeSet<(String, String)> = values["workloadKinds"]
        .as_array()
        .expect("workloadKinds in the chart's values")
        .iter()
        .flat_map(|k| {
            let group = k["group"].as_str().unwrap().to_owned();
            k["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |r| (group.clone(), r.as_str().unwrap().to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    let dynamic: BTreeSet<(String, String)> = table
        .watched_dynamically()
        .map(|k| (k.group.to_owned(), k.plural.to_owned()))
        .collect();
    assert_eq!(listed, dynamic);
}

#[tokio::test]
async fn a_knative_configuration_owns_its_revisions_and_their_deployments() {
    operator_kubeconfig();
    let client = common::client().await;
    let ns = TestNamespace::create(&client, "kinds-knative").await;
    let _operator = Operator::start(&ns.name);
    let configuration = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
        "metadata": {"name": "hello"},
        "spec": {"template": {"spec": {"containers": [{"image": "nginx:1.27",
            "securityContext": {"privileged": true}}]}}}});
    apply(&ns.name, "configuration", &[configuration]);
    wait_report(&ns.name, "configuration-hello").await;
    let uid_of = |kind: &str, name: &str| {
        kubectl(&[
            "get",
            kind,
            name,
            "-n",
            &ns.name,
            "-o",
            "jsonpath={.metadata.uid}",
        ])
    };
    let owner = |api_version: &str, kind: &str, name: &str, uid: String| {
        json!([{"apiVersion": api_version, "kind": kind, "name": name, "uid": uid,
            "controller": true}])
    };
    // What Knative's controllers would create, by hand: the Revision, owned
    // by the Configuration, then its Deployment, owned by the Revision.
    let revision = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Revision",
        "metadata": {"name": "hello-00001", "ownerReferences": owner(
            "serving.knative.dev/v1", "Configuration", "hello", uid_of("configuration", "hello"))},
        "spec": {"containers": [{"image": "nginx:1.27", "securityContext": {"privileged": true}}]}});
    apply(&ns.name, "revision", &[revision]);
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "hello-00001-deployment", "ownerReferences": owner(
            "serving.knative.dev/v1", "Revision", "hello-00001", uid_of("revision.serving.knative.dev", "hello-00001"))},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "hello"}},
            "template": {"metadata": {"labels": {"app": "hello"}}, "spec": privileged_pod_spec()}}});
    apply(&ns.name, "deployment", &[deployment]);
    // Something evaluated after both: by its report, they were too.
    apply(&ns.name, "later", &[rollout("later")]);
    wait_report(&ns.name, "rollout-later").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let workload_reports: BTreeSet<String> = report_names(&ns.name)
        .into_iter()
        .filter(|name| !name.starts_with("serviceaccount-"))
        .collect();
    assert_eq!(
        workload_reports,
        ["configuration-hello", "rollout-later"]
            .map(str::to_owned)
            .into()
    );
}
