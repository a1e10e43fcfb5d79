//! Findings in bounded memory: `FINDINGS` generated findings (six per
//! object, the density of a scan of plain Deployments) pushed into a
//! `FindingSpool` with its default budget, in the order the engine finds
//! them, then read back in report order.
//!
//! - `spool/push_and_read`: push every finding, finish, read them all.
//!
//! `cargo bench --bench spool`. Peak memory is not a criterion number: run
//! the same work once with `cargo bench --bench spool -- --once N` under
//! `/usr/bin/time -f %M` (kilobytes); `--once N --in-memory` does it with
//! every finding held in one sorted `Vec` instead, for comparison.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group};

use palisade::checks::catalog;
use palisade::engine::spool::{FindingSpool, Reported};
use palisade::engine::{Finding, Severity, Suppression, SuppressionSource};
use palisade::loader::Source;
use palisade::model::ObjectRef;

const FINDINGS: usize = 1_000_000;
const PER_OBJECT: usize = 6;

/// The findings of object `index`, as the engine gives them: one object
/// shared by all, one file shared by every object of the same file.
fn object_findings(index: usize, file: &Arc<str>, out: &mut Vec<Reported>) {
    let object = Arc::new(ObjectRef {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: Some(format!("team-{:03}", index % 200)),
        name: format!("app-{index:07}"),
        uid: None,
    });
    let checks = catalog();
    let source = Source {
        file: Arc::clone(file),
        line: 1 + index * 30,
        document: index,
    };
    for k in 0..PER_OBJECT {
        let check = checks[(index + k * 7) % checks.len()];
        let suppressed = (k == 5 && index.is_multiple_of(10)).then(|| {
            Box::new(Suppression {
                source: SuppressionSource::Annotation,
                reason: "accepted for this team".into(),
            })
        });
        out.push(Reported {
            finding: Finding {
                object: Arc::clone(&object),
                check,
                severity: Severity::ALL_WORST_FIRST[k % 5],
                message: format!("container `app` {} (finding {k})", check.title),
                path: format!("spec.template.spec.containers[name=app].securityContext.f{k}"),
                container: Some("app".into()),
                suppressed,
            },
            definition: 0,
            source: Some(source.clone()),
        });
    }
}

/// Pushes `findings` generated findings, objects in input order (not
/// report order: namespaces interleave), and reads them back; returns how
/// many were read and how many runs were written.
fn push_and_read(findings: usize) -> (usize, usize) {
    let files: Vec<Arc<str>> = (0..100)
        .map(|i| Arc::from(format!("manifests/part-{i:03}.yaml")))
        .collect();
    let mut spool = FindingSpool::new();
    let mut batch = Vec::with_capacity(PER_OBJECT);
    for index in 0..findings.div_ceil(PER_OBJECT) {
        object_findings(index, &files[index % files.len()], &mut batch);
        for reported in batch.drain(..) {
            spool.push(reported);
        }
    }
    let spooled = spool.finish().expect("runs written");
    let mut read = 0;
    for reported in spooled.iter() {
        black_box(reported.expect("runs read"));
        read += 1;
    }
    (read, spooled.runs())
}

/// The same findings held in one `Vec`, sorted and deduplicated: what a
/// scan without the spool holds.
fn in_memory(findings: usize) -> usize {
    let files: Vec<Arc<str>> = (0..100)
        .map(|i| Arc::from(format!("manifests/part-{i:03}.yaml")))
        .collect();
    let mut all = Vec::new();
    for index in 0..findings.div_ceil(PER_OBJECT) {
        object_findings(index, &files[index % files.len()], &mut all);
    }
    all.sort_unstable_by(|a, b| (&a.finding, a.definition).cmp(&(&b.finding, b.definition)));
    all.dedup_by(|a, b| (&a.finding, a.definition) == (&b.finding, b.definition));
    all.iter().map(black_box).count()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("spool");
    group.sample_size(10);
    group.throughput(Throughput::Elements(FINDINGS as u64));
    group.bench_function("push_and_read", |b| {
        b.iter(|| push_and_read(black_box(FINDINGS)))
    });
    group.finish();
}

criterion_group!(benches, bench);

fn main() {
    // `--once N`: the work once, for peak memory under `/usr/bin/time`.
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--once") {
        let n = args
            .get(at + 1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(FINDINGS);
        if args.iter().any(|a| a == "--in-memory") {
            println!("{} findings sorted in memory", in_memory(n));
        } else {
            let (read, runs) = push_and_read(n);
            println!("{read} findings read back from {runs} runs");
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
