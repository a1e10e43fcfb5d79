//! Namespace posture against the reference: the API server's PodSecurity
//! admission. Generated namespaces of generated Pods are created in the
//! test cluster; for each, the level Palisade says is met must be exactly
//! the highest level for which a server-side dry run of the label change
//! (`kubectl label --dry-run=server --overwrite ns X
//! pod-security.kubernetes.io/enforce=L`) warns about no existing pod.
//!
//! The level is read three ways: from `palisade scan --output json` on the
//! generated manifests (what CI sees before deploying), from the pure
//! posture of the Pods as the API server stored them, and from the
//! ClusterScanReport the operator writes for each namespace.
//!
//! The generator is seeded (`PALISADE_TEST_SEED`; the seed is printed).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use common::{Rng, TestNamespace, client, kubectl, kubectl_output, repo_root, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use palisade::crd::ClusterScanReport;
use palisade::crd::cluster_scan_report::{NamespacePosture, PodSecurityLevel};
use palisade::engine::{Context, evaluate};
use palisade::model::{Inventory, Resource};
use palisade::operator::{self, OperatorArgs};
use palisade::policy::Policy;
use serde_json::{Value, json};
use tokio::sync::oneshot;

const NAMESPACES: usize = 15;
const MAX_PODS_PER_NAMESPACE: usize = 5;
const TIMEOUT: Duration = Duration::from_secs(90);

// ------------------------------------------------------------- generator

/// A container context that meets the restricted profile.
fn hardened_context() -> Value {
    json!({"allowPrivilegeEscalation": false, "runAsNonRoot": true,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}})
}

/// One change that breaks (or, for some, keeps) a level: near misses of
/// both levels, so that namespaces land on every level.
fn mutate(rng: &mut Rng, pod: &mut Value) {
    let container = &mut pod["spec"]["containers"][0];
    match rng.below(14) {
        0 => container["securityContext"]["privileged"] = json!(true),
        1 => container["securityContext"]["allowPrivilegeEscalation"] = json!(true),
        2 => container["securityContext"]["runAsNonRoot"] = json!(false),
        3 => container["securityContext"]["runAsUser"] = json!(*rng.pick(&[0, 1000])),
        4 => {
            container["securityContext"]["capabilities"]["add"] =
                json!([rng.pick(&["NET_BIND_SERVICE", "CHOWN", "SYS_ADMIN", "NET_RAW"])])
        }
        5 => {
            container["securityContext"]["capabilities"]["drop"] =
                json!([rng.pick(&["NET_RAW", "all"])])
        }
        6 => {
            container["securityContext"]["seccompProfile"] =
                json!({"type": rng.pick(&["Unconfined", "RuntimeDefault"])})
        }
        7 => pod["spec"][*rng.pick(&["hostNetwork", "hostPID", "hostIPC"])] = json!(true),
        8 => pod["spec"]["volumes"] = json!([{"name": "v", "hostPath": {"path": "/var/log"}}]),
        9 => {
            pod["spec"]["volumes"] = if rng.chance(50) {
                json!([{"name": "v", "emptyDir": {}}])
            } else {
                json!([{"name": "v", "nfs": {"server": "nfs.example", "path": "/x"}}])
            }
        }
        10 => {
            container["ports"] = json!([{"containerPort": 8080, "hostPort": *rng.pick(&[0, 8080])}])
        }
        11 => {
            pod["spec"]["securityContext"] = json!({"sysctls": [{"name": rng.pick(&["kernel.shm_rmid_forced", "net.core.somaxconn"]), "value": "1"}]})
        }
        12 => {
            container["securityContext"]["seLinuxOptions"] =
                json!({"type": rng.pick(&["container_t", "spc_t"])})
        }
        _ => {
            container["securityContext"] = json!({});
        }
    }
}

/// A valid Pod: hardened, then changed a few times (none for about a third).
fn pod(rng: &mut Rng, namespace: &str, index: usize, changes: usize) -> Value {
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": format!("p{index}"), "namespace": namespace},
        "spec": {"containers": [{
            "name": "app",
            "image": "registry.k8s.io/pause:3.10",
            "securityContext": hardened_context(),
        }]},
    });
    for change in 0..changes {
        // The first change of most pods keeps them within baseline, so
        // that namespaces of every level are common.
        if change == 0 && rng.chance(70) {
            relax(rng, &mut pod);
        } else {
            mutate(rng, &mut pod);
        }
    }
    pod
}

/// A change that breaks restricted only (or nothing).
fn relax(rng: &mut Rng, pod: &mut Value) {
    let context = &mut pod["spec"]["containers"][0]["securityContext"];
    match rng.below(6) {
        0 => context["allowPrivilegeEscalation"] = json!(true),
        1 => context["runAsNonRoot"] = json!(false),
        2 => context["capabilities"] = json!({"add": [rng.pick(&["CHOWN", "NET_BIND_SERVICE"])]}),
        3 => context["seccompProfile"] = json!({"type": "Localhost", "localhostProfile": "p.json"}),
        4 => {
            pod["spec"]["volumes"] =
                json!([{"name": "v", "nfs": {"server": "nfs.example", "path": "/x"}}])
        }
        _ => *context = json!({}),
    }
}

/// Optional audit and warn labels (they never reject a pod).
fn mode_labels(rng: &mut Rng) -> Vec<(&'static str, &'static str)> {
    let mut labels = Vec::new();
    if rng.chance(30) {
        labels.push((
            "pod-security.kubernetes.io/audit",
            *rng.pick(&["baseline", "restricted"]),
        ));
    }
    if rng.chance(30) {
        labels.push((
            "pod-security.kubernetes.io/warn",
            *rng.pick(&["baseline", "restricted"]),
        ));
    }
    labels
}

/// A one-replica Deployment whose template is `pod`'s.
fn deployment(pod: &Value) -> Value {
    let name = format!("d{}", pod["metadata"]["name"].as_str().unwrap());
    let labels = json!({"app": name, "posture-e2e": "deployment"});
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": pod["metadata"]["namespace"]},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod["spec"]},
        },
    })
}

/// Creates a generated Pod or Deployment.
async fn create(client: &Client, namespace: &str, object: &Value) -> Result<(), kube::Error> {
    let params = PostParams::default();
    if object["kind"] == "Deployment" {
        let typed: Deployment = serde_json::from_value(object.clone()).expect("a Deployment");
        Api::<Deployment>::namespaced(client.clone(), namespace)
            .create(&params, &typed)
            .await
            .map(drop)
    } else {
        let typed: Pod = serde_json::from_value(object.clone()).expect("a Pod");
        Api::<Pod>::namespaced(client.clone(), namespace)
            .create(&params, &typed)
            .await
            .map(drop)
    }
}

// ------------------------------------------------------------- verdicts

/// The highest level whose enforcement the admission accepts without a
/// warning about an existing pod, by server-side dry runs of the label.
fn admission_level(namespace: &str) -> PodSecurityLevel {
    let mut met = PodSecurityLevel::Privileged;
    for level in [PodSecurityLevel::Baseline, PodSecurityLevel::Restricted] {
        let label = format!("pod-security.kubernetes.io/enforce={level}");
        let output = kubectl_output(&[
            "label",
            "--dry-run=server",
            "--overwrite",
            "namespace",
            namespace,
            &label,
        ]);
        assert!(
            output.status.success(),
            "kubectl label {namespace} {label}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let warnings = String::from_utf8_lossy(&output.stderr);
        if warnings.contains("existing pods in namespace") {
            break;
        }
        assert!(
            !warnings.contains("Warning"),
            "unexpected warning labelling {namespace}: {warnings}"
        );
        met = level;
    }
    met
}

/// `palisade scan --output json` on `file`: the level met per namespace.
fn scan_levels(file: &std::path::Path) -> BTreeMap<String, PodSecurityLevel> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["scan", "--output", "json"])
        .arg(file)
        .output()
        .expect("palisade scan runs");
    // 1: findings at or above the default threshold; 0: none.
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "palisade scan: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    report["namespaces"]
        .as_array()
        .expect("namespaces in the report")
        .iter()
        .map(|n| {
            let level: PodSecurityLevel =
                serde_json::from_value(n["levelMet"].clone()).expect("a level");
            (n["namespace"].as_str().unwrap().to_owned(), level)
        })
        .collect()
}

/// The posture of the namespace's Pods as the API server stored them.
async fn stored_posture(client: &Client, namespace: &str) -> NamespacePosture {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("list pods");
    let ns = Api::<Namespace>::all(client.clone())
        .get(namespace)
        .await
        .expect("get namespace");
    let mut resources = vec![Resource::Namespace(ns)];
    for pod in pods.items {
        let value = serde_json::to_value(pod).unwrap();
        resources.push(Resource::decode("v1", "Pod", value).unwrap().unwrap());
    }
    let inventory = Inventory::from_resources(&resources);
    let policy = Policy::default();
    let catalog = palisade::checks::catalog();
    let findings = evaluate(&inventory, catalog, &policy);
    let cx = Context::new(&inventory);
    palisade::posture::namespace_posture(namespace, &cx, &findings, catalog, &policy)
}

// ------------------------------------------------------------- operator

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: OperatorArgs,
}

/// The operator, in this process, as its own ServiceAccount, scanning
/// `namespaces`; stopped when the sender is dropped.
fn start_operator(namespaces: &[String]) -> oneshot::Sender<()> {
    common::install_operator_manifests();
    common::wait_until_allowed(
        common::OPERATOR_ACCOUNT,
        &[
            &["list", "pods", "-A"],
            &["patch", "clusterscanreports.palisade.dev"],
        ],
    );
    let kubeconfig = common::token_kubeconfig("palisade-system", "palisade");
    let port = common::free_port().to_string();
    let argv = [
        "palisade",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--namespaces",
        &namespaces.join(","),
        "--metrics-addr",
        &format!("127.0.0.1:{port}"),
        "--policy-name",
        &format!("e2e-posture-{}", std::process::id()),
        "--resync-interval",
        "1h",
    ];
    let args = Cli::try_parse_from(argv)
        .expect("operator flags parse")
        .args;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(operator::run_until(args, async move {
        let _ = stopped.await;
    }));
    stop
}

/// The posture in the namespace's ClusterScanReport once it satisfies `ready`.
async fn report_posture(
    client: &Client,
    namespace: &str,
    ready: impl Fn(&NamespacePosture) -> bool,
) -> NamespacePosture {
    let api: Api<ClusterScanReport> = Api::all(client.clone());
    let name = format!("namespace-{namespace}");
    wait_for(
        &format!("the posture of {namespace} in its ClusterScanReport"),
        TIMEOUT,
        || async {
            let report = api.get_opt(&name).await.ok()??;
            report.status?.posture.filter(|p| ready(p))
        },
    )
    .await
}

// ------------------------------------------------------------- tests

#[tokio::test]
async fn the_level_met_is_the_highest_level_admission_accepts() {
    let seed = common::Rng::seed_from_env(0xB05_7E11);
    let mut rng = Rng::new(seed);
    let client = client().await;
    let mut namespaces = Vec::new();
    let mut manifests = String::new();
    let (mut pods, mut deployments, mut invalid) = (0, 0, 0);
    for n in 0..NAMESPACES {
        let labels = mode_labels(&mut rng);
        let ns = TestNamespace::create_with_labels(&client, "posture", &labels).await;
        let namespace_object: Value = serde_json::to_value(
            Api::<Namespace>::all(client.clone())
                .get(&ns.name)
                .await
                .unwrap(),
        )
        .unwrap();
        manifests.push_str(
            &serde_json::to_string(&json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns.name, "labels": namespace_object["metadata"]["labels"]},
            }))
            .unwrap(),
        );
        manifests.push('\n');
        // Namespaces lean to one level each, so that every level is seen.
        // 0: restricted-leaning, 1: baseline-leaning, 2: anything.
        let changes = n % 3;
        for index in 0..1 + rng.below(MAX_PODS_PER_NAMESPACE) {
            let extra = usize::from(rng.chance(25));
            let pod = pod(&mut rng, &ns.name, index, changes + extra);
            // Some run under a Deployment: the operator judges its template,
            // the admission the Pod the controllers make from it.
            let object = if rng.chance(25) {
                deployment(&pod)
            } else {
                pod
            };
            match create(&client, &ns.name, &object).await {
                Ok(()) => {
                    pods += 1;
                    deployments += usize::from(object["kind"] == "Deployment");
                    manifests.push_str(&serde_json::to_string(&object).unwrap());
                    manifests.push('\n');
                }
                // Refused by validation (not by PodSecurity: nothing is enforced).
                Err(kube::Error::Api(status)) if status.code == 422 => invalid += 1,
                Err(e) => panic!("creating {object}: {e}"),
            }
        }
        namespaces.push(ns);
    }
    let dir = repo_root().join("target/e2e-posture");
    std::fs::create_dir_all(&dir).unwrap();
    let file: PathBuf = dir.join(format!("posture-{seed}.jsonl"));
    std::fs::write(&file, &manifests).unwrap();

    let names: Vec<String> = namespaces.iter().map(|ns| ns.name.clone()).collect();
    wait_for("the Deployments' Pods", TIMEOUT, || async {
        let listed = Api::<Pod>::all(client.clone())
            .list(&ListParams::default().labels("posture-e2e=deployment"))
            .await
            .ok()?;
        let running = listed
            .items
            .iter()
            .filter(|p| names.contains(p.metadata.namespace.as_ref().unwrap()))
            .count();
        (running >= deployments).then_some(())
    })
    .await;
    let _operator = start_operator(&names);
    let scanned = scan_levels(&file);
    let mut disagreements = Vec::new();
    let mut by_level: BTreeMap<PodSecurityLevel, usize> = BTreeMap::new();
    let mut agreements = 0;
    for ns in &names {
        let admission = admission_level(ns);
        *by_level.entry(admission).or_default() += 1;
        let stored = stored_posture(&client, ns).await;
        let reported = report_posture(&client, ns, |p| p.workloads == stored.workloads).await;
        let views = [
            ("palisade scan", scanned.get(ns).copied()),
            ("stored pods", Some(stored.level_met)),
            ("operator", Some(reported.level_met)),
        ];
        for (view, level) in views {
            if level == Some(admission) {
                agreements += 1;
            } else {
                disagreements.push(format!(
                    "{ns}: admission accepts up to {admission}, {view} says {level:?}; blocking: {:?}",
                    stored.blocking
                ));
            }
        }
    }
    eprintln!(
        "posture vs admission: seed {seed}, {} namespaces, {pods} pods ({deployments} of them \
         from Deployments, {invalid} invalid skipped), {agreements} of {} verdicts agree; \
         admission levels {by_level:?}",
        names.len(),
        names.len() * 3
    );
    assert!(
        disagreements.is_empty(),
        "seed {seed}: {} disagreements (manifests in {}):\n{}",
        disagreements.len(),
        file.display(),
        disagreements.join("\n")
    );
    assert!(pods >= NAMESPACES, "too few pods created: {pods}");
    assert!(
        by_level.len() >= 2,
        "seed {seed}: the generator gave one level only: {by_level:?}"
    );
}

/// The operator's posture follows the namespace's workloads and labels:
/// adding a privileged Pod lowers the level met, labelling the namespace
/// above it warns, and the printer columns show both.
#[tokio::test]
async fn the_operator_keeps_a_namespace_posture_current() {
    let client = client().await;
    let labels = [("pod-security.kubernetes.io/warn", "restricted")];
    let ns = TestNamespace::create_with_labels(&client, "posture-operator", &labels).await;
    let _operator = start_operator(std::slice::from_ref(&ns.name));
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let create = |pod: Value| {
        let api = api.clone();
        async move {
            let pod: Pod = serde_json::from_value(pod).unwrap();
            api.create(&PostParams::default(), &pod)
                .await
                .expect("pod created");
        }
    };
    let mut rng = Rng::new(1);
    create(pod(&mut rng, &ns.name, 0, 0)).await;
    let posture = report_posture(&client, &ns.name, |p| p.workloads == 1).await;
    assert_eq!(posture.level_met, PodSecurityLevel::Restricted);
    assert_eq!(posture.warn.level, "restricted");
    let reasons: Vec<&str> = posture.warnings.iter().map(|w| w.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["EnforceBelowLevelMet"],
        "unlabelled enforce is privileged"
    );

    let mut privileged = pod(&mut rng, &ns.name, 1, 0);
    privileged["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    create(privileged).await;
    let posture = report_posture(&client, &ns.name, |p| p.workloads == 2).await;
    assert_eq!(posture.level_met, PodSecurityLevel::Privileged);
    assert_eq!(posture.next_level, Some(PodSecurityLevel::Baseline));
    assert_eq!(posture.blocking.len(), 1);
    assert_eq!(posture.blocking[0].name, "p1");
    assert_eq!(posture.blocking[0].failing, ["privileged-container"]);

    // Enforcing baseline now (the API server warns, but applies it) leaves
    // the namespace above what its workloads meet.
    kubectl(&[
        "label",
        "--overwrite",
        "namespace",
        &ns.name,
        "pod-security.kubernetes.io/enforce=baseline",
    ]);
    let posture = report_posture(&client, &ns.name, |p| p.enforce.labelled).await;
    let reasons: Vec<&str> = posture.warnings.iter().map(|w| w.reason.as_str()).collect();
    assert_eq!(reasons, ["EnforceAboveLevelMet"]);
    assert!(posture.warnings[0].message.contains("Pod/p1"));
    let row = kubectl(&[
        "get",
        "clusterscanreport",
        &format!("namespace-{}", ns.name),
        "--no-headers",
        "-o",
        "custom-columns=PSS:.status.posture.levelMet,ENFORCED:.status.posture.enforce.level",
    ]);
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["privileged", "baseline"]
    );
    let table = kubectl(&[
        "get",
        "clusterscanreport",
        &format!("namespace-{}", ns.name),
    ]);
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.contains("PSS") && header.contains("ENFORCED"),
        "printer columns: {table}"
    );
}
