#!/usr/bin/env bash
# Times `palisade scan` on generated corpora and, on request, the peer
# scanners kube-score, Checkov and Trivy on the same corpora: wall time, CPU
# time and peak resident memory, as one markdown table with each peer's ratio
# to Palisade.
#
#   bench/scan.sh [--runs N] [--sizes "1000 10000"] [--one-file-sizes "10000"]
#                 [--with-kube-score] [--kube-score-corpora "..."]
#                 [--with-checkov] [--checkov-corpora "..."] [--checkov-runs N]
#                 [--with-trivy] [--trivy-corpora "..."] [--trivy-runs N]
#
# Corpora: N is a directory of N objects in about N/40 files (--sizes), N-file
# the same N objects in one file (--one-file-sizes). Peers run on the corpora
# named by their --*-corpora option: kube-score on all by default, Checkov and
# Trivy on "1000" only (they take minutes on 10,000 objects). A corpus written
# CORPUS:R there is timed R times instead of the tool's number of runs, as in
# --checkov-corpora "1000 10000-file:1". Peers are built
# or installed into target/bench on first use, at pinned versions:
# KUBE_SCORE_VERSION, CHECKOV_VERSION and TRIVY_VERSION override them.
# Everything the script writes goes under target/bench/. Numbers are
# documented in docs/performance.md.
set -euo pipefail

runs=5
sizes="1000 10000"
one_file_sizes="10000"
with_kube_score=false
kube_score_corpora=""
with_checkov=false
checkov_corpora="1000"
checkov_runs=3
with_trivy=false
trivy_corpora="1000"
trivy_runs=1
kube_score_version="${KUBE_SCORE_VERSION:-v1.20.0}"
checkov_version="${CHECKOV_VERSION:-3.3.30}"
trivy_version="${TRIVY_VERSION:-v0.74.0}"

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --sizes) sizes="$2"; shift 2 ;;
        --one-file-sizes) one_file_sizes="$2"; shift 2 ;;
        --with-kube-score) with_kube_score=true; shift ;;
        --kube-score-corpora) kube_score_corpora="$2"; shift 2 ;;
        --with-checkov) with_checkov=true; shift ;;
        --checkov-corpora|--checkov-sizes) checkov_corpora="$2"; shift 2 ;;
        --checkov-runs) checkov_runs="$2"; shift 2 ;;
        --with-trivy) with_trivy=true; shift ;;
        --trivy-corpora) trivy_corpora="$2"; shift 2 ;;
        --trivy-runs) trivy_runs="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
work="$target_dir/bench"
bin="$work/bin"
out="$work/out"
mkdir -p "$work" "$bin" "$out"

# Every corpus, in table order: each size as a directory, then as one file.
corpora=()
for n in $sizes; do corpora+=("$n"); done
for n in $one_file_sizes; do corpora+=("$n-file"); done
[ -n "$kube_score_corpora" ] || kube_score_corpora="${corpora[*]}"

corpus_path() {
    case "$1" in
        *-file) echo "$work/corpus-${1%-file}.yaml" ;;
        *) echo "$work/corpus-$1" ;;
    esac
}

# A peer's corpus must be one the script generates.
for c in $( { ! $with_kube_score || echo "$kube_score_corpora"; }
            { ! $with_checkov || echo "$checkov_corpora"; }
            { ! $with_trivy || echo "$trivy_corpora"; } ); do
    c="${c%%:*}"
    case " ${corpora[*]} " in
        *" $c "*) ;;
        *) echo "corpus $c is not among the generated ones (${corpora[*]}): see --sizes and --one-file-sizes" >&2; exit 2 ;;
    esac
done

# GNU time reports peak RSS; the shell keyword does not.
if [ ! -x /usr/bin/time ]; then
    echo "installing GNU time" >&2
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get install -y time >/dev/null || {
        $sudo_cmd apt-get update >/dev/null && $sudo_cmd apt-get install -y time >/dev/null
    }
fi

echo "building palisade (release)" >&2
cargo build --release --quiet --bin palisade
palisade="$target_dir/release/palisade"

for n in $sizes; do
    python3 bench/gen.py "$n" "$(corpus_path "$n")" >&2
done
for n in $one_file_sizes; do
    python3 bench/gen.py "$n" "$(corpus_path "$n-file")" --one-file >&2
done

# The version of the Go module a binary was built from, or nothing.
go_module_version() {
    [ -x "$1" ] || return 0
    go version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $3; exit }'
}

# Builds a Go module's command into target/bench/bin at the pinned version,
# unless the binary there already is that version.
go_install() {
    local name="$1" package="$2" version="$3"
    shift 3
    if [ "$(go_module_version "$bin/$name")" != "$version" ]; then
        echo "building $name $version into $bin" >&2
        env GOBIN="$bin" "$@" go install "$package@$version"
    fi
}

if $with_kube_score; then
    go_install kube-score github.com/zegl/kube-score/cmd/kube-score "$kube_score_version"
fi
if $with_trivy; then
    # Trivy's module needs the encoding/json/v2 experiment of Go 1.25 and later.
    go_install trivy github.com/aquasecurity/trivy/cmd/trivy "$trivy_version" GOEXPERIMENT=jsonv2
fi
if $with_checkov; then
    venv="$work/venv"
    if [ ! -x "$venv/bin/checkov" ] || [ "$("$venv/bin/checkov" --version)" != "$checkov_version" ]; then
        echo "installing Checkov $checkov_version into $venv" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --upgrade pip
        "$venv/bin/pip" install --quiet "checkov==$checkov_version"
    fi
fi

# Runs a command once under GNU time, its output to the file $1; prints
# "<wall ms> <CPU ms> <peak RSS KiB> <exit status>", CPU being user plus
# system time (what the run costs, whatever else the machine is doing).
# Scanners exit non-zero on findings: the status is reported, not acted on.
measure() {
    local output="$1"; shift
    local log="$work/time.log"
    local start end
    start=$(date +%s%N)
    /usr/bin/time -v -o "$log" "$@" >"$output" 2>"$output.stderr" || true
    end=$(date +%s%N)
    awk -F': ' -v wall=$(( (end - start) / 1000000 )) '
        /User time/ { cpu += $2 }
        /System time/ { cpu += $2 }
        /Maximum resident set size/ { rss = $2 }
        /Exit status/ { status = $2 }
        END { printf "%d %d %d %d\n", wall, cpu * 1000, rss, status }' "$log"
}

# Median wall time (s), with min and max, median CPU time (s), median peak
# RSS (MB) and the exit status of `runs` measurements; the output of the
# last run is left in the file $2. With warm-up "yes" and more than one run,
# one untimed run comes first (it loads the tool and fills the page cache); a
# single run is for the slow cases, where a warm-up would double the time.
median_of() {
    local runs="$1" output="$2" warmup="$3"; shift 3
    if [ "$warmup" = yes ] && [ "$runs" -gt 1 ]; then
        "$@" >/dev/null 2>&1 || true
    fi
    local samples=()
    for _ in $(seq "$runs"); do
        samples+=("$(measure "$output" "$@")")
    done
    printf '%s\n' "${samples[@]}" | python3 -c '
import statistics, sys
rows = [[int(x) for x in line.split()] for line in sys.stdin if line.strip()]
wall = [r[0] / 1000 for r in rows]
cpu = statistics.median(r[1] for r in rows) / 1000
rss = statistics.median(r[2] for r in rows) / 1024
print(f"{statistics.median(wall):.2f} {min(wall):.2f} {max(wall):.2f} {cpu:.2f} {rss:.0f} {rows[-1][3]}")
'
}

# What each tool reports, from its JSON output: Palisade's unsuppressed
# findings, kube-score's checks graded warning or critical, Checkov's failed
# checks, Trivy's failed misconfiguration checks.
count_findings() {
    python3 - "$1" "$2" <<'EOF' 2>/dev/null || echo "?"
import json, sys
tool, path = sys.argv[1], sys.argv[2]
with open(path) as f:
    report = json.load(f)
if tool == "palisade":
    n = report["summary"]["findings"]
elif tool == "kube-score":
    # Grades: 1 critical, 5 warning, 7 almost OK, 10 OK.
    n = sum(1 for obj in report or [] for check in obj.get("checks") or []
            if not check.get("skipped") and check.get("grade") in (1, 5))
elif tool == "checkov":
    reports = report if isinstance(report, list) else [report]
    n = sum(r.get("summary", {}).get("failed", 0) for r in reports)
elif tool == "trivy":
    n = sum(1 for r in report.get("Results") or [] for m in r.get("Misconfigurations") or []
            if m.get("Status") == "FAIL")
print(f"{n:,}")
EOF
}

thousands() { echo "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta'; }

describe_corpus() {
    local path
    path=$(corpus_path "$1")
    local n="${1%-file}"
    if [ -d "$path" ]; then
        local files
        files=$(find "$path" -name '*.yaml' | wc -l | tr -d ' ')
        printf "%s objects, %d files, %s MB" "$(thousands "$n")" "$files" \
            "$(du -sb "$path" | awk '{printf "%.1f", $1 / 1e6}')"
    else
        printf "%s objects, 1 file, %s MB" "$(thousands "$n")" \
            "$(stat -c %s "$path" | awk '{printf "%.1f", $1 / 1e6}')"
    fi
}

# Sets `cmd` to the command line of a tool on a corpus (a directory or one
# file).
set_command() {
    local tool="$1" path
    path=$(corpus_path "$2")
    case "$tool" in
        palisade) cmd=("$palisade" scan "$path" -o json --fail-on none) ;;
        kube-score)
            # kube-score takes files, not directories.
            if [ -d "$path" ]; then
                cmd=("$bin/kube-score" score -o json "$path"/*.yaml)
            else
                cmd=("$bin/kube-score" score -o json "$path")
            fi ;;
        checkov)
            local arg=-f
            [ ! -d "$path" ] || arg=-d
            cmd=("$work/venv/bin/checkov" "$arg" "$path" --framework kubernetes --quiet --compact -o json
                 --skip-download) ;;
        trivy)
            cmd=("$bin/trivy" config --skip-check-update --timeout 60m --quiet
                 --cache-dir "$work/trivy-cache" -f json "$path") ;;
    esac
}

declare -A palisade_cpu palisade_rss
rows=()
warmed=""
# Times one tool on one corpus and adds its row.
bench_one() {
    local tool="$1" label="$2" version="$3" corpus="${4%%:*}" runs="$5"
    case "$4" in *:*) runs="${4#*:}" ;; esac
    local warmup=no
    case " $warmed " in
        *" $tool "*) ;;
        *) warmup=yes; warmed="$warmed $tool" ;;
    esac
    echo "timing $label $version on corpus $corpus ($runs run(s))" >&2
    local output="$out/$tool-$corpus.json"
    local cmd=()
    set_command "$tool" "$corpus"
    local wall lo hi cpu rss status
    read -r wall lo hi cpu rss status < <(median_of "$runs" "$output" "$warmup" "${cmd[@]}")
    local findings
    findings=$(count_findings "$tool" "$output")
    if [ "$tool" = palisade ]; then
        palisade_cpu[$corpus]=$cpu
        palisade_rss[$corpus]=$rss
    fi
    local ratios
    ratios=$(awk -v c="$cpu" -v r="$rss" -v pc="${palisade_cpu[$corpus]}" -v pr="${palisade_rss[$corpus]}" '
        function ratio(a, b) { return b > 0 ? sprintf(a / b >= 10 ? "%.0f×" : "%.1f×", a / b) : "–" }
        BEGIN { printf "%s | %s", ratio(c, pc), ratio(r, pr) }')
    local timing="$wall s ($lo–$hi)"
    [ "$runs" -gt 1 ] || timing="$wall s (1 run)"
    rows+=("| $label | $version | $(describe_corpus "$corpus") | $timing | $cpu s | $rss MB | $findings (exit $status) | $ratios |")
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
palisade_version=$("$palisade" --version | awk '{print $2}')
for corpus in "${corpora[@]}"; do
    bench_one palisade Palisade "$palisade_version" "$corpus" "$runs"
done
if $with_kube_score; then
    for corpus in $kube_score_corpora; do
        bench_one kube-score kube-score "$(go_module_version "$bin/kube-score")" "$corpus" "$runs"
    done
fi
if $with_checkov; then
    for corpus in $checkov_corpora; do
        bench_one checkov Checkov "$("$work/venv/bin/checkov" --version)" "$corpus" "$checkov_runs"
    done
fi
if $with_trivy; then
    for corpus in $trivy_corpora; do
        bench_one trivy Trivy "$(go_module_version "$bin/trivy")" "$corpus" "$trivy_runs"
    done
fi

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "Machine: $(nproc) cores, ${cpu:-unknown CPU}, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
toolchains="Rust $(rustc --version | awk '{print $2}')"
if $with_kube_score || $with_trivy; then
    toolchains="$toolchains, Go $(go env GOVERSION | sed 's/^go//')"
fi
if $with_checkov; then
    toolchains="$toolchains, Python $("$work/venv/bin/python" --version | awk '{print $2}')"
fi
echo "Toolchains: $toolchains"
echo "Runs: Palisade and kube-score $runs, Checkov $checkov_runs, Trivy $trivy_runs; median wall time, min–max in brackets;"
echo "each tool's first corpus after one untimed warm-up run, unless it runs once."
echo "CPU is user + system time. Peak RSS is the maximum resident set size. Ratios are to Palisade on the same corpus."
echo "Load average at the start: $load_start"
echo
echo "| Tool | Version | Corpus | Wall time | CPU time | Peak RSS | Findings (exit status) | CPU vs Palisade | RSS vs Palisade |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
