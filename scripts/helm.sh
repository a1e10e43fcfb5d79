#!/usr/bin/env bash
# Builds the Helm CLI that validates helm/palisade (tests/helm_chart.rs) from
# the Go module in tests/cluster/helm into target/bin/helm and prints its path.
# Only Go (>= 1.26) and a reachable Go module proxy are needed; the module and
# build caches are Go's usual ones, so an unchanged rebuild takes about a second.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
module="$repo/tests/cluster/helm"
bindir="$repo/target/bin"

log() { echo "helm.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

source "$(dirname "${BASH_SOURCE[0]}")/find-go.sh"

# module_version PATH: the version go.mod requires for module PATH.
module_version() {
	sed -n "s|^[[:space:]]*$1 \(v[0-9][^[:space:]]*\).*|\1|p" "$module/go.mod"
}

go=$(find_go 1.26)
helm_version=$(module_version helm.sh/helm/v3)
[[ -n $helm_version ]] || die "cannot find the helm.sh/helm/v3 version in $module/go.mod"
# Helm's own Makefile stamps its version and the Kubernetes version it
# assumes for `helm lint` and `.Capabilities`; do the same.
k8s_version=$(module_version k8s.io/client-go)
[[ -n $k8s_version ]] || die "cannot find the k8s.io/client-go version in $module/go.mod"
k8s_minor=${k8s_version#v0.}
k8s_minor=${k8s_minor%%.*}
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
	ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done

mkdir -p "$bindir"
# Concurrent builds would write the same output file: take turns.
exec 8>"$bindir/.helm-build.lock"
if command -v flock >/dev/null 2>&1; then
	flock 8
fi
# go.mod and go.sum are committed and read-only in module mode; missing
# modules come from GOPROXY into the module cache. CGO_ENABLED=0 as for
# Helm's release binaries: static, no C compiler needed.
(
	cd "$module"
	CGO_ENABLED=0 "$go" build -trimpath -buildvcs=false -ldflags="$ldflags" \
		-o "$bindir/helm" helm.sh/helm/v3/cmd/helm
)
exec 8>&-
echo "$bindir/helm"
