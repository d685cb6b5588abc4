#!/usr/bin/env bash
# The service in its steady state: `maillog run` (without --once) following the file of its own
# syslog-ng, fed over TCP by four fake mail servers (mx1..mx4) at a fixed rate, archiving to its
# own s3s-fs. For each rate: a warm-up, then the measured period, in which maillog's VmRSS is
# read every 100 ms (and its peak, VmHWM, every second), the CPU (utime + stime) of maillog,
# syslog-ng, the feeder and s3s-fs is taken from /proc/PID/stat, and the lines syslog-ng wrote
# are counted as they are written. All the while (warm-up included), every window file is
# timed as it appears in the bucket (polled every 100 ms): seal-to-S3 delay = appearance -
# (window start + 300 s + lateness). Each rate starts from
# scratch (new syslog-ng, s3s-fs, spool). Prints Markdown tables for BENCHMARKS.md and the
# command that reproduces them. Everything lives in a temporary directory, removed at the end.
#
# usage: benches/service.sh
#   RATES="1000 10000"   lines/s, one run each
#   SECONDS_PER_RATE=300 measured seconds per rate, after a warm-up of at least WARMUP=30 s
#                        that ends LATENESS + 10 s after a window boundary: the measured
#                        period holds the seal and upload of one full window, as every 300 s
#                        of the steady state does (so a rate takes about 6 to 11 minutes)
#   LATENESS=30          window.lateness_seconds (maillog's default is 120; a shorter one
#                        shortens the warm-up)
#   LEVEL=9 BZIP2_THREADS=0  [bzip2] level and threads (0: one per core)
#   UPLOAD_CONCURRENCY=4 COMMIT_SECONDS=1  [upload] concurrency, [window] commit_seconds
#   MAILLOG_ENV="MALLOC_ARENA_MAX=2 …"  extra environment for maillog
#   EXTRA_TOML=$'[top]\nmax_keys = 0'  appended to maillog's pipeline.toml (new sections only)
#   EXTRA_TOML_B=$'[mirror]\nenabled = true'  a second maillog ("B") beside the first, following
#                        the same file in the same period into its own spool and prefix, with
#                        this appended to the same config: an A/B of a setting's cost, side by
#                        side (the machine's state is the same for both); its CPU and peak RSS
#                        are printed after the table
#   TIME_ZONE=UTC        time_zone of both (Asia/Kolkata: hours end at :30 UTC)
#   SRC=.                the source tree to build (e.g. a `git archive` export)
#   TARGET_DIR=../target-bench  cargo's target directory (kept apart from target/)
#   MAILLOG=… LOGGEN=…   prebuilt binaries: no build
#   KEEP=1               keep the temporary directory (its path is printed)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

rates=${RATES:-1000 10000}
seconds=${SECONDS_PER_RATE:-300}
warmup=${WARMUP:-30}
lateness=${LATENESS:-30}
level=${LEVEL:-9}
bzip2_threads=${BZIP2_THREADS:-0}
maillog_env=${MAILLOG_ENV:-}
extra_toml=${EXTRA_TOML:-}
extra_toml_b=${EXTRA_TOML_B:-}
time_zone=${TIME_ZONE:-UTC}
upload_concurrency=${UPLOAD_CONCURRENCY:-4}
commit_seconds=${COMMIT_SECONDS:-1}
src=${SRC:-$repo}
target_dir=${TARGET_DIR:-$(cd "$repo/.." && pwd)/target-bench}

scripts/install-test-tools
for p in syslog-ng logger s3s-fs python3; do
  command -v "$p" >/dev/null || { echo "service.sh: $p is missing" >&2; exit 1; }
done
# What is built: the commit, and whether the tree differs from it (the build takes the tree).
built="$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo "${src##*/}")"
if [ -n "$(git -C "$src" status --porcelain -- crates Cargo.toml Cargo.lock ':(exclude)crates/*/tests/*' 2>/dev/null)" ]; then
  built="$built + uncommitted changes"
fi
if [ -z "${MAILLOG:-}" ] || [ -z "${LOGGEN:-}" ]; then
  (cd "$src" && CARGO_TARGET_DIR="$target_dir" cargo build --release --locked -p maillog-cli -p maillog-loggen >&2)
else
  built="prebuilt $MAILLOG"
fi
maillog=${MAILLOG:-$target_dir/release/maillog}
loggen=${LOGGEN:-$target_dir/release/maillog-loggen}
# The interpreter itself, not a pyenv shim, so that the feeder's PID is the process that works.
py=$(python3 -c 'import sys; print(sys.executable)')

work=$(mktemp -d "${TMPDIR:-/tmp}/maillog-service-bench.XXXXXX")
children=()
cleanup() {
  local p
  for p in "${children[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "service.sh: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  local port=$1 what=$2 log=$3
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "service.sh: $what did not start:" >&2; cat "$log" >&2; exit 1
}

# The messages: a generated 4-server cluster log, sent round and round (the feeder re-stamps it).
"$loggen" --lines 200000 --servers 4 --rate 100 --seed 1 -o "$work/pool.log"

run_rate() {
  local rate=$1 d=$work/rate-$1
  mkdir -p "$d/syslog" "$d/s3/bench" "$d/spool"
  local tcp udp s3port
  tcp=$(free_port); udp=$(free_port); s3port=$(free_port)

  # syslog-ng as on the central host (contrib/syslog-ng/maillog.conf), on loopback ports.
  cat > "$d/syslog-ng.conf" <<EOF
@version: 3.38
options { keep_hostname(yes); flush_lines(0); stats_freq(0); use_dns(no); dns_cache(no); };
source s_net {
    network(ip(127.0.0.1) port($udp) transport("udp") flags(syslog-protocol, no-multi-line) so_rcvbuf(4194304));
    network(ip(127.0.0.1) port($tcp) transport("tcp") flags(syslog-protocol, no-multi-line)
            max_connections(100) log_iw_size(10000));
};
filter f_mail { facility(mail); };
destination d_mail { file("$d/syslog/mail.log" perm(0644) ts_format(iso) log_fifo_size(30000)); };
log { source(s_net); filter(f_mail); destination(d_mail); flags(flow-control); };
EOF
  syslog-ng -F -e --no-caps -f "$d/syslog-ng.conf" -p "$d/syslog-ng.pid" -R "$d/syslog-ng.persist" \
    -c "$d/syslog-ng.ctl" > /dev/null 2> "$d/syslog-ng.err" &
  local sng=$!; children+=("$sng")
  wait_port "$tcp" syslog-ng "$d/syslog-ng.err"

  # s3s-fs with one bucket (a directory under its data directory).
  s3s-fs --host 127.0.0.1 --port "$s3port" --access-key bench-key --secret-key bench-secret "$d/s3" \
    > "$d/s3s-fs.log" 2>&1 &
  local s3=$!; children+=("$s3")
  wait_port "$s3port" s3s-fs "$d/s3s-fs.log"

  logger --server 127.0.0.1 --port "$tcp" --tcp --rfc5424 -p mail.info -t sendmail --id=1 \
    "service bench: $rate lines/s"
  for _ in $(seq 100); do [ -s "$d/syslog/mail.log" ] && break; sleep 0.05; done

  cat > "$d/pipeline.toml" <<EOF
inputs = ["$d/syslog/mail.log"]
spool = "$d/spool"
archive = "s3://bench/maillog"
time_zone = "$time_zone"
[window]
lateness_seconds = $lateness
commit_seconds = $commit_seconds
[bzip2]
level = $level
threads = $bzip2_threads
[s3]
endpoint = "http://127.0.0.1:$s3port"
path_style = true
region = "us-east-1"
checksum = "when_required"
[upload]
concurrency = $upload_concurrency
$extra_toml
EOF
  # shellcheck disable=SC2086 # MAILLOG_ENV is a list of VAR=value words
  env AWS_ACCESS_KEY_ID=bench-key AWS_SECRET_ACCESS_KEY=bench-secret $maillog_env \
    "$maillog" run --config "$d/pipeline.toml" > "$d/maillog.out" 2> "$d/maillog.err" &
  local ml=$!; children+=("$ml")
  local ml_b='' watched=("maillog=$ml")
  if [ -n "$extra_toml_b" ]; then
    mkdir -p "$d/spool-b"
    sed -e "s#^spool = .*#spool = \"$d/spool-b\"#" -e 's#^archive = "s3://bench/maillog"#archive = "s3://bench/maillog-b"#' \
      "$d/pipeline.toml" > "$d/pipeline-b.toml"
    printf '%s\n' "$extra_toml_b" >> "$d/pipeline-b.toml"
    # shellcheck disable=SC2086 # MAILLOG_ENV is a list of VAR=value words
    env AWS_ACCESS_KEY_ID=bench-key AWS_SECRET_ACCESS_KEY=bench-secret $maillog_env \
      "$maillog" run --config "$d/pipeline-b.toml" > "$d/maillog-b.out" 2> "$d/maillog-b.err" &
    ml_b=$!; children+=("$ml_b"); watched+=("maillog-b=$ml_b")
  fi
  sleep 1
  kill -0 "$ml" 2>/dev/null || { echo "service.sh: maillog run exited:" >&2; cat "$d/maillog.err" >&2; exit 1; }

  # The measured period starts L + 10 s after the start of the first window fed from its
  # beginning (and at least WARMUP after the feed starts), so that this window's seal — at its
  # end + L, the steady state's one seal and upload of a full window every 300 s — falls in
  # it, 10 s before its end (with SECONDS_PER_RATE >= 300).
  local t0 b from to
  t0=$(date +%s)
  b=$(( (t0 + 299) / 300 * 300 ))
  while (( b + lateness + 10 < t0 + warmup )); do b=$((b + 300)); done
  from=$((b + lateness + 10)); to=$((from + seconds))
  "$py" benches/service-feed.py "$work/pool.log" "$tcp" "$rate" "$((to - t0))" 2> "$d/feed.err" &
  local feed=$!; children+=("$feed")
  "$py" benches/service-monitor.py watch "$d" "$d/syslog/mail.log" "$d/s3/bench/maillog" \
    "${watched[@]}" syslog-ng="$sng" feeder="$feed" s3s-fs="$s3" &
  local mon=$!; children+=("$mon")
  echo "service.sh: $rate lines/s from $(date -u -d "@$t0" +%T) UTC: $((from - t0)) s warm-up, measured $(date -u -d "@$from" +%T)–$(date -u -d "@$to" +%T); the window $(date -u -d "@$b" +%H:%M) seals at $(date -u -d "@$((b + 300 + lateness))" +%T)" >&2
  wait "$feed"
  sleep 1
  kill -0 "$ml" 2>/dev/null || { echo "service.sh: maillog run died:" >&2; tail "$d/maillog.err" >&2; exit 1; }
  kill -TERM "$mon"; wait "$mon" || true
  # SIGKILL, as a crash would (safe: maillog is crash-safe); a graceful stop is not measured.
  if [ -n "$ml_b" ]; then
    kill -0 "$ml_b" 2>/dev/null || { echo "service.sh: maillog B died:" >&2; tail "$d/maillog-b.err" >&2; exit 1; }
    awk '/VmHWM/ {print $2}' "/proc/$ml_b/status" > "$d/hwm-b"
    kill -KILL "$ml_b"; wait "$ml_b" 2>/dev/null || true
  fi
  kill -KILL "$ml"; kill -TERM "$sng" "$s3"; wait "$ml" "$sng" "$s3" 2>/dev/null || true
  children=()
  "$py" benches/service-monitor.py summarize "$d" "$rate" "$from" "$to" "$lateness" "$t0" "$time_zone"
  cat "$d/feed.err" >&2
  # B's mirror passes (when and what): that the measured period held one is read here.
  if [ -n "$ml_b" ] && grep -q 'mirror:' "$d/maillog-b.err"; then
    echo "service.sh: maillog B's mirror passes at $rate lines/s:" >&2
    grep 'mirror:' "$d/maillog-b.err" | tail -5 >&2
  fi
  if grep -qiE 'warn|error' "$d/maillog.err"; then
    echo "service.sh: maillog's warnings and errors at $rate lines/s:" >&2
    grep -iE 'warn|error' "$d/maillog.err" | sort | uniq -c | sort -rn | head >&2
  fi
}

dirs=()
for rate in $rates; do
  run_rate "$rate"
  dirs+=("$work/rate-$rate")
done

echo
echo "maillog $built, $(nproc) cores, $(date -u +%Y-%m-%d); $(syslog-ng --version | head -1), s3s-fs $(s3s-fs --version 2>/dev/null | awk '{print $2}'); \
[bzip2] level $level, threads $bzip2_threads; [upload] concurrency $upload_concurrency; window lateness $lateness s (the default is 120 s), commits every $commit_seconds s; \
${seconds} s measured per rate after a warm-up of at least ${warmup} s, timed to contain the seal of a full window; maillog environment: ${maillog_env:-none}${extra_toml:+; extra config: ${extra_toml//$'\n'/ }}"
echo
"$py" benches/service-monitor.py table "${dirs[@]}"
echo
echo "RSS in MiB (50 MB = 47.7 MiB): median of maillog's VmRSS read each second, max of its readings every 100 ms; peak: VmHWM, which also sees what happens between two readings (the upload after a seal). CPU: utime + stime over the measured period, percent of one core (CLK_TCK $(getconf CLK_TCK))."
repro="RATES=\"$rates\" SECONDS_PER_RATE=$seconds WARMUP=$warmup LATENESS=$lateness LEVEL=$level BZIP2_THREADS=$bzip2_threads UPLOAD_CONCURRENCY=$upload_concurrency COMMIT_SECONDS=$commit_seconds"
if [ -n "$maillog_env" ]; then repro+=" MAILLOG_ENV=\"$maillog_env\""; fi
if [ -n "$extra_toml" ]; then repro+=" EXTRA_TOML=$(printf '%q' "$extra_toml")"; fi
if [ -n "$extra_toml_b" ]; then repro+=" EXTRA_TOML_B=$(printf '%q' "$extra_toml_b")"; fi
if [ "$time_zone" != UTC ]; then repro+=" TIME_ZONE=$time_zone"; fi
echo "Reproduce: $repro benches/service.sh"
