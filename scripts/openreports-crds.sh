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

find_go() {
	if command -v go >/dev/null 2>&1; then
		command -v go
	elif [[ -x /usr/local/go/bin/go ]]; then
		echo /usr/local/go/bin/go
	else
		echo "openreports-crds.sh: go not found (install Go >= 1.25 or put it in PATH)" >&2
		exit 1
	fi
}

go=$(find_go)
dir=$(cd "$root/tests/cluster/openreports" &&
	"$go" mod download -json "$module" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [[ -z "$dir" || ! -d "$dir/config/crd" ]]; then
	echo "openreports-crds.sh: no config/crd in the downloaded $module (dir: '${dir}')" >&2
	exit 1
fi
echo "$dir/config/crd"
