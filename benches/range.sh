#!/usr/bin/env bash
# One day out of a 30-day archive against the whole archive (issue 16): `maillog top --by dest
# --day D` skips the files and date folders whose names are out of the range, so it should
# answer in about 1/30 of the time of `maillog top --by dest` over the whole archive.
#
# The data set: a generated log of LINES lines (default 4,800,000, ISO stamps) spread over 30
# days from 2025-11-01, archived by `maillog run --once=all` (UTC) under
# target/bench-data/range-LINES/ (built once, a few minutes; delete the folder to rebuild):
# about 30 date folders of 576 files (the table prints what it found). Both queries run on all
# cores, best of RUNS (default 5); the table gives the seconds, the ratio, and the ratio less
# the fixed cost (a day the archive has nothing of). It first checks that the day's answer
# equals the answer of the day's folder alone read with --since/--until.
#
# usage: benches/range.sh [LINES]      RUNS=5  MAILLOG=path/to/maillog (else cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=benches/lib.sh
. benches/lib.sh

lines=${1:-4800000}
runs=${RUNS:-5}
if [ -z "${MAILLOG:-}" ]; then
  cargo build --release --locked --bin maillog --bin maillog-loggen >&2
  MAILLOG=${CARGO_TARGET_DIR:-$root/target}/release/maillog
fi
loggen=$(dirname "$MAILLOG")/maillog-loggen
data=$root/target/bench-data/range-$lines
day=2025-11-15

if [ ! -f "$data/done" ]; then
  rm -rf "$data" && mkdir -p "$data"
  # 30 days = 2,592,000 s; maillog-loggen's bursts and pauses stretch LINES at RATE about
  # 1.21 times wider than LINES / RATE (measured: 36.4 days at the plain ratio).
  rate=$(echo "scale=6; $lines * 1.214 / 2592000" | bc)
  "$loggen" --lines "$lines" --rate "$rate" --start 2025-11-01T00:00:00 --header iso \
    -o "$data/mail.log"
  printf 'inputs = ["mail.log"]\nspool = "spool"\narchive = "file://archive"\n' >"$data/pipeline.toml"
  (cd "$data" && "$MAILLOG" run --once=all >/dev/null 2>"$data/run.err")
  touch "$data/done"
fi

cd "$data"
files=$(find archive -name '*.json.bz2' | wc -l)
folders=$(find archive/mail_logs -mindepth 1 -maxdepth 1 -type d | wc -l)
whole=$(best "$runs" "$MAILLOG" top --by dest --quiet archive)
one=$(best "$runs" "$MAILLOG" top --by dest --quiet --day "$day" archive)
# The fixed cost: a day the archive has nothing of (start, config, one listing of mail_logs/).
none=$(best "$runs" "$MAILLOG" top --by dest --quiet --day 2024-02-29 archive)

# The same answer as the day's folder alone, read with --since/--until (nothing skipped there).
a=$("$MAILLOG" top --by dest -n 50 --format json --day "$day" archive)
b=$("$MAILLOG" top --by dest -n 50 --format json --since "$day" --until "${day%-*}-$(printf %02d $((10#${day##*-} + 1)))" "archive/mail_logs/$day")
[ "$a" = "$b" ] || { echo "range.sh: MISMATCH between --day and the day's folder" >&2; exit 1; }

ratio=$(echo "scale=4; $one / $whole" | bc)
echo "archive: $files files in $folders date folders, from $lines lines over 30 days ($(nproc) cores)"
printf '%-45s %10s\n' "query" "seconds"
printf '%-45s %10.3f\n' "maillog top --by dest archive" "$whole"
printf '%-45s %10.3f\n' "maillog top --by dest --day $day archive" "$one"
printf '%-45s %10.3f\n' "maillog top --by dest --day 2024-02-29 archive" "$none"
echo "ratio (one day / whole archive): $ratio   (1/30 = 0.0333)"
echo "ratio without the fixed cost ((day - nothing) / (whole - nothing)): $(echo "scale=4; ($one - $none) / ($whole - $none)" | bc)"
