#!/usr/bin/env bash
# The crash test at length, for the benchmark machine: 200 kills while a generator writes
# 400,000 lines over two minutes, rotating by rename; release build. The short version runs
# in .ci/run. Prints the count of records expected, lost and extra (both must be 0).
#
# usage: benches/crash-long.sh [KILLS] [LINES] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
MAILLOG_CRASH_KILLS=${1:-200} MAILLOG_CRASH_LINES=${2:-400000} MAILLOG_CRASH_SECONDS=${3:-120} \
  cargo test --release --locked -p maillog-cli --test crash -- --nocapture 2>&1 | grep -E "kills|test result|panicked"
