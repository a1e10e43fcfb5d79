#!/usr/bin/env bash
# Regenerates the generated files that are checked in (tests fail when they
# are stale): docs/checks.md from the check catalog, and the CRD YAML in
# crds/ and manifests/ from the Rust types in src/crd/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin palisade
palisade=target/debug/palisade
"$palisade" checks --output markdown > docs/checks.md.tmp
mv docs/checks.md.tmp docs/checks.md
for file in crds/palisade.yaml manifests/crds.yaml; do
  "$palisade" crds > "$file.tmp"
  mv "$file.tmp" "$file"
done
echo "regenerated docs/checks.md, crds/palisade.yaml, manifests/crds.yaml" >&2
