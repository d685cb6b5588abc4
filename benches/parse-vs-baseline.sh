#!/usr/bin/env bash
# Side by side, in one run, on the same generated 1M-line log: `maillog parse` (one core, and all
# cores) against the status-quo baseline ../shared/baselines/python_regex_baseline.py.
# Output goes to /dev/null; times are wall-clock seconds, best of N runs.
#
# usage: benches/parse-vs-baseline.sh [LINES]        (N via RUNS, default 5; baseline runs 3)
set -euo pipefail
cd "$(dirname "$0")/.."

lines=${1:-1000000}
runs=${RUNS:-5}
baseline=../shared/baselines/python_regex_baseline.py
[ -f "$baseline" ] || { echo "no baseline at $baseline (../shared is absent)" >&2; exit 1; }

cargo build --release --locked --bin maillog --bin maillog-loggen >&2
data=target/bench-data
mkdir -p "$data"
log="$data/gen-$lines.log"
[ -s "$log" ] || ./target/release/maillog-loggen --lines "$lines" --rate 20 -o "$log"

# shellcheck source=benches/lib.sh
. benches/lib.sh

one=$(best "$runs" taskset -c 0 ./target/release/maillog parse --threads 1 "$log")
all=$(best "$runs" ./target/release/maillog parse "$log")
py=$(best 3 python3 "$baseline" "$log" /dev/null /dev/null)

rate() { echo "scale=0; $lines / $1" | bc; }
echo "input: $log ($lines lines, $(du -m "$log" | cut -f1) MiB); $(nproc) cores; $(python3 --version)"
printf '%-48s %8.3f s %10s lines/s\n' "maillog parse, 1 thread pinned to one core" "$one" "$(rate "$one")"
printf '%-48s %8.3f s %10s lines/s\n' "maillog parse, $(nproc) threads" "$all" "$(rate "$all")"
printf '%-48s %8.3f s %10s lines/s\n' "python_regex_baseline.py" "$py" "$(rate "$py")"
echo "ratio one core / baseline: $(echo "scale=1; $py / $one" | bc)x"
echo "ratio all cores / baseline: $(echo "scale=1; $py / $all" | bc)x"
