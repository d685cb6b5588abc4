#!/usr/bin/env bash
# A soak of the service: a generated day of mail (24 h of event time) replayed SPEED times faster
# than real time into `maillog run` (the service, not --once), with the live top-N on
# ([top] max_keys, default 128) and every metric on ([metrics] address), /top asked now and then
# for every dimension and window, and hostile lines mixed in (benches/soak.py): lines stamped in
# 2099 and in 1999, year-less BSD stamps (of now and of a random day of the year), bursts of
# lines each in a different 5-minute window of the past 30 days. The day starts DURATION + 60 s
# before the start of the run, so the replay's event time goes from a day ago to about now and
# never runs ahead of the wall clock (the feeder also caps it at the wall clock). The log is
# written directly (appended line by line as its time comes; no syslog-ng) and archived to an
# s3s-fs on loopback. maillog's VmRSS and VmHWM are read every second for the whole run.
# At the end: SIGTERM, then `maillog run --once=all` on the same spool drains the open windows,
# and the archive's records (every object decompressed, lines counted per kind) are compared
# with `maillog parse --kind from|to` of the log that was written. Prints Markdown for
# BENCHMARKS.md. Everything lives in a temporary directory, removed at the end.
#
# usage: benches/soak.sh
#   SPEED=100            event seconds per wall second (100: a day in 14.4 minutes)
#   RATE=10              mean lines per second of event time (loggen's --rate)
#   DURATION=86400       seconds of event time (a day)
#   LINES=2*RATE*DURATION  lines generated (loggen's --lines); the log is cut at START + DURATION
#                        (loggen's mean rate is below --rate: it is cut, not stretched)
#   MAX_KEYS=128         [top] max_keys
#   EXTRA_TOML=$'[tail]\nwatch = "events"'  appended to maillog's pipeline.toml (new sections only)
#   OUTLIER_EVERY=20 BURST_EVERY=120 BURST=300 TOP_EVERY=30 TAIL=30   see benches/soak.py
#   MAILLOG=… LOGGEN=…   prebuilt binaries: no build (else built into TARGET_DIR, default
#                        ../target-bench)
#   KEEP=1               keep the temporary directory (its path is printed)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

speed=${SPEED:-100}
rate=${RATE:-10}
duration=${DURATION:-86400}
lines=${LINES:-$(python3 -c "print(int(2 * $rate * $duration))")}
max_keys=${MAX_KEYS:-128}
extra_toml=${EXTRA_TOML:-}
target_dir=${TARGET_DIR:-$(cd "$repo/.." && pwd)/target-bench}

for p in s3s-fs python3 bzip2 curl; do
  command -v "$p" >/dev/null || { echo "soak.sh: $p is missing (scripts/install-test-tools)" >&2; exit 1; }
done
built="$(git rev-parse --short HEAD)"
if [ -z "${MAILLOG:-}" ] || [ -z "${LOGGEN:-}" ]; then
  CARGO_TARGET_DIR="$target_dir" cargo build --release --locked -p maillog-cli -p maillog-loggen >&2
else
  built="prebuilt $MAILLOG"
fi
maillog=${MAILLOG:-$target_dir/release/maillog}
loggen=${LOGGEN:-$target_dir/release/maillog-loggen}
py=$(python3 -c 'import sys; print(sys.executable)')

work=$(mktemp -d "${TMPDIR:-/tmp}/maillog-soak.XXXXXX")
children=()
cleanup() {
  local p
  for p in "${children[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "soak.sh: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "soak.sh: $2 did not start:" >&2; cat "$3" >&2; exit 1
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$(date +%s)
start=$((t0 - duration - 60))
"$loggen" --lines "$lines" --rate "$rate" --header iso --seed 1 \
  --start "$(date -u -d "@$start" +%Y-%m-%dT%H:%M:%S)" -o "$work/gen.log"
# The day: the generated lines up to START + DURATION (the first line stamped later ends it).
awk -v end="$(date -u -d "@$((start + duration))" +%Y-%m-%dT%H:%M:%S)" 'substr($0, 1, 19) >= end { exit } { print }' \
  "$work/gen.log" > "$work/day.log"
rm "$work/gen.log"
day_lines=$(wc -l < "$work/day.log")
first=$(head -c 19 "$work/day.log"); last=$(tail -n 1 "$work/day.log" | head -c 19)
echo "soak.sh: $day_lines lines of event time $first – $last UTC, at ${speed}x" >&2

mkdir -p "$work/s3/soak" "$work/spool" "$work/log"
: > "$work/log/mail.log"
s3port=$(free_port); mport=$(free_port)
s3s-fs --host 127.0.0.1 --port "$s3port" --access-key soak-key --secret-key soak-secret "$work/s3" \
  > "$work/s3s-fs.log" 2>&1 &
s3=$!; children+=("$s3")
wait_port "$s3port" s3s-fs "$work/s3s-fs.log"

cat > "$work/pipeline.toml" <<EOF
inputs = ["$work/log/mail.log"]
spool = "$work/spool"
archive = "s3://soak/maillog"
time_zone = "UTC"
[s3]
endpoint = "http://127.0.0.1:$s3port"
path_style = true
region = "us-east-1"
checksum = "when_required"
[metrics]
address = "127.0.0.1:$mport"
[top]
max_keys = $max_keys
$extra_toml
EOF
export AWS_ACCESS_KEY_ID=soak-key AWS_SECRET_ACCESS_KEY=soak-secret
"$maillog" run --config "$work/pipeline.toml" > "$work/maillog.out" 2> "$work/maillog.err" &
ml=$!; children+=("$ml")
wait_port "$mport" "maillog run" "$work/maillog.err"

"$py" benches/soak.py run "$work" "$work/day.log" "$work/log/mail.log" "$speed" "$start" "$ml" "$mport"
kill -0 "$ml" 2>/dev/null || { echo "soak.sh: maillog run died:" >&2; tail "$work/maillog.err" >&2; exit 1; }
curl -s "http://127.0.0.1:$mport/metrics" > "$work/metrics-end.txt" || true
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# A graceful stop, then a drain of what is still open, on the same spool and archive.
kill -TERM "$ml"
stop_rc=0; wait "$ml" || stop_rc=$?
children=("$s3")
drain_rc=0
/usr/bin/time -f "%e %M" -o "$work/drain.time" "$maillog" run --once=all --config "$work/pipeline.toml" \
  > "$work/drain.out" 2> "$work/drain.err" || drain_rc=$?

# The record check: every archived object decompressed, against `maillog parse` of the log.
count_kind() {
  find "$work/s3/soak" -type f -name "$1-*.json.bz2" -print0 | xargs -0 -r -n 50 bzip2 -dc | wc -l
}
arch_from=$(count_kind from); arch_to=$(count_kind to)
objects=$(find "$work/s3/soak" -type f -name '*.json.bz2' | wc -l)
log_lines=$(wc -l < "$work/log/mail.log")
exp_from=$("$maillog" parse --kind from "$work/log/mail.log" 2>/dev/null | wc -l)
exp_to=$("$maillog" parse --kind to "$work/log/mail.log" 2>/dev/null | wc -l)

echo
echo "maillog $built, $(nproc) cores, $(date -u +%Y-%m-%d); s3s-fs $(s3s-fs --version 2>/dev/null | awk '{print $2}'); \
$day_lines lines of a generated day (loggen --lines $lines --rate $rate --header iso --seed 1, cut at $duration s), event time $first – $last UTC replayed at ${speed}x; \
[top] max_keys $max_keys; [metrics] on;${extra_toml:+ extra config: ${extra_toml//$'\n'/ };} lateness and bounds at their defaults; load average at the start $load_start, at the end of the feed $load_end."
echo
"$py" benches/soak.py summarize "$work"
echo
verdict="equal"
if [ "$arch_from" != "$exp_from" ] || [ "$arch_to" != "$exp_to" ]; then verdict="**NOT equal**"; fi
echo "Record check after SIGTERM (exit $stop_rc) and \`maillog run --once=all\` (exit $drain_rc, $(cut -d' ' -f1 "$work/drain.time") s, RSS $(( $(cut -d' ' -f2 "$work/drain.time") / 1024 )) MiB): \
$log_lines lines written; \`maillog parse\`: $exp_from \`from\` + $exp_to \`to\` records; archive ($objects objects): $arch_from \`from\` + $arch_to \`to\` — $verdict."
echo
echo "Warnings and errors in maillog's log (service, then drain), counted by message:"
echo '```'
for f in maillog.err drain.err; do
  grep -iE 'warn|error' "$work/$f" | sed -E 's/^[^ ]+ +//; s/[0-9]+/N/g' | cut -c1-150 | sort | uniq -c | sort -rn | head -8 || true
done
echo '```'
echo "The last lines of the service's log and of the drain's:"
echo '```'
for f in maillog.err drain.err; do tail -n 4 "$work/$f" | cut -c1-400; done
echo '```'
repro="SPEED=$speed RATE=$rate DURATION=$duration LINES=$lines MAX_KEYS=$max_keys"
if [ -n "$extra_toml" ]; then repro+=" EXTRA_TOML=$(printf '%q' "$extra_toml")"; fi
echo "Reproduce: $repro benches/soak.sh"
if [ "$verdict" != "equal" ]; then exit 2; fi
