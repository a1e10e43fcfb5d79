//! Namespace posture cost, for one namespace of `WORKLOADS` Deployments
//! (a third hardened, a third plain, a third privileged):
//!
//! - `posture/evaluate_objects`: the engine over every object of the
//!   namespace, what its objects' own evaluations cost together.
//! - `posture/namespace_report`: what a Namespace's evaluation adds for its
//!   posture in the operator: the same evaluation, then the Pod Security
//!   level of every template and the framework pass rates.
//! - `posture/levels_only`: the Pod Security verdicts and labels alone.
//!
//! `cargo bench --bench posture`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use palisade::checks::catalog;
use palisade::engine::{self, Context};
use palisade::loader::Loader;
use palisade::model::Inventory;
use palisade::policy::Policy;
use palisade::posture;

const WORKLOADS: usize = 1000;
const NAMESPACE: &str = "team";

fn deployment(i: usize) -> String {
    let security_context = match i % 3 {
        0 => {
            "{allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}"
        }
        1 => "{}",
        _ => "{privileged: true}",
    };
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app-{i}, namespace: {NAMESPACE}}}\n\
         spec:\n  selector: {{matchLabels: {{app: a{i}}}}}\n  template:\n    metadata: {{labels: {{app: a{i}}}}}\n    \
         spec:\n      containers:\n      - name: app\n        image: ghcr.io/acme/app:1.0\n        \
         securityContext: {security_context}\n"
    )
}

fn inventory() -> Inventory {
    let mut text = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NAMESPACE}, labels: {{pod-security.kubernetes.io/enforce: baseline}}}}\n"
    );
    for i in 0..WORKLOADS {
        text.push_str("---\n");
        text.push_str(&deployment(i));
    }
    let loaded = Loader::new().load_text("bench.yaml", &text);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    Inventory::from_resources(loaded.objects.iter().map(|o| &o.resource))
}

fn bench(c: &mut Criterion) {
    let inventory = inventory();
    let policy = Policy::default();
    let mut group = c.benchmark_group("posture");
    group.throughput(Throughput::Elements(WORKLOADS as u64));
    group.sample_size(20);
    group.bench_function("evaluate_objects", |b| {
        b.iter(|| {
            let cx = Context::new(&inventory);
            let findings: Vec<_> = posture::subjects_in(&inventory, NAMESPACE)
                .flat_map(|s| engine::evaluate_subject(&s, &cx, catalog(), &policy))
                .collect();
            black_box(findings)
        })
    });
    group.bench_function("namespace_report", |b| {
        b.iter(|| {
            let cx = Context::new(&inventory);
            let findings: Vec<_> = posture::subjects_in(&inventory, NAMESPACE)
                .flat_map(|s| engine::evaluate_subject(&s, &cx, catalog(), &policy))
                .collect();
            black_box(posture::namespace_posture(
                NAMESPACE,
                &cx,
                &findings,
                catalog(),
                &policy,
            ))
        })
    });
    group.bench_function("levels_only", |b| {
        b.iter(|| {
            let cx = Context::new(&inventory);
            black_box(posture::namespace_posture(
                NAMESPACE,
                &cx,
                &[],
                &[],
                &policy,
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
