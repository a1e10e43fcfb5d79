#!/usr/bin/env bash
# Scale benchmark of `palisade operator`: starts its own test cluster, fills
# it with Deployments (the controller manager creates their ReplicaSets and
# Pods), ServiceAccounts, Roles and RoleBindings, runs the release operator as
# the ServiceAccount of manifests/ and measures time to all reports written,
# peak RSS, API requests, an idle full resync's writes and change-to-report
# latency. Prints a table; writes JSON to target/bench/operator-scale.json.
#
#   bench/operator-scale.sh [--workloads N] [--namespaces N] [--roles N]
#       [--service-accounts N] [--changes N] [--resync-interval 10m]
#       [--keep-cluster] [--reuse-cluster] [--out FILE] [--binary PATH]
#       [--with-trivy-operator [--trivy-settle 60] [--skip-palisade]]
#
# Defaults: 10,000 Deployments in 100 namespaces, 2,000 Roles and as many
# RoleBindings, 1,000 ServiceAccounts, 50 changes. --keep-cluster leaves the
# cluster running (target/bench/scale-cluster); --reuse-cluster runs the
# operator phases again on a cluster kept that way (objects are not created
# twice). --binary measures a given palisade binary instead of building one.
# --with-trivy-operator then runs trivy-operator on the same cluster: built
# from its Go module (bench/trivy-operator, into target/bench/), its CRDs
# applied from that module, only its config-audit and RBAC-assessment
# scanners, with the checks embedded in it; its run ends when no new report
# came for --trivy-settle seconds. --skip-palisade runs trivy-operator alone.
# Numbers are documented in docs/performance.md.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

keep=false
trivy=false
reuse=false
binary=
out="$root/target/bench/operator-scale.json"
pass=()
while [ $# -gt 0 ]; do
    case "$1" in
        --workloads | --namespaces | --roles | --service-accounts | --changes | \
            --resync-interval | --change-gap | --kcm-timeout | --scan-timeout | --parallel | \
            --trivy-settle)
            [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
            pass+=("$1" "$2")
            shift 2
            ;;
        --skip-resync | --skip-palisade) pass+=("$1"); shift ;;
        --with-trivy-operator) trivy=true; shift ;;
        --keep-cluster) keep=true; shift ;;
        --reuse-cluster) reuse=true; keep=true; shift ;;
        --out) out="$2"; shift 2 ;;
        --binary) binary="$2"; shift 2 ;;
        -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

python3 -c 'import yaml' 2>/dev/null || {
    echo "operator-scale.sh needs PyYAML (apt-get install python3-yaml or pip install pyyaml)" >&2
    exit 2
}

cluster_dir="$root/target/bench/scale-cluster"
work="$root/target/bench/operator-scale"
# A target dir of its own, so the build does not wait on other builds' lock.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/bench-build}"
mkdir -p "$work" "$(dirname "$out")"

if [ -z "$binary" ]; then
    echo "building palisade (release) into $CARGO_TARGET_DIR" >&2
    cargo build --release --quiet --bin palisade
    binary="$CARGO_TARGET_DIR/release/palisade"
fi

if [ "$trivy" = true ]; then
    command -v go >/dev/null || { echo "--with-trivy-operator needs Go" >&2; exit 2; }
    module="$root/bench/trivy-operator"
    trivy_pkg=github.com/aquasecurity/trivy-operator
    echo "building trivy-operator from its Go module into target/bench/" >&2
    (cd "$module" && go build -o "$root/target/bench/trivy-operator" "$trivy_pkg/cmd/trivy-operator")
    trivy_dir=$(cd "$module" && go list -m -f '{{.Dir}}' "$trivy_pkg")
    trivy_version=$(cd "$module" && go list -m -f '{{.Version}}' "$trivy_pkg")
    pass+=(--trivy-operator "$root/target/bench/trivy-operator"
        --trivy-operator-crds "$trivy_dir/deploy/helm/crds"
        --trivy-operator-version "$trivy_version")
fi

stop_cluster() {
    if [ "$keep" = true ]; then
        echo "cluster left running: scripts/test-cluster.sh down $cluster_dir" >&2
    else
        scripts/test-cluster.sh down "$cluster_dir" >&2 || true
    fi
}
if [ "$reuse" = false ]; then
    # A fresh cluster: objects of an earlier run would skew the numbers.
    scripts/test-cluster.sh down "$cluster_dir" >&2 || true
fi
trap stop_cluster EXIT
kubeconfig=$(scripts/test-cluster.sh up "$cluster_dir" | tail -n 1)

extra=()
[ "$reuse" = true ] && extra+=(--reuse)
python3 bench/operator_scale.py \
    --kubeconfig "$kubeconfig" --kubectl "$root/target/bin/kubectl" --binary "$binary" \
    --repo "$root" --work "$work" --out "$out" "${extra[@]}" "${pass[@]}"
