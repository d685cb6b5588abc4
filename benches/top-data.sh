#!/usr/bin/env bash
# The data set of benches/top.sh, made once and cached under target/bench-data/top-LINES-rRATE/:
#   mail.log          the generated syslog (maillog-loggen --lines LINES --rate RATE)
#   archive/          what `maillog run --once=all` makes of it: mail_logs/DATE/{from,to}-….json.bz2
#   to.ndjson         the same `to` records, uncompressed (`maillog parse --kind to`)
#   to-files.list     the archive's to-files, one path a line (the file set of every competitor)
#   facts             record counts and sizes (shell assignments, sourced by benches/top.sh)
# Each piece is written beside its final name and renamed when complete, so an interrupted run
# redoes only what is missing. Delete the folder to make it again (e.g. after a parser change).
#
# usage: benches/top-data.sh [LINES [RATE]]      prints the folder on stdout
#   MAILLOG, MAILLOG_LOGGEN: the binaries (default: target/release/ of CARGO_TARGET_DIR or ./target)
set -euo pipefail
cd "$(dirname "$0")/.."

lines=${1:-2500000}
rate=${2:-20}
bin_dir=${CARGO_TARGET_DIR:-$PWD/target}/release
maillog=${MAILLOG:-$bin_dir/maillog}
loggen=${MAILLOG_LOGGEN:-$(dirname "$maillog")/maillog-loggen}
for b in "$maillog" "$loggen"; do
  [ -x "$b" ] || { echo "top-data: $b is missing (cargo build --release --bin maillog --bin maillog-loggen)" >&2; exit 1; }
done

dir=$PWD/target/bench-data/top-$lines-r$rate
mkdir -p "$dir"
log=$dir/mail.log

if [ ! -s "$log" ]; then
  echo "top-data: generating $lines lines at $rate lines/s" >&2
  "$loggen" --lines "$lines" --rate "$rate" -o "$log.tmp"
  mv "$log.tmp" "$log"
fi

if [ ! -d "$dir/archive" ]; then
  # A backfill: every window sealed (`--once` alone leaves the ones not yet due). ONCE=--once
  # for a binary older than `--once=all` (before issue 13), which sealed everything anyway.
  once=${ONCE:---once=all}
  echo "top-data: maillog run $once into $dir/archive" >&2
  rm -rf "$dir/archive.tmp" "$dir/spool"
  "$maillog" run "$once" --input "$log" --spool "$dir/spool" --archive "file://$dir/archive.tmp" \
    2> "$dir/run.err" || { cat "$dir/run.err" >&2; exit 1; }
  rm -rf "$dir/spool"
  mv "$dir/archive.tmp" "$dir/archive"
fi

if [ ! -s "$dir/to.ndjson" ]; then
  echo "top-data: maillog parse --kind to" >&2
  "$maillog" parse --kind to "$log" > "$dir/to.ndjson.tmp" 2> "$dir/parse.err"
  mv "$dir/to.ndjson.tmp" "$dir/to.ndjson"
fi

if [ ! -s "$dir/to-files.list" ]; then
  find "$dir/archive" -type f -name 'to-*.json.bz2' | LC_ALL=C sort > "$dir/to-files.list.tmp"
  mv "$dir/to-files.list.tmp" "$dir/to-files.list"
fi

if [ ! -s "$dir/facts" ]; then
  echo "top-data: counting" >&2
  # `maillog parse` without --kind: both kinds' records, one per line.
  records=$("$maillog" parse "$log" 2>/dev/null | wc -l)
  to_records=$(wc -l < "$dir/to.ndjson")
  to_files=$(wc -l < "$dir/to-files.list")
  to_bz2_bytes=$(xargs -a "$dir/to-files.list" stat -c %s | awk '{s += $1} END {print s}')
  # The archive's to-files hold exactly the records of to.ndjson (in window order).
  archive_bytes=$(xargs -a "$dir/to-files.list" bzip2 -dc | wc -c)
  ndjson_bytes=$(stat -c %s "$dir/to.ndjson")
  archive_lines=$(xargs -a "$dir/to-files.list" bzip2 -dc | wc -l)
  if [ "$archive_bytes" != "$ndjson_bytes" ] || [ "$archive_lines" != "$to_records" ]; then
    echo "top-data: the archive's to-files ($archive_lines records, $archive_bytes bytes) differ from to.ndjson ($to_records, $ndjson_bytes)" >&2
    exit 1
  fi
  cat > "$dir/facts.tmp" <<EOF
lines=$lines
rate=$rate
records=$records
to_records=$to_records
to_files=$to_files
to_bz2_bytes=$to_bz2_bytes
to_json_bytes=$ndjson_bytes
log_bytes=$(stat -c %s "$log")
EOF
  mv "$dir/facts.tmp" "$dir/facts"
fi
echo "$dir"
