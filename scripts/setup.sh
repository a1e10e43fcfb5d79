#!/usr/bin/env bash
# Makes sure this machine has what building and testing Palisade needs:
# the Rust toolchain's rustfmt and clippy, Go, and the crates and Go modules
# (fetched through the package registries into their usual caches).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="/usr/local/go/bin:$HOME/go/bin:$HOME/.cargo/bin:$PATH"

need() { command -v "$1" >/dev/null 2>&1 || { echo "setup: $1 is required but not installed" >&2; exit 1; }; }
need cargo
need go

for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    rustup component add "$component"
  fi
done

cargo fetch --locked >&2
(cd tests/cluster && go mod download) >&2
(cd tests/cluster/helm && go mod download) >&2
