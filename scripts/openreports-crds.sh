#!/usr/bin/env bash
# Prints the directory holding the OpenReports CRDs (openreports.io
# Report and ClusterReport), downloading the pinned Go module
# github.com/openreports/reports-api (tests/cluster/openreports/go.mod)
# through the Go module proxy when it is not in the module cache yet.
#
#   kubectl apply --server-side -f "$(scripts/openreports-crds.sh)"
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
module=github.com/openreports/reports-api

source "$(dirname "${BASH_SOURCE[0]}")/find-go.sh"

go=$(find_go 1.25)
dir=$(cd "$root/tests/cluster/openreports" &&
	"$go" mod download -json "$module" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [[ -z "$dir" || ! -d "$dir/config/crd" ]]; then
	echo "openreports-crds.sh: no config/crd in the downloaded $module (dir: '${dir}')" >&2
	exit 1
fi
echo "$dir/config/crd"
