#!/usr/bin/env bash
# "Top 10 recipients" (`maillog top --by dest -n 10`: count of `to` records by dest, the empty
# dest as `<>`, ties by key ascending) over the archive's to-files, against the physical limit
# and the usual other ways, side by side in one run, on all cores. The data set is the archive
# that `maillog run --once` makes of a generated log of LINES lines (default 2,500,000: about
# 2.06M records, 1.23M of them `to`), built once by benches/top-data.sh under target/bench-data/.
#
#  a. the limit: `bzip2 -dc` of the same to-files to /dev/null, one file per process over all
#     cores (xargs -P); also the files split into one size-balanced shard per core, and lbzip2
#     (informative; the files concatenated into one multistream input, which it decodes on all
#     cores)
#  b. maillog top --by dest -n 10 --format json TO-FILES...        (the target: a/b >= 0.95)
#  c. Spark local mode: spark-submit --master local[NPROC] contrib/spark/maillog_top.py top
#     --by dest -n 10 --format json 'ARCHIVE/mail_logs/*/to-*.json.bz2'   (the venv of
#     scripts/install-spark; skipped with a message when it is not installed)
#  d. shell, sharded: one size-balanced shard of the files per core, each `bzcat FILES |
#     mawk -f benches/top-dest.awk | sort` (resp. `| jq -r …`), then `sort -m | uniq -c |
#     sort -k1,1nr -k2 | head` (LC_ALL=C: byte order)
#  e. benches/top_mp.py: Python multiprocessing, one process per core, bz2 + json + Counter
#  f. the raw log: maillog top --by dest -n 10 mail.log (the uncompressed syslog, parsed on the
#     fly) against DuckDB over the same records as uncompressed NDJSON (benches/top-duckdb.py:
#     read_json + GROUP BY, threads = NPROC, a fresh process and connection each run, timed
#     whole: Python start, import, read and query)
#
# Wall-clock seconds, best of RUNS (default 3) runs each; a tool whose runs pass TOOL_BUDGET
# seconds (default 150) in total stops early (the table says how many runs it had). Every
# tool's top 10 is compared with maillog's (a MISMATCH line otherwise; with no working
# `maillog top`, with top_mp.py's). Ratio column: the tool's seconds / maillog's seconds.
#
# usage: benches/top.sh [LINES]
#   RUNS=3  TOOL_BUDGET=150  RATE=20 (the generated log's lines per second)
#   MAILLOG=path/to/maillog: use it (maillog-loggen beside it) instead of building with cargo
#   MAILLOG_TOOLS: where scripts/install-spark put its venv (default ~/.cache/maillog)
#   DUCKDB_VERSION=1.4.4: the duckdb installed from PyPI into target/bench-data/venv
#   ONLY="maillog spark …": run only these (names as in the `timed` lines below); KEEP=1: keep
#   the outputs (target/bench-data/top-…/run.*/NAME.{out,err})
# shellcheck disable=SC2154  # the variables of $data/facts
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

lines=${1:-2500000}
rate=${RATE:-20}
runs=${RUNS:-3}
budget=${TOOL_BUDGET:-150}
cores=$(nproc)
n=10
started=$(date +%s)

say() { echo "top.sh: $*" >&2; }

# --- tools ---------------------------------------------------------------------------------
if [ -z "${MAILLOG:-}" ]; then
  cargo build --release --locked --bin maillog --bin maillog-loggen >&2
  MAILLOG=${CARGO_TARGET_DIR:-$root/target}/release/maillog
fi
export MAILLOG

if ! command -v lbzip2 >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  say "installing lbzip2"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq --no-install-recommends lbzip2 >/dev/null || say "lbzip2: install failed"
fi
if command -v mawk >/dev/null 2>&1; then awk="mawk"; else awk="awk"; fi

duckdb_version=${DUCKDB_VERSION:-1.4.4}
venv=$root/target/bench-data/venv
if ! "$venv/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$duckdb_version')" 2>/dev/null; then
  say "installing duckdb $duckdb_version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "duckdb==$duckdb_version" >&2
fi

spark_venv=${MAILLOG_TOOLS:-$HOME/.cache/maillog}/spark-venv
spark_job=$root/contrib/spark/maillog_top.py
spark=""
if [ -x "$spark_venv/bin/spark-submit" ] && [ -f "$spark_job" ] && command -v java >/dev/null 2>&1; then
  spark=$spark_venv/bin/spark-submit
fi

# --- data ----------------------------------------------------------------------------------
data=$(benches/top-data.sh "$lines" "$rate")
# lines rate records to_records to_files to_bz2_bytes to_json_bytes log_bytes
# shellcheck disable=SC1091
. "$data/facts"
mapfile -t files < "$data/to-files.list"
work=$(mktemp -d "$data/run.XXXXXX")
if [ -n "${KEEP:-}" ]; then say "outputs kept in $work"; else trap 'rm -rf "$work"' EXIT; fi

# One shard per core, balanced by compressed size (largest file first into the lightest shard).
# shellcheck disable=SC2016
xargs -a "$data/to-files.list" -d '\n' stat -c '%s %n' | sort -k1,1nr |
  $awk -v k="$cores" -v dir="$work" '
    { best = 0; for (i = 1; i < k; i++) if (load[i] < load[best]) best = i
      load[best] += $1; print substr($0, index($0, " ") + 1) > (dir "/shard." best) }'
shards=("$work"/shard.*)

# Everything into the page cache first: every run reads from memory.
cat "${files[@]}" "$data/mail.log" "$data/to.ndjson" > /dev/null

# --- the competitors -------------------------------------------------------------------------
limit_xargs() { xargs -a "$data/to-files.list" -d '\n' -P "$cores" -n 1 bzip2 -dc > /dev/null; }
limit_shards() {
  local s
  for s in "${shards[@]}"; do xargs -a "$s" -d '\n' bzip2 -dc > /dev/null & done
  wait
}
limit_lbzip2() { cat "${files[@]}" | lbzip2 -dc -n "$cores" > /dev/null; }
maillog_archive() { "$MAILLOG" top --by dest -n "$n" --format json "${files[@]}"; }
maillog_raw() { "$MAILLOG" top --by dest -n "$n" --format json "$data/mail.log"; }
spark_top() {
  PYSPARK_PYTHON=$spark_venv/bin/python PYSPARK_DRIVER_PYTHON=$spark_venv/bin/python \
    "$spark" --master "local[$cores]" --driver-memory "${SPARK_DRIVER_MEMORY:-4g}" \
    "$spark_job" top --by dest -n "$n" --format json "$data/archive/mail_logs/*/to-*.json.bz2"
}
# sharded EXTRACT...: per shard `bzcat FILES | EXTRACT | sort` in parallel, then merged.
sharded() {
  local s i=0
  for s in "${shards[@]}"; do
    mkfifo "$work/fifo.$i"
    (xargs -a "$s" -d '\n' bzcat | "$@" | LC_ALL=C sort > "$work/fifo.$i") &
    i=$((i + 1))
  done
  LC_ALL=C sort -m --batch-size="$((cores > 2 ? cores : 2))" "$work"/fifo.* | LC_ALL=C uniq -c |
    LC_ALL=C sort -k1,1nr -k2 | head -n "$n"
  wait
  rm -f "$work"/fifo.*
}
shell_awk() { sharded env LC_ALL=C "$awk" -f "$root/benches/top-dest.awk"; }
shell_jq() { sharded jq -r '.dest | select(. != null) | if . == "" then "<>" else . end'; }
python_mp() { python3 "$root/benches/top_mp.py" -n "$n" -j "$cores" "${files[@]}"; }
duckdb_top() { "$venv/bin/python" "$root/benches/top-duckdb.py" "$data/to.ndjson" "$cores" "$n"; }

# The answers as `COUNT<TAB>KEY` lines.
from_json() { jq -r '.[] | "\(.count)\t\(.key)"'; }
from_uniq() { sed -E 's/^ *([0-9]+) /\1\t/'; }

declare -A secs nruns failed
# timed NAME CMD...: best wall-clock of up to $runs runs (fewer once $budget s are spent);
# the last run's stdout in $work/NAME.out, its stderr in $work/NAME.err.
timed() {
  local name=$1; shift
  local best="" spent=0 k=0 t0 t1 t
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return 0; fi
  say "$name ..."
  while [ "$k" -lt "$runs" ]; do
    t0=$EPOCHREALTIME
    if ! "$@" > "$work/$name.out" 2> "$work/$name.err"; then
      failed[$name]=1
      say "$name FAILED:"; tail -5 "$work/$name.err" >&2
      return 0
    fi
    t1=$EPOCHREALTIME
    t=$(echo "$t1 - $t0" | bc)
    k=$((k + 1))
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
    spent=$(echo "$spent + $t" | bc)
    say "$name run $k: $t s"
    if [ "$(echo "$spent > $budget" | bc)" = 1 ]; then break; fi
  done
  secs[$name]=$best
  nruns[$name]=$k
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
timed limit_xargs limit_xargs
timed limit_shards limit_shards
if command -v lbzip2 >/dev/null 2>&1; then timed lbzip2 limit_lbzip2; fi
timed maillog maillog_archive
if [ -n "$spark" ]; then timed spark spark_top; fi
timed shell_awk shell_awk
timed shell_jq shell_jq
timed python_mp python_mp
timed maillog_raw maillog_raw
timed duckdb duckdb_top
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the answers -----------------------------------------------------------------------------
answer() {  # NAME: the canonical top 10 into $work/NAME.top
  local name=$1
  case $name in
    maillog | maillog_raw) from_json < "$work/$name.out" ;;
    # spark-submit's PythonRunner merges the job's stderr (its log lines) into stdout.
    spark) grep '^\[' "$work/$name.out" | tail -1 | from_json ;;
    shell_awk | shell_jq) from_uniq < "$work/$name.out" ;;
    *) cat "$work/$name.out" ;;
  esac > "$work/$name.top" 2>> "$work/$name.err" || true
}
answered=(maillog spark shell_awk shell_jq python_mp maillog_raw duckdb)
for t in "${answered[@]}"; do
  if [ -n "${secs[$t]:-}" ]; then answer "$t"; fi
done
ref=""
for t in maillog maillog_raw python_mp; do
  if [ -n "${secs[$t]:-}" ] && [ -s "$work/$t.top" ]; then ref=$t; break; fi
done
declare -A check
for t in "${answered[@]}"; do
  [ -n "${secs[$t]:-}" ] || continue
  if [ -z "$ref" ]; then check[$t]="?"
  elif [ "$t" = "$ref" ]; then check[$t]="reference"
  elif [ "$(wc -l < "$work/$t.top")" -eq "$n" ] && cmp -s "$work/$t.top" "$work/$ref.top"; then
    check[$t]="= $ref"
  else check[$t]="MISMATCH"
  fi
done

# --- the report ------------------------------------------------------------------------------
mb() { echo "scale=1; $1 / 1048576" | bc; }
version() { "$@" 2>&1 | head -1; }
echo "== maillog top --by dest -n $n: the benchmark of benches/top.sh =="
echo "machine: $cores cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/^Mem:/ {print $2}') GiB;" \
  "load average at start $load_start, at end $load_end"
echo "maillog: $("$MAILLOG" --version) ($MAILLOG; git $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "tools: $(version bzip2 --version < /dev/null | sed 's/, a block-sorting file compressor//');" \
  "$(command -v lbzip2 >/dev/null && version lbzip2 --version || echo 'no lbzip2');" \
  "$($awk -W version 2>/dev/null | head -1 || echo "$awk");" \
  "$(version jq --version); $(version python3 --version); duckdb $duckdb_version"
if [ -n "$spark" ]; then
  echo "spark: pyspark $("$spark_venv/bin/python" -c 'import pyspark; print(pyspark.__version__)')," \
    "$(version java -version), local[$cores], driver memory ${SPARK_DRIVER_MEMORY:-4g}"
fi
if [ "$(echo "${load_start%% *} > 0.5" | bc)" = 1 ]; then
  echo "WARNING: the machine was busy when the runs began (load average $load_start): other processes took CPU, the times are not reliable"
fi
echo "data: $data"
echo "  generated log: $lines lines at $rate/s, $(mb "$log_bytes") MiB; records: $records ($to_records to)"
echo "  to-files: $to_files files, $(mb "$to_bz2_bytes") MiB bzip2, $(mb "$to_json_bytes") MiB uncompressed" \
  "(to.ndjson, the same bytes); $cores shards of $(for s in "${shards[@]}"; do wc -l < "$s"; done | paste -sd/) files"
echo "runs: best of $runs wall-clock (a tool stops after $budget s of runs)"
echo

row() {  # NAME LABEL BASE
  local name=$1 label=$2 base=$3 s ratio note=""
  if [ -n "${failed[$name]:-}" ]; then
    printf '%-62s %9s\n' "$label" "FAILED"; return
  fi
  s=${secs[$name]:-}
  if [ -z "$s" ]; then printf '%-62s %9s\n' "$label" "skipped"; return; fi
  ratio="-"
  if [ -n "${secs[$base]:-}" ]; then ratio=$(printf '%.2f' "$(echo "scale=4; $s / ${secs[$base]}" | bc)"); fi
  [ "${nruns[$name]}" = "$runs" ] || note="  (${nruns[$name]} run$([ "${nruns[$name]}" = 1 ] || echo s): slow)"
  printf '%-62s %9.3f %8s  %s%s\n' "$label" "$s" "$ratio" "${check[$name]:-}" "$note"
}
printf '%-62s %9s %8s  %s\n' "over the archive's $to_files to-files ($(mb "$to_bz2_bytes") MiB)" "seconds" "/maillog" "top 10"
row limit_xargs "a. bzip2 -dc, one file per process, xargs -P $cores" maillog
row limit_shards "a. bzip2 -dc, $cores size-balanced shards in parallel" maillog
row lbzip2 "a. lbzip2 -dc -n $cores of the files concatenated (informative)" maillog
row maillog "b. maillog top --by dest -n $n" maillog
if [ -n "$spark" ]; then row spark "c. Spark local[$cores] (contrib/spark/maillog_top.py)" maillog
else printf '%-62s %9s\n' "c. Spark: skipped (no $spark_venv/bin/spark-submit: scripts/install-spark)" "-"; fi
row shell_awk "d. $cores x (bzcat | $awk | sort), sort -m | uniq -c | sort" maillog
row shell_jq "d. $cores x (bzcat | jq -r .dest | sort), sort -m | uniq -c | sort" maillog
row python_mp "e. top_mp.py: $cores processes, bz2 + json + Counter" maillog
echo
printf '%-62s %9s %8s  %s\n' "over the same records uncompressed" "seconds" "/maillog" "top 10"
row maillog_raw "f. maillog top --by dest -n $n mail.log ($(mb "$log_bytes") MiB syslog)" maillog_raw
row duckdb "f. DuckDB read_json to.ndjson ($(mb "$to_json_bytes") MiB), threads=$cores" maillog_raw
if [ -n "${secs[duckdb]:-}" ]; then
  q=$(sed -n 's/^duckdb-seconds //p' "$work/duckdb.err" | head -1)
  [ -n "$q" ] && printf '%-62s %9.3f   (last run, inside the process)\n' "   of which connect + read + query" "$q"
fi
echo

if [ -n "${secs[maillog]:-}" ]; then
  lim=${secs[limit_xargs]:-}
  if [ -n "${secs[limit_shards]:-}" ] && { [ -z "$lim" ] || [ "$(echo "${secs[limit_shards]} < $lim" | bc)" = 1 ]; }; then
    lim=${secs[limit_shards]}
  fi
  if [ -n "$lim" ]; then
    r=$(printf '%.3f' "$(echo "scale=5; $lim / ${secs[maillog]}" | bc)")
    echo "target: limit (the faster bzip2 -dc line) / maillog = $r, $([ "$(echo "$r >= 0.95" | bc)" = 1 ] && echo "met (>= 0.95)" || echo "NOT met (< 0.95)")"
  fi
fi
for t in "${answered[@]}"; do
  if [ "${check[$t]:-}" = MISMATCH ]; then
    echo "MISMATCH: $t's top $n differs from $ref's:"
    diff "$work/$ref.top" "$work/$t.top" | sed 's/^/  /' || true
  fi
done
if [ -n "$ref" ]; then
  [ "$ref" = maillog ] || echo "note: no answer from maillog top over the archive; the top 10 are compared with $ref's"
  echo "top $n ($ref):"
  sed 's/^/  /' "$work/$ref.top"
else
  echo "no reference answer: nothing compared"
fi
echo "whole run: $(( $(date +%s) - started )) s"
