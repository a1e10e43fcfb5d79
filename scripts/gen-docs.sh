#!/usr/bin/env bash
# Regenerates the generated files that are checked in (tests fail when they
# are stale): docs/checks.md from the check catalog, the CRD YAML in
# crds/ and manifests/ from the Rust types in src/crd/, and the generated
# sections of docs/operations.md (operator flags, Helm values).
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
# The generated sections of docs/operations.md: the operator's flags, and the
# Helm chart's values once the chart exists.
chart_args=()
if [[ -f helm/palisade/values.schema.json ]]; then
  chart_args=(--chart helm/palisade)
fi
"$palisade" docs refresh docs/operations.md "${chart_args[@]}" > docs/operations.md.tmp
mv docs/operations.md.tmp docs/operations.md
echo "regenerated docs/checks.md, crds/palisade.yaml, manifests/crds.yaml, docs/operations.md (generated sections)" >&2
