# Sourced by the scripts that build or download Go modules.
# find_go: prints the go command to use (PATH first, then /usr/local/go/bin)
# or fails naming the script and the Go version it needs ($1, e.g. 1.26).
find_go() {
	if command -v go >/dev/null 2>&1; then
		command -v go
	elif [[ -x /usr/local/go/bin/go ]]; then
		echo /usr/local/go/bin/go
	else
		echo "$(basename "$0"): go not found (install Go >= $1 or put it in PATH)" >&2
		exit 1
	fi
}
