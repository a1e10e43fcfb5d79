//! Engine and loader benchmarks: evaluation of one typical Deployment and of
//! a 1,000-object inventory, loading (YAML parse and decode) of a 1,000-object
//! manifest stream, and the whole in-memory scan with JSON output.
//!
//! `cargo bench --bench engine`; numbers are in docs/performance.md.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

use palisade::checks::catalog;
use palisade::cli::scan;
use palisade::engine::{self, Check};
use palisade::loader::{Loaded, Loader};
use palisade::model::Inventory;
use palisade::output::{self, Format, Options, Report, ReportFindings};
use palisade::policy::Policy;

/// A web service as many teams ship it: an app container and a metrics
/// sidecar, partly hardened, with the usual gaps (no seccomp profile, a
/// writable root filesystem in the sidecar, a mutable tag, a literal secret).
const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
  namespace: shop
  labels: {app.kubernetes.io/name: checkout}
spec:
  replicas: 3
  selector:
    matchLabels: {app.kubernetes.io/name: checkout}
  template:
    metadata:
      labels: {app.kubernetes.io/name: checkout}
    spec:
      serviceAccountName: checkout
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
      containers:
        - name: app
          image: ghcr.io/acme/checkout:2.14.1
          imagePullPolicy: IfNotPresent
          ports:
            - {name: http, containerPort: 8080}
          env:
            - {name: LOG_LEVEL, value: info}
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef: {name: checkout-db, key: password}
          resources:
            requests: {cpu: 250m, memory: 256Mi}
            limits: {cpu: "1", memory: 256Mi}
          livenessProbe:
            httpGet: {path: /healthz, port: http}
          readinessProbe:
            httpGet: {path: /ready, port: http}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
          volumeMounts:
            - {name: tmp, mountPath: /tmp}
        - name: metrics
          image: prom/statsd-exporter:latest
          ports:
            - {name: metrics, containerPort: 9102}
          env:
            - {name: API_TOKEN, value: 3f9a8c7d6e5b4a39281706f5e4d3c2b1}
          resources:
            requests: {cpu: 50m, memory: 32Mi}
      volumes:
        - name: tmp
          emptyDir: {sizeLimit: 64Mi}
"#;

/// A hardened workload: passes nearly every check.
const HARDENED: &str = r#"apiVersion: apps/v1
kind: KIND
metadata: {name: NAME, namespace: NS, labels: {app: NAME}}
spec:
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec:
      serviceAccountName: NAME
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: app
          image: registry.example.com/NAME:1.4.2@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a
          imagePullPolicy: IfNotPresent
          ports: [{containerPort: 8080}]
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits: {cpu: 500m, memory: 128Mi}
          livenessProbe: {tcpSocket: {port: 8080}}
          readinessProbe: {tcpSocket: {port: 8080}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
"#;

/// A sloppy workload: privileged, host namespaces, root, `latest`, a
/// runtime socket mount.
const SLOPPY: &str = r#"apiVersion: apps/v1
kind: KIND
metadata: {name: NAME, namespace: NS}
spec:
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec:
      hostNetwork: true
      hostPID: true
      containers:
        - name: agent
          image: busybox:latest
          env:
            - {name: ADMIN_PASSWORD, value: hunter2hunter2}
          securityContext:
            privileged: true
            runAsUser: 0
            capabilities: {add: [SYS_ADMIN, NET_ADMIN]}
          volumeMounts: [{name: sock, mountPath: /var/run/docker.sock}]
      volumes:
        - name: sock
          hostPath: {path: /var/run/docker.sock}
"#;

const CRONJOB: &str = r#"apiVersion: batch/v1
kind: CronJob
metadata: {name: NAME, namespace: NS}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: backup
              image: alpine:3.20
              command: [/bin/backup]
              resources: {requests: {cpu: 100m, memory: 64Mi}}
              securityContext: {allowPrivilegeEscalation: false}
"#;

const POD: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: NAME, namespace: NS}
spec:
  containers:
    - name: shell
      image: nicolaka/netshoot
      securityContext:
        capabilities: {add: [NET_RAW]}
"#;

const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata: {name: NAME, namespace: NS}
spec:
  selector: {app: NAME}
  ports: [{port: 80, targetPort: 8080}]
"#;

const CONFIG_MAP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: NAME, namespace: NS}
data: {LOG_FORMAT: json}
"#;

const SERVICE_ACCOUNT: &str = r#"apiVersion: v1
kind: ServiceAccount
metadata: {name: NAME, namespace: NS}
"#;

const ROLE: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: NAME, namespace: NS}
rules:
  - apiGroups: [""]
    resources: [secrets, pods/exec]
    verbs: [get, list, create]
"#;

const ROLE_BINDING: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: NAME, namespace: NS}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: NAME}
subjects:
  - {kind: ServiceAccount, name: NAME, namespace: NS}
"#;

const CLUSTER_ROLE: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: NS-NAME}
rules:
  - apiGroups: ["*"]
    resources: ["*"]
    verbs: ["*"]
"#;

const CLUSTER_ROLE_BINDING: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: NS-NAME}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
  - {kind: ServiceAccount, name: default, namespace: NS}
"#;

const NETWORK_POLICY: &str = r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: NAME, namespace: NS}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
"#;

/// The documents of one 40-object namespace after its Namespace object, in
/// roughly the proportions of bench/gen.py: a quarter workloads (hardened and
/// sloppy), a quarter Services and ConfigMaps (skipped kinds), the rest RBAC
/// and network policies.
const NAMESPACE_MIX: [&str; 39] = [
    HARDENED,
    SERVICE,
    SERVICE_ACCOUNT,
    SLOPPY,
    CONFIG_MAP,
    ROLE,
    ROLE_BINDING,
    HARDENED,
    SERVICE,
    CRONJOB,
    SERVICE_ACCOUNT,
    POD,
    CONFIG_MAP,
    SLOPPY,
    SERVICE,
    ROLE_BINDING,
    HARDENED,
    NETWORK_POLICY,
    SERVICE_ACCOUNT,
    CLUSTER_ROLE,
    SERVICE,
    HARDENED,
    CONFIG_MAP,
    ROLE,
    CRONJOB,
    SERVICE_ACCOUNT,
    SLOPPY,
    CLUSTER_ROLE_BINDING,
    SERVICE,
    HARDENED,
    ROLE_BINDING,
    CONFIG_MAP,
    SERVICE_ACCOUNT,
    POD,
    SERVICE,
    SLOPPY,
    ROLE,
    HARDENED,
    NETWORK_POLICY,
];

const WORKLOAD_KINDS: [&str; 3] = ["Deployment", "StatefulSet", "DaemonSet"];

/// A deterministic multi-document stream of `count` objects spread over
/// namespaces of 40.
fn mixed_stream(count: usize) -> String {
    let mut text = String::new();
    for i in 0..count {
        let namespace = format!("team-{:03}", i / 40);
        let slot = i % 40;
        if slot == 0 {
            text.push_str(&format!(
                "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n  labels: {{pod-security.kubernetes.io/enforce: baseline}}\n"
            ));
            continue;
        }
        let name = format!("app-{slot:02}");
        let kind = WORKLOAD_KINDS[i % WORKLOAD_KINDS.len()];
        let document = NAMESPACE_MIX[slot - 1]
            .replace("KIND", kind)
            .replace("NAME", &name)
            .replace("NS", &namespace);
        text.push_str("---\n");
        text.push_str(&document);
    }
    text
}

fn load(name: &str, text: &str) -> Loaded {
    let loaded = Loader::new().load_text(name, text);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    loaded
}

fn inventory(text: &str) -> Inventory {
    let loaded = load("bench.yaml", text);
    Inventory::from_resources(loaded.objects.iter().map(|o| &o.resource))
}

fn evaluation(c: &mut Criterion) {
    let policy = Policy::default();
    let mut group = c.benchmark_group("evaluate");

    let deployment = inventory(DEPLOYMENT);
    let findings = engine::evaluate(&deployment, catalog(), &policy);
    assert!(!findings.is_empty(), "the typical Deployment has findings");
    group.throughput(Throughput::Elements(1));
    group.bench_function("deployment", |b| {
        b.iter(|| engine::evaluate(black_box(&deployment), catalog(), &policy))
    });

    let mixed = inventory(&mixed_stream(1000));
    group.throughput(Throughput::Elements(1000));
    group.bench_function("inventory_1000", |b| {
        b.iter(|| engine::evaluate(black_box(&mixed), catalog(), &policy))
    });
    group.finish();
}

fn loading(c: &mut Criterion) {
    let text = mixed_stream(1000);
    let loaded = load("bench.yaml", &text);
    assert_eq!(
        loaded.objects.len() + loaded.skipped.documents(),
        1000,
        "every document is read"
    );
    let mut group = c.benchmark_group("load");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("stream_1000", |b| {
        b.iter(|| Loader::new().load_text("bench.yaml", black_box(&text)))
    });
    group.finish();
}

/// Load, evaluate and write the JSON report, as `palisade scan -o json`
/// does after reading the files.
fn whole_scan(c: &mut Criterion) {
    let text = mixed_stream(1000);
    let policy = Policy::default();
    let checks: Vec<&'static Check> = catalog().to_vec();
    let mut group = c.benchmark_group("scan");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("json_1000", |b| {
        b.iter_batched(
            || Vec::with_capacity(1 << 20),
            |mut out| {
                let loaded = Loader::new().load_text("bench.yaml", &text);
                let scanned = scan::evaluate(loaded, &policy);
                let report = Report {
                    errors: &[],
                    skipped_inputs: &[],
                    findings: ReportFindings::InMemory {
                        findings: &scanned.findings,
                        definitions: &scanned.definitions,
                    },
                    sources: &scanned.sources,
                    checks: &checks,
                    policy: &policy,
                    evaluated: &[],
                    posture: &[],
                    summary: scanned.summary,
                    options: Options::default(),
                };
                output::write(Format::Json, &report, &mut out).expect("writes to memory");
                out
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, evaluation, loading, whole_scan);
criterion_main!(benches);
