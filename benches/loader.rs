//! Loader benchmark: the 10,000-object stream that `bench/gen.py` writes
//! (about 10 MB of YAML in one file) read by `Loader::load_text`, on one
//! thread and on every core.
//!
//! `cargo bench --bench loader`; the stream is generated into
//! `target/bench/c10k.yaml` when it is not there yet.

use std::hint::black_box;
use std::path::Path;
use std::process::Command;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use palisade::loader::Loader;

const OBJECTS: &str = "10000";

/// The generated stream's text.
fn stream() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = root.join("target/bench/c10k.yaml");
    if !file.exists() {
        let status = Command::new("python3")
            .arg(root.join("bench/gen.py"))
            .args(["--one-file", OBJECTS])
            .arg(&file)
            .status()
            .expect("python3 runs bench/gen.py");
        assert!(status.success(), "bench/gen.py failed");
    }
    std::fs::read_to_string(&file).expect("the generated stream")
}

fn loading(c: &mut Criterion) {
    let text = stream();
    let mut group = c.benchmark_group("loader");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(10);
    for (name, threads) in [
        ("load_text 10k objects, 1 thread", 1),
        ("load_text 10k objects, every core", 0),
    ] {
        let loader = Loader::new().threads(threads);
        group.bench_function(name, |b| {
            b.iter(|| {
                let loaded = loader.load_text("c10k.yaml", black_box(&text));
                assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
                loaded.objects.len()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, loading);
criterion_main!(benches);
