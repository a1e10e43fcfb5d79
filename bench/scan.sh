#!/usr/bin/env bash
# Times `palisade scan` on generated corpora of 1,000 and 10,000 objects:
# wall time and peak resident memory, median of several runs, as a markdown
# table. With --with-checkov, also times Checkov on the same 1,000-object
# corpus for comparison.
#
#   bench/scan.sh [--runs N] [--sizes "1000 10000"] [--with-checkov] [--checkov-runs N]
#
# Everything it writes goes under target/bench/. Numbers are documented in
# docs/performance.md.
set -euo pipefail

runs=5
sizes="1000 10000"
with_checkov=false
checkov_runs=3
checkov_version="${CHECKOV_VERSION:-}"

while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --sizes) sizes="$2"; shift 2 ;;
        --with-checkov) with_checkov=true; shift ;;
        --checkov-runs) checkov_runs="$2"; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
work="$target_dir/bench"
mkdir -p "$work"

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
    python3 bench/gen.py "$n" "$work/corpus-$n" >&2
done

# Runs a command once under GNU time; prints "<wall ms> <CPU ms> <peak RSS
# KiB>", CPU being user plus system time (what the run costs, whatever else
# the machine is doing). The command's exit status is ignored: scanners exit
# non-zero on findings.
measure() {
    local log="$work/time.log"
    local start end
    start=$(date +%s%N)
    /usr/bin/time -v -o "$log" "$@" >/dev/null 2>"$work/stderr.log" || true
    end=$(date +%s%N)
    awk -F': ' -v wall=$(( (end - start) / 1000000 )) '
        /User time/ { cpu += $2 }
        /System time/ { cpu += $2 }
        /Maximum resident set size/ { rss = $2 }
        END { printf "%d %d %d\n", wall, cpu * 1000, rss }' "$log"
}

# Median wall time (s), with min and max, median CPU time (s) and median
# peak RSS (MB) of `runs` measurements, after one untimed warm-up run that
# fills the page cache.
median_of() {
    local runs="$1"; shift
    "$@" >/dev/null 2>&1 || true
    local samples=()
    for _ in $(seq "$runs"); do
        samples+=("$(measure "$@")")
    done
    printf '%s\n' "${samples[@]}" | python3 -c '
import statistics, sys
rows = [[int(x) for x in line.split()] for line in sys.stdin if line.strip()]
wall = [r[0] / 1000 for r in rows]
cpu = statistics.median(r[1] for r in rows) / 1000
rss = statistics.median(r[2] for r in rows) / 1024
print(f"{statistics.median(wall):.2f} {min(wall):.2f} {max(wall):.2f} {cpu:.2f} {rss:.0f}")
'
}

files_in() { find "$1" -name '*.yaml' | wc -l | tr -d ' '; }

# Unsuppressed findings, from the JSON report.
palisade_findings() {
    "$palisade" scan "$1" -o json --fail-on none | python3 -c '
import json, sys
print(json.load(sys.stdin)["summary"]["findings"])'
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
rows=()
for n in $sizes; do
    corpus="$work/corpus-$n"
    echo "timing palisade on $n objects ($runs runs)" >&2
    read -r wall lo hi cpu rss < <(median_of "$runs" "$palisade" scan "$corpus" -o json --fail-on none)
    findings=$(palisade_findings "$corpus")
    rows+=("| Palisade $("$palisade" --version | awk '{print $2}') | $n | $(files_in "$corpus") | $wall s ($lo–$hi) | $cpu s | $rss MB | $findings |")
done

if $with_checkov; then
    venv="$work/venv"
    if [ ! -x "$venv/bin/checkov" ]; then
        echo "installing Checkov into $venv" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --upgrade pip
        "$venv/bin/pip" install --quiet "checkov${checkov_version:+==$checkov_version}"
    fi
    checkov="$venv/bin/checkov"
    version=$("$checkov" --version)
    n=$(echo "$sizes" | awk '{print $1}')
    corpus="$work/corpus-$n"
    echo "timing checkov $version on $n objects ($checkov_runs runs)" >&2
    read -r wall lo hi cpu rss < <(median_of "$checkov_runs" "$checkov" -d "$corpus" \
        --framework kubernetes --quiet --compact -o json)
    # Failed checks, from Checkov's JSON report (one object per framework).
    failed=$({ "$checkov" -d "$corpus" --framework kubernetes --quiet --compact -o json 2>/dev/null || true; } | python3 -c '
import json, sys
report = json.load(sys.stdin)
reports = report if isinstance(report, list) else [report]
print(sum(r.get("summary", {}).get("failed", 0) for r in reports))' || echo "?")
    rows+=("| Checkov $version | $n | $(files_in "$corpus") | $wall s ($lo–$hi) | $cpu s | $rss MB | $failed |")
fi

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "Machine: $(nproc) cores, ${cpu:-unknown CPU}, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo) RAM"
echo "Median of $runs runs (Checkov: $checkov_runs) after a warm-up run; wall time min–max in brackets."
echo "CPU is user + system time. Peak RSS is the maximum resident set size."
echo "Load average at the start: $load_start"
echo
echo "| Tool | Objects | Files | Wall time | CPU time | Peak RSS | Findings |"
echo "|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
