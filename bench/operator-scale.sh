#!/usr/bin/env bash
# Scale benchmark of `palisade operator` (and, side by side, trivy-operator)
# on a test cluster of its own (scripts/test-cluster.sh, in
# target/bench/scale-cluster). Fills it with Deployments, ServiceAccounts,
# Roles and RoleBindings (server-side apply, straight to the API server),
# runs the release operator as the ServiceAccount of manifests/ and measures
# time to all reports written, CPU time, peak RSS, API requests, an idle full
# resync's report writes and change-to-report latency. Prints a table;
# writes JSON to target/bench/operator-scale.json (also the partial numbers
# of a run that timed out or was stopped with SIGTERM/SIGINT).
#
#   bench/operator-scale.sh [options]
#
# Cluster contents:
#   --workloads N          Deployments (default 10000)
#   --namespaces N         namespaces they are spread over (default: N/100)
#   --roles N              Roles, and as many RoleBindings (default: N/5)
#   --service-accounts N   ServiceAccounts (default: N/10)
#   --replicas N           replicas per Deployment (default 1): the controller
#                          manager creates a ReplicaSet and N Pods for each
#                          (Pods stay Pending: there is no scheduler); 0 and
#                          --no-controllers are refused with
#                          --with-trivy-operator, which then audits no
#                          Deployment
#   --no-controllers       paused Deployments: the controller manager creates
#                          no ReplicaSets or Pods (one status update each),
#                          so 50,000 workloads fill in minutes
#   --parallel N           concurrent applies while filling (default 8)
# Waits (each gives up after its timeout, says so, and the run goes on or
# ends with the numbers it has):
#   --kcm-timeout S        for the controller manager's ReplicaSets and Pods
#                          (default 3600; 0: do not wait)
#   --scan-timeout S       for all reports, per operator (default 1800)
#   --settle-timeout S     for the operator's queue to empty after all reports
#                          and after the idle resync (default 120)
# Phases:
#   --resync-interval D    operator --resync-interval (default 10m); the wait
#                          for the idle resync is this plus a minute
#   --skip-resync          no idle resync measurement
#   --keep-reports         keep the reports already in the cluster (with
#                          --reuse-cluster): measures a restart, whose writes
#                          should be none
#   --changes N            change-to-report latency samples (default 50; 0: none)
#   --change-gap S         seconds between changes (default 0.5)
#   --binary PATH          measure this palisade binary (default: build one in
#                          release into target/bench-build)
#   --with-trivy-operator  then run trivy-operator on the same cluster: built
#                          from its Go module (bench/trivy-operator) into
#                          target/bench/, its CRDs from that module, only its
#                          config-audit and RBAC-assessment scanners, the
#                          checks embedded in it
#   --trivy-settle S       trivy-operator's run ends when no new report came
#                          for S seconds (default 60),
#                          or after --scan-timeout
#   --skip-palisade        run trivy-operator alone
# Cluster lifetime:
#   --keep-cluster         leave the cluster running at the end
#   --reuse-cluster        run the operator phases again on a kept cluster
#                          (objects are not created twice when the Deployment
#                          count matches)
#   --out FILE             JSON results (default target/bench/operator-scale.json)
#
# Numbers and the exact commands are in docs/performance.md.
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
        --workloads | --namespaces | --roles | --service-accounts | --replicas | --changes | \
            --resync-interval | --change-gap | --kcm-timeout | --scan-timeout | \
            --settle-timeout | --parallel | --trivy-settle)
            [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
            pass+=("$1" "$2")
            shift 2
            ;;
        --skip-resync | --skip-palisade | --no-controllers | --keep-reports) pass+=("$1"); shift ;;
        --with-trivy-operator) trivy=true; shift ;;
        --keep-cluster) keep=true; shift ;;
        --reuse-cluster) reuse=true; keep=true; shift ;;
        --out | --binary)
            [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
            if [ "$1" = --out ]; then out="$2"; else binary="$2"; fi
            shift 2
            ;;
        -h | --help) sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

if [ "$trivy" = true ]; then
    # (The Python side checks this too; failing here saves a cluster start.)
    for ((i = 0; i < ${#pass[@]}; i++)); do
        if [ "${pass[i]}" = --no-controllers ] ||
            { [ "${pass[i]}" = --replicas ] && [ "${pass[i + 1]:-}" = 0 ]; }; then
            echo "--with-trivy-operator needs ReplicaSets with replicas: not with --no-controllers or --replicas 0" >&2
            exit 2
        fi
    done
fi

python3 -c 'import yaml' 2>/dev/null || {
    echo "operator-scale.sh needs PyYAML (apt-get install python3-yaml or pip install pyyaml)" >&2
    exit 2
}

cluster_dir="$root/target/bench/scale-cluster"
work="$root/target/bench/operator-scale"
# A target dir of its own, so the build does not wait on other builds' lock.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/bench-build}"
mkdir -p "$work" "$(dirname "$out")"

if [ -n "$binary" ]; then
    [ -x "$binary" ] || { echo "--binary $binary: not an executable file" >&2; exit 2; }
else
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
# A stopped run still stops its cluster (the EXIT trap runs on exit).
trap 'exit 143' TERM
trap 'exit 130' INT
kubeconfig=$(scripts/test-cluster.sh up "$cluster_dir" | tail -n 1)

extra=()
[ "$reuse" = true ] && extra+=(--reuse)
python3 bench/operator_scale.py \
    --kubeconfig "$kubeconfig" --kubectl "$root/target/bin/kubectl" --binary "$binary" \
    --repo "$root" --work "$work" --out "$out" "${extra[@]}" "${pass[@]}"
