//! The operator against a real API server, running as its own
//! ServiceAccount with the RBAC of `manifests/` (a TokenRequest token).
//!
//! Each test scans only its own namespace (`--namespaces`), so tests share the
//! cluster and run in parallel. Reports are read with an admin client.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use clap::Parser;
use common::{
    OPERATOR_ACCOUNT, TestNamespace, client, create_in, deployment, free_port, kubectl,
    kubectl_output, repo_root, token_kubeconfig, wait_for,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use palisade::crd::{ClusterScanReport, ScanPolicy, ScanReport};
use palisade::operator::{self, OperatorArgs};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const TIMEOUT: Duration = Duration::from_secs(90);
const PRIVILEGED: &str = "privileged-container";
const PRIVILEGED_PATH: &str = "spec.template.spec.containers[name=app].securityContext.privileged";

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: OperatorArgs,
}

/// Installs the CRDs and the operator's ServiceAccount and RBAC from
/// `manifests/`, and returns a kubeconfig that authenticates as that account.
fn operator_kubeconfig() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        common::install_operator_manifests();
        wait_until_allowed();
        token_kubeconfig("palisade-system", "palisade")
    })
}

/// The authorizer reads RBAC from an informer: wait until the operator's
/// bindings are in effect before starting it.
fn wait_until_allowed() {
    common::wait_until_allowed(
        OPERATOR_ACCOUNT,
        &[
            &["list", "pods", "-A"],
            &["watch", "scanreports.palisade.dev", "-A"],
            &["patch", "scanreports.palisade.dev", "-A"],
            &[
                "create",
                "leases.coordination.k8s.io",
                "-n",
                "palisade-system",
            ],
        ],
    );
    assert!(
        !common::can_i(OPERATOR_ACCOUNT, &["list", "secrets", "-A"]),
        "the operator must not read Secrets"
    );
}

/// An operator running in this process as the palisade ServiceAccount.
struct Operator {
    run: Run,
    port: u16,
}

/// How the operator runs: in this process, or as the `palisade operator`
/// binary (stopped with SIGTERM, killed when dropped).
enum Run {
    Task {
        stop: Option<oneshot::Sender<()>>,
        task: Option<JoinHandle<Result<(), operator::Error>>>,
    },
    Process(Option<tokio::process::Child>),
}

impl Operator {
    async fn start(namespace: &str, extra: &[&str]) -> Operator {
        Self::start_as(operator_kubeconfig(), namespace, extra).await
    }

    async fn start_as(kubeconfig: &std::path::Path, namespace: &str, extra: &[&str]) -> Operator {
        let (argv, port) = Self::argv(kubeconfig, namespace, extra);
        let args = Cli::try_parse_from(&argv)
            .expect("operator flags parse")
            .args;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(operator::run_until(args, async move {
            let _ = stopped.await;
        }));
        let run = Run::Task {
            stop: Some(stop),
            task: Some(task),
        };
        Self::healthy(Operator { run, port }).await
    }

    /// Runs the `palisade operator` binary, as its own ServiceAccount.
    async fn spawn_binary(namespace: &str, extra: &[&str]) -> Operator {
        let (argv, port) = Self::argv(operator_kubeconfig(), namespace, extra);
        let logs = repo_root().join("target/e2e-operator");
        std::fs::create_dir_all(&logs).expect("log directory");
        let log = logs.join(format!("{namespace}-{port}.log"));
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
            .arg("operator")
            .args(&argv[1..])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("palisade operator starts");
        Self::healthy(Operator {
            run: Run::Process(Some(child)),
            port,
        })
        .await
    }

    fn argv(kubeconfig: &std::path::Path, namespace: &str, extra: &[&str]) -> (Vec<String>, u16) {
        let port = free_port();
        let mut argv: Vec<String> = [
            "palisade",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--namespaces",
            namespace,
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
            "--policy-name",
            &format!("e2e-{namespace}"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if !extra.contains(&"--resync-interval") {
            argv.extend(["--resync-interval".to_owned(), "1h".to_owned()]);
        }
        argv.extend(extra.iter().map(|s| s.to_string()));
        (argv, port)
    }

    async fn healthy(operator: Operator) -> Operator {
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

    /// Stops gracefully (as on SIGTERM) and checks that the operator ended
    /// without error.
    async fn stop(mut self) {
        match &mut self.run {
            Run::Task { stop, task } => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
                let task = task.take().unwrap();
                let result = tokio::time::timeout(TIMEOUT, task)
                    .await
                    .expect("operator stops in time");
                result
                    .expect("operator task")
                    .expect("operator ends without error");
            }
            Run::Process(child) => {
                let mut child = child.take().unwrap();
                let pid = child.id().expect("running").to_string();
                let sent = std::process::Command::new("kill")
                    .args(["-TERM", &pid])
                    .status()
                    .unwrap();
                assert!(sent.success());
                let status = tokio::time::timeout(TIMEOUT, child.wait())
                    .await
                    .expect("operator exits in time on SIGTERM")
                    .unwrap();
                assert!(
                    status.success(),
                    "operator exit status on SIGTERM: {status}"
                );
            }
        }
    }

    async fn get(&self, path: &str) -> Option<String> {
        common::http_get(self.port, path).await
    }

    /// Sum of a metric's samples whose line contains every one of `filters`.
    async fn metric(&self, name: &str, filters: &[&str]) -> f64 {
        let text = self.get("/metrics").await.expect("metrics answer");
        common::metric_sum(&text, name, filters)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        // A process is killed by `kill_on_drop`.
        if let Run::Task {
            task: Some(task), ..
        } = &self.run
        {
            task.abort();
        }
    }
}

async fn create_deployment(
    client: &Client,
    ns: &str,
    name: &str,
    privileged: bool,
    account: Option<&str>,
) {
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &deployment(name, privileged, account),
        )
        .await
        .unwrap_or_else(|e| panic!("create deployment {name}: {e}"));
}

async fn set_privileged(client: &Client, ns: &str, name: &str, privileged: bool) {
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "securityContext": {"privileged": privileged}}
    ]}}}});
    Api::<Deployment>::namespaced(client.clone(), ns)
        .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap_or_else(|e| panic!("patch deployment {name}: {e}"));
}

fn reports(client: &Client, ns: &str) -> Api<ScanReport> {
    Api::namespaced(client.clone(), ns)
}

/// The report, once `accept` holds for it.
async fn wait_report(
    api: &Api<ScanReport>,
    name: &str,
    what: &str,
    accept: impl Fn(&ScanReport) -> bool,
) -> ScanReport {
    wait_for(&format!("report {name}: {what}"), TIMEOUT, || async {
        let report = api.get_opt(name).await.ok()??;
        accept(&report).then_some(report)
    })
    .await
}

fn has_finding(report: &ScanReport, check: &str, suppressed: bool) -> bool {
    report.status.as_ref().is_some_and(|s| {
        s.findings
            .iter()
            .any(|f| f.check == check && f.suppressed.is_some() == suppressed)
    })
}

fn checks_of(report: &ScanReport) -> BTreeSet<String> {
    report
        .status
        .iter()
        .flat_map(|s| &s.findings)
        .filter(|f| f.suppressed.is_none())
        .map(|f| f.check.clone())
        .collect()
}

async fn resource_versions(api: &Api<ScanReport>) -> BTreeMap<String, String> {
    api.list(&ListParams::default())
        .await
        .expect("list reports")
        .items
        .into_iter()
        .map(|r| (r.name_any(), r.resource_version().unwrap_or_default()))
        .collect()
}

/// Waits until the operator has evaluated everything it queued.
async fn wait_idle(operator: &Operator) {
    wait_for("the operator to go idle", TIMEOUT, || async {
        // Writes (and deletions) stop changing; unchanged evaluations may go
        // on (resyncs, status updates of the Deployments).
        let changes = || async {
            operator
                .metric("palisade_evaluations_total", &["result=\"written\""])
                .await
                + operator
                    .metric("palisade_evaluations_total", &["result=\"deleted\""])
                    .await
        };
        let evaluated = operator.metric("palisade_evaluations_total", &[]).await;
        let before = changes().await;
        tokio::time::sleep(Duration::from_millis(2000)).await;
        let queued = operator.metric("palisade_queue_depth", &[]).await;
        (queued == 0.0 && evaluated > 0.0 && changes().await == before).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_appear_for_sample_objects_with_findings_and_columns() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "op-reports").await;
    let n = ns.name.as_str();
    create_deployment(&client, n, "bad", true, None).await;
    create_deployment(&client, n, "good", false, None).await;
    create_in::<Role>(
        &client,
        n,
        json!({
            "metadata": {"name": "secret-reader"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]
        }),
    )
    .await;

    let operator = Operator::start(n, &[]).await;
    let api = reports(&client, n);
    let bad = wait_report(&api, "deployment-bad", "privileged finding", |r| {
        has_finding(r, PRIVILEGED, false)
    })
    .await;
    let status = bad.status.clone().unwrap();
    let finding = status
        .findings
        .iter()
        .find(|f| f.check == PRIVILEGED)
        .unwrap();
    assert_eq!(finding.path, PRIVILEGED_PATH);
    assert_eq!(finding.severity.as_str(), "critical");
    assert!(finding.first_seen.is_some());
    assert!(status.summary.critical >= 1);
    assert!(status.summary.score < 100);
    assert_eq!(bad.labels()["palisade.dev/worst-severity"], "critical");
    assert_eq!(bad.labels()["palisade.dev/target-kind"], "Deployment");
    assert_eq!(bad.spec.target.name, "bad");
    let compliant = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Compliant")
        .unwrap();
    assert_eq!(compliant.status, "False");
    let owner = &bad.owner_references()[0];
    let deploy = Api::<Deployment>::namespaced(client.clone(), n)
        .get("bad")
        .await
        .unwrap();
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Deployment", "bad")
    );
    assert_eq!(Some(&owner.uid), deploy.metadata.uid.as_ref());
    assert_eq!(
        (owner.controller, owner.block_owner_deletion),
        (Some(true), Some(false))
    );

    let good = wait_report(&api, "deployment-good", "evaluated", |r| r.status.is_some()).await;
    assert!(
        !has_finding(&good, PRIVILEGED, false),
        "the good deployment is not privileged"
    );
    wait_report(&api, "role-secret-reader", "secrets finding", |r| {
        has_finding(r, "rbac-secrets-read", false)
    })
    .await;
    wait_report(&api, "serviceaccount-default", "evaluated", |r| {
        r.status.is_some()
    })
    .await;
    let namespace_report: Api<ClusterScanReport> = Api::all(client.clone());
    wait_for("the Namespace's ClusterScanReport", TIMEOUT, || async {
        namespace_report
            .get_opt(&format!("namespace-{n}"))
            .await
            .ok()?
    })
    .await;

    // ReplicaSets and Pods of the Deployments are reported on the Deployment only.
    wait_for("the ReplicaSets to exist", TIMEOUT, || async {
        let out = kubectl(&["get", "replicasets", "-n", n, "-o", "name"]);
        (out.lines().count() == 2).then_some(())
    })
    .await;
    wait_idle(&operator).await;
    let all = api.list(&ListParams::default()).await.unwrap().items;
    let kinds: BTreeSet<_> = all.iter().map(|r| r.spec.target.kind.clone()).collect();
    assert!(
        !kinds.contains("ReplicaSet") && !kinds.contains("Pod"),
        "{kinds:?}"
    );

    let table = kubectl(&["get", "scanreports", "-n", n]);
    let header: Vec<_> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME", "KIND", "TARGET", "CRITICAL", "HIGH", "MEDIUM", "LOW", "SCORE", "DRIFT", "AGE"
        ]
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("deployment-bad "))
        .expect("row for deployment-bad");
    assert!(row.contains("Deployment") && row.contains(" bad "), "{row}");
    let everywhere = kubectl(&["get", "scanreports", "-A"]);
    assert!(
        everywhere
            .lines()
            .any(|l| l.starts_with(n) && l.contains("deployment-bad"))
    );
    let by_short_name = kubectl(&[
        "get",
        "sr",
        "-n",
        n,
        "-l",
        "palisade.dev/worst-severity=critical",
        "-o",
        "name",
    ]);
    assert!(by_short_name.contains("deployment-bad"), "{by_short_name}");
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixing_and_breaking_a_workload_updates_its_report_and_emits_events() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "op-events").await;
    let n = ns.name.as_str();
    create_deployment(&client, n, "app", true, None).await;
    let operator = Operator::start(n, &[]).await;
    let api = reports(&client, n);
    wait_report(&api, "deployment-app", "privileged", |r| {
        has_finding(r, PRIVILEGED, false)
    })
    .await;

    let events: Api<Event> = Api::namespaced(client.clone(), n);
    let count = |reason: &'static str| {
        let events = events.clone();
        async move {
            events
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .filter(|e| e.reason.as_deref() == Some(reason))
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("app"))
                .filter(|e| e.reporting_controller.as_deref() == Some("palisade"))
                .map(|e| e.series.as_ref().map_or(1, |s| s.count))
                .sum::<i32>()
        }
    };

    set_privileged(&client, n, "app", false).await;
    wait_report(&api, "deployment-app", "fixed", |r| {
        r.status.is_some() && !has_finding(r, PRIVILEGED, false)
    })
    .await;
    wait_for("a FindingResolved event", TIMEOUT, || async {
        (count("FindingResolved").await >= 1).then_some(())
    })
    .await;
    wait_for("a SeverityChanged event", TIMEOUT, || async {
        (count("SeverityChanged").await >= 1).then_some(())
    })
    .await;
    let new_before = count("NewFinding").await;

    set_privileged(&client, n, "app", true).await;
    let broken = wait_report(&api, "deployment-app", "broken again", |r| {
        has_finding(r, PRIVILEGED, false)
    })
    .await;
    assert_eq!(broken.labels()["palisade.dev/worst-severity"], "critical");
    wait_for("another NewFinding event", TIMEOUT, || async {
        (count("NewFinding").await > new_before).then_some(())
    })
    .await;
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_workload_removes_its_report_also_while_the_operator_is_down() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "op-delete").await;
    let n = ns.name.as_str();
    create_deployment(&client, n, "first", false, None).await;
    create_deployment(&client, n, "second", false, None).await;
    let api = reports(&client, n);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), n);

    let operator = Operator::start(n, &[]).await;
    for name in ["deployment-first", "deployment-second"] {
        wait_report(&api, name, "written", |r| r.status.is_some()).await;
    }
    deployments
        .delete("first", &DeleteParams::background())
        .await
        .unwrap();
    wait_for(
        "report of the deleted deployment to go",
        TIMEOUT,
        || async {
            api.get_opt("deployment-first")
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    operator.stop().await;

    // Operator down: the garbage collector follows the ownerReference.
    deployments
        .delete("second", &DeleteParams::background())
        .await
        .unwrap();
    wait_for(
        "garbage collection of the second report",
        TIMEOUT,
        || async {
            api.get_opt("deployment-second")
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;

    // A report whose target vanished without an ownerReference to follow
    // is removed by the next operator's first full resync.
    let ghost = json!({
        "apiVersion": "palisade.dev/v1alpha1",
        "kind": "ScanReport",
        "metadata": {"name": "deployment-ghost", "labels": {"app.kubernetes.io/managed-by": "palisade"}},
        "spec": {"target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ghost"}}
    });
    api.patch(
        "deployment-ghost",
        &PatchParams::apply("e2e"),
        &Patch::Apply(&ghost),
    )
    .await
    .unwrap();
    let operator = Operator::start(n, &[]).await;
    wait_for("the stale report to be removed", TIMEOUT, || async {
        api.get_opt("deployment-ghost")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_binding_granting_secret_access_changes_account_and_workload_reports() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "op-rbac").await;
    let n = ns.name.as_str();
    create_in::<ServiceAccount>(&client, n, json!({"metadata": {"name": "builder"}})).await;
    create_in::<Role>(&client, n, json!({
        "metadata": {"name": "read-secrets"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}]
    })).await;
    create_deployment(&client, n, "builder-app", false, Some("builder")).await;

    let operator = Operator::start(n, &[]).await;
    let api = reports(&client, n);
    wait_report(&api, "serviceaccount-builder", "evaluated", |r| {
        r.status.is_some()
    })
    .await;
    wait_report(&api, "deployment-builder-app", "evaluated", |r| {
        r.status.is_some()
    })
    .await;
    wait_idle(&operator).await;
    let account_before = checks_of(&api.get("serviceaccount-builder").await.unwrap());
    let workload_before = checks_of(&api.get("deployment-builder-app").await.unwrap());

    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "builder-reads-secrets"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-secrets"},
        "subjects": [{"kind": "ServiceAccount", "name": "builder"}]
    }))
    .unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), n);
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let mentions_secrets = |r: &ScanReport| {
        r.status
            .iter()
            .flat_map(|s| &s.findings)
            .any(|f| f.suppressed.is_none() && f.message.contains("secrets"))
    };
    let account_after = wait_report(&api, "serviceaccount-builder", "secret access", |r| {
        checks_of(r) != account_before && mentions_secrets(r)
    })
    .await;
    let workload_after = wait_report(&api, "deployment-builder-app", "secret access", |r| {
        checks_of(r) != workload_before && mentions_secrets(r)
    })
    .await;
    assert!(
        checks_of(&account_after)
            .iter()
            .any(|c| c.starts_with("rbac")),
        "{:?}",
        checks_of(&account_after)
    );
    assert!(checks_of(&workload_after).is_superset(&workload_before));

    bindings
        .delete("builder-reads-secrets", &DeleteParams::default())
        .await
        .unwrap();
    wait_report(&api, "serviceaccount-builder", "reverted", |r| {
        checks_of(r) == account_before
    })
    .await;
    wait_report(&api, "deployment-builder-app", "reverted", |r| {
        checks_of(r) == workload_before
    })
    .await;
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_exception_suppresses_a_finding_until_it_expires() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "op-exception").await;
    let n = ns.name.as_str();
    operator_kubeconfig(); // the ScanPolicy CRD must exist before the policy
    create_deployment(&client, n, "app", true, None).await;
    let policy_name = format!("e2e-{n}");
    // Whole seconds: the API server keeps RFC 3339 times to the second.
    let expires = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + 40).unwrap();
    let policy: ScanPolicy = serde_json::from_value(json!({
        "metadata": {"name": policy_name},
        "spec": {"exceptions": [{
            "name": "accepted-for-now",
            "checks": [PRIVILEGED],
            "namespaces": [n],
            "reason": "vendor agent, replaced next sprint",
            "expires": expires.to_string(),
        }]}
    }))
    .unwrap();
    let policies: Api<ScanPolicy> = Api::all(client.clone());
    policies
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();

    let operator = Operator::start(n, &[]).await;
    let api = reports(&client, n);
    let suppressed = wait_report(&api, "deployment-app", "suppressed", |r| {
        has_finding(r, PRIVILEGED, true)
    })
    .await;
    let finding = suppressed
        .status
        .as_ref()
        .unwrap()
        .findings
        .iter()
        .find(|f| f.check == PRIVILEGED)
        .unwrap();
    let suppression = finding.suppressed.as_ref().unwrap();
    assert_eq!(suppression.source, "policy/accepted-for-now");
    assert_eq!(suppression.reason, "vendor agent, replaced next sprint");
    assert!(suppressed.status.as_ref().unwrap().summary.suppressed >= 1);
    assert!(
        jiff::Timestamp::now() < expires,
        "the report was written before the expiry"
    );

    let back = wait_report(&api, "deployment-app", "finding back after expiry", |r| {
        has_finding(r, PRIVILEGED, false)
    })
    .await;
    assert!(jiff::Timestamp::now() >= expires);
    assert_eq!(back.labels()["palisade.dev/worst-severity"], "critical");

    // The policy's status reports it valid, with the totals.
    wait_for("the ScanPolicy status", TIMEOUT, || async {
        let p = policies.get(&policy_name).await.ok()?;
        let status = p.status?;
        let valid = status
            .conditions
            .iter()
            .any(|c| c.type_ == "Valid" && c.status == "True");
        (valid && status.totals?.reports > 0).then_some(())
    })
    .await;
    operator.stop().await;
    policies
        .delete(&policy_name, &DeleteParams::default())
        .await
        .unwrap();
}

/// Write requests the operator sent for ScanReports (not the namespace's
/// ClusterScanReport): applies, and all.
async fn report_writes(operator: &Operator) -> (f64, f64) {
    let resource = "resource=\"scanreports\"";
    let apply = operator
        .metric("palisade_api_writes_total", &[resource, "verb=\"apply\""])
        .await;
    let all = operator
        .metric("palisade_api_writes_total", &[resource])
        .await;
    (apply, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_or_changed_report_costs_one_write() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "op-one-write").await;
    let n = ns.name.as_str();
    create_deployment(&client, n, "one", true, None).await;
    create_deployment(&client, n, "two", false, None).await;
    let operator = Operator::start(n, &["--resync-interval", "2s"]).await;
    let api = reports(&client, n);
    wait_report(&api, "deployment-one", "written", |r| r.status.is_some()).await;
    wait_report(&api, "deployment-two", "written", |r| r.status.is_some()).await;
    wait_idle(&operator).await;

    let written = api.list(&ListParams::default()).await.unwrap().items;
    let (apply, all) = report_writes(&operator).await;
    assert_eq!(
        (apply, all),
        (written.len() as f64, written.len() as f64),
        "one apply per new report, object and status together: {:?}",
        written
            .iter()
            .map(|r| (r.name_any(), r.metadata.generation))
            .collect::<Vec<_>>()
    );
    for report in &written {
        assert_eq!(report.metadata.generation, Some(1), "{}", report.name_any());
        assert!(
            report
                .status
                .as_ref()
                .is_some_and(|s| s.findings_digest.is_some())
        );
    }

    // Fixed: the findings change, one more write.
    let deployments = Api::<Deployment>::namespaced(client.clone(), n);
    let mut fixed = deployments.get("one").await.unwrap();
    fixed.spec = deployment("one", false, None).spec;
    deployments
        .replace("one", &PostParams::default(), &fixed)
        .await
        .unwrap();
    let report = wait_report(&api, "deployment-one", "fixed", |r| {
        !has_finding(r, PRIVILEGED, false)
    })
    .await;
    wait_idle(&operator).await;
    assert_eq!(report.metadata.generation, Some(2));
    assert_eq!(
        report_writes(&operator).await,
        (apply + 1.0, all + 1.0),
        "one write for the changed report"
    );

    // Idle full resyncs: nothing.
    let resync_before = operator
        .metric("palisade_last_full_resync_timestamp_seconds", &[])
        .await;
    wait_for("two more full resyncs", TIMEOUT, || async {
        let resync = operator
            .metric("palisade_last_full_resync_timestamp_seconds", &[])
            .await;
        (resync >= resync_before + 4.0).then_some(())
    })
    .await;
    assert_eq!(report_writes(&operator).await, (apply + 1.0, all + 1.0));
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_full_resync_writes_nothing() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "op-idle").await;
    let n = ns.name.as_str();
    create_deployment(&client, n, "one", true, None).await;
    create_deployment(&client, n, "two", false, None).await;
    let operator = Operator::start(n, &["--resync-interval", "2s"]).await;
    let api = reports(&client, n);
    wait_report(&api, "deployment-one", "written", |r| r.status.is_some()).await;
    wait_report(&api, "deployment-two", "written", |r| r.status.is_some()).await;
    // Let the controller manager finish with the Deployments (their status
    // churn re-evaluates them, which writes nothing either).
    wait_idle(&operator).await;

    let before = resource_versions(&api).await;
    let writes_before = operator
        .metric("palisade_api_writes_total", &["scanreports"])
        .await;
    let unchanged_before = operator
        .metric("palisade_evaluations_total", &["result=\"unchanged\""])
        .await;
    let resync_before = operator
        .metric("palisade_last_full_resync_timestamp_seconds", &[])
        .await;
    wait_for("three more full resyncs", TIMEOUT, || async {
        let unchanged = operator
            .metric("palisade_evaluations_total", &["result=\"unchanged\""])
            .await;
        let resync = operator
            .metric("palisade_last_full_resync_timestamp_seconds", &[])
            .await;
        (resync >= resync_before + 4.0 && unchanged >= unchanged_before + 3.0 * before.len() as f64)
            .then_some(())
    })
    .await;
    assert_eq!(resource_versions(&api).await, before, "no report changed");
    let writes_after = operator
        .metric("palisade_api_writes_total", &["scanreports"])
        .await;
    assert_eq!(writes_after, writes_before, "no write request was sent");
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_operator_mid_scan_gives_the_same_reports() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "op-restart").await;
    let n = ns.name.as_str();
    for i in 0..6u32 {
        create_deployment(&client, n, &format!("app-{i}"), i.is_multiple_of(2), None).await;
    }
    let api = reports(&client, n);
    let first = Operator::start(n, &["--concurrency", "1"]).await;
    wait_for("a first report", TIMEOUT, || async {
        (!api
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .is_empty())
        .then_some(())
    })
    .await;
    first.stop().await;

    let second = Operator::start(n, &[]).await;
    for i in 0..6 {
        wait_report(&api, &format!("deployment-app-{i}"), "written", |r| {
            r.status.is_some()
        })
        .await;
    }
    wait_idle(&second).await;
    let all = api.list(&ListParams::default()).await.unwrap().items;
    let targets: Vec<_> = all
        .iter()
        .map(|r| (r.spec.target.kind.clone(), r.spec.target.name.clone()))
        .collect();
    let unique: BTreeSet<_> = targets.iter().cloned().collect();
    assert_eq!(
        targets.len(),
        unique.len(),
        "one report per target: {targets:?}"
    );
    let settled = resource_versions(&api).await;
    second.stop().await;

    let third = Operator::start(n, &[]).await;
    wait_idle(&third).await;
    assert_eq!(
        resource_versions(&api).await,
        settled,
        "a restart rewrites nothing"
    );
    assert_eq!(
        third
            .metric("palisade_api_writes_total", &["scanreports"])
            .await,
        0.0
    );
    third.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// Runs the `palisade operator` binary: shutdown is a real SIGTERM, and a
/// dead leader is a killed process.
async fn a_second_replica_stays_passive_until_the_leader_stops() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "op-leader").await;
    let n = ns.name.as_str();
    create_deployment(&client, n, "app", false, None).await;
    let api = reports(&client, n);
    let leases: Api<Lease> = Api::namespaced(client.clone(), "palisade-system");
    let id_a = format!("e2e-a-{}", std::process::id());
    let id_b = format!("e2e-b-{}", std::process::id());
    let flags = |id: &'static str| -> Vec<&'static str> {
        vec![
            "--leader-election",
            "--lease-name",
            "palisade",
            "--lease-namespace",
            "palisade-system",
            "--lease-duration",
            "6s",
            "--identity",
            id,
        ]
    };
    let id_a: &'static str = Box::leak(id_a.into_boxed_str());
    let id_b: &'static str = Box::leak(id_b.into_boxed_str());
    let holder = || async {
        leases
            .get_opt("palisade")
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec?.holder_identity)
    };

    let a = Operator::spawn_binary(n, &flags(id_a)).await;
    wait_for("replica A to lead", TIMEOUT, || async {
        (a.metric("palisade_leader", &[]).await == 1.0).then_some(())
    })
    .await;
    assert_eq!(holder().await.as_deref(), Some(id_a));
    wait_report(&api, "deployment-app", "written by A", |r| {
        r.status.is_some()
    })
    .await;

    let b = Operator::spawn_binary(n, &flags(id_b)).await;
    wait_for("replica B's caches", TIMEOUT, || async {
        b.get("/readyz")
            .await
            .filter(|r| r.contains(" 200 "))
            .map(|_| ())
    })
    .await;
    set_privileged(&client, n, "app", true).await;
    wait_report(&api, "deployment-app", "updated by A", |r| {
        has_finding(r, PRIVILEGED, false)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(b.metric("palisade_leader", &[]).await, 0.0, "B is passive");
    assert_eq!(
        b.metric("palisade_api_writes_total", &[]).await,
        0.0,
        "B wrote nothing"
    );
    assert_eq!(
        b.metric("palisade_evaluations_total", &[]).await,
        0.0,
        "B evaluated nothing"
    );

    a.stop().await;
    wait_for("replica B to take over", TIMEOUT, || async {
        (b.metric("palisade_leader", &[]).await == 1.0).then_some(())
    })
    .await;
    assert_eq!(holder().await.as_deref(), Some(id_b));
    set_privileged(&client, n, "app", false).await;
    wait_report(&api, "deployment-app", "updated by B", |r| {
        r.status.is_some() && !has_finding(r, PRIVILEGED, false)
    })
    .await;
    assert!(
        b.metric("palisade_api_writes_total", &["scanreports"])
            .await
            > 0.0,
        "B writes now"
    );

    // A leader that dies without releasing the Lease: C takes over once the
    // Lease has gone unrenewed for its duration.
    let id_c: &'static str = Box::leak(format!("e2e-c-{}", std::process::id()).into_boxed_str());
    let c = Operator::spawn_binary(n, &flags(id_c)).await;
    wait_for("replica C's caches", TIMEOUT, || async {
        c.get("/readyz")
            .await
            .filter(|r| r.contains(" 200 "))
            .map(|_| ())
    })
    .await;
    assert_eq!(
        c.metric("palisade_leader", &[]).await,
        0.0,
        "C waits while B leads"
    );
    drop(b); // aborted: no graceful release
    wait_for(
        "replica C to take over from the dead leader",
        TIMEOUT,
        || async { (c.metric("palisade_leader", &[]).await == 1.0).then_some(()) },
    )
    .await;
    assert_eq!(holder().await.as_deref(), Some(id_c));
    set_privileged(&client, n, "app", true).await;
    wait_report(&api, "deployment-app", "updated by C", |r| {
        has_finding(r, PRIVILEGED, false)
    })
    .await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_the_operator_may_not_list_makes_reports_not_evaluated() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "op-forbidden").await;
    let n = ns.name.as_str();
    operator_kubeconfig(); // CRDs installed
    // The operator's own ClusterRole from manifests/, less NetworkPolicies.
    let manifests = std::fs::read_to_string(repo_root().join("manifests/rbac.yaml")).unwrap();
    let mut role: Value = serde_norway::Deserializer::from_str(&manifests)
        .map(|doc| Value::deserialize(doc).unwrap())
        .find(|doc| doc["kind"] == "ClusterRole")
        .expect("a ClusterRole in manifests/rbac.yaml");
    let rules = role["rules"].as_array_mut().unwrap();
    rules.retain(|r| {
        !r["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "networkpolicies")
    });
    let role_name = format!("e2e-limited-{n}");
    role["metadata"] = json!({"name": role_name});
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": role_name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": "limited", "namespace": n}]
    });
    let account = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "limited", "namespace": n}});
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("limited.yaml");
    let docs: Vec<String> = [account, role, binding]
        .iter()
        .map(|d| serde_norway::to_string(d).unwrap())
        .collect();
    std::fs::write(&file, docs.join("---\n")).unwrap();
    kubectl(&["apply", "-f", file.to_str().unwrap()]);
    let user = format!("system:serviceaccount:{n}:limited");
    wait_for("the limited role to take effect", TIMEOUT, || async {
        let out = kubectl_output(&[
            "auth",
            "can-i",
            "watch",
            "scanreports.palisade.dev",
            "-n",
            n,
            "--as",
            &user,
        ]);
        (String::from_utf8_lossy(&out.stdout).trim() == "yes").then_some(())
    })
    .await;
    create_deployment(&client, n, "app", false, None).await;

    let kubeconfig = token_kubeconfig(n, "limited");
    let operator = Operator::start_as(&kubeconfig, n, &[]).await;
    wait_for("readiness despite the refused watch", TIMEOUT, || async {
        operator
            .get("/readyz")
            .await
            .filter(|r| r.contains(" 200 "))
            .map(|_| ())
    })
    .await;
    let api = reports(&client, n);
    let report = wait_report(&api, "deployment-app", "not evaluated", |r| {
        r.status
            .iter()
            .flat_map(|s| &s.conditions)
            .any(|c| c.type_ == "Compliant" && c.status == "Unknown")
    })
    .await;
    let condition = report
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Compliant")
        .unwrap();
    assert_eq!(condition.reason, "NotEvaluated");
    assert!(
        condition.message.contains("networkpolicies"),
        "{}",
        condition.message
    );
    assert!(
        operator
            .metric("palisade_watch_restarts_total", &["networkpolicies"])
            .await
            >= 1.0
    );
    operator.stop().await;
    kubectl(&[
        "delete",
        "clusterrole,clusterrolebinding",
        &role_name,
        "--ignore-not-found",
    ]);
}

/// The operator and `palisade scan` give the same findings for the same
/// objects (as stored by the API server, defaults included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_and_the_cli_agree_on_the_same_objects() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "op-cli").await;
    let n = ns.name.as_str();
    create_in::<ServiceAccount>(&client, n, json!({"metadata": {"name": "builder"}})).await;
    create_in::<Role>(&client, n, json!({
        "metadata": {"name": "read-secrets"},
        "rules": [{"apiGroups": [""], "resources": ["secrets", "pods/exec"], "verbs": ["get", "list", "create"]}]
    })).await;
    create_in::<RoleBinding>(&client, n, json!({
        "metadata": {"name": "builder-reads-secrets"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-secrets"},
        "subjects": [{"kind": "ServiceAccount", "name": "builder"}]
    })).await;
    create_deployment(&client, n, "bad", true, Some("builder")).await;
    create_deployment(&client, n, "good", false, None).await;

    let operator = Operator::start(n, &[]).await;
    let api = reports(&client, n);
    for name in [
        "deployment-bad",
        "deployment-good",
        "serviceaccount-builder",
        "role-read-secrets",
    ] {
        wait_report(&api, name, "written", |r| r.status.is_some()).await;
    }
    wait_idle(&operator).await;
    operator.stop().await;

    // The same objects, read back from the API server, scanned by the CLI.
    let dir = tempfile::tempdir().unwrap();
    let dumps: [(&str, Vec<&str>); 3] = [
        (
            "namespaced.json",
            vec![
                "get",
                "deployments,serviceaccounts,roles,rolebindings,networkpolicies",
                "-n",
                n,
                "-o",
                "json",
            ],
        ),
        ("namespace.json", vec!["get", "namespace", n, "-o", "json"]),
        (
            "cluster.json",
            vec!["get", "clusterroles,clusterrolebindings", "-o", "json"],
        ),
    ];
    for (file, args) in dumps {
        std::fs::write(dir.path().join(file), kubectl(&args)).unwrap();
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["scan", "-o", "json"])
        .arg(dir.path())
        .output()
        .expect("palisade scan runs");
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "palisade scan failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let scan: Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    type Key = (String, String, String, String, Option<String>, bool);
    let mut from_cli: BTreeMap<(String, String), BTreeSet<Key>> = BTreeMap::new();
    for f in scan["findings"].as_array().unwrap() {
        let object = &f["object"];
        if object["namespace"].as_str() != Some(n) {
            continue;
        }
        let target = (
            object["kind"].as_str().unwrap().to_owned(),
            object["name"].as_str().unwrap().to_owned(),
        );
        from_cli.entry(target).or_default().insert((
            f["check"].as_str().unwrap().to_owned(),
            f["severity"].as_str().unwrap().to_owned(),
            f["message"].as_str().unwrap().to_owned(),
            f["path"].as_str().unwrap().to_owned(),
            f["container"].as_str().map(str::to_owned),
            !f["suppressed"].is_null(),
        ));
    }
    let all = api.list(&ListParams::default()).await.unwrap().items;
    let mut compared = 0;
    for report in &all {
        let status = report.status.as_ref().unwrap();
        assert!(!status.truncated);
        let from_operator: BTreeSet<Key> = status
            .findings
            .iter()
            .map(|f| {
                (
                    f.check.clone(),
                    f.severity.as_str().to_owned(),
                    f.message.clone(),
                    f.path.clone(),
                    f.container.clone(),
                    f.suppressed.is_some(),
                )
            })
            .collect();
        let target = (
            report.spec.target.kind.clone(),
            report.spec.target.name.clone(),
        );
        let cli = from_cli.remove(&target).unwrap_or_default();
        assert_eq!(
            from_operator, cli,
            "findings of {target:?} differ between the operator and the CLI"
        );
        compared += from_operator.len();
    }
    assert!(
        from_cli.is_empty(),
        "the CLI found objects without a report: {:?}",
        from_cli.keys()
    );
    assert!(compared >= 5, "compared only {compared} findings");
}

/// The namespaced samples of `examples/` (what `make demo` applies), in a
/// test namespace: every one gets a report with the findings it exists for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_get_the_reports_they_are_written_for() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "op-examples").await;
    let n = ns.name.as_str();
    let dir = tempfile::tempdir().unwrap();
    let mut docs = Vec::new();
    for file in [
        "10-rbac.yaml",
        "20-good-workload.yaml",
        "30-bad-workloads.yaml",
    ] {
        let text = std::fs::read_to_string(repo_root().join("examples").join(file))
            .unwrap()
            .replace("palisade-demo", n);
        for doc in serde_norway::Deserializer::from_str(&text) {
            let doc = Value::deserialize(doc).unwrap();
            if doc.is_null() || doc["metadata"]["namespace"].is_null() {
                continue; // cluster-scoped: outside this test's namespace
            }
            docs.push(serde_norway::to_string(&doc).unwrap());
        }
    }
    let file = dir.path().join("examples.yaml");
    std::fs::write(&file, docs.join("---\n")).unwrap();
    kubectl(&["apply", "-f", file.to_str().unwrap()]);

    let operator = Operator::start(n, &[]).await;
    let api = reports(&client, n);
    let expected: &[(&str, &[&str])] = &[
        (
            "deployment-legacy-agent",
            &[PRIVILEGED, "host-network", "host-pid"],
        ),
        (
            "cronjob-node-backup",
            &["host-path-volume", "privileged-container-sys-admin"],
        ),
        ("pod-debug-shell", &["bare-pod"]),
        ("role-secret-reader", &["rbac-secrets-read"]),
        ("serviceaccount-ci-bot", &[]),
        ("serviceaccount-web", &[]),
        ("rolebinding-ci-bot-reads-secrets", &[]),
        ("deployment-web", &[]),
    ];
    for (name, checks) in expected {
        let report = wait_report(&api, name, "its findings", |r| {
            let found = checks_of(r);
            r.status.is_some() && checks.iter().all(|c| found.contains(*c))
        })
        .await;
        assert!(report.status.is_some(), "{name}");
    }
    let ci_bot = api.get("serviceaccount-ci-bot").await.unwrap();
    assert!(
        checks_of(&ci_bot).iter().any(|c| c.starts_with("rbac")),
        "ci-bot reads secrets: {:?}",
        checks_of(&ci_bot)
    );
    let web = api
        .get("deployment-web")
        .await
        .unwrap()
        .status
        .unwrap()
        .summary;
    assert_eq!(
        (web.critical, web.high),
        (0, 0),
        "the good example has nothing serious: {web:?}"
    );
    operator.stop().await;
}
