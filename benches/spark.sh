#!/usr/bin/env bash
# "Top 10 recipients" (`top --by dest -n 10`) over one archive, side by side: Spark over the
# bzip2 archive against Spark over its Parquet mirror, and `maillog top` beside them.
#
#  a. Spark local[NPROC]: spark-submit contrib/spark/maillog_top.py top --by dest -n 10
#     --format json --source bzip2 ARCHIVE/mail_logs      (every JSON line parsed)
#  b. the same with --source parquet ARCHIVE              (the mirror: the `dest` column of the
#     `to` files only)
#  c. maillog top --by dest -n 10 --format json ARCHIVE/mail_logs
#  d. maillog top --by dest -n 10 --format json --source parquet ARCHIVE, when `maillog top
#     --help` lists --source (else the row says it is not available)
#
# The data set, made once and kept under target/bench-data/spark-LINES-rRATE/ (delete it to
# make it again): a log of LINES lines (default 1,000,000) from maillog-loggen at RATE lines a
# second (default 20), archived by `maillog run --once=all` (UTC, bzip2 level 9: the shipped
# config's), and its mirror written by `maillog compact --settle 0s`, checked by `maillog verify`.
# Spark comes from the venv of scripts/install-spark; without it the Spark rows say skipped.
#
# Wall-clock seconds, best of RUNS (default 3), each a fresh process (Spark: JVM start and
# session included, as an admin runs it). Every answer's top 10 is compared with maillog's
# (c); MISMATCH otherwise. Ratio column: seconds / (a)'s seconds.
#
# usage: benches/spark.sh [LINES]
#   RUNS=3  RATE=20  SPARK_DRIVER_MEMORY=4g
#   MAILLOG=path/to/maillog: use it (maillog-loggen beside it) instead of building with cargo
#   MAILLOG_TOOLS: where scripts/install-spark put its venv (default ~/.cache/maillog)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

lines=${1:-1000000}
rate=${RATE:-20}
runs=${RUNS:-3}
cores=$(nproc)
n=10

say() { echo "spark.sh: $*" >&2; }

# --- tools ---------------------------------------------------------------------------------
if [ -z "${MAILLOG:-}" ]; then
  cargo build --release --locked --bin maillog --bin maillog-loggen >&2
  MAILLOG=${CARGO_TARGET_DIR:-$root/target}/release/maillog
fi
loggen=$(dirname "$MAILLOG")/maillog-loggen
spark_venv=${MAILLOG_TOOLS:-$HOME/.cache/maillog}/spark-venv
spark_job=$root/contrib/spark/maillog_top.py
spark=""
if [ -x "$spark_venv/bin/spark-submit" ] && command -v java >/dev/null 2>&1; then
  spark=$spark_venv/bin/spark-submit
fi
maillog_parquet=""
if "$MAILLOG" top --help 2>/dev/null | grep -q -- '--source'; then maillog_parquet=1; fi

# --- data ----------------------------------------------------------------------------------
data=$root/target/bench-data/spark-$lines-r$rate
mkdir -p "$data"
config=$data/pipeline.toml
printf 'spool = "spool"\narchive = "file://archive"\ntime_zone = "UTC"\n[bzip2]\nlevel = 9\n' > "$config"
if [ ! -s "$data/mail.log" ]; then
  say "generating $lines lines at $rate lines/s"
  "$loggen" --lines "$lines" --rate "$rate" -o "$data/mail.log.tmp"
  mv "$data/mail.log.tmp" "$data/mail.log"
fi
if [ ! -d "$data/archive" ]; then
  say "maillog run --once=all into $data/archive"
  rm -rf "$data/archive.tmp" "$data/spool"
  "$MAILLOG" run --once=all --config "$config" --input "$data/mail.log" --spool "$data/spool" \
    --archive "file://$data/archive.tmp" 2> "$data/run.err" || { cat "$data/run.err" >&2; exit 1; }
  rm -rf "$data/spool"
  mv "$data/archive.tmp" "$data/archive"
fi
if [ ! -f "$data/mirrored" ]; then
  # A second compact writes nothing; an interrupted one left hidden temporary files only.
  say "maillog compact --settle 0s, maillog verify"
  "$MAILLOG" compact --settle 0s --config "$config" "$data/archive" 2> "$data/compact.err" ||
    { cat "$data/compact.err" >&2; exit 1; }
  "$MAILLOG" verify --config "$config" "$data/archive" 2> "$data/verify.err" ||
    { cat "$data/verify.err" >&2; exit 1; }
  touch "$data/mirrored"
fi
archive=$data/archive
work=$(mktemp -d "$data/run.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Everything into the page cache first: every run reads from memory.
find "$archive" -type f -exec cat {} + > /dev/null

# --- the competitors -------------------------------------------------------------------------
spark_top() {  # SOURCE PATH
  PYSPARK_PYTHON=$spark_venv/bin/python PYSPARK_DRIVER_PYTHON=$spark_venv/bin/python \
    "$spark" --master "local[$cores]" --driver-memory "${SPARK_DRIVER_MEMORY:-4g}" \
    "$spark_job" top --by dest -n "$n" --format json --source "$1" "$2"
}
spark_bzip2() { spark_top bzip2 "$archive/mail_logs"; }
spark_parquet() { spark_top parquet "$archive"; }
maillog_bzip2() { "$MAILLOG" top --by dest -n "$n" --format json "$archive/mail_logs"; }
maillog_parquet() { "$MAILLOG" top --by dest -n "$n" --format json --source parquet "$archive"; }

declare -A secs failed
# timed NAME: best wall-clock of $runs runs of the function NAME; the last run's stdout in
# $work/NAME.out, its stderr in $work/NAME.err.
timed() {
  local name=$1 best="" k t0 t
  say "$name ..."
  for k in $(seq "$runs"); do
    t0=$EPOCHREALTIME
    if ! "$name" > "$work/$name.out" 2> "$work/$name.err"; then
      failed[$name]=1
      say "$name FAILED:"; tail -5 "$work/$name.err" >&2
      return 0
    fi
    t=$(echo "$EPOCHREALTIME - $t0" | bc)
    say "$name run $k: $t s"
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
  done
  secs[$name]=$best
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
if [ -n "$spark" ]; then timed spark_bzip2; timed spark_parquet; fi
timed maillog_bzip2
if [ -n "$maillog_parquet" ]; then timed maillog_parquet; fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the answers -----------------------------------------------------------------------------
# The top 10 as `COUNT<TAB>KEY` lines. spark-submit folds the job's log lines into its stdout,
# where the answer is the last line that starts with `[`; maillog prints the JSON alone.
for name in "${!secs[@]}"; do
  case $name in
    spark_*) grep '^\[' "$work/$name.out" | tail -1 ;;
    *) cat "$work/$name.out" ;;
  esac | jq -r '.[] | "\(.count)\t\(.key)"' > "$work/$name.top" 2>> "$work/$name.err" || true
done
declare -A check
for name in "${!secs[@]}"; do
  if [ -z "${secs[maillog_bzip2]:-}" ]; then check[$name]="?"
  elif [ "$name" = maillog_bzip2 ]; then check[$name]="reference"
  elif [ "$(wc -l < "$work/$name.top")" -eq "$n" ] && cmp -s "$work/$name.top" "$work/maillog_bzip2.top"; then
    check[$name]="= maillog"
  else check[$name]="MISMATCH"
  fi
done

# --- the report ------------------------------------------------------------------------------
mib() { printf '%.1f' "$(echo "scale=3; $1 / 1048576" | bc)"; }
bytes_of() { find "$@" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
files_of() { find "$@" -type f | wc -l; }
bz2_bytes=$(bytes_of "$archive/mail_logs"); pq_bytes=$(bytes_of "$archive/mirror")
to_bz2=$(find "$archive/mail_logs" -type f -name 'to-*' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
to_pq=$(bytes_of "$archive/mirror/to")
echo "== top --by dest -n $n: Spark over the bzip2 archive and over its Parquet mirror (benches/spark.sh) =="
echo "machine: $cores cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/^Mem:/ {print $2}') GiB;" \
  "load average at start $load_start, at end $load_end"
echo "maillog: $("$MAILLOG" --version) ($MAILLOG; git $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
if [ -n "$spark" ]; then
  echo "spark: pyspark $("$spark_venv/bin/python" -c 'import pyspark; print(pyspark.__version__)')," \
    "$(java -version 2>&1 | head -1), local[$cores], driver memory ${SPARK_DRIVER_MEMORY:-4g}"
fi
if [ "$(echo "${load_start%% *} > 0.5" | bc)" = 1 ]; then
  echo "WARNING: the machine was busy when the runs began (load average $load_start): the times are not reliable"
fi
echo "data: $data ($lines lines at $rate/s)"
echo "  bzip2 archive: $(files_of "$archive/mail_logs") files, $(mib "$bz2_bytes") MiB ($(mib "$to_bz2") MiB of to-files)"
echo "  Parquet mirror: $(files_of "$archive/mirror") files, $(mib "$pq_bytes") MiB ($(mib "$to_pq") MiB of to-files)"
echo "runs: best of $runs wall-clock, each a fresh process"
echo
row() {  # NAME LABEL
  local name=$1 label=$2 s ratio="-"
  if [ -n "${failed[$name]:-}" ]; then printf '%-64s %9s\n' "$label" "FAILED"; return; fi
  s=${secs[$name]:-}
  if [ -z "$s" ]; then printf '%-64s %9s\n' "$label" "skipped"; return; fi
  if [ -n "${secs[spark_bzip2]:-}" ]; then
    ratio=$(printf '%.2f' "$(echo "scale=4; $s / ${secs[spark_bzip2]}" | bc)")
  fi
  printf '%-64s %9.3f %8s  %s\n' "$label" "$s" "$ratio" "${check[$name]:-}"
}
printf '%-64s %9s %8s  %s\n' "query" "seconds" "/a" "top $n"
if [ -n "$spark" ]; then
  row spark_bzip2 "a. Spark local[$cores] --source bzip2 ARCHIVE/mail_logs"
  row spark_parquet "b. Spark local[$cores] --source parquet ARCHIVE (the mirror)"
else
  printf '%-64s %9s\n' "a, b. Spark: skipped (no $spark_venv/bin/spark-submit or java)" "-"
fi
row maillog_bzip2 "c. maillog top --by dest ARCHIVE/mail_logs"
if [ -n "$maillog_parquet" ]; then
  row maillog_parquet "d. maillog top --by dest --source parquet ARCHIVE"
else
  printf '%-64s %9s\n' "d. maillog top --source parquet: not available (not in top --help)" "-"
fi
echo
for name in "${!check[@]}"; do
  if [ "${check[$name]}" = MISMATCH ]; then
    echo "MISMATCH: $name's top $n differs from maillog's:"
    diff "$work/maillog_bzip2.top" "$work/$name.top" | sed 's/^/  /' || true
  fi
done
if [ -s "$work/maillog_bzip2.top" ]; then
  echo "top $n (maillog):"
  sed 's/^/  /' "$work/maillog_bzip2.top"
fi
echo "commands:"
echo "  a. $spark --master local[$cores] contrib/spark/maillog_top.py top --by dest -n $n --format json --source bzip2 $archive/mail_logs"
echo "  b. $spark --master local[$cores] contrib/spark/maillog_top.py top --by dest -n $n --format json --source parquet $archive"
echo "  c. $MAILLOG top --by dest -n $n --format json $archive/mail_logs"
echo "  d. $MAILLOG top --by dest -n $n --format json --source parquet $archive"
