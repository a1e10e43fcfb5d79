#!/usr/bin/env bash
# Builds and runs the single-process Kubernetes test cluster of tests/cluster
# (embedded etcd + kube-apiserver + kube-controller-manager) and a kubectl of
# the same version. See docs/test-cluster.md.
#
#   scripts/test-cluster.sh build       build target/bin/test-cluster and target/bin/kubectl
#   scripts/test-cluster.sh up [DIR]    build, start in the background, print the kubeconfig path
#   scripts/test-cluster.sh stop [DIR]  stop the cluster, keep DIR (data, keys, port) for the next `up`
#   scripts/test-cluster.sh down [DIR]  stop the cluster and remove DIR
#
# A cluster started again on an existing DIR keeps its API server port (in
# DIR/port), so clients that hold its kubeconfig reconnect.
#
# DIR defaults to <repo>/target/test-cluster. Only Go (>= 1.25, looked up in
# PATH and then /usr/local/go/bin) and a reachable Go module proxy are needed.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
module="$repo/tests/cluster"
bindir="$repo/target/bin"
default_dir="$repo/target/test-cluster"
ready_timeout=${TEST_CLUSTER_TIMEOUT:-180} # seconds for `up` to wait for the kubeconfig
stop_timeout=30                            # seconds for `down` before SIGKILL

log() { echo "test-cluster.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

source "$(dirname "${BASH_SOURCE[0]}")/find-go.sh"

build() {
	local go version ldflags
	go=$(find_go 1.25)
	# The version that kube-apiserver reports (/version) and kubectl prints is
	# normally stamped by Kubernetes' build scripts; do the same here.
	version=$(sed -n 's/^[[:space:]]*k8s\.io\/kubernetes \(v[0-9][^[:space:]]*\).*/\1/p' "$module/go.mod")
	[[ -n $version ]] || die "cannot find the k8s.io/kubernetes version in $module/go.mod"
	local major minor
	major=${version#v}
	major=${major%%.*}
	minor=${version#v*.}
	minor=${minor%%.*}
	ldflags="-s -w"
	local pkg
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
	done
	mkdir -p "$bindir"
	# Concurrent builds would write the same output files: take turns.
	exec 8>"$bindir/.build.lock"
	if command -v flock >/dev/null 2>&1; then
		flock 8
	fi
	log "building test-cluster and kubectl ($version) into $bindir"
	# go.mod and go.sum are committed; in module mode go build treats them
	# as read-only and fetches missing modules from GOPROXY into the module
	# cache. The go build cache makes an unchanged rebuild a no-op.
	# CGO_ENABLED=0 as for the upstream release binaries: static binaries,
	# no C compiler needed, the same cache keys on every machine.
	(
		cd "$module"
		CGO_ENABLED=0 "$go" build -trimpath -buildvcs=false -ldflags="$ldflags" \
			-o "$bindir/" ./cmd/test-cluster ./cmd/kubectl
	)
	exec 8>&-
}

state_dir() {
	local dir=${1:-$default_dir}
	mkdir -p "$dir"
	(cd "$dir" && pwd)
}

# alive PID: the process exists and is not a zombie (a child of this shell
# that exited stays a zombie until the shell ends).
alive() {
	local state
	kill -0 "$1" 2>/dev/null || return 1
	state=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ $state != Z ]]
}

# running DIR: true when DIR/pid names a live test-cluster process.
running() {
	local pid
	[[ -f $1/pid ]] || return 1
	pid=$(<"$1/pid")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	alive "$pid" || return 1
	# Guard against a recycled pid.
	grep -q test-cluster "/proc/$pid/cmdline" 2>/dev/null
}

# healthy DIR: the process runs and its apiserver answers /readyz.
healthy() {
	running "$1" && [[ -s $1/kubeconfig ]] &&
		"$bindir/kubectl" --kubeconfig "$1/kubeconfig" get --raw /readyz --request-timeout=5s >/dev/null 2>&1
}

# lock FILE: hold an exclusive lock on FILE (descriptor 9) until the script
# exits, so that concurrent `up`/`down` calls on one state directory (test
# runners started in parallel) queue instead of racing. Without flock the
# calls are not serialised.
lock() {
	exec 9>"$1"
	if command -v flock >/dev/null 2>&1; then
		flock 9
	fi
}

up() {
	local dir pid=""
	dir=$(state_dir "${1:-}")
	build
	lock "$dir/.lock"
	if running "$dir"; then
		if [[ -s $dir/kubeconfig ]]; then
			if healthy "$dir"; then
				save_port "$dir"
				echo "$dir/kubeconfig"
				return 0
			fi
			log "the test-cluster of $dir does not answer /readyz; restarting it"
			stop_process "$dir"
		else
			# Started by an earlier call that stopped waiting for it.
			pid=$(<"$dir/pid")
			log "waiting for the test-cluster that is starting (pid $pid)"
		fi
	fi
	if [[ -z $pid ]]; then
		rm -f "$dir/kubeconfig" "$dir/pid"
		local port_args=()
		if [[ -s $dir/port ]]; then
			port_args=(--port "$(<"$dir/port")")
		fi
		# setsid: own session, so the cluster outlives this shell and does
		# not get the terminal's SIGINT; nohup: survives a closing terminal;
		# 9>&-: the cluster must not inherit (and keep) the lock.
		setsid nohup "$bindir/test-cluster" --dir "$dir" "${port_args[@]}" </dev/null >"$dir/test-cluster.log" 2>&1 9>&- &
		pid=$!
		echo "$pid" >"$dir/pid"
		log "started test-cluster (pid $pid), state in $dir, log in $dir/test-cluster.log"
	fi

	local deadline=$((SECONDS + ready_timeout))
	while [[ ! -s $dir/kubeconfig ]]; do
		if ! alive "$pid"; then
			log "test-cluster exited before it was ready; last lines of $dir/test-cluster.log:"
			tail -n 40 "$dir/test-cluster.log" >&2 || true
			rm -f "$dir/pid"
			exit 1
		fi
		if ((SECONDS >= deadline)); then
			log "test-cluster not ready after ${ready_timeout}s; last lines of $dir/test-cluster.log:"
			tail -n 40 "$dir/test-cluster.log" >&2 || true
			stop_process "$dir"
			exit 1
		fi
		sleep 0.2
	done
	save_port "$dir"
	echo "$dir/kubeconfig"
}

# save_port DIR: keep the API server's port (from DIR/kubeconfig) in
# DIR/port, for the next start on DIR.
save_port() {
	local port
	port=$(sed -n 's|^[[:space:]]*server:[[:space:]]*https://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$1/kubeconfig" | head -n 1)
	[[ -n $port ]] && echo "$port" >"$1/port"
	return 0
}

# stop_process DIR: SIGTERM, wait, then SIGKILL.
stop_process() {
	local dir=$1 pid deadline
	running "$dir" || return 0
	pid=$(<"$dir/pid")
	kill -TERM "$pid" 2>/dev/null || true
	deadline=$((SECONDS + stop_timeout))
	while alive "$pid"; do
		if ((SECONDS >= deadline)); then
			log "test-cluster (pid $pid) still running after ${stop_timeout}s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
	rm -f "$dir/pid"
}

stop() {
	local dir=${1:-$default_dir}
	[[ -d $dir ]] || return 0
	dir=$(cd "$dir" && pwd)
	lock "$dir/.lock"
	stop_process "$dir"
}

down() {
	local dir=${1:-$default_dir}
	[[ -d $dir ]] || return 0
	dir=$(cd "$dir" && pwd)
	lock "$dir/.lock"
	stop_process "$dir"
	rm -rf "$dir"
}

case "${1:-}" in
build) build ;;
up) up "${2:-}" ;;
stop) stop "${2:-}" ;;
down) down "${2:-}" ;;
*)
	echo "usage: $0 build | up [DIR] | stop [DIR] | down [DIR]" >&2
	exit 2
	;;
esac
