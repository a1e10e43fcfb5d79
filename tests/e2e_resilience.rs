//! The operator against an API server that misbehaves: frozen (SIGSTOP),
//! restarted mid-scan, and reports edited behind its back.
//!
//! Tests that freeze or restart the API server get a cluster of their own
//! (a state directory under `target/`), stopped when the test ends, pass or
//! fail; the others share the suite's cluster. The operator runs as the
//! `palisade operator` binary, as its own ServiceAccount with the RBAC of
//! `manifests/`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use common::{OPERATOR_ACCOUNT, deployment, free_port, http_get, metric_sum, repo_root, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use palisade::crd::ScanReport;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(120);
const PRIVILEGED: &str = "privileged-container";
/// How long the API server stays frozen: longer than the 15 s Lease.
const FREEZE: Duration = Duration::from_secs(35);

// ------------------------------------------------------------- clusters

/// A test cluster: the suite's shared one, or one of this test's own
/// (stopped and removed when dropped, thawed first if frozen).
struct Cluster {
    kubeconfig: PathBuf,
    /// State directory of a cluster of this test's own.
    own: Option<PathBuf>,
}

impl Cluster {
    fn shared() -> Cluster {
        Cluster {
            kubeconfig: common::kubeconfig().to_path_buf(),
            own: None,
        }
    }

    /// Starts a cluster in `target/<name>` (fresh: anything left there by an
    /// earlier run is removed first).
    fn own(name: &str) -> Cluster {
        let dir = repo_root().join("target").join(name);
        script("down", &dir);
        let kubeconfig = PathBuf::from(script("up", &dir).lines().last().unwrap_or_default());
        Cluster {
            kubeconfig,
            own: Some(dir),
        }
    }

    fn dir(&self) -> &Path {
        self.own.as_deref().expect("a cluster of this test's own")
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let output = self.kubectl_output(args);
        assert!(
            output.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn kubectl_output(&self, args: &[&str]) -> std::process::Output {
        Command::new(common::kubectl_path())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    async fn client(&self) -> Client {
        client_for(&self.kubeconfig).await
    }

    /// The pid of the test-cluster process.
    fn pid(&self) -> String {
        std::fs::read_to_string(self.dir().join("pid"))
            .expect("the cluster's pid file")
            .trim()
            .to_owned()
    }

    /// Stops the API server (SIGSTOP) until the guard is dropped.
    fn freeze(&self) -> Frozen {
        let pid = self.pid();
        signal("STOP", &pid);
        Frozen { pid }
    }

    /// Stops the API server and starts it again on the same data (and port).
    fn restart(&self) {
        script("stop", self.dir());
        let kubeconfig = PathBuf::from(script("up", self.dir()).lines().last().unwrap_or_default());
        assert_eq!(kubeconfig, self.kubeconfig);
    }

    /// Installs the CRDs and the operator's account and RBAC from
    /// `manifests/`; returns a kubeconfig that authenticates as that account.
    fn install_operator(&self, tag: &str) -> PathBuf {
        for file in [
            "crds/palisade.yaml",
            "manifests/namespace.yaml",
            "manifests/rbac.yaml",
        ] {
            let path = repo_root().join(file);
            self.kubectl(&[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=e2e",
                "-f",
                path.to_str().unwrap(),
            ]);
        }
        let mut wait = vec!["wait", "--for=condition=established", "--timeout=60s"];
        let crds: Vec<String> = common::PALISADE_CRDS
            .iter()
            .map(|c| format!("crd/{c}"))
            .collect();
        wait.extend(crds.iter().map(String::as_str));
        self.kubectl(&wait);
        for check in [
            &["list", "pods", "-A"][..],
            &["patch", "scanreports.palisade.dev", "-A"],
            &[
                "update",
                "leases.coordination.k8s.io/palisade",
                "-n",
                "palisade-system",
            ],
        ] {
            let mut args = vec!["auth", "can-i"];
            args.extend_from_slice(check);
            args.extend_from_slice(&["--as", OPERATOR_ACCOUNT]);
            let deadline = std::time::Instant::now() + TIMEOUT;
            while String::from_utf8_lossy(&self.kubectl_output(&args).stdout).trim() != "yes" {
                assert!(std::time::Instant::now() < deadline, "RBAC {check:?}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        let token = self.kubectl(&[
            "create",
            "token",
            "palisade",
            "-n",
            "palisade-system",
            "--duration=2h",
        ]);
        let admin = std::fs::read_to_string(&self.kubeconfig).expect("admin kubeconfig");
        let mut config: serde_json::Value = serde_norway::from_str(&admin).expect("YAML");
        for user in config["users"].as_array_mut().expect("users") {
            user["user"] = json!({"token": token.trim()});
        }
        let dir = repo_root().join("target/e2e-kubeconfigs");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("resilience-{}-{tag}", std::process::id()));
        std::fs::write(&path, serde_norway::to_string(&config).unwrap()).unwrap();
        path
    }

    async fn namespace(&self, client: &Client, test: &str) -> String {
        let name = format!("e2e-{test}-{}", std::process::id() % 100_000);
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(common::TEST_LABEL.to_owned(), "true".to_owned())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|e| panic!("namespace {name}: {e}"));
        name
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(dir) = &self.own {
            // A frozen process would not stop on SIGTERM.
            if let Ok(pid) = std::fs::read_to_string(dir.join("pid")) {
                let _ = Command::new("kill").args(["-CONT", pid.trim()]).status();
            }
            script("down", dir);
        }
    }
}

/// A frozen API server, thawed (SIGCONT) when dropped, also on panic.
struct Frozen {
    pid: String,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal("CONT", &self.pid);
    }
}

fn signal(name: &str, pid: &str) {
    let sent = Command::new("kill")
        .args([format!("-{name}"), pid.to_owned()])
        .status()
        .expect("kill runs");
    assert!(
        sent.success() || std::thread::panicking(),
        "kill -{name} {pid}"
    );
}

fn script(command: &str, dir: &Path) -> String {
    let output = Command::new("bash")
        .arg(repo_root().join("scripts/test-cluster.sh"))
        .arg(command)
        .arg(dir)
        .output()
        .expect("test-cluster.sh runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() && !std::thread::panicking() {
        panic!(
            "test-cluster.sh {command} {}: {}\n{stdout}\n{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout
}

async fn client_for(path: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("usable kubeconfig");
    Client::try_from(config).expect("client")
}

// ------------------------------------------------------------ operators

/// The `palisade operator` binary, killed when dropped.
struct Operator {
    child: tokio::process::Child,
    port: u16,
    log: PathBuf,
}

impl Operator {
    async fn spawn(kubeconfig: &Path, namespace: &str, tag: &str, extra: &[&str]) -> Operator {
        let port = free_port();
        let logs = repo_root().join("target/e2e-operator");
        std::fs::create_dir_all(&logs).unwrap();
        let log = logs.join(format!("resilience-{namespace}-{tag}.log"));
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
            .arg("operator")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--namespaces", namespace])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .args(["--policy-name", &format!("e2e-{namespace}")])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("palisade operator starts");
        let operator = Operator { child, port, log };
        wait_for("the operator's /healthz", TIMEOUT, || async {
            operator.get("/healthz").await.map(|_| ())
        })
        .await;
        operator
    }

    async fn get(&self, path: &str) -> Option<String> {
        http_get(self.port, path)
            .await
            .filter(|r| r.contains(" 200 "))
    }

    /// Sum of a metric's samples whose line contains every one of `filters`.
    async fn metric(&self, name: &str, filters: &[&str]) -> f64 {
        let text = self.get("/metrics").await.expect("metrics answer");
        metric_sum(&text, name, filters)
    }

    async fn leading(&self) -> bool {
        self.metric("palisade_leader", &[]).await == 1.0
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("process state")
    }

    /// SIGTERM, and the exit status.
    async fn stop(mut self) -> ExitStatus {
        if let Some(status) = self.exited() {
            return status;
        }
        signal("TERM", &self.child.id().expect("running").to_string());
        tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .expect("operator exits in time on SIGTERM")
            .unwrap()
    }

    /// Waits until nothing is queued and writes have stopped.
    async fn wait_idle(&self) {
        wait_for("the operator to go idle", TIMEOUT, || async {
            let writes = || async { self.metric("palisade_api_writes_total", &[]).await };
            let before = writes().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let queued = self.metric("palisade_queue_depth", &[]).await;
            let evaluated = self.metric("palisade_evaluations_total", &[]).await;
            (queued == 0.0 && evaluated > 0.0 && writes().await == before).then_some(())
        })
        .await;
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

// -------------------------------------------------------------- helpers

async fn create_deployments(client: &Client, ns: &str, names: &[(String, bool)]) {
    let api = Api::<Deployment>::namespaced(client.clone(), ns);
    for (name, privileged) in names {
        api.create(&PostParams::default(), &deployment(name, *privileged, None))
            .await
            .unwrap_or_else(|e| panic!("deployment {name}: {e}"));
    }
}

fn has_finding(report: &ScanReport, check: &str) -> bool {
    report.status.as_ref().is_some_and(|s| {
        s.findings
            .iter()
            .any(|f| f.check == check && f.suppressed.is_none())
    })
}

fn compliant(report: &ScanReport) -> Option<(String, String)> {
    let condition = report
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Compliant")?;
    Some((
        condition.status.clone(),
        condition.last_transition_time.0.to_string(),
    ))
}

async fn list_reports(api: &Api<ScanReport>) -> Vec<ScanReport> {
    api.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

/// Reports by name, with their resourceVersion and Compliant condition.
async fn report_states(
    api: &Api<ScanReport>,
) -> BTreeMap<String, (String, Option<(String, String)>)> {
    list_reports(api)
        .await
        .into_iter()
        .map(|r| {
            let state = (r.resource_version().unwrap_or_default(), compliant(&r));
            (r.name_any(), state)
        })
        .collect()
}

/// Waits until every Deployment of `expected` has exactly one report that
/// says what it should (privileged or not, evaluated).
async fn wait_converged(api: &Api<ScanReport>, expected: &[(String, bool)]) {
    let want: BTreeMap<String, bool> = expected.iter().cloned().collect();
    wait_for("every report to converge", TIMEOUT, || async {
        let reports = list_reports(api).await;
        let targets: Vec<String> = reports
            .iter()
            .filter(|r| r.spec.target.kind == "Deployment")
            .map(|r| r.spec.target.name.clone())
            .collect();
        let unique: BTreeSet<&String> = targets.iter().collect();
        assert_eq!(
            unique.len(),
            targets.len(),
            "duplicate reports: {targets:?}"
        );
        let correct = reports
            .iter()
            .filter(|r| {
                want.get(&r.spec.target.name).is_some_and(|privileged| {
                    has_finding(r, PRIVILEGED) == *privileged
                        && compliant(r).is_some_and(|(status, _)| status != "Unknown")
                })
            })
            .count();
        (correct == want.len()).then_some(())
    })
    .await;
}

// ---------------------------------------------------------------- tests

/// A report whose status is edited by hand (score 100, no findings, for a
/// privileged Deployment) is restored, by a running operator and by one
/// that starts after the edit; restorations are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edited_report_is_restored_also_after_a_restart() {
    let cluster = Cluster::shared();
    let kubeconfig = cluster.install_operator("edited");
    let client = cluster.client().await;
    let ns = cluster.namespace(&client, "edited").await;
    create_deployments(&client, &ns, &[("web".to_owned(), true)]).await;
    let api: Api<ScanReport> = Api::namespaced(client.clone(), &ns);
    let lie = json!({"status": {
        "findings": [],
        "totalFindings": 0,
        "summary": {"critical": 0, "high": 0, "medium": 0, "low": 0, "info": 0, "suppressed": 0, "score": 100},
    }});
    let edit = || async {
        api.patch(
            "deployment-web",
            &PatchParams::default(),
            &Patch::Merge(&lie),
        )
        .await
        .expect("status edited by hand");
    };
    let restored = || async {
        wait_for("the edited report to be restored", TIMEOUT, || async {
            let report = api.get_opt("deployment-web").await.ok()??;
            let score = report.status.as_ref()?.summary.score;
            (has_finding(&report, PRIVILEGED) && score < 100).then_some(())
        })
        .await;
    };

    let first = Operator::spawn(&kubeconfig, &ns, "first", &["--resync-interval", "1h"]).await;
    restored().await; // written at first
    first.wait_idle().await;
    edit().await;
    restored().await;
    assert_eq!(
        first
            .metric("palisade_reports_restored_total", &["scanreports"])
            .await,
        1.0,
        "{}",
        first.log_tail()
    );
    first.wait_idle().await;
    assert!(first.stop().await.success());

    edit().await;
    let second = Operator::spawn(&kubeconfig, &ns, "second", &["--resync-interval", "1h"]).await;
    restored().await;
    assert_eq!(
        second
            .metric("palisade_reports_restored_total", &["scanreports"])
            .await,
        1.0,
        "{}",
        second.log_tail()
    );
    // Restored once: the restored report is not written again.
    second.wait_idle().await;
    let settled = report_states(&api).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(report_states(&api).await, settled);
    assert!(second.stop().await.success());
    cluster.kubectl(&["delete", "namespace", &ns, "--wait=false"]);
}

/// The API server is frozen (SIGSTOP) for longer than the Lease while a
/// second replica waits: the leader stops leading (and writing) while the
/// API server is frozen, and after it thaws the second replica takes the
/// Lease over and writes. Never two leaders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_api_server_never_leaves_two_leaders() {
    let cluster = Cluster::own("tc-resilience-freeze");
    let kubeconfig = cluster.install_operator("freeze");
    let client = cluster.client().await;
    let ns = cluster.namespace(&client, "freeze").await;
    create_deployments(&client, &ns, &[("app".to_owned(), false)]).await;
    let api: Api<ScanReport> = Api::namespaced(client.clone(), &ns);
    let leases: Api<Lease> = Api::namespaced(client.clone(), "palisade-system");
    let flags = |id: &'static str| {
        [
            "--leader-election",
            "--lease-duration",
            "15s",
            "--identity",
            id,
            "--resync-interval",
            "1h",
        ]
    };
    let lease = || async {
        let spec = leases.get("palisade").await.ok()?.spec?;
        Some((spec.holder_identity?, spec.lease_transitions.unwrap_or(0)))
    };

    let mut a = Operator::spawn(&kubeconfig, &ns, "a", &flags("replica-a")).await;
    wait_for("replica A to lead", TIMEOUT, || async {
        a.leading().await.then_some(())
    })
    .await;
    wait_for("the report", TIMEOUT, || async {
        api.get_opt("deployment-app").await.ok()?.map(|_| ())
    })
    .await;
    let mut b = Operator::spawn(&kubeconfig, &ns, "b", &flags("replica-b")).await;
    wait_for("replica B's caches", TIMEOUT, || async {
        b.get("/readyz").await.map(|_| ())
    })
    .await;
    let (holder, transitions) = lease().await.expect("the Lease");
    assert_eq!(holder, "replica-a");
    assert!(!b.leading().await, "B waits");

    {
        let _frozen = cluster.freeze();
        // A gives up leadership within its renew deadline (10 s) and exits;
        // B cannot take over while the API server is frozen.
        let deadline = std::time::Instant::now() + FREEZE;
        while a.exited().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "A still runs while the API server is frozen\n{}",
                a.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(!b.leading().await, "B cannot lead while frozen");
        assert!(b.exited().is_none(), "{}", b.log_tail());
        tokio::time::sleep(FREEZE.saturating_sub(Duration::from_secs(12))).await;
        assert!(!b.leading().await, "B cannot lead while frozen");
    }
    assert!(
        std::fs::read_to_string(&a.log)
            .unwrap_or_default()
            .contains("could not be renewed in time"),
        "{}",
        a.log_tail()
    );
    let status = a.stop().await;
    assert!(!status.success(), "A exits with an error: {status}");

    wait_for("replica B to take over", TIMEOUT, || async {
        b.leading().await.then_some(())
    })
    .await;
    let (holder, after) = lease().await.expect("the Lease");
    assert_eq!(holder, "replica-b");
    assert_eq!(after, transitions + 1, "one hand-over");
    Api::<Deployment>::namespaced(client.clone(), &ns)
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Strategic(&json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "securityContext": {"privileged": true}}
            ]}}}})),
        )
        .await
        .expect("patch");
    wait_for("B to write the change", TIMEOUT, || async {
        let report = api.get_opt("deployment-app").await.ok()??;
        has_finding(&report, PRIVILEGED).then_some(())
    })
    .await;
    assert!(b.stop().await.success());
}

/// The API server restarts (same data, same port) while the operator scans:
/// every report converges, one per target, none missing, and the reports
/// that were settled before the restart are not written again (no
/// `NotEvaluated` from the authorizer warming up, transition times kept).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_api_server_mid_scan_converges_without_extra_writes() {
    let cluster = Cluster::own("tc-resilience-restart");
    let kubeconfig = cluster.install_operator("restart");
    let client = cluster.client().await;
    let ns = cluster.namespace(&client, "restart").await;
    let settled: Vec<(String, bool)> = (0..20)
        .map(|i| (format!("settled-{i}"), i % 3 == 0))
        .collect();
    create_deployments(&client, &ns, &settled).await;
    let api: Api<ScanReport> = Api::namespaced(client.clone(), &ns);
    let operator = Operator::spawn(&kubeconfig, &ns, "restart", &["--resync-interval", "5s"]).await;
    wait_converged(&api, &settled).await;
    operator.wait_idle().await;
    let before = report_states(&api).await;

    // New objects, then the restart while they are being scanned.
    let fresh: Vec<(String, bool)> = (0..20)
        .map(|i| (format!("fresh-{i}"), i % 2 == 0))
        .collect();
    create_deployments(&client, &ns, &fresh).await;
    cluster.restart();
    let all: Vec<(String, bool)> = settled.iter().chain(&fresh).cloned().collect();
    let client = cluster.client().await;
    let api: Api<ScanReport> = Api::namespaced(client.clone(), &ns);
    wait_converged(&api, &all).await;
    operator.wait_idle().await;

    let after = report_states(&api).await;
    let rewritten: Vec<&String> = before
        .iter()
        .filter(|(name, state)| after.get(*name) != Some(state))
        .map(|(name, _)| name)
        .collect();
    assert!(
        rewritten.is_empty(),
        "settled reports written again: {rewritten:?}\n{}",
        operator.log_tail()
    );
    let deployment_reports = after
        .keys()
        .filter(|name| name.starts_with("deployment-"))
        .count();
    assert_eq!(deployment_reports, all.len(), "one report per Deployment");

    // Converged: full resyncs (every 5 s) write nothing.
    let writes = operator.metric("palisade_api_writes_total", &[]).await;
    let resync = operator
        .metric("palisade_last_full_resync_timestamp_seconds", &[])
        .await;
    wait_for("two more full resyncs", TIMEOUT, || async {
        let now = operator
            .metric("palisade_last_full_resync_timestamp_seconds", &[])
            .await;
        (now >= resync + 6.0).then_some(())
    })
    .await;
    operator.wait_idle().await;
    let exposition = operator.get("/metrics").await.unwrap_or_default();
    let counters: Vec<&str> = exposition
        .lines()
        .filter(|l| l.starts_with("palisade_api_writes_total") || l.contains("restored"))
        .collect();
    assert_eq!(
        metric_sum(&exposition, "palisade_api_writes_total", &[]),
        writes,
        "no write once converged: {counters:#?}\n{}",
        operator.log_tail()
    );
    assert_eq!(report_states(&api).await, after);
    assert!(operator.stop().await.success());
}

/// API Priority and Fairness throttles the operator's account (a priority
/// level of one share that rejects what it cannot run at once): the 429s
/// are counted, retried after `Retry-After`, logged, and every report still
/// converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_requests_are_counted_retried_and_logged() {
    let cluster = Cluster::shared();
    cluster.install_operator("throttled-setup");
    let client = cluster.client().await;
    let ns = cluster.namespace(&client, "throttled").await;
    let account = "throttled";
    let level = format!("e2e-{ns}");
    let objects = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": account, "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": level},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "palisade"},
         "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": ns}]},
        {"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
         "metadata": {"name": level},
         "spec": {"type": "Limited", "limited": {
             "nominalConcurrencyShares": 1, "lendablePercent": 0, "borrowingLimitPercent": 0,
             "limitResponse": {"type": "Reject"}}}},
        {"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
         "metadata": {"name": level},
         "spec": {"priorityLevelConfiguration": {"name": level}, "matchingPrecedence": 500,
             "distinguisherMethod": {"type": "ByUser"},
             "rules": [{
                 "subjects": [{"kind": "ServiceAccount",
                               "serviceAccount": {"name": account, "namespace": ns}}],
                 "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                                    "clusterScope": true, "namespaces": ["*"]}],
                 "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}},
    ]});
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("throttled.json");
    std::fs::write(&file, objects.to_string()).unwrap();
    cluster.kubectl(&["apply", "-f", file.to_str().unwrap()]);
    let user = format!("system:serviceaccount:{ns}:{account}");
    wait_for("the binding to take effect", TIMEOUT, || async {
        let out = cluster.kubectl_output(&["auth", "can-i", "list", "pods", "-A", "--as", &user]);
        (String::from_utf8_lossy(&out.stdout).trim() == "yes").then_some(())
    })
    .await;
    let token = cluster.kubectl(&["create", "token", account, "-n", &ns, "--duration=1h"]);
    let admin = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    let mut config: serde_json::Value = serde_norway::from_str(&admin).unwrap();
    for user in config["users"].as_array_mut().unwrap() {
        user["user"] = json!({"token": token.trim()});
    }
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, serde_norway::to_string(&config).unwrap()).unwrap();

    let names: Vec<(String, bool)> = (0..40).map(|i| (format!("app-{i}"), i % 2 == 0)).collect();
    create_deployments(&client, &ns, &names).await;
    let started = std::time::Instant::now();
    let operator = Operator::spawn(
        &kubeconfig,
        &ns,
        "throttled",
        &["--concurrency", "16", "--resync-interval", "1h"],
    )
    .await;
    let api: Api<ScanReport> = Api::namespaced(client.clone(), &ns);
    wait_converged(&api, &names).await;
    let converged = started.elapsed();
    let throttled = operator.metric("palisade_api_throttled_total", &[]).await;
    let retried = operator
        .metric("palisade_api_retries_total", &["throttled"])
        .await;
    let log = std::fs::read_to_string(&operator.log).unwrap_or_default();
    let warnings = log.matches("API server throttled a request").count();
    eprintln!(
        "throttled: {throttled} answers, {retried} retries, {warnings} warnings; converged after {converged:?}"
    );
    assert!(
        throttled > 0.0,
        "no 429 was provoked\n{}",
        operator.log_tail()
    );
    assert!(retried > 0.0);
    assert!(warnings >= 1, "{}", operator.log_tail());
    assert!(
        (warnings as f64) < throttled.max(2.0),
        "warnings are rate-limited: {warnings} lines for {throttled} answers"
    );
    assert!(operator.stop().await.success());
    cluster.kubectl(&[
        "delete",
        "flowschema,prioritylevelconfiguration,clusterrolebinding",
        &level,
        "--ignore-not-found",
    ]);
    cluster.kubectl(&["delete", "namespace", &ns, "--wait=false"]);
}

/// A leader keeps renewing its Lease while its caches fill, also when a
/// refused watch holds them for the 30 s it takes to count as refused: a
/// Lease left unrenewed that long would let a second replica lead too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_renews_its_lease_while_a_refused_watch_delays_its_caches() {
    let cluster = Cluster::shared();
    cluster.install_operator("renewing-setup");
    let client = cluster.client().await;
    let ns = cluster.namespace(&client, "renewing").await;
    let account = "limited";
    let role = format!("e2e-{ns}");
    // The operator's ClusterRole less NetworkPolicies, and its Lease rules
    // in the test namespace.
    let manifests = std::fs::read_to_string(repo_root().join("manifests/rbac.yaml")).unwrap();
    let mut cluster_role: serde_json::Value = serde_norway::Deserializer::from_str(&manifests)
        .map(|doc| <serde_json::Value as serde::Deserialize>::deserialize(doc).unwrap())
        .find(|doc| doc["kind"] == "ClusterRole")
        .expect("a ClusterRole in manifests/rbac.yaml");
    cluster_role["rules"].as_array_mut().unwrap().retain(|r| {
        !r["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "networkpolicies")
    });
    cluster_role["metadata"] = json!({"name": role});
    let subject = json!([{"kind": "ServiceAccount", "name": account, "namespace": ns}]);
    let objects = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": ns}},
        cluster_role,
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": role},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
         "subjects": subject},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "lease", "namespace": ns},
         "rules": [
             {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
             {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
              "resourceNames": ["palisade"], "verbs": ["get", "update"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "lease", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "lease"},
         "subjects": subject},
    ]});
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("limited.json");
    std::fs::write(&file, objects.to_string()).unwrap();
    cluster.kubectl(&["apply", "-f", file.to_str().unwrap()]);
    let user = format!("system:serviceaccount:{ns}:{account}");
    wait_for("the limited role to take effect", TIMEOUT, || async {
        let allowed = |args: &[&str]| {
            let mut all = vec!["auth", "can-i"];
            all.extend_from_slice(args);
            all.extend_from_slice(&["--as", &user]);
            String::from_utf8_lossy(&cluster.kubectl_output(&all).stdout).trim() == "yes"
        };
        (allowed(&["list", "pods", "-A"]) && allowed(&["update", "leases/palisade", "-n", &ns]))
            .then_some(())
    })
    .await;
    let token = cluster.kubectl(&["create", "token", account, "-n", &ns, "--duration=1h"]);
    let admin = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    let mut config: serde_json::Value = serde_norway::from_str(&admin).unwrap();
    for user in config["users"].as_array_mut().unwrap() {
        user["user"] = json!({"token": token.trim()});
    }
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, serde_norway::to_string(&config).unwrap()).unwrap();

    let operator = Operator::spawn(
        &kubeconfig,
        &ns,
        "renewing",
        &[
            "--leader-election",
            "--lease-namespace",
            &ns,
            "--lease-duration",
            "6s",
            "--identity",
            "renewing",
        ],
    )
    .await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let renewals = || async {
        let spec = leases.get_opt("palisade").await.ok()??.spec?;
        Some((spec.acquire_time?, spec.renew_time?))
    };
    // Renewed (every 0.8 s for a 6 s Lease) before the caches are synced,
    // which the refused NetworkPolicy watch delays by 30 s.
    wait_for("a renewal of the Lease", TIMEOUT, || async {
        let (acquired, renewed) = renewals().await?;
        (renewed.0 > acquired.0).then_some(())
    })
    .await;
    assert!(
        operator.get("/readyz").await.is_none(),
        "the caches are still filling"
    );
    wait_for("the caches, refused watch included", TIMEOUT, || async {
        operator.get("/readyz").await.map(|_| ())
    })
    .await;
    let (acquired, _) = renewals().await.expect("the Lease");
    wait_for("a renewal after the caches synced", TIMEOUT, || async {
        let (again, renewed) = renewals().await?;
        (again == acquired && renewed.0 > acquired.0).then_some(())
    })
    .await;
    assert!(operator.leading().await, "{}", operator.log_tail());
    assert!(operator.stop().await.success());
    cluster.kubectl(&[
        "delete",
        "clusterrole,clusterrolebinding",
        &role,
        "--ignore-not-found",
    ]);
    cluster.kubectl(&["delete", "namespace", &ns, "--wait=false"]);
}
