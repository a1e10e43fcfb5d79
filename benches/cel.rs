//! What custom CEL checks cost: one evaluation of `WORKLOADS` Deployments
//! with the built-in catalog alone, and with the four recipes of
//! docs/custom-checks.md (required labels, allowed registries, no `latest`,
//! memory ratio) added by a ScanPolicy.
//!
//! `cargo bench --bench cel`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use palisade::checks::catalog;
use palisade::crd::ScanPolicySpec;
use palisade::engine;
use palisade::loader::Loader;
use palisade::model::Inventory;
use palisade::policy::Policy;

const WORKLOADS: usize = 1000;

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: NAME, namespace: shop, labels: {app: NAME}}
spec:
  replicas: 2
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME, owner: team-a}}
    spec:
      containers:
        - name: app
          image: registry.acme.io/NAME:1.2
          resources: {requests: {memory: 256Mi}, limits: {memory: 1Gi}}
        - name: sidecar
          image: docker.io/envoy:latest
"#;

const CUSTOM_CHECKS: &str = r#"
customChecks:
  - id: acme/required-labels
    title: Workloads carry the owner and cost-centre labels
    severity: medium
    appliesTo: {workloads: true}
    validations:
      - expression: "has(object.metadata.labels) && ['owner', 'cost-centre'].all(l, l in object.metadata.labels)"
  - id: acme/allowed-registries
    title: Images come from an allowed registry
    severity: high
    appliesTo: {workloads: true}
    params: {registries: ["registry.acme.io/", "mirror.acme.io/"]}
    validations:
      - expression: "object.spec.containers.all(c, params.registries.exists(r, c.image.startsWith(r)))"
  - id: acme/no-latest
    title: Images are pinned
    severity: medium
    appliesTo: {workloads: true}
    validations:
      - expression: "object.spec.containers.all(c, !c.image.endsWith(':latest'))"
  - id: acme/memory-ratio
    title: Memory limit at most twice the request
    severity: low
    appliesTo: {workloads: true}
    validations:
      - expression: >-
          object.spec.containers.all(c, !has(c.resources.limits) || !has(c.resources.requests) ||
            !quantity(c.resources.limits.memory).isGreaterThan(
              quantity(c.resources.requests.memory).add(quantity(c.resources.requests.memory))))
"#;

fn inventory() -> Inventory {
    let text: String = (0..WORKLOADS)
        .map(|i| DEPLOYMENT.replace("NAME", &format!("app-{i}")))
        .collect::<Vec<_>>()
        .join("---\n");
    let loaded = Loader::new().load_text("bench.yaml", &text);
    assert!(loaded.errors.is_empty());
    let resources: Vec<_> = loaded.objects.into_iter().map(|o| o.resource).collect();
    Inventory::from_resources(resources.iter())
}

fn bench(c: &mut Criterion) {
    let inventory = inventory();
    let builtin = Policy::default();
    let spec: ScanPolicySpec = serde_norway::from_str(CUSTOM_CHECKS).expect("policy");
    let custom = Policy::from_spec(&spec, catalog(), None).expect("custom checks compile");
    let mut group = c.benchmark_group("evaluate");
    group.throughput(Throughput::Elements(WORKLOADS as u64));
    group.sample_size(10);
    group.bench_function("builtin_catalog", |b| {
        b.iter(|| black_box(engine::evaluate(&inventory, catalog(), &builtin)))
    });
    group.bench_function("with_four_custom_checks", |b| {
        b.iter(|| black_box(engine::evaluate(&inventory, catalog(), &custom)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
