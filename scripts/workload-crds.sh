#!/usr/bin/env bash
# Prints the CRD files of the workload kinds the e2e tests exercise, one
# per line: Argo Rollouts' Rollout, Knative Serving's Service and
# Configuration and Revision, KEDA's ScaledJob. They come from the pinned Go modules
# (tests/cluster/workload-crds/go.mod), downloaded through the Go module
# proxy when they are not in the module cache yet.
#
#   for f in $(scripts/workload-crds.sh); do kubectl apply --server-side -f "$f"; done
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)

source "$(dirname "${BASH_SOURCE[0]}")/find-go.sh"

go=$(find_go 1.25)

# The directory of MODULE in the module cache.
module_dir() {
	(cd "$root/tests/cluster/workload-crds" &&
		"$go" mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
}

print_crd() {
	local file="$1/$2"
	if [[ ! -f "$file" ]]; then
		echo "workload-crds.sh: no $2 in the downloaded module ($1)" >&2
		exit 1
	fi
	echo "$file"
}

argo=$(module_dir github.com/argoproj/argo-rollouts)
knative=$(module_dir knative.dev/serving)
keda=$(module_dir github.com/kedacore/keda/v2)
print_crd "$argo" manifests/crds/rollout-crd.yaml
print_crd "$knative" config/core/300-resources/service.yaml
print_crd "$knative" config/core/300-resources/configuration.yaml
print_crd "$knative" config/core/300-resources/revision.yaml
print_crd "$keda" config/crd/bases/keda.sh_scaledjobs.yaml
