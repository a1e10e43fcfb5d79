#!/usr/bin/env bash
# The whole test suite: formatting, lints, generated files, unit tests,
# conformance suites, and end-to-end tests against a real API server that
# this script starts and stops.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="/usr/local/go/bin:$HOME/go/bin:$HOME/.cargo/bin:$PATH"

step() { printf '\n==> %s\n' "$*" >&2; }

step "setup"
# The build of the suite takes a few GB (Go's module and build caches, the
# Rust test binaries): say how much room there is, for when it runs out.
df -h "$root" >&2 || true
scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings

step "go vet (tests/cluster)"
# The same build settings as the API server's build (scripts/test-cluster.sh),
# so that both use one compilation of its dependencies (vetted with the
# defaults, they were compiled twice: 10 more minutes and 3 GB more of Go's
# build cache on a new machine).
(cd tests/cluster && CGO_ENABLED=0 go vet -trimpath ./...)

step "starting the test cluster"
cluster_dir="$root/target/test-cluster-ci"
kubeconfig="$(scripts/test-cluster.sh up "$cluster_dir" | tail -n 1)"
trap 'scripts/test-cluster.sh down "$cluster_dir" >&2 || true' EXIT
export PALISADE_TEST_KUBECONFIG="$kubeconfig"

step "building helm (tests/helm_chart.rs)"
PALISADE_TEST_HELM="$(scripts/helm.sh)"
export PALISADE_TEST_HELM

step "cargo test"
results="$root/target/test-results.log"
cargo test --locked --no-fail-fast --all-targets 2>&1 | tee "$results"
cargo test --locked --doc 2>&1 | tee -a "$results"
df -h "$root" >&2 || true
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$results"
