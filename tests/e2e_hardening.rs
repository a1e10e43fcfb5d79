//! A hostile or flaky cluster must never wedge, crash or fool the operator:
//! objects the API server accepts (or accepted under older, looser CRDs)
//! against the operator binary running as its own ServiceAccount.
//!
//! Tests that change the CRDs (to store what older CRDs let through) hold
//! [`CRDS`], as do the tests that need the current CRDs in force.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use common::{
    OPERATOR_ACCOUNT, TestNamespace, client, free_port, kubectl, kubectl_output, repo_root,
    token_kubeconfig, wait_for,
};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{Api, ListParams, PostParams};
use palisade::crd::{ScanPolicy, ScanReport};
use palisade::operator::{TargetKind, report_name};
use serde_json::{Value, json};
use tokio::sync::Mutex;

const TIMEOUT: Duration = Duration::from_secs(90);

/// Held while a test depends on which CRDs are installed.
static CRDS: Mutex<()> = Mutex::const_new(());

/// Installs the CRDs and the operator's RBAC from `manifests/`, and returns
/// a kubeconfig that authenticates as the operator's ServiceAccount.
fn operator_kubeconfig() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        common::install_operator_manifests();
        common::wait_until_allowed(
            OPERATOR_ACCOUNT,
            &[
                &["list", "scanpolicies.palisade.dev"],
                &["watch", "scanreports.palisade.dev", "-A"],
                &["create", "events.events.k8s.io", "-A"],
            ],
        );
        token_kubeconfig("palisade-system", "palisade")
    })
}

/// A file for objects of one test.
fn scratch(name: &str) -> PathBuf {
    let dir = repo_root().join("target/e2e-hardening");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{}-{name}", std::process::id()))
}

/// `kubectl create -f` of `object`; the API server's answer.
fn kubectl_create(object: &Value, extra: &[&str]) -> std::process::Output {
    let file = scratch(&format!(
        "{}-{}.json",
        object["kind"].as_str().unwrap(),
        object["metadata"]["name"]
            .as_str()
            .unwrap()
            .replace(':', "_")
    ));
    std::fs::write(&file, object.to_string()).unwrap();
    let mut args = vec!["create", "-f", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    kubectl_output(&args)
}

// --------------------------------------------------------------- the CRDs

/// The current CRDs without the bounds this version added (maximums,
/// lengths, patterns, CEL rules): what an older version installed, and
/// what objects stored before an upgrade may break.
fn loose_crds() -> String {
    fn loosen(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for key in [
                    "maximum",
                    "maxLength",
                    "maxItems",
                    "maxProperties",
                    "pattern",
                    "x-kubernetes-validations",
                    "enum",
                ] {
                    map.remove(key);
                }
                map.values_mut().for_each(loosen);
            }
            Value::Array(items) => items.iter_mut().for_each(loosen),
            _ => {}
        }
    }
    let mut docs = Vec::new();
    for doc in palisade::crd::crds_yaml()
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
    {
        let mut crd: Value = serde_norway::from_str(doc).unwrap();
        for version in crd["spec"]["versions"].as_array_mut().unwrap() {
            loosen(&mut version["schema"]["openAPIV3Schema"]);
        }
        docs.push(crd.to_string());
    }
    docs.join("\n---\n")
}

/// The loose CRDs while it lives; the current ones again when dropped (also
/// when the test fails), so that hostile objects stay stored under them.
struct LooseCrds;

impl LooseCrds {
    fn install() -> LooseCrds {
        let file = scratch("loose-crds.yaml");
        std::fs::write(&file, loose_crds()).unwrap();
        common::apply_server_side(&file, "e2e");
        common::wait_established(&common::PALISADE_CRDS);
        LooseCrds
    }
}

impl Drop for LooseCrds {
    fn drop(&mut self) {
        common::apply_server_side(&repo_root().join("crds/palisade.yaml"), "e2e");
    }
}

/// Creates `object` once the API server takes it (a CRD change takes a
/// moment to reach its handlers).
async fn create_accepted(object: &Value) {
    let what = format!("{} to be accepted", object["metadata"]["name"]);
    wait_for(&what, TIMEOUT, || async {
        let out = kubectl_create(object, &[]);
        out.status.success().then_some(())
    })
    .await;
}

/// The API server's refusal of `object` (a server-side dry run, so that
/// nothing is stored if it is accepted), once the current CRDs are in force.
async fn refusal(object: &Value) -> String {
    let what = format!("{} to be refused", object["metadata"]["name"]);
    wait_for(&what, TIMEOUT, || async {
        let out = kubectl_create(object, &["--dry-run=server"]);
        (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
    })
    .await
}

/// Deletes the cluster-scoped ScanPolicy of a test when dropped (also when
/// the test fails): one that does not decode must not outlive the test.
struct PolicyCleanup(String);

impl Drop for PolicyCleanup {
    fn drop(&mut self) {
        let _ = kubectl_output(&["delete", "scanpolicy", &self.0, "--ignore-not-found"]);
    }
}

fn policy(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "palisade.dev/v1alpha1",
        "kind": "ScanPolicy",
        "metadata": {"name": name},
        "spec": spec,
    })
}

fn exception(expires: &str) -> Value {
    json!({"exceptions": [{
        "checks": ["rbac-secrets-read"],
        "reason": "accepted",
        "expires": expires,
    }]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crds_refuse_values_the_operator_cannot_read() {
    let _crds = CRDS.lock().await;
    operator_kubeconfig();
    let refused = [
        ("expiry-9999", exception("9999-12-31T23:59:59Z"), "expires"),
        (
            "expiry-ten-digits",
            exception("2030-01-01T00:00:00.1234567890Z"),
            "expires",
        ),
        (
            "rescan-overflow",
            json!({"rescanInterval": "18446744073709551615s"}),
            "rescanInterval",
        ),
        (
            "rescan-1ms",
            json!({"rescanInterval": "1ms"}),
            "rescanInterval",
        ),
        (
            "rescan-8d",
            json!({"rescanInterval": "192h"}),
            "rescanInterval",
        ),
    ];
    for (name, spec, field) in refused {
        let message = refusal(&policy(&format!("e2e-refused-{name}"), spec)).await;
        assert!(message.contains(field), "{name}: {message}");
    }
    // Still accepted: the bounds themselves.
    for (name, spec) in [
        (
            "expiry-9998",
            exception("9998-12-31T23:59:59.123456789+01:00"),
        ),
        ("rescan-1m", json!({"rescanInterval": "1m"})),
        ("rescan-7d", json!({"rescanInterval": "168h"})),
    ] {
        let out = kubectl_create(
            &policy(&format!("e2e-accepted-{name}"), spec),
            &["--dry-run=server"],
        );
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // A report's status with a count past u32.
    let client = client().await;
    let ns = TestNamespace::create(&client, "hard-schema").await;
    let n = ns.name.as_str();
    let created = kubectl_create(
        &json!({
            "apiVersion": "palisade.dev/v1alpha1",
            "kind": "ScanReport",
            "metadata": {"name": "role-x", "namespace": n},
            "spec": {"target": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "name": "x"}},
        }),
        &[],
    );
    assert!(created.status.success(), "{created:?}");
    let patch = json!({"status": {"summary": {"critical": 4294967296u64, "high": 0,
        "medium": 0, "low": 0, "info": 0, "suppressed": 0, "score": 0}}})
    .to_string();
    let message = wait_for("the count to be refused", TIMEOUT, || async {
        let out = kubectl_output(&[
            "patch",
            "scanreport",
            "role-x",
            "-n",
            n,
            "--type=merge",
            "-p",
            &patch,
            "--dry-run=server",
        ]);
        (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
    })
    .await;
    assert!(message.contains("critical"), "{message}");
}

// ----------------------------------------------------- the operator binary

/// The `palisade operator` binary scanning one namespace as its own
/// ServiceAccount; killed when dropped.
struct Operator {
    child: tokio::process::Child,
    port: u16,
    log: PathBuf,
}

impl Operator {
    fn spawn(namespace: &str, policy: &str, extra: &[&str]) -> Operator {
        let port = free_port();
        let log = scratch(&format!("operator-{namespace}.log"));
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
                policy,
                "--resync-interval",
                "1h",
            ])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("palisade operator starts");
        Operator { child, port, log }
    }

    async fn get(&self, path: &str) -> Option<String> {
        common::http_get(self.port, path).await
    }

    /// Waits for `/readyz` to answer 200; fails early, with the log, when
    /// the process exits.
    async fn wait_ready(&mut self) {
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the operator exited ({status}):\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if self
                .get("/readyz")
                .await
                .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the operator never became ready:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn metric(&self, name: &str, filters: &[&str]) -> f64 {
        let text = self.get("/metrics").await.unwrap_or_default();
        common::metric_sum(&text, name, filters)
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

async fn create_role(client: &kube::Client, namespace: &str, name: &str) -> Role {
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": name},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]
    }))
    .unwrap();
    Api::<Role>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &role)
        .await
        .unwrap_or_else(|e| panic!("create role {name}: {e}"))
}

/// The report of Role `name`, once written for the live Role.
async fn role_report(client: &kube::Client, namespace: &str, role: &Role) -> ScanReport {
    let name = role.metadata.name.as_deref().unwrap();
    let report_name = report_name(TargetKind::Role, name);
    let api: Api<ScanReport> = Api::namespaced(client.clone(), namespace);
    wait_for(&format!("report {report_name}"), TIMEOUT, || async {
        let report = api.get_opt(&report_name).await.ok()??;
        (report.spec.target.name == name
            && report.spec.target.uid == role.metadata.uid
            && report.status.is_some())
        .then_some(report)
    })
    .await
}

/// Events on the object `name`, by reason, in `namespace`.
async fn events_on(client: &kube::Client, namespace: &str, name: &str, reason: &str) -> usize {
    Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter(|e| e.reporting_controller.as_deref() == Some("palisade"))
        .count()
}

fn valid_condition(policy: &ScanPolicy) -> Option<(String, String)> {
    let condition = policy
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Valid")?;
    Some((condition.status.clone(), condition.message.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_stored_under_older_crds_are_reported_and_skipped_never_blocking() {
    let _crds = CRDS.lock().await;
    let client = client().await;
    operator_kubeconfig();
    let ns = TestNamespace::create(&client, "hard-undecodable").await;
    let n = ns.name.as_str();
    let policy_name = format!("e2e-{n}");
    let _cleanup = PolicyCleanup(policy_name.clone());
    let role = create_role(&client, n, "x").await;
    {
        let _loose = LooseCrds::install();
        // An expiry past what the operator's time type holds.
        create_accepted(&policy(&policy_name, exception("9999-12-31T23:59:59Z"))).await;
        // A report of Role x with a count past u32.
        create_accepted(&json!({
            "apiVersion": "palisade.dev/v1alpha1",
            "kind": "ScanReport",
            "metadata": {"name": "role-x", "namespace": n, "labels": {
                "palisade.dev/target-kind": "Role", "palisade.dev/target-name": "x"}},
            "spec": {"target": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "name": "x"}},
        }))
        .await;
        let patch = json!({"status": {"summary": {"critical": 4294967296u64, "high": 0,
            "medium": 0, "low": 0, "info": 0, "suppressed": 0, "score": 0}}});
        wait_for("the hostile status to be stored", TIMEOUT, || async {
            let out = kubectl_output(&[
                "patch",
                "scanreport",
                "role-x",
                "-n",
                n,
                "--type=merge",
                "-p",
                &patch.to_string(),
            ]);
            out.status.success().then_some(())
        })
        .await;
    }
    let stored = kubectl(&["get", "scanreport", "role-x", "-n", n, "-o", "json"]);
    assert!(stored.contains("4294967296"), "{stored}");

    let mut operator = Operator::spawn(n, &policy_name, &[]);
    operator.wait_ready().await;
    // The report is rewritten from the live Role, with readable numbers.
    let report = role_report(&client, n, &role).await;
    let status = report.status.unwrap();
    assert!(status.summary.critical < 1000);
    // The policy is reported invalid, naming the field; the defaults stay
    // in force (its exception suppresses nothing).
    assert!(
        status
            .findings
            .iter()
            .any(|f| f.check == "rbac-secrets-read" && f.suppressed.is_none()),
        "{:?}",
        status.findings
    );
    let (status, message) = wait_for("Valid=False on the policy", TIMEOUT, || async {
        let stored = kubectl(&["get", "scanpolicy", &policy_name, "-o", "json"]);
        let policy: Value = serde_json::from_str(&stored).ok()?;
        let condition = policy["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Valid")?
            .clone();
        Some((
            condition["status"].as_str()?.to_owned(),
            condition["message"].as_str()?.to_owned(),
        ))
    })
    .await;
    assert_eq!(status, "False", "{message}");
    assert!(message.contains("spec.exceptions[0].expires"), "{message}");
    assert!(
        operator
            .metric("palisade_errors_total", &["category=\"undecodable\""])
            .await
            >= 2.0
    );
    wait_for("an Undecodable Event on the policy", TIMEOUT, || async {
        (events_on(&client, "default", &policy_name, "Undecodable").await > 0).then_some(())
    })
    .await;
    wait_for("an Undecodable Event on the report", TIMEOUT, || async {
        (events_on(&client, n, "role-x", "Undecodable").await > 0).then_some(())
    })
    .await;
    assert!(operator.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescan_interval_out_of_range_neither_crashes_nor_spins_the_operator() {
    let _crds = CRDS.lock().await;
    let client = client().await;
    operator_kubeconfig();
    let ns = TestNamespace::create(&client, "hard-interval").await;
    let n = ns.name.as_str();
    let policy_name = format!("e2e-{n}");
    let _cleanup = PolicyCleanup(policy_name.clone());
    let role = create_role(&client, n, "x").await;
    {
        let _loose = LooseCrds::install();
        create_accepted(&policy(
            &policy_name,
            json!({"rescanInterval": "18446744073709551615s"}),
        ))
        .await;
    }
    let mut operator = Operator::spawn(n, &policy_name, &[]);
    operator.wait_ready().await;
    role_report(&client, n, &role).await;
    let policies: Api<ScanPolicy> = Api::all(client.clone());
    let (status, message) = wait_for("Valid=False on the policy", TIMEOUT, || async {
        valid_condition(&policies.get_opt(&policy_name).await.ok()??)
    })
    .await;
    assert_eq!(status, "False", "{message}");
    assert!(message.contains("spec.rescanInterval"), "{message}");
    assert!(operator.is_running(), "the operator keeps running");

    // `1ms` (the schema allows it only under older CRDs) is refused too.
    {
        let _loose = LooseCrds::install();
        wait_for("the 1ms interval to be stored", TIMEOUT, || async {
            let out = kubectl_output(&[
                "patch",
                "scanpolicy",
                &policy_name,
                "--type=merge",
                "-p",
                r#"{"spec":{"rescanInterval":"1ms"}}"#,
            ]);
            out.status.success().then_some(())
        })
        .await;
    }
    wait_for("Valid=False for 1ms", TIMEOUT, || async {
        let (status, message) = valid_condition(&policies.get_opt(&policy_name).await.ok()??)?;
        (status == "False" && message.contains("`1ms`")).then_some(())
    })
    .await;
    let resyncs = operator
        .metric("palisade_last_full_resync_timestamp_seconds", &[])
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        operator
            .metric("palisade_last_full_resync_timestamp_seconds", &[])
            .await,
        resyncs,
        "no full re-evaluation every millisecond"
    );
    assert!(operator.is_running());
}

// ----------------------------------------------------- names of reports

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_differing_in_case_or_shaped_like_a_hash_get_reports_of_their_own() {
    let client = client().await;
    operator_kubeconfig();
    let ns = TestNamespace::create(&client, "hard-names").await;
    let n = ns.name.as_str();
    // `Admin`'s report name, minus the kind: a name a Role can have.
    let admin_report = report_name(TargetKind::Role, "Admin");
    let look_alike = admin_report.strip_prefix("role-").unwrap().to_owned();
    let names = ["Admin", "admin", "ADMIN", look_alike.as_str()];
    let mut report_names: Vec<String> = names
        .iter()
        .map(|name| report_name(TargetKind::Role, name))
        .collect();
    report_names.sort();
    report_names.dedup();
    assert_eq!(report_names.len(), names.len(), "{report_names:?}");
    let mut roles = Vec::new();
    for name in names {
        roles.push(create_role(&client, n, name).await);
    }
    let mut operator = Operator::spawn(n, &format!("e2e-{n}"), &[]);
    operator.wait_ready().await;
    for role in &roles {
        let report = role_report(&client, n, role).await;
        assert!(
            report
                .status
                .unwrap()
                .findings
                .iter()
                .any(|f| f.check == "rbac-secrets-read"),
            "{:?}",
            role.metadata.name
        );
    }
    // Each report stays with its Role (none is taken over by another).
    tokio::time::sleep(Duration::from_secs(3)).await;
    for role in &roles {
        role_report(&client, n, role).await;
    }
}

// ----------------------------------------------------------------- Events

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_objects_whose_names_are_not_dns_subdomains() {
    let client = client().await;
    operator_kubeconfig();
    let ns = TestNamespace::create(&client, "hard-events").await;
    let n = ns.name.as_str();
    let names = ["evil:secret-reader", "Evil.Reader", "team:Secret_Reader"];
    let mut roles = Vec::new();
    for name in names {
        roles.push(create_role(&client, n, name).await);
    }
    let mut operator = Operator::spawn(n, &format!("e2e-{n}"), &[]);
    operator.wait_ready().await;
    for (name, role) in names.iter().zip(&roles) {
        role_report(&client, n, role).await;
        wait_for(
            &format!("a NewFinding Event on {name}"),
            TIMEOUT,
            || async { (events_on(&client, n, name, "NewFinding").await > 0).then_some(()) },
        )
        .await;
    }
    assert_eq!(
        operator
            .metric("palisade_errors_total", &["category=\"event\""])
            .await,
        0.0
    );
}
