#!/usr/bin/env bash
# The Parquet mirror against the bzip2 archive (issue 17), side by side in one run:
#
#   1. `maillog top --by dest` over one day: the day's bzip2 files (--source bzip2) against the
#      same day's mirror (--source parquet), and DuckDB's whole process (`duckdb -c`, the CLI
#      from PyPI in the venv of scripts/install-spark) on the same Parquet files.
#   2. What writing the mirror costs `run --once=all` over the same log: [mirror] off and on.
#   3. The mirror's size against the archive's.
#
# The data set: a generated log of LINES lines (default 1,000,000, ISO stamps) in one day
# (2025-11-15), archived by `maillog run --once=all` and mirrored by `maillog compact --settle
# 0s` under target/bench-data/mirror-LINES/ (built once; delete the folder to rebuild). It first
# checks that both sources give the same answer. Best of RUNS (default 5) for the queries, of
# RUN_RUNS (default 2) for the runs, off and on alternating.
#
# usage: benches/mirror.sh [LINES]   RUNS=5 RUN_RUNS=2 MAILLOG=path/to/maillog (else cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=benches/lib.sh
. benches/lib.sh

lines=${1:-1000000}
runs=${RUNS:-5}
run_runs=${RUN_RUNS:-2}
if [ -z "${MAILLOG:-}" ]; then
  cargo build --release --locked --bin maillog --bin maillog-loggen >&2
  MAILLOG=${CARGO_TARGET_DIR:-$root/target}/release/maillog
fi
loggen=$(dirname "$MAILLOG")/maillog-loggen
python=$(scripts/install-spark)
duckdb=$(dirname "$python")/duckdb
data=$root/target/bench-data/mirror-$lines

if [ ! -f "$data/done" ]; then
  rm -rf "$data" && mkdir -p "$data"
  # loggen's bursts and pauses stretch LINES at RATE about 1.21 times wider than LINES / RATE.
  rate=$(echo "scale=6; $lines * 1.214 / 86400" | bc)
  "$loggen" --lines "$lines" --rate "$rate" --start 2025-11-15T00:00:00 --header iso \
    -o "$data/mail.log"
  printf 'inputs = ["mail.log"]\nspool = "spool"\narchive = "file://archive"\n' >"$data/pipeline.toml"
  (cd "$data" && "$MAILLOG" run --once=all >/dev/null 2>"$data/run.err" &&
    "$MAILLOG" compact --settle 0s 2>"$data/compact.err")
  touch "$data/done"
fi

cd "$data"
day=2025-11-15
to_files=$(find archive/mail_logs -name 'to-*.json.bz2' | wc -l)
parquet_files=$(find archive/mirror/to -name '*.parquet' | wc -l)
a=$("$MAILLOG" top --by dest -n 50 --format json --quiet --source bzip2 --day "$day" archive)
b=$("$MAILLOG" top --by dest -n 50 --format json --quiet --source parquet --day "$day" archive)
[ "$a" = "$b" ] || { echo "mirror.sh: MISMATCH between --source bzip2 and parquet" >&2; exit 1; }

sql="select dest, count(*) as n from read_parquet('archive/mirror/to/dt=$day/*.parquet')
     where dest is not null group by dest order by n desc limit 10"
bzip2=$(best "$runs" "$MAILLOG" top --by dest --quiet --source bzip2 --day "$day" archive)
parquet=$(best "$runs" "$MAILLOG" top --by dest --quiet --source parquet --day "$day" archive)
duck=$(best "$runs" "$duckdb" -c "$sql")

# Writing the mirror in `run --once=all`: the same log into a fresh spool and archive.
once() {
  rm -rf once && mkdir once && cp pipeline.toml once/ && ln -s ../mail.log once/mail.log
  [ "$1" = on ] && printf '[mirror]\nenabled = true\nsettle_minutes = 0\n' >>once/pipeline.toml
  (cd once && "$MAILLOG" run --once=all >/dev/null 2>&1)
}
# Off and on alternate, so that both see the machine in the same state; the best of each, and
# the median of the pairs' ratios (on / off of the same pair).
seconds_of() {
  local start end
  start=$(date +%s.%N); "$@"; end=$(date +%s.%N)
  echo "$end - $start" | bc
}
off="" on="" ratios=()
for _ in $(seq "$run_runs"); do
  a=$(seconds_of once off)
  b=$(seconds_of once on)
  if [ -z "$off" ] || [ "$(echo "$a < $off" | bc)" = 1 ]; then off=$a; fi
  if [ -z "$on" ] || [ "$(echo "$b < $on" | bc)" = 1 ]; then on=$b; fi
  ratios+=("$(echo "scale=4; $b / $a" | bc)")
done
median_ratio=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{r[NR]=$1} END {print (NR % 2) ? r[(NR+1)/2] : (r[NR/2] + r[NR/2+1]) / 2}')
rm -rf once

archive_bytes=$(du -sb archive/mail_logs | cut -f1)
mirror_bytes=$(du -sb archive/mirror | cut -f1)

echo "one day: $lines lines; $to_files to- files of bzip2, $parquet_files to- files of Parquet ($(nproc) cores)"
printf '%-58s %10s\n' "what" "seconds"
printf '%-58s %10.3f\n' "maillog top --by dest --day $day --source bzip2" "$bzip2"
printf '%-58s %10.3f\n' "maillog top --by dest --day $day --source parquet" "$parquet"
printf '%-58s %10.3f\n' "duckdb -c (top 10 dest of the day's Parquet files)" "$duck"
printf '%-58s %10.3f\n' "maillog run --once=all, [mirror] off" "$off"
printf '%-58s %10.3f\n' "maillog run --once=all, [mirror] on (settle 0)" "$on"
echo "parquet against bzip2: $(echo "scale=1; $bzip2 / $parquet" | bc)x faster (goal: at least 30x)"
echo "parquet against duckdb's process: $(echo "scale=2; $parquet / $duck" | bc) of its time (goal: at most 2)"
echo "run --once=all with the mirror: $(echo "scale=3; $on / $off" | bc) of the time without, best against best (goal: at most 1.10)"
echo "  the $run_runs pairs (off then on), on / off: ${ratios[*]}; median $median_ratio"
echo "mirror size: $(echo "scale=2; $mirror_bytes / $archive_bytes" | bc)x the archive's ($mirror_bytes against $archive_bytes bytes)"
