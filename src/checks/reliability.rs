//! Resource requests and limits, liveness and readiness probes.
//!
//! These are availability controls first, but they matter for security too: a
//! container without limits can starve its neighbours on the node, and a pod
//! without probes keeps serving after it has stopped working.
//!
//! Which containers count follows Polaris and Checkov: regular containers and
//! restartable (sidecar) init containers, which run for the pod's whole life.
//! Classic init containers run to completion before the pod starts, and
//! ephemeral containers cannot declare resources or probes at all.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::engine::{
    Applies, Category, Check, Context, Scope, Severity, Subject, Tool, Violations, alias,
};
use crate::model::{ContainerEntry, ContainerKind, Workload};

pub static CHECKS: &[&Check] = &[
    &CPU_REQUESTS_MISSING,
    &CPU_LIMITS_MISSING,
    &MEMORY_REQUESTS_MISSING,
    &MEMORY_LIMITS_MISSING,
    &LIVENESS_PROBE_MISSING,
    &READINESS_PROBE_MISSING,
];

/// A container without a CPU request gets whatever CPU is left on the node.
pub static CPU_REQUESTS_MISSING: Check = Check {
    id: "cpu-requests-missing",
    title: "CPU request not set",
    category: Category::Reliability,
    severity: Severity::Low,
    applies: Applies::Workload,
    description: "Without a CPU request the scheduler cannot reserve CPU for the container, \
                  so it may be placed on a busy node and be starved by its neighbours.",
    remediation: "Set `resources.requests.cpu` on every container (for example `100m`).",
    frameworks: &["nsa-cisa"],
    aliases: &[
        alias(Tool::Trivy, "KSV015"),
        alias(Tool::Kubescape, "C-0050"),
        alias(Tool::Polaris, "cpuRequestsMissing"),
        alias(Tool::Checkov, "CKV_K8S_10"),
        alias(Tool::KubeScore, "container-resources"),
        alias(Tool::KubeLinter, "unset-cpu-requirements"),
    ],
    scope: Scope::Object,
    run: cpu_requests_missing,
};

/// A container without a CPU limit can use every core of its node.
pub static CPU_LIMITS_MISSING: Check = Check {
    id: "cpu-limits-missing",
    title: "CPU limit not set",
    category: Category::Reliability,
    severity: Severity::Low,
    applies: Applies::Workload,
    description: "Without a CPU limit a busy or compromised container can use every core of \
                  its node (cryptomining is the usual abuse) and slow down the other pods there.",
    remediation: "Set `resources.limits.cpu` on every container, or enforce a default with a \
                  LimitRange in the namespace.",
    frameworks: &["nsa-cisa", "mitre:T1496"],
    aliases: &[
        alias(Tool::Trivy, "KSV011"),
        alias(Tool::Kubescape, "C-0050"),
        alias(Tool::Polaris, "cpuLimitsMissing"),
        alias(Tool::Checkov, "CKV_K8S_11"),
        alias(Tool::KubeScore, "container-resources"),
        alias(Tool::KubeLinter, "unset-cpu-requirements"),
    ],
    scope: Scope::Object,
    run: cpu_limits_missing,
};

/// A container without a memory request may be placed on a node that cannot hold it.
pub static MEMORY_REQUESTS_MISSING: Check = Check {
    id: "memory-requests-missing",
    title: "Memory request not set",
    category: Category::Reliability,
    severity: Severity::Low,
    applies: Applies::Workload,
    description: "Without a memory request the scheduler cannot reserve memory for the \
                  container, and under memory pressure its pod is among the first evicted.",
    remediation: "Set `resources.requests.memory` on every container (for example `128Mi`).",
    frameworks: &["nsa-cisa"],
    aliases: &[
        alias(Tool::Trivy, "KSV016"),
        alias(Tool::Kubescape, "C-0004"),
        alias(Tool::Polaris, "memoryRequestsMissing"),
        alias(Tool::Checkov, "CKV_K8S_12"),
        alias(Tool::KubeScore, "container-resources"),
        alias(Tool::KubeLinter, "unset-memory-requirements"),
    ],
    scope: Scope::Object,
    run: memory_requests_missing,
};

/// A container without a memory limit can exhaust its node's memory.
///
/// Rated above the other resource checks: memory cannot be throttled, so one
/// leaking or hostile container makes the kubelet evict its neighbours.
pub static MEMORY_LIMITS_MISSING: Check = Check {
    id: "memory-limits-missing",
    title: "Memory limit not set",
    category: Category::Reliability,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "Memory cannot be throttled: a container without a memory limit that leaks \
                  or is abused can exhaust its node's memory, and the kubelet then evicts \
                  other pods to recover.",
    remediation: "Set `resources.limits.memory` on every container, or enforce a default with \
                  a LimitRange in the namespace.",
    frameworks: &["nsa-cisa", "mitre:T1499"],
    aliases: &[
        alias(Tool::Trivy, "KSV018"),
        alias(Tool::Kubescape, "C-0004"),
        alias(Tool::Polaris, "memoryLimitsMissing"),
        alias(Tool::Checkov, "CKV_K8S_13"),
        alias(Tool::KubeScore, "container-resources"),
        alias(Tool::KubeLinter, "unset-memory-requirements"),
    ],
    scope: Scope::Object,
    run: memory_limits_missing,
};

/// Without a liveness probe a hung container is never restarted.
pub static LIVENESS_PROBE_MISSING: Check = Check {
    id: "liveness-probe-missing",
    title: "Liveness probe not configured",
    category: Category::Reliability,
    severity: Severity::Low,
    applies: Applies::Workload,
    description: "Without a liveness probe the kubelet restarts a container only when its \
                  process exits, so a deadlocked or wedged service stays down. Jobs and \
                  CronJobs are not checked: they run to completion.",
    remediation: "Add a `livenessProbe` (httpGet, tcpSocket, grpc or exec) that fails when \
                  the container can no longer make progress.",
    frameworks: &[],
    aliases: &[
        alias(Tool::Kubescape, "C-0056"),
        alias(Tool::Polaris, "livenessProbeMissing"),
        alias(Tool::Checkov, "CKV_K8S_8"),
        alias(Tool::KubeScore, "pod-probes"),
        alias(Tool::KubeLinter, "no-liveness-probe"),
    ],
    scope: Scope::Object,
    run: liveness_probe_missing,
};

/// Without a readiness probe traffic reaches a container before it can serve.
pub static READINESS_PROBE_MISSING: Check = Check {
    id: "readiness-probe-missing",
    title: "Readiness probe not configured",
    category: Category::Reliability,
    severity: Severity::Low,
    applies: Applies::Workload,
    description: "Without a readiness probe a pod receives Service traffic as soon as its \
                  containers start and keeps receiving it while they cannot serve. Jobs and \
                  CronJobs are not checked: they run to completion.",
    remediation: "Add a `readinessProbe` that succeeds only when the container can serve \
                  requests.",
    frameworks: &[],
    aliases: &[
        alias(Tool::Kubescape, "C-0018"),
        alias(Tool::Polaris, "readinessProbeMissing"),
        alias(Tool::Checkov, "CKV_K8S_9"),
        alias(Tool::KubeScore, "pod-probes"),
        alias(Tool::KubeLinter, "no-readiness-probe"),
    ],
    scope: Scope::Object,
    run: readiness_probe_missing,
};

/// Containers that run for the pod's whole life: regular containers and
/// sidecars (restartable init containers).
fn long_running(workload: &Workload) -> impl Iterator<Item = &ContainerEntry> {
    workload
        .containers
        .iter()
        .filter(|c| c.kind == ContainerKind::Container || c.is_sidecar())
}

/// Which of the two resource maps a check reads.
#[derive(Clone, Copy)]
enum Bound {
    Requests,
    Limits,
}

impl Bound {
    fn field(self) -> &'static str {
        match self {
            Bound::Requests => "requests",
            Bound::Limits => "limits",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Bound::Requests => "request",
            Bound::Limits => "limit",
        }
    }
}

fn resource_map(c: &ContainerEntry, bound: Bound) -> Option<&BTreeMap<String, Quantity>> {
    let resources = c.container.resources.as_ref()?;
    match bound {
        Bound::Requests => resources.requests.as_ref(),
        Bound::Limits => resources.limits.as_ref(),
    }
}

/// Flags every long-running container whose `resources.<bound>.<resource>`
/// is unset or empty (an empty quantity string is as good as none).
fn missing_resource(
    subject: &Subject<'_>,
    out: &mut Violations,
    bound: Bound,
    resource: &str,
    label: &str,
) {
    let Subject::Workload(workload) = subject else {
        return;
    };
    for c in long_running(workload) {
        let value = resource_map(c, bound).and_then(|m| m.get(resource));
        if value.is_some_and(|q| !q.0.trim().is_empty()) {
            continue;
        }
        let path = c
            .path
            .field("resources")
            .field(bound.field())
            .field(resource);
        let message = format!("container `{}` has no {label} {}", c.name(), bound.noun());
        out.container(c, path, message);
    }
}

fn cpu_requests_missing(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    missing_resource(subject, out, Bound::Requests, "cpu", "CPU");
}

fn cpu_limits_missing(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    missing_resource(subject, out, Bound::Limits, "cpu", "CPU");
}

fn memory_requests_missing(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    missing_resource(subject, out, Bound::Requests, "memory", "memory");
}

fn memory_limits_missing(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    missing_resource(subject, out, Bound::Limits, "memory", "memory");
}

/// Jobs, CronJobs and the pods a Job controls run to completion: a probe
/// there has nothing to keep alive. Polaris and Checkov skip them the same
/// way. A bare Pod is checked whatever its `restartPolicy`, as Polaris does.
fn runs_to_completion(workload: &Workload) -> bool {
    let controlled_by_job = workload
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.kind == "Job");
    matches!(workload.object.kind.as_str(), "Job" | "CronJob") || controlled_by_job
}

/// Which probe a check looks for.
#[derive(Clone, Copy)]
enum Probe {
    Liveness,
    Readiness,
}

fn missing_probe(subject: &Subject<'_>, out: &mut Violations, probe: Probe) {
    let Subject::Workload(workload) = subject else {
        return;
    };
    if runs_to_completion(workload) {
        return;
    }
    for c in long_running(workload) {
        let (field, configured, noun) = match probe {
            Probe::Liveness => (
                "livenessProbe",
                c.container.liveness_probe.is_some(),
                "liveness",
            ),
            Probe::Readiness => (
                "readinessProbe",
                c.container.readiness_probe.is_some(),
                "readiness",
            ),
        };
        if !configured {
            let message = format!("container `{}` has no {noun} probe", c.name());
            out.container(c, c.path.field(field), message);
        }
    }
}

fn liveness_probe_missing(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    missing_probe(subject, out, Probe::Liveness);
}

fn readiness_probe_missing(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    missing_probe(subject, out, Probe::Readiness);
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{findings, paths};

    /// One regular container with nothing set, one fully specified, a classic
    /// init container, a sidecar and an ephemeral container.
    const MIXED: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: bare
        image: nginx:1.27
      - name: full
        image: nginx:1.27
        resources:
          requests: {cpu: 100m, memory: 128Mi}
          limits: {cpu: 500m, memory: 256Mi}
        livenessProbe: {httpGet: {path: /healthz, port: 8080}}
        readinessProbe: {httpGet: {path: /ready, port: 8080}}
      initContainers:
      - name: migrate
        image: migrate:1.0
      - name: proxy
        image: envoy:1.30
        restartPolicy: Always
      ephemeralContainers:
      - name: debug
        image: busybox:1.36
"#;

    const SPEC: &str = "spec.template.spec";

    #[test]
    fn cpu_requests_missing_flags_regular_and_sidecar_containers() {
        assert_eq!(
            paths(MIXED, "cpu-requests-missing"),
            [
                format!("{SPEC}.containers[name=bare].resources.requests.cpu"),
                format!("{SPEC}.initContainers[name=proxy].resources.requests.cpu"),
            ]
        );
    }

    #[test]
    fn cpu_limits_missing_flags_regular_and_sidecar_containers() {
        assert_eq!(
            paths(MIXED, "cpu-limits-missing"),
            [
                format!("{SPEC}.containers[name=bare].resources.limits.cpu"),
                format!("{SPEC}.initContainers[name=proxy].resources.limits.cpu"),
            ]
        );
    }

    #[test]
    fn memory_requests_missing_flags_regular_and_sidecar_containers() {
        assert_eq!(
            paths(MIXED, "memory-requests-missing"),
            [
                format!("{SPEC}.containers[name=bare].resources.requests.memory"),
                format!("{SPEC}.initContainers[name=proxy].resources.requests.memory"),
            ]
        );
    }

    #[test]
    fn memory_limits_missing_flags_regular_and_sidecar_containers() {
        let found = findings(MIXED, "memory-limits-missing");
        let messages: Vec<_> = found.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "container `bare` has no memory limit",
                "container `proxy` has no memory limit"
            ]
        );
        assert_eq!(
            paths(MIXED, "memory-limits-missing"),
            [
                format!("{SPEC}.containers[name=bare].resources.limits.memory"),
                format!("{SPEC}.initContainers[name=proxy].resources.limits.memory"),
            ]
        );
    }

    #[test]
    fn empty_quantity_counts_as_missing() {
        let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
spec:
  containers:
  - name: app
    image: nginx:1.27
    resources: {limits: {cpu: "", memory: 64Mi}}
"#;
        assert_eq!(
            paths(yaml, "cpu-limits-missing"),
            ["spec.containers[name=app].resources.limits.cpu"]
        );
        assert!(paths(yaml, "memory-limits-missing").is_empty());
    }

    #[test]
    fn resource_checks_pass_a_fully_specified_pod() {
        let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
spec:
  containers:
  - name: app
    image: nginx:1.27
    resources:
      requests: {cpu: 100m, memory: 128Mi}
      limits: {cpu: 500m, memory: 256Mi}
"#;
        for id in [
            "cpu-requests-missing",
            "cpu-limits-missing",
            "memory-requests-missing",
            "memory-limits-missing",
        ] {
            assert!(paths(yaml, id).is_empty(), "{id}");
        }
    }

    #[test]
    fn liveness_probe_missing_skips_init_and_ephemeral_containers() {
        assert_eq!(
            paths(MIXED, "liveness-probe-missing"),
            [
                format!("{SPEC}.containers[name=bare].livenessProbe"),
                format!("{SPEC}.initContainers[name=proxy].livenessProbe"),
            ]
        );
    }

    #[test]
    fn readiness_probe_missing_skips_init_and_ephemeral_containers() {
        let found = findings(MIXED, "readiness-probe-missing");
        assert_eq!(found[0].message, "container `bare` has no readiness probe");
        assert_eq!(found[0].container.as_deref(), Some("bare"));
        assert_eq!(
            paths(MIXED, "readiness-probe-missing"),
            [
                format!("{SPEC}.containers[name=bare].readinessProbe"),
                format!("{SPEC}.initContainers[name=proxy].readinessProbe"),
            ]
        );
    }

    #[test]
    fn probes_are_not_required_of_jobs_cronjobs_and_job_pods() {
        let yaml = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: shop}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: run, image: busybox:1.36}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: shop}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: run, image: busybox:1.36}]
---
apiVersion: v1
kind: Pod
metadata:
  name: once-x7k2p
  namespace: shop
  ownerReferences:
  - {apiVersion: batch/v1, kind: Job, name: once, uid: "1", controller: true}
spec:
  restartPolicy: Never
  containers: [{name: run, image: busybox:1.36}]
"#;
        assert!(paths(yaml, "liveness-probe-missing").is_empty());
        assert!(paths(yaml, "readiness-probe-missing").is_empty());
    }

    #[test]
    fn probes_are_required_of_a_bare_pod() {
        let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
spec:
  restartPolicy: Never
  containers: [{name: app, image: nginx:1.27}]
"#;
        assert_eq!(
            paths(yaml, "liveness-probe-missing"),
            ["spec.containers[name=app].livenessProbe"]
        );
    }
}
