#!/usr/bin/env bash
# The demo behind `make demo` / `make demo-down`: builds Palisade, starts the
# real test cluster (kube-apiserver + controller-manager), installs Palisade
# with its Helm chart, applies the sample workloads and RBAC of
# examples/, runs the operator as its own ServiceAccount, and shows the
# reports. Cluster and operator keep running until `make demo-down`.
#
#   scripts/demo.sh up     start everything and print the reports
#   scripts/demo.sh down   stop the operator and the cluster
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export PATH="/usr/local/go/bin:$HOME/go/bin:$HOME/.cargo/bin:$PATH"
state="$root/target/demo"
kubectl="$root/target/bin/kubectl"
palisade=${PALISADE_BIN:-"$root/target/debug/palisade"}
metrics_addr=${PALISADE_DEMO_METRICS_ADDR:-127.0.0.1:9464}

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() {
	echo "demo: $*" >&2
	exit 1
}

stop_operator() {
	if [[ -f $state/operator.pid ]]; then
		local pid
		pid=$(cat "$state/operator.pid")
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid"
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		fi
		rm -f "$state/operator.pid"
	fi
}

up() {
	say "building palisade"
	cargo build --bin palisade >&2

	say "starting the test cluster (the first run builds it from Go modules)"
	mkdir -p "$state"
	local kubeconfig
	kubeconfig=$(scripts/test-cluster.sh up "$state/cluster" | tail -n 1)
	[[ -f $kubeconfig ]] || die "the test cluster did not print its kubeconfig"
	k() { "$kubectl" --kubeconfig "$kubeconfig" "$@"; }

	say "building helm (the first run builds it from Go modules)"
	local helm
	helm=$(scripts/helm.sh | tail -n 1)

	say "installing Palisade with its chart: helm install palisade helm/palisade -n palisade-system"
	# The chart's Deployment is created but its pod stays Pending: the test
	# cluster has no scheduler and no kubelet. The operator runs below as a
	# local process, with the chart's ServiceAccount and RBAC.
	"$helm" --kubeconfig "$kubeconfig" upgrade --install palisade helm/palisade \
		-n palisade-system --create-namespace 2>&1 | grep -v 'found symbolic link' >&2
	k wait --for=condition=established --timeout=60s \
		crd/scanreports.palisade.dev crd/clusterscanreports.palisade.dev crd/scanpolicies.palisade.dev

	say "applying the sample workloads and RBAC (examples/)"
	k apply --server-side -f examples/

	# The operator authenticates as its ServiceAccount, with a TokenRequest
	# token, exactly as it would in the cluster.
	local account=system:serviceaccount:palisade-system:palisade
	for _ in $(seq 100); do
		[[ $(k auth can-i watch scanreports.palisade.dev -A --as "$account" 2>/dev/null) == yes ]] && break
		sleep 0.2
	done
	local token
	token=$(k create token palisade -n palisade-system --duration=24h)
	cp "$kubeconfig" "$state/operator.kubeconfig"
	"$kubectl" --kubeconfig "$state/operator.kubeconfig" config set-credentials admin --token="$token" >/dev/null

	say "starting the operator (log: $state/operator.log, metrics: http://$metrics_addr/metrics)"
	stop_operator
	nohup "$palisade" operator \
		--kubeconfig "$state/operator.kubeconfig" \
		--metrics-addr "$metrics_addr" \
		--resync-interval 10m \
		>"$state/operator.log" 2>&1 &
	echo $! >"$state/operator.pid"

	# Nine reports in palisade-demo: four workloads, three ServiceAccounts,
	# the Role and the RoleBinding.
	local count=0
	for _ in $(seq 300); do
		kill -0 "$(cat "$state/operator.pid")" 2>/dev/null || {
			cat "$state/operator.log" >&2
			die "the operator exited"
		}
		count=$(k get scanreports -n palisade-demo -o name 2>/dev/null | wc -l)
		((count >= 9)) && break
		sleep 0.5
	done
	((count >= 9)) || die "only $count reports after 150 s; see $state/operator.log"
	sleep 2

	say "kubectl get scanreports -A"
	k get scanreports -A
	say "kubectl get clusterscanreports (the demo's)"
	k get clusterscanreports | grep -E '^NAME|palisade-demo'
	say "one report in detail: kubectl get scanreport deployment-legacy-agent -n palisade-demo -o yaml"
	k get scanreport deployment-legacy-agent -n palisade-demo -o yaml

	cat <<MSG

The cluster and the operator keep running. To explore:

  export KUBECONFIG=$kubeconfig
  alias kubectl=$kubectl
  kubectl get scanreports -A                       # or: kubectl get sr -A
  kubectl get sr -A -l palisade.dev/worst-severity=critical
  kubectl describe deployment legacy-agent -n palisade-demo   # Events from palisade
  kubectl edit deployment legacy-agent -n palisade-demo       # fix it; the report follows
  kubectl get scanpolicy default -o yaml           # exceptions, totals, pass rates
  curl -s http://$metrics_addr/metrics | grep ^palisade_

Stop everything with: make demo-down
MSG
}

down() {
	stop_operator
	if [[ -d $state/cluster ]]; then
		scripts/test-cluster.sh down "$state/cluster"
	fi
	rm -rf "$state"
	echo "demo stopped"
}

case ${1:-} in
up) up ;;
down) down ;;
*) die "usage: $0 up|down" ;;
esac
