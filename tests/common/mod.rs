//! Shared support for end-to-end tests against a real Kubernetes API server.
//!
//! Each test binary gets a running cluster: the one whose kubeconfig is in
//! `PALISADE_TEST_KUBECONFIG` (set by `.ci/run`), or one started here with
//! `scripts/test-cluster.sh up` (reused by later runs until
//! `scripts/test-cluster.sh down`). There is no skipping: when no cluster can
//! be had, the test fails with the reason.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Label on every namespace the tests create, so leftovers can be found.
pub const TEST_LABEL: &str = "palisade.dev/e2e";

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The kubeconfig of the test cluster, starting the cluster if needed.
pub fn kubeconfig() -> &'static Path {
    static KUBECONFIG: OnceLock<PathBuf> = OnceLock::new();
    KUBECONFIG.get_or_init(|| match std::env::var_os("PALISADE_TEST_KUBECONFIG") {
        Some(path) => PathBuf::from(path),
        None => start_cluster(),
    })
}

fn start_cluster() -> PathBuf {
    let script = repo_root().join("scripts/test-cluster.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg("up")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        panic!(
            "the test cluster did not start ({}):\n{}\n{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let last_line = stdout.lines().last().unwrap_or_default().trim();
    PathBuf::from(last_line)
}

/// The kubectl that matches the test cluster's version (built next to it).
/// The standard output of one of the repository's scripts (`scripts/NAME`),
/// failing the test with its standard error when it fails.
pub fn script_stdout(name: &str) -> String {
    let script = repo_root().join("scripts").join(name);
    let output = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn kubectl_path() -> PathBuf {
    let built = repo_root().join("target/bin/kubectl");
    if built.exists() {
        built
    } else {
        PathBuf::from("kubectl")
    }
}

/// Runs kubectl against the test cluster and returns its stdout; panics with
/// stderr on failure.
pub fn kubectl(args: &[&str]) -> String {
    let output = kubectl_output(args);
    if !output.status.success() {
        panic!(
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn kubectl_output(args: &[&str]) -> std::process::Output {
    Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(args)
        .output()
        .expect("kubectl runs")
}

/// A client for the test cluster with admin rights.
pub async fn client() -> Client {
    let path = kubeconfig();
    let kubeconfig = Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("cannot read kubeconfig {}: {e}", path.display()));
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    Client::try_from(config).expect("client builds")
}

/// Creates a namespaced object given as JSON; panics with the API error.
pub async fn create_in<K>(client: &Client, namespace: &str, object: serde_json::Value) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let object: K = serde_json::from_value(object).expect("test object has the shape of its kind");
    Api::<K>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("cannot create {} in {namespace}: {e}", K::kind(&())))
}

/// A namespace of one test, deleted when the test ends. When the test fails,
/// what is in the namespace and its events are printed first.
pub struct TestNamespace {
    pub name: String,
}

impl TestNamespace {
    pub async fn create(client: &Client, test: &str) -> TestNamespace {
        Self::create_with_labels(client, test, &[]).await
    }

    pub async fn create_with_labels(
        client: &Client,
        test: &str,
        labels: &[(&str, &str)],
    ) -> TestNamespace {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("e2e-{}-{}-{}", slug(test), std::process::id() % 100_000, n);
        let mut all_labels: std::collections::BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all_labels.insert(TEST_LABEL.into(), "true".into());
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(all_labels),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|e| panic!("cannot create namespace {name}: {e}"));
        TestNamespace { name }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- debug: objects in namespace {} ---", self.name);
            let out = kubectl_output(&[
                "get",
                "all,roles,rolebindings,serviceaccounts,events",
                "-n",
                &self.name,
                "-o",
                "wide",
            ]);
            eprintln!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Deletion goes on in the background; namespaces are cheap to leave terminating.
        let _ = kubectl_output(&[
            "delete",
            "namespace",
            &self.name,
            "--wait=false",
            "--ignore-not-found",
        ]);
    }
}

fn slug(s: &str) -> String {
    let slug: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    slug.chars()
        .take(30)
        .collect::<String>()
        .trim_matches('-')
        .to_owned()
}

/// Polls `probe` until it returns `Some`, or panics after `timeout` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A small seeded generator (xorshift64*) so generated test cases are
/// reproducible from the seed a failing test prints.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The seed from `PALISADE_TEST_SEED`, or `default`.
    pub fn seed_from_env(default: u64) -> u64 {
        std::env::var("PALISADE_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Between one and `max` distinct items.
    pub fn some<T: Clone + PartialEq>(&mut self, items: &[T], max: usize) -> Vec<T> {
        let n = 1 + self.below(max);
        let mut out: Vec<T> = Vec::new();
        for _ in 0..n {
            let item = self.pick(items).clone();
            if !out.contains(&item) {
                out.push(item);
            }
        }
        out
    }
}

// ---------------------------------------------- acting as a ServiceAccount

/// A kubeconfig for the test cluster that authenticates as a ServiceAccount
/// with a TokenRequest token, the way the operator does in a cluster.
pub fn token_kubeconfig(namespace: &str, account: &str) -> PathBuf {
    let token = kubectl(&["create", "token", account, "-n", namespace, "--duration=2h"]);
    let admin = std::fs::read_to_string(kubeconfig()).expect("admin kubeconfig");
    let mut config: serde_json::Value = serde_norway::from_str(&admin).expect("kubeconfig is YAML");
    for user in config["users"].as_array_mut().expect("kubeconfig users") {
        user["user"] = serde_json::json!({"token": token.trim()});
    }
    let dir = repo_root().join("target/e2e-kubeconfigs");
    std::fs::create_dir_all(&dir).expect("kubeconfig directory");
    let path = dir.join(format!(
        "kubeconfig-{}-{namespace}-{account}",
        std::process::id()
    ));
    std::fs::write(&path, serde_norway::to_string(&config).expect("YAML")).expect("kubeconfig");
    path
}

/// Whether `user` may do what `check` says (`kubectl auth can-i` arguments).
pub fn can_i(user: &str, check: &[&str]) -> bool {
    let mut args = vec!["auth", "can-i"];
    args.extend_from_slice(check);
    args.extend_from_slice(&["--as", user]);
    String::from_utf8_lossy(&kubectl_output(&args).stdout).trim() == "yes"
}

/// The authorizer reads RBAC from an informer: waits until every one of
/// `checks` is allowed for `user`.
pub fn wait_until_allowed(user: &str, checks: &[&[&str]]) {
    let deadline = Instant::now() + Duration::from_secs(90);
    for check in checks {
        while !can_i(user, check) {
            assert!(
                Instant::now() < deadline,
                "RBAC for {check:?} never took effect for {user}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

// ------------------------------------------------- the operator's HTTP port

/// A port nobody listens on now, for an operator's metrics address.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
        .port()
}

/// `GET path` on a local port; `None` while nothing answers.
pub async fn http_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    Some(response)
}

/// Sum of the samples of metric `name` in a Prometheus text exposition
/// whose line contains every one of `filters`.
pub fn metric_sum(exposition: &str, name: &str, filters: &[&str]) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split([' ', '{']).next() == Some(name))
        .filter(|l| filters.iter().all(|f| l.contains(f)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// ------------------------------------------------------------- fixtures

/// A one-container Deployment, privileged or not, running as `account`
/// (`default` when `None`).
pub fn deployment(
    name: &str,
    privileged: bool,
    account: Option<&str>,
) -> k8s_openapi::api::apps::v1::Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "serviceAccountName": account.unwrap_or("default"),
                    "containers": [{
                        "name": "app",
                        "image": "registry.k8s.io/pause:3.10",
                        "securityContext": {"privileged": privileged}
                    }]
                }
            }
        }
    }))
    .expect("a valid Deployment")
}

// ------------------------------------------------------------ installing

/// Palisade's CRDs, as `crds/palisade.yaml` defines them.
pub const PALISADE_CRDS: [&str; 3] = [
    "scanreports.palisade.dev",
    "clusterscanreports.palisade.dev",
    "scanpolicies.palisade.dev",
];

/// Applies a manifest file by server-side apply as `field_manager`, taking
/// over fields another test's apply owns.
pub fn apply_server_side(file: &Path, field_manager: &str) {
    let manager = format!("--field-manager={field_manager}");
    kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        &manager,
        "-f",
        file.to_str().expect("a UTF-8 path"),
    ]);
}

/// The operator's ServiceAccount as the authorizer names it.
pub const OPERATOR_ACCOUNT: &str = "system:serviceaccount:palisade-system:palisade";

/// Installs what the operator needs from the repository: its CRDs, its
/// namespace, ServiceAccount and RBAC (`manifests/`), and waits until the
/// CRDs are served. The caller waits for the permissions it relies on
/// ([`wait_until_allowed`]): the authorizer reads RBAC from an informer.
pub fn install_operator_manifests() {
    for file in [
        "crds/palisade.yaml",
        "manifests/namespace.yaml",
        "manifests/rbac.yaml",
    ] {
        apply_server_side(&repo_root().join(file), "e2e");
    }
    wait_established(&PALISADE_CRDS);
}

/// Waits until every named CRD is established (its API is served).
pub fn wait_established(crds: &[&str]) {
    let names: Vec<String> = crds.iter().map(|name| format!("crd/{name}")).collect();
    let mut args = vec!["wait", "--for=condition=established", "--timeout=60s"];
    args.extend(names.iter().map(String::as_str));
    kubectl(&args);
}

// ------------------------------------------------- running the operator

/// A `palisade operator` process limited to one namespace, killed when
/// dropped. Its stderr goes to `target/e2e-operator/<namespace>-<port>.log`.
pub struct OperatorProcess {
    pub port: u16,
    _child: tokio::process::Child,
}

impl OperatorProcess {
    /// Runs the binary with `kubeconfig` (normally the operator's own
    /// account, [`token_kubeconfig`]) and waits until `/healthz` answers.
    pub async fn spawn(kubeconfig: &Path, namespace: &str, extra: &[&str]) -> OperatorProcess {
        let port = free_port();
        let logs = repo_root().join("target/e2e-operator");
        std::fs::create_dir_all(&logs).expect("log directory");
        let log = logs.join(format!("{namespace}-{port}.log"));
        let metrics_addr = format!("127.0.0.1:{port}");
        let policy_name = format!("e2e-{namespace}");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
            .arg("operator")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--namespaces", namespace, "--metrics-addr", &metrics_addr])
            .args(["--policy-name", &policy_name, "--resync-interval", "1h"])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .kill_on_drop(true)
            .spawn()
            .expect("palisade operator starts");
        wait_for(
            "the operator's /healthz",
            Duration::from_secs(90),
            || async {
                http_get(port, "/healthz")
                    .await
                    .filter(|b| b.contains("ok"))
                    .map(|_| ())
            },
        )
        .await;
        OperatorProcess {
            port,
            _child: child,
        }
    }

    /// Sum of a metric's samples whose line contains every one of `filters`.
    pub async fn metric(&self, name: &str, filters: &[&str]) -> f64 {
        let text = http_get(self.port, "/metrics").await.unwrap_or_default();
        metric_sum(&text, name, filters)
    }
}
