//! ScanPolicy cost in the operator: one pass over `TARGETS` Deployments
//! under a policy of 12,000 exceptions (per-object accepted risks, as a
//! large cluster accumulates them; a few match the targets).
//!
//! - `pass/policy_per_evaluation`: the policy is validated and built for
//!   every evaluation, as the operator did before it compiled it once.
//! - `pass/compiled_once`: built once, then only given the time of each
//!   evaluation, as the operator does now.
//!
//! `cargo bench --bench policy`; the numbers are in docs/performance.md.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;

use palisade::checks::catalog;
use palisade::crd::ScanPolicySpec;
use palisade::engine;
use palisade::loader::Loader;
use palisade::model::Inventory;
use palisade::policy::Policy;

const EXCEPTIONS: usize = 12_000;
const TARGETS: usize = 100;

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: NAME
  namespace: NS
  labels: {app.kubernetes.io/name: NAME, tier: web}
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: NAME}
  template:
    metadata:
      labels: {app.kubernetes.io/name: NAME}
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/NAME:latest
          securityContext:
            privileged: true
"#;

/// Exceptions for objects in 400 namespaces, by name glob, with a few
/// label selectors and expiries, cycling through some check ids.
fn policy_spec() -> ScanPolicySpec {
    let checks = [
        "privileged-container",
        "memory-limits-missing",
        "image-tag-latest",
        "run-as-non-root",
        "host-network",
    ];
    let exceptions: Vec<serde_json::Value> = (0..EXCEPTIONS)
        .map(|i| {
            let mut e = serde_json::json!({
                "name": format!("accepted-{i}"),
                "checks": [checks[i % checks.len()]],
                "namespaces": [format!("team-{}", i % 400)],
                "names": [format!("svc-{i}-*")],
                "reason": "accepted by the platform team",
            });
            if i % 10 == 0 {
                e["selector"] = serde_json::json!({"matchLabels": {"tier": "batch"}});
            }
            if i % 7 == 0 {
                e["expires"] = serde_json::json!("2999-01-01T00:00:00Z");
            }
            e
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "exceptions": exceptions })).expect("a valid policy")
}

/// One inventory per target, as the operator evaluates them one by one.
fn targets() -> Vec<Inventory> {
    (0..TARGETS)
        .map(|i| {
            // Exception `i * 120 + 1` covers this target (its check,
            // namespace and name; no selector).
            let covering = i * 120 + 1;
            let text = DEPLOYMENT
                .replace("NAME", &format!("svc-{covering}-api"))
                .replace("NS", &format!("team-{}", covering % 400));
            let loaded = Loader::new().load_text("bench.yaml", &text);
            assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
            Inventory::from_resources(loaded.objects.iter().map(|o| &o.resource))
        })
        .collect()
}

fn pass(c: &mut Criterion) {
    let spec = policy_spec();
    let inventories = targets();
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    let compiled = Policy::from_spec(&spec, catalog(), Some(now)).expect("valid");
    let suppressed: usize = inventories
        .iter()
        .flat_map(|inv| engine::evaluate(inv, catalog(), &compiled))
        .filter(|f| f.suppressed.is_some())
        .count();
    assert!(suppressed > 0, "some exceptions match the targets");

    let mut group = c.benchmark_group("pass");
    group.throughput(Throughput::Elements(TARGETS as u64));
    group.sample_size(10);
    group.bench_function("policy_per_evaluation", |b| {
        b.iter(|| {
            for inventory in &inventories {
                let policy = Policy::from_spec(black_box(&spec), catalog(), Some(now)).unwrap();
                black_box(engine::evaluate(inventory, catalog(), &policy));
            }
        })
    });
    group.bench_function("compiled_once", |b| {
        b.iter(|| {
            for inventory in &inventories {
                black_box(engine::evaluate(inventory, catalog(), black_box(&compiled)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, pass);
criterion_main!(benches);
