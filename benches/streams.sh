#!/usr/bin/env bash
# `maillog top --by dest` over bzip2 files against the floor of decoding them (issue 17: the
# streams of one file decoded on every core), side by side in one run, two archives:
#
#   even:   the 288 `to-` files of one day of benches/mirror.sh's data (1,000,000 lines)
#   uneven: the same bytes as two files: all but one of them concatenated into one
#           multistream file (what `cat` of bzip2 files makes), and the last one alone
#
# For each: the floor as the issue defines it (`bzip2 -dc` of the files, one process per file
# over all cores: `xargs -P NPROC`), the physical floor (one `bzip2 -dc` of every file in a
# row, divided by the cores), `maillog top` of a baseline binary (BASELINE, before the streams
# were decoded in parallel) and of this one. Best of RUNS (default 5). The answers of both
# binaries must be equal.
#
# usage: benches/streams.sh        RUNS=5 BASELINE=path/to/old/maillog MAILLOG=path/to/maillog
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=benches/lib.sh
. benches/lib.sh

runs=${RUNS:-5}
if [ -z "${MAILLOG:-}" ]; then
  cargo build --release --locked --bin maillog --bin maillog-loggen >&2
  MAILLOG=${CARGO_TARGET_DIR:-$root/target}/release/maillog
fi
baseline=${BASELINE:?BASELINE=path/to/the baseline maillog}
day=$root/target/bench-data/mirror-1000000
[ -f "$day/done" ] || MAILLOG=$MAILLOG benches/mirror.sh >/dev/null
data=$root/target/bench-data/streams
if [ ! -f "$data/done" ]; then
  rm -rf "$data" && mkdir -p "$data/even" "$data/uneven"
  find "$day/archive/mail_logs" -name 'to-*.json.bz2' | sort >"$data/files"
  while read -r f; do cp "$f" "$data/even/"; done <"$data/files"
  head -n -1 "$data/files" | xargs cat >"$data/uneven/to-2025-11-15-00-00.json.bz2"
  cp "$(tail -n 1 "$data/files")" "$data/uneven/"
  touch "$data/done"
fi
cores=$(nproc)

floor_xargs() { find "$1" -name '*.bz2' -print0 | xargs -0 -P "$cores" -n 1 bzip2 -dc >/dev/null; }
floor_serial() { find "$1" -name '*.bz2' -print0 | xargs -0 -n 1 bzip2 -dc >/dev/null; }

printf '%-8s %10s %10s %12s %12s %14s %14s\n' archive files xargs-P serial/cores baseline maillog "xargs-P/maillog"
for set in even uneven; do
  dir=$data/$set
  a=$("$baseline" top --by dest -n 50 --format json --quiet --source bzip2 "$dir")
  b=$("$MAILLOG" top --by dest -n 50 --format json --quiet --source bzip2 "$dir")
  [ "$a" = "$b" ] || { echo "streams.sh: MISMATCH on $set" >&2; exit 1; }
  x=$(best "$runs" floor_xargs "$dir")
  s=$(best 1 floor_serial "$dir")
  s=$(echo "scale=3; $s / $cores" | bc)
  old=$(best "$runs" "$baseline" top --by dest --quiet --source bzip2 "$dir")
  new=$(best "$runs" "$MAILLOG" top --by dest --quiet --source bzip2 "$dir")
  printf '%-8s %10s %10.3f %12.3f %12.3f %14.3f %14.2f\n' "$set" "$(find "$dir" -name '*.bz2' | wc -l)" \
    "$x" "$s" "$old" "$new" "$(echo "scale=4; $x / $new" | bc)"
done
echo "($cores cores; seconds, best of $runs; the last column is the issue's 'of the floor': at least 0.95)"
