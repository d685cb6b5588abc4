#!/usr/bin/env bash
# `maillog run --once` on the generated 1M-line log (~215 MB) against the physical limit measured
# in the same run: `bzip2 -9` of the same records' NDJSON, split over all cores — once as the
# two kinds' files compressed in parallel, once as the records cut into one equal part per core
# (the stricter limit). Wall-clock seconds, best of N runs; maillog's peak RSS from /usr/bin/time.
#
# usage: benches/run-vs-bzip2.sh [LINES]        (N via RUNS, default 3)
#   MAILLOG=… LOGGEN=…   prebuilt binaries: no build (e.g. a baseline built from `git archive`)
#   ONCE=--once=all      the one-shot flag; a binary older than `--once=all` (before issue 13)
#                        sealed everything with plain `ONCE=--once`
set -euo pipefail
cd "$(dirname "$0")/.."

lines=${1:-1000000}
runs=${RUNS:-3}
cores=$(nproc)

once=${ONCE:---once=all}
if [ -z "${MAILLOG:-}" ] || [ -z "${LOGGEN:-}" ]; then
  cargo build --release --locked --bin maillog --bin maillog-loggen >&2
fi
maillog=${MAILLOG:-$PWD/target/release/maillog}
loggen=${LOGGEN:-$PWD/target/release/maillog-loggen}
data=target/bench-data
mkdir -p "$data"
log="$PWD/$data/gen-$lines.log"
[ -s "$log" ] || "$loggen" --lines "$lines" --rate 20 -o "$log"
work="$PWD/$data/run-bench"
rm -rf "$work" && mkdir -p "$work"
"$maillog" parse --kind from "$log" > "$work/from.ndjson" 2>/dev/null
"$maillog" parse --kind to "$log" > "$work/to.ndjson" 2>/dev/null
cat "$work/from.ndjson" "$work/to.ndjson" > "$work/all.ndjson"
(cd "$work" && split -n "l/$cores" all.ndjson part.)

# shellcheck source=benches/lib.sh
. benches/lib.sh

kinds=$(best "$runs" sh -c "bzip2 -9 -c '$work/from.ndjson' >/dev/null & bzip2 -9 -c '$work/to.ndjson' >/dev/null & wait")
parts=$(best "$runs" sh -c "for p in '$work'/part.*; do bzip2 -9 -c \"\$p\" >/dev/null & done; wait")

run_once() {
  rm -rf "$work/spool" "$work/archive"
  /usr/bin/time -f "%M" -o "$work/rss" "$maillog" run $once --input "$log" \
    --spool "$work/spool" --archive "file://$work/archive" 2> "$work/run.err"
}
run=""; rss=""
for _ in $(seq "$runs"); do
  start=$(date +%s.%N); run_once; end=$(date +%s.%N)
  t=$(echo "$end - $start" | bc)
  if [ -z "$run" ] || [ "$(echo "$t < $run" | bc)" = 1 ]; then run=$t; fi
  r=$(cat "$work/rss"); if [ -z "$rss" ] || [ "$r" -gt "$rss" ]; then rss=$r; fi
done

mb=$(du -m "$work/all.ndjson" | cut -f1)
echo "maillog: $maillog ($once)"
echo "input: $log ($lines lines); records' NDJSON: $mb MiB; $cores cores; $(bzip2 --version 2>&1 | head -1)"
printf '%-58s %8.3f s\n' "bzip2 -9, the two kinds' files in parallel" "$kinds"
printf '%-58s %8.3f s\n' "bzip2 -9, $cores equal parts in parallel" "$parts"
printf '%-58s %8.3f s   peak RSS %d MiB\n' "maillog run $once (bzip2 -9 on every core)" "$run" "$((rss / 1024))"
echo "ratio limit(kinds) / maillog: $(echo "scale=2; $kinds / $run" | bc)"
echo "ratio limit(equal parts) / maillog: $(echo "scale=2; $parts / $run" | bc)"
tail -3 "$work/run.err"
