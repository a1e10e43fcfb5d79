//! Cost of provenance in the operator, per watch event and per evaluation,
//! on the `managedFields` of a Deployment as the API server returns them
//! after an Argo CD server-side apply, a `kubectl edit` of one field and
//! the controller manager's status updates.
//!
//! - `provenance/reduce`: `managedFields` → the kept [`Provenance`], done
//!   for every watch event before the fields are dropped.
//! - `provenance/encode_decode`: the kept form written into the cache and
//!   read back at evaluation.
//! - `provenance/attribute_20_findings`: naming the manager of twenty
//!   finding paths of one report.
//!
//! `cargo bench --bench provenance`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use palisade::operator::provenance::Provenance;

const MANAGED_FIELDS: &str = r#"[
  {"manager": "argocd-controller", "operation": "Apply", "apiVersion": "apps/v1",
   "time": "2026-12-01T10:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {
    "f:metadata": {"f:labels": {"f:app.kubernetes.io/name": {}, "f:app.kubernetes.io/part-of": {}}},
    "f:spec": {"f:replicas": {}, "f:selector": {},
      "f:template": {"f:metadata": {"f:labels": {"f:app.kubernetes.io/name": {}}},
        "f:spec": {"f:serviceAccountName": {}, "f:securityContext": {"f:runAsNonRoot": {}, "f:seccompProfile": {"f:type": {}}},
          "f:containers": {
            "k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}, "f:args": {},
              "f:ports": {"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:name": {}}},
              "f:env": {"k:{\"name\":\"MODE\"}": {".": {}, "f:name": {}, "f:value": {}}},
              "f:resources": {"f:limits": {"f:memory": {}}, "f:requests": {"f:cpu": {}, "f:memory": {}}},
              "f:securityContext": {"f:allowPrivilegeEscalation": {}, "f:readOnlyRootFilesystem": {}, "f:capabilities": {"f:drop": {}}},
              "f:readinessProbe": {"f:httpGet": {"f:path": {}, "f:port": {}}}},
            "k:{\"name\":\"proxy\"}": {".": {}, "f:image": {}, "f:name": {}}},
          "f:volumes": {"k:{\"name\":\"cache\"}": {".": {}, "f:emptyDir": {}, "f:name": {}}}}}}}},
  {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1",
   "time": "2026-12-02T09:30:00Z", "fieldsType": "FieldsV1", "fieldsV1": {
    "f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {
      "f:securityContext": {"f:privileged": {}}}}}}}}},
  {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
   "time": "2026-12-02T09:30:05Z", "subresource": "status", "fieldsType": "FieldsV1", "fieldsV1": {
    "f:metadata": {"f:annotations": {".": {}, "f:deployment.kubernetes.io/revision": {}}},
    "f:status": {"f:availableReplicas": {}, "f:conditions": {}, "f:observedGeneration": {}, "f:readyReplicas": {}, "f:replicas": {}, "f:updatedReplicas": {}}}}
]"#;

fn paths() -> Vec<String> {
    let fields = [
        "securityContext.privileged",
        "securityContext.runAsNonRoot",
        "securityContext.capabilities.drop",
        "securityContext.readOnlyRootFilesystem",
        "resources.limits.cpu",
        "image",
        "livenessProbe",
        "ports[0].hostPort",
        "env[name=MODE].value",
        "args",
    ];
    ["app", "proxy"]
        .iter()
        .flat_map(|c| {
            fields
                .iter()
                .map(move |f| format!("spec.template.spec.containers[name={c}].{f}"))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let entries: Vec<ManagedFieldsEntry> =
        serde_json::from_str(MANAGED_FIELDS).expect("managedFields");
    let provenance = Provenance::from_managed_fields(&entries);
    let encoded = provenance.encode();
    let paths = paths();
    let mut group = c.benchmark_group("provenance");
    group.bench_function("reduce", |b| {
        b.iter(|| Provenance::from_managed_fields(black_box(&entries)))
    });
    group.bench_function("encode_decode", |b| {
        b.iter(|| Provenance::decode(&black_box(&provenance).encode()))
    });
    group.bench_function("attribute_20_findings", |b| {
        b.iter(|| {
            paths
                .iter()
                .filter_map(|p| black_box(&provenance).set_by(p))
                .count()
        })
    });
    group.finish();
    eprintln!(
        "kept form: {} bytes; managedFields: {} bytes of JSON",
        encoded.len(),
        serde_json::to_string(&entries).map_or(0, |s| s.len())
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
